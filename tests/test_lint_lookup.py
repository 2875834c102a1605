"""One lookup for the server and the linter: ``authd.engine.locate``.

The linter runs the engine's walk on a grouped zone (``zone.GroupingIndex``);
the server runs it on the compiled version.  Over zones with delegations,
DNAMEs, wildcards and empty non-terminals, both must land every name in the
same place, and that place must agree with the answer ``engine.resolve``
gives.  Then: the linter really goes through the engine (a fix there reaches
``authd check``).
"""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

import authd.engine
from authd import lint
from authd.engine import Place, State, locate, resolve
from authd.zone import compile_zone, group_records, grouping_index
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("z.test.")
HEAD = "$ORIGIN z.test.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"

ZONES = {
    "plain": "www A 192.0.2.2\na.b.c TXT deep\n",
    "cuts": "kid NS ns.kid\nns.kid A 192.0.2.9\nx.y.kid2 NS ns.kid\nwww A 192.0.2.2\n",
    "dname": "old DNAME new.z.test.\nnew A 192.0.2.3\nx.new TXT x\n",
    "wildcards": "*.w A 192.0.2.4\nsub.w TXT exists\n*.a.b TXT deep\nc.a.b TXT c\n",
    "mixed": "kid NS ns.other.\n*.kid TXT hidden\nd DNAME kid.z.test.\n*.e TXT e\nf.g.h TXT f\n",
}
# Asked in every zone: the zone's names, their children, ENTs and misses.
NAMES = [
    "z.test.", "www.z.test.", "nope.z.test.", "a.z.test.", "b.c.z.test.", "c.z.test.",
    "a.b.c.z.test.", "x.a.b.c.z.test.", "kid.z.test.", "ns.kid.z.test.", "deep.ns.kid.z.test.",
    "kid2.z.test.", "y.kid2.z.test.", "x.y.kid2.z.test.", "q.x.y.kid2.z.test.", "old.z.test.",
    "a.old.z.test.", "new.z.test.", "x.new.z.test.", "w.z.test.", "any.w.z.test.",
    "sub.w.z.test.", "x.sub.w.z.test.", "a.b.z.test.", "q.a.b.z.test.", "c.a.b.z.test.",
    "d.z.test.", "q.d.z.test.", "e.z.test.", "q.e.z.test.", "g.h.z.test.", "h.z.test.",
    "WWW.Z.TEST.", "other.test.", "test.",
]  # fmt: skip


def _both(body: str):  # type: ignore[no-untyped-def]
    text = HEAD + body
    grouping = group_records(ORIGIN, parse_zone_text(text, ORIGIN, "z.zone"), "z.zone")
    version = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN, "z.zone"), "z.zone").version
    assert version is not None
    return grouping_index(grouping), version


@pytest.mark.parametrize("zone", ZONES)
def test_grouped_and_compiled_zones_land_every_name_alike(zone: str) -> None:
    index, version = _both(ZONES[zone])
    for text in NAMES:
        name = dns.name.from_text(text)
        grouped, compiled = locate(index, name), locate(version, name)
        assert (grouped.place, grouped.owner) == (compiled.place, compiled.owner), text
        # The same data: the grouping's types are the compiled node's.
        if compiled.node is not None:
            assert grouped.node is not None and set(grouped.node) == set(compiled.node), text


_STATES = {
    Place.NXDOMAIN: {State.NXDOMAIN},
    Place.DELEGATION: {State.DELEGATION},
    Place.EMPTY_NON_TERMINAL: {State.NODATA},
    Place.NODE: {State.ANSWER, State.NODATA},
    Place.WILDCARD: {State.ANSWER, State.NODATA},
    Place.DNAME: {State.ANSWER, State.NXDOMAIN, State.NODATA, State.DELEGATION},
}


@pytest.mark.parametrize("zone", ZONES)
def test_place_agrees_with_the_answer(zone: str) -> None:
    _, version = _both(ZONES[zone])
    for text in NAMES:
        name = dns.name.from_text(text)
        place = locate(version, name).place
        if place is Place.OUTSIDE:
            assert not name.is_subdomain(ORIGIN)
            continue
        answer = resolve(version, name, dns.rdatatype.TXT)
        assert answer.state in _STATES[place], (text, place, answer.state)


def test_ds_is_located_on_the_parent_side_of_a_cut() -> None:
    index, version = _both(ZONES["cuts"])
    kid = dns.name.from_text("kid.z.test.")
    for zone in (index, version):
        assert locate(zone, kid).place is Place.DELEGATION
        assert locate(zone, kid, dns.rdatatype.DS).place is Place.NODE


def test_zone_without_apex_data_still_has_an_apex() -> None:
    # A refused zone (no SOA, no NS) is still linted: its lookups must not fail.
    g = group_records(ORIGIN, parse_zone_text("$TTL 300\na.b TXT x\n", ORIGIN, "z"), "z")
    index = grouping_index(g)
    assert locate(index, ORIGIN).place is Place.EMPTY_NON_TERMINAL
    assert locate(index, dns.name.from_text("b.z.test.")).place is Place.EMPTY_NON_TERMINAL
    assert locate(index, dns.name.from_text("q.z.test.")).place is Place.NXDOMAIN


def test_linter_lookups_go_through_the_engines_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the linter had its own resolver, so a fix to the engine's
    walk never reached ``authd check``."""
    walked: list[dns.name.Name] = []
    walk = authd.engine._walk

    def spy(zone, qname, qtype):  # type: ignore[no-untyped-def]
        walked.append(qname)
        return walk(zone, qname, qtype)

    monkeypatch.setattr(authd.engine, "_walk", spy)
    text = HEAD + "@ MX 10 mail\nwww CNAME nowhere\n"
    found = lint.lint_records(ORIGIN, parse_zone_text(text, ORIGIN, "z.zone"), "z.zone")
    assert {"mx-target-no-address", "cname-target-missing"} <= {f.id for f in found.findings}
    assert dns.name.from_text("mail.z.test.") in walked
    assert dns.name.from_text("nowhere.z.test.") in walked
