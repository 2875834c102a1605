"""Log lines that a flood cannot multiply: at most a few per kind per interval.

Owns: security and limit events that an attacker can trigger at will (refused
connections, slow clients, bad TSIG, refused NOTIFY).  Each kind may log
``burst`` lines per ``interval`` seconds; what is held back is counted and
reported once, when the interval ends, as "N more like this in the last T s".
So 50,000 bad packets write a handful of lines, and none is lost from the count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

DEFAULT_BURST = 5  # lines per kind per interval
DEFAULT_INTERVAL = 10.0  # seconds


class RateLimitedLog:
    def __init__(
        self,
        log: Logger,
        clock: Callable[[], float],
        call_later: Callable[..., object],
        burst: int = DEFAULT_BURST,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._log = log
        self._clock = clock
        self._call_later = call_later
        self.burst = burst
        self.interval = interval
        self._window: dict[str, tuple[float, int, int]] = {}  # kind -> (start, logged, held)

    def emit(self, kind: str, format: str, **fields: Any) -> None:
        """Log *format* with *fields* as a warning, unless *kind* has had its share."""
        now = self._clock()
        start, logged, held = self._window.get(kind, (now, 0, 0))
        if now - start >= self.interval:
            start, logged, held = now, 0, 0
        if logged < self.burst:
            self._window[kind] = (start, logged + 1, held)
            self._log.warn(format, kind=kind, **fields)
            return
        if held == 0:
            self._call_later(start + self.interval - now, self._summarise, kind, start)
        self._window[kind] = (start, logged, held + 1)

    def _summarise(self, kind: str, start: float) -> None:
        current = self._window.get(kind)
        if current is None or current[0] != start:
            return
        held = current[2]
        del self._window[kind]
        if held:
            self._log.warn(
                "{kind}: {held} more like this in the last {interval:g} s",
                kind=kind,
                held=held,
                interval=self.interval,
            )
