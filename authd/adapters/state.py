"""The state folder: served copies, remembered serials and IXFR journals on disk.

Owns every write under ``state_dir`` (and a secondary's stored copy): what
``authd.build`` decides as values, performed here before the snapshot that
needs them is published.  Layout: ``STATE/VIEW/ZONE.serial`` (JSON: source
digest and serial of a managed-serial zone), ``STATE/VIEW/ZONE.journal``
(``authd.journal``'s format) and ``STATE/VIEW/ZONE.last-good`` (the version a
primary whose file sets the serial last served, in the checksummed format of
a secondary's copy, ``authd.xfr_in.copy_text``); ZONE as ``state_file`` names it.

Crash safety, which ``tests/test_journal.py`` checks with ``kill -9``:

* a journal append is one ``write`` then an ``fsync``; a torn last record is
  cut off at the next read (``read_journal``), never half-applied;
* every replacement (journal, ``.serial``, stored copy) is a temporary file,
  ``fsync``, ``rename`` over the old one, then (journals and copies) an
  ``fsync`` of the folder so the rename itself is durable.

A write that fails does not stop the zone: a ``.serial`` file is only
reported, and a journal falls back to history in memory only, as the build
planned (``JournalWrite.fallback``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Collection, Iterator, Sequence
from typing import IO, Any

import dns.name

from authd import parentds, rollover, xfr_in
from authd.adapters import keystore
from authd.build import (
    MEMORY_ONLY,
    Build,
    JournalChange,
    JournalWrite,
    ServedRecord,
    Stored,
    ZoneLoadEvent,
    first_loads,
    keeps_last_good,
    plan_journal,
    plan_snapshot,
)
from authd.changeset import Changeset
from authd.config import Config, ZoneConfig, ZoneType, state_file
from authd.errors import ZoneError
from authd.journal import (
    DEFAULT_JOURNAL_MAX_BYTES,
    DEFAULT_JOURNAL_MAX_ENTRIES,
    MAGIC,
    Journal,
    JournalError,
    decode_journal,
    encode_journal,
    encode_record,
)
from authd.keyfiles import KeyFileError, ZoneKey, make_zone_key
from authd.limits import MAX_LAST_GOOD_HEAD_LINE
from authd.rollover import RolloverError
from authd.signer import active
from authd.signpolicy import SigningPolicy
from authd.snapshot import Snapshot, with_zone
from authd.zone import ZoneVersion, load_zone

__all__ = [
    "JournalChange",
    "append_journal",
    "build_snapshot",
    "journal_path",
    "perform",
    "read_journal",
    "read_served",
    "read_stored",
    "record_change",
    "served_path",
    "write_copy",
    "write_journal",
    "write_served",
]


# -- paths ------------------------------------------------------------------


def served_path(config: Config, view: str, zone: dns.name.Name) -> str:
    return state_file(config.state_dir, view, zone, ".serial")


def journal_path(config: Config, view: str, zone: dns.name.Name) -> str:
    return state_file(config.state_dir, view, zone, ".journal")


# -- building a snapshot with its state ----------------------------------------


def build_snapshot(
    config: Config,
    previous: Snapshot | None,
    generation: int,
    now: float = 0.0,
    only: Collection[tuple[str, dns.name.Name]] | None = None,
) -> tuple[Snapshot, list[ZoneLoadEvent]]:
    """``authd.build.plan_snapshot`` with the state folder read before and written after.

    Zones loaded for the first time continue the journal and the serial the
    previous run left; the writes are done before returning, so before the
    caller publishes the snapshot.
    """
    copies = secondary_copies(config)
    primaries = last_good_zones(config)
    stored = {}
    for view, zone, managed in first_loads(config, previous):
        found = read_stored(config, view, zone, managed, copies.get((view, zone)))
        zc = primaries.get((view, zone))
        if zc is not None:
            found = _with_last_good(config, view, zc, found)
        stored[(view, zone)] = found
    keys, problems = signing_keys(config, int(now))
    built = plan_snapshot(config, previous, generation, now, only, stored, keys, problems)
    return perform(config, built)


def signing_keys(
    config: Config, now: int, *, write: bool = True
) -> tuple[dict[dns.name.Name, tuple[ZoneKey, ...]], dict[dns.name.Name, str]]:
    """The key store's keys of every zone authd signs, generating the ones its
    policy needs and lacks (first need) and taking every rollover step that
    is due (``authd.rollover``: a successor made, a DS seen, a gone key
    dropped); and, for a zone whose keys cannot be read or made, why.  Read
    at every build: a few small files per zone.

    Without *write* (``serve --check-config``), a missing key is made in memory
    only, so the check signs as the server would and the key store is untouched.
    """
    keys: dict[dns.name.Name, tuple[ZoneKey, ...]] = {}
    problems: dict[dns.name.Name, str] = {}
    # A child whose parent this server builds: the parent places the DS itself.
    followed = {child for vc in config.views for child in parentds.followed(vc)}
    for vc in config.views:
        for zc in vc.zones:
            policy = zc.dnssec
            if policy is None or zc.in_view is not None or zc.name in keys:
                continue
            try:
                if write:
                    found = step_keys(
                        config.state_dir, zc.name, policy, now, auto_ds=zc.name in followed
                    )
                else:
                    found = keystore.load_keys(config.state_dir, zc.name)
                    for role in policy.roles:
                        if not _has_active(found, role, policy.algorithm, now):
                            private = keystore.new_private_key(policy.algorithm)
                            made = make_zone_key(
                                zc.name, role, private, now, publish=now, activate=now
                            )
                            found = (*found, made)
            except (KeyFileError, RolloverError, OSError) as e:
                problems[zc.name] = f"key store: {e}"
                continue
            keys[zc.name] = tuple(
                k for k in found if k.algorithm == policy.algorithm and k.role in policy.roles
            )
    return keys, problems


def _has_active(keys: Sequence[ZoneKey], role: str, algorithm: int, now: int) -> bool:
    return any(k.role == role and k.algorithm == algorithm and active(k, now) for k in keys)


def step_keys(
    state_dir: str,
    zone: dns.name.Name,
    policy: SigningPolicy,
    now: int,
    *,
    auto_ds: bool = False,
    asked: Collection[str] = (),
    ds_tag: int | None = None,
    ds_seen: bool = False,
) -> tuple[ZoneKey, ...]:
    """Take *zone*'s key steps due at *now*, in one locked read-change-write
    of its ``keys.json``: first keys (published and active at once: nothing
    to pre-publish for), successors whose time has come or that are *asked*
    for, the DS seen (*ds_seen*, of *ds_tag* or of the waiting KSK; at once
    with *auto_ds*), and keys gone from every cache dropped."""
    t = policy.timings()
    for role in asked:
        if role not in policy.roles:
            raise RolloverError(
                f"{zone}: the policy {policy.name!r} has no {role} (keys: {policy.keys.value})"
            )

    def change(found: tuple[ZoneKey, ...]) -> list[ZoneKey]:
        ours = [k for k in found if k.algorithm == policy.algorithm and k.role in policy.roles]
        for role in asked:
            rollover.check_request(ours, role, now)
        out = list(found)
        taken = {k.tag for k in out}
        for role in policy.roles:
            if not _has_active(out, role, policy.algorithm, now):
                first = keystore.fresh_key(zone, policy.algorithm, role, now, taken)
                out.append(dataclasses.replace(first, publish=now, activate=now))
                taken.add(first.tag)
        ours = [k for k in out if k.algorithm == policy.algorithm and k.role in policy.roles]
        if "zsk" in policy.roles:
            changes = rollover.adopt(ours, now, t)
            out, ours = rollover.apply(out, changes), rollover.apply(ours, changes)
        for role in rollover.due(ours, t, now, policy.roles, asked):
            new = keystore.fresh_key(zone, policy.algorithm, role, now, taken)
            taken.add(new.tag)
            ours.append(new)
            out.append(new)
            changes = rollover.begin(ours, new, now, t, role in asked)
            out = rollover.apply(out, changes)
            ours = rollover.apply(ours, changes)
        if ds_seen or auto_ds:
            changes = rollover.ds_seen(ours, now, t, ds_tag)
            out = rollover.apply(out, changes)
        return [k for k in out if not rollover.gone(k, t, now)]

    return keystore.update_keys(state_dir, zone, change)


def secondary_copies(config: Config) -> dict[tuple[str, dns.name.Name], str]:
    """(view, zone) -> stored copy path, for every secondary zone a view loads itself."""
    return {
        (vc.name, zc.name): zc.file
        for vc in config.views
        for zc in vc.zones
        if zc.type is ZoneType.SECONDARY and zc.in_view is None
    }


def last_good_zones(config: Config) -> dict[tuple[str, dns.name.Name], ZoneConfig]:
    """(view, zone) -> config, for the zones whose last-good copy the state folder keeps."""
    return {(vc.name, zc.name): zc for vc in config.views for zc in vc.zones if keeps_last_good(zc)}


def last_good_path(config: Config, view: str, zone: dns.name.Name) -> str:
    return state_file(config.state_dir, view, zone, ".last-good")


def _with_last_good(config: Config, view: str, zc: ZoneConfig, found: Stored) -> Stored:
    """*found* with what the build needs of *zc*'s last-good copy: its first lines
    now (serial, source), the whole copy only if the build asks (``read_last_good``)."""
    path = last_good_path(config, view, zc.name)
    # The checksum is cheap beside a parse: a torn copy is moved aside now and
    # the build then writes a new one, even when the file did not change.
    problem = check_copy(path)
    if problem is not None:
        return dataclasses.replace(found, last_good_note=problem)
    try:
        with open(path, "rb") as f:
            head = [f.readline(MAX_LAST_GOOD_HEAD_LINE) for _ in range(4)]
    except FileNotFoundError:
        return found
    except OSError as e:
        return dataclasses.replace(found, last_good_note=f"last-good copy {path}: {e}")
    serial: int | None = None
    source: tuple[str, tuple[str, ...]] | None = None
    with contextlib.suppress(ValueError, IndexError, KeyError, TypeError):
        # COPY_HEADER, "; source {json}", "$ORIGIN ...", then the SOA line.
        data = json.loads(head[1].decode().removeprefix("; source "))
        source = (str(data["digest"]), tuple(str(p) for p in data["files"]))
        serial = int(head[3].split()[6])
    return dataclasses.replace(
        found,
        last_good=lambda: read_last_good(config, view, zc),
        last_good_serial=serial,
        last_good_source=source,
    )


def read_last_good(
    config: Config, view: str, zc: ZoneConfig
) -> tuple[ZoneVersion | None, str | None]:
    """The version *zc* last served, from its checksummed last-good copy; and a note.

    A copy that fails its checksum is moved aside (``check_copy``) and the
    zone file alone decides, as before there were copies.
    """
    path = last_good_path(config, view, zc.name)
    problem = check_copy(path)
    if problem is not None or not os.path.isfile(path):
        return None, problem
    try:
        result = load_zone(
            zc.name, path, zc.max_records, max_records_per_rrset=zc.max_records_per_rrset
        )
    except (ZoneError, OSError) as e:
        return None, f"last-good copy {path}: {e}"
    if result.version is None:
        return None, f"last-good copy {path}: refused"
    # Served as the zone file's version: watched as that file, never as our copy.
    version = dataclasses.replace(result.version, file=zc.file, files=frozenset({zc.file}))
    return version, None


def read_stored(
    config: Config, view: str, zone: dns.name.Name, managed: bool, copy: str | None = None
) -> Stored:
    """What the state folder holds for *view*'s *zone* (its serial only if *managed*;
    with *copy*, a secondary's stored copy is checked first: ``check_copy``)."""
    served = read_served(config, view, zone) if managed else None
    copy_note = check_copy(copy) if copy is not None else None
    stored = _read_stored_journal(config, view, zone, served)
    return dataclasses.replace(stored, copy_problem=copy_note) if copy_note else stored


