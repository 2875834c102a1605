"""Key rollovers as a state machine (``authd.rollover``) and driven by builds.

Tables for the decisions (when a rollover is due, what a ds-seen does, when
a key leaves the index, how states read); then the whole machine in process:
``authd.adapters.state.build_snapshot`` run second by second of a simulated
clock over a parent and a child zone in one config, with the key store on
disk, through a ZSK and a KSK rollover.  At every second the child's
DNSKEY RRset is signed by a key whose DS the parent serves, every other
RRset by a published ZSK, the CDS set is what the parent's DS follows, and
each change of keys came with a new serial.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.name
import dns.rdatatype
import pytest

from authd import limits, parentds, rollover
from authd.adapters import keystore
from authd.adapters.state import build_snapshot, step_keys
from authd.config import config_from_dict
from authd.errors import ConfigError
from authd.keytimeline import KeyTimes, Timings
from authd.rollover import RolloverError
from authd.rrsig import sig_key
from authd.signpolicy import parse_policy

RdataType = dns.rdatatype.RdataType
T = Timings(
    dnskey_ttl=2,
    max_zone_ttl=2,
    propagation_delay=1,
    parent_ds_ttl=2,
    parent_propagation_delay=1,
    zsk_lifetime=15,
    ksk_lifetime=20,
)


def zsk(tag: int, **times: int | None) -> KeyTimes:
    return KeyTimes(tag, "zsk", 0, **times)


def ksk(tag: int, **times: int | None) -> KeyTimes:
    return KeyTimes(tag, "ksk", 0, **times)


FIRST = [ksk(1, publish=0, activate=0), zsk(2, publish=0, activate=0)]

# (keys, now, asked) -> roles due: the ZSK's is at activate + 15 - Ipub (3) = 12,
# the KSK's at activate + 20 - DS everywhere (3) = 17.
DUE = [
    (FIRST, 11, (), []),
    (FIRST, 12, (), ["zsk"]),
    (FIRST, 17, (), ["ksk", "zsk"]),
    (FIRST, 0, ("ksk",), ["ksk"]),
    # A successor on its way (pre-published ZSK, KSK waiting for its DS): none.
    ([*FIRST, zsk(3, publish=12, activate=15)], 13, ("zsk",), []),
    ([*FIRST, ksk(4)], 18, (), ["zsk"]),
    # A CSK is never rolled here.
    ([KeyTimes(5, "csk", 0, publish=0, activate=0)], 10**6, ("csk",), []),
]


@pytest.mark.parametrize(("keys", "now", "asked", "want"), DUE)
def test_which_rollovers_are_due(keys: list[KeyTimes], now: int, asked: Any, want: Any) -> None:
    assert sorted(rollover.due(keys, T, now, ("ksk", "zsk"), asked)) == want
    if not asked:
        assert rollover.due(keys, T, now, ("csk",), ()) == []


def test_a_zsk_rollover_pre_publishes_and_an_asked_one_does_not_wait_for_the_lifetime() -> None:
    new = zsk(3)
    old, fresh = rollover.begin(FIRST, new, 12, T, asked=False)
    assert (fresh.publish, fresh.activate) == (12, 15)  # lifetime end
    assert (old.retire, old.remove) == (15, 18)  # + Iret (1 + 2)
    old, fresh = rollover.begin(FIRST, new, 5, T, asked=True)
    assert (fresh.publish, fresh.activate) == (5, 8)  # + Ipub (1 + 2)
    assert (old.retire, old.remove) == (8, 11)


def test_a_ksk_rollover_waits_for_the_ds_then_swaps_after_it_reached_the_caches() -> None:
    (fresh,) = rollover.begin(FIRST, ksk(4), 17, T, asked=False)
    assert (fresh.created, fresh.publish, fresh.ds_seen) == (17, None, None)
    keys = rollover.apply([*FIRST, ksk(4)], [fresh])
    assert [k.tag for k in rollover.waiting_for_ds(keys)] == [4]
    old, new = rollover.ds_seen(keys, 19, T)
    assert (new.tag, new.ds_seen, new.publish, new.activate) == (4, 19, 22, 22)
    assert (old.tag, old.retire, old.remove) == (1, 22, 22)


def test_a_ksk_published_by_hand_waits_for_its_ds_and_stays_published() -> None:
    keys = [*FIRST, ksk(4, publish=3)]
    assert [k.tag for k in rollover.waiting_for_ds(keys)] == [4]
    assert rollover.due(keys, T, 17, ("ksk",), ()) == []  # on its way already
    old, new = rollover.ds_seen(keys, 10, T)
    assert (new.publish, new.activate, new.ds_seen) == (3, 13, 10)
    assert (old.retire, old.remove) == (13, 13)


def test_a_csk_rollover_pre_publishes_and_waits_for_the_ds() -> None:
    first = [KeyTimes(1, "csk", 0, publish=0, activate=0)]
    assert rollover.due(first, T, 16, ("csk",)) == []
    assert rollover.due(first, T, 17, ("csk",)) == ["csk"]  # 20 - max(DS 3, Ipub 3)
    (fresh,) = rollover.begin(first, KeyTimes(2, "csk", 17), 17, T, asked=False)
    assert (fresh.publish, fresh.activate) == (17, None)  # in the DNSKEY RRset, not signing
    keys = rollover.apply([*first, KeyTimes(2, "csk", 17)], [fresh])
    assert [k.tag for k in rollover.waiting_for_ds(keys)] == [2]
    old, new = rollover.ds_seen(keys, 18, T)
    # Signs once its DS (18 + 3) and its DNSKEY (17 + 3) are everywhere.
    assert (new.publish, new.activate, new.ds_seen) == (17, 21, 18)
    # The old one's DNSKEY stays until its signatures are gone (Iret 3).
    assert (old.retire, old.remove) == (21, 24)


DS_SEEN_REFUSED = [
    (7, "no key 7"),
    (2, "key 2 is a zsk: only a KSK or CSK has a DS"),
]


@pytest.mark.parametrize(("tag", "error"), DS_SEEN_REFUSED)
def test_ds_seen_of_a_wrong_tag_is_refused(tag: int, error: str) -> None:
    with pytest.raises(RolloverError, match=error):
        rollover.ds_seen(FIRST, 5, T, tag)


def test_ds_seen_with_nothing_waiting_records_the_signing_ksk() -> None:
    (seen,) = rollover.ds_seen(FIRST, 5, T)
    assert (seen.tag, seen.ds_seen) == (1, 5)
    done = rollover.apply(FIRST, [seen])
    assert rollover.ds_seen(done, 6, T) == []


REQUESTS = [
    ("csk", "no active csk to roll"),
    ("ksk", "a ksk rollover is already in progress"),
]


@pytest.mark.parametrize(("role", "error"), REQUESTS)
def test_a_manual_rollover_that_cannot_start_says_why(role: str, error: str) -> None:
    with pytest.raises(RolloverError, match=error):
        rollover.check_request([*FIRST, ksk(4)], role, 5)
    with pytest.raises(RolloverError, match="no active zsk"):
        rollover.check_request([FIRST[0]], "zsk", 5)


STATES = [
    (zsk(3, publish=12, activate=15), 11, "generated", "-"),
    (zsk(3, publish=12, activate=15), 12, "published", "-"),
    (zsk(3, publish=12, activate=15, retire=30, remove=33), 15, "active", "-"),
    (zsk(3, publish=12, activate=15, retire=30, remove=33), 31, "retired", "-"),
    (zsk(3, publish=12, activate=15, retire=30, remove=33), 33, "removed", "-"),
    (ksk(4), 1, "generated", "asked"),
    (ksk(4, ds_seen=3, publish=6, activate=6), 6, "active", "seen"),
    (ksk(1, publish=0, activate=0, retire=6, remove=6), 7, "removed", "seen"),
    (ksk(1, publish=0, activate=0, retire=6, remove=6), 9, "removed", "withdrawn"),
]


@pytest.mark.parametrize(("key", "now", "state", "ds"), STATES)
def test_how_a_key_state_and_its_ds_read(key: KeyTimes, now: int, state: str, ds: str) -> None:
    if ds == "seen" and key.tag == 1:
        key = dataclasses.replace(key, ds_seen=0)
    assert rollover.state_of(key, now) == state
    assert rollover.ds_of(key, T, now) == ds


def test_a_zsk_published_by_hand_takes_over_after_pre_publication() -> None:
    keys = [*FIRST, zsk(3, publish=4)]
    old, new = rollover.adopt(keys, 6, T)
    assert (new.tag, new.publish, new.activate) == (3, 4, 7)  # publish + Ipub
    assert (old.tag, old.retire, old.remove) == (2, 7, 10)
    assert rollover.adopt(rollover.apply(keys, [old, new]), 8, T) == []


def test_a_removed_key_leaves_the_index_once_gone_from_every_cache() -> None:
    old = zsk(2, publish=0, activate=0, retire=15, remove=18)
    assert not rollover.gone(old, T, 20)
    assert rollover.gone(old, T, 21)  # remove + Ipub
    assert not rollover.gone(FIRST[1], T, 10**6)


def test_the_next_step_is_named() -> None:
    assert rollover.next_step(FIRST, T, 0) == (12, "zsk 2 rollover due")
    keys = [
        FIRST[0],
        zsk(2, publish=0, activate=0, retire=15, remove=18),
        zsk(3, publish=12, activate=15),
    ]
    assert rollover.next_step(keys, T, 12) == (15, "zsk 2 retire")


POLICY_REFUSALS = [
    ({"keys": "csk", "zsk_lifetime": 30}, "zsk_lifetime", "a CSK lives ksk_lifetime"),
    (
        {
            "keys": "ksk-zsk",
            "zsk_lifetime": 5,
            **{"dnskey_ttl": 2, "propagation_delay": 1, "max_zone_ttl": 2},
        },
        "zsk_lifetime",
        "must be above",
    ),
    ({"keys": "ksk-zsk", "ksk_lifetime": 3600}, "ksk_lifetime", "must be above the DS"),
]


@pytest.mark.parametrize(("extra", "key", "error"), POLICY_REFUSALS)
def test_lifetimes_that_cannot_work_are_refused(
    extra: dict[str, Any], key: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=error) as e:
        parse_policy({"name": "p", **extra}, "dnssec_policies[0]")
    assert e.value.args[0].startswith(f"dnssec_policies[0].{key}")


# -- the machine in process: builds over a simulated clock -------------------------------

FAST: dict[str, Any] = {
    "name": "fast",
    "keys": "ksk-zsk",
    "dnskey_ttl": 2,
    "max_zone_ttl": 2,
    "propagation_delay": 1,
    "parent_ds_ttl": 2,
    "parent_propagation_delay": 1,
    "zsk_lifetime": 15,
    "ksk_lifetime": 20,
}
PARENT = """$TTL 2
@ SOA ns hostmaster 1 3600 600 86400 2
@ NS ns
ns A 192.0.2.1
example NS ns.example
ns.example A 192.0.2.2
"""
CHILD = """$TTL 2
@ SOA ns hostmaster 1 3600 600 86400 2
@ NS ns
ns A 192.0.2.2
www A 192.0.2.3
"""
PARENT_NAME = dns.name.from_text("test.")
CHILD_NAME = dns.name.from_text("example.test.")
START = 1_800_000_000


CSK_FAST = {**FAST, "name": "fast-csk", "keys": "csk", "zsk_lifetime": 0}


def _config(tmp_path: Path, parent_policy: str | None, child_policy: str = "fast") -> Any:
    (tmp_path / "test.zone").write_text(PARENT)
    (tmp_path / "example.zone").write_text(CHILD)
    parent: dict[str, Any] = {"name": "test.", "file": str(tmp_path / "test.zone")}
    if parent_policy is None:
        parent["serial"] = "increment"
    else:
        parent["dnssec"] = {"policy": parent_policy}
    data = {
        "options": {"state_dir": str(tmp_path / "state")},
        "dnssec_policies": [FAST, CSK_FAST],
        "zones": [
            parent,
            {
                "name": "example.test.",
                "file": str(tmp_path / "example.zone"),
                "dnssec": {"policy": child_policy},
            },
        ],
    }
    return config_from_dict(data, None, str(tmp_path))


def _check_second(snapshot: Any, now: int) -> tuple[int, frozenset[int], frozenset[int]]:
    """The child's serial, DNSKEY tags and DS tags in the parent; asserts the chain holds."""
    zones = snapshot.views[0].zones
    child, parent = zones[CHILD_NAME], zones[PARENT_NAME]
    apex = child.nodes[CHILD_NAME]
    dnskey = apex[RdataType.DNSKEY]
    ds = parent.nodes[CHILD_NAME][RdataType.DS]
    by_tag = {dns.dnssec.key_id(k): k for k in dnskey}
    ds_tags = frozenset(int(d.key_tag) for d in ds)
    # The DNSKEY RRset is signed by a key whose DS the parent has, and validates.
    sigs = apex[sig_key(RdataType.DNSKEY)]
    assert {int(s.key_tag) for s in sigs} & ds_tags, (now, ds_tags, [s.key_tag for s in sigs])
    keys = {dnskey.name: dnskey}
    dns.dnssec.validate(dnskey, sigs, keys, now=now)
    # Every other RRset by a published ZSK.
    www = dns.name.from_text("www.example.test.")
    a_sigs = child.nodes[www][sig_key(RdataType.A)]
    csk = all(k.flags == 257 for k in dnskey)
    zone_flags = 257 if csk else 256
    assert all(
        int(s.key_tag) in by_tag and by_tag[int(s.key_tag)].flags == zone_flags for s in a_sigs
    )
    dns.dnssec.validate(child.nodes[www][RdataType.A], a_sigs, keys, now=now)
    # The parent's DS is what the child's CDS asks for.
    cds = apex[RdataType.CDS]
    assert {int(c.key_tag) for c in cds} == ds_tags
    return child.serial, frozenset(by_tag), ds_tags


