"""``authd check``, the zone linter (``authd.lint``, ``authd.cli.check`` and its report).

Every check id has a zone that triggers it and a near miss that does not (a
table, like tests/test_zone_checks.py; cross-zone ids take several zones).  The
invariant the linter exists for: ``authd serve`` refuses a zone exactly when
``authd check`` reports a refusal (a loader error) for it, over every zone the
tests hold; the DNSSEC errors, which the server serves, are
tests/test_lint_dnssec.py's.  Then
the command line: the three input forms, exit codes, ``--strict``,
``--disable``, the output formats, and ``--against`` in a real git repository.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import pytest
import yaml
from gitkit import git

from authd import lint, serial
from authd.checks import Finding, LoaderCheck, Severity
from authd.cli import main
from authd.cli.check import origin_from_filename
from authd.errors import ZoneError
from authd.lint_dnssec import DnssecCheck
from authd.zone import compile_zone, load_zone
from authd.zonefile import parse_zone_text

ROOT = Path(__file__).resolve().parent.parent
LINTZONES = ROOT / "tests" / "lintzones"
ORIGIN = dns.name.from_text("z.test.")
HEAD = "$ORIGIN z.test.\n$TTL 300\n"  # lines 1-2


def soa(refresh: int = 7200, retry: int = 3600, expire: int = 1209600, minimum: int = 300) -> str:
    return f"@ SOA ns hm 1 {refresh} {retry} {expire} {minimum}\n"  # line 3


NS = "@ NS ns\nns A 192.0.2.1\n"  # lines 4-5
BASE = soa() + NS  # a clean zone; bodies below start on line 6
DS = "x DS 12345 13 2 " + "ab" * 32 + "\n"
LONG_NAME = ".".join(["a" * 50] * 4)  # 4 * 51 octets; z.test. adds 8


def chain(links: int) -> str:
    return "".join(f"c{i} CNAME c{i + 1}\n" for i in range(1, links)) + f"c{links} CNAME ns\n"


def _kid(apex_ns: str = "ns1", child_glue: str = "192.0.2.9") -> dict[str, str]:
    parent = (
        "$ORIGIN p.test.\n$TTL 300\n" + BASE + "kid NS ns1.kid\nkid NS ns2.kid\n"
        "ns1.kid A 192.0.2.9\nns2.kid A 192.0.2.10\n"
    )
    child = (
        "$ORIGIN kid.p.test.\n$TTL 300\n" + soa() + "".join(f"@ NS {n}\n" for n in apex_ns.split())
        + f"ns1 A {child_glue}\nns2 A 192.0.2.10\n"
    )  # fmt: skip
    return {"p.test.": parent, "kid.p.test.": child}


Y = "$ORIGIN y.test.\n$TTL 300\n" + BASE  # another zone, checked beside z.test.
REV = "2.0.192.in-addr.arpa."
REVERSE = (
    "$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 300\n" + soa() + "@ NS ns.z.test.\n1 PTR www.z.test.\n"
)


@dataclass(frozen=True)
class Case:
    id: str
    bad: str | dict[str, str]  # a body after HEAD (zone z.test.), or origin -> full text
    good: str | dict[str, str]  # a near miss that must not trigger it
    line: int | None = None  # the line the finding names
    clean: bool = True  # the near miss has no finding at all
    name: str = ""  # a second row for the same id

    @property
    def label(self) -> str:
        return f"{self.id}-{self.name}" if self.name else self.id


CASES = [
    # The loader's refusals (authd.checks), with their own table in test_zone_checks.py.
    Case("syntax", BASE + "www A 192.0.2.300\n", BASE + "www A 192.0.2.30\n", line=6),
    Case("soa-missing", NS, BASE),
    Case("soa-multiple", BASE + "@ SOA ns hm 2 7200 3600 1209600 300\n", BASE + "@ TXT soa\n",
         line=3),
    Case("ns-missing", soa() + "ns A 192.0.2.1\n", BASE),
    Case("soa-not-at-apex", BASE + "sub SOA ns hm 1 7200 3600 1209600 300\n",
         BASE + "sub TXT soa\n", line=6),
    Case("cname-and-other-data", BASE + "x CNAME ns\nx A 192.0.2.2\n",
         BASE + "x CNAME ns\ny A 192.0.2.2\n", line=6),
    Case("cname-multiple", BASE + "x CNAME ns\nx CNAME ns2\nns2 A 192.0.2.2\n",
         BASE + "x CNAME ns\nw CNAME ns\n", line=6),
    Case("dname-multiple", BASE + "x DNAME a.example.\nx DNAME b.example.\n",
         BASE + "x DNAME a.example.\nw DNAME b.example.\n", line=6),
    Case("dname-children", BASE + "x DNAME a.example.\ny.x A 192.0.2.2\n",
         BASE + "x DNAME a.example.\ny.w A 192.0.2.2\n", line=7),
    Case("ns-target-no-address", BASE + "@ NS ns2\nns2 TXT none\n",
         BASE + "@ NS ns2\nns2 AAAA 2001:db8::2\n", line=4),
    Case("glue-missing", BASE + "kid NS ns.kid\n", BASE + "kid NS ns.kid\nns.kid A 192.0.2.9\n",
         line=6),
    # 260 TXT records of 255 bytes: within max_records_per_rrset, over a message.
    Case("rrset-too-large", BASE + "".join(f'x TXT "{"t" * 252}{i:03d}"\n' for i in range(260)),
         BASE + "".join(f'x TXT "{"t" * 250}{i}"\n' for i in range(240)), line=6),
    # The loader's warnings (authd.zone).
    Case("out-of-zone", BASE + "www.other.test. A 192.0.2.3\n", BASE + "www A 192.0.2.3\n", line=6),
    Case("ttl-mismatch", BASE + "www 300 A 192.0.2.1\nwww 600 A 192.0.2.2\n",
         BASE + "www 300 A 192.0.2.1\nwww 300 A 192.0.2.2\n", line=7),
    Case("duplicate-record", BASE + "www A 192.0.2.1\nwww A 192.0.2.1\n",
         BASE + "www A 192.0.2.1\nwww A 192.0.2.2\n", line=6),
    Case("duplicate-record", BASE + "@ MX 10 ns\n@ MX 10 ns.z.test.\n", BASE + "@ MX 10 ns\n",
         line=6, name="mx"),
    # Targets of NS, MX and SRV.
    Case("ns-target-cname", BASE + "kid NS alias\nalias CNAME ns\n", BASE + "kid NS ns\n", line=6),
    Case("mx-target-cname", BASE + "@ MX 10 alias\nalias CNAME ns\n", BASE + "@ MX 10 ns\n",
         line=6),
    Case("mx-target-cname", BASE + "@ MX 10 m.old\nold DNAME z.test.\nm A 192.0.2.2\n",
         BASE + "@ MX 10 m\nold DNAME z.test.\nm A 192.0.2.2\n", line=6, name="dname"),
    Case("srv-target-cname", BASE + "_x._tcp SRV 0 0 1 alias\nalias CNAME ns\n",
         BASE + "_x._tcp SRV 0 0 1 ns\n", line=6),
    Case("mx-target-no-address", BASE + "@ MX 10 mail\n",
         BASE + "@ MX 10 mail\nmail A 192.0.2.25\n", line=6),
    Case("mx-target-no-address", BASE + "@ MX 10 a.mail\nb.mail A 192.0.2.25\n",
         BASE + "@ MX 10 a.mail\n*.mail A 192.0.2.25\n", line=6, name="wildcard"),
    Case("srv-target-no-address", BASE + "_x._tcp SRV 0 0 1 host\nhost TXT x\n",
         BASE + "_x._tcp SRV 0 0 1 host\nhost A 192.0.2.7\n", line=6),
    Case("ns-target-unresolvable", BASE + "kid NS nowhere\n", BASE + "kid NS ns\n", line=6),
    Case("sibling-glue-missing", BASE + "a NS ns.b\nb NS ns.example.\n",
         BASE + "a NS ns.b\nb NS ns.b\nns.b A 192.0.2.9\n", line=6),
    Case("target-is-address", BASE + "@ MX 10 192.0.2.1\n", BASE + "@ MX 10 ns\n", line=6),
    Case("target-is-address", BASE + "kid NS 192.0.2.1.\n", BASE + "kid NS ns\n", line=6,
         name="absolute"),
    Case("target-root", BASE + "@ MX 10 .\n", BASE + "@ MX 0 .\n", line=6),
    Case("target-root", BASE + "_x._tcp SRV 0 0 0 .\n_x._tcp SRV 0 0 1 ns\n",
         BASE + "_x._tcp SRV 0 0 0 .\n", line=6, name="srv"),
    Case("target-root", BASE + "kid NS .\n", BASE + "kid NS ns\n", line=6, name="ns"),
    # CNAME chains.
    Case("cname-target-missing", BASE + "www CNAME nothere\n", BASE + "www CNAME ns\n", line=6),
    Case("cname-chain-long", BASE + chain(lint.CNAME_CHAIN_WARN + 1),
         BASE + chain(lint.CNAME_CHAIN_WARN), line=6),
    Case("cname-loop", BASE + "a CNAME b\nb CNAME a\n", BASE + "a CNAME b\nb CNAME ns\n", line=6),
    Case("cname-loop", BASE + "*.w CNAME x.w\n", BASE + "*.w CNAME ns\n", line=6,
         name="wildcard"),
    Case("cname-loop", BASE + "a CNAME b.d\nd DNAME z.test.\nb CNAME a\n",
         BASE + "a CNAME b.d\nd DNAME z.test.\nb CNAME ns\n", line=6, name="dname"),
    # Delegations.
    Case("glue-unused", BASE + "kid NS ns.kid\nns.kid A 192.0.2.9\nold.kid A 192.0.2.10\n",
         BASE + "kid NS ns.kid\nns.kid A 192.0.2.9\n", line=8),
    Case("occluded-data", BASE + "kid NS ns.kid\nns.kid A 192.0.2.9\nwww.kid TXT hidden\n",
         BASE + "kid NS ns.kid\nns.kid A 192.0.2.9\nwww.ki TXT seen\n", line=8),
    Case("occluded-data", BASE + "kid NS ns\nkid MX 10 ns\n", BASE + "kid NS ns\nkid " + DS[2:],
         line=7, name="at-cut"),
    # TTLs.
    Case("ttl-zero", BASE + "www 0 A 192.0.2.1\n", BASE + "www 1 A 192.0.2.1\n", line=6),
    Case("ttl-long", BASE + f"www {lint.TTL_LONG + 1} A 192.0.2.1\n",
         BASE + f"www {lint.TTL_LONG} A 192.0.2.1\n", line=6),
    Case("ttl-over-max", BASE + "www 2147483648 A 192.0.2.1\n",
         BASE + "www 2147483647 A 192.0.2.1\n", line=6, clean=False),
    # SOA timers.
    Case("soa-refresh", soa(refresh=1199, retry=600) + NS, soa(refresh=1200, retry=600) + NS,
         line=3),
    Case("soa-retry", soa(retry=7200) + NS, soa(retry=7199) + NS, line=3),
    Case("soa-retry", soa(retry=59) + NS, soa(retry=60) + NS, line=3, name="short"),
    Case("soa-expire", soa(expire=14 * 86400 - 1) + NS, soa(expire=14 * 86400) + NS, line=3),
    Case("soa-minimum", soa(minimum=86401) + NS, soa(minimum=86400) + NS, line=3),
    # Names.
    Case("label-near-limit", BASE + "a" * 60 + " A 192.0.2.1\n", BASE + "a" * 59 + " A 192.0.2.1\n",
         line=6),
    Case("name-near-limit", BASE + LONG_NAME + "." + "b" * 27 + " TXT x\n",
         BASE + LONG_NAME + "." + "b" * 26 + " TXT x\n", line=6),
    Case("hostname-syntax", BASE + "a_b A 192.0.2.1\n", BASE + "a-b A 192.0.2.1\n", line=6),
    Case("hostname-syntax", BASE + "@ MX 10 mail_1\nmail_1 TXT x\n",
         BASE + "@ MX 10 mail-1\nmail-1 A 192.0.2.1\n", line=6, name="mx"),
    # Wildcards and DNAMEs.
    Case("wildcard-ns", BASE + "*.w NS ns\n", BASE + "*.w TXT x\n", line=6),
    Case("wildcard-dname", BASE + "*.w DNAME example.net.\n", BASE + "w DNAME example.net.\n",
         line=6),
    Case("wildcard-non-terminal", BASE + "a.*.w TXT x\n", BASE + "a.w TXT x\n", line=6),
    Case("dname-and-ns", BASE + "x NS ns\nx DNAME example.net.\n", BASE + "x NS ns\n", line=6),
    Case("ds-not-at-delegation", BASE + DS, BASE + "x NS ns\n" + DS, line=6),
    # Classic mistakes (tests/test_lint_mistakes.py has their own tables).
    Case("missing-trailing-dot", BASE + "www.z.test A 192.0.2.2\n",
         BASE + "www.z.test. A 192.0.2.2\n", line=6),
    Case("no-ttl-directive", {"z.test.": "$ORIGIN z.test.\n" + BASE},
         {"z.test.": "$ORIGIN z.test.\n@ 300 SOA ns hm 1 7200 3600 1209600 300\n"
                     "@ 300 NS ns\nns 300 A 192.0.2.1\n"}, line=2),
    Case("soa-serial-zero", "@ SOA ns hm 0 7200 3600 1209600 300\n" + NS, BASE, line=3),
    # Across zones.
    Case("delegation-ns-mismatch", _kid("ns1"), _kid("ns1 ns2")),
    Case("delegation-glue-mismatch", _kid("ns1 ns2", child_glue="192.0.2.99"), _kid("ns1 ns2")),
    Case("delegation-missing",
         {"p.test.": "$ORIGIN p.test.\n$TTL 300\n" + BASE,
          "kid.p.test.": "$ORIGIN kid.p.test.\n$TTL 300\n" + BASE},
         {"p.test.": "$ORIGIN p.test.\n$TTL 300\n" + BASE + "kid NS ns.kid\nns.kid A 192.0.2.1\n",
          "kid.p.test.": "$ORIGIN kid.p.test.\n$TTL 300\n" + BASE}, line=3),
    Case("ptr-no-forward", {"z.test.": HEAD + BASE + "www A 192.0.2.2\n", REV: REVERSE},
         {"z.test.": HEAD + BASE + "www A 192.0.2.1\n", REV: REVERSE}, line=5),
    Case("mx-target-no-address",
         {"z.test.": HEAD + BASE + "@ MX 10 mail.y.test.\n", "y.test.": Y},
         {"z.test.": HEAD + BASE + "@ MX 10 mail.y.test.\n", "y.test.": Y + "mail A 192.0.2.25\n"},
         line=6, name="other-zone"),
    Case("cname-target-missing",
         {"z.test.": HEAD + BASE + "w CNAME w.y.test.\n", "y.test.": Y},
         {"z.test.": HEAD + BASE + "w CNAME ns.y.test.\n", "y.test.": Y},
         line=6, name="other-zone"),
]  # fmt: skip
# Checked on the command line: they need files, configs or git.
CLI_IDS = {"unreadable", "config", "serial-not-increased"}


def _lint_text(origin: dns.name.Name, text: str, file: str) -> lint.ZoneLint:
    try:
        records = parse_zone_text(text, origin, file)
    except ZoneError as e:
        return lint.syntax_failure(origin, e)
    return lint.lint_records(origin, records, file)


def run_case(zones: str | dict[str, str]) -> list[Finding]:
    """Lint one zone body (as z.test.) or several zones checked together."""
    if isinstance(zones, str):
        return list(_lint_text(ORIGIN, HEAD + zones, "z.zone").findings)
    results = [
        _lint_text(dns.name.from_text(origin), text, f"{origin}zone")
        for origin, text in zones.items()
    ]
    return [f for r in results for f in r.findings] + lint.lint_together(results)


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_check_triggers(case: Case) -> None:
    findings = run_case(case.bad)
    found = [f for f in findings if f.id == case.id]
    assert found, [str(f) for f in findings]
    assert all(f.severity is lint.RULES[case.id].severity for f in found)
    if case.line is not None:
        assert found[0].line == case.line, str(found[0])


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_check_near_miss(case: Case) -> None:
    findings = run_case(case.good)
    if case.clean:
        assert [str(f) for f in findings] == []
    else:
        assert [str(f) for f in findings if f.id == case.id] == []
        assert not [f for f in findings if f.severity is Severity.ERROR]


# DNSSEC ids: signed zones, in tests/test_lint_dnssec.py (which checks its own table).
DNSSEC_IDS = {c.value for c in DnssecCheck} | {"rrsig-ttl-mismatch"}


def test_table_covers_every_rule() -> None:
    assert {c.id for c in CASES} | CLI_IDS | DNSSEC_IDS == set(lint.RULES)


def _emitted_ids() -> set[str]:
    """Every id literal the source passes where findings are made."""
    makers = {"Finding", "_finding", "_problem"}
    ids: set[str] = set()
    for module in ("checks.py", "zone.py", "lint.py", "lint_dnssec.py", "cli/check.py"):
        tree = ast.parse((ROOT / "authd" / module).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in makers
                and node.args
            ):
                found = _id_literal(node.args[0])
                if found is not None:
                    ids.add(found)
    # Ids chosen from a table rather than written at the call.
    ids.update(lint._TARGET_IDS.values())
    return ids


def _id_literal(arg: ast.expr) -> str | None:
    """The id an argument names: ``LoaderCheck.X``/``LintCheck.X``, or a string."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    catalogues = {
        "LoaderCheck": LoaderCheck,
        "LintCheck": lint.LintCheck,
        "DnssecCheck": DnssecCheck,
    }
    if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name):
        catalogue = catalogues.get(arg.value.id)
        if catalogue is not None:
            return str(getattr(catalogue, arg.attr).value)
    return None