def _read_stored_journal(
    config: Config, view: str, zone: dns.name.Name, served: tuple[str, int] | None
) -> Stored:
    opts = config.options
    path = journal_path(config, view, zone)
    try:
        journal = read_journal(path, opts.journal_max_entries, opts.journal_max_bytes)
    except JournalError as e:
        # Appending to a file we cannot read would lose every later change too:
        # keep it for a post-mortem and let a new history start beside it.
        aside = f"{path}.corrupt"
        try:
            os.replace(path, aside)
        except OSError as moved:
            return Stored(None, f"journal {path}: {e} (cannot move it aside: {moved})", served)
        return Stored(None, f"journal {path}: {e}; moved to {aside}, a new one starts", served)
    except OSError as e:
        return Stored(None, f"journal {path}: {e}", served)
    return Stored(journal, None, served)


def perform(config: Config, built: Build) -> tuple[Snapshot, list[ZoneLoadEvent]]:
    """Write what *built* needs; its snapshot and events, with any failure noted."""
    events = list(built.events)
    where = {(e.view, e.zone): i for i, e in enumerate(events)}

    def note(view: str, zone: dns.name.Name, text: str, override: bool) -> None:
        i = where.get((view, zone))
        if i is not None and (override or events[i].journal_note is None):
            events[i] = dataclasses.replace(events[i], journal_note=text)

    for record in built.served:
        try:
            write_served(config, record)
        except OSError as e:
            # A journal note says more; this one only matters when alone.
            note(record.view, record.zone, f"cannot record the served serial: {e}", False)
    for good in built.last_good:
        path = last_good_path(config, good.view, good.zone)
        digest, files = good.source
        try:
            write_copy(
                path, good.version, "source " + json.dumps({"digest": digest, "files": files})
            )
        except OSError as e:
            # Served all the same; only a restart on a changed file loses the check.
            note(good.view, good.zone, f"cannot store the last-good copy {path}: {e}", False)
    snapshot = built.snapshot
    for write in built.journals:
        problem = _write_journal_change(config, write)
        if problem is not None:
            note(write.view, write.zone, problem, True)
            version = snapshot.view_zone(write.view, write.zone)
            snapshot = with_zone(
                snapshot, write.view, write.zone, version, write.fallback, snapshot.generation
            )
    return snapshot, events


