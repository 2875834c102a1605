"""What ``authd ctl status`` reports, as values: per server, per zone, per load.

Owns: the records the service keeps of each zone's loads (``ZoneRecord``,
updated from load events and from inbound transfers) and the typed status
built from them, the config and the served snapshot.  Pure: times come in
(``now``, seconds since the epoch); the adapter renders the result to JSON.
Invariants: a zone's ``loaded_at`` is the time its serving version was
published, by a file load or by a transfer; ``last_load`` is the latest
attempt, whatever its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import dns.name

from authd.build import LoadOutcome, ZoneLoadEvent
from authd.config import Config
from authd.signer import Inline
from authd.snapshot import Snapshot

Target = tuple[str, dns.name.Name]  # (view, zone)


@dataclass(frozen=True, slots=True)
class LoadRecord:
    at: float
    outcome: str  # a LoadOutcome value
    reason: str | None
    serial: int | None


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    loaded_at: float | None = None
    last_load: LoadRecord | None = None
    files: frozenset[str] = frozenset()  # what the last file load read (watched for fixes)


def recorded(
    records: Mapping[Target, ZoneRecord], events: Iterable[ZoneLoadEvent], now: float
) -> dict[Target, ZoneRecord]:
    """*records* updated by a load's *events*."""
    out = dict(records)
    for e in events:
        old = out.get((e.view, e.zone), ZoneRecord())
        loaded_at = now if e.outcome is LoadOutcome.LOADED else old.loaded_at
        out[(e.view, e.zone)] = ZoneRecord(
            loaded_at, LoadRecord(now, e.outcome.value, e.reason, e.serial), e.files
        )
    return out


def transferred(record: ZoneRecord | None, serial: int, how: str, now: float) -> ZoneRecord:
    """*record* after a secondary published a copy received by an inbound transfer.

    *how* names the transfer and its primary (``AXFR from 192.0.2.1#53``).
    """
    load = LoadRecord(now, LoadOutcome.LOADED.value, f"transferred by {how}", serial)
    return replace(record or ZoneRecord(), loaded_at=now, last_load=load)


@dataclass(frozen=True, slots=True)
class JournalSpan:
    serial_from: int
    serial_to: int
    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class RefreshStatus:
    """A secondary's refresh machine as the fleet sees it (``refresh.RefreshState``)."""

    phase: str
    last_result: str
    failures: int
    expired: bool
    next_check_in: float  # seconds


@dataclass(frozen=True, slots=True)
class FleetStatus:
    refresh: RefreshStatus | None = None  # secondaries only
    last_acks: tuple[tuple[str, str], ...] = ()  # (secondary address#port, its last NOTIFY ack)


NO_FLEET = FleetStatus()


@dataclass(frozen=True, slots=True)
class SigningStatus:
    """A zone authd signs: its policy, keys, earliest expiry, next re-signing."""

    policy: str
    denial: str
    keys: tuple[tuple[int, int, str], ...]  # (tag, algorithm, role)
    earliest_expiry: int | None  # unix seconds
    next_signing: int | None  # when the first signature falls due for refresh
    # (tag, role, state, ds) at signing: authd.rollover.state_of and ds_of
    key_states: tuple[tuple[int, str, str, str], ...] = ()
    next_key_event: tuple[int, str] | None = None  # (when, what): authd.rollover.next_step


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    view: str
    zone: dns.name.Name
    role: str
    file: str
    serial: int | None
    records: int
    loaded_at: float | None
    last_load: LoadRecord | None
    journal: JournalSpan | None  # None: empty
    primaries: tuple[str, ...]
    also_notify: tuple[str, ...]
    fleet: FleetStatus = NO_FLEET
    signing: SigningStatus | None = None  # signed by authd (inline signing)

    @property
    def serving(self) -> bool:
        return self.serial is not None


@dataclass(frozen=True, slots=True)
class ServerStatus:
    generation: int
    uptime: float  # seconds
    config: str | None
    last_reload_stall: float | None  # seconds; None: no reload yet
    zones: tuple[ZoneStatus, ...]


def build(
    config: Config,
    snapshot: Snapshot,
    records: Mapping[Target, ZoneRecord],
    fleet: Callable[[str, dns.name.Name], FleetStatus],
    now: float,
    started: float,
    last_reload_stall: float | None,
) -> ServerStatus:
    """The status of every configured zone of a view the snapshot serves, in config order."""
    zones = []
    for vc in config.views:
        view = next((v for v in snapshot.views if v.name == vc.name), None)
        if view is None:
            continue
        for zc in vc.zones:
            version = view.zones.get(zc.name)
            journal = view.journals.get(zc.name)
            # A zone shared from an earlier view (in_view) is loaded there.
            record = records.get((zc.in_view or vc.name, zc.name), ZoneRecord())
            span = None
            if journal is not None and journal.entries:
                span = JournalSpan(
                    journal.entries[0].serial_from,
                    journal.entries[-1].serial_to,
                    len(journal.entries),
                    journal.total_bytes,
                )
            zones.append(
                ZoneStatus(
                    vc.name,
                    zc.name,
                    zc.type.value,
                    zc.file,
                    version.serial if version is not None else None,
                    version.record_count if version is not None else 0,
                    record.loaded_at,
                    record.last_load,
                    span,
                    tuple(f"{p.address}#{p.port}" for p in zc.primaries),
                    tuple(f"{r.address}#{r.port}" for r in zc.also_notify),
                    fleet(vc.name, zc.name),
                    _signing(version.inline) if version is not None else None,
                )
            )
    return ServerStatus(
        snapshot.generation, now - started, config.path, last_reload_stall, tuple(zones)
    )


def _signing(inline: Inline | None) -> SigningStatus | None:
    if inline is None:
        return None
    return SigningStatus(
        inline.policy.name,
        inline.policy.denial.value,
        inline.keys,
        inline.signed.earliest_expiry(),
        inline.signed.next_refresh(inline.policy),
        inline.key_states,
        inline.next_key_event,
    )


def summary(z: ZoneStatus) -> str:
    """The start-up log line of one zone: role, serial, journal span, peers, refresh."""
    j = z.journal
    journal = (
        f"journal {j.serial_from}..{j.serial_to} ({j.entries} changes)" if j else "journal empty"
    )
    peers = (
        f"primaries {', '.join(z.primaries)}"
        if z.primaries
        else f"also-notify {', '.join(z.also_notify) or 'none'}"
    )
    r = z.fleet.refresh
    last = f", last transfer: {r.last_result}" if r is not None else ""
    serial = z.serial if z.serial is not None else "none (SERVFAIL)"
    return (
        f"zone {z.zone.to_text()} (view {z.view}): {z.role}, serial {serial}, "
        f"{journal}, {peers}{last}"
    )
