"""``authd check``: the zone linter's command line (registered by ``authd.cli``).

Owns: finding the zones to check (zone files, folders, configurations), reading
them, asking git for the version at ``--against REF``, and exit codes.  The
checks themselves are ``authd.lint`` (which runs the loader's own
``authd.checks``), the output formats ``authd.lint_report``.

Exit codes: 0 clean (warnings allowed unless ``--strict``), 1 a finding at
error level, 2 usage or unreadable input (a missing file, a refused config,
an unknown ``--against`` reference).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name

from authd import lint
from authd.checks import Finding, Severity
from authd.errors import AuthdError, ZoneError
from authd.lint_report import FORMATS, ZoneSummary, render
from authd.zone import Grouping, group_records
from authd.zonefile import parse_zone_file

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
#: Ids that mean the input could not be checked at all: exit 2.
INPUT_IDS = frozenset({"unreadable", "config"})
ZONE_SUFFIXES = (".zone", ".db")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``check`` subcommand to *sub*."""
    check = sub.add_parser(
        "check",
        help="check zone files as the server would load them, and lint them",
        description=(
            "Check zone files: every error is a zone `authd serve` refuses; warnings "
            "flag what is suspicious. ZONEFILE's origin comes from its name "
            "(example.com.zone, db.example.com, example.com.db) unless --origin; a "
            "DIR means its *.zone and db.* files; -c checks every zone of a config. "
            "Zones checked together are also checked against each other."
        ),
    )
    check.add_argument("paths", nargs="*", metavar="ZONEFILE|DIR")
    check.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="CONFIG",
        help="check every zone of this config (repeatable)",
    )
    check.add_argument("--origin", help="zone name of the one ZONEFILE (default: its file name)")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="ID",
        help="silence the warning ID (repeatable)",
    )
    check.add_argument(
        "--against",
        metavar="REF",
        help="fail if a zone changed since git REF without a serial increase",
    )
    check.add_argument("--format", choices=FORMATS, default="text", help="output format")
    check.set_defaults(func=run)


def origin_from_filename(path: str) -> str:
    """``example.com.zone``, ``db.example.com``, ``example.com.db`` -> ``example.com``."""
    base = os.path.basename(path)
    for suffix in ZONE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base.startswith("db."):
        base = base[3:]
    return base


def is_zone_file_name(name: str) -> bool:
    """What a folder argument picks up: ``*.zone`` and ``db.*``."""
    return name.endswith(".zone") or name.startswith("db.")


class UsageError(Exception):
    """Bad arguments: exit 2."""


@dataclass(frozen=True, slots=True)
class Target:
    """One zone file to check."""

    origin: dns.name.Name
    file: str
    check_serial: bool = True  # False when authd manages the serial (config serial policy)


@dataclass(slots=True)
class Plan:
    """The zones to check, in groups checked against each other."""

    groups: list[list[Target]] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # unreadable input
    notes: list[str] = field(default_factory=list)


def _origin(text: str, path: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as e:
        raise UsageError(f"{path}: cannot use {text!r} as the zone name: {e}") from None


def plan(paths: Sequence[str], configs: Sequence[str], origin: str | None) -> Plan:
    """Which zones to check, from the command line's paths and configs."""
    p = Plan()
    given: list[Target] = []
    files = [path for path in paths if not os.path.isdir(path)]
    if origin is not None and (len(files) != 1 or len(paths) != 1):
        raise UsageError("--origin needs exactly one ZONEFILE")
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if is_zone_file_name(n))
            found = [os.path.join(path, n) for n in names]
            found = [f for f in found if os.path.isfile(f)]
            if not found:
                raise UsageError(f"{path}: no zone files (*.zone, db.*) in this folder")
            given.extend(Target(_origin(origin_from_filename(f), f), f) for f in found)
        elif not os.path.exists(path):
            p.problems.append(_problem("unreadable", path, "no such file or folder"))
        else:
            given.append(Target(_origin(origin or origin_from_filename(path), path), path))
    if given:
        p.groups.append(given)
    for config_path in configs:
        _plan_config(p, config_path)
    return p


