"""``authd check``: the zone linter's command line.

Owns: finding the zones to check (zone files, folders, configurations, and the
zones that ``$INCLUDE`` a given file), reading them, comparing with the version
at ``--against REF`` (git itself is ``authd.cli.repo``), and exit codes.  The
checks themselves are ``authd.lint`` (which runs the loader's own
``authd.checks``), the output formats ``authd.cli.check_report``.

Zones checked together are also checked against each other: every file given,
and every zone of every ``-c`` config (all views, all configs) as one set.
In a repository with no commit yet, ``--against`` has nothing to compare with:
the serial comparison is skipped with a note (the hook's first commit).

Signature validity is judged at ``--dnssec-time`` (default: the clock, read
here, not in the pure ``authd.lint_dnssec``).

Exit codes: 0 clean (warnings allowed unless ``--strict``), 1 a finding at
error level (a refusal, or a DNSSEC error), 2 usage or unreadable input (a
missing file, a refused config, an unknown ``--against`` reference).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.exception
import dns.name

from authd import lint
from authd.adapters.gcpause import gc_off
from authd.checks import Finding, LoaderCheck, Severity
from authd.cli import includes, repo
from authd.cli.check_report import FORMATS, ZoneSummary, render
from authd.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Subparsers
from authd.cli.repo import GitError, NoCommitYet
from authd.errors import AuthdError, ZoneError
from authd.limits import (
    DEFAULT_MAX_RECORDS_PER_RRSET,
    DEFAULT_MAX_ZONE_RECORDS,
    LINT_MAX_EXPIRY_DAYS,
    LINT_MAX_VERIFIED_SIGNATURES,
)
from authd.lint_dnssec import EXPIRY_WARN_DAYS, LintOptions
from authd.zone import Grouping, group_records
from authd.zonefile import parse_zone_file

#: Ids that mean the input could not be checked at all: exit 2.
INPUT_IDS = frozenset({LoaderCheck.UNREADABLE, LoaderCheck.CONFIG})
ZONE_SUFFIXES = (".zone", ".db")
#: File names (once the suffixes above and a ``db.`` prefix are taken off) that
#: mean the root zone: IANA's ``root.zone``, BIND's hints ``named.root``,
#: ``db.root``, ``root.hints``.  Else ``root.zone`` would be the zone ``root.``.
ROOT_NAMES = frozenset({"root", "named.root", "root.hints", "root.hint", "named.cache"})


def register(sub: Subparsers) -> None:
    """Add the ``check`` subcommand to *sub*."""
    check = sub.add_parser(
        "check",
        help="check zone files as the server would load them, and lint them",
        description=(
            "Check zone files: an error is a zone `authd serve` refuses, or a signed zone "
            "validators would find bogus (DNSSEC); warnings flag what is suspicious. "
            "ZONEFILE's origin comes from its name "
            "(example.com.zone, db.example.com, example.com.db; root.zone, db.root and "
            "named.root mean the root zone) unless --origin; a DIR means its *.zone and "
            "db.* files; a file that zones of its repository $INCLUDE means those zones; "
            "-c checks every zone of a config. Zones checked together (all files given; "
            "all zones of all -c configs) are also checked against each other."
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
    check.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "zone name of the ZONEFILEs (default: from each file name); one --origin "
            "applies to every ZONEFILE, several pair with the ZONEFILEs in order"
        ),
    )
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="ID",
        help="silence the check ID: a warning or a DNSSEC error, not a refusal (repeatable)",
    )
    check.add_argument(
        "--against",
        metavar="REF",
        help="fail if a zone changed since git REF without a serial increase",
    )
    check.add_argument("--format", choices=FORMATS, default="text", help="output format")
    check.add_argument(
        "--dnssec-expiry-days",
        type=_days,
        default=EXPIRY_WARN_DAYS,
        metavar="DAYS",
        help=f"warn of signatures expiring within DAYS (default {EXPIRY_WARN_DAYS})",
    )
    check.add_argument(
        "--dnssec-time",
        type=_when,
        default=None,
        metavar="TIME",
        help="judge signature validity at TIME (YYYYMMDDHHMMSS UTC or seconds since "
        "the epoch; default: now)",
    )
    check.add_argument(
        "--dnssec-verify-limit",
        type=_count,
        default=LINT_MAX_VERIFIED_SIGNATURES,
        metavar="N",
        help=f"verify at most N signatures per zone, a sample of the rest "
        f"(default {LINT_MAX_VERIFIED_SIGNATURES}; 0: all)",
    )
    check.set_defaults(func=run)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 <= days <= LINT_MAX_EXPIRY_DAYS:
        raise argparse.ArgumentTypeError(f"{days}: give 0 to {LINT_MAX_EXPIRY_DAYS} days")
    return days


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}: give 0 (all) or more")
    return n


def _when(text: str) -> int:
    """A time as RRSIG fields write it (YYYYMMDDHHMMSS, UTC) or epoch seconds."""
    try:
        return int(dns.dnssec.to_timestamp(text)) if len(text) == 14 else int(text)
    except (ValueError, TypeError, dns.exception.DNSException):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not YYYYMMDDHHMMSS (UTC) or seconds since the epoch"
        ) from None


def origin_from_filename(path: str) -> str:
    """``example.com.zone``, ``db.example.com``, ``example.com.db`` -> ``example.com``;
    ``root.zone``, ``db.root``, ``named.root``, ``root.hints`` -> ``.`` (the root)."""
    base = os.path.basename(path)
    if base in ROOT_NAMES:
        return "."
    for suffix in ZONE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base.startswith("db."):
        base = base[3:]
    return "." if base in ROOT_NAMES else base


def is_zone_file_name(name: str) -> bool:
    """What a folder argument picks up: ``*.zone``, ``db.*`` and the root's names."""
    return name.endswith(".zone") or name.startswith("db.") or name in ROOT_NAMES


