"""Service wiring: sockets, the published snapshot, reloads, signals and logs.

Owns: the one mutable reference to the current ``Snapshot`` and every change
of it.  Invariants: a reload builds the new snapshot off the reactor thread and
publishes it with a single assignment on the reactor thread; at most one reload
runs at a time (a request during one is remembered and run after it).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import dns.exception
import dns.name
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorCore
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from twisted.python.failure import Failure

from authd.adapters import control
from authd.adapters.fleet import Fleet
from authd.adapters.gcpause import gc_paused
from authd.adapters.hostinfo import gather_host_info
from authd.adapters.state import JournalChange, build_snapshot, record_change
from authd.adapters.transport import ConnectionBudget, TcpFactory, UdpServer
from authd.adapters.watch import Watcher
from authd.build import LoadOutcome, ZoneLoadEvent
from authd.config import Config, ZoneType, load_config
from authd.errors import AuthdError
from authd.query import Reply
from authd.snapshot import Snapshot, with_zone
from authd.views import shadowed_views
from authd.zone import ZoneVersion

log = Logger(namespace="authd")


SWITCH_INTERVAL = 0.0005  # seconds; see run()
RETIRE_THRESHOLD = 10_000  # records; smaller zone versions are freed at once, harmlessly
RETIRE_DELAY = 1.0  # seconds after a swap before the old versions are taken apart


class StallMonitor:
    """Measures how late the reactor runs a 10 ms tick: the longest time queries waited."""

    TICK = 0.01

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self.worst = 0.0
        self._expected = time.monotonic() + self.TICK
        self._call: Any = reactor.callLater(self.TICK, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.worst = max(self.worst, now - self._expected)
        self._expected = now + self.TICK
        self._call = self._reactor.callLater(self.TICK, self._tick)

    def stop(self) -> float:
        if self._call is not None and self._call.active():
            # The tick still pending may be overdue: the caller's own work on the
            # reactor thread (publishing) delayed it, and that is a stall too.
            self.worst = max(self.worst, time.monotonic() - self._expected)
            self._call.cancel()
        self._call = None
        return self.worst


def _dismantle(tables: list[MutableMapping[Any, Any]]) -> int:
    """Empty big tables an entry at a time (in a worker thread); how many entries.

    Dropping a million-record zone version in one go is one long deallocation
    that holds the GIL for half a second; popping its nodes one by one frees
    the same memory in small steps that let the reactor thread run in between.
    """
    count = 0
    for table in tables:
        while table:
            table.popitem()
            count += 1
    return count


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
    doomed = list(
        {
            id(v): v
            for view in old.views
            for v in view.zones.values()
            if v is not None and id(v) not in live and v.record_count >= RETIRE_THRESHOLD
        }.values()
    )
    caches: list[MutableMapping[Any, Any]] = [
        cache
        for cache in (old.cache, old.front)
        if cache and cache is not new.cache and cache is not new.front
    ]
    if doomed or caches:
        reactor.callLater(RETIRE_DELAY, _retire_later, doomed, caches)


def _retire_later(doomed: list[ZoneVersion], caches: list[MutableMapping[Any, Any]]) -> None:
    tables = caches
    while doomed:
        version = doomed.pop()
        # Two references: ``version`` here and getrefcount's own argument.
        if sys.getrefcount(version) <= 2:
            tables.append(version.nodes)
        del version
    if tables:
        began = time.monotonic()
        d = threads.deferToThread(_dismantle, tables)
        d.addCallback(
            lambda count: log.info(
                "freed {count} entries of old zone versions and caches in {seconds:.1f} s",
                count=count,
                seconds=time.monotonic() - began,
            )
        )


def _normalised(path: str) -> str:
    """*path* as the watcher reports it: absolute, without ``..`` or ``.``."""
    return os.path.normpath(os.path.abspath(path))


def _names(pairs: set[tuple[str, dns.name.Name]]) -> str:
    return ", ".join(sorted(f"{zone.to_text()} (view {view})" for view, zone in pairs))


def _keep_secondaries(new: Snapshot, current: Snapshot, config: Config) -> Snapshot:
    """*new* with every secondary zone's version and journal as *current* serves them."""
    for vc in config.views:
        cur = next((v for v in current.views if v.name == vc.name), None)
        if cur is None:
            continue
        for zc in vc.zones:
            if zc.type is ZoneType.SECONDARY and zc.in_view is None and zc.name in cur.zones:
                new = with_zone(
                    new,
                    vc.name,
                    zc.name,
                    cur.zones[zc.name],
                    cur.journals.get(zc.name),
                    new.generation,
                )
    return new