def record_change(
    config: Config,
    view: str,
    zone: dns.name.Name,
    old: ZoneVersion | None,
    new: ZoneVersion | None,
    journal: Journal | None,
    first_load: bool = False,
    owners: Sequence[dns.name.Name] | None = None,
) -> JournalChange:
    """The zone's journal after *old* became *new*, persisted; and a note worth logging.

    *journal* None: the one on disk is read first.  The file is written
    before returning, so before the caller publishes *new*.  *owners*: the
    only names at which *new* differs from *old* (an IXFR applied in place).
    """
    problem = None
    if journal is None:
        stored = read_stored(config, view, zone, managed=False)
        journal, problem, first_load = stored.journal, stored.problem, True
    plan = plan_journal(config.options, view, zone, old, new, journal, first_load, problem, owners)
    if plan.write is not None:
        failed = _write_journal_change(config, plan.write)
        if failed is not None:
            return plan.write.fallback, failed
    return plan.journal, plan.note


def _write_journal_change(config: Config, write: JournalWrite) -> str | None:
    """Perform *write*; None, or the note saying why the history is in memory only."""
    path = journal_path(config, write.view, write.zone)
    try:
        _ensure_dir(path)
        if write.append is None:
            write_journal(path, write.journal)
        else:
            size = append_journal(path, write.append)
            if write.journal.should_compact(size):
                write_journal(path, write.journal)
    except OSError as e:
        return f"journal {path}: {e}; {MEMORY_ONLY}"
    return None