class UsageError(Exception):
    """Bad arguments: exit 2."""


@dataclass(frozen=True, slots=True)
class Target:
    """One zone file to check."""

    origin: dns.name.Name
    file: str
    check_serial: bool = True  # False when authd manages the serial (config serial policy)
    max_records: int = DEFAULT_MAX_ZONE_RECORDS  # from the config, as the server reads it
    max_records_per_rrset: int = DEFAULT_MAX_RECORDS_PER_RRSET
    include_root: str | None = None


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


def origins_for(paths: Sequence[str], origins: Sequence[str]) -> list[str | None]:
    """The ``--origin`` of each path (None: from its name): one origin names
    every ZONEFILE's zone, several pair with them in order."""
    if not origins:
        return [None] * len(paths)
    if any(os.path.isdir(path) for path in paths):
        raise UsageError(
            "--origin names ZONEFILEs' zones; a DIR's files take theirs from their names"
        )
    if len(origins) == 1:
        return [origins[0]] * len(paths)
    if len(origins) != len(paths):
        raise UsageError(
            f"{len(origins)} --origin for {len(paths)} ZONEFILEs: give one --origin for "
            "all of them, or one per ZONEFILE in the same order"
        )
    return list(origins)


def plan(paths: Sequence[str], configs: Sequence[str], origins: Sequence[str] = ()) -> Plan:
    """Which zones to check, from the command line's paths and configs."""
    p = Plan()
    given: list[Target] = []
    for path, origin in zip(paths, origins_for(paths, origins), strict=True):
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if is_zone_file_name(n))
            found = [os.path.join(path, n) for n in names]
            found = [f for f in found if os.path.isfile(f)]
            if not found:
                raise UsageError(f"{path}: no zone files (*.zone, db.*) in this folder")
            given.extend(Target(_origin(origin_from_filename(f), f), f) for f in found)
        elif not os.path.exists(path):
            p.problems.append(_problem(LoaderCheck.UNREADABLE, path, "no such file or folder"))
        elif origin is None and not is_zone_file_name(os.path.basename(path)):
            given.extend(_included_or_zone(p, path, paths))
        else:
            given.append(Target(_origin(origin or origin_from_filename(path), path), path))
    if given:
        p.groups.append(given)
    config_groups: list[list[Target]] = []
    for config_path in configs:
        _plan_config(p, config_path, config_groups)
    p.groups.extend(_together(config_groups))
    return p


