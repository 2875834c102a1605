"""Watching zone files and the config with watchdog, debounced onto the reactor.

Owns: the watchdog observer, the set of watched files, and turning bursts of
file-system events into one reload request.  Editors save by writing a temp
file, renaming it over the original and writing again; every event re-arms a
short timer, so a burst becomes a single reload of the files it touched.
Invariant: watchdog's thread never touches the service; it only hands paths
to the reactor thread with ``callFromThread``.

A file written in place is never loaded half written: once a write to it is
seen (inotify's IN_MODIFY), it is held back until its writer closes it
(IN_CLOSE_WRITE), however long the writer pauses, and loaded ``delay`` after
the close.  A writer that keeps the file open past ``OPEN_WRITE_WAIT`` has it
loaded anyway, with a warning.  Renames over the file (how editors and
``mv`` publish) are complete when they happen and load after ``delay`` as
before.  Observers without close events (not inotify) never hold a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from twisted.logger import Logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = Logger(namespace="authd")

OPEN_WRITE_WAIT = 30.0  # seconds a watched file may stay open for writing before it loads
# File timestamps come from the kernel's coarse clock, a tick behind time.time().
MTIME_SLACK = 0.05

OnChange = Callable[[set[str]], None]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for i, path in enumerate(paths):
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if path:
                # A move's destination is complete: only its source had events.
                kind = event.event_type if i == 0 else "moved"
                self._watcher.seen(os.path.normpath(os.path.abspath(path)), kind)


class Watcher:
    """Calls *on_change* with the changed files, after *delay* seconds of quiet."""

    def __init__(self, reactor: Any, delay: float, on_change: OnChange) -> None:
        self._reactor = reactor
        self._delay = delay
        self._on_change = on_change
        self._files: frozenset[str] = frozenset()
        self._pending: set[str] = set()
        self._timer: Any = None
        self._observer: Any = None
        self._folders: set[str] = set()
        self._targets: dict[str, frozenset[str]] = {}  # symlink target -> watched names
        self._linked: dict[str, dict[str, str]] = {}  # folder -> linked file -> its target
        # Files written in place and not closed yet -> when the first write was seen.
        self._writing: dict[str, float] = {}
        self._close_events = False  # whether the observer reports closes (inotify)

    def watch(self, files: Iterable[str], read_since: float | None = None) -> None:
        """Replace the set of watched files (their folders are what watchdog sees).

        A file first watched now (a new $INCLUDE that a load just read) may have
        changed between that read and this call, when nobody listened for its
        events: with *read_since*, the wall-clock time that load began, a new
        file modified since then is treated as changed.

        A file reached through symlinks (``ln -s``, a Kubernetes ConfigMap's
        ``a.zone -> ..data/a.zone``, ``..data -> ..v1``) changes where no event
        names it: in its target's folder, or by a link swapped beside it.  So
        the target's folder is watched too, and an event on an unwatched name
        in a folder holding linked files re-checks where they lead.
        """
        before = self._files
        self._files = frozenset(os.path.normpath(os.path.abspath(f)) for f in files)
        if read_since is not None:
            for f in self._files - before:
                try:
                    mtime = os.stat(f).st_mtime
                except OSError:
                    continue
                if mtime >= read_since - MTIME_SLACK:
                    self._arm(f)
        targets: dict[str, set[str]] = {}
        linked: dict[str, dict[str, str]] = {}
        for f in self._files:
            real = os.path.realpath(f)
            if real != f:
                targets.setdefault(real, set()).add(f)
                linked.setdefault(os.path.dirname(f), {})[f] = real
        self._targets = {real: frozenset(fs) for real, fs in targets.items()}
        self._linked = linked
        folders = {os.path.dirname(f) for f in self._files} | {
            os.path.dirname(real) for real in targets
        }
        if folders == self._folders and self._observer is not None:
            return
        self.stop()
        observer = Observer()
        handler = _Handler(self)
        for folder in sorted(folders):
            if os.path.isdir(folder):
                observer.schedule(handler, folder, recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._close_events = type(observer).__name__ == "InotifyObserver"
        self._folders = folders

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
            self._folders = set()

    def seen(self, path: str, kind: str = "modified") -> None:
        """From watchdog's thread: an event of *kind* on *path*."""
        if path in self._files:
            self._reactor.callFromThread(self._event, path, kind)
        for alias in self._targets.get(path, ()):
            self._reactor.callFromThread(self._event, alias, kind)
        # A link swapped in a folder of linked files: did any of them move?
        for f, real in list(self._linked.get(os.path.dirname(path), {}).items()):
            now = os.path.realpath(f)
            if now != real:
                self._linked[os.path.dirname(path)][f] = now
                self._reactor.callFromThread(self._arm, f)

    def _event(self, path: str, kind: str) -> None:
        if self._close_events:
            if kind == "modified":
                self._writing.setdefault(path, self._reactor.seconds())
            elif kind in ("closed", "moved", "deleted"):
                self._writing.pop(path, None)
        self._arm(path)

    def _arm(self, path: str) -> None:
        self._pending.add(path)
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._delay)
        else:
            self._timer = self._reactor.callLater(self._delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._reactor.seconds()
        held = set()
        for path in self._pending & self._writing.keys():
            if now - self._writing[path] < OPEN_WRITE_WAIT:
                held.add(path)
            else:
                del self._writing[path]
                log.warn(
                    "{file} has been open for writing over {wait:.0f} s: loading it anyway",
                    file=path,
                    wait=OPEN_WRITE_WAIT,
                )
        changed, self._pending = self._pending - held, held
        if held:
            # Its close re-arms the timer; this one only bounds the wait.
            self._timer = self._reactor.callLater(self._delay, self._fire)
        if changed:
            self._on_change(changed)