def start_logging(level: LogLevel = LogLevel.info, stream: Any = None) -> None:
    """Send twisted.logger events to stderr as plain lines."""
    out = stream if stream is not None else sys.stderr

    def observer(event: dict[str, Any]) -> None:
        namespace = event.get("log_namespace", "")
        if namespace != "authd" and event["log_level"] < LogLevel.warn:
            return  # Twisted's own chatter ("UdpServer starting on ...")
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text += "\n" + failure.getTraceback()
        level_name = event["log_level"].name
        out.write(f"authd[{level_name}] {text}\n")
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


class Service:
    def __init__(self, reactor: Any, config: Config) -> None:
        self._reactor = reactor
        self.config = config
        self.snapshot: Snapshot | None = None
        self._generation = 0
        self._reloading = False
        self._reload_next: set[tuple[str, dns.name.Name]] | None = None
        self._reload_next_all = False
        self._reload_next_config = False
        self._reload_waiters: list[defer.Deferred[list[str]]] = []
        self.watcher: Watcher | None = None
        self.zone_status: dict[tuple[str, dns.name.Name], dict[str, Any]] = {}
        self.started = time.time()
        self.last_reload_stall: float | None = None
        self._ports: list[Any] = []
        self._budget = ConnectionBudget(config.options.tcp_max_connections)
        self.fleet: Fleet | None = None

    def notify_changed(self, events: list[ZoneLoadEvent]) -> None:
        """RFC 1996: tell the secondaries of every zone whose serial changed."""
        if self.fleet is None:
            return
        for event in events:
            if event.outcome is LoadOutcome.LOADED:
                self.fleet.notify_zone(event.view, event.zone)

    def current(self) -> Snapshot:
        assert self.snapshot is not None
        return self.snapshot

    def load(self) -> list[ZoneLoadEvent]:
        """The first load, before any socket opens."""
        with gc_paused():
            self.snapshot, events = build_snapshot(self.config, None, 0, time.time())
        for event in events:
            log_load_event(event)
        return events

    def publish_zone(
        self,
        view: str,
        zone: dns.name.Name,
        version: ZoneVersion | None,
        change: JournalChange | None = None,
    ) -> None:
        """Serve a secondary's new copy (or None once expired): one snapshot swap.

        *change* is the zone's journal already updated for *version* (the fleet
        diffs in its worker); without it the journal is updated here.
        """
        snap = self.current()
        v = next(x for x in snap.views if x.name == view)
        if change is None:
            old = v.zones.get(zone)
            change = record_change(self.config, view, zone, old, version, v.journals.get(zone))
        journal, note = change
        if note is not None:
            log.warn("zone {zone}: {note}", zone=zone.to_text(), note=note)
        self._generation += 1
        self.snapshot = with_zone(snap, view, zone, version, journal, self._generation)
        retire(self._reactor, snap, self.snapshot)

    def _on_reply(self, reply: Reply) -> None:
        if reply.notify is not None and self.fleet is not None:
            n = reply.notify
            self.fleet.notified(n.view, n.zone, n.client)
        t = reply.transfer
        if t is not None:
            log.info(
                "transfer {zone} (view {view}) to {client} key {key}: {kind}, serial {serial}",
                zone=t.zone.to_text(),
                view=t.view,
                client=t.client,
                key=t.key.to_text() if t.key is not None else "none",
                kind=t.kind,
                serial=t.serial,
            )
        e = reply.event
        if e is not None:
            log.info(
                "query {client} {qname} {qtype} -> {rcode} {size}B{cached}",
                client=e.client,
                qname=e.qname,
                qtype=e.qtype,
                rcode=e.rcode,
                size=e.size,
                cached=" (cached)" if e.cached else "",
            )

    def listen(self) -> None:
        opts = self.config.options
        for lc in self.config.listen:
            udp = UdpServer(self.current, lc.address, self._on_reply)
            udp.noisy = False
            self._ports.append(self._reactor.listenUDP(lc.port, udp, interface=lc.address))
            factory = TcpFactory(
                self.current,
                lc.address,
                opts.tcp_idle_timeout,
                self._budget,
                self._on_reply,
                self._reactor.callLater,
            )
            factory.noisy = False
            self._ports.append(
                self._reactor.listenTCP(lc.port, factory, interface=lc.address, backlog=128)
            )
        for lc in self.config.listen:
            log.info(
                "listening on {address} port {port} (UDP, TCP)", address=lc.address, port=lc.port
            )

    def reload(
        self, only: set[tuple[str, dns.name.Name]] | None = None, config: bool = False
    ) -> defer.Deferred[list[str]]:
        """Reload zone files (all, or *only* some) and with *config* the config too.

        Parsing happens in a worker thread; publishing is one assignment here.
        Requests during a reload are merged and run when it ends.  The Deferred
        fires once the reload that covers this request is done, with what was
        refused (the config, zones kept old or failed): empty when all went well.
        """
        if self._reloading:
            self._reload_next_config |= config
            if only is None:
                self._reload_next_all = True
            else:
                self._reload_next = (self._reload_next or set()) | only
            waiter: defer.Deferred[list[str]] = defer.Deferred()
            self._reload_waiters.append(waiter)
            return waiter
        self._reloading = True
        self._generation += 1
        generation = self._generation
        what = "config and zones" if config else "zones" if only is None else _names(only)
        log.info("reloading {what}", what=what)

        def work() -> tuple[Config, Snapshot, list[ZoneLoadEvent]]:
            new_config = self.config
            if config and self.config.path is not None:
                # raises on a bad config: the old one keeps running
                new_config = load_config(self.config.path, gather_host_info())
            with gc_paused():
                snapshot, events = build_snapshot(
                    new_config, self.snapshot, generation, time.time(), None if config else only
                )
            return new_config, snapshot, events

        stall = StallMonitor(self._reactor)
        d = threads.deferToThread(work)

        def publish(result: tuple[Config, Snapshot, list[ZoneLoadEvent]]) -> list[str]:
            began = time.perf_counter()
            new_config, snapshot, events = result
            # Secondary copies published while we parsed must not be rolled back.
            snapshot = _keep_secondaries(snapshot, self.current(), new_config)
            old = self.current()
            self.snapshot = snapshot  # the single swap every query sees whole
            retire(self._reactor, old, snapshot)
            del old
            if new_config is not self.config:
                self._config_changed(new_config)
            self.record_events(events)
            refused = []
            for event in events:
                if only is None or (event.view, event.zone) in only or config:
                    log_load_event(event)
                    if event.outcome in (LoadOutcome.KEPT_OLD, LoadOutcome.FAILED):
                        what = (
                            "not reloaded"
                            if event.outcome is LoadOutcome.KEPT_OLD
                            else "failed to load"
                        )
                        refused.append(
                            f"zone {event.zone.to_text()} (view {event.view}) {what}: "
                            f"{event.reason}"
                        )
            self.notify_changed(events)
            self._watch_files()
            self.last_reload_stall = stall.stop()
            log.info(
                "reload done: generation {generation}, published in {publish:.1f} ms, "
                "longest reactor stall {stall:.1f} ms",
                generation=snapshot.generation,
                publish=(time.perf_counter() - began) * 1000,
                stall=self.last_reload_stall * 1000,
            )
            return refused

        def failed(failure: Any) -> list[str]:
            if failure.check(AuthdError):
                log.error(
                    "config {path} refused, the running one stays: {error}",
                    path=self.config.path,
                    error=failure.getErrorMessage(),
                )
                return [
                    f"config {self.config.path} refused, the running one stays: "
                    f"{failure.getErrorMessage()}"
                ]
            log.failure("reload failed; the old zones keep serving", failure)
            return [f"reload failed: {failure.getErrorMessage()}"]

        def done(result: object) -> list[str]:
            if isinstance(result, Failure):  # publish itself raised
                log.failure("reload failed while publishing", result)
                result = [f"reload failed: {result.getErrorMessage()}"]
            stall.stop()
            self._reloading = False
            if self._reload_next_all or self._reload_next or self._reload_next_config:
                next_only = None if self._reload_next_all else self._reload_next
                next_config = self._reload_next_config
                self._reload_next, self._reload_next_all = None, False
                self._reload_next_config = False
                # Those who asked during this reload are answered by the next one.
                waiters, self._reload_waiters = self._reload_waiters, []

                def answer(problems: list[str]) -> list[str]:
                    for waiter in waiters:
                        waiter.callback(problems)
                    return problems

                self.reload(next_only, next_config).addCallback(answer)
            return result  # type: ignore[return-value]

        d.addCallbacks(publish, failed)
        d.addBoth(done)
        return d

    def _config_changed(self, new: Config) -> None:
        old = self.config
        self.config = new
        for warning in (*new.warnings, *shadowed_views(new.views)):
            log.warn("config: {warning}", warning=warning)
        if new.listen != old.listen:
            log.warn("listen addresses changed in the config: they take effect at restart")
        if new.options.control != old.options.control:
            log.warn("options.control changed in the config: it takes effect at restart")
        self._budget.limit = new.options.tcp_max_connections
        watching = (new.options.watch, new.options.reload_delay)
        if watching != (old.options.watch, old.options.reload_delay):
            # publish() points the new watcher at the files right after this.
            if self.watcher is not None:
                self.watcher.stop()
                self.watcher = None
            if new.options.watch:
                self.watcher = Watcher(self._reactor, new.options.reload_delay, self.files_changed)
            log.info(
                "file watching {state}",
                state=f"on, reload_delay {new.options.reload_delay:g}s"
                if new.options.watch
                else "off: reload with SIGHUP or authd ctl reload",
            )
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = Fleet(self._reactor, new, self.current, self.publish_zone)
            self.fleet.start()
        log.info("config {path} reloaded", path=new.path)

    def _watch_files(self) -> None:
        """Point the watcher at every zone file, every $INCLUDE, and the config."""
        if self.watcher is None:
            return
        files = set()
        if self.config.path is not None:
            files.add(self.config.path)
        for view in self.current().views:
            for name, zc in view.configs.items():
                if zc.type is ZoneType.SECONDARY:
                    continue  # written by us, not by the operator
                files |= self._zone_files(view.name, name, zc.file)
        self.watcher.watch(files)

    def _zone_files(self, view: str, zone: dns.name.Name, main: str) -> set[str]:
        """The files a zone is read from: those its served version and its last load read.

        The last load counts too: a refused edit may have $INCLUDEd a new, broken
        file, and fixing that file must bring the zone back.
        """
        files = {main}
        version = self.current().view_zone(view, zone)
        if version is not None:
            files |= version.files
        files |= self.zone_status.get((view, zone), {}).get("files", frozenset())
        return files

    def files_changed(self, paths: set[str]) -> None:
        """The watcher's debounced callback: reload what those files feed."""
        if self.config.path is not None and _normalised(self.config.path) in paths:
            self.reload(config=True)
            return
        only: set[tuple[str, dns.name.Name]] = set()
        for view in self.current().views:
            for name, zc in view.configs.items():
                if zc.in_view is not None or zc.type is ZoneType.SECONDARY:
                    continue
                files = self._zone_files(view.name, name, zc.file)
                # The watcher reports normalised absolute paths; an $INCLUDE of
                # ``../inc/x`` is recorded as written (``zones/../inc/x``).
                if {_normalised(f) for f in files} & paths:
                    only.add((view.name, name))
        if only:
            self.reload(only)

    # -- status and the control channel ------------------------------------

    def record_events(self, events: list[ZoneLoadEvent]) -> None:
        now = time.time()
        for e in events:
            entry = self.zone_status.setdefault((e.view, e.zone), {})
            entry["last_load"] = {
                "at": now,
                "outcome": e.outcome.value,
                "reason": e.reason,
                "serial": e.serial,
            }
            if e.outcome is LoadOutcome.LOADED:
                entry["loaded_at"] = now
            entry["files"] = e.files

    def status(self) -> dict[str, Any]:
        snap = self.current()
        zones = []
        for vc in self.config.views:
            view = next((v for v in snap.views if v.name == vc.name), None)
            if view is None:
                continue
            for zc in vc.zones:
                version = view.zones.get(zc.name)
                journal = view.journals.get(zc.name)
                # A zone shared from an earlier view (in_view) is loaded there.
                entry = self.zone_status.get((zc.in_view or vc.name, zc.name), {})
                fleet = self.fleet.zone_status(vc.name, zc.name) if self.fleet else {}
                zones.append(
                    {
                        "view": vc.name,
                        "zone": zc.name.to_text(),
                        "role": zc.type.value,
                        "file": zc.file,
                        "serial": version.serial if version is not None else None,
                        "records": version.record_count if version is not None else 0,
                        "serving": version is not None,
                        "loaded_at": entry.get("loaded_at"),
                        "last_load": entry.get("last_load"),
                        "journal": None
                        if journal is None or not journal.entries
                        else {
                            "from": journal.serial_from,
                            "to": journal.serial_to,
                            "entries": len(journal.entries),
                            "bytes": journal.total_bytes,
                        },
                        "primaries": [f"{p.address}#{p.port}" for p in zc.primaries],
                        "also_notify": [f"{r.address}#{r.port}" for r in zc.also_notify],
                        **fleet,
                    }
                )
        return {
            "ok": True,
            "generation": snap.generation,
            "uptime": time.time() - self.started,
            "config": self.config.path,
            "last_reload_reactor_stall_ms": None
            if self.last_reload_stall is None
            else round(self.last_reload_stall * 1000, 1),
            "zones": zones,
        }

    def log_summary(self) -> None:
        """One start-up line per zone: role, serial, journal span, peers, refresh state."""
        for z in self.status()["zones"]:
            j = z["journal"]
            journal = (
                f"journal {j['from']}..{j['to']} ({j['entries']} changes)"
                if j
                else ("journal empty")
            )
            peers = (
                f"primaries {', '.join(z['primaries'])}"
                if z["primaries"]
                else f"also-notify {', '.join(z['also_notify']) or 'none'}"
            )
            refresh = z.get("refresh")
            last = f", last transfer: {refresh['last_result']}" if refresh else ""
            log.info(
                "zone {zone} (view {view}): {role}, serial {serial}, {journal}, {peers}{last}",
                zone=z["zone"],
                view=z["view"],
                role=z["role"],
                serial=z["serial"] if z["serial"] is not None else "none (SERVFAIL)",
                journal=journal,
                peers=peers,
                last=last,
            )

    def control(self, request: dict[str, Any]) -> Any:
        """One ``authd ctl`` request; the reply is a JSON-able dict (or its Deferred)."""
        command = request["command"]
        zone_text = request.get("zone")
        targets: list[tuple[str, dns.name.Name]] = []
        if zone_text is not None:
            try:
                zone = dns.name.from_text(str(zone_text))
            except dns.exception.DNSException as e:
                return {"ok": False, "error": f"bad zone name {zone_text!r}: {e}"}
            targets = [(v.name, zone) for v in self.current().views if zone in v.zones]
            if not targets:
                return {"ok": False, "error": f"no such zone: {zone.to_text()}"}
        if command == "status":
            return self.status()
        if command == "reload":
            d = self.reload(set(targets) if targets else None, config=not targets)

            def reloaded(problems: list[str]) -> dict[str, Any]:
                if problems:
                    return {"ok": False, "error": "; ".join(problems)}
                return {"ok": True, "message": "reloaded"}

            return d.addCallback(reloaded)
        if command == "notify" and targets:
            for view, zone in targets:
                if self.fleet is not None:
                    self.fleet.notify_zone(view, zone)
            return {"ok": True, "message": f"notify sent for {zone_text}"}
        if command == "retransfer" and targets:
            started = [
                f"{zone.to_text()} (view {view})"
                for view, zone in targets
                if self.fleet is not None and self.fleet.retransfer(view, zone)
            ]
            if not started:
                return {"ok": False, "error": f"{zone_text} is not a secondary zone"}
            return {"ok": True, "message": "full transfer started: " + ", ".join(started)}
        if command == "stop":
            log.info("stop requested on the control channel")
            self._reactor.callLater(0.1, self._reactor.stop)
            return {"ok": True, "message": "stopping"}
        if command in ("notify", "retransfer"):
            return {"ok": False, "error": f"{command} needs a zone"}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def install_signals(self) -> None:
        def on_hup(signum: int, frame: object) -> None:
            self._reactor.callFromThread(self.reload, None, True)

        def on_stop(signum: int, frame: object) -> None:
            log.info("signal {signum}: stopping", signum=signum)
            self._reactor.callFromThread(self._reactor.stop)

        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)


