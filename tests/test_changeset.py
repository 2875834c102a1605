"""Changesets (authd/changeset.py): diff, condense and apply of zone versions.

The property tests draw random pairs of small zones and check that applying
``diff(a, b)`` to ``a`` gives ``b`` exactly (records and TTLs), and that a
condensed chain lands where the chain does.
"""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authd.changeset import RR, Changeset, apply, condense, diff, records
from authd.checks import Severity
from authd.zone import ZoneVersion, compile_zone
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("example.")
HEAD = """$ORIGIN example.
$TTL 300
@ SOA ns.other. hostmaster {serial} 7200 3600 1209600 300
@ NS ns.other.
"""


def zone(body: str, serial: int = 1, head: str = HEAD) -> ZoneVersion:
    text = head.format(serial=serial) + body
    result = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN), "<test>")
    assert not [f for f in result.findings if f.severity is Severity.ERROR], result.findings
    assert result.version is not None
    return result.version


def rrs(version: ZoneVersion) -> set[tuple[dns.name.Name, int, dns.rdata.Rdata]]:
    return {tuple(rr) for rr in records(version)}  # type: ignore[misc]


def text(rrs: tuple[RR, ...]) -> list[str]:
    return sorted(f"{rr.name} {rr.ttl} {rr.rdata.rdtype.name} {rr.rdata}" for rr in rrs)


def check_apply(a: ZoneVersion, b: ZoneVersion, cs: Changeset) -> None:
    result = apply(a, cs)
    assert result.version is not None, result.findings
    assert result.version.serial == b.serial
    assert rrs(result.version) == rrs(b)
    assert result.version.same_content(b)


# -- table: zone text before and after -> removed and added ------------------

CASES = [
    pytest.param("a A 192.0.2.1\n", "a A 192.0.2.1\n", [], [], id="unchanged"),
    pytest.param(
        "a A 192.0.2.1\n",
        "a A 192.0.2.1\na A 192.0.2.2\n",
        [],
        ["a.example. 300 A 192.0.2.2"],
        id="record-added-to-rrset",
    ),
    pytest.param(
        "a A 192.0.2.1\na A 192.0.2.2\n",
        "a A 192.0.2.2\n",
        ["a.example. 300 A 192.0.2.1"],
        [],
        id="record-removed-from-rrset",
    ),
    pytest.param(
        "a A 192.0.2.1\n",
        "a A 192.0.2.9\n",
        ["a.example. 300 A 192.0.2.1"],
        ["a.example. 300 A 192.0.2.9"],
        id="rdata-changed",
    ),
    pytest.param(
        "a A 192.0.2.1\na A 192.0.2.2\n",
        "a 60 A 192.0.2.1\na 60 A 192.0.2.2\n",
        ["a.example. 300 A 192.0.2.1", "a.example. 300 A 192.0.2.2"],
        ["a.example. 60 A 192.0.2.1", "a.example. 60 A 192.0.2.2"],
        id="ttl-change-is-remove-and-add-of-the-whole-rrset",
    ),
    pytest.param(
        "a A 192.0.2.1\n",
        "a A 192.0.2.1\nb.c.d TXT hello\n",
        [],
        ['b.c.d.example. 300 TXT "hello"'],
        id="new-name-below-new-ents",
    ),
    pytest.param(
        "a A 192.0.2.1\nb.c.d TXT hello\n",
        "a A 192.0.2.1\n",
        ['b.c.d.example. 300 TXT "hello"'],
        [],
        id="name-removed-with-its-ents",
    ),
    pytest.param(
        "a A 192.0.2.1\na TXT x\n",
        "a A 192.0.2.1\n",
        ['a.example. 300 TXT "x"'],
        [],
        id="rrset-removed-node-kept",
    ),
    pytest.param(
        "",
        "@ MX 10 mail.other.\n",
        [],
        ["example. 300 MX 10 mail.other."],
        id="apex-rrset-added",
    ),
    pytest.param(
        "a CNAME target.other.\n",
        "A CNAME TARGET.other.\n",
        [],
        [],
        id="letter-case-is-not-a-change",
    ),
    pytest.param(
        "a AAAA 2001:db8::1\n",
        "a AAAA 2001:DB8:0:0::1\n",
        [],
        [],
        id="same-address-written-another-way",
    ),
    pytest.param(
        "sub NS ns.sub\nns.sub A 192.0.2.53\n",
        "sub NS ns.sub\nns.sub A 192.0.2.54\n",
        ["ns.sub.example. 300 A 192.0.2.53"],
        ["ns.sub.example. 300 A 192.0.2.54"],
        id="glue-changed",
    ),
]


