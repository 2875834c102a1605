"""RFC 6891 (EDNS(0)) and RFC 5001 (NSID) at the front door.

Section 7: a request with an OPT gets an OPT back, whatever the outcome; one
without gets none (6.1.1).  Section 6.1.3: an unknown version gets BADVERS
with version 0 in our OPT; unknown options are ignored; unknown flag bits are
cleared and DO is echoed (RFC 3225).  More than one OPT is FORMERR (6.1.1).
Section 6.2.5 and RFC 1035 4.2.1: a UDP response is at most
min(client payload, udp_payload_max) octets - never below 512 - and 512
without EDNS; truncation drops whole RRsets, so the response always parses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import pytest
from zonekit import exchange, make_query, snapshot_from_texts

OUR_PAYLOAD = 1400  # distinct from every client payload used below

TXT_900 = " ".join(f'"{c * 250}"' for c in "abc")  # one ~760-octet record

ZONE = f"""
$ORIGIN edns.test.
$TTL 300
@      SOA   ns hm 1 7200 3600 1209600 300
@      NS    ns
ns     A     192.0.2.1
www    A     192.0.2.80
mid    TXT   {TXT_900}
kid    NS    ns.kid
ns.kid A     192.0.2.9
chain  CNAME c2
c2     CNAME c3
c3     CNAME huge
""" + "\n".join(f'huge TXT "{i:03d}{"x" * 200}"' for i in range(60))


@pytest.fixture
def snapshot():
    # A fresh snapshot (and answer cache) per test: what one test asked must not
    # decide what another gets back.
    return snapshot_from_texts(
        {"edns.test.": ZONE, "broken.test.": None}, udp_payload_max=OUR_PAYLOAD, nsid="ns-a.test"
    )


def _reply(snapshot, query: dns.message.Message, tcp: bool = False) -> dns.message.Message:
    wire = exchange(snapshot, query.to_wire(), tcp=tcp)
    assert wire is not None, "dropped"
    return dns.message.from_wire(wire)


@dataclass(frozen=True)
class Outcome:
    id: str
    qname: str
    qtype: str
    rcode: str
    rdclass: str = "IN"
    opcode: int = dns.opcode.QUERY
    rcode_tcp: str | None = None  # when TCP differs


OUTCOMES = [
    Outcome("noerror", "www.edns.test.", "A", "NOERROR"),
    Outcome("nodata", "www.edns.test.", "AAAA", "NOERROR"),
    Outcome("nxdomain", "nope.edns.test.", "A", "NXDOMAIN"),
    Outcome("referral", "a.kid.edns.test.", "A", "NOERROR"),
    Outcome("refused", "www.example.org.", "A", "REFUSED"),
    Outcome("servfail", "www.broken.test.", "A", "SERVFAIL"),
    Outcome("formerr-qtype-opt", "www.edns.test.", "OPT", "FORMERR"),
    # AXFR needs TCP (NOTIMP over UDP, as NSD); over TCP no ACL allows it.
    Outcome("axfr", "edns.test.", "AXFR", "NOTIMP", rcode_tcp="REFUSED"),
    Outcome("chaos-refused", "version.bind.", "TXT", "REFUSED", rdclass="CH"),
    Outcome("notimp-opcode", "www.edns.test.", "A", "NOTIMP", opcode=dns.opcode.STATUS),
    Outcome("notify-not-ours", "www.example.org.", "SOA", "NOTAUTH", opcode=dns.opcode.NOTIFY),
]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("case", OUTCOMES, ids=[c.id for c in OUTCOMES])
def test_opt_in_every_response_to_an_edns_query(snapshot, case: Outcome, tcp: bool) -> None:
    query = make_query(case.qname, case.qtype, case.rdclass, edns=0, payload=4096)
    query.set_opcode(case.opcode)
    msg = _reply(snapshot, query, tcp)
    assert dns.rcode.to_text(msg.rcode()) == (
        case.rcode_tcp if tcp and case.rcode_tcp else case.rcode
    )
    assert msg.edns == 0, msg.to_text()
    assert msg.payload == OUR_PAYLOAD


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("case", OUTCOMES, ids=[c.id for c in OUTCOMES])
def test_no_opt_without_edns(snapshot, case: Outcome, tcp: bool) -> None:
    query = make_query(case.qname, case.qtype, case.rdclass)
    query.set_opcode(case.opcode)
    msg = _reply(snapshot, query, tcp)
    assert dns.rcode.to_text(msg.rcode()) == (
        case.rcode_tcp if tcp and case.rcode_tcp else case.rcode
    )
    assert msg.edns == -1, msg.to_text()


@pytest.mark.parametrize("version", [1, 2, 255])
def test_badvers_for_unknown_version(snapshot, version: int) -> None:
    msg = _reply(snapshot, make_query("www.edns.test.", "A", edns=version))
    assert msg.rcode() == dns.rcode.BADVERS
    assert msg.flags & 0xF == 0, "BADVERS (16) lives in the OPT's extended rcode"
    assert msg.edns == 0, "our OPT says which version we do speak"
    assert msg.payload == OUR_PAYLOAD
    assert not msg.answer
    assert msg.question[0].name.to_text() == "www.edns.test."


def test_unknown_options_are_ignored(snapshot) -> None:
    options = [
        dns.edns.GenericOption(65001, b"\x01\x02\x03"),
        dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x11" * 8),
    ]
    query = dns.message.make_query("www.edns.test.", "A", use_edns=0, options=options)
    msg = _reply(snapshot, query)
    assert msg.rcode() == dns.rcode.NOERROR
    assert len(msg.answer) == 1
    assert msg.options == ()


@pytest.mark.parametrize("do", [False, True])
def test_do_bit_echoed(snapshot, do: bool) -> None:
    msg = _reply(snapshot, make_query("www.edns.test.", "A", edns=0, do=do))
    assert bool(msg.ednsflags & dns.flags.DO) is do


def test_unknown_edns_flags_are_cleared(snapshot) -> None:
    query = dns.message.make_query(
        "www.edns.test.", "A", use_edns=0, ednsflags=dns.flags.DO | 0x4000 | 0x0001
    )
    msg = _reply(snapshot, query)
    assert msg.ednsflags == dns.flags.DO


def _opt_bytes(payload: int = 1232) -> bytes:
    # root owner, TYPE 41, CLASS = payload, TTL 0, RDLENGTH 0
    return b"\x00" + struct.pack("!HHIH", 41, payload, 0, 0)


def test_two_opt_records_are_formerr(snapshot) -> None:
    wire = bytearray(make_query("www.edns.test.", "A", edns=0).to_wire())
    wire += _opt_bytes()
    wire[10:12] = (2).to_bytes(2, "big")
    out = exchange(snapshot, bytes(wire))
    assert out is not None
    assert out[:2] == wire[:2]
    assert out[3] & 0xF == dns.rcode.FORMERR


def test_opt_not_at_root_is_formerr(snapshot) -> None:
    wire = bytearray(make_query("www.edns.test.", "A").to_wire())
    wire += b"\x03www\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    wire[10:12] = (1).to_bytes(2, "big")
    out = exchange(snapshot, bytes(wire))
    assert out is not None and out[3] & 0xF == dns.rcode.FORMERR


@dataclass(frozen=True)
class Size:
    id: str
    qname: str
    payload: int | None  # None: no EDNS
    udp_max: int
    limit: int
    tc: bool


SIZES = [
    Size("no-edns-512", "mid.edns.test.", None, 1232, 512, True),
    Size("edns-fits", "mid.edns.test.", 4096, 1232, 1232, False),
    Size("client-smaller", "mid.edns.test.", 600, 1232, 600, True),
    Size("client-below-512-means-512", "mid.edns.test.", 100, 1232, 512, True),
    Size("server-smaller", "huge.edns.test.", 4096, 1232, 1232, True),
    Size("client-smaller-big", "huge.edns.test.", 2000, 4096, 2000, True),
    Size("server-max-4096", "huge.edns.test.", 65535, 4096, 4096, True),
    Size("chain-then-huge", "chain.edns.test.", 1232, 1232, 1232, True),
    Size("chain-then-huge-no-edns", "chain.edns.test.", None, 1232, 512, True),
]


@pytest.mark.parametrize("case", SIZES, ids=[c.id for c in SIZES])
def test_udp_response_size_limit(case: Size) -> None:
    snap = snapshot_from_texts({"edns.test.": ZONE}, udp_payload_max=case.udp_max)
    query = make_query(
        case.qname, "TXT", edns=-1 if case.payload is None else 0, payload=case.payload or 512
    )
    wire = exchange(snap, query.to_wire())
    assert wire is not None
    assert len(wire) <= case.limit
    msg = dns.message.from_wire(wire)  # truncation never leaves a broken message
    assert bool(msg.flags & dns.flags.TC) is case.tc
    _assert_whole_rrsets(snap, msg)
    if case.payload is not None:
        assert msg.edns == 0 and msg.payload == case.udp_max


def _assert_whole_rrsets(snap, msg: dns.message.Message) -> None:
    """Every RRset in the response has all the records the zone holds for it."""
    zone = snap.views[0].zones[dns.name.from_text("edns.test.")]
    for section in (msg.answer, msg.authority, msg.additional):
        for rrset in section:
            stored = zone.nodes[rrset.name][rrset.rdtype]
            assert len(rrset) == len(stored), f"{rrset.name} {rrset.rdtype} was sliced"


@pytest.mark.parametrize("edns", [-1, 0])
def test_tcp_gets_the_whole_answer(snapshot, edns: int) -> None:
    wire = exchange(snapshot, make_query("chain.edns.test.", "TXT", edns=edns).to_wire(), tcp=True)
    assert wire is not None and len(wire) > 4096
    msg = dns.message.from_wire(wire)
    assert not msg.flags & dns.flags.TC
    assert [len(r) for r in msg.answer] == [1, 1, 1, 60]


def _nsid(msg: dns.message.Message) -> list[bytes]:
    return [o.to_wire() for o in msg.options if o.otype == dns.edns.OptionType.NSID]


@pytest.mark.parametrize(
    ("configured", "asked", "expected"),
    [
        ("ns-a.test", True, [b"ns-a.test"]),
        ("ns-a.test", False, []),
        (None, True, []),
        (None, False, []),
    ],
    ids=["configured-asked", "configured-not-asked", "off-asked", "off-not-asked"],
)
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_rfc5001_nsid(configured, asked, expected, tcp) -> None:
    snap = snapshot_from_texts({"edns.test.": ZONE}, nsid=configured)
    query = make_query("www.edns.test.", "A", edns=0, nsid=asked)
    msg = _reply(snap, query, tcp)
    assert _nsid(msg) == expected


def test_nsid_without_edns_is_not_sent(snapshot) -> None:
    msg = _reply(snapshot, make_query("www.edns.test.", "A"))
    assert msg.edns == -1


def test_nsid_on_a_truncated_answer(snapshot) -> None:
    # The OPT (with NSID) is reserved up front, so it survives truncation.
    msg = _reply(snapshot, make_query("huge.edns.test.", "TXT", edns=0, payload=1232, nsid=True))
    assert msg.flags & dns.flags.TC
    assert _nsid(msg) == [b"ns-a.test"]


def test_nsid_on_an_error_answer(snapshot) -> None:
    msg = _reply(snapshot, make_query("www.example.org.", "A", edns=0, nsid=True))
    assert msg.rcode() == dns.rcode.REFUSED
    assert _nsid(msg) == [b"ns-a.test"]


def _ede(msg: dns.message.Message) -> list[int]:
    return [o.code for o in msg.options if o.otype == dns.edns.OptionType.EDE]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_refused_outside_our_zones_carries_ede_not_authoritative(snapshot, tcp: bool) -> None:
    # RFC 8914 section 4.21: EDE 20 "Not Authoritative", as NSD and Knot send.
    for _ in range(2):  # the second answer comes from the cache
        msg = _reply(snapshot, make_query("www.example.org.", "A", edns=0), tcp)
        assert msg.rcode() == dns.rcode.REFUSED
        assert _ede(msg) == [20]
    plain = _reply(snapshot, make_query("www.example.org.", "A"), tcp)
    assert plain.edns == -1
    assert _ede(_reply(snapshot, make_query("www.edns.test.", "A", edns=0), tcp)) == []


LONG_QNAME = ".".join(["a" * 63] * 3) + ".edns.test."


def _nsid_probe(kind: str) -> dns.message.Message:
    qname, qtype, version, opcode = {
        "answer": ("www.edns.test.", "A", 0, dns.opcode.QUERY),
        "long-qname": (LONG_QNAME, "A", 0, dns.opcode.QUERY),
        "badvers": ("www.edns.test.", "A", 1, dns.opcode.QUERY),
        "formerr": ("www.edns.test.", "OPT", 0, dns.opcode.QUERY),
        "notimp": ("www.edns.test.", "A", 0, dns.opcode.STATUS),
    }[kind]
    query = make_query(qname, qtype, edns=version, payload=512, nsid=True)
    query.set_opcode(opcode)
    return query


@pytest.mark.parametrize("kind", ["answer", "long-qname", "badvers", "formerr", "notimp"])
@pytest.mark.parametrize("nsid_len", [200, 300, 480, 490, 512])
def test_long_nsid_fits_the_smallest_udp_payload(nsid_len: int, kind: str) -> None:
    # options.nsid may be up to 512 bytes; a client may offer only 512 bytes of
    # UDP payload.  The front door must still return one well-formed response
    # within 512 bytes (dropping NSID or setting TC), never raise.
    snap = snapshot_from_texts({"edns.test.": ZONE}, nsid="n" * nsid_len)
    query = _nsid_probe(kind)
    wire = exchange(snap, query.to_wire())
    assert wire is not None
    assert len(wire) <= 512
    msg = dns.message.from_wire(wire)
    assert msg.id == query.id
    assert msg.edns == 0
