"""The DNS header (RFC 1035 section 4.1.1) and what the front door does with it.

Opcodes other than QUERY and NOTIFY are NOTIMP echoing only the ID and the
opcode (no question, RD and CD clear, as BIND answers genreport's opcodeflg
test); QDCOUNT other than 1 is
FORMERR; a message with QR set is a response and is never answered; RA is
never set by an authoritative-only server; RD and CD are copied (RFC 1035,
RFC 4035 3.1.6); the ID and the question's letter case are echoed, also on a
cache hit; names are compressed (RFC 1035 4.1.4).  CHAOS TXT version.bind and
id.server are REFUSED unless the operator configured an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.update
import pytest
from zonekit import ask, check, exchange, make_query, snapshot_from_texts

ZONE = """
$ORIGIN hdr.test.
$TTL 300
@    SOA  ns hm 1 7200 3600 1209600 300
@    NS   ns
ns   A    192.0.2.1
www  A    192.0.2.80
www  A    192.0.2.81
"""


@pytest.fixture
def snapshot():
    return snapshot_from_texts({"hdr.test.": ZONE})


def _response(snapshot, wire: bytes, tcp: bool = False) -> dns.message.Message:
    out = exchange(snapshot, wire, tcp=tcp)
    assert out is not None, "dropped"
    return dns.message.from_wire(out)


# NOTIFY (4) is implemented (RFC 1996); every other opcode but QUERY is not.
@pytest.mark.parametrize("opcode", [1, 2, 3, 5, 6, 15], ids=lambda o: dns.opcode.to_text(o))
def test_opcodes_other_than_query_are_notimp(snapshot, opcode: int) -> None:
    if opcode == dns.opcode.UPDATE:
        # RFC 2136 2.3: an UPDATE's zone section holds the zone's SOA.
        query = dns.update.UpdateMessage("hdr.test.", id=0x2222)
        query.add("x", 300, "A", "192.0.2.1")
        query.flags |= dns.flags.RD
    else:
        query = make_query("www.hdr.test.", "A", flags=dns.flags.RD)
        query.set_opcode(opcode)
    msg = _response(snapshot, query.to_wire())
    assert msg.rcode() == dns.rcode.NOTIMP
    assert msg.opcode() == opcode
    assert msg.id == query.id
    assert msg.flags & dns.flags.QR
    assert not msg.answer


def test_notimp_for_unknown_opcode_clears_rd_and_cd(snapshot) -> None:
    """genreport's opcodeflg: opcode 15 with every header flag set (BIND clears them)."""
    every_flag = dns.flags.AA | dns.flags.TC | dns.flags.RD | dns.flags.RA | dns.flags.AD
    query = make_query("www.hdr.test.", "A", flags=every_flag | dns.flags.CD)
    query.set_opcode(15)
    for edns in (False, True):
        query.use_edns(0 if edns else False)
        wire = bytearray(query.to_wire())
        wire[3] |= 0x40  # the Z bit too
        out = exchange(snapshot, bytes(wire))
        assert out is not None
        msg = dns.message.from_wire(out)
        assert msg.opcode() == 15 and msg.rcode() == dns.rcode.NOTIMP
        assert msg.flags & ~0xF == dns.flags.QR | dns.opcode.to_flags(15)
        assert out[3] & 0x70 == 0  # Z, AD, CD
        assert msg.question == []
        assert (msg.edns == 0) is edns