def test_every_emitted_id_is_in_the_catalogue() -> None:
    assert _emitted_ids() <= set(lint.RULES)
    assert set(lint.RULES) - _emitted_ids() == set()


def test_ids_are_kebab_case_and_documented() -> None:
    doc = (ROOT / "docs" / "linting.md").read_text()
    for rule_id in lint.RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule_id), rule_id
        assert f"`{rule_id}`" in doc, f"docs/linting.md does not describe {rule_id}"


def test_no_linter_warning_is_an_error() -> None:
    # Only the loader's refusals are errors: nothing the server loads fails the check.
    loader_errors = {
        "syntax", "unreadable", "config", "serial-not-increased", "soa-missing",
        "soa-multiple", "soa-not-at-apex", "ns-missing", "cname-and-other-data",
        "cname-multiple", "dname-multiple", "dname-children", "ns-target-no-address",
        "glue-missing", "rrset-too-large",
    }  # fmt: skip
    assert lint.ERROR_IDS == loader_errors


# --- the invariant: the server refuses <=> check reports an error ----------------


def _zone_files() -> list[tuple[Path, str]]:
    files = [(p, origin_from_filename(p.name)) for p in sorted((ROOT / "zones").glob("*.zone"))]
    files += [(p, origin_from_filename(p.name)) for p in sorted((ROOT / "tests/zones").glob("*"))]
    files += [
        (p, origin_from_filename(p.name))
        for p in sorted(LINTZONES.rglob("*"))
        if p.is_file() and p.name != "README"
    ]
    # Hand-named origins for files whose name is not their zone.
    fixed = {"example.zone": "example"}
    return [(p, fixed.get(p.name, o)) for p, o in files]


