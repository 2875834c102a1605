"""Split-horizon views (BIND's view statement) and EDNS Client Subnet (RFC 7871).

Pure tests: configs go through ``config_from_dict`` and ``build_snapshot`` as
the server's do (zone files in ``tmp_path``), questions through
``authd.query.handle``.  Covers the selection order, negation, no view ->
REFUSED, destinations, TSIG-key views, ``in_view`` sharing one compiled zone,
ECS (trusted, untrusted, off, malformed, scope), the answer cache never mixing
views, transfers per view, shadowed views, ``localnets`` from gathered host
facts, and ``authd views explain``.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import time
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import pytest

from authd import acl, ecs, views, wire
from authd.adapters.hostinfo import parse_ip_json, parse_proc
from authd.adapters.state import build_snapshot  # the server's build: journals on disk
from authd.cli import main
from authd.config import Config, config_from_dict
from authd.errors import ConfigError
from authd.query import Request, Transport, handle
from authd.snapshot import Snapshot

ORIGIN = "example.com."
INTERNAL_KEY = base64.b64encode(b"i" * 32).decode()
EXTERNAL_KEY = base64.b64encode(b"e" * 32).decode()
KEYS = [
    {"name": "internal-xfr", "secret": INTERNAL_KEY},
    {"name": "external-xfr", "secret": EXTERNAL_KEY},
]


def zone_text(tag: str, serial: int = 1, extra: str = "") -> str:
    """example.com whose www TXT names the view (*tag*) that serves it."""
    return (
        f"$ORIGIN {ORIGIN}\n$TTL 300\n"
        f"@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n"
        "@ NS ns1\nns1 A 192.0.2.53\n"
        f'www A 192.0.2.80\nwww TXT "{tag}"\n{extra}'
    )


def write_zones(folder: Path, tags: list[str]) -> dict[str, str]:
    files = {}
    for tag in tags:
        path = folder / f"{tag}.zone"
        path.write_text(zone_text(tag))
        files[tag] = str(path)
    return files


def view(name: str, clients: list[object] | None, **more: object) -> dict[str, object]:
    out: dict[str, object] = {
        "name": name,
        "zones": [{"name": ORIGIN, "file": f"{name}.zone", **more.pop("zone", {})}],  # type: ignore[dict-item]
        **more,
    }
    if clients is not None:
        out["match_clients"] = clients
    return out


def config(tmp_path: Path, views_: list[dict[str, object]], **top: object) -> Config:
    for v in views_:
        for z in v["zones"]:  # type: ignore[attr-defined]
            if "file" in z and not (tmp_path / z["file"]).exists():
                (tmp_path / z["file"]).write_text(zone_text(str(v["name"])))
    data = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "options": {"state_dir": str(tmp_path / "state")},
        "keys": KEYS,
        "views": views_,
        **top,
    }
    return config_from_dict(data, None, str(tmp_path))


def snapshot(tmp_path: Path, views_: list[dict[str, object]], **top: object) -> Snapshot:
    snap, events = build_snapshot(config(tmp_path, views_, **top), None, 0)
    assert all(e.outcome.value == "loaded" for e in events), events
    return snap


def ask(
    snap: Snapshot,
    client: str,
    *,
    local: str = "127.0.0.1",
    qname: str = "www." + ORIGIN,
    qtype: str = "TXT",
    options: list[dns.edns.Option] | None = None,
    key: str | None = None,
    tcp: bool = False,
    raw: bytes | None = None,
) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, use_edns=0 if options else False, options=options)
    keyring = None
    if key is not None:
        secret = {"internal-xfr": INTERNAL_KEY, "external-xfr": EXTERNAL_KEY}[key]
        keyring = dns.tsigkeyring.from_text({key: secret})
        q.use_tsig(keyring, keyname=key)
    data = raw if raw is not None else q.to_wire()
    transport = Transport.TCP if tcp else Transport.UDP
    reply = handle(Request(data, client, local, transport, time.time()), snap)
    assert len(reply.messages) == 1
    return dns.message.from_wire(reply.messages[0], keyring=keyring, request_mac=q.mac or b"")


def served_by(msg: dns.message.Message) -> str:
    """The view tag in the www TXT answer, or the rcode's name."""
    if msg.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(msg.rcode())
    [rrset] = [r for r in msg.answer if r.rdtype == dns.rdatatype.TXT]
    return b"".join(rrset[0].strings).decode()


