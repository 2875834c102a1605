"""Memory of retired zone versions: taking big ones apart off the reactor thread.

Owns: what happens to the zone versions and answer caches an old snapshot
held once a new one is published (the GC pause around builds is
``gcpause``'s, kept apart so the command line can use it without Twisted).
Invariants: a version still referenced
elsewhere (a zone transfer streaming it) is never taken apart; the work runs
in a worker thread, a table entry at a time, so the reactor keeps answering.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import threads
from twisted.logger import Logger

from authd.answercache import AnswerCache
from authd.namedict import NameDict
from authd.snapshot import Snapshot
from authd.zone import ZoneVersion

__all__ = ["RETIRE_DELAY", "RETIRE_THRESHOLD", "dismantle", "retire", "trim_heap"]

log = Logger(namespace="authd")

RETIRE_THRESHOLD = 10_000  # records; smaller zone versions are freed at once, harmlessly
RETIRE_DELAY = 1.0  # seconds after a swap before the old versions are taken apart


def dismantle(tables: list[Any]) -> int:
    """Empty big tables an entry at a time (in a worker thread); how many entries.

    A table is anything with ``popitem`` and a length: a mapping of zone
    nodes, or an ``AnswerCache``.  Dropping a million-record zone version in
    one go is one long deallocation that holds the GIL for half a second;
    popping its nodes one by one frees
    the same memory in small steps that let the reactor thread run in between;
    then the heap is trimmed (``trim_heap``).
    """
    count = 0
    for table in tables:
        while table:
            table.popitem()
            count += 1
    trim_heap()
    return count


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc; absent from musl and others
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _malloc_trim()


def trim_heap() -> bool:
    """Hand the C allocator's free pages back to the OS; False where it cannot.

    A zone build frees far more than it keeps (the parsed records, the
    grouping), and glibc keeps what was freed for reuse: trimming after the
    first load of a 1M-record zone took resident memory from 2,103 to 1,949
    MiB in 11 ms.  ctypes lets go of the GIL during the call, so the reactor
    answers meanwhile.
    """
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def retire(reactor: Any, old: Snapshot, new: Snapshot) -> None:
    """Take apart, in a worker, the big zone versions and caches only *old* held.

    It runs a moment later, once the publishing code has let go of *old*.  A
    version still referenced elsewhere then (a zone transfer streaming it) is
    left to reference counting: taking it apart would corrupt the transfer.
    Answer caches are only ever read through their snapshot, so they go
    anyway, whatever their size: entries cached while a big zone was being
    built can be the last tenants of the allocator's arenas, and freeing
    them all at once here (returning each arena to the OS) measured 27 ms for
    1,500 entries.
    """
    live = {id(v) for view in new.views for v in view.zones.values() if v is not None}
    # Versions derived from another (an IXFR applied, a new serial) share the
    # node shards they did not change with it: those stay whole.
    live_shards = {
        id(shard)
        for view in new.views
        for v in view.zones.values()
        if v is not None
        for shard in _shards_of(v)
    }
    doomed = list(
        {
            id(v): v
            for view in old.views
            for v in view.zones.values()
            if v is not None and id(v) not in live and v.record_count >= RETIRE_THRESHOLD
        }.values()
    )
    caches: list[Any] = [
        cache
        for cache in (old.cache, old.front)
        if cache and cache is not new.cache and cache is not new.front
    ]
    if doomed or caches:
        reactor.callLater(RETIRE_DELAY, _retire_later, doomed, caches, live_shards)


def _shards_of(version: ZoneVersion, compiled: bool = True) -> list[dict[Any, Any]]:
    """The tables of *version* that a successor may share: its node shards
    and (*compiled*) those of its compiled form, nodes and referrer index.
    Left whole, the compiled ones would be freed with the version object in
    one deallocation on the reactor thread (300 ms at 300,000 records)."""
    out: list[dict[Any, Any]] = []
    for table in version.tables():
        if isinstance(table, NameDict):
            out.extend(table.shard_tables())
    if compiled and version.wire is not None:
        out.extend(version.wire.shards)
        out.extend(version.wire.referrers)
    return out


def _retire_later(
    doomed: list[ZoneVersion], caches: list[AnswerCache], live_shards: set[int]
) -> None:
    tables: list[Any] = list(caches)
    while doomed:
        version = doomed.pop()
        # Two references: ``version`` here and getrefcount's own argument.
        if sys.getrefcount(version) <= 2:
            for table in version.tables():
                if not isinstance(table, NameDict):
                    tables.append(table)
            # The compiled form only when nothing else holds it either (an
            # AXFR streams from it alone once it has read the version).
            whole = version.wire is None or sys.getrefcount(version.wire) <= 2
            tables.extend(s for s in _shards_of(version, whole) if id(s) not in live_shards)
        del version
    if tables:
        began = time.monotonic()
        d = threads.deferToThread(dismantle, tables)
        d.addCallback(
            lambda count: log.info(
                "freed {count} entries of old zone versions and caches in {seconds:.1f} s",
                count=count,
                seconds=time.monotonic() - began,
            )
        )
