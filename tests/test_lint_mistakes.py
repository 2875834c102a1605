"""Three classic zone-file mistakes ``authd check`` catches, as named-checkzone users expect.

``missing-trailing-dot`` (a name that repeats the origin), ``no-ttl-directive``
(records relying on a TTL inferred without ``$TTL``, RFC 2308 section 4) and
``soa-serial-zero``.  Each is a warning: the server loads such zones as
written, which the last tests pin down.  Tables: zone text -> the (id, line)
findings of that id; then one regression test named after each miss.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from authd import lint
from authd.checks import Severity
from authd.zone import compile_zone
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("example.com.")
HEAD = "$ORIGIN example.com.\n$TTL 300\n"  # lines 1-2
SOA = "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n"  # line 3
BASE = SOA + "@ NS ns1\nns1 A 192.0.2.1\n"  # lines 3-5; bodies start on line 6
DOT = "missing-trailing-dot"
NO_TTL = "no-ttl-directive"
ZERO = "soa-serial-zero"


def findings(text: str, origin: dns.name.Name = ORIGIN) -> list[lint.Finding]:
    records = parse_zone_text(text, origin, "z.zone")
    return list(lint.lint_records(origin, records, "z.zone").findings)


def of(text: str, rule: str, origin: dns.name.Name = ORIGIN) -> list[tuple[str, int]]:
    return [(f.id, f.line) for f in findings(text, origin) if f.id == rule]


# --- missing trailing dot -------------------------------------------------------

TRAILING_DOT = [
    # (label, body after HEAD + BASE, expected lines)
    ("owner", "www.example.com A 192.0.2.2\n", [6]),
    ("owner-apex", "example.com TXT apex\n", [6]),
    ("owner-case", "WWW.Example.COM A 192.0.2.2\n", [6]),
    ("owner-deep", "a.b.example.com AAAA 2001:db8::1\n", [6]),
    ("mx", "@ MX 10 mail.example.com\nmail A 192.0.2.3\n", [6]),
    ("ns", "kid NS ns.kid.example.com\n", [6]),
    ("cname", "www CNAME web.example.com\nweb A 192.0.2.4\n", [6]),
    ("srv", "_sip._tcp SRV 0 0 5060 sip.example.com\nsip A 192.0.2.5\n", [6]),
    ("dname", "old DNAME new.example.com\n", [6]),
    ("ptr", "x PTR host.example.com\n", [6]),
    ("owner-and-target", "www.example.com MX 10 mail.example.com\n", [6, 6]),
    ("two-rrsets", "@ MX 10 a.example.com\n@ MX 20 b.example.com\n", [6, 6]),
    # Near misses: the dot is there, or the origin appears once only.
    ("absolute", "www.example.com. A 192.0.2.2\n@ MX 10 mail.example.com.\n", []),
    ("relative", "www A 192.0.2.2\n@ MX 10 mail\nmail A 192.0.2.3\n", []),
    ("origin-inside", "example.com.www A 192.0.2.2\n", []),
    ("half-origin", "www.example A 192.0.2.2\n@ MX 10 mail.com\n", []),
    ("out-of-zone-target", "@ MX 10 mail.example.net.\n", []),
]


@pytest.mark.parametrize(
    "body,lines", [t[1:] for t in TRAILING_DOT], ids=[t[0] for t in TRAILING_DOT]
)
def test_missing_trailing_dot(body: str, lines: list[int]) -> None:
    assert of(HEAD + BASE + body, DOT) == [(DOT, line) for line in lines]


def test_missing_trailing_dot_says_what_was_written_and_what_it_became() -> None:
    owner, target = [
        f.message for f in findings(HEAD + BASE + "www.example.com MX 10 mail.example.com\n")
        if f.id == DOT
    ]  # fmt: skip
    assert owner.startswith("owner www.example.com became www.example.com.example.com.: ")
    assert "missing trailing dot?" in owner
    assert target.startswith(
        "www.example.com.example.com. MX target mail.example.com became "
        "mail.example.com.example.com.: missing trailing dot?"
    )


def test_missing_trailing_dot_is_a_warning() -> None:
    found = [f for f in findings(HEAD + BASE + "www.example.com A 192.0.2.2\n") if f.id == DOT]
    assert [f.severity for f in found] == [Severity.WARNING]


def test_missing_trailing_dot_in_a_one_label_zone() -> None:
    test = dns.name.from_text("test.")
    text = "$ORIGIN test.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
    assert of(text + "www.test A 192.0.2.2\n", DOT, test) == [(DOT, 6)]
    assert of(text + "www.test. A 192.0.2.2\n", DOT, test) == []


def test_root_zone_has_no_trailing_dot_check() -> None:
    # Every name "repeats" the empty origin: nothing to tell.
    text = "$ORIGIN .\n$TTL 300\n@ SOA a.root-servers.net. hm 1 7200 3600 1209600 300\n"
    text += "@ NS a.root-servers.net.\ncom NS a.gtld-servers.net.\n"
    assert of(text, DOT, dns.name.root) == []


# --- no $TTL ----------------------------------------------------------------------

NO_TTL_CASES = [
    # (label, whole file, expected lines)
    ("none-at-all", "$ORIGIN example.com.\n" + BASE, [2]),
    ("soa-explicit-rest-not", "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 7200 3600 1209600 300\n"
     "@ NS ns1\nns1 A 192.0.2.1\n", [3]),
    ("one-record-relies", "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 7200 3600 1209600 300\n"
     "@ 300 NS ns1\nns1 300 A 192.0.2.1\nwww A 192.0.2.2\n", [5]),
    ("ttl-after-some", "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 7200 3600 1209600 300\n"
     "@ NS ns1\n$TTL 300\nns1 A 192.0.2.1\n", [3]),
    ("generate", "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 7200 3600 1209600 300\n"
     "@ 300 NS ns1\nns1 300 A 192.0.2.1\n$GENERATE 1-3 h$ A 192.0.2.$\n", [5]),
    # Near misses: $TTL given, or every record gives its TTL (decided: no note).
    ("ttl-directive", HEAD + BASE, []),
    ("ttl-directive-late-but-first", "$ORIGIN example.com.\n$TTL 1h\n" + BASE, []),
    ("all-explicit", "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 7200 3600 1209600 300\n"
     "@ 300 NS ns1\nns1 300 A 192.0.2.1\n", []),
]  # fmt: skip


@pytest.mark.parametrize(
    "text,lines", [t[1:] for t in NO_TTL_CASES], ids=[t[0] for t in NO_TTL_CASES]
)
def test_no_ttl_directive(text: str, lines: list[int]) -> None:
    assert of(text, NO_TTL) == [(NO_TTL, line) for line in lines]


def test_no_ttl_directive_is_reported_once_with_a_count() -> None:
    text = "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 7200 3600 1209600 300\n"
    text += "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n"
    (found,) = [f for f in findings(text) if f.id == NO_TTL]
    assert found.severity is Severity.WARNING
    assert found.message.startswith("no $TTL: example.com. NS gives no TTL and takes 300 ")
    assert "so do 2 more records" in found.message and "RFC 2308 section 4" in found.message


PARSER_TTLS = [
    # (label, text, [(owner, ttl, ttl_inferred)]): what the parser tells the linter.
    ("ttl-directive", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\nx A 192.0.2.1\n",
     [("z.test.", 60, False), ("x.z.test.", 60, False)]),
    ("explicit", "@ 60 SOA ns hm 1 2 3 4 5\nx 70 A 192.0.2.1\n",
     [("z.test.", 60, False), ("x.z.test.", 70, False)]),
    ("last-written", "@ 60 SOA ns hm 1 2 3 4 5\nx A 192.0.2.1\n",
     [("z.test.", 60, False), ("x.z.test.", 60, True)]),
    ("soa-minimum", "@ SOA ns hm 1 2 3 4 5\n", [("z.test.", 5, True)]),
    ("before-soa", "x 70 A 192.0.2.1\ny A 192.0.2.2\n",
     [("x.z.test.", 70, False), ("y.z.test.", 70, True)]),
    ("ttl-later", "@ 60 SOA ns hm 1 2 3 4 5\nx A 192.0.2.1\n$TTL 80\ny A 192.0.2.2\n",
     [("z.test.", 60, False), ("x.z.test.", 60, True), ("y.z.test.", 80, False)]),
]  # fmt: skip


@pytest.mark.parametrize(
    "text,expected", [t[1:] for t in PARSER_TTLS], ids=[t[0] for t in PARSER_TTLS]
)
def test_parser_marks_inferred_ttls(text: str, expected: list[tuple[str, int, bool]]) -> None:
    z = dns.name.from_text("z.test.")
    records = parse_zone_text("$ORIGIN z.test.\n" + text, z, "z.zone")
    assert [(str(r.name), r.ttl, r.ttl_inferred) for r in records] == expected


# --- serial 0 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "serial,lines", [(0, [3]), (1, []), (4294967295, []), (2024010100, [])], ids=str
)
def test_soa_serial_zero(serial: int, lines: list[int]) -> None:
    text = (
        HEAD + f"@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    )
    assert of(text, ZERO) == [(ZERO, line) for line in lines]


def test_soa_serial_zero_says_why() -> None:
    text = HEAD + "@ SOA ns1 hostmaster 0 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    (found,) = [f for f in findings(text) if f.id == ZERO]
    assert found.severity is Severity.WARNING
    assert "unset" in found.message and "RFC 1982" in found.message


# --- the server loads all three as written ------------------------------------------

ALL_THREE = (
    "$ORIGIN example.com.\n@ 300 SOA ns1 hostmaster 0 7200 3600 1209600 300\n@ NS ns1\n"
    "ns1 A 192.0.2.1\nwww.example.com A 192.0.2.2\n@ MX 10 mail.example.com\n"
)


def test_server_still_loads_zones_with_these_mistakes() -> None:
    result = compile_zone(ORIGIN, parse_zone_text(ALL_THREE, ORIGIN, "z.zone"), "z.zone")
    assert result.version is not None and result.errors == []
    doubled = dns.name.from_text("www.example.com.example.com.")
    assert dns.rdatatype.A in result.version.nodes[doubled]
    assert result.version.serial == 0
    assert {f.id for f in findings(ALL_THREE)} >= {DOT, NO_TTL, ZERO}
    assert not [f for f in findings(ALL_THREE) if f.severity is Severity.ERROR]


# --- regression tests, named after what a new user hit ------------------------------


def test_check_missed_owner_repeating_origin_without_trailing_dot() -> None:
    assert of(HEAD + BASE + "www.example.com A 192.0.2.2\n", DOT) == [(DOT, 6)]


def test_check_missed_mx_target_repeating_origin_without_trailing_dot() -> None:
    body = "@ MX 10 mail.example.com\nmail A 192.0.2.3\n"
    assert of(HEAD + BASE + body, DOT) == [(DOT, 6)]


def test_check_missed_zone_without_ttl_directive() -> None:
    assert of("$ORIGIN example.com.\n" + BASE, NO_TTL) == [(NO_TTL, 2)]


def test_check_missed_serial_zero() -> None:
    text = HEAD + "@ SOA ns1 hostmaster 0 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    assert of(text, ZERO) == [(ZERO, 3)]


def test_authd_check_reports_all_three_in_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    from authd.cli import main

    path = Path(__file__).parent / "lintzones" / "solo" / "mistakes.example.zone"
    code = main(["check", str(path)])
    out = capsys.readouterr().out
    assert code == 0  # warnings only: the server loads it
    ids = [(line.split(":")[1], line.rsplit("[", 1)[1].rstrip("]")) for line in out.splitlines()]
    assert sorted(ids) == [
        ("11", "missing-trailing-dot"),
        ("4", "no-ttl-directive"),
        ("4", "soa-serial-zero"),
        ("8", "missing-trailing-dot"),
        ("8", "mx-target-no-address"),  # the name it became has no address
    ]
    assert "mail.mistakes.example became mail.mistakes.example.mistakes.example." in out