@pytest.mark.parametrize(
    ("parent_policy", "child_policy"),
    [(None, "fast"), ("default", "fast"), ("default", "fast-csk")],
)
def test_rollovers_run_second_by_second_with_the_parent_following(
    tmp_path: Path, parent_policy: str | None, child_policy: str
) -> None:
    config = _config(tmp_path, parent_policy, child_policy)
    snapshot, _ = build_snapshot(config, None, 1, START)
    seen_dnskeys = []
    serials = []
    for step in range(1, 45):
        now = START + step
        snapshot, _ = build_snapshot(config, snapshot, step + 1, now)
        serial, dnskeys, ds_tags = _check_second(snapshot, now)
        if not seen_dnskeys or seen_dnskeys[-1] != (dnskeys, ds_tags):
            seen_dnskeys.append((dnskeys, ds_tags))
            serials.append(serial)
    # New serials with each change, going up.
    assert serials == sorted(set(serials)), serials
    keys = keystore.load_keys(str(tmp_path / "state"), CHILD_NAME)
    roles = sorted({k.role for k in keys})
    # Both rolled at least once: the first ZSK and KSK left the index.
    first_tags = set(seen_dnskeys[0][0])
    assert not first_tags & {k.tag for k in keys}, (first_tags, keys)
    assert roles == (["csk"] if child_policy == "fast-csk" else ["ksk", "zsk"])
    # The parent carried two DS at once (double-DS) at some second.
    assert any(len(ds) == 2 for _, ds in seen_dnskeys)