def _server_refuses_file(path: Path, origin: dns.name.Name) -> bool:
    try:
        return load_zone(origin, str(path)).version is None
    except ZoneError:
        return True


@pytest.mark.parametrize("path,origin", _zone_files(), ids=lambda v: str(v)[-40:])
def test_server_refuses_iff_check_errors_files(
    path: Path, origin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A refusal is a loader error (lint.ERROR_IDS); DNSSEC errors fail the
    # check too but the server serves such zones (tests/test_lint_dnssec.py).
    name = dns.name.from_text(origin)
    code = main(["check", "--format", "json", "--origin", origin, str(path)])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert (code == 1) == any(f["severity"] == "error" for f in report["findings"])
    refused = any(f["id"] in lint.ERROR_IDS for f in report["findings"])
    assert _server_refuses_file(path, name) == refused


def _texts() -> list[tuple[str, str]]:
    """Every single-zone text of this table and of tests/test_zone_checks.py."""
    import test_zone_checks

    out = [
        (f"zone-checks-{c.id}-{which}", test_zone_checks.HEAD + body)
        for c in test_zone_checks.CHECKS
        for which, body in (("bad", c.bad), ("good", c.good))
    ]
    for case in CASES:
        for which, zones in (("bad", case.bad), ("good", case.good)):
            if isinstance(zones, str):
                out.append((f"{case.label}-{which}", HEAD + zones))
            else:
                for origin, text in zones.items():
                    if origin == "z.test.":
                        out.append((f"{case.label}-{which}-{origin}", text))
    return out


@pytest.mark.parametrize("label,text", _texts(), ids=[t[0] for t in _texts()])
def test_server_refuses_iff_check_errors_tables(label: str, text: str) -> None:
    linted = _lint_text(ORIGIN, text, "z.zone")
    try:
        result = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN, "z.zone"), "z.zone")
    except ZoneError:
        refused, loader_findings = True, []
    else:
        refused, loader_findings = result.version is None, list(result.findings)
    assert refused == bool(linted.refusals), [str(f) for f in linted.findings]
    # The linter says everything the loader says, and more.
    assert set(map(str, loader_findings)) <= set(map(str, linted.findings))