def _plan_config(p: Plan, path: str) -> None:
    from authd.config import SerialPolicy, ZoneType, load_config

    try:
        config = load_config(path)
    except AuthdError as e:
        p.problems.append(_problem("config", path, f"config refused: {e}"))
        return
    for view in config.views:
        group = []
        for zc in view.zones:
            if zc.type is ZoneType.SECONDARY and not os.path.exists(zc.file):
                p.notes.append(
                    f"{path}: {view.name}/{zc.name}: secondary zone skipped, "
                    f"no copy yet at {zc.file}"
                )
                continue
            managed = zc.serial is not SerialPolicy.KEEP
            file = _display(zc.file, os.getcwd())  # as the messages will show it
            group.append(Target(zc.name, file, check_serial=not managed))
        if group:
            p.groups.append(group)


def _problem(id: str, file: str, message: str) -> Finding:
    return Finding(id, Severity.ERROR, file, 0, message)


def check_file(target: Target) -> lint.ZoneLint:
    """Parse and lint one zone file; unreadable files give an ``unreadable`` error."""
    try:
        with open(target.file, "rb"):
            pass
    except OSError as e:
        problem = _problem("unreadable", target.file, f"cannot read: {e.strerror or e}")
        return lint.ZoneLint(target.origin, target.file, None, (problem,))
    try:
        records = parse_zone_file(target.file, target.origin)
    except ZoneError as e:
        return lint.syntax_failure(target.origin, e)
    return lint.lint_records(target.origin, records, target.file)


# --- git: --against ------------------------------------------------------------


class GitError(Exception):
    """git could not give the reference version: exit 2."""