def test_step_keys_is_one_locked_update_and_resumes_from_disk(tmp_path: Path) -> None:
    policy = parse_policy(FAST, "p")
    state = str(tmp_path / "state")
    first = step_keys(state, CHILD_NAME, policy, START)
    assert sorted(k.role for k in first) == ["ksk", "zsk"]
    # Asked: a KSK successor that waits for its DS (no parent here).
    asked = step_keys(state, CHILD_NAME, policy, START + 1, asked=("ksk",))
    (waiting,) = rollover.waiting_for_ds(asked)
    # A "restart": the next step reads it back from keys.json.
    again = step_keys(state, CHILD_NAME, policy, START + 2)
    assert [k.tag for k in rollover.waiting_for_ds(again)] == [waiting.tag]
    with pytest.raises(RolloverError, match="already in progress"):
        step_keys(state, CHILD_NAME, policy, START + 2, asked=("ksk",))
    done = step_keys(state, CHILD_NAME, policy, START + 3, ds_seen=True)
    new = next(k for k in done if k.tag == waiting.tag)
    assert (new.ds_seen, new.activate) == (START + 3, START + 6)
    with pytest.raises(RolloverError, match="has no csk"):
        step_keys(state, CHILD_NAME, policy, START + 4, asked=("csk",))


def test_the_key_event_margin_is_small() -> None:
    # The signing timer wakes this long after a key event's whole second.
    assert 0 < limits.KEY_EVENT_MARGIN < 1


