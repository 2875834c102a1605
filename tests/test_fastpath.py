"""authd.fastpath: the lean path answers exactly what authd.query.handle answers,
exists only when nothing is decided per query, and caches on second sight."""

from __future__ import annotations

import dataclasses
import random

import dns.edns
import dns.message
import dns.name
import dns.rcode
import pytest

from authd import fastpath, wire
from authd.build import build_snapshot
from authd.config import config_from_dict
from authd.query import Request, Transport, handle
from authd.snapshot import Snapshot, with_fresh_caches
from tests.test_compiled import REPO, Ask, _asks, _outcome, _wire

ZONES = REPO / "zones"


def _config(**options: object) -> Snapshot:
    zones = [
        {"name": path.name.removesuffix(".zone"), "file": str(path)}
        for path in sorted(ZONES.glob("*.zone"))
    ]
    cfg = config_from_dict(
        {"listen": [{"address": "127.0.0.1", "port": 5300}], "options": options, "zones": zones},
        None,
        str(REPO),
    )
    snapshot, _ = build_snapshot(cfg, None, 0)
    return snapshot


@pytest.fixture(scope="module")
def served() -> Snapshot:
    return _config(nsid="authd-test")


def _questions(snapshot: Snapshot) -> list[tuple[bytes, bool]]:
    out = []
    for version in snapshot.views[0].zones.values():
        assert version is not None
        for ask in _asks(version):
            out.append((_wire(ask), ask.tcp))
    for origin in snapshot.views[0].zones:
        for i in range(10):  # never-seen names one label down: a flood's shape
            out.append((_wire(Ask(f"f{i}q.{origin}", "A")), False))
    out.append((_wire(Ask("not-ours.example.", "A")), False))  # REFUSED: the full path's
    return out


def _full(snapshot: Snapshot, data: bytes, tcp: bool) -> bytes:
    transport = Transport.TCP if tcp else Transport.UDP
    reply = handle(Request(data, "192.0.2.1", "127.0.0.1", transport), snapshot)
    (out,) = reply.messages
    return out


def test_fast_answers_are_the_full_paths(served: Snapshot) -> None:
    """Three passes (never seen, seen once: cached now, cached): every answer the
    lean path gives equals, section by section, the full path's on a snapshot
    of its own, and most questions get one."""
    random.seed(1)  # dnspython shuffles records in RRsets
    fast = served.fast
    assert fast is not None
    reference = with_fresh_caches(served)
    questions = _questions(served)
    answered = 0
    for _ in range(3):
        for data, tcp in questions:
            got = fast(data, not tcp)
            if got is None:
                continue
            answered += 1
            assert _outcome(got) == _outcome(_full(reference, data, tcp)), dns.message.from_wire(
                data
            ).question
    assert answered > 2 * len(questions), (answered, len(questions))


def test_with_room_an_answer_is_cached_at_once(served: Snapshot) -> None:
    snapshot = with_fresh_caches(served)
    fast = snapshot.fast
    assert fast is not None and snapshot.front is not None
    data = _wire(Ask("www.example.com.", "A"))
    first = fast(data, True)
    assert first is not None
    # The answer cache takes it; the front (exact bytes) when it is asked again.
    assert len(snapshot.cache) == 1 and len(snapshot.front) == 0
    assert fast(data, True) == first
    assert len(snapshot.cache) == 1 and len(snapshot.front) == 1
    assert fast(data, True) == first  # now from the front cache
    # Another ID and letter case: the same answer, patched, from the answer cache.
    other = dns.message.make_query("WWW.example.COM.", "A", use_edns=0, payload=1232, id=7)
    got = fast(other.to_wire(), True)
    assert got is not None
    assert dns.message.from_wire(got).id == 7
    assert dns.message.from_wire(got).question[0].name.labels[0] == b"WWW"


