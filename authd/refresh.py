"""The secondary zone's refresh state machine (RFC 1034 section 4.3.5, RFC 1996).

Owns: when a secondary asks its primaries for the SOA, when it transfers,
when it retries, and when its copy expires.  Pure: time comes in as ``now``
(seconds, any monotonic origin) and jitter as a number in [0, 1); every event
returns the new state and the actions the adapter must perform.  Invariants:
at most one check or transfer is in flight; an expired zone stays expired
until a transfer succeeds; a NOTIFY during a check or transfer is remembered
and causes one more check when that one ends.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import dns.serial

from authd.limits import (
    DEFAULT_MAX_REFRESH,
    DEFAULT_MAX_RETRY,
    DEFAULT_MIN_REFRESH,
    DEFAULT_MIN_RETRY,
)

# Clamp SOA timers as BIND's min/max-refresh-time and min/max-retry-time do,
# so a typo in a primary's SOA cannot make us hammer it or never look.
JITTER_FRACTION = 0.2  # refresh and retry happen up to 20% early, spreading load


@dataclass(frozen=True, slots=True)
class Clamp:
    min_refresh: float = DEFAULT_MIN_REFRESH
    max_refresh: float = DEFAULT_MAX_REFRESH
    min_retry: float = DEFAULT_MIN_RETRY
    max_retry: float = DEFAULT_MAX_RETRY


@dataclass(frozen=True, slots=True)
class SoaTimers:
    serial: int
    refresh: float
    retry: float
    expire: float


class Phase(enum.Enum):
    IDLE = "idle"  # waiting for the next check
    CHECKING = "checking"  # an SOA query is in flight
    TRANSFERRING = "transferring"  # an IXFR/AXFR is in flight


class Action(enum.Enum):
    QUERY_SOA = "query-soa"
    TRANSFER = "transfer"
    EXPIRE = "expire"  # stop serving the copy: answer SERVFAIL
    PUBLISH = "publish"  # a transfer succeeded: the adapter has a new copy to serve


@dataclass(frozen=True, slots=True)
class RefreshState:
    phase: Phase = Phase.IDLE
    timers: SoaTimers | None = None  # from the copy we serve; None: no copy yet
    next_check: float = 0.0
    expires_at: float | None = None  # None: no copy, or never refreshed yet
    expired: bool = False
    failures: int = 0
    notify_pending: bool = False
    last_result: str = "none"


def _clamped(timers: SoaTimers, clamp: Clamp) -> tuple[float, float]:
    refresh = min(max(timers.refresh, clamp.min_refresh), clamp.max_refresh)
    retry = min(max(timers.retry, clamp.min_retry), clamp.max_retry)
    return refresh, retry


def _early(interval: float, jitter: float) -> float:
    return interval * (1.0 - JITTER_FRACTION * jitter)


def start(
    now: float, copy: SoaTimers | None, copy_age: float, clamp: Clamp
) -> tuple[RefreshState, list[Action]]:
    """State at start-up; *copy* is the stored copy's SOA, *copy_age* its age in seconds."""
    if copy is None:
        # CHECKING, as below: the SOA query is in flight, so the timer the
        # adapter arms for next_check (now) must not start a second one.
        return RefreshState(phase=Phase.CHECKING, next_check=now), [Action.QUERY_SOA]
    remaining = copy.expire - copy_age
    if remaining <= 0:
        state = RefreshState(timers=copy, next_check=now, expired=True, last_result="expired")
        return dataclasses.replace(state, phase=Phase.CHECKING), [Action.EXPIRE, Action.QUERY_SOA]
    state = RefreshState(
        phase=Phase.CHECKING, timers=copy, next_check=now, expires_at=now + remaining
    )
    return state, [Action.QUERY_SOA]