AGENTS_REFUSED = [
    (["not an address"], "zones[0].dnssec.parental_agents[0].address"),
    ([{"address": "127.0.0.1", "port": 0}], "zones[0].dnssec.parental_agents[0].port"),
    (["127.0.0.1"] * (limits.MAX_PARENTAL_AGENTS + 1), "zones[0].dnssec.parental_agents"),
    ("127.0.0.1", "zones[0].dnssec.parental_agents"),
]


@pytest.mark.parametrize(("agents", "where"), AGENTS_REFUSED)
def test_bad_parental_agents_are_refused_with_the_key_path(
    tmp_path: Path, agents: Any, where: str
) -> None:
    (tmp_path / "z").write_text(CHILD)
    data = {
        "zones": [{"name": "example.test.", "file": "z", "dnssec": {"parental_agents": agents}}]
    }
    with pytest.raises(ConfigError) as e:
        config_from_dict(data, None, str(tmp_path))
    assert str(e.value).startswith(where), str(e.value)


def test_parental_agents_parse_with_a_default_port(tmp_path: Path) -> None:
    (tmp_path / "z").write_text(CHILD)
    agents = ["192.0.2.1", {"address": "127.0.0.1", "port": 5300}]
    data = {
        "zones": [{"name": "example.test.", "file": "z", "dnssec": {"parental_agents": agents}}]
    }
    (zc,) = config_from_dict(data, None, str(tmp_path)).views[0].zones
    assert [(a.address, a.port) for a in zc.parental_agents] == [
        ("192.0.2.1", 53),
        ("127.0.0.1", 5300),
    ]


