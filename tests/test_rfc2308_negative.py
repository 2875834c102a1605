"""RFC 2308: negative answers carry the zone's SOA in the authority section.

Section 3: NXDOMAIN and NODATA responses include the SOA; section 5: its TTL
is the smaller of the SOA record's own TTL and its MINIMUM field.  After a
CNAME chain the SOA belongs to the zone the chain ended in.  The SOA asked for
directly keeps its full TTL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from zonekit import ask, check, snapshot_from_texts


def _zone(origin: str, soa_ttl: int, minimum: int) -> str:
    return f"""
$ORIGIN {origin}
$TTL 3600
@      {soa_ttl} SOA ns hm 5 7200 3600 1209600 {minimum}
@      NS    ns
ns     A     192.0.2.1
www    A     192.0.2.80
alias  CNAME www
dangle CNAME missing
chain  CNAME alias
"""


ZONES = {
    "min-smaller.": _zone("min-smaller.", 3600, 300),
    "ttl-smaller.": _zone("ttl-smaller.", 60, 900),
    "equal.": _zone("equal.", 120, 120),
    "zero.": _zone("zero.", 3600, 0),
}


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    rcode: str
    answer: str
    soa: str


def _soa(origin: str, ttl: int, minimum: int) -> str:
    return f"{origin} {ttl} IN SOA ns.{origin} hm.{origin} 5 7200 3600 1209600 {minimum}"


CASES = [
    # Section 5: TTL = min(SOA TTL, MINIMUM), for both kinds of negative answer.
    Case("nxdomain-minimum-wins", "nope.min-smaller.", "A", "NXDOMAIN", "",
         _soa("min-smaller.", 300, 300)),
    Case("nodata-minimum-wins", "www.min-smaller.", "AAAA", "NOERROR", "",
         _soa("min-smaller.", 300, 300)),
    Case("nxdomain-soa-ttl-wins", "nope.ttl-smaller.", "A", "NXDOMAIN", "",
         _soa("ttl-smaller.", 60, 900)),
    Case("nodata-soa-ttl-wins", "www.ttl-smaller.", "MX", "NOERROR", "",
         _soa("ttl-smaller.", 60, 900)),
    Case("equal", "nope.equal.", "A", "NXDOMAIN", "", _soa("equal.", 120, 120)),
    Case("minimum-zero", "nope.zero.", "A", "NXDOMAIN", "", _soa("zero.", 0, 0)),
    Case("apex-nodata", "min-smaller.", "TXT", "NOERROR", "", _soa("min-smaller.", 300, 300)),
    # Section 2.1 / 2.2: after a CNAME the negative answer is about the target.
    Case("nodata-after-cname", "alias.min-smaller.", "AAAA", "NOERROR",
         "alias.min-smaller. 3600 IN CNAME www.min-smaller.", _soa("min-smaller.", 300, 300)),
    Case("nxdomain-after-cname", "dangle.ttl-smaller.", "A", "NXDOMAIN",
         "dangle.ttl-smaller. 3600 IN CNAME missing.ttl-smaller.", _soa("ttl-smaller.", 60, 900)),
    Case("nodata-after-two-cnames", "chain.equal.", "TXT", "NOERROR", """
         chain.equal. 3600 IN CNAME alias.equal.
         alias.equal. 3600 IN CNAME www.equal.
         """, _soa("equal.", 120, 120)),
]  # fmt: skip


@pytest.fixture(scope="module")
def snapshot():
    return snapshot_from_texts(ZONES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_negative_answer(snapshot, case: Case) -> None:
    msg = ask(snapshot, case.qname, case.qtype)
    check(msg, case.rcode, "QR AA", case.answer, case.soa)


def test_soa_asked_for_keeps_its_own_ttl(snapshot) -> None:
    msg = ask(snapshot, "min-smaller.", "SOA")
    check(msg, "NOERROR", "QR AA", _soa("min-smaller.", 3600, 300), additional=None)


def test_negative_answer_over_tcp_and_with_edns_is_the_same(snapshot) -> None:
    for kw in ({"tcp": True}, {"edns": 0}, {"do": True}):
        msg = ask(snapshot, "nope.min-smaller.", "A", **kw)
        check(msg, "NXDOMAIN", "QR AA", "", _soa("min-smaller.", 300, 300))


def test_referral_is_not_a_negative_answer() -> None:
    text = _zone("p.", 3600, 300) + "kid NS ns.elsewhere.\n"
    msg = ask(snapshot_from_texts({"p.": text}), "a.kid.p.", "A")
    check(msg, "NOERROR", "QR", "", "kid.p. 3600 IN NS ns.elsewhere.")
