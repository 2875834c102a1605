"""The question generators of ``bench.qps --mix`` ask what they claim to ask.

The benchmarks do not run in CI, but the queries they send are data we can
check here, against authd's own core: every ``zonegen.answerable`` question
gets an authoritative answer of its own type, every flood name is new and
NXDOMAIN, and the realistic mix has its long tail (about 40 % distinct).
"""

from __future__ import annotations

import dns.flags
import dns.rcode
import dns.rdatatype
from zonekit import ask, snapshot_from_texts

from bench.qps import REALISTIC_POOLS, REALISTIC_UNIFORM, REALISTIC_ZIPF, flood_questions
from harness import querymix, zonegen

ORIGIN = "gen.test."


def test_every_answerable_question_gets_data_of_its_type() -> None:
    lines = list(zonegen.generate(3000, ORIGIN, 7))
    snapshot = snapshot_from_texts({ORIGIN: "\n".join(lines) + "\n"})
    questions = zonegen.answerable(lines, ORIGIN)
    assert len(questions) > 1000
    assert len(set(questions)) == len(questions)
    for qname, qtype in questions:
        r = ask(snapshot, qname, qtype)
        assert r.rcode() == dns.rcode.NOERROR, (qname, qtype)
        assert r.flags & dns.flags.AA, (qname, qtype)
        assert r.answer[0].rdtype == dns.rdatatype.from_text(qtype), (qname, qtype)


def test_flood_names_are_all_new_and_nxdomain() -> None:
    text, _ = querymix.build_zone(querymix.ZONE_NAMES, 1)
    snapshot = snapshot_from_texts({querymix.ORIGIN: text}, answer_cache_entries=0)
    lines = flood_questions(5000, 1)
    names = [ln.split()[0] for ln in lines]
    assert len(set(names)) == len(names) == 5000
    for line in lines[:300]:
        qname, qtype = line.split()
        assert ask(snapshot, qname, qtype).rcode() == dns.rcode.NXDOMAIN
    assert flood_questions(50, 1) == lines[:50]  # seeded: the same file every time


def test_the_realistic_mix_has_its_long_tail() -> None:
    _, cat = querymix.build_zone(querymix.ZONE_NAMES, 1, **REALISTIC_POOLS)
    _, stats = querymix.build_queries(cat, 100_000, 1, REALISTIC_ZIPF, REALISTIC_UNIFORM)
    assert 0.35 <= stats["distinct_questions"] / 100_000 <= 0.45
    assert abs(stats["by_category"]["nxdomain"] - 0.15) < 0.01
