"""Check ids: declared once, documented, and never written out by hand.

Every id ``authd check`` reports is a member of ``authd.checks.LoaderCheck``
(the loader's), ``authd.lint.LintCheck`` (the linter's) or
``authd.lint_dnssec.DnssecCheck`` (DNSSEC's), declared beside the checks that
emit it, and the catalogue ``authd.lint.RULES`` is built from those
declarations.  docs/linting.md lists exactly these ids with their severities,
and no module of ``authd/`` spells an id as a bare string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from authd import lint
from authd.checks import CheckId, LoaderCheck, Severity
from authd.lint_dnssec import DnssecCheck

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "linting.md"
# A row of the table of checks: | `id` | severity ... |
ROW = re.compile(r"^\| `([a-z0-9-]+)` \| (error|warning)\b", re.MULTILINE)
# The modules that make or report findings: there, even a one-word id
# ("syntax", "config") is one.  Elsewhere only the hyphenated ids are
# unambiguous ("config" is also a key path in config.py).
FINDING_MODULES = {"checks.py", "zone.py", "lint.py", "lint_dnssec.py", "lint_report.py"}


def _documented() -> dict[str, str]:
    section = DOC.read_text().split("\n## Checks\n", 1)[1]
    return {m.group(1): m.group(2) for m in ROW.finditer(section)}


def test_docs_list_every_declared_id() -> None:
    missing = set(lint.RULES) - set(_documented())
    assert not missing, f"docs/linting.md does not list {sorted(missing)}"


def test_docs_list_only_declared_ids() -> None:
    extra = set(_documented()) - set(lint.RULES)
    assert not extra, f"docs/linting.md lists ids no check declares: {sorted(extra)}"


def test_docs_give_each_id_its_declared_severity() -> None:
    documented = _documented()
    wrong = {
        i: s for i, s in documented.items() if i in lint.RULES and lint.RULES[i].severity.value != s
    }
    assert not wrong


def test_rules_are_built_from_the_declarations() -> None:
    declared = [*LoaderCheck, *lint.LintCheck, *DnssecCheck]
    assert [c.value for c in declared] == list(lint.RULES)
    assert len(set(lint.RULES)) == len(declared)  # no id declared twice
    for c in declared:
        rule = lint.RULES[c]
        assert (rule.severity, rule.summary, rule.reference) == (c.severity, c.summary, c.reference)
    # An id is a str: findings compare and print as the id itself.
    assert (
        LoaderCheck.SOA_MISSING == "soa-missing" and f"{LoaderCheck.SOA_MISSING}" == "soa-missing"
    )
    assert isinstance(LoaderCheck.SOA_MISSING, CheckId)
    assert {c for c in lint.LintCheck if c.severity is Severity.ERROR} == set()
    # The refusals are the loader's errors; DNSSEC errors are served (validators reject them).
    assert lint.ERROR_IDS == {c.value for c in LoaderCheck if c.severity is Severity.ERROR}
    assert not lint.ERROR_IDS & {c.value for c in DnssecCheck}


def _bare_ids(path: Path, ids: set[str]) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    declarations: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in (
            "LoaderCheck",
            "LintCheck",
            "DnssecCheck",
        ):
            declarations.update(id(sub) for sub in ast.walk(node))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in ids
        and id(node) not in declarations
    ]


def test_no_bare_id_string_in_authd() -> None:
    hyphenated = {i for i in lint.RULES if "-" in i}
    found = []
    for path in sorted((ROOT / "authd").rglob("*.py")):
        ids = set(lint.RULES) if path.name in FINDING_MODULES else hyphenated
        found += [
            f"{path.relative_to(ROOT)}:{line}: {value!r}" for line, value in _bare_ids(path, ids)
        ]
    assert found == []
