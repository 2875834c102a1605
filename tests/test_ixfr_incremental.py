"""An IXFR applied in place (``changeset.apply_incremental`` + ``compiled.recompile``).

For random changesets on generated zones, the version applied in place must
equal the full ``changeset.apply`` of the same changeset (content and
serial), its compiled form must equal a full ``compile_version`` of it node
for node, its compiled answers must equal the engine's over the differential
questions, and the version it was applied to, compiled form included, must
be left exactly as it was.  Changesets the in-place path leaves to ``apply``
must say so (None), never answer differently.
"""

from __future__ import annotations

import random

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authd import changeset, compiled
from authd.changeset import RR, Changeset
from authd.namedict import NameDict
from authd.zone import ZoneVersion
from harness.zonegen import generate
from tests.test_compiled import Ask, _snapshot, _wire, check_same
from tests.zonekit import zone_from_text

ORIGIN = dns.name.from_text("gen.test.")
IN = dns.rdataclass.IN
_ZONES: dict[int, ZoneVersion] = {}


def _zone(seed: int) -> ZoneVersion:
    version = _ZONES.get(seed)
    if version is None:
        text = "\n".join(generate(600, "gen.test.", seed)) + "\n"
        version = _ZONES[seed] = zone_from_text(text, "gen.test.")
    return version


def _rd(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, rdtype, text, origin=ORIGIN, relativize=False)


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text, ORIGIN)


def _with_data(version: ZoneVersion, rdtype: int) -> list[dns.name.Name]:
    return sorted(n for n, node in version.nodes.items() if rdtype in node)


# One edit: the records it removes and adds, made from the zone and a random source.
def _edit(version: ZoneVersion, kind: str, r: random.Random) -> tuple[list[RR], list[RR]]:
    A, AAAA, MX = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX
    addr = f"192.0.2.{r.randrange(1, 250)}"
    if kind in ("readdress", "glue", "mx-target", "ns-target"):
        if kind == "readdress":
            name = r.choice(_with_data(version, A))
        elif kind == "glue":  # an address below a cut
            name = r.choice([n for n in _with_data(version, A) if len(n) > len(ORIGIN) + 1])
        elif kind == "mx-target":
            name = _name(r.choice(["mail", "mail1", "mail2", "mail3"]))
        else:
            name = _name(r.choice(["ns1", "ns2"]))
        rrset = version.nodes[name][A]
        old = r.choice(list(rrset))
        return [RR(name, rrset.ttl, old)], [RR(name, rrset.ttl, _rd("A", addr))]
    if kind == "add-aaaa":  # to a target others copy, often
        name = _name(r.choice(["mail", "mail1", "ns1", "www", "lb", f"new{r.randrange(9)}"]))
        node = version.nodes.get(name, {})
        ttl = node[AAAA].ttl if AAAA in node else 3600
        return [], [RR(name, ttl, _rd("AAAA", f"2001:db8::{r.randrange(1, 9999):x}"))]
    if kind == "new-name":  # empty non-terminals above it, maybe in another shard
        labels = [f"n{r.randrange(50)}" for _ in range(r.randrange(1, 4))]
        name = dns.name.Name(tuple(x.encode() for x in labels) + ORIGIN.labels)
        node = version.nodes.get(name, {})
        ttl = node[A].ttl if A in node else 600
        return [], [RR(name, ttl, _rd("A", addr))]
    if kind == "ttl":  # every record of an RRset again, at a new TTL
        name = r.choice(_with_data(version, A))
        rrset = version.nodes[name][A]
        return [RR(name, rrset.ttl, rd) for rd in rrset], [RR(name, 77, rd) for rd in rrset]
    if kind == "mx":  # an MX repointed: the additional section follows
        name = r.choice(_with_data(version, MX))
        rrset = version.nodes[name][MX]
        old = next(iter(rrset))
        new = _rd("MX", f"10 {r.choice(['mail', 'mail2', 'www', 'lb', 'nothere'])}")
        return [RR(name, rrset.ttl, old)], [RR(name, rrset.ttl, new)]
    if kind == "txt":
        name = _name(r.choice(["www", "lb", "docs", f"t{r.randrange(5)}.www"]))
        node = version.nodes.get(name, {})
        txt = dns.rdatatype.TXT
        ttl = node[txt].ttl if txt in node else 300
        return [], [RR(name, ttl, _rd("TXT", f'"t{r.randrange(99)}"'))]
    # Left to the full apply (None): structure changes and checks.
    if kind == "delegate":
        name = _name(f"cut{r.randrange(5)}")
        return [], [RR(name, 3600, _rd("NS", "ns.elsewhere.example."))]
    if kind == "wildcard":
        return [], [RR(_name(f"*.w{r.randrange(3)}"), 300, _rd("A", addr))]
    if kind == "dname":
        return [], [RR(_name("moved"), 300, _rd("DNAME", "elsewhere.example."))]
    if kind == "empty":  # a name left with no data
        name = r.choice(
            [n for n in _with_data(version, dns.rdatatype.TXT) if len(version.nodes[n]) == 1]
        )
        rrset = version.nodes[name][dns.rdatatype.TXT]
        return [RR(name, rrset.ttl, rd) for rd in rrset], []
    assert kind == "cname-conflict"
    return [], [RR(_name("www"), 300, _rd("CNAME", "lb"))]