# --- the command line ----------------------------------------------------------------


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "filename,origin",
    [
        ("example.com.zone", "example.com"),
        ("db.example.com", "example.com"),
        ("example.com.db", "example.com"),
        ("example.com", "example.com"),
        ("db.example.com.zone", "example.com"),
        ("2.0.192.in-addr.arpa.zone", "2.0.192.in-addr.arpa"),
        ("some/dir/z.test.zone", "z.test"),
    ],
)
def test_origin_from_file_name(filename: str, origin: str) -> None:
    assert origin_from_filename(filename) == origin


def test_clean_zone_exits_0_and_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    zone = write(tmp_path / "z.test.zone", HEAD + BASE)
    code, out, err = check(capsys, str(zone))
    assert (code, out) == (0, "")
    assert "1 zone, 0 errors, 0 warnings" in err


def test_text_output_is_compiler_style(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    zone = write(tmp_path / "z.test.zone", HEAD + BASE + "x CNAME ns\nx A 192.0.2.2\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "z.test.zone")
    assert code == 1
    assert out == "z.test.zone:6: error: x.z.test. has a CNAME and other data (A) " \
        "[cname-and-other-data]\n"  # fmt: skip
    del zone


def test_file_level_findings_have_no_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    write(tmp_path / "z.test.zone", HEAD + NS)
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "z.test.zone")
    assert code == 1
    assert out.startswith("z.test.zone: error: no SOA record at the apex z.test. [soa-missing]")


def test_warnings_exit_0_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    zone = write(tmp_path / "z.test.zone", HEAD + BASE + "@ MX 10 mail\n")
    code, out, _ = check(capsys, str(zone))
    assert code == 0 and "warning:" in out and "[mx-target-no-address]" in out
    code, out, _ = check(capsys, "--strict", str(zone))
    assert code == 1 and "error:" in out and "warning:" not in out


def test_disable_silences_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    zone = write(tmp_path / "z.test.zone", HEAD + BASE + "@ MX 10 mail\nwww 0 A 192.0.2.1\n")
    code, out, _ = check(capsys, "--strict", "--disable", "mx-target-no-address", str(zone))
    assert code == 1 and "[ttl-zero]" in out and "mx-target" not in out
    args = ["--strict", "--disable", "mx-target-no-address", "--disable", "ttl-zero", str(zone)]
    code, out, _ = check(capsys, *args)
    assert (code, out) == (0, "")


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "nothing to check"),
        (["--disable", "no-such-check", "x.zone"], "no such check"),
        (["--disable", "cname-and-other-data", "x.zone"], "cannot be disabled"),
        # One --origin names every ZONEFILE's zone; several pair in order.
        (["--origin", "a", "--origin", "b", "a.zone", "b.zone", "c.zone"], "2 --origin for 3"),
        (["--origin", "a", "--origin", "b", "a.zone"], "2 --origin for 1"),
        (["--origin", "a", "tests/lintzones"], "a DIR's files take theirs"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = check(capsys, *argv)
    assert code == 2
    assert message in err


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    good = write(tmp_path / "z.test.zone", HEAD + BASE)
    code, out, _ = check(capsys, str(good), str(tmp_path / "missing.zone"))
    assert code == 2
    assert "missing.zone: error: no such file or folder [unreadable]" in out


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["check", "--format", "xml", "x.zone"])
    assert e.value.code == 2