def _included_or_zone(p: Plan, path: str, paths: Sequence[str]) -> list[Target]:
    """*path* as a zone, or, when zone files of its repository (or other
    *paths*) ``$INCLUDE`` it, those zones (an included file has no SOA and no
    origin of its own)."""
    others = [f for f in paths if f != path and not os.path.isdir(f)]
    zones = includes.includers(path, is_zone_file_name, others)
    if not zones:
        return [Target(_origin(origin_from_filename(path), path), path)]
    cwd = os.getcwd()
    shown = ", ".join(_display(z, cwd) for z in zones)
    p.notes.append(f"{path} is $INCLUDEd by {shown}: checking the zone{'s' * (len(zones) > 1)}")
    return [Target(_origin(origin_from_filename(z), z), _display(z, cwd)) for z in zones]


def _together(view_groups: Sequence[list[Target]]) -> list[list[Target]]:
    """Every config zone in one group, so zones of different views and configs
    are checked against each other (a parent in A.yaml, its child in B.yaml).
    A zone name that two views serve from different files is checked in that
    view's own group as well: one group holds one version of each zone."""
    combined: dict[dns.name.Name, Target] = {}
    for group in view_groups:
        for t in group:
            combined.setdefault(t.origin, t)
    if not combined:
        return []
    groups = [list(combined.values())]
    for group in view_groups:
        files = {t.origin: os.path.realpath(t.file) for t in group}
        if any(os.path.realpath(combined[o].file) != f for o, f in files.items()):
            groups.append(group)
    return groups


def _plan_config(p: Plan, path: str, groups: list[list[Target]]) -> None:
    from authd.config import CatalogRole, SerialPolicy, ZoneType, load_config

    try:
        config = load_config(path)
    except AuthdError as e:
        p.problems.append(_problem(LoaderCheck.CONFIG, path, f"config refused: {e}"))
        return
    for view in config.views:
        group = []
        for zc in view.zones:
            if zc.catalog_role is CatalogRole.GENERATE:
                p.notes.append(
                    f"{path}: {view.name}/{zc.name}: generated catalog zone skipped, "
                    "authd builds it from the zones naming it"
                )
                continue
            if zc.type is ZoneType.SECONDARY and not os.path.exists(zc.file):
                p.notes.append(
                    f"{path}: {view.name}/{zc.name}: secondary zone skipped, "
                    f"no copy yet at {zc.file}"
                )
                continue
            managed = zc.serial is not SerialPolicy.KEEP
            file = _display(zc.file, os.getcwd())  # as the messages will show it
            group.append(
                Target(
                    zc.name,
                    file,
                    check_serial=not managed,
                    max_records=zc.max_records,
                    max_records_per_rrset=zc.max_records_per_rrset,
                    include_root=zc.include_root,
                )
            )
        if group:
            groups.append(group)


def _problem(id: str, file: str, message: str) -> Finding:
    return Finding(id, Severity.ERROR, file, 0, message)


def check_file(target: Target, options: LintOptions | None = None) -> lint.ZoneLint:
    """Parse and lint one zone file; unreadable files give an ``unreadable`` error."""
    try:
        with open(target.file, "rb"):
            pass
    except OSError as e:
        problem = _problem(LoaderCheck.UNREADABLE, target.file, f"cannot read: {e.strerror or e}")
        return lint.ZoneLint(target.origin, target.file, None, (problem,))
    try:
        records = parse_zone_file(
            target.file,
            target.origin,
            target.max_records,
            target.include_root,
            target.max_records_per_rrset,
        )
    except ZoneError as e:
        return lint.syntax_failure(target.origin, e)
    return lint.lint_records(target.origin, records, target.file, options)


# --- --against -----------------------------------------------------------------


def old_grouping(zone: lint.ZoneLint, ref: str) -> Grouping | None:
    """*zone* as it was at git *ref* (its file and what it includes), or None
    when there is nothing to compare with (a new file, or one that did not
    parse then: the server would have had no version to keep either)."""
    g = zone.grouping
    assert g is not None
    top = repo.verify_ref(ref, zone.file)
    files = [zone.file]
    for rrs in g.rrsets.values():
        for _, where in rrs.values():
            if where.file not in files:
                files.append(where.file)
    old: dict[str, bytes] = {}
    unchanged = True
    for f in files:
        content = repo.file_at(top, ref, f)
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


