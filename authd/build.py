"""Building snapshots: zone files loaded into versions, and what must be persisted.

Owns: loading one zone file against the version it replaces (``load_one``:
the serial policies, refusals that keep the old version), building a whole
snapshot from a config (``plan_snapshot``), and deciding how each zone's IXFR
journal changes (``plan_journal``).  Reading zone files is fine here; the
state folder is not touched: what it held is passed in (``Stored``), and what
must be written to it comes back as values (``ServedRecord``,
``JournalWrite``) for ``authd.adapters.state`` to perform before the snapshot
is published.

Invariants: a build is a function of the config, the previous snapshot, the
time, the zone files and the stored state; every journal in the snapshot is
what the state folder will hold once the writes succeed, and each write
carries the journal to serve instead if it fails (history in memory only).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.name

from authd import catalog, cookies, parentds, ratelimit, rollover, zonemd
from authd.changeset import Changeset, diff, diff_owners
from authd.checks import Finding, Severity
from authd.config import CatalogRole, Config, Options, SerialPolicy, ZoneConfig, ZoneType
from authd.errors import ZoneError
from authd.journal import Journal, reconcile
from authd.serial import increased as serial_increased
from authd.serial import policy_serial, step_problem
from authd.signer import Inline, SigningError, SigningKey, sign_zone
from authd.snapshot import Snapshot, View, allows_all, with_fresh_caches
from authd.zone import ZoneVersion, compile_zone, load_zone

#: Appended to a journal problem: the zone keeps serving, IXFR from memory only.
MEMORY_ONLY = "IXFR history kept in memory only"


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
    # A secondary with no stored copy yet (FAILED until its first transfer fills it).
    awaiting_transfer: bool = False


@dataclass(frozen=True, slots=True)
class Stored:
    """What the state folder held for a zone when it was first loaded.

    *journal* is None exactly when the journal file could not be read;
    *problem* then says why (``journal PATH: reason``).  *served* is the
    (source digest, serial) a managed-serial zone last recorded, if any.
    """

    journal: Journal | None = None
    problem: str | None = None
    served: tuple[str, int] | None = None
    # A secondary's stored copy that must not be served (torn, altered, a folder):
    # why.  The zone then waits for a full transfer.
    copy_problem: str | None = None
    # A primary's last-good copy (``keeps_last_good``), read only when needed:
    # its serial and source (digest, files) come from its first lines, and
    # *last_good* loads it whole (the version, or None and why not).
    last_good: Callable[[], tuple[ZoneVersion | None, str | None]] | None = None
    last_good_serial: int | None = None
    last_good_source: tuple[str, tuple[str, ...]] | None = None
    last_good_note: str | None = None  # why it could not be used (torn, unreadable)


@dataclass(frozen=True, slots=True)
class ServedRecord:
    """Remember that *view*'s *zone* serves *serial* for sources of *digest*."""

    view: str
    zone: dns.name.Name
    digest: str
    serial: int


@dataclass(frozen=True, slots=True)
class JournalWrite:
    """Bring the journal file of *view*'s *zone* in line with *journal*.

    With *append*, that one record is appended (and the file rewritten when
    ``journal.should_compact`` says so for its new size); without, the file is
    replaced by *journal*.  If the write fails, *fallback* is served instead.
    """

    view: str
    zone: dns.name.Name
    journal: Journal
    append: Changeset | None
    fallback: Journal


@dataclass(frozen=True, slots=True)
class LastGood:
    """Store *version* as *view*'s *zone*'s last-good copy before it is published."""

    view: str
    zone: dns.name.Name
    version: ZoneVersion
    source: tuple[str, tuple[str, ...]]  # content_digest of its files, and those files


@dataclass(frozen=True, slots=True)
class JournalPlan:
    journal: Journal
    note: str | None  # worth logging
    write: JournalWrite | None


@dataclass(frozen=True, slots=True)
class Build:
    """A snapshot and its load events, valid once *served* and *journals* are written."""

    snapshot: Snapshot
    events: tuple[ZoneLoadEvent, ...]
    served: tuple[ServedRecord, ...] = ()
    journals: tuple[JournalWrite, ...] = ()
    last_good: tuple[LastGood, ...] = ()


