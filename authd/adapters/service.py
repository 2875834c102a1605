"""Service wiring: sockets, the published snapshot, reloads, signals and logs.

Owns: the one mutable reference to the current ``Snapshot`` and every change
of it.  Invariants: a reload builds the new snapshot off the reactor thread and
publishes it with a single assignment on the reactor thread; at most one reload
runs at a time (a request during one is remembered and run after it).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

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

from authd.adapters.fleet import Fleet
from authd.adapters.transport import ConnectionBudget, TcpFactory, UdpServer
from authd.config import Config
from authd.query import Reply
from authd.snapshot import (
    LoadOutcome,
    Snapshot,
    ZoneLoadEvent,
    build_snapshot,
    record_change,
    with_zone,
)
from authd.zone import ZoneVersion

log = Logger(namespace="authd")


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
        self._reload_again = False
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
        self.snapshot, events = build_snapshot(self.config, None, 0)
        for event in events:
            log_load_event(event)
        return events

    def publish_zone(self, view: str, zone: dns.name.Name, version: ZoneVersion | None) -> None:
        """Serve a secondary's new copy (or None once expired): one snapshot swap."""
        snap = self.current()
        v = next(x for x in snap.views if x.name == view)
        old = v.zones.get(zone)
        journal, note = record_change(self.config, view, zone, old, version, v.journals.get(zone))
        if note is not None:
            log.warn("zone {zone}: {note}", zone=zone.to_text(), note=note)
        self._generation += 1
        self.snapshot = with_zone(snap, view, zone, version, journal, self._generation)

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

    def reload(self) -> defer.Deferred[None]:
        """Reload every zone file off the reactor thread, then publish at once."""
        if self._reloading:
            self._reload_again = True
            return defer.succeed(None)
        self._reloading = True
        self._generation += 1
        log.info("reloading zones")
        d = threads.deferToThread(build_snapshot, self.config, self.snapshot, self._generation)

        def publish(result: tuple[Snapshot, list[ZoneLoadEvent]]) -> None:
            snapshot, events = result
            self.snapshot = snapshot  # the single swap every query sees whole
            for event in events:
                log_load_event(event)
            self.notify_changed(events)
            log.info("reload done: generation {generation}", generation=snapshot.generation)

        def failed(failure: Any) -> None:
            log.failure("reload failed; the old zones keep serving", failure)

        def done(_: object) -> None:
            self._reloading = False
            if self._reload_again:
                self._reload_again = False
                self.reload()

        d.addCallbacks(publish, failed)
        d.addBoth(done)
        return d

    def install_signals(self) -> None:
        def on_hup(signum: int, frame: object) -> None:
            self._reactor.callFromThread(self.reload)

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
    service = Service(reactor, config)
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
