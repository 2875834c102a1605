"""Rendering ``authd check`` findings: compiler-style text, JSON, GitHub
workflow commands and SARIF 2.1.0.

Owns: the output formats and nothing else.  Pure: findings and the rule
catalogue in, text out; paths are shown as the caller gives them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from authd import __version__
from authd.checks import Finding, Severity
from authd.lint import RULES, Rule

FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True, slots=True)
class ZoneSummary:
    """One zone that was checked, for the JSON report."""

    zone: str
    file: str
    serial: int | None


def render(
    fmt: str,
    findings: Sequence[Finding],
    zones: Sequence[ZoneSummary] = (),
    rules: Mapping[str, Rule] = RULES,
) -> str:
    """*findings* in the format *fmt* (one of ``FORMATS``), ending in a newline
    unless empty."""
    if fmt == "text":
        return "".join(text_line(f) + "\n" for f in findings)
    if fmt == "github":
        return "".join(github_line(f) + "\n" for f in findings)
    if fmt == "json":
        return json.dumps(json_report(findings, zones), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif_report(findings, rules), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def text_line(f: Finding) -> str:
    """``file:line: severity: message [id]``, as compilers print (no line: ``file:``)."""
    where = f"{f.file}:{f.line}" if f.line > 0 else f.file
    return f"{where}: {f.severity.value}: {f.message} [{f.id}]"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(f: Finding) -> str:
    """A GitHub Actions workflow command, shown as an annotation on the file."""
    props = [f"file={_escape_property(f.file)}"]
    if f.line > 0:
        props.append(f"line={f.line}")
    props.append(f"title={_escape_property(f.id)}")
    return f"::{f.severity.value} {','.join(props)}::{_escape_data(f.message)}"


def _counts(findings: Sequence[Finding]) -> tuple[int, int]:
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    return errors, len(findings) - errors


def json_report(findings: Sequence[Finding], zones: Sequence[ZoneSummary]) -> dict[str, object]:
    errors, warnings = _counts(findings)
    return {
        "tool": "authd check",
        "version": __version__,
        "zones": [{"zone": z.zone, "file": z.file, "serial": z.serial} for z in zones],
        "findings": [
            {
                "id": f.id,
                "severity": f.severity.value,
                "file": f.file,
                "line": f.line,
                "message": f.message,
            }
            for f in findings
        ],
        "errors": errors,
        "warnings": warnings,
    }


def _uri(path: str) -> str:
    """A SARIF artifact URI: relative paths stay relative (to the checkout)."""
    path = path.replace("\\", "/")
    if path.startswith("/"):
        return "file://" + path
    return path


def sarif_report(findings: Sequence[Finding], rules: Mapping[str, Rule]) -> dict[str, object]:
    """A SARIF 2.1.0 log with one run: every rule of the catalogue, then the results."""
    ids = list(rules)
    index = {rule_id: i for i, rule_id in enumerate(ids)}
    sarif_rules = []
    for rule_id in ids:
        rule = rules[rule_id]
        full = f"{rule.summary} ({rule.reference})" if rule.reference else rule.summary
        sarif_rules.append(
            {
                "id": rule.id,
                "name": "".join(part.capitalize() for part in rule.id.split("-")),
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": full},
                "defaultConfiguration": {"level": rule.severity.value},
                "help": {"text": f"{full}. See docs/linting.md#{rule.id}."},
                "properties": {"tags": ["dns", "zone-file"]},
            }
        )
    results = []
    for f in findings:
        location: dict[str, object] = {"artifactLocation": {"uri": _uri(f.file)}}
        if f.line > 0:
            location["region"] = {"startLine": f.line}
        result: dict[str, object] = {
            "ruleId": f.id,
            "level": f.severity.value,
            "message": {"text": f.message},
            "locations": [{"physicalLocation": location}],
        }
        if f.id in index:
            result["ruleIndex"] = index[f.id]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "authd check",
                        "version": __version__,
                        "rules": sarif_rules,
                    }
                },
                "results": results,
            }
        ],
    }


__all__ = ["FORMATS", "ZoneSummary", "github_line", "render", "sarif_report", "text_line"]
