"""authd.wire.question_key against dnspython's parser: a key only for a
packet dnspython reads as a plain query, and then the key says what it says."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from authd import wire

_NAMES = st.sampled_from(
    ["example.com.", "WWW.Example.COM.", ".", "a.b.c.d.e.f.", "x" * 63 + ".test."]
)


def _query(
    name: str, rdtype: int, edns: int, payload: int, do: bool, nsid: bool, rd: bool
) -> bytes:
    options = [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")] if nsid else []
    if edns < 0:
        q = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        q = dns.message.make_query(
            name, rdtype, use_edns=edns, payload=payload, want_dnssec=do, options=options
        )
    if not rd:
        q.flags &= ~dns.flags.RD
    return q.to_wire()


def _parsed_matches(data: bytes, key: wire.QuestionKey) -> None:
    m = dns.message.from_wire(data)
    assert not m.flags & dns.flags.QR and m.opcode() == 0
    assert len(m.question) == 1 and not m.answer and not m.authority
    q = m.question[0]
    assert dns.name.from_wire(key.qname, 0)[0] == q.name
    assert key.qname == key.qname.lower()
    assert (key.qtype, key.qclass) == (q.rdtype, q.rdclass)
    assert key.payload == (m.payload if m.edns >= 0 else None)
    assert key.do == bool(m.ednsflags & dns.flags.DO)
    assert key.flags == m.flags & (dns.flags.RD | dns.flags.CD)
    assert key.nsid == any(o.otype == dns.edns.OptionType.NSID for o in m.options)


@settings(max_examples=300)
@given(
    name=_NAMES,
    rdtype=st.sampled_from([1, 28, 15, 16, 6, 255, 65535]),
    edns=st.sampled_from([-1, 0]),
    payload=st.sampled_from([512, 1232, 4096, 65535]),
    do=st.booleans(),
    nsid=st.booleans(),
    rd=st.booleans(),
)
def test_plain_queries_get_the_key_dnspython_reads(
    name: str, rdtype: int, edns: int, payload: int, do: bool, nsid: bool, rd: bool
) -> None:
    data = _query(name, rdtype, edns, payload, do, nsid, rd)
    key = wire.question_key(data)
    assert key is not None
    _parsed_matches(data, key)


@settings(max_examples=500)
@given(
    name=_NAMES,
    edns=st.sampled_from([-1, 0]),
    cut=st.integers(0, 80),
    flips=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=3),
    extra=st.binary(max_size=4),
)
def test_damaged_queries_get_a_key_only_when_dnspython_agrees(
    name: str, edns: int, cut: int, flips: list[tuple[int, int]], extra: bytes
) -> None:
    data = bytearray(_query(name, 1, edns, 1232, False, False, True))
    for at, value in flips:
        if at < len(data):
            data[at] = value
    damaged = bytes(data[: max(cut, 12)] if cut < len(data) else data) + extra
    key = wire.question_key(damaged)
    if key is not None:
        _parsed_matches(damaged, key)


def test_the_shapes_read_in_one_step_refuse_what_they_must() -> None:
    base = _query("example.com.", 1, 0, 1232, False, False, True)
    assert wire.question_key(base) is not None
    qend = 12 + len(dns.name.from_text("example.com.").to_wire() or b"")
    opt = qend + 4
    for at, value in ((opt, 1), (opt + 2, 42), (opt + 6, 1), (opt + 10, 4)):
        bad = bytearray(base)
        bad[at] = value  # owner not root, type not OPT, EDNS version 1, RDLENGTH past the end
        assert wire.question_key(bytes(bad)) is None, (at, value)
    assert wire.question_key(base[:-1]) is None
    assert wire.question_key(base + b"\x00") is None
    plain = _query("example.com.", 1, -1, 512, False, False, True)
    assert wire.question_key(plain) is not None
    assert wire.question_key(plain[:11] + b"\x01" + plain[12:]) is None  # ARCOUNT 1, no OPT
    assert wire.question_key(plain + b"\x00") is None
