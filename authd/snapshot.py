"""Snapshots: everything a query needs, published as one immutable reference.

Owns: the views with their zone tables, the options in force, and the answer
cache that belongs to exactly that snapshot.  Building a snapshot (loading and
reloading zone files, the serial policy) lives here too; it reads files but
never touches sockets or clocks.  Invariant: a query holds one snapshot from
start to end, so it never sees a mix of old and new zones; a new snapshot
starts with an empty cache, which is how the cache is invalidated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.tsig

from authd.acl import CompiledAcl
from authd.changeset import diff
from authd.checks import Finding, Severity
from authd.config import Config, Options, SerialPolicy, ZoneConfig, ZoneType
from authd.errors import ZoneError
from authd.journal import (
    Journal,
    JournalError,
    append_journal,
    read_journal,
    reconcile,
    write_journal,
)
from authd.serial import increased as serial_increased
from authd.serial import policy_serial, step_problem
from authd.zone import ZoneVersion, load_zone


@dataclass(frozen=True, slots=True, eq=False)
class View:
    name: str
    index: int  # position in the config, part of the answer-cache key
    zones: Mapping[dns.name.Name, ZoneVersion | None]  # None: failed to load -> SERVFAIL
    configs: Mapping[dns.name.Name, ZoneConfig] = field(default_factory=dict)
    journals: Mapping[dns.name.Name, Journal] = field(default_factory=dict)  # IXFR history
    match_clients: CompiledAcl | None = None  # None: every client
    match_destinations: CompiledAcl | None = None  # None: every local address
    # True when some zone limits allow_query: answers then depend on the client,
    # so the shared answer cache must not serve this view.
    restricted: bool = False

    def matches(self, client: str, local: str, key: dns.name.Name | None = None) -> bool:
        """Whether a query from *client* arriving on *local* belongs to this view."""
        if self.match_destinations is not None and not self.match_destinations.allows(local):
            return False
        return self.match_clients is None or self.match_clients.allows(client, key)


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    views: tuple[View, ...]
    options: Options
    generation: int = 0
    keyring: Mapping[dns.name.Name, dns.tsig.Key] = field(default_factory=dict)
    # Rendered responses keyed by question shape; dropped with the snapshot.
    cache: dict[tuple[object, ...], bytes] = field(default_factory=dict)
    # Responses (less their ID) keyed by the exact query bytes (less the ID):
    # only when one view answers everybody alike and nothing is logged per query.
    front: dict[tuple[bytes, bool], bytes] | None = None
    # Sources whose EDNS Client Subnet chooses the view (RFC 7871); None: ECS off.
    client_subnet: CompiledAcl | None = None

    def view_zone(self, view: str, zone: dns.name.Name) -> ZoneVersion | None:
        """The version *view* serves for *zone*, if any."""
        for v in self.views:
            if v.name == view:
                return v.zones.get(zone)
        return None

    def select_view(self, client: str, local: str, key: dns.name.Name | None = None) -> View | None:
        """The first view that matches (BIND order); None: REFUSED."""
        for view in self.views:
            if view.matches(client, local, key):
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
    journal_note: str | None = None  # what happened to the IXFR journal, when notable
    files: frozenset[str] = frozenset()  # every file this load read, the failing one too


def load_one(
    view: str,
    zc: ZoneConfig,
    old: ZoneVersion | None,
    now: float = 0.0,
    floor: int | None = None,
    remembered: tuple[str, int] | None = None,
) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
    """Load *zc*'s file, keeping *old* when the new content must be refused.

    *now* feeds the unixtime and dateserial policies; *floor* is the last serial
    served before a restart (from the journal), which those policies never go below.
    """

    read: frozenset[str] = frozenset({zc.file})

    def refused(
        reason: str, findings: tuple[Finding, ...] = ()
    ) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
        outcome = LoadOutcome.KEPT_OLD if old is not None else LoadOutcome.FAILED
        serial = old.serial if old is not None else None
        records = old.record_count if old is not None else 0
        event = ZoneLoadEvent(
            view, zc.name, zc.file, outcome, serial, records, reason, findings, files=read
        )
        return old, event

    def unchanged(old: ZoneVersion) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
        outcome = LoadOutcome.UNCHANGED
        return old, ZoneLoadEvent(
            view, zc.name, zc.file, outcome, old.serial, old.record_count, files=read
        )

    try:
        result = load_zone(zc.name, zc.file)
    except ZoneError as e:
        # Watch the file that failed too ($INCLUDE): fixing it must reload the zone.
        read = read | {os.path.normpath(e.file)}
        return refused(str(e))
    except OSError as e:
        return refused(f"{zc.file}: {e.strerror}")
    read = read | result.files
    new = result.version
    if new is None:
        errors = [f for f in result.findings if f.severity is Severity.ERROR]
        return refused(str(errors[0]), result.findings)
    managed = zc.serial is not SerialPolicy.KEEP
    if old is not None and managed:
        if new.same_content(old):
            return unchanged(old)
        new = new.with_serial(policy_serial(zc.serial, old.serial, now))
    elif (
        old is None
        and managed
        and remembered is not None
        and remembered[0] == content_digest(new.files)
    ):
        # After a restart with the files as they were: the serial served before.
        new = new.with_serial(remembered[1])
    elif old is None and managed and floor is not None and not serial_increased(floor, new.serial):
        # After a restart: never serve a serial below what secondaries already have.
        new = new.with_serial(policy_serial(zc.serial, floor, now))
    if old is not None and not managed:
        if new.serial == old.serial and new.same_content(old):
            return unchanged(old)
        if not serial_increased(old.serial, new.serial):
            why = step_problem(old.serial, new.serial)
            changed = "content unchanged" if new.same_content(old) else "content changed"
            return refused(
                f"{zc.file}: serial {new.serial} {why}, {changed}; keeping serial {old.serial}",
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
        files=read,
    )
    return new, event


def content_digest(files: Iterable[str]) -> str:
    """A digest of the bytes of *files*: whether a zone's source changed across restarts."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            h.update(b"\0missing")
    return h.hexdigest()


