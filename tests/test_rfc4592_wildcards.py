"""RFC 4592: wildcard synthesis, from the RFC's own example zone and questions.

The zone is section 2.2.1's (with concrete SOA and SRV RDATA); the questions
are the ones listed there as synthesised / not synthesised, and the closest
encloser / source of synthesis examples of section 3.3.  Further tables cover
wildcard NODATA, empty non-terminals that block a wildcard, and wildcard CNAMEs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from zonekit import ask, check, snapshot_from_texts

RFC4592_ZONE = """
$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example.com. (
                                        1 7200 3600 1209600 300 )
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host2.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
"""

SOA = "example. 300 IN SOA ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"
HOST1_A = "host1.example. 3600 IN A 192.0.2.1"


@dataclass(frozen=True)
class Case:
    id: str
    qname: str
    qtype: str
    rcode: str
    answer: str = ""
    authority: str = ""
    additional: str = ""
    flags: str = "QR AA"


RFC_CASES = [
    # Section 2.2.1, "would be synthesized".
    Case("2.2.1-host3-mx", "host3.example.", "MX", "NOERROR",
         "host3.example. 3600 IN MX 10 host1.example.", additional=HOST1_A),
    Case("2.2.1-host3-a-nodata", "host3.example.", "A", "NOERROR", authority=SOA),
    Case("2.2.1-foo.bar-txt", "foo.bar.example.", "TXT", "NOERROR",
         'foo.bar.example. 3600 IN TXT "this is a wildcard"'),
    # Section 2.2.1, "would not be synthesized".
    Case("2.2.1-host1-exists", "host1.example.", "MX", "NOERROR", authority=SOA),
    Case("2.2.1-sub.*-exists", "sub.*.example.", "MX", "NOERROR", authority=SOA),
    Case("2.2.1-_tcp.host1-ent", "_telnet._tcp.host1.example.", "SRV", "NXDOMAIN",
         authority=SOA),
    Case("2.2.1-subdel-cut", "host.subdel.example.", "A", "NOERROR", flags="QR",
         authority="""
         subdel.example. 3600 IN NS ns.example.com.
         subdel.example. 3600 IN NS ns.example.net.
         """),
    Case("2.2.1-ghost.*-wildcard-exists", "ghost.*.example.", "MX", "NXDOMAIN",
         authority=SOA),
    # Section 3.3: closest enclosers and sources of synthesis.
    Case("3.3-_dns._udp.host2-no-source", "_dns._udp.host2.example.", "MX", "NXDOMAIN",
         authority=SOA),
    Case("3.3-_telnet._tcp.host3", "_telnet._tcp.host3.example.", "MX", "NOERROR",
         "_telnet._tcp.host3.example. 3600 IN MX 10 host1.example.", additional=HOST1_A),
    Case("3.3-_chat._udp.host3", "_chat._udp.host3.example.", "MX", "NOERROR",
         "_chat._udp.host3.example. 3600 IN MX 10 host1.example.", additional=HOST1_A),
    Case("3.3-foobar.*-no-source", "foobar.*.example.", "MX", "NXDOMAIN", authority=SOA),
    # The wildcard owner itself is an ordinary name when asked directly.
    Case("wildcard-owner-asked", "*.example.", "TXT", "NOERROR",
         '*.example. 3600 IN TXT "this is a wildcard"'),
    # host2 and _tcp.host2 are empty non-terminals: NODATA, no synthesis.
    Case("ent-host2", "host2.example.", "TXT", "NOERROR", authority=SOA),
    Case("ent-_tcp.host2", "_tcp.host2.example.", "TXT", "NOERROR", authority=SOA),
]  # fmt: skip


@pytest.fixture(scope="module")
def rfc_zone():
    return snapshot_from_texts({"example.": RFC4592_ZONE})


@pytest.mark.parametrize("case", RFC_CASES, ids=[c.id for c in RFC_CASES])
def test_rfc4592_examples(rfc_zone, case: Case) -> None:
    msg = ask(rfc_zone, case.qname, case.qtype)
    check(msg, case.rcode, case.flags, case.answer, case.authority, case.additional)


MORE_ZONE = """
$ORIGIN w.test.
$TTL 300
@              SOA   ns hm 1 7200 3600 1209600 60
@              NS    ns
ns             A     192.0.2.53
*              A     192.0.2.100
a.b            A     192.0.2.101
*.cn           CNAME target
target         A     192.0.2.102
target         AAAA  2001:db8::102
*.out          CNAME elsewhere.example.
*.loop         CNAME x.loop
*.mx           MX    10 mail
mail           A     192.0.2.25
exists.mx      TXT   "here"
"""

W_SOA = "w.test. 60 IN SOA ns.w.test. hm.w.test. 1 7200 3600 1209600 60"

MORE_CASES = [
    Case("synthesised-a", "anything.w.test.", "A", "NOERROR",
         "anything.w.test. 300 IN A 192.0.2.100"),
    Case("synthesised-deep", "x.y.z.w.test.", "A", "NOERROR", "x.y.z.w.test. 300 IN A 192.0.2.100"),
    Case("wildcard-nodata", "anything.w.test.", "TXT", "NOERROR", authority=W_SOA),
    # b.w.test is an empty non-terminal: it exists, so *.w.test does not apply to it...
    Case("ent-blocks-wildcard", "b.w.test.", "A", "NOERROR", authority=W_SOA),
    # ...and below it the closest encloser is b.w.test, which has no wildcard child.
    Case("ent-closest-encloser-nxdomain", "c.b.w.test.", "A", "NXDOMAIN", authority=W_SOA),
    Case("existing-name-not-synthesised", "a.b.w.test.", "A", "NOERROR",
         "a.b.w.test. 300 IN A 192.0.2.101"),
    Case("existing-name-nodata", "exists.mx.w.test.", "MX", "NOERROR", authority=W_SOA),
    Case("wildcard-cname", "host.cn.w.test.", "A", "NOERROR", """
         host.cn.w.test. 300 IN CNAME target.w.test.
         target.w.test. 300 IN A 192.0.2.102
         """),
    Case("wildcard-cname-aaaa", "host.cn.w.test.", "AAAA", "NOERROR", """
         host.cn.w.test. 300 IN CNAME target.w.test.
         target.w.test. 300 IN AAAA 2001:db8::102
         """),
    Case("wildcard-cname-qtype-cname", "host.cn.w.test.", "CNAME", "NOERROR",
         "host.cn.w.test. 300 IN CNAME target.w.test."),
    Case("wildcard-cname-nodata", "host.cn.w.test.", "TXT", "NOERROR",
         "host.cn.w.test. 300 IN CNAME target.w.test.", authority=W_SOA),
    Case("wildcard-cname-out-of-zone", "a.out.w.test.", "A", "NOERROR",
         "a.out.w.test. 300 IN CNAME elsewhere.example."),
    # a.loop -> x.loop (itself synthesised from *.loop) -> x.loop: stops.
    Case("wildcard-cname-loop", "a.loop.w.test.", "A", "NOERROR", """
         a.loop.w.test. 300 IN CNAME x.loop.w.test.
         x.loop.w.test. 300 IN CNAME x.loop.w.test.
         """),
    Case("wildcard-mx-additional", "h.mx.w.test.", "MX", "NOERROR",
         "h.mx.w.test. 300 IN MX 10 mail.w.test.", additional="mail.w.test. 300 IN A 192.0.2.25"),
]  # fmt: skip


@pytest.fixture(scope="module")
def more_zone():
    return snapshot_from_texts({"w.test.": MORE_ZONE})


@pytest.mark.parametrize("case", MORE_CASES, ids=[c.id for c in MORE_CASES])
def test_wildcard_behaviour(more_zone, case: Case) -> None:
    msg = ask(more_zone, case.qname, case.qtype)
    check(msg, case.rcode, case.flags, case.answer, case.authority, case.additional)


def test_synthesised_owner_echoes_the_question_case(more_zone) -> None:
    msg = ask(more_zone, "AnyThing.W.test.", "A")
    assert msg.answer[0].name.to_text() == "AnyThing.W.test."


def test_any_at_a_synthesised_name_over_tcp_lists_every_wildcard_rrset(rfc_zone) -> None:
    msg = ask(rfc_zone, "host3.example.", "ANY", tcp=True)
    check(
        msg,
        "NOERROR",
        "QR AA",
        """
        host3.example. 3600 IN MX 10 host1.example.
        host3.example. 3600 IN TXT "this is a wildcard"
        """,
        additional=None,
    )