def ecs_of(msg: dns.message.Message) -> dns.edns.ECSOption | None:
    found = [o for o in msg.options if o.otype == dns.edns.OptionType.ECS]
    assert len(found) <= 1
    return found[0] if found else None  # type: ignore[return-value]


# ------------------------------------------------------------- selection


SELECTION_CASES = [
    # (views as (name, match_clients), client, expected view or REFUSED)
    # First match wins, not the most specific (BIND order).
    ([("a", ["10.0.0.0/8"]), ("b", ["10.1.0.0/16"])], "10.1.2.3", "a"),
    ([("b", ["10.1.0.0/16"]), ("a", ["10.0.0.0/8"])], "10.1.2.3", "b"),
    ([("b", ["10.1.0.0/16"]), ("a", ["10.0.0.0/8"])], "10.2.0.1", "a"),
    # Negation: the negated prefix denies and the next view is tried.
    ([("a", ["!10.1.0.0/16", "10.0.0.0/8"]), ("b", ["any"])], "10.1.2.3", "b"),
    ([("a", ["!10.1.0.0/16", "10.0.0.0/8"]), ("b", ["any"])], "10.9.2.3", "a"),
    # A negated named list denies what it allows.
    ([("a", ["!lab", "any"]), ("b", ["any"])], "192.0.2.7", "b"),
    ([("a", ["!lab", "any"]), ("b", ["any"])], "198.51.100.7", "a"),
    # No view matches: REFUSED.
    ([("a", ["10.0.0.0/8"])], "192.0.2.1", "REFUSED"),
    ([("a", ["none"])], "10.0.0.1", "REFUSED"),
    # No match_clients: every client.
    ([("a", ["10.0.0.0/8"]), ("b", None)], "2001:db8::1", "b"),
    # IPv6, and IPv4-mapped clients matched as IPv4.
    ([("a", ["2001:db8::/32"]), ("b", ["any"])], "2001:db8:1::1", "a"),
    ([("a", ["10.0.0.0/8"]), ("b", ["any"])], "::ffff:10.1.2.3", "a"),
    ([("a", ["::/0"]), ("b", ["any"])], "::ffff:10.1.2.3", "b"),
]


@pytest.mark.parametrize(("spec", "client", "expected"), SELECTION_CASES)
def test_selection(tmp_path: Path, spec: list[tuple[str, object]], client: str, expected: str):
    snap = snapshot(
        tmp_path,
        [view(name, clients) for name, clients in spec],  # type: ignore[arg-type]
        acls={"lab": ["192.0.2.0/24"]},
    )
    assert served_by(ask(snap, client)) == expected
    chosen = views.select(snap.views, client, "127.0.0.1")
    assert (chosen.view.name if chosen.view else "REFUSED") == expected
    assert chosen.view is snap.select_view(client, "127.0.0.1")


def test_no_view_is_refused_for_every_kind_of_question(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, [view("a", ["10.0.0.0/8"])])
    for qname, qtype in [("www." + ORIGIN, "A"), (ORIGIN, "SOA"), ("nowhere.test.", "A")]:
        msg = ask(snap, "192.0.2.1", qname=qname, qtype=qtype)
        assert msg.rcode() == dns.rcode.REFUSED
        assert not msg.answer and not msg.authority


def test_destination_matching(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        [
            view("three", ["any"], match_destinations=["127.0.0.3"]),
            view("rest", ["any"]),
        ],
    )
    assert served_by(ask(snap, "192.0.2.1", local="127.0.0.3")) == "three"
    assert served_by(ask(snap, "192.0.2.1", local="127.0.0.1")) == "rest"
    lines = views.select(snap.views, "192.0.2.1", "127.0.0.1").explain()
    assert lines[0].startswith("view 'three' does not match: destination deny")


def test_key_selects_the_view(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        [
            view("internal", ["key internal-xfr", "10.0.0.0/8"]),
            view("external", ["!key internal-xfr", "any"]),
        ],
    )
    assert served_by(ask(snap, "192.0.2.1")) == "external"
    assert served_by(ask(snap, "192.0.2.1", key="internal-xfr")) == "internal"
    assert served_by(ask(snap, "192.0.2.1", key="external-xfr")) == "external"
    assert served_by(ask(snap, "10.0.0.1")) == "internal"
    # Only the two unsigned answers are cached: the key is not in the cache key.
    assert sorted(k[0] for k in snap.cache) == [0, 1]


