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