EASY = ["readdress", "glue", "mx-target", "ns-target", "add-aaaa", "new-name", "ttl", "mx", "txt"]
HARD = ["delegate", "wildcard", "dname", "empty", "cname-conflict"]


def _changeset(version: ZoneVersion, kinds: list[str], seed: int) -> Changeset:
    r = random.Random(seed)
    removed: dict[tuple[dns.name.Name, dns.rdata.Rdata], RR] = {}
    added: dict[tuple[dns.name.Name, dns.rdata.Rdata], RR] = {}
    for kind in kinds:
        gone, new = _edit(version, kind, r)
        for rr in gone:
            if (rr.name, rr.rdata) not in added:
                removed[(rr.name, rr.rdata)] = rr
        for rr in new:
            added[(rr.name, rr.rdata)] = rr
    soa = version.soa
    new_soa = soa[0].replace(serial=version.serial + 1)
    return Changeset(
        RR(version.origin, soa.ttl, soa[0]),
        RR(version.origin, soa.ttl, new_soa),
        tuple(removed.values()),
        tuple(added.values()),
    )


def _nodes(cz: compiled.CompiledZone) -> dict[bytes, compiled.NodeWire]:
    return {k: v for shard in cz.shards for k, v in shard.items()}


def _frozen(version: ZoneVersion) -> tuple[object, ...]:
    """What must not change in *version*: its nodes and compiled shards, by identity and value."""
    assert version.wire is not None
    shards = [dict(s) for s in version.wire.shards]
    nodes = {n: (id(node), dict(node)) for n, node in version.nodes.items()}
    return version.serial, shards, nodes, version.wire.negative


_QTYPES = ("A", "AAAA", "MX", "TXT", "NS", "SRV", "CNAME", "SOA")


def _questions(version: ZoneVersion, touched: tuple[dns.name.Name, ...], count: int) -> list[Ask]:
    """The differential questions of the touched names, their parents and
    children (closest encloser, wildcard, NXDOMAIN), and of *count* other names."""
    r = random.Random(len(version.nodes))
    names = sorted(version.nodes)
    picked = [*touched, *(n.parent() for n in touched if n != ORIGIN), *r.sample(names, count)]
    asks = []
    for name in picked:
        below = dns.name.Name((b"zz",) + name.labels)
        for qname in (name, below):
            for qtype in _QTYPES:
                asks.append(Ask(qname.to_text(), qtype))
            asks.append(Ask(qname.to_text(), "A", payload=512))
            asks.append(Ask(qname.to_text(), "MX", edns=False))
            asks.append(Ask(qname.to_text(), "A", tcp=True))
    return asks