def test_in_view_shares_one_compiled_zone(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        [
            view("internal", ["10.0.0.0/8"]),
            {"name": "external", "zones": [{"name": ORIGIN, "in_view": "internal"}]},
        ],
    )
    snap, events = build_snapshot(cfg, None, 0)
    assert [(e.view, e.outcome.value) for e in events] == [("internal", "loaded")]
    name = dns.name.from_text(ORIGIN)
    assert snap.views[1].zones[name] is snap.views[0].zones[name]
    assert served_by(ask(snap, "192.0.2.1")) == "internal"  # the internal file, shared


def test_select_agrees_with_snapshot_select_view(tmp_path: Path) -> None:
    """views.select (ECS, explain) and Snapshot.select_view (fast path) never differ."""
    rng = random.Random(7)
    snap = snapshot(
        tmp_path,
        [
            view("a", ["!10.1.0.0/16", "10.0.0.0/8", "2001:db8::/48"]),
            view("b", ["10.1.128.0/17", "key internal-xfr"], match_destinations=["127.0.0.1"]),
            view("c", ["!192.0.2.0/24", "0.0.0.0/1"]),
        ],
    )
    internal = dns.name.from_text("internal-xfr")
    for _ in range(2000):
        if rng.random() < 0.5:
            client = str(
                ipaddress.IPv4Address(rng.choice([10 << 24, 0, 192 << 24]) | rng.getrandbits(24))
            )
        else:
            client = str(ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(96)))
        local = rng.choice(["127.0.0.1", "127.0.0.2"])
        key = rng.choice([None, internal])
        chosen = views.select(snap.views, client, local, key)
        assert chosen.view is snap.select_view(client, local, key), (client, local, key)


# ------------------------------------------------------------------- ECS

ECS_VIEWS = [view("internal", ["10.0.0.0/8"]), view("external", ["any"])]


def ecs_snapshot(tmp_path: Path, trusted: list[object] | None = ["127.0.0.1"]) -> Snapshot:  # noqa: B006
    top = {"client_subnet": {"trusted": trusted}} if trusted is not None else {}
    return snapshot(tmp_path, [dict(v) for v in ECS_VIEWS], **top)


ECS_CASES = [
    # (client, ECS prefix, view, echoed "address/source/scope" or None)
    # Trusted: ADDRESS chooses; scope is what the ACL lets the answer cover.
    ("127.0.0.1", ("10.1.2.0", 24), "internal", "10.1.2.0/24/8"),
    ("127.0.0.1", ("192.0.2.0", 24), "external", "192.0.2.0/24/1"),
    ("127.0.0.1", ("10.0.0.0", 8), "internal", "10.0.0.0/8/8"),
    # A source shorter than the view's prefix: scope longer than source says the
    # prefix was not specific enough (RFC 7871 section 7.2.1).
    ("127.0.0.1", ("0.0.0.0", 4), "external", "0.0.0.0/4/5"),
    ("127.0.0.1", ("2001:db8::", 56), "external", "2001:db8::/56/0"),
    # IPv4-mapped in family 2: matched as IPv4, scope counted in IPv6 bits.
    ("127.0.0.1", ("::ffff:10.1.2.0", 120), "internal", "::ffff:10.1.2.0/120/104"),
    # SOURCE PREFIX-LENGTH 0: no address to use; the transport source decides.
    ("127.0.0.1", ("0.0.0.0", 0), "external", "0.0.0.0/0/0"),
    # Untrusted: ignored for selection, echoed with scope 0.
    ("192.0.2.9", ("10.1.2.0", 24), "external", "10.1.2.0/24/0"),
    ("10.9.9.9", ("192.0.2.0", 24), "internal", "192.0.2.0/24/0"),
]


@pytest.mark.parametrize(("client", "prefix", "expected", "echo"), ECS_CASES)
def test_ecs(tmp_path: Path, client: str, prefix: tuple[str, int], expected: str, echo: str):
    snap = ecs_snapshot(tmp_path)
    msg = ask(snap, client, options=[dns.edns.ECSOption(*prefix)])
    assert served_by(msg) == expected
    got = ecs_of(msg)
    assert got is not None
    assert f"{got.address}/{got.srclen}/{got.scopelen}" == echo
    assert len(snap.cache) == 0, "an ECS answer must never enter the shared cache"