def _flood(fast: fastpath.FastAnswer, count: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = b""
    for _ in range(count):
        name = f"{rng.getrandbits(56):014x}.example.com."
        q = dns.message.make_query(name, "A", use_edns=0, payload=1232)
        got = fast(q.to_wire(), True)
        assert got is not None
        out = got
    return out


def test_a_full_cache_takes_a_question_on_its_second_sighting() -> None:
    """Once the answer cache is full, a flood of one-off names does not churn
    it (the doorkeeper keeps them out: at most one in eight shares a bucket),
    and a question asked twice still gets in."""
    snapshot = _config(answer_cache_entries=1000)
    fast = snapshot.fast
    assert fast is not None
    popular = [_wire(Ask(f"p{i}.example.com.", "A")) for i in range(1000)]
    for data in popular:
        assert fast(data, True) is not None  # room: cached at once
    assert len(snapshot.cache) == 1000
    last = _flood(fast, 5000, 7)
    assert dns.message.from_wire(last).rcode() == dns.rcode.NXDOMAIN
    kept = sum(1 for data in popular if _cache_has(snapshot, data))
    assert kept >= 900, kept  # without the doorkeeper 5,000 inserts evict them all
    again = _wire(Ask("twice.example.com.", "A"))
    fast(again, True)
    assert not _cache_has(snapshot, again)
    fast(again, True)
    assert _cache_has(snapshot, again)


def _cache_has(snapshot: Snapshot, data: bytes) -> bool:
    key = wire.question_key(data)
    assert key is not None
    ckey = (0, key.qname, key.qtype, key.qclass, key.flags, 1232, True, False, False, True, False)
    return ckey in snapshot.cache


def test_the_doorkeeper_is_zeroed_before_it_fills() -> None:
    """More one-off names than the doorkeeper's marks: it is zeroed, and still
    no more than about one in eight of them reaches a full cache."""
    snapshot = _config(answer_cache_entries=10)
    fast = snapshot.fast
    assert fast is not None
    _flood(fast, fastpath.DOORKEEPER_MARKS + 5000, 11)
    assert len(snapshot.cache) == 10
    # What a zeroing forgets: a name seen just before it is new again after.


@pytest.mark.parametrize(
    "options",
    [
        {"rate_limit": {}},
        {"query_log": True},
        {"metrics": {"address": "127.0.0.1", "port": 9999}},
    ],
    ids=["rrl", "query-log", "metrics"],
)
def test_no_fast_path_when_something_is_decided_per_query(options: dict[str, object]) -> None:
    assert _config(**options).fast is None


def test_no_fast_path_with_several_views_or_a_subnet_choice(served: Snapshot) -> None:
    two = dataclasses.replace(served, views=served.views + served.views)
    assert with_fresh_caches(two).fast is None
    assert _config().fast is not None


def test_queries_it_declines_go_the_full_way(served: Snapshot) -> None:
    fast = served.fast
    assert fast is not None
    cookie = dns.message.make_query(
        "www.example.com.",
        "A",
        use_edns=0,
        options=[dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345678")],
    )
    dnssec = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
    malformed = _wire(Ask("www.example.com.", "A"))[:-3]
    for data in (cookie.to_wire(), b"\x00" * 5):
        assert fast(data, True) is None
    # Junk is answered at once, as the full path answers it (FORMERR here).
    assert fast(malformed, True) == _full(served, malformed, False)
    # DO=1: the compiled zones decline it; the full path (the engine) answers.
    assert fast(dnssec.to_wire(), True) is None
    full = dns.message.from_wire(_full(served, dnssec.to_wire(), False))
    assert full.rcode() == dns.rcode.NOERROR and full.answer


def test_every_distinct_payload_size_was_a_new_cache_entry_on_the_lean_path(tmp_path) -> None:
    """As the full path (tests/test_answer_cache.py): an answer that fits a
    size at the largest is one entry for every size it fits; the answers at
    every size, seen twice (cached) or once, are the full path's."""
    from tests.test_answer_cache import ZONE as CACHE_ZONE

    path = tmp_path / "cache.test.zone"
    path.write_text(
        CACHE_ZONE
        + "".join(
            f"mail MX {i} mx{i}\n" + "".join(f"mx{i} AAAA 2001:db8::{i}:{j}\n" for j in range(3))
            for i in range(12)
        )
    )

    def built(**options: object) -> Snapshot:
        zones = [{"name": "cache.test", "file": str(path)}]
        listen = [{"address": "127.0.0.1", "port": 5300}]
        raw = {"listen": listen, "options": options, "zones": zones}
        return build_snapshot(config_from_dict(raw, None, str(tmp_path)), None, 0)[0]

    snapshot = built()
    reference = built(answer_cache_entries=0)
    fast = snapshot.fast
    assert fast is not None
    declined: set[str] = set()
    for payload in (*range(512, 1233, 40), None):
        for name, qtype in (("www", "A"), ("big", "TXT"), ("mail", "MX"), ("nx", "A")):
            q = dns.message.make_query(
                f"{name}.cache.test.", qtype, use_edns=payload is not None, payload=payload or 0
            )
            for _ in range(2):
                got = fast(q.to_wire(), True)
                if got is None:  # the full way (what the compiled zones do not answer)
                    declined.add(name)
                    continue
                assert _outcome(got) == _outcome(_full(reference, q.to_wire(), False)), (
                    name,
                    payload,
                )
    assert declined <= {"nx"}, declined
    sizes = {key[5] for key in snapshot.cache}
    www = [k for k in snapshot.cache if k[1].startswith(b"\x03www")]
    assert len(www) == 2, www  # one with EDNS, one without; every size shares it
    assert max(sizes) == 1232 and len(sizes) > 2  # mail's answer truncates below ~1,190


def test_junk_is_answered_on_the_lean_path_as_the_full_path_answers_it(served: Snapshot) -> None:
    """Junk (bench/junk.py's kinds) took the lean path's steps, then every step
    of the full one; it is answered from its layout at once, byte for byte the
    full path's reply, and what must be dropped still goes the full way."""
    from tests.test_malformed import BAD_EARLY

    fast = served.fast
    assert fast is not None
    for name, data in BAD_EARLY:
        for udp in (True, False):
            got = fast(data, udp)
            assert got is not None, name
            assert got == _full(served, data, not udp), name
    for dropped in (b"\x12\x34\x81\x00" + bytes(8), b"\x12\x34"):  # a response; no header
        assert fast(dropped, True) is None
