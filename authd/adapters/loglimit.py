"""A per-kind rate limit on log lines, so a flood of bad packets cannot flood the log.

Owns: whether one more line of a kind (``TSIG BADSIG``, ``transfer refused``)
is written now.  Invariants: at most ``per_second`` lines of a kind are
written in any one-second window that starts at that kind's first line; the
lines held back are counted and summed up in one "suppressed" line when the
window ends, so nothing goes unaccounted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

log = Logger(namespace="authd")

WINDOW = 1.0  # seconds


@dataclass(slots=True)
class _Window:
    began: float
    written: int = 0
    suppressed: int = 0


class LogLimit:
    def __init__(
        self,
        per_second: int,
        clock: Callable[[], float],
        call_later: Callable[..., Any],
    ) -> None:
        self.per_second = per_second
        self._clock = clock
        self._call_later = call_later
        self._windows: dict[str, _Window] = {}

    def allow(self, kind: str) -> bool:
        """Whether to write a line of *kind* now (if not, it is counted)."""
        now = self._clock()
        w = self._windows.get(kind)
        if w is None or (now - w.began >= WINDOW and w.suppressed == 0):
            w = self._windows[kind] = _Window(now)
        if w.written < self.per_second:
            w.written += 1
            return True
        w.suppressed += 1
        if w.suppressed == 1:
            self._call_later(max(0.0, w.began + WINDOW - now), self._flush, kind)
        return False

    def _flush(self, kind: str) -> None:
        w = self._windows.pop(kind, None)
        if w is not None and w.suppressed:
            log.warn(
                "{kind}: suppressed {count} more log lines in {window:g} s",
                kind=kind,
                count=w.suppressed,
                window=WINDOW,
            )