def served_path(config: Config, view: str, zone: dns.name.Name) -> str:
    label = zone.to_text(omit_final_dot=True) or "root"
    return os.path.join(config.state_dir, view, f"{label}.serial")


def read_served(config: Config, view: str, zone: dns.name.Name) -> tuple[str, int] | None:
    """The (source digest, serial) a managed-serial zone last served, if recorded."""
    try:
        with open(served_path(config, view, zone), encoding="utf-8") as f:
            data = json.load(f)
        return str(data["digest"]), int(data["serial"]) % 2**32
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_served(config: Config, view: str, zone: dns.name.Name, version: ZoneVersion) -> None:
    """Record what a managed-serial zone serves, atomically, for the next start."""
    path = served_path(config, view, zone)
    _ensure_dir(path)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"digest": content_digest(version.files), "serial": version.serial}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def build_snapshot(
    config: Config,
    previous: Snapshot | None,
    generation: int,
    now: float = 0.0,
    only: Collection[tuple[str, dns.name.Name]] | None = None,
) -> tuple[Snapshot, list[ZoneLoadEvent]]:
    """Load every zone of *config*; zones that fail keep *previous*'s version.

    With *only*, just those (view, zone) pairs are read again; the others keep
    *previous*'s versions untouched.
    """
    events: list[ZoneLoadEvent] = []
    views = []
    old_views = {v.name: v for v in previous.views} if previous is not None else {}
    loaded: dict[tuple[str, dns.name.Name], ZoneVersion | None] = {}
    loaded_journals: dict[tuple[str, dns.name.Name], Journal] = {}
    for index, vc in enumerate(config.views):
        old_view = old_views.get(vc.name)
        old_zones = old_view.zones if old_view is not None else {}
        old_journals = old_view.journals if old_view is not None else {}
        zones: dict[dns.name.Name, ZoneVersion | None] = {}
        journals: dict[dns.name.Name, Journal] = {}
        for zc in vc.zones:
            if zc.in_view is not None:
                # Shared with an earlier view: the same compiled version, loaded once.
                zones[zc.name] = loaded[(zc.in_view, zc.name)]
                journals[zc.name] = loaded_journals[(zc.in_view, zc.name)]
                continue
            old = old_zones.get(zc.name)
            old_journal = old_journals.get(zc.name)
            if only is not None and (vc.name, zc.name) not in only and zc.name in old_zones:
                zones[zc.name] = loaded[(vc.name, zc.name)] = old
                journals[zc.name] = loaded_journals[(vc.name, zc.name)] = old_journal or Journal()
                continue
            first = zc.name not in old_zones
            if first:
                # The history the previous run left: IXFR continues across restarts.
                old_journal = _read_journal(config, vc.name, zc.name)
            if zc.type is ZoneType.SECONDARY:
                version, event = _secondary_copy(vc.name, zc, old)
            else:
                floor = old_journal.serial_to if first and old_journal is not None else None
                managed = zc.serial is not SerialPolicy.KEEP
                remembered = read_served(config, vc.name, zc.name) if first and managed else None
                version, event = load_one(vc.name, zc, old, now, floor, remembered)
                if managed and version is not None and version is not old:
                    try:
                        write_served(config, vc.name, zc.name, version)
                    except OSError as e:
                        event = dataclasses.replace(
                            event, journal_note=f"cannot record the served serial: {e}"
                        )
            zones[zc.name] = loaded[(vc.name, zc.name)] = version
            journal, note = record_change(
                config, vc.name, zc.name, old, version, old_journal, first_load=first
            )
            journals[zc.name] = loaded_journals[(vc.name, zc.name)] = journal
            if note is not None:
                event = dataclasses.replace(event, journal_note=note)
            events.append(event)
        configs = {zc.name: zc for zc in vc.zones}
        restricted = any(
            zc.allow_query is not None and not _allows_all(zc.allow_query) for zc in vc.zones
        )
        views.append(
            View(
                vc.name,
                index,
                zones,
                configs=configs,
                journals=journals,
                match_clients=vc.match_clients,
                match_destinations=vc.match_destinations,
                restricted=restricted,
            )
        )
    snapshot = Snapshot(
        tuple(views),
        config.options,
        generation,
        config.keys.keyring(),
        client_subnet=config.client_subnet,
    )
    return with_fresh_caches(snapshot), events