def test_syntax_error_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    write(tmp_path / "inc.part", "www A 192.0.2.1\nbad A nope\n")
    zone = write(tmp_path / "z.test.zone", HEAD + BASE + "$INCLUDE inc.part\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, zone.name)
    assert code == 1
    assert out.startswith("inc.part:2: error: bad IPv4 address 'nope' [syntax]")


# --- output formats ------------------------------------------------------------------

MIXED = HEAD + BASE + "x CNAME ns\nx A 192.0.2.2\n@ MX 10 mail\n"  # an error, a warning


def test_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "z.test.zone", MIXED)
    monkeypatch.chdir(tmp_path)
    code, out, err = check(capsys, "--format", "json", "z.test.zone")
    assert code == 1 and err == ""
    report = json.loads(out)
    assert report["errors"] == 1 and report["warnings"] == 1
    assert report["zones"] == [{"zone": "z.test.", "file": "z.test.zone", "serial": 1}]
    first = report["findings"][0]
    assert first == {
        "id": "cname-and-other-data",
        "severity": "error",
        "file": "z.test.zone",
        "line": 6,
        "message": "x.z.test. has a CNAME and other data (A)",
    }
    assert report["findings"][1]["id"] == "mx-target-no-address"


GITHUB = re.compile(r"::(error|warning) file=[^,:]+(,line=\d+)?,title=[a-z0-9-]+::.+")