# -- remembered serials --------------------------------------------------------


def read_served(config: Config, view: str, zone: dns.name.Name) -> tuple[str, int] | None:
    """The (source digest, serial) a managed-serial zone last served, if recorded."""
    try:
        with open(served_path(config, view, zone), encoding="utf-8") as f:
            data = json.load(f)
        return str(data["digest"]), int(data["serial"]) % 2**32
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_served(config: Config, record: ServedRecord) -> None:
    """Record what a managed-serial zone serves, atomically, for the next start."""
    path = served_path(config, record.view, record.zone)
    _ensure_dir(path)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"digest": record.digest, "serial": record.serial}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- journals --------------------------------------------------------------------


def read_journal(
    path: str,
    max_entries: int = DEFAULT_JOURNAL_MAX_ENTRIES,
    max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES,
    *,
    repair: bool = True,
) -> Journal:
    """The journal at *path* (empty when there is no file).

    With *repair*, a torn tail is cut off the file so that the next append
    lands right after the last intact record.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Journal((), (), max_entries, max_bytes)
    journal, intact = decode_journal(data, max_entries, max_bytes)
    if repair and intact < len(data):
        if intact < len(MAGIC):
            write_journal(path, journal)
        else:
            with open(path, "r+b") as f:
                f.truncate(intact)
                f.flush()
                os.fsync(f.fileno())
    return journal


def write_journal(path: str, journal: Journal) -> None:
    """Replace the file at *path* with *journal*, atomically."""
    with _replacing(path, binary=True) as f:
        f.write(encode_journal(journal))


def append_journal(path: str, changeset: Changeset) -> int:
    """Append *changeset* to the file at *path* (created if missing); its new size.

    The caller has read the file with ``read_journal`` first (which cuts a
    torn tail) and appends the same changeset to its ``Journal`` value.
    """
    record = encode_record(changeset)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        size = 0
    if size < len(MAGIC):
        # A new file, or one torn while being created: write it whole.
        with _replacing(path, binary=True) as f:
            f.write(MAGIC + record)
        return len(MAGIC) + len(record)
    with open(path, "ab") as f:
        f.write(record)
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


# -- a secondary's stored copy ----------------------------------------------------


def write_copy(path: str, version: ZoneVersion, note: str | None = None) -> None:
    """Atomically replace a stored copy of *version* (checksummed zone text; *note*:
    one comment line after the header)."""
    _ensure_dir(path)
    with _replacing(path, binary=False) as f:
        f.writelines(xfr_in.copy_text(version, note))


def check_copy(path: str) -> str | None:
    """Why the stored copy at *path* must not be served, or None (whole, or absent).

    A torn or altered copy is moved aside to ``PATH.corrupt`` so that the
    zone starts empty and takes a full transfer from its primary; a folder in
    its place is left alone (not ours to remove) and reported.
    """
    if os.path.isdir(path):
        return (
            f"stored copy {path} is a directory, not a file: awaiting a full transfer "
            "(it will be served from memory only)"
        )
    try:
        with open(path, "rb") as f:
            why = xfr_in.copy_problem(f)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"stored copy {path}: {e.strerror or e}: awaiting a full transfer"
    if why is None:
        return None
    aside = f"{path}.corrupt"
    try:
        os.replace(path, aside)
    except OSError as e:
        return f"stored copy {path}: {why}; cannot move it aside ({e.strerror or e})"
    return f"stored copy {path}: {why}; moved to {aside}, awaiting a full transfer"


# -- helpers -----------------------------------------------------------------------


@contextlib.contextmanager
def _replacing(path: str, binary: bool) -> Iterator[IO[Any]]:
    """A file to write that replaces *path* atomically once the block ends:
    temp file, fsync, rename, fsync the folder.  On an error *path* is untouched."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A full disk must not be left fuller by our half-written temp file.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)


# -- zones that are gone -----------------------------------------------------------


def remove_zone_state(config: Config, view: str, zone: dns.name.Name, copy: str) -> list[str]:
    """Delete what the state folder keeps for a zone no longer served (a catalog
    member removed): its stored *copy*, journal and remembered serial.  The
    files removed; one that cannot be removed is left (and a new member of that
    name reconciles its journal at load)."""
    removed = []
    paths = (copy, journal_path(config, view, zone), served_path(config, view, zone))
    for path in (*paths, last_good_path(config, view, zone)):
        try:
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    return removed