# A zone's journal after a change, and a note worth logging (or None).
JournalChange = tuple[Journal, str | None]


def load_one(
    view: str,
    zc: ZoneConfig,
    old: ZoneVersion | None,
    now: float = 0.0,
    floor: int | None = None,
    remembered: tuple[str, int] | None = None,
    keys: Sequence[SigningKey] = (),
    key_problem: str | None = None,
    child_ds: parentds.Overrides | None = None,
) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
    """Load *zc*'s file, keeping *old* when the new content must be refused.

    *now* feeds the unixtime and dateserial policies; *floor* is the last serial
    served before a restart (from the journal), which those policies never go below.
    A zone with a signing policy (``zc.dnssec``) is signed with *keys* after its
    serial is settled; *old* is then compared by the unsigned version it came from.
    *child_ds* holds the DS RRsets of signed children served here
    (``authd.parentds``), which take the place of the file's.
    """
    signing = zc.dnssec
    served_old = old
    # Signing turned on, or done with another policy or other keys: a new
    # signed version even when the file did not change.
    resign = False
    if signing is not None and old is not None:
        inline = old.inline
        resign = inline is None or inline.policy != signing or inline.keys != _tags(keys)
        # A lab's signing clock moved (expired-signatures broken or fixed).
        resign = resign or (inline is not None and inline.signed.behind != zc.lab_signing_behind)
        # Signatures about to expire: a new signed version, file changed or not.
        resign = resign or (inline is not None and inline.signed.due_for_refresh(int(now), signing))
        # A key published, activated, retired or asked for by CDS: a new signed version.
        t = signing.timings()
        showing = rollover.key_view(keys, t, int(now))
        resign = resign or (inline is not None and inline.key_view != showing)
        # Or a key's times changed (a ds-seen planned a swap): the version
        # carries the schedule that ``ctl status`` shows and the timer follows.
        upcoming = rollover.next_step(keys, t, int(now))
        resign = resign or (inline is not None and inline.next_key_event != upcoming)
        # A child's DS changed (a KSK rollover below): the same.
        resign = resign or (child_ds is not None and parentds.differs(served_old, child_ds))
        if inline is not None:
            # What an edit is compared with: the unsigned source (same serial).
            old = inline.unsigned

    read: frozenset[str] = frozenset({zc.file})

    def refused(
        reason: str, findings: tuple[Finding, ...] = ()
    ) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
        kept = served_old
        outcome = LoadOutcome.KEPT_OLD if kept is not None else LoadOutcome.FAILED
        serial = kept.serial if kept is not None else None
        records = kept.record_count if kept is not None else 0
        event = ZoneLoadEvent(
            view, zc.name, zc.file, outcome, serial, records, reason, findings, files=read
        )
        return kept, event

    def unchanged(old: ZoneVersion) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
        kept = served_old if served_old is not None else old
        outcome = LoadOutcome.UNCHANGED
        return kept, ZoneLoadEvent(
            view, zc.name, zc.file, outcome, kept.serial, kept.record_count, files=read
        )

    try:
        result = load_zone(
            zc.name,
            zc.file,
            zc.max_records,
            zc.include_root,
            zc.lab_waive,
            zc.max_records_per_rrset,
        )
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
    # RFC 8976: the digest covers the file as written, before any serial policy.
    mismatch = zonemd.problem(new) if zc.zonemd_verify else None
    if mismatch is not None:
        return refused(f"{zc.file}: {mismatch}", result.findings)
    if child_ds and signing is None:
        # Unsigned: the served version is the file with the children's DS, and
        # is compared as such (a signed one puts them in when signing).
        try:
            new = parentds.with_ds(new, child_ds, zc.lab_waive)
        except SigningError as e:
            return refused(f"{zc.file}: {e}", result.findings)
    managed = zc.serial is not SerialPolicy.KEEP
    if old is not None and managed:
        if not resign and new.same_content(old):
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
            if not resign:
                return unchanged(old)
        elif not serial_increased(old.serial, new.serial):
            why = step_problem(old.serial, new.serial)
            changed = "content unchanged" if new.same_content(old) else "content changed"
            return refused(
                f"{zc.file}: serial {new.serial} {why}, {changed}; keeping serial {old.serial}",
                result.findings,
            )
    if signing is not None:
        if key_problem is not None:
            return refused(f"{zc.file}: signing failed: {key_problem}", result.findings)
        try:
            new = sign_version(
                zc, new, served_old, keys, now, _signed_serial(new, served_old, floor), child_ds
            )
        except SigningError as e:
            return refused(f"{zc.file}: signing failed: {e}", result.findings)
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