def _header(qid: int, flags: int, qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return b"".join(x.to_bytes(2, "big") for x in (qid, flags, qd, an, ns, ar))


QUESTION = b"\x03www\x03hdr\x04test\x00\x00\x01\x00\x01"


@pytest.mark.parametrize(
    ("wire", "id_"),
    [
        (_header(0x0101, 0, 0), "qdcount-0"),
        (_header(0x0102, 0, 2) + QUESTION + QUESTION, "qdcount-2"),
        (
            _header(0x0103, 0, 2) + QUESTION + b"\x02ns\xc0\x10\x00\x01\x00\x01",
            "qdcount-2-distinct",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_question_count_other_than_one_is_formerr(snapshot, wire: bytes, id_: str) -> None:
    for tcp in (False, True):
        msg = _response(snapshot, wire, tcp)
        assert msg.rcode() == dns.rcode.FORMERR, id_
        assert msg.id == int.from_bytes(wire[:2], "big")
        assert not msg.answer


def test_answer_section_in_a_query_is_formerr(snapshot) -> None:
    rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    wire = _header(0x0104, 0, 1, an=1) + QUESTION + rr
    assert _response(snapshot, wire).rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("edns", [-1, 0], ids=["plain", "edns"])
def test_qr_set_is_dropped(snapshot, tcp: bool, edns: int) -> None:
    query = make_query("www.hdr.test.", "A", edns=edns)
    query.flags |= dns.flags.QR
    assert exchange(snapshot, query.to_wire(), tcp=tcp) is None
    # ...also when the same question is already in the answer cache.
    exchange(snapshot, make_query("www.hdr.test.", "A", edns=edns).to_wire(), tcp=tcp)
    assert exchange(snapshot, query.to_wire(), tcp=tcp) is None


FLAG_CASES = [
    (0, ""),
    (dns.flags.RD, "RD"),
    (dns.flags.CD, "CD"),
    (dns.flags.RD | dns.flags.CD, "RD CD"),
    (dns.flags.RA, ""),  # RA from a client means nothing; we never set it
    (dns.flags.AD, ""),  # AD in a query asks for it; without DNSSEC we have none
    (dns.flags.AA | dns.flags.TC, ""),  # meaningless in a query: not echoed
    (0x0040, ""),  # the Z bit must be zero in responses
]


@pytest.mark.parametrize(("flags", "echoed"), FLAG_CASES, ids=[t or "none" for _, t in FLAG_CASES])
@pytest.mark.parametrize(
    "qname",
    ["www.hdr.test.", "nope.hdr.test.", "www.example.org."],
    ids=["noerror", "nx", "refused"],
)
def test_flags_in_responses(snapshot, flags: int, echoed: str, qname: str) -> None:
    for attempt in range(2):  # the second is a cache hit
        msg = _response(snapshot, make_query(qname, "A", flags=flags).to_wire())
        got = set(dns.flags.to_text(msg.flags & (dns.flags.RD | dns.flags.CD)).split())
        assert got == set(echoed.split()), attempt
        assert not msg.flags & dns.flags.RA
        assert not msg.flags & dns.flags.AD
        assert not msg.flags & 0x0040
        assert msg.flags & dns.flags.QR


def test_rd_copied_on_error_paths(snapshot) -> None:
    query = make_query("www.hdr.test.", "OPT", flags=dns.flags.RD | dns.flags.CD)  # FORMERR
    msg = _response(snapshot, query.to_wire())
    assert msg.rcode() == dns.rcode.FORMERR
    assert msg.flags & dns.flags.RD and msg.flags & dns.flags.CD
    assert not msg.flags & dns.flags.RA


@pytest.mark.parametrize("qid", [0, 1, 0x8000, 0xFFFF])
def test_id_echoed(snapshot, qid: int) -> None:
    for _ in range(2):
        assert _response(snapshot, make_query("www.hdr.test.", "A", qid=qid).to_wire()).id == qid


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_qname_case_echoed_also_on_cache_hit(snapshot, tcp: bool) -> None:
    first = ask(snapshot, "WwW.hDr.TeSt.", "A", tcp=tcp)
    assert first.question[0].name.to_text() == "WwW.hDr.TeSt."
    assert first.answer[0].name.to_text() == "WwW.hDr.TeSt."
    cached = len(snapshot.cache)
    second = ask(snapshot, "wWw.HdR.tEsT.", "A", tcp=tcp, qid=0x4321)
    assert len(snapshot.cache) == cached, "the second question is a cache hit"
    assert second.id == 0x4321
    assert second.question[0].name.to_text() == "wWw.HdR.tEsT."
    assert second.answer[0].name.to_text() == "wWw.HdR.tEsT."
    check(second, "NOERROR", "QR AA", """
          www.hdr.test. 300 IN A 192.0.2.80
          www.hdr.test. 300 IN A 192.0.2.81
          """)  # fmt: skip


def test_qname_case_echoed_on_negative_answers(snapshot) -> None:
    msg = ask(snapshot, "NoPe.HDR.test.", "A")
    assert msg.question[0].name.to_text() == "NoPe.HDR.test."
    assert msg.rcode() == dns.rcode.NXDOMAIN


def test_names_are_compressed(snapshot) -> None:
    query = make_query("www.hdr.test.", "A")
    wire = exchange(snapshot, query.to_wire())
    assert wire is not None
    # Both answer owners point back at the question name (offset 12).
    assert wire.count(b"\xc0\x0c") == 2
    # header + question (14 + 4) + two answers of pointer + fixed part + address
    assert len(wire) == 12 + 18 + 2 * (2 + 10 + 4)


@dataclass(frozen=True)
class Chaos:
    id: str
    qname: str
    qtype: str
    version: str | None
    identity: str | None
    rcode: str
    txt: str | None = None


CHAOS = [
    Chaos("version-off", "version.bind.", "TXT", None, None, "REFUSED"),
    Chaos("id-off", "id.server.", "TXT", None, None, "REFUSED"),
    Chaos("hostname-off", "hostname.bind.", "TXT", None, "x", "NOERROR", '"x"'),
    Chaos("version-on", "version.bind.", "TXT", "authd test", None, "NOERROR", '"authd test"'),
    Chaos("version-server-on", "version.server.", "TXT", "v9", None, "NOERROR", '"v9"'),
    Chaos("version-on-id-off", "id.server.", "TXT", "v9", None, "REFUSED"),
    Chaos("id-on", "id.server.", "TXT", None, "ns-a", "NOERROR", '"ns-a"'),
    Chaos("id-on-version-off", "version.bind.", "TXT", None, "ns-a", "REFUSED"),
    Chaos("version-case", "VERSION.Bind.", "TXT", "v9", None, "NOERROR", '"v9"'),
    Chaos("version-any", "version.bind.", "ANY", "v9", None, "NOERROR", '"v9"'),
    Chaos("version-qtype-a", "version.bind.", "A", "v9", None, "REFUSED"),
    Chaos("other-chaos-name", "authors.bind.", "TXT", "v9", "ns-a", "REFUSED"),
    Chaos("zone-name-in-chaos", "www.hdr.test.", "TXT", "v9", "ns-a", "REFUSED"),
]


@pytest.mark.parametrize("case", CHAOS, ids=[c.id for c in CHAOS])
def test_chaos_identity_queries(case: Chaos) -> None:
    snap = snapshot_from_texts({"hdr.test.": ZONE}, version=case.version, identity=case.identity)
    msg = ask(snap, case.qname, case.qtype, rdclass="CH")
    assert dns.rcode.to_text(msg.rcode()) == case.rcode
    assert msg.question[0].rdclass == dns.rdataclass.CH
    if case.txt is None:
        assert not msg.answer
    else:
        [rrset] = msg.answer
        assert rrset.rdclass == dns.rdataclass.CH
        assert rrset.name.to_text() == case.qname
        assert [rd.to_text() for rd in rrset] == [case.txt]


@pytest.mark.parametrize(
    ("rdclass", "rcode"),
    [
        ("IN", "NOERROR"),
        ("ANY", "NOERROR"),
        ("HS", "REFUSED"),
        ("NONE", "REFUSED"),
        (999, "REFUSED"),
    ],
)
def test_query_classes(snapshot, rdclass, rcode: str) -> None:
    msg = ask(snapshot, "www.hdr.test.", "A", rdclass=rdclass)
    assert dns.rcode.to_text(msg.rcode()) == rcode
