"""Reload coalescing (``authd.reloads``) as tables: events in, state and actions out.

No reactor, no threads: each case feeds a list of events to ``step`` and
compares the actions taken with the ones expected.
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest
from zonekit import zone_from_text

from authd import reloads
from authd.build import LoadOutcome, ZoneLoadEvent, build_snapshot
from authd.config import config_from_dict
from authd.reloads import (
    ALL,
    CONFIG,
    Answer,
    Misstep,
    Phase,
    Publish,
    Published,
    ReloadState,
    Requested,
    Scope,
    StartWorker,
    WorkerFailed,
    WorkerSucceeded,
)
from authd.snapshot import with_zone

A = ("default", dns.name.from_text("a.test"))
B = ("default", dns.name.from_text("b.test"))
C = ("inside", dns.name.from_text("a.test"))


def run(events: list[reloads.Event]) -> tuple[ReloadState, list[reloads.Action]]:
    state, taken = ReloadState(), []
    for event in events:
        state, actions = reloads.step(state, event)
        taken.extend(actions)
    return state, taken


def only(*targets: tuple[str, dns.name.Name]) -> Scope:
    return reloads.zones(targets)


OK = Published(())

CASES = [
    pytest.param(
        [Requested(ALL, 1), WorkerSucceeded(), OK],
        [StartWorker(ALL), Publish(ALL), Answer((1,), ())],
        id="one-reload-alone",
    ),
    pytest.param(
        [Requested(ALL, 1), Requested(ALL, 2), Requested(ALL, 3), Requested(ALL, 4)]
        + [WorkerSucceeded(), OK, WorkerSucceeded(), OK],
        [
            StartWorker(ALL),
            Publish(ALL),
            Answer((1,), ()),
            StartWorker(ALL),  # a burst of three becomes exactly one follow-up
            Publish(ALL),
            Answer((2, 3, 4), ()),
        ],
        id="burst-during-a-reload-is-one-follow-up",
    ),
    pytest.param(
        [Requested(only(A), 1), Requested(only(B), 2), Requested(only(C), 3)]
        + [WorkerSucceeded(), OK, WorkerSucceeded(), OK],
        [
            StartWorker(only(A)),
            Publish(only(A)),
            Answer((1,), ()),
            StartWorker(only(B, C)),  # zones asked for meanwhile are merged
            Publish(only(B, C)),
            Answer((2, 3), ()),
        ],
        id="zones-asked-during-a-reload-merge",
    ),
    pytest.param(
        [Requested(ALL, 1), Requested(only(A), 2), Requested(ALL, 3)]
        + [WorkerSucceeded(), OK, WorkerSucceeded(), OK],
        [
            StartWorker(ALL),
            Publish(ALL),
            Answer((1,), ()),
            StartWorker(ALL),  # zone A merged into the full follow-up
            Publish(ALL),
            Answer((2, 3), ()),
        ],
        id="zone-merged-into-a-full-follow-up",
    ),
    pytest.param(
        [Requested(ALL, 1), Requested(only(A), 2), Requested(CONFIG, 3)]
        + [WorkerSucceeded(), OK, WorkerSucceeded(), OK],
        [
            StartWorker(ALL),
            Publish(ALL),
            Answer((1,), ()),
            StartWorker(CONFIG),  # the config asked for once is read once
            Publish(CONFIG),
            Answer((2, 3), ()),
        ],
        id="config-request-makes-the-follow-up-whole",
    ),
    pytest.param(
        [Requested(CONFIG, 1), Requested(only(A), 2), WorkerFailed("config refused")]
        + [WorkerSucceeded(), OK],
        [
            StartWorker(CONFIG),
            Answer((1,), ("config refused",)),
            StartWorker(only(A)),  # a failure still runs what was asked meanwhile
            Publish(only(A)),
            Answer((2,), ()),
        ],
        id="failure-answers-its-waiters-then-runs-the-follow-up",
    ),
    pytest.param(
        [Requested(ALL, 1), Requested(ALL, 2), WorkerFailed("boom"), WorkerFailed("boom")],
        [
            StartWorker(ALL),
            Answer((1,), ("boom",)),
            StartWorker(ALL),
            Answer((2,), ("boom",)),
        ],
        id="failure-answers-every-waiter",
    ),
    pytest.param(
        [Requested(ALL, 1), WorkerSucceeded(), Requested(only(A), 2), Published(("zone kept",))]
        + [WorkerSucceeded(), OK],
        [
            StartWorker(ALL),
            Publish(ALL),
            Answer((1,), ("zone kept",)),  # refusals go to the reload's own waiters only
            StartWorker(only(A)),  # a request while publishing waits too
            Publish(only(A)),
            Answer((2,), ()),
        ],
        id="request-while-publishing-is-a-follow-up",
    ),
    pytest.param(
        [Requested(ALL, 1), WorkerSucceeded(), OK, Requested(only(A), 2), WorkerSucceeded(), OK],
        [
            StartWorker(ALL),
            Publish(ALL),
            Answer((1,), ()),
            StartWorker(only(A)),  # after the end: idle, so it starts at once
            Publish(only(A)),
            Answer((2,), ()),
        ],
        id="request-after-the-end-starts-at-once",
    ),
]


@pytest.mark.parametrize(("events", "expected"), CASES)
def test_reload_coalescing(events: list[reloads.Event], expected: list[reloads.Action]) -> None:
    state, actions = run(events)
    assert actions == expected
    assert state.phase is Phase.IDLE and state.pending is None and state.answers == ()


def test_every_waiter_answered_exactly_once() -> None:
    events: list[reloads.Event] = [Requested(ALL, 1)]
    events += [Requested(only(A), n) for n in range(2, 50)]
    events += [WorkerSucceeded(), OK, WorkerFailed("x")]
    _, actions = run(events)
    answered = [w for a in actions if isinstance(a, Answer) for w in a.waiters]
    assert sorted(answered) == list(range(1, 50))
    assert sum(isinstance(a, StartWorker) for a in actions) == 2


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([WorkerSucceeded()], id="success-while-idle"),
        pytest.param([WorkerFailed("x")], id="failure-while-idle"),
        pytest.param([OK], id="published-while-idle"),
        pytest.param([Requested(ALL, 1), OK], id="published-while-working"),
        pytest.param([Requested(ALL, 1), WorkerSucceeded(), WorkerFailed("x")], id="fail-late"),
    ],
)
def test_impossible_events_are_bugs(events: list[reloads.Event]) -> None:
    with pytest.raises(Misstep):
        run(events)


SCOPES = [
    pytest.param(only(A), only(B), only(A, B), id="zones-union"),
    pytest.param(only(A), ALL, ALL, id="all-wins"),
    pytest.param(ALL, only(A), ALL, id="all-wins-either-side"),
    pytest.param(only(A), CONFIG, CONFIG, id="config-wins"),
    pytest.param(ALL, CONFIG, CONFIG, id="config-is-all"),
]


@pytest.mark.parametrize(("a", "b", "merged"), SCOPES)
def test_scope_merge(a: Scope, b: Scope, merged: Scope) -> None:
    assert a.merge(b) == merged == b.merge(a)


def test_config_scope_covers_every_zone() -> None:
    assert Scope(frozenset({A}), config=True) == CONFIG
    assert CONFIG.covers(B) and ALL.covers(B) and not only(A).covers(B)


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        (CONFIG, "config and zones"),
        (ALL, "zones"),
        (only(B, A), "a.test. (view default), b.test. (view default)"),
    ],
)
def test_scope_describe(scope: Scope, text: str) -> None:
    assert scope.describe() == text


def _event(target: tuple[str, dns.name.Name], outcome: LoadOutcome, reason: str | None = None):
    view, zone = target
    return ZoneLoadEvent(view, zone, "f", outcome, 1, 1, reason)


def test_refusals_name_only_zones_in_scope() -> None:
    events = [
        _event(A, LoadOutcome.KEPT_OLD, "serial 2 not increased"),
        _event(B, LoadOutcome.FAILED, "no SOA"),
        _event(C, LoadOutcome.LOADED),
    ]
    assert reloads.refusals(events, only(A, C)) == (
        "zone a.test. (view default) not reloaded: serial 2 not increased",
    )
    assert reloads.refusals(events, ALL) == (
        "zone a.test. (view default) not reloaded: serial 2 not increased",
        "zone b.test. (view default) failed to load: no SOA",
    )


def test_a_reload_keeps_the_secondary_copy_published_while_it_parsed(tmp_path: Path) -> None:
    zone_file = "$TTL 300\n@ SOA ns h 5 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
    (tmp_path / "a.zone").write_text(zone_file)
    data = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "options": {"state_dir": str(tmp_path / "state")},
        "zones": [
            {"name": "a.test", "file": "a.zone"},
            {"name": "b.test", "type": "secondary", "primaries": [{"address": "127.0.0.3"}]},
        ],
    }
    config = config_from_dict(data, None, str(tmp_path))
    running, _ = build_snapshot(config, None, 1)
    copy = zone_from_text(zone_file.replace(" 5 ", " 9 "), "b.test")
    running = with_zone(running, "default", B[1], copy, None, 2)
    parsed, _ = build_snapshot(config, None, 3)  # started before the copy came in
    assert parsed.view_zone("default", B[1]) is None
    kept = reloads.keep_secondaries(parsed, running, config)
    assert kept.view_zone("default", B[1]) is copy
    assert kept.view_zone("default", A[1]) is parsed.view_zone("default", A[1])