def test_github_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "z.test.zone", MIXED)
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "--format", "github", "z.test.zone")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2 and all(GITHUB.fullmatch(line) for line in lines), lines
    assert lines[0] == (
        "::error file=z.test.zone,line=6,title=cname-and-other-data::"
        "x.z.test. has a CNAME and other data (A)"
    )
    assert lines[1].startswith("::warning file=z.test.zone,line=8,title=mx-target-no-address::")


def test_github_output_escapes() -> None:
    from authd.cli.check_report import github_line

    f = Finding("syntax", Severity.ERROR, "a,b:c.zone", 0, "50% bad\nline")
    assert github_line(f) == "::error file=a%2Cb%3Ac.zone,title=syntax::50%25 bad%0Aline"


def test_sarif_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "z.test.zone", MIXED)
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "--format", "sarif", "z.test.zone")
    assert code == 1
    log = json.loads(out)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "authd check"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(lint.RULES)
    for r in rules:
        assert r["shortDescription"]["text"]
        assert r["defaultConfiguration"]["level"] in ("error", "warning")
    assert [r["ruleId"] for r in run["results"]] == ["cname-and-other-data", "mx-target-no-address"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note", "none")
        assert result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "z.test.zone"
        assert physical["region"]["startLine"] >= 1


def test_sarif_strict_levels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "z.test.zone", MIXED)
    monkeypatch.chdir(tmp_path)
    _, out, _ = check(capsys, "--format", "sarif", "--strict", "z.test.zone")
    assert {r["level"] for r in json.loads(out)["runs"][0]["results"]} == {"error"}


