"""Reload coalescing: which reload runs, which waits, and who is answered when.

Owns: the order of reloads asked for by SIGHUP, ``authd ctl reload`` and the
file watcher.  Pure, like ``refresh.py``: every event returns the new state
and the actions the adapter must perform (start a worker, publish its
result, answer waiters); the adapter owns threads, Deferreds and the clock.
Waiters are opaque tokens the adapter hands in.

Invariants: at most one reload is in flight (working or publishing); the
requests made while one runs merge into exactly one follow-up, started when
it ends; a waiter is answered exactly once, by the first reload that covers
its request (the running one if it asked while idle, else the follow-up);
when a reload fails, every waiter of that reload gets the failure.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass

import dns.name

from authd.build import LoadOutcome, ZoneLoadEvent
from authd.config import Config, ZoneType
from authd.journal import Journal
from authd.snapshot import Snapshot, with_fresh_caches
from authd.zone import ZoneVersion

Target = tuple[str, dns.name.Name]  # (view, zone)
Waiter = int  # a token the adapter maps to whoever waits


@dataclass(frozen=True, slots=True)
class Scope:
    """What one reload covers: some zones, every zone, or the config and every zone."""

    zones: frozenset[Target] | None = None  # None: every zone
    config: bool = False

    def __post_init__(self) -> None:
        # Reading the config rebuilds every zone from it: a config reload is whole.
        if self.config and self.zones is not None:
            object.__setattr__(self, "zones", None)

    def covers(self, target: Target) -> bool:
        return self.zones is None or target in self.zones

    def merge(self, other: Scope) -> Scope:
        """The smallest scope covering both."""
        if self.zones is None or other.zones is None:
            return Scope(None, self.config or other.config)
        return Scope(self.zones | other.zones, self.config or other.config)

    def describe(self) -> str:
        """For the log: ``config and zones``, ``zones``, or the zones by name."""
        if self.config:
            return "config and zones"
        if self.zones is None:
            return "zones"
        return ", ".join(sorted(f"{zone.to_text()} (view {view})" for view, zone in self.zones))


ALL = Scope()
CONFIG = Scope(None, True)


def zones(targets: Iterable[Target]) -> Scope:
    return Scope(frozenset(targets))


class Phase(enum.Enum):
    IDLE = "idle"
    WORKING = "working"  # parsing in a worker
    PUBLISHING = "publishing"  # the worker's result is being swapped in


@dataclass(frozen=True, slots=True)
class ReloadState:
    phase: Phase = Phase.IDLE
    running: Scope | None = None  # the reload in flight
    answers: tuple[Waiter, ...] = ()  # waiters the running reload answers
    pending: Scope | None = None  # merged requests made while one runs
    pending_waiters: tuple[Waiter, ...] = ()


# -- events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requested:
    scope: Scope
    waiter: Waiter


@dataclass(frozen=True, slots=True)
class WorkerSucceeded:
    """The worker built a new snapshot: it is to be published."""


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    problem: str  # e.g. the config refused: nothing is published


@dataclass(frozen=True, slots=True)
class Published:
    problems: tuple[str, ...]  # what the published reload refused; empty: all went well


Event = Requested | WorkerSucceeded | WorkerFailed | Published


# -- actions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartWorker:
    scope: Scope


@dataclass(frozen=True, slots=True)
class Publish:
    scope: Scope


@dataclass(frozen=True, slots=True)
class Answer:
    waiters: tuple[Waiter, ...]
    problems: tuple[str, ...]


Action = StartWorker | Publish | Answer


class Misstep(Exception):
    """An event that cannot happen in this phase: a bug in the adapter."""


def _start(scope: Scope, waiters: tuple[Waiter, ...]) -> tuple[ReloadState, list[Action]]:
    return ReloadState(Phase.WORKING, scope, waiters), [StartWorker(scope)]


def _end(state: ReloadState, problems: tuple[str, ...]) -> tuple[ReloadState, list[Action]]:
    actions: list[Action] = [Answer(state.answers, problems)]
    if state.pending is None:
        return ReloadState(), actions
    following, more = _start(state.pending, state.pending_waiters)
    return following, actions + more


def step(state: ReloadState, event: Event) -> tuple[ReloadState, list[Action]]:
    """The state after *event*, and what the adapter must do now, in order."""
    if isinstance(event, Requested):
        if state.phase is Phase.IDLE:
            return _start(event.scope, (event.waiter,))
        pending = event.scope if state.pending is None else state.pending.merge(event.scope)
        waiters = (*state.pending_waiters, event.waiter)
        return dataclasses.replace(state, pending=pending, pending_waiters=waiters), []
    if isinstance(event, WorkerSucceeded):
        if state.phase is not Phase.WORKING or state.running is None:
            raise Misstep(f"worker succeeded while {state.phase.value}")
        return dataclasses.replace(state, phase=Phase.PUBLISHING), [Publish(state.running)]
    if isinstance(event, WorkerFailed):
        if state.phase is not Phase.WORKING:
            raise Misstep(f"worker failed while {state.phase.value}")
        return _end(state, (event.problem,))
    if state.phase is not Phase.PUBLISHING:
        raise Misstep(f"published while {state.phase.value}")
    return _end(state, event.problems)


def refusals(events: Iterable[ZoneLoadEvent], scope: Scope) -> tuple[str, ...]:
    """What a reload of *scope* refused, one line per zone kept old or failed.

    Zones outside *scope* were not asked for: their old refusals are not news.
    """
    out = []
    for e in events:
        if not scope.covers((e.view, e.zone)):
            continue
        if e.outcome is LoadOutcome.KEPT_OLD:
            what = "not reloaded"
        elif e.outcome is LoadOutcome.FAILED:
            what = "failed to load"
        else:
            continue
        out.append(f"zone {e.zone.to_text()} (view {e.view}) {what}: {e.reason}")
    return tuple(out)


def keep_secondaries(new: Snapshot, current: Snapshot, config: Config) -> Snapshot:
    """*new* with every secondary zone's version and journal as *current* serves them.

    A reload parses beside the running snapshot; a transfer published meanwhile
    is newer than anything the reload read, so it must not be rolled back.
    One pass over the views (a catalog brings thousands of secondaries: one
    ``with_zone`` each would copy every zone table once per zone).
    """
    running = {v.name: v for v in current.views}
    kept: dict[Target, tuple[ZoneVersion | None, Journal | None]] = {}
    for vc in config.views:
        cur = running.get(vc.name)
        if cur is None:
            continue
        for zc in vc.zones:
            if zc.type is ZoneType.SECONDARY and zc.in_view is None and zc.name in cur.zones:
                kept[(vc.name, zc.name)] = (cur.zones[zc.name], cur.journals.get(zc.name))
    if not kept:
        return new
    views = []
    for v in new.views:
        zones, journals = dict(v.zones), dict(v.journals)
        touched = False
        for name in list(zones):
            entry = v.configs.get(name)
            shared = entry.in_view if entry is not None else None
            source = (shared, name) if shared else (v.name, name)
            if source not in kept:
                continue
            version, journal = kept[source]
            zones[name] = version
            if journal is not None:
                journals[name] = journal
            touched = True
        views.append(dataclasses.replace(v, zones=zones, journals=journals) if touched else v)
    return with_fresh_caches(dataclasses.replace(new, views=tuple(views)))