def test_ecs_off_by_default_is_ignored_and_not_echoed(tmp_path: Path) -> None:
    # RFC 7871 section 7.2.1: a server without ECS enabled MUST NOT echo it.
    snap = ecs_snapshot(tmp_path, trusted=None)
    msg = ask(snap, "127.0.0.1", options=[dns.edns.ECSOption("10.1.2.0", 24)])
    assert served_by(msg) == "external"
    assert ecs_of(msg) is None


def test_ecs_trusted_by_key(tmp_path: Path) -> None:
    snap = ecs_snapshot(tmp_path, trusted=["key external-xfr"])
    option = dns.edns.ECSOption("10.1.2.0", 24)
    assert served_by(ask(snap, "192.0.2.9", options=[option])) == "external"
    msg = ask(snap, "192.0.2.9", options=[option], key="external-xfr")
    assert served_by(msg) == "internal"
    assert ecs_of(msg).scopelen == 8  # type: ignore[union-attr]


def test_ecs_refused_answer_carries_the_scope(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path, [view("internal", ["10.0.0.0/8"])], client_subnet={"trusted": ["any"]}
    )
    msg = ask(snap, "127.0.0.1", options=[dns.edns.ECSOption("192.0.2.0", 24)])
    assert msg.rcode() == dns.rcode.REFUSED
    assert ecs_of(msg).scopelen == 1  # type: ignore[union-attr]


def _ecs_wire(option: bytes, repeat: int = 1) -> bytes:
    q = dns.message.make_query(
        "www." + ORIGIN, "TXT", use_edns=0, options=[dns.edns.GenericOption(8, b"\0\0\0\0")]
    )
    data = q.to_wire()
    # Replace the placeholder option (code 8, length 4, 4 zero bytes) at the end.
    head = data[: -(4 + 4)]
    body = b"".join(b"\x00\x08" + len(option).to_bytes(2, "big") + option for _ in range(repeat))
    rdlen_at = len(head) - 2
    head = head[:rdlen_at] + len(body).to_bytes(2, "big")
    return head + body


MALFORMED_ECS = [
    # (option payload, how many times, why)
    (b"\x00\x03\x18\x00\x0a\x01\x02", 1, "unknown family"),
    (b"\x00\x00\x00\x00", 1, "family 0"),
    (b"\x00\x01\x21\x00" + b"\0" * 5, 1, "source longer than IPv4"),
    (b"\x00\x02\x81\x00" + b"\0" * 17, 1, "source longer than IPv6"),
    (b"\x00\x01\x17\x00\x0a\x01\x03", 1, "non-zero bits beyond the source prefix"),
    (b"\x00\x01\x18\x00\x0a\x01", 1, "too few address octets"),
    (b"\x00\x01\x18\x00\x0a\x01\x02\x03", 1, "too many address octets"),
    (b"\x00\x01\x18\x08\x0a\x01\x02", 1, "non-zero scope in a query"),
    (b"\x00\x01\x18\x00\x0a\x01\x02", 2, "two ECS options"),
]


@pytest.mark.parametrize(
    ("payload", "repeat", "why"), MALFORMED_ECS, ids=[c[2] for c in MALFORMED_ECS]
)
def test_malformed_ecs_is_formerr(tmp_path: Path, payload: bytes, repeat: int, why: str) -> None:
    snap = ecs_snapshot(tmp_path)
    data = _ecs_wire(payload, repeat)
    assert wire.question_key(data) is None  # never the fast path
    reply = handle(Request(data, "127.0.0.1", "127.0.0.1", Transport.UDP), snap)
    [out] = reply.messages
    assert out[3] & 0xF == dns.rcode.FORMERR, why
    try:
        msg = dns.message.from_wire(out)
    except dns.exception.DNSException:
        return
    assert not msg.answer
    assert ecs_of(msg) is None
    assert len(snap.cache) == 0


def test_well_formed_ecs_wire_is_accepted(tmp_path: Path) -> None:
    snap = ecs_snapshot(tmp_path)
    msg = ask(snap, "127.0.0.1", raw=_ecs_wire(b"\x00\x01\x18\x00\x0a\x01\x02"))
    assert served_by(msg) == "internal"