# --- the folder and config forms -------------------------------------------------------


def test_folder_checks_its_zone_files_together(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = check(capsys, "tests/lintzones")
    assert code == 0
    # Cross-zone: the reverse zone against the forward one beside it.
    assert out == (
        "tests/lintzones/2.0.192.in-addr.arpa.zone:13: warning: 81.2.0.192.in-addr.arpa. "
        "PTR gone.example.test., but gone.example.test. does not exist in example.test. in "
        "tests/lintzones/example.test.zone [ptr-no-forward]\n"
    )
    assert "3 zones" in err  # not README, not solo/


def test_folder_without_zone_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "notes.txt", "hello\n")
    code, _, err = check(capsys, str(tmp_path))
    assert code == 2 and "no zone files" in err


def test_several_files_are_checked_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    for origin, text in _kid("ns1").items():
        write(tmp_path / f"{origin}zone", text)
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, "p.test.zone", "kid.p.test.zone")
    assert code == 0 and "[delegation-ns-mismatch]" in out
    code, out, _ = check(capsys, "p.test.zone")
    assert (code, out) == (0, "")


def test_config_checks_every_zone_of_every_view(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(LINTZONES, zones)
    write(zones / "bad.test.zone", "$ORIGIN bad.test.\n$TTL 300\n" + BASE + "kid NS ns.kid\n")
    config = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "views": [
            {
                "name": "inside",
                "match_clients": ["127.0.0.1"],
                "zones": [
                    {"name": "example.test", "file": "zones/example.test.zone"},
                    {"name": "2.0.192.in-addr.arpa", "file": "zones/2.0.192.in-addr.arpa.zone"},
                    {
                        "name": "sec.test",
                        "type": "secondary",
                        "primaries": ["192.0.2.53"],
                        "file": "zones/sec.test.zone",
                    },
                ],
            },
            {
                "name": "outside",
                "zones": [
                    {"name": "example.test", "in_view": "inside"},
                    {"name": "bad.test", "file": "zones/bad.test.zone"},
                ],
            },
        ],
    }
    path = write(tmp_path / "authd.yaml", yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    code, out, err = check(capsys, "-c", str(path))
    assert code == 1
    assert "zones/bad.test.zone:6: error: delegation kid.bad.test." in out  # glue-missing
    assert "[ptr-no-forward]" in out  # the inside view's zones, checked together
    assert "secondary zone skipped" in err and "sec.test" in err
    assert "3 zones" in err  # example.test once, though two views serve it
    # A secondary whose copy exists is checked.
    shutil.copy(zones / "example.test.zone", zones / "sec.test.zone")
    code, out, err = check(capsys, "-c", str(path))
    assert "secondary zone skipped" not in err and "4 zones" in err


def test_refused_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "authd.yaml", "zones:\n  - {name: a.test, file: missing.zone}\n")
    code, out, _ = check(capsys, "-c", str(path))
    assert code == 2
    assert "[config]" in out and "missing.zone" in out


# --- --against: the serial must increase when the content changes ----------------------


def zone_text(serial: int, www: str = "192.0.2.80", comment: str = "") -> str:
    return (
        f"; {comment}\n$ORIGIN z.test.\n$TTL 300\n"
        f"@ SOA ns hm {serial} 7200 3600 1209600 300\n" + NS + f"www A {www}\n"
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is needed (scripts/setup-and-test.sh installs it)")
    git(tmp_path, "init", "-q")
    write(tmp_path / "zones" / "z.test.zone", zone_text(2024060101))
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "zone")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass(frozen=True)
class Edit:
    id: str
    text: str
    code: int
    says: str = ""
    extra: dict[str, str] = field(default_factory=dict)


EDITS = [
    Edit("unchanged", zone_text(2024060101), 0),
    Edit("comment-only", zone_text(2024060101, comment="reworded"), 0),
    Edit("content-and-serial", zone_text(2024060102, "192.0.2.81"), 0),
    Edit("serial-only", zone_text(2024060102), 0),
    Edit("content-not-serial", zone_text(2024060101, "192.0.2.81"), 1,
         "serial 2024060101 not increased since HEAD, content changed"),
    Edit("serial-decreased", zone_text(2024060100, "192.0.2.81"), 1,
         "serial 2024060100 decreased from 2024060101 (RFC 1982)"),
    Edit("serial-decreased-same-content", zone_text(2024060100), 1, "content unchanged"),
    Edit("step-over-2^31", zone_text(2024060101 + 2**31 + 5, "192.0.2.81"), 1,
         "2^31 or more, which RFC 1982 reads as a decrease"),
    Edit("step-exactly-2^31", zone_text(2024060101 + 2**31, "192.0.2.81"), 1,
         "exactly 2^31 away from 2024060101, which RFC 1982 leaves undefined"),
    Edit("wraps-around", zone_text(5, "192.0.2.81"), 1, "decreased from 2024060101"),
]  # fmt: skip


