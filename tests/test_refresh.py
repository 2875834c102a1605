"""The secondary refresh state machine, driven with explicit time (RFC 1034 4.3.5)."""

from __future__ import annotations

from authd import refresh
from authd.refresh import Action, Clamp, Phase, SoaTimers

CLAMP = Clamp(min_refresh=5, max_refresh=86400, min_retry=2, max_retry=3600)
SOA = SoaTimers(serial=10, refresh=300, retry=60, expire=1000)


def test_start_without_copy_checks_at_once() -> None:
    state, actions = refresh.start(0.0, None, 0.0, CLAMP)
    assert actions == [Action.QUERY_SOA]
    assert state.timers is None


def test_start_without_copy_does_not_check_twice() -> None:
    # Regression: the first state was IDLE with next_check=now, so the timer
    # the adapter arms at once fired a second SOA query and a second AXFR
    # ran beside the first; the two writes raced on the copy's temp file.
    state, _ = refresh.start(0.0, None, 0.0, CLAMP)
    assert state.phase is Phase.CHECKING
    state, actions = refresh.tick(state, 0.0, CLAMP)
    assert actions == []


def test_start_with_expired_copy_expires_and_checks() -> None:
    state, actions = refresh.start(0.0, SOA, copy_age=1001.0, clamp=CLAMP)
    assert actions == [Action.EXPIRE, Action.QUERY_SOA]
    assert state.expired


def test_start_with_fresh_copy_keeps_remaining_expire() -> None:
    state, actions = refresh.start(100.0, SOA, copy_age=400.0, clamp=CLAMP)
    assert actions == [Action.QUERY_SOA]
    assert state.expires_at == 100.0 + 600.0


def test_newer_primary_serial_transfers_then_publishes() -> None:
    state, _ = refresh.start(0.0, SOA, 0.0, CLAMP)
    state, actions = refresh.soa_answer(state, 1.0, 11, CLAMP, jitter=0.0)
    assert actions == [Action.TRANSFER] and state.phase is Phase.TRANSFERRING
    new = SoaTimers(11, 300, 60, 1000)
    state, actions = refresh.transfer_done(state, 2.0, new, CLAMP, jitter=0.0)
    assert actions == [Action.PUBLISH]
    assert state.next_check == 302.0 and state.expires_at == 1002.0
    assert state.timers == new


def test_serial_wraparound_counts_as_newer() -> None:
    old = SoaTimers(4294967295, 300, 60, 1000)
    state, _ = refresh.start(0.0, old, 0.0, CLAMP)
    state, actions = refresh.soa_answer(state, 1.0, 1, CLAMP, jitter=0.0)
    assert actions == [Action.TRANSFER]


def test_same_serial_is_a_successful_refresh() -> None:
    state, _ = refresh.start(0.0, SOA, 0.0, CLAMP)
    state, actions = refresh.soa_answer(state, 50.0, 10, CLAMP, jitter=0.0)
    assert actions == []
    assert state.phase is Phase.IDLE and state.expires_at == 1050.0


def test_failure_retries_after_retry_interval_and_keeps_copy() -> None:
    state, _ = refresh.start(0.0, SOA, 0.0, CLAMP)
    state, actions = refresh.soa_answer(state, 1.0, None, CLAMP, jitter=0.0)
    assert actions == [] and not state.expired
    assert state.next_check == 61.0 and state.failures == 1
    state, actions = refresh.tick(state, 61.0, CLAMP)
    assert actions == [Action.QUERY_SOA]


def test_expire_after_failures_past_expire() -> None:
    state, _ = refresh.start(0.0, SOA, 0.0, CLAMP)
    state, _ = refresh.soa_answer(state, 1.0, None, CLAMP, jitter=0.0)
    state, actions = refresh.tick(state, 1000.0, CLAMP)
    assert Action.EXPIRE in actions and state.expired
    # A later successful transfer revives the zone.
    state, _ = refresh.soa_answer(state, 1001.0, 12, CLAMP, jitter=0.0)
    state, actions = refresh.transfer_done(state, 1002.0, SoaTimers(12, 300, 60, 1000), CLAMP, 0.0)
    assert actions == [Action.PUBLISH] and not state.expired


def test_expired_zone_transfers_again_at_the_same_serial() -> None:
    # Regression: once expired (the copy no longer served), an SOA answer
    # with our own serial counted as "up to date" and cleared the expired
    # flag without a transfer, so the zone answered SERVFAIL until the
    # primary's serial went up.
    state, _ = refresh.start(0.0, SOA, copy_age=1001.0, clamp=CLAMP)
    assert state.expired
    state, actions = refresh.soa_answer(state, 1.0, SOA.serial, CLAMP, jitter=0.0)
    assert actions == [Action.TRANSFER] and state.phase is Phase.TRANSFERRING
    state, actions = refresh.transfer_done(state, 2.0, SOA, CLAMP, 0.0)
    assert actions == [Action.PUBLISH] and not state.expired


def test_notify_during_transfer_is_remembered() -> None:
    state, _ = refresh.start(0.0, SOA, 0.0, CLAMP)
    state, _ = refresh.soa_answer(state, 1.0, 11, CLAMP, jitter=0.0)
    state, actions = refresh.notify(state, 1.5)
    assert actions == [] and state.notify_pending
    state, actions = refresh.transfer_done(state, 2.0, SoaTimers(11, 300, 60, 1000), CLAMP, 0.0)
    assert actions == [Action.PUBLISH, Action.QUERY_SOA]
    assert state.phase is Phase.CHECKING


def test_notify_when_idle_checks_at_once() -> None:
    state, _ = refresh.start(0.0, SOA, 0.0, CLAMP)
    state, _ = refresh.soa_answer(state, 1.0, 10, CLAMP, jitter=0.0)
    state, actions = refresh.notify(state, 5.0)
    assert actions == [Action.QUERY_SOA]


def test_timers_are_clamped_and_jittered_early() -> None:
    tiny = SoaTimers(10, 1, 1, 1000)
    state, _ = refresh.start(0.0, tiny, 0.0, CLAMP)
    state, _ = refresh.soa_answer(state, 0.0, 10, CLAMP, jitter=0.0)
    assert state.next_check == 5.0  # min_refresh
    state, _ = refresh.soa_answer(
        refresh.start(0.0, SOA, 0.0, CLAMP)[0], 0.0, 10, CLAMP, jitter=0.999
    )
    assert 300 * 0.8 <= state.next_check < 300


def test_no_copy_failures_back_off_exponentially_within_bounds() -> None:
    state, _ = refresh.start(0.0, None, 0.0, CLAMP)
    delays = []
    now = 0.0
    for _ in range(12):
        state, _ = refresh.soa_answer(state, now, None, CLAMP, jitter=0.0)
        delays.append(state.next_check - now)
        now = state.next_check
        state, _ = refresh.tick(state, now, CLAMP)
    assert delays[0] == 2.0 and delays[1] == 4.0
    assert max(delays) <= CLAMP.max_retry