def with_fresh_caches(snapshot: Snapshot) -> Snapshot:
    """*snapshot* with empty answer caches (a front cache only where it is safe)."""
    opts = snapshot.options
    only = snapshot.views[0] if len(snapshot.views) == 1 else None
    open_view = (
        only is not None
        and not only.restricted
        and only.match_destinations is None
        and (only.match_clients is None or _allows_all(only.match_clients))
    )
    front: dict[tuple[bytes, bool], bytes] | None = None
    if open_view and not opts.query_log and opts.answer_cache_entries:
        front = {}
    return dataclasses.replace(snapshot, cache={}, front=front)


def with_zone(
    snapshot: Snapshot,
    view: str,
    zone: dns.name.Name,
    version: ZoneVersion | None,
    journal: Journal | None,
    generation: int,
) -> Snapshot:
    """*snapshot* with one zone replaced in *view* and every view sharing it (in_view)."""
    views = []
    for v in snapshot.views:
        zc = v.configs.get(zone)
        if v.name == view or (zc is not None and zc.in_view == view):
            zones = dict(v.zones)
            zones[zone] = version
            journals = dict(v.journals)
            if journal is not None:
                journals[zone] = journal
            v = dataclasses.replace(v, zones=zones, journals=journals)
        views.append(v)
    return with_fresh_caches(
        dataclasses.replace(snapshot, views=tuple(views), generation=generation)
    )


def journal_path(config: Config, view: str, zone: dns.name.Name) -> str:
    label = zone.to_text(omit_final_dot=True) or "root"
    return os.path.join(config.state_dir, view, f"{label}.journal")


# A zone's journal after a change, and a note worth logging (or None).
JournalChange = tuple[Journal, str | None]


def record_change(
    config: Config,
    view: str,
    zone: dns.name.Name,
    old: ZoneVersion | None,
    new: ZoneVersion | None,
    journal: Journal | None,
    first_load: bool = False,
) -> JournalChange:
    """The zone's journal after *old* became *new*, persisted; and a note worth logging.

    The journal on disk is appended to before the new version is published, so
    after a crash it never describes a version that was not served; one that
    ends elsewhere is discarded at the next start (``reconcile``).
    """
    opts = config.options
    path = journal_path(config, view, zone)
    note = None
    try:
        if journal is None or first_load:
            # First load: pick up the history left by the previous run.
            if journal is None:
                journal = read_journal(path, opts.journal_max_entries, opts.journal_max_bytes)
            if new is not None:
                journal, note = reconcile(journal, zone, new.serial)
                if note is not None:
                    _ensure_dir(path)
                    write_journal(path, journal)
            return journal, note
        if old is None or new is None or new is old:
            return journal, None
        if not serial_increased(old.serial, new.serial):
            # A forced full transfer at the same serial: no changeset can say
            # what changed, so the history starts again (IXFR falls back to AXFR).
            journal = journal.empty()
            _ensure_dir(path)
            write_journal(path, journal)
            return journal, f"journal restarted: serial {new.serial} did not increase"
        change = diff(old, new)
        try:
            journal = journal.append(change)
        except ValueError:
            journal = journal.empty().append(change)
            _ensure_dir(path)
            write_journal(path, journal)
            return journal, "journal restarted"
        _ensure_dir(path)
        size = append_journal(path, change)
        if journal.should_compact(size):
            write_journal(path, journal)
        return journal, None
    except (OSError, JournalError) as e:
        empty = Journal((), max_entries=opts.journal_max_entries, max_bytes=opts.journal_max_bytes)
        if new is not None and old is not None and new is not old:
            with contextlib.suppress(ValueError):
                empty = empty.append(diff(old, new))
        return empty, f"journal {path}: {e}; IXFR history kept in memory only"


def _read_journal(config: Config, view: str, zone: dns.name.Name) -> Journal | None:
    opts = config.options
    try:
        return read_journal(
            journal_path(config, view, zone), opts.journal_max_entries, opts.journal_max_bytes
        )
    except (OSError, JournalError):
        return None  # record_change reports it


def _ensure_dir(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)


def _allows_all(acl: CompiledAcl) -> bool:
    return [e.text for e in acl.elements] == ["any"]


def _secondary_copy(
    view: str, zc: ZoneConfig, old: ZoneVersion | None
) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
    """A secondary keeps the copy it serves; at start it reads its last transferred one."""
    if old is not None:
        event = ZoneLoadEvent(
            view, zc.name, zc.file, LoadOutcome.UNCHANGED, old.serial, old.record_count
        )
        return old, event
    if not os.path.exists(zc.file):
        event = ZoneLoadEvent(
            view, zc.name, zc.file, LoadOutcome.FAILED, None, 0, "no copy yet: awaiting transfer"
        )
        return None, event
    return load_one(view, zc, None)