@pytest.mark.parametrize(("before", "after", "removed", "added"), CASES)
def test_diff_table(before: str, after: str, removed: list[str], added: list[str]) -> None:
    a, b = zone(before, 1), zone(after, 2)
    cs = diff(a, b)
    assert text(cs.removed) == sorted(removed)
    assert text(cs.added) == sorted(added)
    assert (cs.serial_from, cs.serial_to) == (1, 2)
    check_apply(a, b, cs)


def test_soa_is_never_in_the_lists() -> None:
    a = zone("a A 192.0.2.1\n", 1)
    b = zone("a A 192.0.2.1\n", 2, head=HEAD.replace("7200", "3600"))
    cs = diff(a, b)
    assert cs.removed == () and cs.added == ()
    assert cs.old_soa == RR(ORIGIN, 300, a.soa[0])
    assert cs.new_soa == RR(ORIGIN, 300, b.soa[0])
    assert len(cs) == 2
    check_apply(a, b, cs)


def test_soa_ttl_change_travels_in_the_soa() -> None:
    a = zone("", 1)
    b = zone("", 2, head=HEAD.replace("@ SOA", "@ 60 SOA"))
    cs = diff(a, b)
    assert (cs.old_soa.ttl, cs.new_soa.ttl) == (300, 60)
    assert cs.removed == () and cs.added == ()
    check_apply(a, b, cs)


def test_diff_refuses_other_origin() -> None:
    a = zone("", 1)
    other = dns.name.from_text("example.net.")
    text_ = "@ 300 SOA ns.other. h 1 1 1 1 1\n@ 300 NS ns.other.\n"
    b = compile_zone(other, parse_zone_text(text_, other), "<t>").version
    assert b is not None
    with pytest.raises(ValueError):
        diff(a, b)


def test_shared_nodes_are_skipped_by_identity() -> None:
    # A version built from another by replacing one node shares every other
    # node object; diff must not look inside them (a poisoned RRset would raise).
    a = zone("a A 192.0.2.1\nb A 192.0.2.2\n", 1)

    class Poison(dict):  # type: ignore[type-arg]
        def items(self):  # type: ignore[no-untyped-def]
            raise AssertionError("looked inside a shared node")

    b_name = dns.name.from_text("b.example.")
    nodes = dict(a.nodes)
    nodes[b_name] = Poison(a.nodes[b_name])
    shared = dataclasses.replace(a, nodes=nodes)
    cs = diff(shared, shared)
    assert cs.removed == () and cs.added == ()


def test_node_order_changes_are_handled() -> None:
    # Names added, removed and moved around, so the side-by-side walk falls out of step.
    before = "".join(f"h{i} A 192.0.2.{i}\n" for i in range(20))
    order = [*range(10, 20), *range(0, 5), *range(7, 10)]  # h5, h6 gone; halves swapped
    after = "".join(f"h{i} A 192.0.2.{i}\n" for i in order) + "new A 192.0.2.99\n"
    a, b = zone(before, 1), zone(after, 2)
    cs = diff(a, b)
    assert text(cs.removed) == ["h5.example. 300 A 192.0.2.5", "h6.example. 300 A 192.0.2.6"]
    assert text(cs.added) == ["new.example. 300 A 192.0.2.99"]
    check_apply(a, b, cs)