def tick(state: RefreshState, now: float, clamp: Clamp) -> tuple[RefreshState, list[Action]]:
    """Called when a timer fires (or at any time): the actions now due."""
    actions: list[Action] = []
    if not state.expired and state.expires_at is not None and now >= state.expires_at:
        state = dataclasses.replace(state, expired=True, last_result="expired")
        actions.append(Action.EXPIRE)
    if state.phase is Phase.IDLE and now >= state.next_check:
        state = dataclasses.replace(state, phase=Phase.CHECKING)
        actions.append(Action.QUERY_SOA)
    return state, actions


def notify(state: RefreshState, now: float) -> tuple[RefreshState, list[Action]]:
    """A NOTIFY from a primary (RFC 1996 section 4.7): check at once."""
    if state.phase is not Phase.IDLE:
        return dataclasses.replace(state, notify_pending=True), []
    return dataclasses.replace(state, phase=Phase.CHECKING, next_check=now), [Action.QUERY_SOA]


def soa_answer(
    state: RefreshState, now: float, primary_serial: int | None, clamp: Clamp, jitter: float
) -> tuple[RefreshState, list[Action]]:
    """The SOA check finished; *primary_serial* is None when it failed."""
    if primary_serial is None:
        return _failed(state, now, clamp, jitter, "soa query failed")
    ours = state.timers.serial if state.timers is not None else None
    # An expired copy is no longer served (EXPIRE dropped it), so even at the
    # same serial only a transfer brings the zone back, as BIND does.
    if ours is None or state.expired or dns.serial.Serial(primary_serial) > dns.serial.Serial(ours):
        return dataclasses.replace(state, phase=Phase.TRANSFERRING), [Action.TRANSFER]
    # Up to date: the refresh counts as success and restarts the expire clock.
    assert state.timers is not None
    return _succeeded(state, now, state.timers, clamp, jitter, "up to date", [])


def transfer_done(
    state: RefreshState,
    now: float,
    new: SoaTimers | None,
    clamp: Clamp,
    jitter: float,
    reason: str = "transfer failed",
) -> tuple[RefreshState, list[Action]]:
    """The transfer finished; *new* is the SOA of the new copy, None when it failed."""
    if new is None:
        return _failed(state, now, clamp, jitter, reason)
    return _succeeded(
        dataclasses.replace(state, expired=False),
        now,
        new,
        clamp,
        jitter,
        f"transferred serial {new.serial}",
        [Action.PUBLISH],
    )


def _succeeded(
    state: RefreshState,
    now: float,
    timers: SoaTimers,
    clamp: Clamp,
    jitter: float,
    result: str,
    actions: list[Action],
) -> tuple[RefreshState, list[Action]]:
    refresh, _ = _clamped(timers, clamp)
    state = RefreshState(
        phase=Phase.IDLE,
        timers=timers,
        next_check=now + _early(refresh, jitter),
        expires_at=now + timers.expire,
        expired=False,
        failures=0,
        notify_pending=state.notify_pending,
        last_result=result,
    )
    return _after(state, now, actions)


def _failed(
    state: RefreshState, now: float, clamp: Clamp, jitter: float, result: str
) -> tuple[RefreshState, list[Action]]:
    if state.timers is not None:
        _, retry = _clamped(state.timers, clamp)
    else:
        retry = clamp.min_retry * 2 ** min(state.failures, 6)  # no SOA yet: back off
        retry = min(retry, clamp.max_retry)
    state = dataclasses.replace(
        state,
        phase=Phase.IDLE,
        next_check=now + _early(retry, jitter),
        failures=state.failures + 1,
        last_result=result,
    )
    actions: list[Action] = []
    if not state.expired and state.expires_at is not None and now >= state.expires_at:
        state = dataclasses.replace(state, expired=True, last_result=f"{result}; expired")
        actions.append(Action.EXPIRE)
    return _after(state, now, actions)


def _after(
    state: RefreshState, now: float, actions: list[Action]
) -> tuple[RefreshState, list[Action]]:
    if state.notify_pending:
        state = dataclasses.replace(
            state, notify_pending=False, phase=Phase.CHECKING, next_check=now
        )
        return state, [*actions, Action.QUERY_SOA]
    return state, actions