def serial_finding(zone: lint.ZoneLint, ref: str) -> Finding | None:
    """A ``serial-not-increased`` error when *zone* changed since *ref* without
    a serial increase; raises ``GitError`` (``NoCommitYet``: no commit at all)."""
    assert zone.grouping is not None
    old = old_grouping(zone, ref)
    if old is None or old is zone.grouping:
        return None
    return lint.compare_with(old, zone.grouping, ref)


# --- the command -----------------------------------------------------------------


def _display(path: str, cwd: str) -> str:
    """*path* relative to the working folder when it is inside it."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute, cwd)
    return absolute if rel.startswith("..") else rel


def run(args: argparse.Namespace) -> int:
    """``authd check``; returns the exit code."""
    # A short-lived run holding millions of objects and making no cycles: the
    # cyclic GC would only rescan the heap (seconds for a big zone).  Paused,
    # not frozen, and on again after (``main`` may be called by a long-lived
    # process: a test session).
    repo.clear_caches()
    with gc_off():
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
                f"--disable {rule_id}: a refusal cannot be disabled, the server refuses such zones"
            )
    p = plan(args.paths, args.config, args.origin)
    for note in p.notes:
        print(f"authd check: {note}", file=sys.stderr)

    options = LintOptions(
        now=args.dnssec_time if args.dnssec_time is not None else int(time.time()),
        expiry_days=args.dnssec_expiry_days,
        verify_limit=args.dnssec_verify_limit,
    )
    findings: list[Finding] = list(p.problems)
    checked: dict[tuple[str, dns.name.Name], lint.ZoneLint] = {}
    summaries: list[ZoneSummary] = []
    exit_usage = bool(p.problems)
    against = args.against
    for group in p.groups:
        zones = []
        for target in group:
            key = (os.path.realpath(target.file), target.origin)
            zone = checked.get(key)
            if zone is None:
                zone = checked[key] = check_file(target, options)
                findings.extend(zone.findings)
                for note in zone.notes:
                    print(f"authd check: note: {note}", file=sys.stderr)
                summaries.append(ZoneSummary(target.origin.to_text(), target.file, zone.serial))
                exit_usage = exit_usage or any(f.id in INPUT_IDS for f in zone.findings)
                if against and target.check_serial and zone.grouping is not None:
                    try:
                        refused = serial_finding(zone, against)
                    except NoCommitYet as e:
                        # The first commit: nothing was served before it.
                        print(f"authd check: note: {e}; serial comparison skipped", file=sys.stderr)
                        against = None
                        refused = None
                    except GitError as e:
                        raise UsageError(str(e)) from None
                    if refused is not None:
                        findings.append(refused)
            zones.append(zone)
        findings.extend(lint.lint_together(zones))

    findings = [f for f in findings if f.id not in disabled]
    if args.strict:
        findings = lint.strict(findings)
    cwd = os.getcwd()
    shown: dict[str, str] = {}
    # GitHub attaches an annotation (and code scanning a SARIF result) to a
    # path relative to the checkout, whatever folder the check ran from.
    from_root = args.format in ("github", "sarif")

    def display(path: str) -> str:
        if path not in shown:
            shown[path] = _from_root(path) if from_root else _display(path, cwd)
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


def _from_root(path: str) -> str:
    """*path* relative to the repository root (``GITHUB_WORKSPACE`` or git's
    top), as given outside one."""
    if not path or not os.path.exists(path):
        return path
    root = repo.annotation_root(path)
    if root is None:
        return path
    rel = os.path.relpath(os.path.realpath(path), root)
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Unique findings, by file (in the order first seen) then line."""
    unique: dict[tuple[str, str, int, str], Finding] = {}
    for f in findings:
        unique.setdefault((f.id, f.file, f.line, f.message), f)
    order: dict[str, int] = {}
    for f in unique.values():
        order.setdefault(f.file, len(order))
    return sorted(unique.values(), key=lambda f: (order[f.file], f.line, f.id))


__all__ = ["origin_from_filename", "origins_for", "plan", "register", "run"]