def test_large_zone_one_change() -> None:
    body = "".join(f"host{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(5000))
    a = zone(body, 10)
    b = zone(body.replace("host2500 A", "host2500 TXT changed\nhost2500 A"), 11)
    cs = diff(a, b)
    assert cs.removed == ()
    assert text(cs.added) == ['host2500.example. 300 TXT "changed"']


# -- apply refuses what does not fit ------------------------------------------


def test_apply_refuses_wrong_serial() -> None:
    a, b, c = zone("", 1), zone("a A 192.0.2.1\n", 2), zone("a A 192.0.2.1\n", 3)
    with pytest.raises(ValueError, match="serial"):
        apply(a, diff(b, c))


def test_apply_refuses_to_remove_a_missing_record() -> None:
    a = zone("a A 192.0.2.1\n", 1)
    b = zone("", 2)
    cs = diff(a, b)
    stranger = zone("b A 192.0.2.1\n", 1)
    with pytest.raises(ValueError, match="not there"):
        apply(stranger, cs)


# -- condense -----------------------------------------------------------------


def test_condense_cancels_add_then_remove_and_ttl_round_trip() -> None:
    v1 = zone("a A 192.0.2.1\nb A 192.0.2.2\n", 1)
    v2 = zone("a 60 A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.3\n", 2)
    v3 = zone("a A 192.0.2.1\nb A 192.0.2.2\n", 3)
    cs = condense([diff(v1, v2), diff(v2, v3)])
    assert (cs.serial_from, cs.serial_to) == (1, 3)
    assert cs.removed == () and cs.added == ()
    check_apply(v1, v3, cs)


def test_condense_refuses_broken_chain() -> None:
    v1, v2, v3 = zone("", 1), zone("a A 192.0.2.1\n", 2), zone("", 3)
    with pytest.raises(ValueError, match="broken chain"):
        condense([diff(v1, v2), diff(v1, v3)])
    with pytest.raises(ValueError):
        condense([])


# -- properties -----------------------------------------------------------------

NAMES = ["@", "a", "b", "c.b", "d.c.b", "*.a", "sub", "x.sub", "Mixed"]
RDATA = {
    "A": ["192.0.2.1", "192.0.2.2", "198.51.100.7"],
    "AAAA": ["2001:db8::1", "2001:db8::2"],
    "TXT": ['"one"', '"two" "three"', '"v=spf1 -all"'],
    "MX": ["10 mail.other.", "20 mail2.other."],
    "NS": ["ns1.other.", "ns2.other."],
}


@st.composite
def zone_bodies(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for name in NAMES:
        for rdtype, values in RDATA.items():
            if rdtype == "NS" and name not in ("sub", "@"):
                continue
            chosen = draw(st.lists(st.sampled_from(values), unique=True, max_size=len(values)))
            ttl = draw(st.sampled_from([60, 300, 3600]))
            lines.extend(f"{name} {ttl} {rdtype} {value}\n" for value in chosen)
    return "".join(lines)


SERIALS = st.sampled_from([1, 2**31 - 1, 2**32 - 2, 2**32 - 1])


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(zone_bodies(), zone_bodies(), SERIALS)
def test_apply_diff_gives_the_new_zone(before: str, after: str, serial: int) -> None:
    a = zone(before, serial)
    b = zone(after, (serial + 1) % 2**32)  # 4294967295 -> 0 wraps as RFC 1982 allows
    cs = diff(a, b)
    assert not set(cs.removed) & set(cs.added)
    assert len(set(cs.removed)) == len(cs.removed) and len(set(cs.added)) == len(cs.added)
    check_apply(a, b, cs)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(zone_bodies(), min_size=2, max_size=5))
def test_condensed_chain_lands_where_the_chain_does(bodies: list[str]) -> None:
    # Serials 4294967294, 4294967295, 0, 1...: the chain crosses the wrap.
    versions = [zone(body, (4294967294 + i) % 2**32) for i, body in enumerate(bodies)]
    chain = [diff(x, y) for x, y in zip(versions, versions[1:], strict=False)]
    cs = condense(chain)
    check_apply(versions[0], versions[-1], cs)
    direct = diff(versions[0], versions[-1])
    assert set(cs.removed) == set(direct.removed)
    assert set(cs.added) == set(direct.added)


def test_records_yields_the_soa_first_and_every_record_once() -> None:
    v = zone("a A 192.0.2.1\na A 192.0.2.2\nb.c TXT x\n", 5)
    out = list(records(v))
    assert out[0].rdata.rdtype == dns.rdatatype.SOA
    assert len(out) == len(set(out)) == v.record_count


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("www A 192.0.2.1", "www A 192.0.2.1", True),
        ("www A 192.0.2.1", "www A 192.0.2.2", False),
        ("www A 192.0.2.1", "www AAAA 2001:db8::1", False),
        ("www A 192.0.2.1", "www 600 A 192.0.2.1", False),
        ("www A 192.0.2.1\nwww A 192.0.2.2", "www A 192.0.2.2\nwww A 192.0.2.1", True),
        ("www A 192.0.2.1\nwww A 192.0.2.2", "www A 192.0.2.1", False),
        ("mx MX 10 mail.other.", "mx MX 10 mail.other.", True),
        ("mx MX 10 mail.other.", "mx MX 20 mail.other.", False),
        ("mx MX 10 mail.other.", "mx MX 10 mail2.other.", False),
        # Letter case: the fields differ, dnspython's canonical form decides.
        ("mx MX 10 mail.other.", "mx MX 10 MAIL.other.", True),
        ('t TXT "a" "b"', 't TXT "a" "b"', True),
        ('t TXT "a" "b"', 't TXT "ab"', False),
        ("c CNAME www.other.", "c CNAME www2.other.", False),
    ],
)
def test_same_content_compares_records_as_dns_does(a: str, b: str, same: bool) -> None:
    """``same_content`` takes a fast path through rdata fields; its verdict
    must be the one dnspython's wire-form comparison gives."""
    old, new = zone(a + "\n"), zone(b + "\n", serial=2)
    assert old.same_content(new) is same
    assert new.same_content(old) is same
    assert (not diff(old, new).removed and not diff(old, new).added) is same