def _tags(keys: Sequence[SigningKey]) -> tuple[tuple[int, int, str], ...]:
    return tuple(sorted((k.tag, k.algorithm, k.role) for k in keys))


def _signed_serial(unsigned: ZoneVersion, served: ZoneVersion | None, floor: int | None) -> int:
    """The serial of a new signed version: the unsigned one's, unless that would
    not go up from the signed version served (a re-signing of an unchanged
    file under ``serial: keep``) or, after a restart, from the journal's last
    (*floor*, which a re-signing may have taken past the file's): then one more
    (RFC 1982).  The same serial as before a restart stays: same data."""
    if served is not None:
        base = served.serial
    elif floor is not None and floor != unsigned.serial:
        base = floor
    else:
        return unsigned.serial
    if serial_increased(base, unsigned.serial):
        return unsigned.serial
    return (base + 1) % 2**32


def sign_version(
    zc: ZoneConfig,
    unsigned: ZoneVersion,
    old: ZoneVersion | None,
    keys: Sequence[SigningKey],
    now: float,
    serial: int | None = None,
    child_ds: parentds.Overrides | None = None,
) -> ZoneVersion:
    """*unsigned* signed by *keys* under *zc*'s policy at *serial* (default:
    its own), with *child_ds* in place of its children's DS, compiled like a
    signed zone file; *old*'s signatures are kept where still good.  Raises
    SigningError.

    The version remembers *unsigned* with its own serial: what the next edit
    of the file is compared with (``serial: keep`` checks the file's serial).
    """
    policy = zc.dnssec
    assert policy is not None
    previous = None
    if old is not None and old.inline is not None and old.inline.policy == policy:
        previous = old.inline.signed
    source = (
        unsigned if serial is None or serial == unsigned.serial else unsigned.with_serial(serial)
    )
    if child_ds:
        source = parentds.with_ds(source, child_ds, zc.lab_waive)
    signed = sign_zone(
        zc.name, source.nodes, keys, policy, int(now), previous, zc.lab_signing_behind
    )
    result = compile_zone(zc.name, list(signed.records(zc.file)), zc.file, zc.lab_waive)
    if result.version is None:
        raise SigningError(str(result.errors[0]))
    t = policy.timings()
    at = int(now)
    # The unsigned version is only compared with, never served: no wire form.
    inline = Inline(
        dataclasses.replace(unsigned, wire=None),
        signed,
        policy,
        _tags(keys),
        rollover.key_view(keys, t, at),
        tuple(
            (k.tag, k.role, rollover.state_of(k, at), rollover.ds_of(k, t, at))
            for k in sorted(keys, key=lambda k: (k.role, k.tag))
        ),
        rollover.next_step(keys, t, at),
    )
    return dataclasses.replace(result.version, files=unsigned.files, inline=inline)


def generated_catalog(
    view: str,
    zc: ZoneConfig,
    members: list[tuple[dns.name.Name, str | None]],
    old: ZoneVersion | None,
    now: float,
    floor: int | None,
    remembered: tuple[str, int] | None,
) -> tuple[ZoneVersion, ZoneLoadEvent, ServedRecord | None]:
    """The catalog authd generates for *members* (RFC 9432), against the one it replaces.

    The serial follows the zone's policy whenever the member list changes; after
    a restart with the same members it is the one served before (the digest is
    remembered like a managed-serial zone's), otherwise above the journal's last.
    """
    digest = catalog.digest(members)
    if old is not None:
        # Reading the served catalog is cheaper than building one to compare.
        listed = catalog.read(old)
        if listed.valid and {(m.name, m.group) for m in listed.members} == set(members):
            event = ZoneLoadEvent(
                view, zc.name, zc.file, LoadOutcome.UNCHANGED, old.serial, old.record_count
            )
            return old, event, None
    fresh = catalog.generate(zc.name, members)
    if old is not None:
        serial = policy_serial(zc.serial, old.serial, now)
    elif remembered is not None and remembered[0] == digest:
        serial = remembered[1]
    else:
        # Never below what secondaries may hold: the journal's last serial or
        # the one remembered for other members, whichever is later.
        base = floor
        if remembered is not None and (base is None or serial_increased(base, remembered[1])):
            base = remembered[1]
        serial = policy_serial(zc.serial, base if base is not None else 0, now)
    version = fresh.with_serial(serial)
    event = ZoneLoadEvent(view, zc.name, zc.file, LoadOutcome.LOADED, serial, version.record_count)
    record = None if remembered == (digest, serial) else ServedRecord(view, zc.name, digest, serial)
    return version, event, record


