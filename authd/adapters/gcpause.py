"""Pausing Python's cyclic garbage collector around zone builds (see ``gc_paused``).

The core never toggles the collector (tests/test_core_purity.py forbids ``gc``
there): every path that loads zones pauses it from outside - the service's
first build and its reloads (file watcher and ``ctl reload`` included), the
fleet's transfers, and the command line's ``authd check``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic GC away from zone data while it is built, and after.

    A compiled zone is millions of long-lived objects without cycles.  Built
    with the collector on, they trigger full collections that hold the GIL for
    seconds - stalling the reactor thread and every query with it.  So the
    collector is off while a zone is built, and the result is frozen (moved
    out of the generations the collector scans).  Frozen objects are still
    freed by reference counting when a reload drops the old version.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def gc_off() -> Iterator[None]:
    """The cyclic GC off for the block, then back as it was; nothing frozen.

    For a one-shot command (``authd check``) that builds millions of acyclic
    objects and exits: freezing would only pin them in a caller that lives on
    (a test session calling ``main``), and the collector must come back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: The young generation's threshold while serving (CPython's default is 700).
#: Answering a query allocates acyclic objects that reference counting frees,
#: and the answer cache keeps a few: at 700 the collector ran every couple of
#: hundred queries, and every hundredth pass traversed the whole unfrozen
#: heap (the cache above all) to find no garbage - 15-20 % of
#: the in-process cost of a first answer (the lean path on the host questions
#: of a 100k-record zonegen zone: 11.0 us a query at 700, 8.9 at 50,000).
#: Cycles are still collected, in fewer, larger passes: a young pass looks at
#: no more than this many objects, about a millisecond.
SERVING_THRESHOLD = 50_000


def tune_for_serving() -> None:
    """Collector thresholds for a long-running server (see SERVING_THRESHOLD)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(SERVING_THRESHOLD, middle, old)
