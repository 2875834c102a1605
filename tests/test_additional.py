"""Additional-section processing, truncation of referrals, and ANY.

RFC 1034 section 4.3.2 step 6 and RFC 2181 section 9: NS, MX and SRV targets
get their A then AAAA records (A first, so IPv4 survives truncation); optional
additional data that does not fit is dropped without TC.  RFC 9471: in-domain
glue of a referral that does not fit sets TC; sibling glue is optional.
``minimal_responses`` turns optional additional data off.  RFC 8482: ANY over
UDP gets one RRset (``minimal_any``), over TCP every RRset.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rdatatype
import pytest
from zonekit import ask, check, exchange, make_query, section_text, snapshot_from_texts

ZONE = """
$ORIGIN add.test.
$TTL 300
@          SOA   ns1 hm 1 7200 3600 1209600 300
@          NS    ns1
@          NS    ns2
@          NS    ns.out.example.
@          MX    10 mail
@          MX    20 mx.elsewhere.example.
ns1        A     192.0.2.1
ns1        AAAA  2001:db8::1
ns2        A     192.0.2.2
ns2        AAAA  2001:db8::2
mail       A     192.0.2.25
mail       AAAA  2001:db8::25
_sip._udp  SRV   10 60 5060 sip
_sip._udp  SRV   20 0 5060 .
sip        AAAA  2001:db8::61
kid        NS    ns.kid
ns.kid     A     192.0.2.9
glued      MX    10 ns.kid
noaddr     MX    10 nothing
alias      CNAME mail-alias
mail-alias MX    10 mail
"""

NS_APEX = """
add.test. 300 IN NS ns1.add.test.
add.test. 300 IN NS ns2.add.test.
add.test. 300 IN NS ns.out.example.
"""
NS_ADDRESSES = """
ns1.add.test. 300 IN A 192.0.2.1
ns2.add.test. 300 IN A 192.0.2.2
ns1.add.test. 300 IN AAAA 2001:db8::1
ns2.add.test. 300 IN AAAA 2001:db8::2
"""
MX_APEX = """
add.test. 300 IN MX 10 mail.add.test.
add.test. 300 IN MX 20 mx.elsewhere.example.
"""
MAIL_ADDRESSES = """
mail.add.test. 300 IN A 192.0.2.25
mail.add.test. 300 IN AAAA 2001:db8::25
"""


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    answer: str
    additional: str
    minimal: str = ""  # additional with minimal_responses
    flags: str = "QR AA"
    authority: str = ""


CASES = [
    # A records of every target, then AAAA; out-of-zone targets get nothing.
    Case("ns-targets", "add.test.", "NS", NS_APEX, NS_ADDRESSES),
    Case("mx-targets", "add.test.", "MX", MX_APEX, MAIL_ADDRESSES),
    Case("srv-targets", "_sip._udp.add.test.", "SRV", """
         _sip._udp.add.test. 300 IN SRV 10 60 5060 sip.add.test.
         _sip._udp.add.test. 300 IN SRV 20 0 5060 .
         """, "sip.add.test. 300 IN AAAA 2001:db8::61"),
    # Glue below a cut is not authoritative data: not additional for an MX.
    Case("mx-target-is-glue", "glued.add.test.", "MX",
         "glued.add.test. 300 IN MX 10 ns.kid.add.test.",
         ""),
    Case("mx-target-without-address", "noaddr.add.test.", "MX",
         "noaddr.add.test. 300 IN MX 10 nothing.add.test.", ""),
    Case("mx-after-cname", "alias.add.test.", "MX", """
         alias.add.test. 300 IN CNAME mail-alias.add.test.
         mail-alias.add.test. 300 IN MX 10 mail.add.test.
         """, MAIL_ADDRESSES),
    # A referral's in-domain glue is required: minimal_responses keeps it.
    Case("referral-glue", "x.kid.add.test.", "A", "", "ns.kid.add.test. 300 IN A 192.0.2.9",
         minimal="ns.kid.add.test. 300 IN A 192.0.2.9", flags="QR",
         authority="kid.add.test. 300 IN NS ns.kid.add.test."),
]  # fmt: skip


@pytest.fixture(scope="module")
def snapshots():
    return {
        False: snapshot_from_texts({"add.test.": ZONE}),
        True: snapshot_from_texts({"add.test.": ZONE}, minimal_responses=True),
    }


@pytest.mark.parametrize("minimal", [False, True], ids=["full", "minimal_responses"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_additional_section(snapshots, case: Case, minimal: bool) -> None:
    msg = ask(snapshots[minimal], case.qname, case.qtype)
    additional = case.minimal if minimal else case.additional
    check(msg, "NOERROR", case.flags, case.answer, case.authority, additional)


def _big_zone() -> str:
    kid = "\n".join(
        f"kid NS ns{i:02d}.kid\nns{i:02d}.kid A 192.0.2.{i}\nns{i:02d}.kid AAAA 2001:db8::{i}"
        for i in range(1, 17)
    )
    mx = "\n".join(
        f"mxs MX {i} mx{i:02d}\nmx{i:02d} A 192.0.2.{100 + i}\nmx{i:02d} AAAA 2001:db8::1:{i}"
        for i in range(1, 17)
    )
    sib = "sib NS ns.sib\nns.sib A 192.0.2.200\n" + "\n".join(
        f"sib NS s{i:02d}\ns{i:02d} A 198.51.100.{i}\ns{i:02d} AAAA 2001:db8::2:{i}"
        for i in range(1, 13)
    )
    return f"""
