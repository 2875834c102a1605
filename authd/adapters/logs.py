"""The server's log: its observer, load events as lines, and a per-kind rate limit.

Owns: how twisted.logger events become stderr lines (``start_logging``:
``TIME authd[LEVEL] text`` with an RFC 3339 UTC time, or with
``options.log_format: json`` one JSON object a line holding the time, the
level, the text and the event's keyword fields), the
lines a zone load writes (``log_load_event``), and whether one more line of a
kind (``TSIG BADSIG``, ``transfer refused``) is written now (``LogLimit``).
Invariants: at most ``per_second`` lines of a limited kind are written in any
one-second window that starts at that kind's first line; the lines held back
are counted and summed up in one "suppressed" line when the window ends, so
nothing goes unaccounted.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)

from authd.build import LoadOutcome, ZoneLoadEvent

log = Logger(namespace="authd")

# TSIG refusals and refused transfer requests logged per kind and second; more
# are counted and summed up in one line, so a flood of bad packets is one line a second.
LOG_LINES_PER_SECOND = 10
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


def _timestamp(when: float) -> str:
    """RFC 3339 UTC with microseconds: ``2026-12-03T17:53:39.123456Z``."""
    stamp = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def format_line(event: dict[str, Any], fmt: str = "text") -> str:
    """One log event as a line: ``TIME authd[LEVEL] text`` or a JSON object."""
    text = formatEvent(event)
    failure = event.get("log_failure")
    when = _timestamp(event.get("log_time") or time.time())
    level_name = event["log_level"].name
    if fmt == "json":
        record: dict[str, Any] = {"time": when, "level": level_name, "message": text}
        for key, value in event.items():
            # The event's keyword fields (zone=, client=...): machine-readable as given.
            if not key.startswith("log_") and key not in record and not key.startswith("_"):
                record[key] = _json_value(value)
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        return json.dumps(record, sort_keys=False)
    if failure is not None:
        text += "\n" + failure.getTraceback()
    return f"{when} authd[{level_name}] {text}"


def start_logging(level: LogLevel = LogLevel.info, stream: Any = None, fmt: str = "text") -> None:
    """Send twisted.logger events to stderr, one line each (*fmt*: text or json)."""
    out = stream if stream is not None else sys.stderr

    def observer(event: dict[str, Any]) -> None:
        namespace = event.get("log_namespace", "")
        if namespace != "authd" and event["log_level"] < LogLevel.warn:
            return  # Twisted's own chatter ("UdpServer starting on ...")
        out.write(format_line(event, fmt) + "\n")
        out.flush()

    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(observer, [predicate])], redirectStandardIO=False
    )


def log_load_event(event: ZoneLoadEvent) -> None:
    zone = event.zone.to_text()
    for finding in event.findings:
        if finding.severity.value == "warning":
            log.warn("{zone}: {finding}", zone=zone, finding=str(finding))
    if event.journal_note is not None:
        # A discarded or memory-only IXFR history: secondaries will need AXFR.
        log.warn("zone {zone}: {note}", zone=zone, note=event.journal_note)
    if event.outcome is LoadOutcome.LOADED:
        log.info(
            "zone {zone} loaded: serial {serial}, {records} records from {file}",
            zone=zone,
            serial=event.serial,
            records=event.records,
            file=event.file,
        )
    elif event.outcome is LoadOutcome.UNCHANGED:
        log.info("zone {zone} unchanged: serial {serial}", zone=zone, serial=event.serial)
    elif event.outcome is LoadOutcome.KEPT_OLD:
        log.error(
            "zone {zone} not reloaded: {reason}; serial {serial} keeps serving",
            zone=zone,
            reason=event.reason,
            serial=event.serial,
        )
    else:
        log.error(
            "zone {zone} failed to load: {reason}; it answers SERVFAIL",
            zone=zone,
            reason=event.reason,
        )
