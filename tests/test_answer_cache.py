"""The answer cache of rendered responses (``Snapshot.cache``).

A repeated question is answered from the cache with only the ID and the
qname's letter case patched; every property a response depends on (transport,
EDNS presence and payload, DO, NSID, RD/CD, type, class) is part of the key;
the cache is bounded by ``answer_cache_entries`` and belongs to one snapshot.
A cache hit never answers a packet the full parser would refuse, and a refused
packet never leaves anything in the cache for a good one to find.
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rcode
import pytest
from zonekit import exchange, make_query, section_text, snapshot_from_texts, with_options

ZONE = """
$ORIGIN cache.test.
$TTL 300
@    SOA  ns hm 1 7200 3600 1209600 300
@    NS   ns
ns   A    192.0.2.1
www  A    192.0.2.80
www  A    192.0.2.81
www  A    192.0.2.82
www  A    192.0.2.83
""" + "\n".join(f'big TXT "{i:02d}{"y" * 150}"' for i in range(20))


def _fresh(**options):
    return snapshot_from_texts({"cache.test.": ZONE}, **options)


def _wire(snapshot, query: dns.message.Message, tcp: bool = False) -> bytes:
    out = exchange(snapshot, query.to_wire(), tcp=tcp)
    assert out is not None
    return out


def _summary(wire: bytes) -> tuple[object, ...]:
    """Everything about a response except the order of records inside an RRset."""
    msg = dns.message.from_wire(wire)
    return (
        msg.id,
        msg.flags,
        msg.rcode(),
        msg.edns,
        msg.payload if msg.edns >= 0 else None,
        msg.ednsflags,
        tuple(o.to_wire() for o in msg.options),
        [q.to_text() for q in msg.question],
        section_text(msg.answer),
        section_text(msg.authority),
        section_text(msg.additional),
        len(wire),
    )


def test_repeated_question_is_served_from_the_cache() -> None:
    snap = _fresh()
    first = _wire(snap, make_query("www.cache.test.", "A", qid=1))
    assert len(snap.cache) == 1
    # Rendering shuffles the records of an RRset; a cache hit cannot.
    for qid in range(2, 12):
        again = _wire(snap, make_query("www.cache.test.", "A", qid=qid))
        assert again[:2] == qid.to_bytes(2, "big")
        assert again[2:] == first[2:]
    assert len(snap.cache) == 1


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_id_and_case_are_patched(tcp: bool) -> None:
    snap = _fresh()
    _wire(snap, make_query("www.cache.test.", "A", qid=0xAAAA), tcp)
    hit = _wire(snap, make_query("WWW.Cache.TEST.", "A", qid=0x5555), tcp)
    assert len(snap.cache) == 1
    msg = dns.message.from_wire(hit)
    assert msg.id == 0x5555
    assert msg.question[0].name.to_text() == "WWW.Cache.TEST."
    assert {r.name.to_text() for r in msg.answer} == {"WWW.Cache.TEST."}
    assert (
        _summary(hit)[1:]
        == _summary(_wire(_fresh(), make_query("WWW.Cache.TEST.", "A", qid=0x5555), tcp))[1:]
    )


def test_a_new_snapshot_starts_with_an_empty_cache() -> None:
    snap = _fresh()
    _wire(snap, make_query("www.cache.test.", "A"))
    assert snap.cache
    assert len(with_options(snap).cache) == 0
    assert len(_fresh().cache) == 0


@pytest.mark.parametrize("bound", [1, 3, 7])
def test_cache_bound_holds(bound: int) -> None:
    snap = _fresh(answer_cache_entries=bound)
    for i in range(40):
        _wire(snap, make_query(f"n{i}.cache.test.", "A"))
        assert len(snap.cache) <= bound
    # Still correct after entries were evicted to make room.
    msg = dns.message.from_wire(_wire(snap, make_query("www.cache.test.", "A")))
    assert len(msg.answer[0]) == 4


def test_cache_off() -> None:
    snap = _fresh(answer_cache_entries=0)
    for _ in range(3):
        _wire(snap, make_query("www.cache.test.", "A"))
    assert len(snap.cache) == 0


KEY_PAIRS = [
    # (id, first query kwargs, second query kwargs, tcp first, tcp second, options)
    ("udp-vs-tcp", {}, {}, False, True, {}),
    ("edns-payload", {"edns": 0, "payload": 1232}, {"edns": 0, "payload": 4096}, False, False,
     {"udp_payload_max": 4096}),
    ("do-bit", {"edns": 0}, {"edns": 0, "do": True}, False, False, {}),
    ("do-bit-reverse", {"edns": 0, "do": True}, {"edns": 0}, False, False, {}),
    ("nsid", {"edns": 0}, {"edns": 0, "nsid": True}, False, False, {"nsid": "ns-a"}),
    ("nsid-reverse", {"edns": 0, "nsid": True}, {"edns": 0}, False, False, {"nsid": "ns-a"}),
    ("rd", {}, {"flags": dns.flags.RD}, False, False, {}),
    ("cd", {"flags": dns.flags.CD}, {}, False, False, {}),
    # RFC 6891 6.1.1: no OPT in the response to a query without one, and vice versa.
    ("edns-then-plain-udp", {"edns": 0, "payload": 512}, {}, False, False, {}),
    ("plain-then-edns-udp", {}, {"edns": 0, "payload": 512}, False, False, {}),
    ("edns-then-plain-tcp", {"edns": 0}, {}, True, True, {}),
    ("plain-then-edns-tcp", {}, {"edns": 0}, True, True, {}),
]  # fmt: skip


@pytest.mark.parametrize("qname", ["www.cache.test.", "big.cache.test."], ids=["small", "big"])
@pytest.mark.parametrize(
    ("first", "second", "tcp1", "tcp2", "options"),
    [p[1:] for p in KEY_PAIRS],
    ids=[p[0] for p in KEY_PAIRS],
)
def test_cache_key_separates(qname, first, second, tcp1, tcp2, options) -> None:
    qtype = "TXT" if qname.startswith("big") else "A"
    snap = _fresh(**options)
    _wire(snap, make_query(qname, qtype, **first), tcp1)
    got = _wire(snap, make_query(qname, qtype, **second), tcp2)
    want = _wire(_fresh(**options), make_query(qname, qtype, **second), tcp2)
    assert _summary(got) == _summary(want)


def test_cache_key_separates_type_and_class() -> None:
    snap = _fresh(version="v1")
    answers = {}
    for qtype, rdclass in [("A", "IN"), ("TXT", "IN"), ("A", "ANY"), ("TXT", "CH")]:
        msg = dns.message.from_wire(_wire(snap, make_query("version.bind.", qtype, rdclass)))
        answers[(qtype, rdclass)] = (msg.rcode(), msg.question[0].rdtype, msg.question[0].rdclass)
    assert answers[("TXT", "CH")][0] == dns.rcode.NOERROR
    assert answers[("TXT", "IN")][0] == dns.rcode.REFUSED
    assert len({v[1:] for v in answers.values()}) == 4


def test_trailing_junk_after_a_cached_question_is_formerr() -> None:
    snap = _fresh()
    query = make_query("www.cache.test.", "A").to_wire()
    _wire_ok = exchange(snap, query)
    assert _wire_ok is not None and len(snap.cache) == 1
    out = exchange(snap, query + b"\x00junk")
    assert out is not None
    assert out[3] & 0xF == dns.rcode.FORMERR


def _with_option(query: bytes, code: int, data: bytes) -> bytes:
    """*query* (whose last record is an empty OPT) with one option added."""
    option = struct.pack("!HH", code, len(data)) + data
    return query[:-2] + len(option).to_bytes(2, "big") + option


def test_malformed_edns_option_does_not_poison_the_cache() -> None:
    # Regression: an OPT whose option the full parser refuses (ECS with address
    # family 9) has the same cache key as a good query; its FORMERR, rendered
    # without a question, was cached and then "patched" into garbage for every
    # later good query of that name.
    snap = _fresh()
    good = make_query("www.cache.test.", "A", edns=0).to_wire()
    bad = _with_option(good, 8, b"\x00\x09\x00\x00")
    out = exchange(snap, bad)
    assert out is not None and out[3] & 0xF == dns.rcode.FORMERR
    after = exchange(snap, good)
    assert after is not None
    msg = dns.message.from_wire(after)  # must be a well-formed response
    assert msg.rcode() == dns.rcode.NOERROR
    assert len(msg.answer) == 1


@pytest.mark.parametrize(
    ("code", "data"),
    [(8, b"\x00\x09\x00\x00"), (8, b""), (10, b"\x01\x02\x03"), (10, b"\x01" * 41)],
    ids=["ecs-bad-family", "ecs-empty", "cookie-short", "cookie-long"],
)
def test_cache_hit_never_answers_a_malformed_option(code: int, data: bytes) -> None:
    # Regression: with the good question cached, the same question carrying an
    # option the full parser refuses got the cached NOERROR instead of FORMERR.
    snap = _fresh()
    good = make_query("www.cache.test.", "A", edns=0).to_wire()
    assert exchange(snap, good) is not None and len(snap.cache) == 1
    out = exchange(snap, _with_option(good, code, data))
    assert out is not None and out[3] & 0xF == dns.rcode.FORMERR


def test_a_cache_hit_is_the_same_as_a_fresh_answer_for_every_outcome() -> None:
    questions = [
        ("www.cache.test.", "A"),
        ("www.cache.test.", "AAAA"),
        ("nope.cache.test.", "A"),
        ("www.example.org.", "A"),
        ("big.cache.test.", "TXT"),
    ]
    for qname, qtype in questions:
        for kw in ({}, {"edns": 0}, {"edns": 0, "do": True}):
            snap = _fresh()
            miss = _wire(snap, make_query(qname, qtype, **kw))
            hit = _wire(snap, make_query(qname.upper(), qtype, **kw))
            fresh = _wire(_fresh(), make_query(qname.upper(), qtype, **kw))
            assert _summary(hit) == _summary(fresh), (qname, qtype, kw)
            assert len(miss) == len(hit)


@pytest.mark.parametrize("bound", [2, 5])
def test_a_full_cache_evicts_one_entry_not_all(bound: int) -> None:
    """Regression: a full cache was cleared at once (5 ms per 100,000 entries on the reactor)."""
    snap = _fresh(answer_cache_entries=bound)
    for i in range(bound + 3):
        _wire(snap, make_query(f"n{i}.cache.test.", "A"))
        assert len(snap.cache) == min(i + 1, bound)


def test_a_popular_answer_survives_a_flood_of_new_names() -> None:
    snap = _fresh(answer_cache_entries=4)
    www = make_query("www.cache.test.", "A")
    _wire(snap, www)
    for i in range(50):  # random-subdomain flood, www asked now and then
        _wire(snap, make_query(f"flood{i}.cache.test.", "A"))
        if i % 3 == 0:
            _wire(snap, www)
        assert len(snap.cache) <= 4
    keys = [k for k in snap.cache if k[1] == b"\x03www\x05cache\x04test\x00"]
    assert len(keys) == 1, list(snap.cache)


def test_every_distinct_payload_size_was_a_new_cache_entry() -> None:
    """Regression: each EDNS payload size asked was its own entry and its own
    assembly.  An answer that fits a size is now one entry for every size it
    fits; smaller sizes (truncated or with fewer records) are still exact."""
    snap = _fresh()
    small = make_query("www.cache.test.", "A", edns=0, payload=512)
    size = len(_wire(_fresh(answer_cache_entries=0), small))
    for payload in range(512, 1233, 10):
        _wire(snap, make_query("www.cache.test.", "A", edns=0, payload=payload, qid=payload))
    assert size < 512 and len(snap.cache) == 1, list(snap.cache)
    # The 20 TXT records (~3,100 bytes) fit no UDP size: the answer at the
    # largest size is a truncated one (TC, no answer), and it fits every size.
    for payload in range(512, 1233, 60):
        q = make_query("big.cache.test.", "TXT", edns=0, payload=payload, qid=payload)
        cached = _wire(snap, q)
        assert _summary(cached) == _summary(_wire(_fresh(answer_cache_entries=0), q)), payload
        assert dns.message.from_wire(cached).flags & dns.flags.TC
    assert len(snap.cache) == 2


@pytest.mark.parametrize("tcp", [False, True])
def test_a_shared_answer_is_the_fresh_answer_at_every_size(tcp: bool) -> None:
    """Sizes from 512 up, in both orders: what the cache gives equals a fresh answer."""
    # mail: an answer of ~300 bytes whose optional additional addresses
    # (~1,000 bytes) fit in part at sizes between: dropped whole, greedily.
    zone = ZONE + "".join(
        f"mail MX {i} mx{i}\n" + "".join(f"mx{i} AAAA 2001:db8::{i}:{j}\n" for j in range(3))
        for i in range(12)
    )
    names = ["www.cache.test.", "big.cache.test.", "nx.cache.test.", "cache.test."]
    names.append("mail.cache.test.")
    for order in (range(512, 1300, 37), range(1300, 511, -37)):
        snap = snapshot_from_texts({"cache.test.": zone})
        fresh_snap = snapshot_from_texts({"cache.test.": zone}, answer_cache_entries=0)
        for payload in order:
            for name in names:
                for qtype in ("A", "TXT", "NS", "SOA", "MX"):
                    q = make_query(name, qtype, edns=0, payload=payload, qid=payload)
                    fresh = _wire(fresh_snap, q, tcp)
                    assert _summary(_wire(snap, q, tcp)) == _summary(fresh), (name, qtype)