def test_ecs_query_never_takes_the_fast_path() -> None:
    q = dns.message.make_query(
        "www." + ORIGIN, "A", use_edns=0, options=[dns.edns.ECSOption("10.1.2.0", 24)]
    )
    assert wire.question_key(q.to_wire()) is None


def test_ecs_does_not_steer_transfers_or_notify(tmp_path: Path) -> None:
    # A transfer's view is chosen by its source and key alone.
    snap = snapshot(
        tmp_path,
        [
            view("internal", ["10.0.0.0/8"], zone={"allow_transfer": ["any"]}),
            view("external", ["any"], zone={"allow_transfer": ["any"]}),
        ],
        client_subnet={"trusted": ["any"]},
    )
    q = dns.message.make_query(
        ORIGIN, "AXFR", use_edns=0, options=[dns.edns.ECSOption("10.1.2.0", 24)]
    )
    reply = handle(Request(q.to_wire(), "192.0.2.1", "127.0.0.1", Transport.TCP), snap)
    assert reply.transfer is not None and reply.transfer.view == "external"


def test_ecs_never_grants_access(tmp_path: Path) -> None:
    # allow_query is checked against the transport source, not the ECS address.
    snap = snapshot(
        tmp_path,
        [view("only", ["any"], zone={"allow_query": ["127.0.0.1"]})],
        client_subnet={"trusted": ["any"]},
    )
    inside = [dns.edns.ECSOption("127.0.0.1", 32)]
    outside = [dns.edns.ECSOption("192.0.2.0", 24)]
    assert served_by(ask(snap, "127.0.0.1", options=outside)) == "only"
    assert served_by(ask(snap, "127.0.0.2", options=inside)) == "REFUSED"


def test_ecs_survives_truncation(tmp_path: Path) -> None:
    big = "".join(f'big TXT "{i:03d}{"x" * 200}"\n' for i in range(20))
    (tmp_path / "internal.zone").write_text(zone_text("internal", extra=big))
    snap = ecs_snapshot(tmp_path)
    option = dns.edns.ECSOption("10.1.2.0", 24)
    msg = ask(snap, "127.0.0.1", qname="big." + ORIGIN, options=[option])
    assert msg.flags & dns.flags.TC
    assert ecs_of(msg).scopelen == 8  # type: ignore[union-attr]


# ------------------------------------------------------------------ cache


def test_cache_never_mixes_views(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, [view("internal", ["10.0.0.0/8"]), view("external", ["any"])])
    for _ in range(5):
        for client, expected in [("10.0.0.1", "internal"), ("192.0.2.1", "external")]:
            for tcp in (False, True):
                assert served_by(ask(snap, client, tcp=tcp)) == expected
    assert sorted({k[0] for k in snap.cache}) == [0, 1]
    assert len(snap.cache) == 4  # two views x two transports


def test_restricted_view_skips_the_cache(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        [view("only", ["any"], zone={"allow_query": ["10.0.0.0/8"]})],
    )
    assert served_by(ask(snap, "10.0.0.1")) == "only"
    assert served_by(ask(snap, "192.0.2.1")) == "REFUSED"
    assert served_by(ask(snap, "10.0.0.1")) == "only"
    assert len(snap.cache) == 0


# -------------------------------------------------------- transfers per view


def _axfr_records(snap: Snapshot, client: str, key: str | None) -> tuple[str, list[str]]:
    q = dns.message.make_query(ORIGIN, "AXFR")
    keyring = None
    if key is not None:
        secret = {"internal-xfr": INTERNAL_KEY, "external-xfr": EXTERNAL_KEY}[key]
        keyring = dns.tsigkeyring.from_text({key: secret})
        q.use_tsig(keyring, keyname=key)
    reply = handle(Request(q.to_wire(), client, "127.0.0.1", Transport.TCP, time.time()), snap)
    messages = list(reply.messages) + list(reply.stream or ())
    texts: list[str] = []
    rcode = "NOERROR"
    mac = q.mac
    for i, m in enumerate(messages):
        msg = dns.message.from_wire(
            m, keyring=keyring, request_mac=mac, xfr=True, multi=i > 0, origin=None
        )
        mac = msg.mac
        rcode = dns.rcode.to_text(msg.rcode())
        texts += [r.to_text() for r in msg.answer]
    return rcode, texts