def _git(args: Sequence[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as e:
        raise GitError(f"cannot run git: {e.strerror or e}") from None


def _toplevel(path: str) -> str:
    folder = os.path.dirname(os.path.realpath(path))
    out = _git(["rev-parse", "--show-toplevel"], folder)
    if out.returncode != 0:
        raise GitError(f"{path}: not in a git repository, so --against cannot compare")
    return os.path.realpath(out.stdout.decode().strip())


def _git_file(top: str, ref: str, path: str) -> bytes | None:
    """The bytes of *path* at *ref*, or None when it did not exist there."""
    rel = os.path.relpath(os.path.realpath(path), top).replace(os.sep, "/")
    if rel.startswith("../"):
        return None
    out = _git(["show", f"{ref}:{rel}"], top)
    return out.stdout if out.returncode == 0 else None


def verify_ref(ref: str, path: str) -> str:
    """The repository top of *path*, after checking *ref* names a commit there."""
    top = _toplevel(path)
    out = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    if out.returncode != 0:
        raise GitError(f"--against {ref}: not a commit in {top}")
    return top


def old_grouping(zone: lint.ZoneLint, ref: str) -> Grouping | None:
    """*zone* as it was at git *ref* (its file and what it includes), or None
    when there is nothing to compare with (a new file, or one that did not
    parse then: the server would have had no version to keep either)."""
    g = zone.grouping
    assert g is not None
    top = verify_ref(ref, zone.file)
    files = [zone.file]
    for rrs in g.rrsets.values():
        for _, where in rrs.values():
            if where.file not in files:
                files.append(where.file)
    old: dict[str, bytes] = {}
    unchanged = True
    for f in files:
        content = _git_file(top, ref, f)
        if content is None:
            if f == zone.file:
                return None  # new since ref
            continue
        old[f] = content
        try:
            with open(f, "rb") as current:
                unchanged = unchanged and current.read() == content
        except OSError:
            unchanged = False
    if unchanged and len(old) == len(files):
        return g  # byte for byte the same: nothing to parse
    with tempfile.TemporaryDirectory(prefix="authd-against-") as tmp:
        for f, content in old.items():
            rel = os.path.relpath(os.path.realpath(f), top)
            dest = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as out:
                out.write(content)
        top_copy = os.path.join(tmp, os.path.relpath(os.path.realpath(zone.file), top))
        try:
            records = parse_zone_file(top_copy, zone.origin)
        except ZoneError:
            return None
        return group_records(zone.origin, records, zone.file, sharded=False)


# --- the command -----------------------------------------------------------------


def _display(path: str, cwd: str) -> str:
    """*path* relative to the working folder when it is inside it."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute, cwd)
    return absolute if rel.startswith("..") else rel


def run(args: argparse.Namespace) -> int:
    """``authd check``; returns the exit code."""
    # A short-lived process holding millions of objects and making no cycles:
    # the cyclic GC would only rescan the heap (seconds for a big zone).
    gc.disable()
    try:
        return _run(args)
    except UsageError as e:
        print(f"authd check: {e}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    if not args.paths and not args.config:
        raise UsageError("nothing to check: give ZONEFILEs, DIRs or -c CONFIG")
    disabled = set(args.disable)
    for rule_id in sorted(disabled):
        if rule_id not in lint.RULES:
            raise UsageError(f"--disable {rule_id}: no such check (see docs/linting.md)")
        if rule_id in lint.ERROR_IDS:
            raise UsageError(
                f"--disable {rule_id}: an error cannot be disabled, the server refuses such zones"
            )
    p = plan(args.paths, args.config, args.origin)
    for note in p.notes:
        print(f"authd check: {note}", file=sys.stderr)

    findings: list[Finding] = list(p.problems)
    checked: dict[tuple[str, dns.name.Name], lint.ZoneLint] = {}
    summaries: list[ZoneSummary] = []
    exit_usage = bool(p.problems)
    for group in p.groups:
        zones = []
        for target in group:
            key = (os.path.realpath(target.file), target.origin)
            zone = checked.get(key)
            if zone is None:
                zone = checked[key] = check_file(target)
                findings.extend(zone.findings)
                summaries.append(ZoneSummary(target.origin.to_text(), target.file, zone.serial))
                exit_usage = exit_usage or any(f.id in INPUT_IDS for f in zone.findings)
                if args.against and target.check_serial and zone.grouping is not None:
                    try:
                        old = old_grouping(zone, args.against)
                    except GitError as e:
                        raise UsageError(str(e)) from None
                    if old is not None and old is not zone.grouping:
                        refused = lint.compare_with(old, zone.grouping, args.against)
                        if refused is not None:
                            findings.append(refused)
            zones.append(zone)
        findings.extend(lint.lint_together(zones))

    findings = [f for f in findings if f.id not in disabled]
    if args.strict:
        findings = lint.strict(findings)
    cwd = os.getcwd()
    shown: dict[str, str] = {}

    def display(path: str) -> str:
        if path not in shown:
            shown[path] = _display(path, cwd)
        return shown[path]

    findings = _ordered(
        Finding(f.id, f.severity, display(f.file), f.line, f.message) for f in findings
    )
    summaries = [ZoneSummary(s.zone, display(s.file), s.serial) for s in summaries]
    sys.stdout.write(render(args.format, findings, summaries))
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = len(findings) - errors
    if args.format in ("text", "github"):
        print(
            f"authd check: {len(summaries)} zone{'s' * (len(summaries) != 1)}, "
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}",
            file=sys.stderr,
        )
    if exit_usage:
        return EXIT_USAGE
    return EXIT_FINDINGS if errors else EXIT_OK


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Unique findings, by file (in the order first seen) then line."""
    unique: dict[tuple[str, str, int, str], Finding] = {}
    for f in findings:
        unique.setdefault((f.id, f.file, f.line, f.message), f)
    order: dict[str, int] = {}
    for f in unique.values():
        order.setdefault(f.file, len(order))
    return sorted(unique.values(), key=lambda f: (order[f.file], f.line, f.id))


__all__ = ["origin_from_filename", "register", "run"]