def test_the_ds_is_seen_when_every_agent_has_it() -> None:
    import dns.rrset

    cds = dns.rrset.from_text(
        "example.test.",
        2,
        "IN",
        "CDS",
        "1 13 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "2 13 2 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
    )
    new = dns.rrset.from_text(
        "example.test.",
        2,
        "IN",
        "DS",
        "1 13 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "2 13 2 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
    )
    old = dns.rrset.from_text(
        "example.test.",
        2,
        "IN",
        "DS",
        "1 13 2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    wrong = dns.rrset.from_text(
        "example.test.",
        2,
        "IN",
        "DS",
        "2 13 2 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
    )
    assert parentds.seen_at_parent([2], cds, [new, new]) == [2]
    assert parentds.seen_at_parent([2], cds, [new, old]) == []
    assert parentds.seen_at_parent([2], cds, [new, None]) == []
    assert parentds.seen_at_parent([2], cds, [wrong]) == []
    assert parentds.seen_at_parent([2], None, [new]) == []
    assert limits.DS_CHECK_MIN_INTERVAL <= limits.DS_CHECK_MAX_INTERVAL
    assert limits.DS_CHECK_TIMEOUT > 0


def test_a_child_whose_keys_cannot_be_read_keeps_its_ds_in_the_parent(tmp_path: Path) -> None:
    config = _config(tmp_path, "default")
    snapshot, _ = build_snapshot(config, None, 1, START)
    ds = snapshot.views[0].zones[PARENT_NAME].nodes[CHILD_NAME][RdataType.DS]
    (tmp_path / "state" / "keys" / "example.test" / "keys.json").write_text("{broken")
    later, events = build_snapshot(config, snapshot, 2, START + 5)
    assert any("key store" in (e.reason or "") for e in events if e.zone == CHILD_NAME)
    zones = later.views[0].zones
    assert zones[PARENT_NAME].nodes[CHILD_NAME][RdataType.DS] == ds
    assert zones[CHILD_NAME] is snapshot.views[0].zones[CHILD_NAME]