def _check(version: ZoneVersion, cs: Changeset, asks: int) -> bool:
    """Apply *cs* both ways and compare; True when the in-place path took it."""
    before = _frozen(version)
    try:
        full = changeset.apply(version, cs)
    except ValueError:
        with pytest.raises(ValueError):
            changeset.apply_incremental(version, cs)
        return False
    inc = changeset.apply_incremental(version, cs)
    assert _frozen(version) == before  # the old version and its compiled form untouched
    if (
        full.version is None
        or full.errors
        or any(f.severity.name == "WARNING" for f in full.findings)
    ):
        assert inc is None, full.findings
        return False
    if inc is None:
        return False
    new = inc.version
    assert new.serial == full.version.serial
    assert new.same_content(full.version)
    assert new.record_count == full.version.record_count
    assert new.wire is not None and full.version.wire is not None
    # Node for node what a full compile makes (referrers aside: their order differs).
    assert _nodes(new.wire) == _nodes(compiled.compile_version(new))
    assert _nodes(new.wire) == _nodes(full.version.wire)
    assert new.wire.negative == full.version.wire.negative
    ref_new = {k: set(v) for t in new.wire.referrers for k, v in t.items()}
    ref_full = {k: set(v) for t in full.version.wire.referrers for k, v in t.items()}
    assert ref_new == ref_full
    # The compiled answers equal the engine's: touched names and a sample of the rest.
    snap = _snapshot({new.origin: new})
    for ask in _questions(new, inc.touched, asks):
        check_same(snap, _wire(ask), ask.tcp)
    diff = changeset.diff_owners(version, new, inc.touched)
    assert set(diff.removed) == set(changeset.diff(version, full.version).removed)
    assert set(diff.added) == set(changeset.diff(version, full.version).added)
    return True


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(1, 3),
    kinds=st.lists(st.sampled_from(EASY), min_size=1, max_size=5),
    rseed=st.integers(0, 10_000),
)
def test_easy_changesets_apply_in_place_as_a_full_apply(
    seed: int, kinds: list[str], rseed: int
) -> None:
    version = _zone(seed)
    cs = _changeset(version, kinds, rseed)
    _check(version, cs, 60)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(1, 3),
    kinds=st.lists(st.sampled_from(EASY + HARD), min_size=1, max_size=4),
    rseed=st.integers(0, 10_000),
)
def test_any_changeset_in_place_or_declined(seed: int, kinds: list[str], rseed: int) -> None:
    version = _zone(seed)
    cs = _changeset(version, kinds, rseed)
    took = _check(version, cs, 20)
    if any(k in HARD for k in kinds):
        assert not took


@pytest.mark.parametrize("kind", EASY)
def test_each_easy_kind_is_taken_in_place(kind: str) -> None:
    version = _zone(1)
    took = [_check(version, _changeset(version, [kind], s), 30) for s in range(4)]
    assert any(took), kind


@pytest.mark.parametrize("kind", HARD)
def test_each_hard_kind_is_left_to_the_full_apply(kind: str) -> None:
    version = _zone(2)
    cs = _changeset(version, [kind], 5)
    assert changeset.apply_incremental(version, cs) is None


def test_chained_changesets_and_shared_shards() -> None:
    """Several steps in a row on a big zone (sharded tables): each shares the
    shards it did not change with the one before, which stays intact."""
    text = "\n".join(generate(30_000, "gen.test.", 7)) + "\n"
    version = zone_from_text(text, "gen.test.")
    assert isinstance(version.nodes, NameDict) and version.wire is not None
    assert len(version.wire.shards) > 1
    for step in range(3):
        cs = _changeset(version, ["readdress", "mx-target", "new-name"], step)
        before = _frozen(version)
        inc = changeset.apply_incremental(version, cs)
        assert inc is not None
        assert _frozen(version) == before
        new = inc.version
        assert new.wire is not None
        shared = sum(a is b for a, b in zip(version.wire.shards, new.wire.shards, strict=True))
        assert shared >= len(new.wire.shards) - 2 * len(inc.touched) - 8
        assert isinstance(new.nodes, NameDict)
        nshared = sum(
            a is b
            for a, b in zip(version.nodes.shard_tables(), new.nodes.shard_tables(), strict=True)
        )
        assert nshared >= len(new.nodes.shard_tables()) - len(inc.touched)
        full = changeset.apply(version, cs).version
        assert full is not None and new.same_content(full)
        snap = _snapshot({new.origin: new})
        for n in inc.touched:
            for t in ("A", "MX", "AAAA"):
                check_same(snap, _wire(Ask(n.to_text(), t)))
        check_same(snap, _wire(Ask("gen.test.", "MX")))
        version = new


def test_a_changeset_that_does_not_fit_raises() -> None:
    version = _zone(1)
    soa = version.soa
    stray = RR(_name("www"), 3600, _rd("A", "203.0.113.99"))
    cs = Changeset(
        RR(version.origin, soa.ttl, soa[0]),
        RR(version.origin, soa.ttl, soa[0].replace(serial=version.serial + 1)),
        (stray,),
        (),
    )
    with pytest.raises(ValueError, match="not there"):
        changeset.apply_incremental(version, cs)
    wrong = Changeset(
        RR(version.origin, soa.ttl, soa[0].replace(serial=version.serial + 5)),
        cs.new_soa,
        (),
        (),
    )
    with pytest.raises(ValueError, match="starts at serial"):
        changeset.apply_incremental(version, wrong)