@pytest.mark.parametrize("edit", EDITS, ids=[e.id for e in EDITS])
def test_against_git_ref(edit: Edit, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "zones" / "z.test.zone", edit.text)
    code, out, _ = check(capsys, "--against", "HEAD", "zones/z.test.zone")
    assert code == edit.code, out
    if edit.code:
        assert "[serial-not-increased]" in out and edit.says in out
        assert out.startswith("zones/z.test.zone:4: error: serial ")  # the SOA


def test_against_wraparound_increase(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "zones" / "z.test.zone", zone_text(4294967295))
    git(repo, "commit", "-q", "-am", "near the top")
    write(repo / "zones" / "z.test.zone", zone_text(1, "192.0.2.81"))
    code, out, _ = check(capsys, "--against", "HEAD", "zones/z.test.zone")
    assert (code, out) == (0, "")  # RFC 1982: 4294967295 -> 1 is an increase


def test_against_sees_changes_in_included_files(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "zones" / "hosts.inc", "mail A 192.0.2.25\n")
    write(repo / "zones" / "z.test.zone", zone_text(2024060101) + "$INCLUDE hosts.inc\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "include")
    write(repo / "zones" / "hosts.inc", "mail A 192.0.2.26\n")
    code, out, _ = check(capsys, "--against", "HEAD", "zones/z.test.zone")
    assert code == 1 and "[serial-not-increased]" in out


def test_against_new_file_has_nothing_to_compare(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "zones" / "new.test.zone", zone_text(1).replace("z.test.", "new.test."))
    code, out, _ = check(capsys, "--against", "HEAD", "zones/new.test.zone")
    assert (code, out) == (0, "")


def test_against_older_commit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "zones" / "z.test.zone", zone_text(2024060102, "192.0.2.81"))
    git(repo, "commit", "-q", "-am", "bump")
    write(repo / "zones" / "z.test.zone", zone_text(2024060102, "192.0.2.82"))
    code, out, _ = check(capsys, "--against", "HEAD~1", "zones/z.test.zone")
    assert (code, out) == (0, "")  # increased since HEAD~1
    code, out, _ = check(capsys, "--against", "HEAD", "zones/z.test.zone")
    assert code == 1


def test_against_unknown_ref_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, "--against", "no-such-branch", "zones/z.test.zone")
    assert code == 2 and "not a commit" in err


def test_against_outside_git_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = write(tmp_path / "z.test.zone", zone_text(1))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = check(capsys, "--against", "HEAD", str(zone))
    assert code == 2 and "not in a git repository" in err


def test_serial_step_explanations() -> None:
    assert serial.step_problem(1, 2) is None
    assert serial.step_problem(2**32 - 1, 0) is None
    assert serial.step_problem(5, 5) == "not increased"
    assert "exactly 2^31" in (serial.step_problem(0, 2**31) or "")
    assert "2^31 or more" in (serial.step_problem(0, 2**31 + 1) or "")
    assert "decreased from 7" in (serial.step_problem(7, 6) or "")


# --- shipping: the console script, pre-commit, the README ---------------------------


def test_console_script_and_module(tmp_path: Path) -> None:
    zone = write(tmp_path / "z.test.zone", MIXED)
    out = subprocess.run(
        [sys.executable, "-m", "authd", "check", "--format", "json", str(zone)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert json.loads(out.stdout)["errors"] == 1


def test_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "authd-check"]
    assert hook["entry"] == "authd check"
    assert hook["files"] == r"\.(zone|inc|include)$|(^|/)db\.|(^|/)(named\.root|root\.hints?)$"
    pattern = re.compile(hook["files"])
    assert pattern.search("zones/example.com.zone") and pattern.search("db.example.com")
    # Included files too (the hook checks the zones including them), and the root's names.
    assert pattern.search("zones/db.example.com") and pattern.search("zones/example.com.inc")
    assert pattern.search("named.root") and pattern.search("zones/root.hints")
    assert not pattern.search("mydb.example") and not pattern.search("README.md")
    assert not pattern.search("cache/state.db")  # an SQLite file is no zone


def test_readme_documents_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "## Zone linting in CI" in readme
    section = readme.split("## Zone linting in CI", 1)[1].split("\n## ", 1)[0]
    assert "authd check" in section and "--format github" in section
    assert "pre-commit" in section and "authd-check" in section