def test_each_secondary_gets_its_views_version(tmp_path: Path) -> None:
    snap = snapshot(
        tmp_path,
        [
            view("internal", ["key internal-xfr"], zone={"allow_transfer": ["key internal-xfr"]}),
            view("external", ["127.0.0.2"], zone={"allow_transfer": ["key external-xfr"]}),
        ],
    )
    rcode, records = _axfr_records(snap, "127.0.0.1", "internal-xfr")
    assert rcode == "NOERROR" and any('"internal"' in r for r in records)
    rcode, records = _axfr_records(snap, "127.0.0.2", "external-xfr")
    assert rcode == "NOERROR" and any('"external"' in r for r in records)
    # The external view's key from an internal address picks no view at all.
    assert _axfr_records(snap, "127.0.0.1", "external-xfr")[0] == "NOTAUTH"
    # Unsigned from the external secondary's address: its view, but not allowed.
    assert _axfr_records(snap, "127.0.0.2", None)[0] == "REFUSED"


def test_journals_are_per_view_and_zone(tmp_path: Path) -> None:
    views_ = [view("internal", ["10.0.0.0/8"]), view("external", ["any"])]
    cfg = config(tmp_path, views_)
    snap1, _ = build_snapshot(cfg, None, 0)
    (tmp_path / "internal.zone").write_text(zone_text("internal", 2, "new A 10.0.0.9\n"))
    (tmp_path / "external.zone").write_text(zone_text("external", 2, "new A 192.0.2.9\n"))
    snap2, events = build_snapshot(cfg, snap1, 1)
    assert [e.outcome.value for e in events] == ["loaded", "loaded"]
    name = dns.name.from_text(ORIGIN)
    for v in snap2.views:
        path = tmp_path / "state" / v.name / "example.com.journal"
        assert path.is_file(), path
        [change] = v.journals[name].entries
        added = [f"{r.name} {r.rdata}" for r in change.added if r.rdata.rdtype == dns.rdatatype.A]
        expected = "10.0.0.9" if v.name == "internal" else "192.0.2.9"
        assert added == [f"new.example.com. {expected}"]


# ------------------------------------------------------------ shadowed views


SHADOW_CASES = [
    # (views as (match_clients, match_destinations), warnings about view indexes)
    ([(["any"], None), (["10/8"], None)], [1]),
    ([(["any"], None), (["10/8"], None), (["any"], None)], [1, 2]),
    ([(None, None), (["10/8"], None)], [1]),
    ([(["0.0.0.0/0", "::/0"], None), (["10/8"], None)], [1]),
    ([(["!10.0.0.0/8", "any"], None), (["10/8"], None)], []),
    ([(["0.0.0.0/0"], None), (["::1"], None)], []),  # IPv6 is left over
    ([(["any"], ["127.0.0.1"]), (["10/8"], None)], []),  # only one destination
    ([(["any"], ["any"]), (["10/8"], None)], [1]),
    ([(["!key internal-xfr", "any"], None), (["key internal-xfr"], None)], []),
    ([(["key internal-xfr", "any"], None), (["10/8"], None)], [1]),
    ([(["10/8"], None), (["any"], None)], []),
    ([(["localhost"], None), (["any"], None)], []),
]


@pytest.mark.parametrize(("spec", "shadowed"), SHADOW_CASES)
def test_shadowed_views(tmp_path: Path, spec: list[tuple[object, object]], shadowed: list[int]):
    views_ = []
    for i, (clients, destinations) in enumerate(spec):
        extra = {"match_destinations": destinations} if destinations is not None else {}
        views_.append(view(f"v{i}", clients, **extra))  # type: ignore[arg-type]
    warnings = views.shadowed_views(config(tmp_path, views_).views)
    assert [int(w.split("]")[0].removeprefix("views[")) for w in warnings] == shadowed, warnings
    for w in warnings:
        assert "can never match" in w