def run(config: Config, reactor: Any = None, ready: Callable[[], None] | None = None) -> int:
    """Load, listen and run the reactor until a stop signal; returns the exit code."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    assert IReactorCore.providedBy(reactor)
    # Reloads, transfers and NOTIFYs run in worker threads.  With CPython's
    # default 5 ms switch interval a busy worker starves the reactor thread
    # (the GIL convoy effect): every wake-up from epoll waits for the GIL, and
    # a 100k-record reload stalled queries for ~400 ms.  At 0.5 ms the same
    # reload stalled them ~4 ms (in-process) and took no longer; with a single
    # busy thread the interval costs nothing, as nobody asks for the GIL.
    sys.setswitchinterval(SWITCH_INTERVAL)
    service = Service(reactor, config)
    for warning in (*config.warnings, *shadowed_views(config.views)):
        log.warn("config: {warning}", warning=warning)
    events = service.load()
    failed = sum(1 for e in events if e.outcome is LoadOutcome.FAILED)
    try:
        service.listen()
    except Exception as e:  # CannotListenError and friends: a clear line, exit 1
        log.critical("cannot listen: {error}", error=str(e))
        return 1
    service.install_signals()
    reactor.suggestThreadPoolSize(16)  # transfers and NOTIFYs wait in worker threads
    service.fleet = Fleet(reactor, config, service.current, service.publish_zone)
    service.fleet.start()
    service.notify_changed(events)
    service.record_events(events)
    service.log_summary()
    if config.options.control:
        try:
            control.listen(reactor, config.options.control, service.control)
            log.info("control socket {path}", path=config.options.control)
        except Exception as e:
            log.error("no control socket: {error}", error=str(e))
    if config.options.watch:
        service.watcher = Watcher(reactor, config.options.reload_delay, service.files_changed)
        service._watch_files()
    log.info(
        "authd ready: {zones} zones ({failed} failed), {sockets} sockets",
        zones=len(events),
        failed=failed,
        sockets=len(service._ports),
    )
    if ready is not None:
        ready()
    reactor.run(installSignalHandlers=False)
    log.info("stopped")
    return 0
