"""Malformed input: the pure parse path under fuzzing, and real sockets.

Property (``authd.query.handle``, no sockets): for any bytes, handling never
raises; the reply is empty or one message ``dns.message.from_wire`` accepts;
nothing shorter than a header and no response (QR set) is answered; anything
else is answered with the query's ID, and with FORMERR when the packet is not
a message dnspython can parse.  A malformed packet never changes what a good
query gets afterwards (the answer cache is shared across examples).

Over UDP and TCP against a running server: a truncated header, an empty
datagram, bad and looping compression pointers, trailing junk, a label over 63
octets and a name over 255 get FORMERR or silence, and the next good query on
that transport is still answered.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest
import serverkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverkit import HOSTS, V4, frame, parse, tcp_connect, tcp_read_message
from zonekit import exchange, make_query, snapshot_from_texts

import authd.query as query_module
import authd.wire as authd_wire
from authd.limits import MAX_MESSAGE, NO_EDNS_UDP_LIMIT
from authd.query import Request, Transport

ZONE = """
$ORIGIN fuzz.test.
$TTL 300
@    SOA  ns hm 1 7200 3600 1209600 300
@    NS   ns
ns   A    192.0.2.53
www  A    192.0.2.80
*.w  TXT  "wild"
d    DNAME fuzz.test.
"""


def _fresh_snapshot():
    return snapshot_from_texts({"fuzz.test.": ZONE}, nsid="fuzz", version="v", identity="i")


SNAPSHOT = _fresh_snapshot()  # shared by the property tests: its cache fills as they run

GOOD_QUERIES = [
    make_query("www.fuzz.test.", "A", qid=0x0101).to_wire(),
    make_query("www.fuzz.test.", "A", edns=0, qid=0x0102).to_wire(),
    make_query("www.fuzz.test.", "A", edns=0, do=True, nsid=True, qid=0x0103).to_wire(),
    make_query("x.w.fuzz.test.", "TXT", edns=0, qid=0x0104).to_wire(),
    make_query("a.d.fuzz.test.", "A", qid=0x0105).to_wire(),
    make_query("fuzz.test.", "ANY", qid=0x0106).to_wire(),
    make_query("version.bind.", "TXT", "CH", qid=0x0107).to_wire(),
]


def _fresh_answer(wire: bytes) -> bytes | None:
    return exchange(_fresh_snapshot(), wire)


def _same(a: bytes | None, b: bytes | None) -> bool:
    """Equal responses, up to the order of records inside an RRset."""
    if a is None or b is None:
        return a is b
    ma, mb = dns.message.from_wire(a), dns.message.from_wire(b)
    return ma == mb and len(a) == len(b)


def check_reply(wire: bytes, tcp: bool = False) -> None:
    out = exchange(SNAPSHOT, wire, tcp=tcp)  # must not raise
    if len(wire) < 12 or wire[2] & 0x80:
        assert out is None, "no header, or a response: never answered"
        return
    assert out is not None, "a readable query header deserves an answer"
    response = dns.message.from_wire(out)  # must parse
    assert response.id == int.from_bytes(wire[:2], "big")
    assert response.flags & dns.flags.QR
    try:
        dns.message.from_wire(wire)
    except dns.exception.DNSException:
        assert response.rcode() == dns.rcode.FORMERR, response.to_text()
    if tcp:
        assert len(out) <= MAX_MESSAGE
        return
    # Over UDP: 512 bytes unless the request carried a readable EDNS payload.
    try:
        request = dns.message.from_wire(wire, keyring=False)
        payload = request.payload if request.edns >= 0 else NO_EDNS_UDP_LIMIT
    except dns.exception.DNSException:
        payload = NO_EDNS_UDP_LIMIT
    limit = max(NO_EDNS_UDP_LIMIT, min(payload, SNAPSHOT.options.udp_payload_max))
    assert len(out) <= limit, f"{len(out)} bytes out for a request allowing {limit}"


def _mutate(data: st.DataObject, wire: bytes) -> bytes:
    out = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(out) - 1, 0)), label="pos")
        if kind == "flip" and out:
            out[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and out:
            out[pos] = data.draw(st.sampled_from([0x00, 0x3F, 0x40, 0x80, 0xC0, 0xFF, 0x29]))
        elif kind == "insert":
            out[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and out:
            del out[pos : pos + data.draw(st.integers(1, 4))]
        elif kind == "truncate":
            del out[pos:]
    return bytes(out)


FUZZ = settings(max_examples=400, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes(wire: bytes, tcp: bool) -> None:
    check_reply(wire, tcp)


@FUZZ
@given(st.binary(min_size=12, max_size=12), st.binary(max_size=300))
def test_random_body_behind_a_query_header(header: bytes, body: bytes) -> None:
    head = bytearray(header)
    head[2] &= 0x7F  # QR clear: this is a query
    check_reply(bytes(head) + body)


@FUZZ
@given(st.sampled_from(GOOD_QUERIES), st.data(), st.booleans())
def test_mutated_valid_queries(wire: bytes, data: st.DataObject, tcp: bool) -> None:
    check_reply(_mutate(data, wire), tcp)


def _with_option(wire: bytes, code: int, payload: bytes) -> bytes:
    option = struct.pack("!HH", code, len(payload)) + payload
    return wire[:-2] + len(option).to_bytes(2, "big") + option


@FUZZ
@given(
    st.sampled_from([GOOD_QUERIES[1], GOOD_QUERIES[3]]),
    st.sampled_from([3, 8, 9, 10, 11, 12, 15, 65001]),
    st.binary(max_size=40),
)
def test_edns_options_with_random_content(wire: bytes, code: int, payload: bytes) -> None:
    check_reply(_with_option(wire, code, payload))


@FUZZ
@given(st.sampled_from(GOOD_QUERIES), st.data())
def test_malformed_packets_never_change_good_answers(wire: bytes, data: st.DataObject) -> None:
    # A fresh snapshot: the mutated packet meets an empty cache first, then the
    # good query must get exactly what a fresh server would give it.
    if data.draw(st.booleans(), label="option"):
        code = data.draw(st.sampled_from([8, 10, 11, 15]), label="code")
        bad = _with_option(wire, code, data.draw(st.binary(max_size=12))) if wire[11] else wire
    else:
        bad = _mutate(data, wire)
    snapshot = _fresh_snapshot()
    exchange(snapshot, bad)
    assert _same(exchange(snapshot, wire), _fresh_answer(wire))


# -- junk turned away before a parse (authd.wire.junk_reply and shape)


def _full_path(wire: bytes) -> bytes | None:
    """The reply of the parsing path alone, the early refusal skipped."""
    request = Request(wire, "127.0.0.1", "127.0.0.1", Transport.UDP)
    reply = query_module._parsed(request, _fresh_snapshot()).reply
    return reply.messages[0] if reply.messages else None


def _parses(wire: bytes) -> bool:
    try:
        dns.message.from_wire(wire, keyring=False)
    except Exception:
        return False
    return True


def check_early(wire: bytes) -> None:
    if len(wire) < 12 or wire[2] & 0x80:
        return
    if authd_wire.shape(wire) == authd_wire.MALFORMED:
        assert not _parses(wire), "shape() refused what dnspython reads"
    early = authd_wire.junk_reply(wire)
    if early is not None:
        assert early == _full_path(wire), "the early reply differs from the full path's"


@FUZZ
@given(st.binary(min_size=12, max_size=12), st.binary(max_size=300))
def test_early_refusal_equals_the_full_path_for_random_bodies(header: bytes, body: bytes) -> None:
    head = bytearray(header)
    head[2] &= 0x7F
    check_early(bytes(head) + body)


@FUZZ
@given(st.sampled_from(GOOD_QUERIES), st.data())
def test_early_refusal_equals_the_full_path_for_mutated_queries(
    wire: bytes, data: st.DataObject
) -> None:
    check_early(_mutate(data, wire))


@FUZZ
@given(
    st.integers(0, 15),
    st.integers(0, 3),
    st.lists(
        st.sampled_from(
            [
                b"\x03www",
                b"\x04fuzz",
                b"\x3f" + b"a" * 63,
                b"\xc0\x0c",
                b"\xc0\x0e",
                b"\xc0\x02",
                b"\x40",
                b"\x00",
                b"\x01",
            ]
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_names_are_judged_as_dnspython_reads_them(
    opcode: int, qdcount: int, pieces: list[bytes], terminate: bool
) -> None:
    """Question-only messages without pointers: shape() says MALFORMED exactly
    when dnspython cannot read them; with pointers, only when it cannot."""
    question = b"".join(pieces) + (b"\x00" if terminate else b"") + b"\x00\x01\x00\x01"
    wire = struct.pack("!HHHHHH", 0x5151, opcode << 11, qdcount, 0, 0, 0) + question * qdcount
    if opcode == 0 and not any(p[0] >= 0xC0 for p in pieces):
        assert (authd_wire.shape(wire) == authd_wire.MALFORMED) is not _parses(wire)
    check_early(wire)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"\x00", b"\x03www\x00", b"\x04fuzz\x04test\x00"]),
            st.sampled_from([1, 6, 28, 255]),
            st.sampled_from([1, 3, 254, 255]),
        ),
        max_size=3,
    ),
    st.integers(0, 0xFFFF),
)
def test_updates_are_judged_as_dnspython_reads_their_zone_section(
    zones: list[tuple[bytes, int, int]], flags: int
) -> None:
    """An UPDATE's zone section (RFC 2136 section 2.3) read as dnspython reads it:
    one SOA of a real class gives NOTIMP, anything else FORMERR, without a parse."""
    body = b"".join(name + struct.pack("!HH", t, c) for name, t, c in zones)
    head = struct.pack("!HHHHHH", 0x5252, flags & 0x07FF | 5 << 11, len(zones), 0, 0, 0)
    wire = head + body
    assert authd_wire.junk_reply(wire) is not None
    check_early(wire)


# -- explicit cases over real sockets --------------------------------------------


def _header(qid: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


A_IN = b"\x00\x01\x00\x01"


@dataclass(frozen=True)
class Bad:
    id: str
    wire: bytes
    formerr: bool  # True: FORMERR expected; False: silence expected (or, on TCP, a close)


BAD = [
    Bad("empty", b"", False),
    Bad("truncated-header", b"\x12\x34\x00\x00\x00", False),
    Bad("eleven-bytes", _header(0x1111)[:11], False),
    Bad("header-only-qdcount-1", _header(0x2222), True),
    Bad("header-only-qdcount-0", _header(0x2323, qd=0), True),
    Bad("bad-compression-pointer", _header(0x3333) + b"\xc0\xff" + A_IN, True),
    Bad("pointer-loop", _header(0x4444) + b"\xc0\x0c" + A_IN, True),
    Bad("pointer-loop-two-hops", _header(0x4545) + b"\x01a\xc0\x0e" + A_IN, True),
    Bad("trailing-junk", GOOD_QUERIES[0] + b"\xde\xad", True),
    Bad("label-over-63", _header(0x6666) + b"\x40" + b"a" * 64 + b"\x00" + A_IN, True),
    Bad("name-over-255", _header(0x7777) + (b"\x3f" + b"a" * 63) * 4 + b"\x00" + A_IN, True),
    Bad("question-cut-short", _header(0x8888) + b"\x03www\x04fuzz", True),
    Bad("type-cut-short", _header(0x8989) + b"\x03www\x00\x00", True),
    Bad("counts-promise-more", _header(0x9999, an=5, ar=3) + b"\x03www\x00" + A_IN, True),
    Bad("opt-rdlen-past-end", _header(0xAAAA, ar=1) + b"\x03www\x00" + A_IN
        + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x40", True),
    Bad("response-flag-set", _header(0xBBBB, flags=0x8000) + b"\x03www\x00" + A_IN, False),
]  # fmt: skip

# Junk a flood is made of, each answered from its layout alone (no parse).
BAD_EARLY = [(b.id, b.wire) for b in BAD if b.formerr] + [
    ("two-questions", _header(0xCCCC, qd=2) + (b"\x03www\x00" + A_IN) * 2),
    ("iquery-opcode", _header(0xCDCD, flags=1 << 11) + b"\x03www\x00" + A_IN),
    ("opcode-7-rd-cd", _header(0xCECE, flags=7 << 11 | 0x0110) + b"\x03www\x00" + A_IN),
    # UPDATE (not served): dnspython reads a zone section of one SOA, so NOTIMP,
    # and refuses any other (FORMERR); bench/junk.py's opcode-5 was a full parse.
    ("update-zone-a", _header(0xD0D0, flags=5 << 11) + b"\x03www\x00" + A_IN),
    ("update-zone-soa", _header(0xD1D1, flags=5 << 11) + b"\x03www\x00\x00\x06\x00\x01"),
    ("update-no-zone", _header(0xD2D2, qd=0, flags=5 << 11)),
    ("update-two-zones", _header(0xD3D3, qd=2, flags=5 << 11) + (b"\x00\x00\x06\x00\x01") * 2),
    ("update-zone-class-any", _header(0xD4D4, flags=5 << 11) + b"\x00\x00\x06\x00\xff"),
]


@pytest.fixture(scope="module")
def server():
    srv, _ = serverkit.start({"fuzz.test.": ZONE}, {"tcp_idle_timeout": 2})
    yield srv
    srv.stop()


GOOD = make_query("www.fuzz.test.", "A", qid=0x600D).to_wire()


def _assert_formerr_or_nothing(reply: bytes | None, bad: Bad) -> None:
    if reply is None:
        assert not bad.formerr, "expected FORMERR, got silence"
        return
    assert bad.formerr, f"expected silence, got {reply!r}"
    msg = dns.message.from_wire(reply)
    assert msg.rcode() == dns.rcode.FORMERR
    assert msg.id == int.from_bytes(bad.wire[:2], "big")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_udp_malformed_then_good(server, bad: Bad, host: str) -> None:
    reply = serverkit.udp_exchange(
        host, server.port, bad.wire, timeout=0.5 if not bad.formerr else 3
    )
    _assert_formerr_or_nothing(reply, bad)
    good = parse(serverkit.udp_exchange(host, server.port, GOOD))
    assert good.id == 0x600D and good.rcode() == dns.rcode.NOERROR


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", [b for b in BAD if b.wire], ids=[b.id for b in BAD if b.wire])
def test_tcp_malformed_then_good(server, bad: Bad) -> None:
    with tcp_connect(V4, server.port) as s:
        s.sendall(frame(bad.wire) + frame(GOOD))
        try:
            first = tcp_read_message(s)
        except ConnectionResetError:
            first = None
        if first is None:
            # The server gave up on this connection (it may, for garbage): a new
            # connection is still served.
            assert not bad.formerr, "expected FORMERR, the connection was closed"
            good = parse(serverkit.tcp_exchange(V4, server.port, GOOD))
        elif bad.formerr:
            _assert_formerr_or_nothing(first, bad)
            good = parse(tcp_read_message(s))
        else:
            good = parse(first)  # the bad message was dropped, the good one answered
        assert good.id == 0x600D and good.rcode() == dns.rcode.NOERROR


@pytest.mark.timeout(60)
def test_zero_length_tcp_message_then_good(server) -> None:
    with tcp_connect(V4, server.port) as s:
        s.sendall(b"\x00\x00" + frame(GOOD))
        try:
            reply = tcp_read_message(s)
        except ConnectionResetError:
            reply = None
    if reply is None:
        reply = serverkit.tcp_exchange(V4, server.port, GOOD)
    assert parse(reply).id == 0x600D


@pytest.mark.parametrize("bad", BAD_EARLY, ids=lambda b: b[0])
def test_early_refusal_covers_the_common_junk(bad: tuple[str, bytes]) -> None:
    """Each is answered without a parse, byte for byte as the parser's path answers."""
    _, wire = bad
    early = authd_wire.junk_reply(wire)
    assert early is not None
    assert early == _full_path(wire)
