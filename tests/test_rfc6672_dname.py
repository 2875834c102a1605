"""RFC 6672: DNAME redirection and CNAME synthesis.

Section 3.1 (server algorithm): a name below a DNAME owner gets the DNAME and
a CNAME synthesised with the DNAME's TTL (section 3.2 lets the CNAME carry it);
section 2.2: a substitution that makes a name longer than 255 octets is
YXDOMAIN; the DNAME owner itself is not redirected; a DNAME may sit at an apex.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from zonekit import ask, check, snapshot_from_texts

LONG_TARGET = ".".join(c * 63 for c in "abc") + ".example."

ZONE = f"""
$ORIGIN example.
$TTL 3600
@           SOA    ns hm 1 7200 3600 1209600 300
@           NS     ns
ns          A      192.0.2.1
legacy 120  DNAME  example.net.
inz    600  DNAME  target.example.
www.target  A      192.0.2.7
long        DNAME  {LONG_TARGET}
da          DNAME  db.example.
db          DNAME  da.example.
"""

APEX = """
$ORIGIN old.
$TTL 3600
@   SOA    ns.new. hm.new. 1 7200 3600 1209600 300
@   NS     ns.new.
@   DNAME  new.
"""

SOA = "example. 300 IN SOA ns.example. hm.example. 1 7200 3600 1209600 300"
LEGACY = "legacy.example. 120 IN DNAME example.net."
INZ = "inz.example. 600 IN DNAME target.example."
# 60 + 10 octets of labels below long.example: the substituted name is 280 octets.
TOO_LONG = "d" * 60 + "." + "e" * 10 + ".long.example."


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    rcode: str
    answer: str = ""
    authority: str = ""


CASES = [
    Case("synthesis-out-of-zone", "www.legacy.example.", "A", "NOERROR", f"""
         {LEGACY}
         www.legacy.example. 120 IN CNAME www.example.net.
         """),
    Case("synthesis-deep", "a.b.legacy.example.", "TXT", "NOERROR", f"""
         {LEGACY}
         a.b.legacy.example. 120 IN CNAME a.b.example.net.
         """),
    # The synthesised CNAME takes the DNAME's TTL (600), not the zone's 3600.
    Case("synthesis-in-zone-followed", "www.inz.example.", "A", "NOERROR", f"""
         {INZ}
         www.inz.example. 600 IN CNAME www.target.example.
         www.target.example. 3600 IN A 192.0.2.7
         """),
    Case("synthesis-in-zone-nodata", "www.inz.example.", "AAAA", "NOERROR", f"""
         {INZ}
         www.inz.example. 600 IN CNAME www.target.example.
         """, authority=SOA),
    Case("synthesis-in-zone-nxdomain", "nope.inz.example.", "A", "NXDOMAIN", f"""
         {INZ}
         nope.inz.example. 600 IN CNAME nope.target.example.
         """, authority=SOA),
    # Section 2.3: the owner is not redirected, only names below it.
    Case("owner-qtype-dname", "legacy.example.", "DNAME", "NOERROR", LEGACY),
    Case("owner-other-qtype-nodata", "legacy.example.", "A", "NOERROR", authority=SOA),
    Case("below-owner-qtype-dname", "x.legacy.example.", "DNAME", "NOERROR", f"""
         {LEGACY}
         x.legacy.example. 120 IN CNAME x.example.net.
         """),
    # Asked for the CNAME itself: the synthesised CNAME is the answer, not followed.
    Case("below-owner-qtype-cname", "x.legacy.example.", "CNAME", "NOERROR", f"""
         {LEGACY}
         x.legacy.example. 120 IN CNAME x.example.net.
         """),
    Case("in-zone-qtype-cname-not-followed", "www.inz.example.", "CNAME", "NOERROR", f"""
         {INZ}
         www.inz.example. 600 IN CNAME www.target.example.
         """),
    Case("dname-loop-stops", "x.da.example.", "A", "NOERROR", """
         da.example. 3600 IN DNAME db.example.
         x.da.example. 3600 IN CNAME x.db.example.
         db.example. 3600 IN DNAME da.example.
         x.db.example. 3600 IN CNAME x.da.example.
         """),
    Case("yxdomain-too-long", TOO_LONG, "A", "YXDOMAIN",
         f"long.example. 3600 IN DNAME {LONG_TARGET}"),
]  # fmt: skip


@pytest.fixture(scope="module")
def snapshot():
    return snapshot_from_texts({"example.": ZONE, "old.": APEX})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dname(snapshot, case: Case) -> None:
    msg = ask(snapshot, case.qname, case.qtype, tcp=True)
    check(msg, case.rcode, "QR AA", case.answer, case.authority)


APEX_CASES = [
    Case("apex-synthesis", "x.old.", "A", "NOERROR", """
         old. 3600 IN DNAME new.
         x.old. 3600 IN CNAME x.new.
         """),
    Case("apex-soa-still-served", "old.", "SOA", "NOERROR",
         "old. 3600 IN SOA ns.new. hm.new. 1 7200 3600 1209600 300"),
    Case("apex-qtype-dname", "old.", "DNAME", "NOERROR", "old. 3600 IN DNAME new."),
    Case("apex-nodata", "old.", "A", "NOERROR",
         authority="old. 300 IN SOA ns.new. hm.new. 1 7200 3600 1209600 300"),
]  # fmt: skip


@pytest.mark.parametrize("case", APEX_CASES, ids=[c.id for c in APEX_CASES])
def test_dname_at_apex(snapshot, case: Case) -> None:
    msg = ask(snapshot, case.qname, case.qtype)
    check(msg, case.rcode, "QR AA", case.answer, case.authority)


def test_synthesised_names_keep_the_question_case(snapshot) -> None:
    msg = ask(snapshot, "WwW.Legacy.example.", "A")
    cname = msg.answer[1]
    assert cname.name.to_text() == "WwW.Legacy.example."
    assert cname[0].target.to_text() == "WwW.example.net."


def test_yxdomain_response_parses_over_udp(snapshot) -> None:
    msg = ask(snapshot, TOO_LONG, "A")
    assert msg.rcode() == 6  # YXDOMAIN
    assert all(r.rdtype != 5 for r in msg.answer), "no CNAME may be synthesised"