def test_check_config_prints_shadowed_views(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.zone").write_text(zone_text("a"))
    (tmp_path / "b.zone").write_text(zone_text("b"))
    (tmp_path / "c.yaml").write_text(
        "listen: [{address: 127.0.0.1, port: 5300}]\n"
        f"options: {{state_dir: {tmp_path / 'state'}}}\n"
        "views:\n"
        "  - {name: all, match_clients: [any], zones: [{name: example.com, file: a.zone}]}\n"
        "  - {name: lab, match_clients: [10/8, '!10.66/16'],\n"
        "     zones: [{name: example.com, file: b.zone}]}\n"
    )
    assert main(["serve", "-c", str(tmp_path / "c.yaml"), "--check-config"]) == 0
    err = capsys.readouterr().err
    assert "warning: views[1] 'lab' can never match: views[0] 'all'" in err
    # The ACL compiler's own warnings are shown too (BIND's classic ordering mistake).
    assert "warning: views[1].match_clients[1]: '!10.66.0.0/16' never decides" in err


# --------------------------------------------------------- config and host


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({}, "client_subnet.trusted"),
        ({"trusted": ["10.0.0.0/8"], "other": 1}, "client_subnet.other"),
        ({"trusted": ["10.0.0.0/8", "bogus!"]}, "client_subnet.trusted[1]"),
        ({"trusted": ["key nosuchkey"]}, "client_subnet.trusted[0]"),
        ({"trusted": "10.0.0.0/8"}, "client_subnet.trusted"),
        (["10.0.0.0/8"], "client_subnet"),
    ],
)
def test_client_subnet_config_errors(tmp_path: Path, value: object, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(tmp_path, [view("a", ["any"])], client_subnet=value)
    assert info.value.path == path


def test_dead_acl_elements_are_config_warnings(tmp_path: Path) -> None:
    """Regression: the compiler's "never decides" warnings were dropped by the config."""
    cfg = config(
        tmp_path,
        [view("a", ["office", "10.0.0.0/8", "10.1.0.0/16"]), view("b", ["any"])],
        acls={"office": ["10.0.0.0/8", "!10.66.0.0/16"]},
    )
    assert "acls.office[1]: '!10.66.0.0/16' never decides" in " ".join(cfg.warnings)
    assert any(w.startswith("views[0].match_clients[2]: '10.1.0.0/16'") for w in cfg.warnings)
    assert len(cfg.warnings) == 2, cfg.warnings  # nothing about our own defaults


def test_client_subnet_is_off_by_default(tmp_path: Path) -> None:
    assert config(tmp_path, [view("a", ["any"])]).client_subnet is None
    cfg = config(tmp_path, [view("a", ["any"])], client_subnet={"trusted": ["localnets"]})
    assert cfg.client_subnet is not None and cfg.client_subnet.allows("127.0.0.1")


def test_localnets_uses_the_gathered_host(tmp_path: Path) -> None:
    host = acl.HostInfo(
        local_addresses=(ipaddress.ip_address("198.51.100.7"),),
        local_networks=(ipaddress.ip_network("198.51.100.0/24"),),
    )
    views_ = [view("lan", ["localnets"]), view("localhost", ["localhost"])]
    data = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "options": {"state_dir": str(tmp_path / "state")},
        "views": views_,
    }
    for v in ("lan", "localhost"):
        (tmp_path / f"{v}.zone").write_text(zone_text(v))
    without = config_from_dict(data, None, str(tmp_path))
    with_host = config_from_dict(data, None, str(tmp_path), host)
    assert views.select(without.views, "198.51.100.20", "127.0.0.1").view is None
    assert views.select(with_host.views, "198.51.100.20", "127.0.0.1").view.name == "lan"  # type: ignore[union-attr]
    lh = with_host.views[1].match_clients
    assert lh is not None
    # localhost: the host's addresses plus the listen addresses, not the networks.
    assert lh.allows("198.51.100.7") and lh.allows("127.0.0.1")
    assert not lh.allows("198.51.100.20")


IP_JSON = """[
 {"ifindex":1,"ifname":"lo","addr_info":[
   {"family":"inet","local":"127.0.0.1","prefixlen":8},
   {"family":"inet6","local":"::1","prefixlen":128}]},
 {"ifindex":2,"ifname":"ifb0","addr_info":[]},
 {"ifindex":4,"ifname":"eth0","addr_info":[
   {"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255"},
   {"family":"inet6","local":"fd00::2","prefixlen":64},
   {"family":"inet6","local":"fe80::fc:ff:fe00:1","prefixlen":64}]}
]"""

IF_INET6 = """00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
"""

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.2
              /32 host LOCAL