def keeps_last_good(zc: ZoneConfig) -> bool:
    """Whether the state folder keeps a last-good copy of *zc*: a primary whose
    file sets the serial, unsigned.  (Managed serials change with the content,
    so one serial never has two contents; a secondary's copy is its own; a
    signed zone's served version differs from its file by the signatures.)"""
    return (
        zc.type is ZoneType.PRIMARY
        and zc.serial is SerialPolicy.KEEP
        and zc.dnssec is None  # signed: the served version is not the file's
        and zc.catalog_role is not CatalogRole.GENERATE
        and zc.in_view is None
    )


def _restarted(event: ZoneLoadEvent, last: ZoneVersion) -> ZoneLoadEvent:
    """The load event at start against the last-good copy *last*, said as a start says it."""
    if event.outcome is LoadOutcome.UNCHANGED:
        return dataclasses.replace(event, outcome=LoadOutcome.LOADED)
    if event.outcome is LoadOutcome.KEPT_OLD:
        why = f"{event.reason} (the last-good copy of serial {last.serial} serves)"
        return dataclasses.replace(event, reason=why)
    return event


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


def first_loads(config: Config, previous: Snapshot | None) -> list[tuple[str, dns.name.Name, bool]]:
    """(view, zone, managed serial) of the zones a build of *config* loads for
    the first time after *previous*: the ones whose ``Stored`` state it needs."""
    old_views = {v.name: v for v in previous.views} if previous is not None else {}
    wanted = []
    for vc in config.views:
        old_view = old_views.get(vc.name)
        for zc in vc.zones:
            if zc.in_view is not None:
                continue
            if (
                old_view is None
                or zc.name not in old_view.zones
                or zc.name not in old_view.journals
            ):
                managed = zc.type is not ZoneType.SECONDARY and zc.serial is not SerialPolicy.KEEP
                wanted.append((vc.name, zc.name, managed))
    return wanted


def cookie_secrets(
    settings: cookies.Settings, previous: cookies.Secrets | None
) -> cookies.Secrets | None:
    """The configured secrets; without one, the previous snapshot's (random) secret."""
    if not settings.enabled:
        return None
    if settings.secret is not None:
        return cookies.Secrets(settings.secret, settings.previous_secret)
    return previous  # None at the first load: the service makes a random one