$ORIGIN big.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.250
{kid}
{mx}
{sib}
"""


@pytest.fixture(scope="module")
def big():
    return snapshot_from_texts({"big.test.": _big_zone()})


def _raw(snapshot, qname: str, qtype: str, **kw) -> tuple[bytes, dns.message.Message]:
    tcp = bool(kw.pop("tcp", False))
    wire = exchange(snapshot, make_query(qname, qtype, **kw).to_wire(), tcp=tcp)
    assert wire is not None
    return wire, dns.message.from_wire(wire)


def _types(rrsets) -> list[str]:
    return [dns.rdatatype.to_text(r.rdtype) for r in rrsets]


def test_rfc9471_in_domain_glue_that_does_not_fit_sets_tc(big) -> None:
    wire, msg = _raw(big, "x.kid.big.test.", "A")
    assert len(wire) <= 512
    assert msg.flags & dns.flags.TC
    assert _types(msg.authority) == ["NS"] and len(msg.authority[0]) == 16


def test_rfc9471_in_domain_glue_fits_with_edns_no_tc(big) -> None:
    wire, msg = _raw(big, "x.kid.big.test.", "A", edns=0, payload=1232)
    assert not msg.flags & dns.flags.TC
    assert _types(msg.additional) == ["A"] * 16 + ["AAAA"] * 16


def test_rfc9471_full_referral_over_tcp(big) -> None:
    wire, msg = _raw(big, "x.kid.big.test.", "A", tcp=True)
    assert not msg.flags & dns.flags.TC
    assert len(msg.additional) == 32


def test_optional_additional_that_does_not_fit_is_dropped_without_tc(big) -> None:
    wire, msg = _raw(big, "mxs.big.test.", "MX")
    assert len(wire) <= 512
    assert not msg.flags & dns.flags.TC
    assert len(msg.answer) == 1 and len(msg.answer[0]) == 16
    types = _types(msg.additional)
    assert 0 < len(types) < 32
    # A records go first, so what survives is IPv4.
    assert types == sorted(types, key=lambda t: t != "A")
    assert types[0] == "A"


def test_sibling_glue_is_optional_no_tc(big) -> None:
    wire, msg = _raw(big, "x.sib.big.test.", "A")
    assert len(wire) <= 512
    assert not msg.flags & dns.flags.TC
    names = [r.name.to_text() for r in msg.additional]
    assert names[0] == "ns.sib.big.test.", "in-domain glue comes before sibling glue"
    assert len(names) < 1 + 24, "some sibling glue was dropped to fit"


def test_additional_a_before_aaaa_in_every_section_order(big) -> None:
    _, msg = _raw(big, "mxs.big.test.", "MX", tcp=True)
    assert _types(msg.additional) == ["A"] * 16 + ["AAAA"] * 16


ANY_ZONE = """
$ORIGIN any.test.
$TTL 300
@    SOA  ns hm 1 7200 3600 1209600 300
@    NS   ns
ns   A    192.0.2.1
host A    192.0.2.10
host AAAA 2001:db8::10
host TXT  "t"
host MX   10 ns
"""


@pytest.mark.parametrize(
    ("tcp", "minimal_any", "count"),
    [(False, True, 1), (True, True, 4), (False, False, 4), (True, False, 4)],
    ids=["udp-minimal", "tcp-minimal", "udp-full", "tcp-full"],
)
def test_rfc8482_any(tcp: bool, minimal_any: bool, count: int) -> None:
    snap = snapshot_from_texts({"any.test.": ANY_ZONE}, minimal_any=minimal_any)
    msg = ask(snap, "host.any.test.", "ANY", tcp=tcp)
    assert msg.rcode() == 0 and msg.flags & dns.flags.AA
    assert len(msg.answer) == count
    assert all(r.name.to_text() == "host.any.test." for r in msg.answer)
    if count == 4:
        assert sorted(_types(msg.answer)) == ["A", "AAAA", "MX", "TXT"]


def test_any_nxdomain_is_still_negative() -> None:
    snap = snapshot_from_texts({"any.test.": ANY_ZONE})
    msg = ask(snap, "nope.any.test.", "ANY")
    assert msg.rcode() == 3
    assert section_text(msg.authority) == [
        "any.test. 300 IN SOA ns.any.test. hm.any.test. 1 7200 3600 1209600 300"
    ]
