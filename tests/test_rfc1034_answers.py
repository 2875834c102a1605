"""RFC 1034 section 4.3.2: the answer algorithm of an authoritative server.

Zone text + question -> rcode, header flags and the three sections as
dnspython text, through the pure front door (``authd.query.handle``).  The
parent zone ``example.`` and its child ``child.example.`` are loaded together
so the closest enclosing zone answers; ``broken.example.`` failed to load.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdatatype
import pytest
from zonekit import ask, check, snapshot_from_texts

from authd import engine

PARENT = """
$ORIGIN example.
$TTL 3600
@        SOA   ns1 hostmaster 1 7200 3600 1209600 300
@        NS    ns1
@        NS    ns2
@        MX    10 mail
ns1      A     192.0.2.1
ns1      AAAA  2001:db8::1
ns2      A     192.0.2.2
www      A     192.0.2.80
www      TXT   "web"
mail     A     192.0.2.25
a.b.c    A     192.0.2.90
deleg    NS    ns.deleg
deleg    NS    ns.other.net.
ns.deleg A     192.0.2.100
child    NS    ns.child
child    DS    12345 13 2 76F42A8AD06DE5271B480990ACD28B41AA2A7B516F154F558728115215C56769
ns.child A     192.0.2.110
alias    CNAME alias2
alias2   CNAME www
dangling CNAME nothere
out      CNAME www.example.net.
todeleg  CNAME host.deleg
tochild  CNAME www.child
loop1    CNAME loop2
loop2    CNAME loop1
self     CNAME self
"""

CHILD = """
$ORIGIN child.example.
$TTL 600
@   SOA  ns hostmaster 7 7200 3600 1209600 60
@   NS   ns
ns  A    192.0.2.110
www A    192.0.2.111
"""

SOA = "example. 300 IN SOA ns1.example. hostmaster.example. 1 7200 3600 1209600 300"
CHILD_SOA = (
    "child.example. 60 IN SOA ns.child.example. hostmaster.child.example. 7 7200 3600 1209600 60"
)
DS = (
    "child.example. 3600 IN DS 12345 13 2 "
    "76f42a8ad06de5271b480990acd28b41aa2a7b516f154f558728115215c56769"
)
WWW_A = "www.example. 3600 IN A 192.0.2.80"
# The parent is unsigned: its DS is not served in referrals, DO or not (as
# NSD, Knot and BIND: no DNSSEC processing in an unsigned zone).
CHILD_REFERRAL_DO = """
child.example. 3600 IN NS ns.child.example.
"""
DELEG_NS = """
deleg.example. 3600 IN NS ns.deleg.example.
deleg.example. 3600 IN NS ns.other.net.
"""


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    rcode: str
    flags: str
    answer: str = ""
    authority: str = ""
    additional: str = ""


CASES = [
    Case("exact-match", "www.example.", "A", "NOERROR", "QR AA", WWW_A),
    Case("exact-match-txt", "www.example.", "TXT", "NOERROR", "QR AA",
         'www.example. 3600 IN TXT "web"'),
    Case("apex-soa", "example.", "SOA", "NOERROR", "QR AA", SOA.replace(" 300 IN", " 3600 IN")),
    Case("nodata", "www.example.", "AAAA", "NOERROR", "QR AA", authority=SOA),
    Case("nxdomain", "nope.example.", "A", "NXDOMAIN", "QR AA", authority=SOA),
    Case("nxdomain-deep", "x.y.nope.example.", "A", "NXDOMAIN", "QR AA", authority=SOA),
    Case("empty-non-terminal", "b.c.example.", "A", "NOERROR", "QR AA", authority=SOA),
    Case("empty-non-terminal-top", "c.example.", "TXT", "NOERROR", "QR AA", authority=SOA),
    Case("below-ent", "a.b.c.example.", "A", "NOERROR", "QR AA",
         "a.b.c.example. 3600 IN A 192.0.2.90"),
    # The child zone is the closest enclosing zone for names at and below it.
    Case("child-zone-data", "www.child.example.", "A", "NOERROR", "QR AA",
         "www.child.example. 600 IN A 192.0.2.111"),
    Case("child-zone-apex-ns", "child.example.", "NS", "NOERROR", "QR AA",
         "child.example. 600 IN NS ns.child.example.",
         additional="ns.child.example. 600 IN A 192.0.2.110"),
    Case("child-zone-nxdomain", "nope.child.example.", "A", "NXDOMAIN", "QR AA",
         authority=CHILD_SOA),
    # RFC 4035 3.1.4.1: DS lives on the parent side of the cut.
    Case("ds-at-cut-from-parent", "child.example.", "DS", "NOERROR", "QR AA", DS),
    Case("ds-at-unsigned-cut", "deleg.example.", "DS", "NOERROR", "QR AA", authority=SOA),
    # Referrals: no AA, NS in authority, in-domain glue in additional.
    Case("referral-below-cut", "host.deleg.example.", "A", "NOERROR", "QR",
         authority=DELEG_NS, additional="ns.deleg.example. 3600 IN A 192.0.2.100"),
    Case("referral-at-cut", "deleg.example.", "NS", "NOERROR", "QR",
         authority=DELEG_NS, additional="ns.deleg.example. 3600 IN A 192.0.2.100"),
    Case("referral-at-cut-a", "deleg.example.", "A", "NOERROR", "QR",
         authority=DELEG_NS, additional="ns.deleg.example. 3600 IN A 192.0.2.100"),
    Case("referral-ds-below-cut", "x.deleg.example.", "DS", "NOERROR", "QR",
         authority=DELEG_NS, additional="ns.deleg.example. 3600 IN A 192.0.2.100"),
    # CNAME chains inside the zone are followed; the rcode is the last link's (RFC 6604).
    Case("cname-chain", "alias.example.", "A", "NOERROR", "QR AA", """
        alias.example. 3600 IN CNAME alias2.example.
        alias2.example. 3600 IN CNAME www.example.
        www.example. 3600 IN A 192.0.2.80
        """),
    Case("cname-chain-nodata", "alias.example.", "AAAA", "NOERROR", "QR AA", """
        alias.example. 3600 IN CNAME alias2.example.
        alias2.example. 3600 IN CNAME www.example.
        """, authority=SOA),
    Case("cname-qtype-cname", "alias.example.", "CNAME", "NOERROR", "QR AA",
         "alias.example. 3600 IN CNAME alias2.example."),
    Case("cname-to-nxdomain", "dangling.example.", "A", "NXDOMAIN", "QR AA",
         "dangling.example. 3600 IN CNAME nothere.example.", authority=SOA),
    Case("cname-out-of-zone-stops", "out.example.", "A", "NOERROR", "QR AA",
         "out.example. 3600 IN CNAME www.example.net."),
    Case("cname-into-delegation", "todeleg.example.", "A", "NOERROR", "QR AA",
         "todeleg.example. 3600 IN CNAME host.deleg.example.",
         authority=DELEG_NS, additional="ns.deleg.example. 3600 IN A 192.0.2.100"),
    Case("cname-loop-stops", "loop1.example.", "A", "NOERROR", "QR AA", """
        loop1.example. 3600 IN CNAME loop2.example.
        loop2.example. 3600 IN CNAME loop1.example.
        """),
    Case("cname-self-loop-stops", "self.example.", "A", "NOERROR", "QR AA",
         "self.example. 3600 IN CNAME self.example."),
    # Not ours at all, and ours but unloadable.
    Case("refused-outside-zones", "www.example.org.", "A", "REFUSED", "QR"),
    Case("refused-parent-of-zone", "com.", "A", "REFUSED", "QR"),
    Case("servfail-broken-zone", "x.broken.example.", "A", "SERVFAIL", "QR"),
    Case("servfail-broken-zone-apex", "broken.example.", "SOA", "SERVFAIL", "QR"),
]  # fmt: skip


@pytest.fixture(scope="module")
def snapshot():
    return snapshot_from_texts(
        {"example.": PARENT, "child.example.": CHILD, "broken.example.": None}
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_answers(snapshot, case: Case) -> None:
    msg = ask(snapshot, case.qname, case.qtype)
    assert msg.question[0].name.to_text() == case.qname
    check(msg, case.rcode, case.flags, case.answer, case.authority, case.additional)


def test_tochild_cname_refers_into_the_child_zone(snapshot) -> None:
    # A CNAME whose target sits below a cut in the same zone ends in a referral,
    # even though this server also hosts the child: lookups never leave the zone.
    msg = ask(snapshot, "tochild.example.", "A", do=True)
    check(
        msg,
        "NOERROR",
        "QR AA",
        "tochild.example. 3600 IN CNAME www.child.example.",
        CHILD_REFERRAL_DO,
        "ns.child.example. 3600 IN A 192.0.2.110",
    )


def test_ds_at_child_apex_without_parent_comes_from_child() -> None:
    # Only the child is hosted: its apex answers DS with NODATA from itself.
    snap = snapshot_from_texts({"child.example.": CHILD})
    check(ask(snap, "child.example.", "DS"), "NOERROR", "QR AA", authority=CHILD_SOA)


def test_referral_when_child_zone_is_not_hosted() -> None:
    snap = snapshot_from_texts({"example.": PARENT})
    check(
        ask(snap, "www.child.example.", "A", do=True),
        "NOERROR",
        "QR",
        authority=CHILD_REFERRAL_DO,
        additional="ns.child.example. 3600 IN A 192.0.2.110",
    )


@pytest.mark.parametrize("do", [False, True])
def test_unsigned_zone_referral_carries_no_ds_even_with_do(do: bool) -> None:
    # Regression (issue 11): an unsigned zone's DS went into DO=1 referrals.
    # RFC 4035 3.1.4 has DS join a referral from a signed zone only; NSD, Knot
    # and BIND do no DNSSEC processing in an unsigned one.  The DS is still
    # answered when asked for (test_ds_*).
    snap = snapshot_from_texts({"example.": PARENT})
    msg = ask(snap, "www.child.example.", "A", do=do)
    check(msg, "NOERROR", "QR", authority=CHILD_REFERRAL_DO, additional=None)


def test_broken_child_does_not_fall_back_to_parent() -> None:
    # A child that failed to load must answer SERVFAIL, never a parent referral.
    snap = snapshot_from_texts({"example.": PARENT, "child.example.": None})
    check(ask(snap, "www.child.example.", "A"), "SERVFAIL", "QR")
    check(ask(snap, "www.example.", "A"), "NOERROR", "QR AA", "www.example. 3600 IN A 192.0.2.80")


def _chain_zone(links: int) -> str:
    lines = ["$ORIGIN chain.", "$TTL 60", "@ SOA ns hm 1 2 3 4 5", "@ NS ns", "ns A 192.0.2.1"]
    lines += [f"c{i} CNAME c{i + 1}" for i in range(links)]
    lines.append(f"c{links} A 192.0.2.7")
    return "\n".join(lines) + "\n"


def test_chain_of_max_chain_links_is_followed_to_the_end() -> None:
    snap = snapshot_from_texts({"chain.": _chain_zone(engine.MAX_CHAIN)})
    msg = ask(snap, "c0.chain.", "A")
    assert msg.rcode() == 0
    assert [r.rdtype for r in msg.answer][-1] == 1  # the A at the end
    assert len(msg.answer) == engine.MAX_CHAIN + 1


@pytest.mark.parametrize("links", [engine.MAX_CHAIN + 1, engine.MAX_CHAIN + 5, 60])
def test_chain_longer_than_max_chain_stops(links: int) -> None:
    snap = snapshot_from_texts({"chain.": _chain_zone(links)})
    msg = ask(snap, "c0.chain.", "A", tcp=True)
    assert msg.rcode() == 0
    types = [r.rdtype for r in msg.answer]
    assert 1 not in types, "the chain limit must stop before the final A"
    assert set(types) == {5}
    # Exactly MAX_CHAIN links are followed; the CNAME that would need one more is shown.
    assert len(msg.answer) == engine.MAX_CHAIN + 1


def test_engine_returns_states_not_exceptions(snapshot) -> None:
    zones = snapshot.views[0].zones
    cases = {
        "www.example.": engine.State.ANSWER,
        "www.example.|AAAA": engine.State.NODATA,
        "nope.example.": engine.State.NXDOMAIN,
        "host.deleg.example.": engine.State.DELEGATION,
        "www.example.org.": engine.State.REFUSED,
        "x.broken.example.": engine.State.SERVFAIL,
    }
    for text, state in cases.items():
        name, _, qtype = text.partition("|")
        rdtype = dns.rdatatype.from_text(qtype or "A")
        got = engine.answer_query(zones, dns.name.from_text(name), rdtype)
        assert got.state is state, text