def plan_snapshot(
    config: Config,
    previous: Snapshot | None,
    generation: int,
    now: float = 0.0,
    only: Collection[tuple[str, dns.name.Name]] | None = None,
    stored: Mapping[tuple[str, dns.name.Name], Stored] | None = None,
    keys: Mapping[dns.name.Name, Sequence[SigningKey]] | None = None,
    key_problems: Mapping[dns.name.Name, str] | None = None,
) -> Build:
    """Load every zone of *config*; zones that fail keep *previous*'s version.

    With *only*, just those (view, zone) pairs are read again; the others keep
    *previous*'s versions untouched.  *stored* holds the state folder's
    contents for the zones of ``first_loads``; a zone missing from it starts
    with an empty journal and no remembered serial.  *keys* holds the signing
    keys of the zones with a signing policy (from the key store), and
    *key_problems* why a zone has none; that zone keeps its old version.
    """
    stored = stored or {}
    keys = keys or {}
    key_problems = key_problems or {}
    opts = config.options
    events: list[ZoneLoadEvent] = []
    served: list[ServedRecord] = []
    writes: list[JournalWrite] = []
    last_good: list[LastGood] = []
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
        children_ds = parentds.overrides(vc, keys, int(now), old_zones)
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
            reread = first or old_journal is None
            problem = None
            if reread:
                # The history the previous run left: IXFR continues across restarts.
                found = stored.get((vc.name, zc.name), Stored(_empty(opts)))
                old_journal, problem = found.journal, found.problem
            else:
                found = Stored()
            version: ZoneVersion | None
            if zc.catalog_role is CatalogRole.GENERATE:
                version, event, record = generated_catalog(
                    vc.name,
                    zc,
                    catalog.members_of(vc, zc),
                    old,
                    now,
                    old_journal.serial_to if first and old_journal is not None else None,
                    found.served if first else None,
                )
                if record is not None:
                    served.append(record)
            elif zc.type is ZoneType.SECONDARY:
                version, event = _secondary_copy(vc.name, zc, old, found.copy_problem)
            else:
                floor = old_journal.serial_to if first and old_journal is not None else None
                managed = zc.serial is not SerialPolicy.KEEP
                remembered = found.served if first and managed else None
                signing, problem_keys = keys.get(zc.name, ()), key_problems.get(zc.name)
                # After a restart the last-good copy stands in for the version
                # served before: the same serial with another content is refused
                # exactly as a running reload refuses it, and that copy serves.
                last, note, same_source = None, found.last_good_note, False
                below = children_ds.get(zc.name)
                version, event = load_one(
                    vc.name, zc, old, now, floor, remembered, signing, problem_keys, below
                )
                if first and keeps_last_good(zc) and found.last_good is not None:
                    source = found.last_good_source
                    same_source = source is not None and content_digest(source[1]) == source[0]
                    hint = found.last_good_serial
                    if not same_source and (
                        version is None
                        or hint is None
                        or not serial_increased(hint, version.serial)
                    ):
                        last, why = found.last_good()
                        note = note or why
                        if last is not None:
                            version, event = load_one(
                                vc.name,
                                zc,
                                last,
                                now,
                                floor,
                                remembered,
                                signing,
                                problem_keys,
                                below,
                            )
                            event = _restarted(event, last)
                if first and note is not None:
                    event = dataclasses.replace(event, journal_note=note)
                if managed and version is not None and version is not old:
                    digest = content_digest(version.files)
                    served.append(ServedRecord(vc.name, zc.name, digest, version.serial))
                if (
                    keeps_last_good(zc)
                    and version is not None
                    and version is not old
                    and version is not last
                    and not same_source
                ):
                    source = (content_digest(version.files), tuple(sorted(version.files)))
                    last_good.append(LastGood(vc.name, zc.name, version, source))
            zones[zc.name] = loaded[(vc.name, zc.name)] = version
            plan = plan_journal(
                opts,
                vc.name,
                zc.name,
                old,
                version,
                old_journal,
                first_load=reread,
                problem=problem,
            )
            journals[zc.name] = loaded_journals[(vc.name, zc.name)] = plan.journal
            if plan.write is not None:
                writes.append(plan.write)
            if plan.note is not None:
                event = dataclasses.replace(event, journal_note=plan.note)
            events.append(event)
        configs = {zc.name: zc for zc in vc.zones}
        restricted = any(
            zc.allow_query is not None and not allows_all(zc.allow_query) for zc in vc.zones
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
        limiter=ratelimit.reuse(previous.limiter if previous else None, opts.rate_limit),
        cookies=cookie_secrets(opts.cookies, previous.cookies if previous else None),
    )
    return Build(
        with_fresh_caches(snapshot), tuple(events), tuple(served), tuple(writes), tuple(last_good)
    )


def build_snapshot(
    config: Config,
    previous: Snapshot | None,
    generation: int,
    now: float = 0.0,
    only: Collection[tuple[str, dns.name.Name]] | None = None,
    keys: Mapping[dns.name.Name, Sequence[SigningKey]] | None = None,
    key_problems: Mapping[dns.name.Name, str] | None = None,
) -> tuple[Snapshot, list[ZoneLoadEvent]]:
    """What *config* would serve, with nothing read from or written to the state folder.

    For checks (``serve --check-config``) and tests; the server builds through
    ``authd.adapters.state.build_snapshot``, which persists serials and journals.
    *keys* and *key_problems*: as ``plan_snapshot``'s (the caller reads them).
    """
    built = plan_snapshot(config, previous, generation, now, only, None, keys, key_problems)
    return built.snapshot, list(built.events)


