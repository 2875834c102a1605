"""Key rollovers in a running authd, watched by a validating unbound.

A parent zone (``test.``, signed by authd with a CSK) and a child
(``example.test.``, KSK/ZSK with lifetimes of 15 and 20 seconds, TTLs of 2
and propagation delays of 1) in one server: the child's ZSK rolls by
pre-publication and its KSK by double-DS, the parent's DS following the
child's CDS by itself, while a client asks unbound (trust anchor: the
parent's DS) every 100 ms and never gets SERVFAIL; the child's AXFR taken
while the parent holds two DS passes BIND's ``dnssec-verify``.

A zone with no parent here: ``authd ctl keys rollover ZONE ksk`` starts a
KSK rollover that waits (across a restart of the server) until ``authd ctl
keys ds-seen ZONE`` says the parent has the new DS; then the DNSKEY RRset
swaps after the parent's DS TTL and propagation delay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest
from reloadkit import REPO_ROOT, Lab, ctl, running_lab, soa_serial

from authd.adapters import keystore
from authd.keyfiles import ds_records
from harness.peers import HOST, require_binary, start_unbound

PARENT = dns.name.from_text("test.")
CHILD = dns.name.from_text("example.test.")
QUERY_TIMEOUT = 5.0
VERIFY_TIMEOUT = 60.0
ROLLOVERS_TIMEOUT = 60.0  # both rollovers take about 25 s with these timers
CLIENT_INTERVAL = 0.1

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
MANUAL = {**FAST, "name": "manual", "zsk_lifetime": 0, "ksk_lifetime": 0}
FAST_CSK = {**FAST, "name": "fast-csk", "keys": "csk", "zsk_lifetime": 0}

PARENT_ZONE = """$TTL 2
@ SOA ns hostmaster 1 3600 600 86400 2
@ NS ns
ns A 192.0.2.1
example NS ns.example
ns.example A 192.0.2.2
"""
CHILD_ZONE = """$TTL 2
@ SOA ns hostmaster 1 3600 600 86400 2
@ NS ns
ns A 192.0.2.2
www A 192.0.2.3
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def tags(port: int, name: dns.name.Name, rdtype: str) -> frozenset[int]:
    """Key tags of the DNSKEY, DS or CDS RRset authd serves at *name*."""
    query = dns.message.make_query(name, rdtype)
    reply = dns.query.udp(query, HOST, port=port, timeout=QUERY_TIMEOUT)
    rrset = reply.get_rrset(reply.answer, name, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    if rrset is None:
        return frozenset()
    if rdtype == "DNSKEY":
        return frozenset(dns.dnssec.key_id(k) for k in rrset)
    return frozenset(int(r.key_tag) for r in rrset)


def verify(port: int, zone: dns.name.Name, path: Path, csk: bool = False) -> str:
    axfr = dns.zone.from_xfr(dns.query.xfr(HOST, zone, port=port, timeout=QUERY_TIMEOUT))
    axfr.to_file(str(path), relativize=False)
    # -z: a CSK has the SEP flag and signs everything (no separate ZSK).
    argv = [require_binary("dnssec-verify"), *(["-z"] if csk else []), "-o", zone.to_text()]
    argv.append(str(path))
    run = subprocess.run(argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


@pytest.mark.parametrize("policy", ["fast", "fast-csk"])
def test_rollovers_keep_unbound_validating_and_the_parent_follows(lab: Lab, policy: str) -> None:
    csk = policy == "fast-csk"
    state = lab.dir / "state"
    config = {
        "options": {"state_dir": str(state)},
        "dnssec_policies": [FAST, FAST_CSK],
        "zones": [
            {
                "name": "test.",
                "file": str(lab.write("test.zone", PARENT_ZONE)),
                "dnssec": {},
                "allow_transfer": ["127.0.0.1"],
            },
            {
                "name": "example.test.",
                "file": str(lab.write("example.zone", CHILD_ZONE)),
                "dnssec": {"policy": policy},
                "allow_transfer": ["127.0.0.1"],
            },
        ],
    }
    server = lab.start_config("authd", config)
    (anchor,) = ds_records(keystore.load_keys(str(state), PARENT))
    stubs = {"test.": f"{HOST}@{server.port}", "example.test.": f"{HOST}@{server.port}"}
    resolver = lab.add(
        "unbound", start_unbound(server.port, [f"test. 3600 IN DS {anchor.to_text()}"], stubs=stubs)
    )
    first_keys = tags(server.port, CHILD, "DNSKEY")
    # The DS (answered from the parent) is the child's CDS: its KSK (or CSK).
    assert len(first_keys) == (1 if csk else 2)
    assert len(tags(server.port, CHILD, "DS")) == 1
    assert tags(server.port, CHILD, "DS") == tags(server.port, CHILD, "CDS") <= first_keys
    seen_ds: list[frozenset[int]] = []
    verified = zsk_verified = False
    answers = 0
    deadline = time.monotonic() + ROLLOVERS_TIMEOUT
    next_look = 0.0
    for _ in range(int(ROLLOVERS_TIMEOUT / CLIENT_INTERVAL) + 1):
        if time.monotonic() > deadline:
            break
        query = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
        query.flags |= dns.flags.AD
        reply = dns.query.udp(query, HOST, port=resolver.port, timeout=QUERY_TIMEOUT)
        lab.check(
            reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AD and reply.answer,
            f"unbound after {answers} secure answers: {dns.rcode.to_text(reply.rcode())}\n{reply}",
        )
        answers += 1
        if time.monotonic() >= next_look:
            next_look = time.monotonic() + 0.5
            ds = tags(server.port, CHILD, "DS")
            if not seen_ds or seen_ds[-1] != ds:
                seen_ds.append(ds)
            if len(ds) == 2 and not verified:
                verify(server.port, CHILD, lab.dir / "mid.zone", csk)  # mid KSK/CSK rollover
                verified = True
            keys = tags(server.port, CHILD, "DNSKEY")
            if len(keys) == 3 and len(ds) == 1 and not zsk_verified and not csk:
                verify(server.port, CHILD, lab.dir / "zsk.zone")  # a ZSK pre-published
                zsk_verified = True
            if not keys & first_keys and len(ds) == 1 and ds <= keys and len(seen_ds) >= 3:
                break
        time.sleep(CLIENT_INTERVAL)
    else:
        pytest.fail("the loop ran out of iterations")
    keys = tags(server.port, CHILD, "DNSKEY")
    lab.check(not keys & first_keys, f"both keys rolled: first {first_keys}, now {keys}")
    lab.check(verified, f"no double-DS seen at the parent: {seen_ds}")
    lab.check(zsk_verified or csk, "no AXFR taken while two ZSKs were published")
    # The parent went from one DS to two (old and new KSK) and back to one.
    assert [len(ds) for ds in seen_ds][:3] == [1, 2, 1], seen_ds
    assert answers > 100
    assert lab.wait_log(server, r"key rollover step due", 1.0)
    verify(server.port, CHILD, lab.dir / "after.zone", csk)
    verify(server.port, PARENT, lab.dir / "parent.zone", csk=True)


def keys_list(state: Path, zone: str) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "authd",
        "keys",
        "list",
        zone,
        "--json",
        "--state-dir",
        str(state),
    ]
    run = subprocess.run(
        argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT, cwd=str(REPO_ROOT)
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def test_a_ksk_rollover_by_ctl_waits_for_ds_seen_across_a_restart(lab: Lab) -> None:
    state = lab.dir / "state"
    config = {
        "options": {"state_dir": str(state)},
        "dnssec_policies": [MANUAL],
        "zones": [
            {
                "name": "example.test.",
                "file": str(lab.write("example.zone", CHILD_ZONE)),
                "dnssec": {"policy": "manual"},
                "allow_transfer": ["127.0.0.1"],
            }
        ],
    }
    server = lab.start_config("authd", config)
    socket = str(state / "authd.ctl")
    first = tags(server.port, CHILD, "DNSKEY")
    (old_ksk,) = tags(server.port, CHILD, "CDS")
    refused = ctl("keys", "rollover", "example.test.", "csk", "--socket", socket)
    assert refused.returncode == 1 and "has no csk" in refused.stderr, refused.stderr
    run = ctl("keys", "rollover", "example.test.", "ksk", "--socket", socket)
    assert run.returncode == 0, run.stderr
    assert "ksk rollover started" in run.stdout
    again = ctl("keys", "rollover", "example.test.", "ksk", "--socket", socket)
    assert again.returncode == 1 and "already in progress" in again.stderr, again.stderr
    cds = tags(server.port, CHILD, "CDS")
    (new_ksk,) = cds - {old_ksk}
    # Asked for by CDS, not published: the DNSKEY RRset waits for the DS.
    assert tags(server.port, CHILD, "DNSKEY") == first
    verify(server.port, CHILD, lab.dir / "asked.zone")
    listed = keys_list(state, "example.test.")
    by_tag = {k["tag"]: k for k in listed["keys"]}
    assert (by_tag[new_ksk]["state"], by_tag[new_ksk]["ds"]) == ("generated", "asked")
    # A restart: the rollover resumes from keys.json, still waiting.
    server.stop()
    server = lab.start_config("authd-again", config)
    time.sleep(4)  # longer than the swap would take after a DS seen
    assert tags(server.port, CHILD, "CDS") == cds
    assert tags(server.port, CHILD, "DNSKEY") == first
    status = ctl("status", "--socket", socket)
    assert status.returncode == 0, status.stderr
    assert f"key ksk {new_ksk}: generated, ds asked" in status.stdout, status.stdout
    # The DS is at the parent: the swap follows once it reached every cache (3 s).
    run = ctl("keys", "ds-seen", "example.test.", "--socket", socket)
    assert run.returncode == 0, run.stderr
    status = json.loads(ctl("status", "--json", "--socket", socket).stdout)
    (zone,) = status["zones"]
    event = zone["signing"]["next_key_event"]
    # The swap: the new KSK published and active, the old retired and removed, at once.
    swap = {f"ksk {new_ksk} {w}" for w in ("publish", "activate")}
    swap |= {f"ksk {old_ksk} {w}" for w in ("retire", "remove")}
    assert event["what"] in swap and event["at"] > time.time(), event
    lab.wait(
        "the DNSKEY swap",
        lambda: (
            new_ksk in tags(server.port, CHILD, "DNSKEY")
            and old_ksk not in tags(server.port, CHILD, "DNSKEY")
        ),
        15.0,
    )
    verify(server.port, CHILD, lab.dir / "swapped.zone")
    # The old DS is asked to go once the old DNSKEY left every cache (3 s more).
    lab.wait("the old CDS withdrawn", lambda: tags(server.port, CHILD, "CDS") == {new_ksk}, 15.0)
    listed = keys_list(state, "example.test.")
    by_tag = {k["tag"]: k for k in listed["keys"]}
    assert (by_tag[new_ksk]["state"], by_tag[new_ksk]["ds"]) == ("active", "seen")


PARENT_FILE = """$TTL 2
@ SOA ns hostmaster {serial} 3600 600 86400 2
@ NS ns
ns A 192.0.2.1
example NS ns.example
ns.example A 192.0.2.2
{ds}"""


def test_parental_agents_are_asked_for_the_new_ds_before_the_swap(lab: Lab) -> None:
    # The parent on another server (an authd serving a plain file, edited by hand).
    parent_file = lab.write("test.zone", PARENT_FILE.format(serial=1, ds=""))
    parent = lab.start_config("parent", {"zones": [{"name": "test.", "file": str(parent_file)}]})
    state = lab.dir / "state"
    config = {
        "options": {"state_dir": str(state)},
        "dnssec_policies": [MANUAL],
        "zones": [
            {
                "name": "example.test.",
                "file": str(lab.write("example.zone", CHILD_ZONE)),
                "dnssec": {
                    "policy": "manual",
                    "parental_agents": [{"address": HOST, "port": parent.port}],
                },
                "allow_transfer": ["127.0.0.1"],
            }
        ],
    }
    server = lab.start_config("authd", config)
    socket = str(state / "authd.ctl")
    first = tags(server.port, CHILD, "DNSKEY")
    (old_ksk,) = tags(server.port, CHILD, "CDS")
    run = ctl("keys", "rollover", "example.test.", "ksk", "--socket", socket)
    assert run.returncode == 0, run.stderr
    (new_ksk,) = tags(server.port, CHILD, "CDS") - {old_ksk}
    # The parent has no DS for it: a few checks (one a second) change nothing.
    lab.wait_log(server, r"DS check|reload done", 5.0)
    time.sleep(3)
    assert tags(server.port, CHILD, "DNSKEY") == first
    assert "seen at every parental agent" not in server.read_log()
    # The operator puts the child's CDS in the parent as DS.
    query = dns.message.make_query(CHILD, "CDS")
    reply = dns.query.udp(query, HOST, port=server.port, timeout=QUERY_TIMEOUT)
    cds = reply.get_rrset(reply.answer, CHILD, dns.rdataclass.IN, dns.rdatatype.CDS)
    assert cds is not None and len(cds) == 2
    ds = "".join(f"example 2 IN DS {r.to_text()}\n" for r in cds)
    parent_file.write_text(PARENT_FILE.format(serial=2, ds=ds))
    lab.wait_serial(parent, "test.", 2, 15.0)
    lab.wait_log(server, rf"DS of example\.test\. KSK {new_ksk} seen at every parental agent", 10.0)
    lab.wait(
        "the DNSKEY swap",
        lambda: (
            tags(server.port, CHILD, "DNSKEY") - first == {new_ksk}
            and old_ksk not in tags(server.port, CHILD, "DNSKEY")
        ),
        15.0,
    )
    verify(server.port, CHILD, lab.dir / "swapped.zone")


@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_knot_and_bind_secondaries_follow_a_ksk_rollover_mid_double_ds(lab: Lab, peer: str) -> None:
    from test_signing_fleet import ZONE, start_secondary, zone_text

    from harness.peers import free_port

    zone = dns.name.from_text(ZONE)
    state = lab.dir / "state"
    peer_port = free_port()
    config = {
        "options": {"state_dir": str(state), "notify_timeout": 1, "notify_retries": 5},
        "dnssec_policies": [MANUAL],
        "zones": [
            {
                "name": ZONE,
                "file": str(lab.write("signed.zone", zone_text(1, "192.0.2.80"))),
                "dnssec": {"policy": "manual"},
                "allow_transfer": [HOST],
                "notify": "explicit",
                "also_notify": [{"address": HOST, "port": peer_port}],
            }
        ],
    }
    primary = lab.start_config("authd", config)
    secondary = start_secondary(lab, peer, primary.port, peer_port)
    socket = str(state / "authd.ctl")
    run = ctl("keys", "rollover", ZONE, "ksk", "--socket", socket)
    assert run.returncode == 0, run.stderr
    serial = soa_serial(primary.port, ZONE)
    assert serial is not None and serial > 1
    # The CDS asks for a DS whose DNSKEY is not published yet (double-DS).
    assert len(tags(primary.port, zone, "CDS")) == 2
    assert len(tags(primary.port, zone, "DNSKEY")) == 2
    lab.wait(
        f"{peer} to serve serial {serial}",
        lambda: soa_serial(secondary.port, ZONE) == serial,
        30.0,
    )
    assert tags(secondary.port, zone, "CDS") == tags(primary.port, zone, "CDS")
