"""The lab's fault scenarios: what each breaks, as edits and settings (values only).

Owns the list ``authd lab scenarios`` prints and what ``authd lab break``
applies: zone file edits (for the basic template's zones), load checks the lab
waives so the broken zone is still served, and simulated server faults
(``lab.faults`` of the generated config).  Invariants: pure (the command writes
the files); every edited zone file gets a higher serial, so the running lab
reloads it (a restore is an edit too, and gets a higher serial again).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.name

from authd.checks import LoaderCheck
from authd.lab import Lab, parent_zone
from authd.lint import LintCheck
from authd.signpolicy import DAY
from authd.signpolicy import DEFAULT as DEFAULT_POLICY

# The scenario that makes two names CNAMEs of each other is named after the
# finding it reveals.
_CNAME_LOOP = LintCheck.CNAME_LOOP.value
DS_MISMATCH = "ds-mismatch"
EXPIRED_SIGNATURES = "expired-signatures"
# expired-signatures dates the zone's signatures this far back: past the default
# policy's validity by two days, so every signature has expired (jitter aside).
EXPIRED_BEHIND = DEFAULT_POLICY.signature_validity + 2 * DAY


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    zone: str  # the zone it breaks by default
    symptom: str  # what a user sees through a resolver
    try_name: str  # a question that shows it: "NAME TYPE"
    server_fault: str | None = None  # a lab.faults fault on the zone's servers
    any_zone: bool = False  # server faults apply to any zone; file edits to their own
    signed_only: bool = False  # a chain-of-trust fault: the signed template only


SCENARIOS = (
    Scenario(
        "lame",
        "a delegation to a server that does not serve the zone (lame delegation)",
        "example.org.",
        "SERVFAIL",
        "www.example.org A",
    ),
    Scenario(
        "missing-glue",
        "the parent names an in-zone name server but gives no glue",
        "eng.example.com.",
        "SERVFAIL",
        "build.eng.example.com A",
    ),
    Scenario(
        "glue-mismatch",
        "the parent's glue disagrees with the child's own address",
        "eng.example.com.",
        "SERVFAIL (timeout at the wrong address)",
        "build.eng.example.com A",
    ),
    Scenario(
        "ns-differ",
        "the parent's NS set and the child's differ",
        "eng.example.com.",
        "answers (the inconsistency is silent until a server goes)",
        "build.eng.example.com A",
    ),
    Scenario(
        "stale-secondary",
        "a secondary refuses NOTIFY and keeps an old serial",
        "example.com.",
        "an old or a new answer, by the server asked",
        "www.example.com A",
    ),
    Scenario(
        _CNAME_LOOP,
        "two names that are CNAMEs of each other",
        "example.com.",
        "SERVFAIL",
        "loop1.example.com A",
    ),
    Scenario(
        "cname-apex",
        "a CNAME at a zone apex, beside its SOA and NS",
        "example.org.",
        "answers that depend on the resolver",
        "example.org A",
    ),
    Scenario(
        "udp-only",
        "a large answer from a server whose TCP is blocked",
        "eng.example.com.",
        "SERVFAIL after a truncated UDP answer",
        "big.eng.example.com TXT",
        server_fault="udp-only",
        any_zone=True,
    ),
    Scenario(
        "drop-edns",
        "a server that drops every query carrying EDNS",
        "eng.example.com.",
        "timeouts (resolvers may fall back to plain DNS)",
        "build.eng.example.com A",
        server_fault="drop-edns",
        any_zone=True,
    ),
    Scenario(
        "silent",
        "a server that never answers",
        "eng.example.com.",
        "timeout, then SERVFAIL",
        "build.eng.example.com A",
        server_fault="silent",
        any_zone=True,
    ),
    Scenario(
        DS_MISMATCH,
        "the parent's DS matches no DNSKEY of the child (the DS of a key it no longer has)",
        "example.org.",
        "SERVFAIL from a validating resolver (bogus)",
        "www.example.org A",
        any_zone=True,
        signed_only=True,
    ),
    Scenario(
        EXPIRED_SIGNATURES,
        "the zone serves signatures whose validity has passed (its signing clock sits "
        "behind the real one)",
        "eng.example.com.",
        "SERVFAIL from a validating resolver (bogus)",
        "build.eng.example.com A",
        any_zone=True,
        signed_only=True,
    ),
)
BY_NAME = {s.name: s for s in SCENARIOS}

BIG_TXT = "".join(
    f'big TXT "{i:02d} {"a large answer, more than a UDP packet holds " * 5}"\n' for i in range(12)
)


@dataclass(frozen=True, slots=True)
class Broken:
    """What ``break`` changes: zone files (relative path -> new text) and settings."""

    files: dict[str, str] = field(default_factory=dict)
    waive: tuple[str, ...] = ()
    faults: tuple[tuple[str, str], ...] = ()  # (address, fault)
    deaf: tuple[tuple[str, str], ...] = ()  # (server, zone): secondaries refusing NOTIFY
    signing_clock: tuple[tuple[str, int], ...] = ()  # (zone, seconds behind): lab.signing_clock


_SERIAL = re.compile(r"(IN\s+SOA\s+\S+\s+\S+\s+)(\d+)")


def bump_serial(text: str, above: int | None = None) -> str:
    """*text* with its SOA serial one higher (or above *above*, if larger)."""

    def repl(m: re.Match[str]) -> str:
        serial = max(int(m.group(2)), above or 0) + 1
        return f"{m.group(1)}{serial}"

    return _SERIAL.sub(repl, text, count=1)


def serial_of(text: str) -> int:
    m = _SERIAL.search(text)
    return int(m.group(2)) if m else 0


def _edit(files: Mapping[str, str], path: str, old: str, new: str) -> dict[str, str]:
    text = files[path]
    if old not in text:
        raise ValueError(f"{path} no longer holds {old.strip()!r}: fix the lab first")
    return {path: bump_serial(text.replace(old, new, 1))}


def _append(files: Mapping[str, str], path: str, extra: str) -> dict[str, str]:
    return {path: bump_serial(files[path] + extra)}


_DS_LINE = r"^({owner}\s+\d+\s+IN\s+DS\s+)(\d+)(\s+\d+\s+)(\d+)(\s+)(\S+)\s*$"


def _plan_signed(
    scenario: Scenario, zone: dns.name.Name, lab: Lab, files: Mapping[str, str]
) -> Broken:
    if scenario.name == EXPIRED_SIGNATURES:
        return Broken(signing_clock=((zone.to_text(), EXPIRED_BEHIND),))
    parent = parent_zone(lab, zone)
    if parent is None:
        raise ValueError("the root has no parent: its DS is the trust anchor (root.anchor)")
    for s in lab.servers:
        primaries = {z.name for z in s.zones if z.file is not None}
        if {parent, zone} <= primaries:
            raise ValueError(
                f"{parent} and {zone} are both served by {s.name}: authd keeps the DS of a "
                "child it serves beside its parent right by itself (pick another zone)"
            )
    path = lab.zones()[parent][0].zone(parent).file
    if path is None or path not in files:
        raise ValueError(f"{parent} has no zone file to edit the DS of {zone} in")
    pattern = re.compile(_DS_LINE.format(owner=re.escape(zone.to_text())), re.MULTILINE)

    def stale(m: re.Match[str]) -> str:
        # The DS of a key the child no longer has: another tag, another digest.
        tag = (int(m.group(2)) + 1) % 65536
        digest_type = int(m.group(4))
        size = {1: 20, 2: 32, 4: 48}.get(digest_type, 32)
        seed = f"a retired key of {zone.to_text()}".encode()
        digest = hashlib.sha384(seed).hexdigest()[: 2 * size].upper()
        return f"{m.group(1)}{tag}{m.group(3)}{digest_type}{m.group(5)}{digest}"

    text, count = pattern.subn(stale, files[path])
    if count == 0:
        raise ValueError(f"{path} holds no DS for {zone}: fix the lab first")
    return Broken({path: bump_serial(text)})


def plan(name: str, zone_text: str | None, lab: Lab, files: Mapping[str, str]) -> Broken:
    """What breaking *name* (on *zone_text*, or its own zone) changes; ValueError if it cannot."""
    scenario = BY_NAME.get(name)
    if scenario is None:
        raise ValueError(f"no scenario {name!r} (authd lab scenarios lists them)")
    zone = dns.name.from_text(zone_text or scenario.zone)
    if zone != dns.name.from_text(scenario.zone) and not scenario.any_zone:
        raise ValueError(f"scenario {name} is written for {scenario.zone} of the basic template")
    servers = lab.zones().get(zone)
    if not servers:
        raise ValueError(f"no lab server serves {zone}")
    if scenario.signed_only:
        if not lab.signed:
            raise ValueError(
                f"scenario {name} breaks a chain of trust: it needs a signed lab "
                "(authd lab init DIR --template signed)"
            )
        return _plan_signed(scenario, zone, lab, files)
    if scenario.server_fault is not None:
        extra = {}
        if name == "udp-only":
            path = next(
                (z.file for s in servers for z in s.zones if z.name == zone and z.file), None
            )
            if path is None or path not in files:
                raise ValueError(f"{zone} has no zone file to add a large answer to")
            big = BIG_TXT.replace("big TXT", f"big.{zone.to_text()} 3600 TXT")
            extra = _append(files, path, big)
        return Broken(extra, (), tuple((s.address, scenario.server_fault) for s in servers))
    com, org, eng = "zones/example.com.zone", "zones/org.zone", "zones/eng.example.com.zone"
    if name == "lame":
        return Broken(
            _edit(
                files,
                org,
                "example.org.        172800 NS ns.example.net.",
                "example.org.        172800 NS ns1.example.com.",
            )
        )
    if name == "missing-glue":
        return Broken(
            _edit(files, com, "ns1.eng     A", "; glue removed: ns1.eng A"),
            (LoaderCheck.GLUE_MISSING.value,),
        )
    if name == "glue-mismatch":
        return Broken(
            _edit(files, com, "ns1.eng     A     127.0.0.42", "ns1.eng     A     127.0.0.43")
        )
    if name == "ns-differ":
        return Broken(
            _append(
                files, eng, "@           NS    ns2.eng.example.com.\nns2         A     127.0.0.44\n"
            )
        )
    if name == "stale-secondary":
        deaf = tuple((s.name, zone.to_text()) for s in servers[1:])
        if not deaf:
            raise ValueError(f"{zone} has no secondary")
        return Broken(
            _edit(files, com, "www         A     192.0.2.10", "www         A     192.0.2.11"),
            deaf=deaf,
        )
    if name == _CNAME_LOOP:
        return Broken(_append(files, com, "loop1       CNAME loop2\nloop2       CNAME loop1\n"))
    if name == "cname-apex":
        return Broken(
            _append(files, "zones/example.org.zone", "@           CNAME www.example.com.\n"),
            (LoaderCheck.CNAME_AND_OTHER_DATA.value,),
        )
    raise ValueError(f"scenario {name} has no plan")  # pragma: no cover - table above