"""


def _texts(host: acl.HostInfo) -> tuple[set[str], set[str]]:
    return {str(a) for a in host.local_addresses}, {str(n) for n in host.local_networks}


def test_hostinfo_from_ip_json() -> None:
    addresses, networks = _texts(parse_ip_json(IP_JSON))
    assert addresses == {"127.0.0.1", "::1", "192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"}
    assert networks == {"127.0.0.0/8", "::1/128", "192.0.2.0/24", "fd00::/64", "fe80::/64"}
    with pytest.raises(ValueError):
        parse_ip_json('{"not": "a list"}')


def test_hostinfo_from_proc() -> None:
    addresses, networks = _texts(parse_proc(IF_INET6, FIB_TRIE))
    assert addresses == {"127.0.0.1", "::1", "192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"}
    assert networks == {"127.0.0.0/8", "::1/128", "192.0.2.0/24", "fd00::/64", "fe80::/64"}
    assert parse_proc("", "") == acl.HostInfo()


# ------------------------------------------------------ authd views explain


def _explain_config(tmp_path: Path) -> str:
    for v in ("internal", "external"):
        (tmp_path / f"{v}.zone").write_text(zone_text(v))
    path = tmp_path / "views.yaml"
    path.write_text(
        "listen: [{address: 127.0.0.1, port: 5300}, {address: 127.0.0.3, port: 5300}]\n"
        f"options: {{state_dir: {tmp_path / 'state'}}}\n"
        "keys: [{name: internal-xfr, secret: " + INTERNAL_KEY + "}]\n"
        "acls: {office: ['!10.66.0.0/16', 10.0.0.0/8]}\n"
        "client_subnet: {trusted: [127.0.0.1]}\n"
        "views:\n"
        "  - {name: three, match_destinations: [127.0.0.3], match_clients: [any],\n"
        "     zones: [{name: example.com, file: external.zone}]}\n"
        "  - {name: internal, match_clients: [key internal-xfr, '!office', 192.0.2.0/24],\n"
        "     zones: [{name: example.com, file: internal.zone}]}\n"
        "  - {name: external, match_clients: [office],\n"
        "     zones: [{name: example.com, file: external.zone}]}\n"
    )
    return str(path)


EXPLAIN_CASES = [
    # (arguments after ADDRESS, exit code, lines that must appear)
    (["192.0.2.1"], 0, ["view: internal", "views[1].match_clients[2] '192.0.2.0/24'"]),
    (
        ["10.1.2.3"],
        0,
        [
            "view 'internal' does not match: clients deny by views[1].match_clients[1] "
            "'!office' -> acls.office[1] '10.0.0.0/8', prefix /8, scope /10",
            "view: external",
        ],
    ),
    (["10.66.0.1"], 1, ["no view matches: REFUSED"]),
    (["203.0.113.1"], 1, ["no view matches: REFUSED"]),
    (["10.1.2.3", "--key", "internal-xfr"], 0, ["'key internal-xfr'", "view: internal"]),
    (["10.1.2.3", "--destination", "127.0.0.3"], 0, ["view: three"]),
    (
        ["127.0.0.1", "--ecs", "10.1.2.0/24"],
        0,
        ["trusted source chooses the view", "view: external", "response ECS: 10.1.2.0/24/10"],
    ),
    (
        ["192.0.2.1", "--ecs", "10.1.2.3/24"],
        0,
        ["ECS ignored: 192.0.2.1 is not in client_subnet.trusted", "10.1.2.0/24/0"],
    ),
]


@pytest.mark.parametrize(("args", "code", "lines"), EXPLAIN_CASES)
def test_views_explain(tmp_path: Path, capsys, args: list[str], code: int, lines: list[str]):
    path = _explain_config(tmp_path)
    assert main(["views", "explain", *args, "-c", path]) == code
    out = capsys.readouterr().out
    for line in lines:
        assert line in out, out


def test_views_explain_usage_errors(tmp_path: Path, capsys) -> None:
    path = _explain_config(tmp_path)
    assert main(["views", "explain", "not-an-address", "-c", path]) == 2
    assert main(["views", "explain", "10.0.0.1", "--ecs", "10.0.0.0/99", "-c", path]) == 2
    assert main(["views", "explain", "10.0.0.1", "-c", str(tmp_path / "missing.yaml")]) == 1


def test_ecs_module_reply_never_exceeds_the_family() -> None:
    subnet = ecs.ClientSubnet(dns.edns.ECSOption("10.1.2.0", 24), trusted=True)
    assert subnet.reply(40).scopelen == 32
    v6 = ecs.ClientSubnet(dns.edns.ECSOption("::ffff:10.1.2.0", 120), trusted=True)
    assert v6.reply(32).scopelen == 128
