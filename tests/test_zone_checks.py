"""Semantic zone checks (``authd.checks`` and the compiler's own findings).

Every check id has a zone that triggers it and a near-identical one that does
not; an ``error`` refuses the zone, a ``warning`` is reported and the zone
loads.  The table must list every id the source can emit.  A refused zone in
a running configuration answers SERVFAIL while the other zones keep serving.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rcode
import pytest
from zonekit import ask

from authd.build import LoadOutcome, build_snapshot
from authd.checks import LoaderCheck, Severity
from authd.config import config_from_dict
from authd.zone import compile_zone
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("z.test.")
HEAD = "$ORIGIN z.test.\n$TTL 300\n"
SOA = "@ SOA ns hm 1 7200 3600 1209600 300\n"
NS = "@ NS ns\nns A 192.0.2.1\n"
BASE = SOA + NS
# An RRSIG over www A with the TTL to fill in (the loader does not verify signatures).
SIG_A = "www {} RRSIG A 13 3 300 20360101000000 20260101000000 1 z.test. AAAA\n"


def _big_txt(count: int) -> str:
    return "".join(f'big TXT "{i:05d}{"x" * 244}"\n' for i in range(count))


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity
    bad: str  # zone body that triggers the check
    good: str  # a near miss that must not
    line: int | None = None  # the line the finding names (1 is $ORIGIN)


CHECKS = [
    Check("soa-missing", Severity.ERROR, NS, BASE),
    Check("soa-multiple", Severity.ERROR, BASE + "@ SOA ns hm 2 7200 3600 1209600 300\n",
          BASE + "@ TXT second-soa\n", line=3),
    Check("ns-missing", Severity.ERROR, SOA + "ns A 192.0.2.1\n", BASE),
    Check("soa-not-at-apex", Severity.ERROR, BASE + "sub SOA ns hm 1 7200 3600 1209600 300\n",
          BASE + "sub TXT soa\n", line=6),
    Check("cname-and-other-data", Severity.ERROR, BASE + "x CNAME ns\nx A 192.0.2.2\n",
          BASE + "x CNAME ns\ny A 192.0.2.2\n", line=6),
    Check("cname-multiple", Severity.ERROR, BASE + "x CNAME ns\nx CNAME y\n",
          BASE + "x CNAME ns\nw CNAME y\n", line=6),
    Check("dname-multiple", Severity.ERROR, BASE + "x DNAME a.example.\nx DNAME b.example.\n",
          BASE + "x DNAME a.example.\nw DNAME b.example.\n", line=6),
    Check("dname-children", Severity.ERROR, BASE + "x DNAME a.example.\ny.x A 192.0.2.2\n",
          BASE + "x DNAME a.example.\ny.w A 192.0.2.2\n", line=7),
    Check("ns-target-no-address", Severity.ERROR, BASE + "@ NS ns2\nns2 TXT none\n",
          BASE + "@ NS ns2\nns2 AAAA 2001:db8::2\n", line=4),
    Check("glue-missing", Severity.ERROR, BASE + "kid NS ns.kid\n",
          BASE + "kid NS ns.kid\nns.kid A 192.0.2.9\n", line=6),
    Check("out-of-zone", Severity.WARNING, BASE + "www.other.test. A 192.0.2.3\n",
          BASE + "www A 192.0.2.3\n", line=6),
    Check("ttl-mismatch", Severity.WARNING, BASE + "www 300 A 192.0.2.1\nwww 600 A 192.0.2.2\n",
          BASE + "www 300 A 192.0.2.1\nwww 300 A 192.0.2.2\n", line=7),
    # RRSIGs per covered type (RFC 4034 section 3): each TTL is compared with the
    # RRset it covers, never with RRSIGs of other covered types (issue 11: www A
    # 300 and www TXT 600 signed were a ttl-mismatch).
    Check("rrsig-ttl-mismatch", Severity.WARNING, BASE + "www A 192.0.2.1\n" + SIG_A.format(300)
          + SIG_A.format(600).replace(" 1 z.test.", " 2 z.test."),
          BASE + "www A 192.0.2.1\n" + SIG_A.format(300) + "www 600 TXT t\n"
          + SIG_A.format(600).replace("RRSIG A", "RRSIG TXT"), line=8),
    Check("rrsig-ttl-mismatch", Severity.WARNING,
          BASE + "www A 192.0.2.1\n" + SIG_A.format(600),
          BASE + "www A 192.0.2.1\n" + SIG_A.format(300), line=7),
    Check("duplicate-record", Severity.WARNING, BASE + "www A 192.0.2.1\nwww A 192.0.2.1\n",
          BASE + "www A 192.0.2.1\nwww A 192.0.2.2\n"),
    # 300 records of ~263 bytes cannot fit one 65,535-byte message; 200 can.
    Check("rrset-too-large", Severity.ERROR, BASE + _big_txt(300), BASE + _big_txt(200)),
]  # fmt: skip


def _compile(body: str):
    return compile_zone(ORIGIN, parse_zone_text(HEAD + body, ORIGIN, "z.zone"), "z.zone")


@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_check_triggers(check: Check) -> None:
    result = _compile(check.bad)
    found = [f for f in result.findings if f.id == check.id]
    assert found, [str(f) for f in result.findings]
    assert all(f.severity is check.severity for f in found)
    assert found[0].file == "z.zone"
    if check.line is not None:
        assert found[0].line == check.line, str(found[0])
    assert str(found[0]).endswith(f"[{check.id}]")
    assert str(found[0]).startswith(f"z.zone:{found[0].line}: {check.severity.value}: ")
    if check.severity is Severity.ERROR:
        assert result.version is None, "an error finding refuses the zone"
    else:
        assert result.version is not None, "a warning does not refuse the zone"


@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_check_near_miss_is_clean(check: Check) -> None:
    result = _compile(check.good)
    assert [str(f) for f in result.findings] == []
    assert result.version is not None


def _emitted_ids() -> set[str]:
    """Every check id passed to ``Finding``/``_finding`` in the source (a
    ``LoaderCheck`` member, or a string literal, which there should be none of)."""
    root = Path(__file__).resolve().parent.parent / "authd"
    ids: set[str] = set()
    for module in ("checks.py", "zone.py"):
        tree = ast.parse((root / module).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("Finding", "_finding")
                and node.args
            ):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    ids.add(arg.value)
                elif (
                    isinstance(arg, ast.Attribute)
                    and isinstance(arg.value, ast.Name)
                    and arg.value.id == "LoaderCheck"
                ):
                    ids.add(getattr(LoaderCheck, arg.attr).value)
    return ids


def test_table_covers_every_check_id() -> None:
    assert _emitted_ids() == {c.id for c in CHECKS}


@pytest.mark.parametrize(
    "body",
    [
        BASE + "@ SOA ns hm 1 7200 3600 1209600 300\n",
        BASE + "x CNAME ns\nx CNAME ns\n",
        BASE + "x DNAME a.example.\nx DNAME a.example.\n",
    ],
    ids=["soa", "cname", "dname"],
)
def test_identical_repeated_singleton_is_a_duplicate_not_a_second_record(body: str) -> None:
    # The same record twice is one record (RFC 2181 section 5: an RRset has no
    # duplicates); every other type gets the duplicate-record warning and loads.
    result = _compile(body)
    assert [f.id for f in result.findings] == ["duplicate-record"], [
        str(f) for f in result.findings
    ]
    assert result.version is not None


def test_out_of_zone_data_is_not_served() -> None:
    result = _compile(BASE + "www.other.test. A 192.0.2.3\n")
    assert result.version is not None
    assert dns.name.from_text("www.other.test.") not in result.version.nodes


def test_ttl_mismatch_uses_the_smaller_ttl() -> None:
    version = _compile(BASE + "www 300 A 192.0.2.1\nwww 600 A 192.0.2.2\n").version
    assert version is not None
    assert version.nodes[dns.name.from_text("www.z.test.")][1].ttl == 300


def test_broken_zone_answers_servfail_while_others_serve(tmp_path: Path) -> None:
    (tmp_path / "good.zone").write_text(
        "$ORIGIN good.test.\n$TTL 300\n" + BASE + "www A 192.0.2.80\n"
    )
    (tmp_path / "bad.zone").write_text(
        "$ORIGIN bad.test.\n$TTL 300\n" + BASE + "x CNAME ns\nx A 192.0.2.2\n"
    )
    config = config_from_dict(
        {
            "listen": [{"address": "127.0.0.1", "port": 0}],
            "zones": [
                {"name": "good.test", "file": "good.zone"},
                {"name": "bad.test", "file": "bad.zone"},
            ],
        },
        None,
        str(tmp_path),
    )
    snapshot, events = build_snapshot(config, None, 0)
    outcomes = {e.zone.to_text(): e.outcome for e in events}
    assert outcomes == {"good.test.": LoadOutcome.LOADED, "bad.test.": LoadOutcome.FAILED}
    bad = next(e for e in events if e.outcome is LoadOutcome.FAILED)
    assert bad.reason is not None and "[cname-and-other-data]" in bad.reason
    assert f"{tmp_path / 'bad.zone'}:6:" in bad.reason
    assert ask(snapshot, "www.good.test.", "A").rcode() == dns.rcode.NOERROR
    assert ask(snapshot, "x.bad.test.", "A").rcode() == dns.rcode.SERVFAIL
    assert ask(snapshot, "bad.test.", "SOA").rcode() == dns.rcode.SERVFAIL
