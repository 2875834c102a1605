"""The collector policy of the server's side effects (authd.adapters.gcpause)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from authd.adapters import gcpause


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    if enabled:
        gc.enable()


def test_gc_paused_freezes_what_was_built_and_turns_the_collector_back_on() -> None:
    gc.enable()
    before = gc.get_freeze_count()
    with gcpause.gc_paused():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(built)


def test_gc_off_freezes_nothing() -> None:
    gc.enable()
    before = gc.get_freeze_count()
    with gcpause.gc_off():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == before
    del built


def test_serving_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 11, 12)
    gcpause.tune_for_serving()
    assert gc.get_threshold() == (gcpause.SERVING_THRESHOLD, 11, 12)


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_trim_heap_hands_freed_holes_back() -> None:
    from authd.adapters import memory

    # 64 KiB blocks come from glibc's heap (below its mmap threshold); freeing
    # every other one leaves holes that only malloc_trim returns.
    blocks = [b"x" * 65536 for _ in range(1000)]
    del blocks[::2]
    before = _rss_kib()
    assert memory.trim_heap()
    assert before - _rss_kib() > 10_000, (before, _rss_kib())
    del blocks