def plan_journal(
    opts: Options,
    view: str,
    zone: dns.name.Name,
    old: ZoneVersion | None,
    new: ZoneVersion | None,
    journal: Journal | None,
    first_load: bool = False,
    problem: str | None = None,
    owners: Sequence[dns.name.Name] | None = None,
) -> JournalPlan:
    """The zone's journal after *old* became *new*, the write that persists it,
    and a note worth logging.

    *journal* is the one in memory, or at a first load the one read from the
    state folder; None with *problem* when that file could not be read.  The
    write is performed before the new version is published, so after a crash
    the file never describes a version that was not served; one that ends
    elsewhere is discarded at the next start (``reconcile``).  *owners*: the
    only names at which *new* differs from *old* (``changeset.Applied``), so
    that only those are diffed.
    """
    fallback = memory_only(opts, old, new, owners)
    if journal is None:
        return JournalPlan(fallback, f"{problem or 'journal unreadable'}; {MEMORY_ONLY}", None)
    if first_load:
        # First load: pick up the history left by the previous run.
        note = None
        write = None
        if new is not None:
            journal, note = reconcile(journal, zone, new.serial)
            if note is not None:
                write = JournalWrite(view, zone, journal, None, fallback)
        return JournalPlan(journal, note, write)
    if old is None or new is None or new is old:
        return JournalPlan(journal, None, None)
    if not serial_increased(old.serial, new.serial):
        # A forced full transfer at the same serial: no changeset can say
        # what changed, so the history starts again (IXFR falls back to AXFR).
        journal = journal.empty()
        note = f"journal restarted: serial {new.serial} did not increase"
        return JournalPlan(journal, note, JournalWrite(view, zone, journal, None, fallback))
    change = diff(old, new) if owners is None else diff_owners(old, new, owners)
    try:
        journal = journal.append(change)
    except ValueError:
        journal = journal.empty().append(change)
        write = JournalWrite(view, zone, journal, None, fallback)
        return JournalPlan(journal, "journal restarted", write)
    return JournalPlan(journal, None, JournalWrite(view, zone, journal, change, fallback))


def memory_only(
    opts: Options,
    old: ZoneVersion | None,
    new: ZoneVersion | None,
    owners: Sequence[dns.name.Name] | None = None,
) -> Journal:
    """The journal served when its file cannot be kept: at most the last change."""
    empty = _empty(opts)
    if new is not None and old is not None and new is not old:
        with contextlib.suppress(ValueError):
            change = diff(old, new) if owners is None else diff_owners(old, new, owners)
            empty = empty.append(change)
    return empty


def _empty(opts: Options) -> Journal:
    return Journal((), max_entries=opts.journal_max_entries, max_bytes=opts.journal_max_bytes)


def _secondary_copy(
    view: str, zc: ZoneConfig, old: ZoneVersion | None, copy_problem: str | None = None
) -> tuple[ZoneVersion | None, ZoneLoadEvent]:
    """A secondary keeps the copy it serves; at start it reads its last transferred one
    (unless the state check found it unfit: *copy_problem*)."""
    if old is not None:
        event = ZoneLoadEvent(
            view, zc.name, zc.file, LoadOutcome.UNCHANGED, old.serial, old.record_count
        )
        return old, event
    if copy_problem is not None:
        event = ZoneLoadEvent(
            view,
            zc.name,
            zc.file,
            LoadOutcome.FAILED,
            None,
            0,
            copy_problem,
            awaiting_transfer=True,
        )
        return None, event
    if not os.path.exists(zc.file):
        event = ZoneLoadEvent(
            view,
            zc.name,
            zc.file,
            LoadOutcome.FAILED,
            None,
            0,
            "no copy yet: awaiting transfer",
            awaiting_transfer=True,
        )
        return None, event
    return load_one(view, zc, None)
