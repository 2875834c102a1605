"""Snapshots: everything a query needs, published as one immutable reference.

Owns: the views with their zone tables, the options in force, and the answer
cache that belongs to exactly that snapshot.  Building a snapshot (loading and
reloading zone files, the serial policy) lives here too; it reads files but
never touches sockets or clocks.  Invariant: a query holds one snapshot from
start to end, so it never sees a mix of old and new zones; a new snapshot
starts with an empty cache, which is how the cache is invalidated.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.name
import dns.serial

from authd.checks import Finding, Severity
from authd.config import Config, Options, ZoneConfig
from authd.errors import ZoneError
from authd.zone import ZoneVersion, load_zone


@dataclass(frozen=True, slots=True, eq=False)
class View:
    name: str
    index: int  # position in the config, part of the answer-cache key
    zones: Mapping[dns.name.Name, ZoneVersion | None]  # None: failed to load -> SERVFAIL

    def matches(self, client: str, local: str) -> bool:
        """Whether a query from *client* arriving on *local* belongs to this view."""
        return True


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    views: tuple[View, ...]
    options: Options
    generation: int = 0
    # Rendered responses keyed by question shape; dropped with the snapshot.
    cache: dict[tuple[object, ...], bytes] = field(default_factory=dict)

    def select_view(self, client: str, local: str) -> View | None:
        for view in self.views:
            if view.matches(client, local):
                return view
        return None


class LoadOutcome(enum.Enum):
    LOADED = "loaded"  # a new version is serving
    UNCHANGED = "unchanged"  # same serial, same content: the old version stays
    KEPT_OLD = "kept-old"  # the new file was refused; the old version keeps serving
    FAILED = "failed"  # refused and nothing older to serve: SERVFAIL


@dataclass(frozen=True, slots=True)
class ZoneLoadEvent:
    view: str
    zone: dns.name.Name
    file: str
    outcome: LoadOutcome
    serial: int | None  # the serial now serving
    records: int
    reason: str | None = None  # why the file was refused
    findings: tuple[Finding, ...] = ()


def _serial_increased(old: int, new: int) -> bool:
    return dns.serial.Serial(new) > dns.serial.Serial(old)


def load_one(
    view: str, zc: ZoneConfig, old: ZoneVersion | None
) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
    """Load *zc*'s file, keeping *old* when the new content must be refused."""

    def refused(
        reason: str, findings: tuple[Finding, ...] = ()
    ) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
        outcome = LoadOutcome.KEPT_OLD if old is not None else LoadOutcome.FAILED
        serial = old.serial if old is not None else None
        records = old.record_count if old is not None else 0
        event = ZoneLoadEvent(view, zc.name, zc.file, outcome, serial, records, reason, findings)
        return old, event

    try:
        result = load_zone(zc.name, zc.file)
    except ZoneError as e:
        return refused(str(e))
    except OSError as e:
        return refused(f"{zc.file}: {e.strerror}")
    new = result.version
    if new is None:
        errors = [f for f in result.findings if f.severity is Severity.ERROR]
        return refused(str(errors[0]), result.findings)
    if old is not None:
        if new.serial == old.serial and new.same_content(old):
            event = ZoneLoadEvent(
                view, zc.name, zc.file, LoadOutcome.UNCHANGED, old.serial, old.record_count
            )
            return old, event
        if not _serial_increased(old.serial, new.serial):
            if (new.serial - old.serial) % 2**32 == 2**31:
                why = "is exactly 2^31 away, which RFC 1982 leaves undefined"
            else:
                why = "not increased (RFC 1982)"
            return refused(
                f"{zc.file}: serial {new.serial} {why}, content changed; "
                f"keeping serial {old.serial}",
                result.findings,
            )
    event = ZoneLoadEvent(
        view,
        zc.name,
        zc.file,
        LoadOutcome.LOADED,
        new.serial,
        new.record_count,
        None,
        result.findings,
    )
    return new, event


def build_snapshot(
    config: Config, previous: Snapshot | None, generation: int
) -> tuple[Snapshot, list[ZoneLoadEvent]]:
    """Load every zone of *config*; zones that fail keep *previous*'s version."""
    events: list[ZoneLoadEvent] = []
    views = []
    old_views = {v.name: v for v in previous.views} if previous is not None else {}
    for index, vc in enumerate(config.views):
        old_zones = old_views[vc.name].zones if vc.name in old_views else {}
        zones: dict[dns.name.Name, ZoneVersion | None] = {}
        for zc in vc.zones:
            version, event = load_one(vc.name, zc, old_zones.get(zc.name))
            zones[zc.name] = version
            events.append(event)
        views.append(View(vc.name, index, zones))
    return Snapshot(tuple(views), config.options, generation), events
