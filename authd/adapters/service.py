"""Service wiring: sockets, the published snapshot, reloads, signals and logs.

Owns: the one mutable reference to the current ``Snapshot`` and every change
of it, and the wiring of the pure pieces: ``authd.reloads`` decides which
reload runs (this module runs its worker and publishes), ``authd.status``
holds the zones' load records and status values, the control channel's
command table lives here, and ``adapters.memory`` retires old versions.
Invariants: a reload builds the new snapshot off the reactor thread and
publishes it with a single assignment on the reactor thread; at most one
reload runs at a time (requests during one merge into one follow-up).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import dns.name
import dns.rdatatype
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure

from authd import cookies, parentds, reloads, rollover
from authd import status as status_mod
from authd.adapters import control, daemon, dscheck
from authd.adapters import metrics as metrics_mod
from authd.adapters.catalogs import Gone, MemberChanges, build_expanded, clean_up
from authd.adapters.fleet import Fleet
from authd.adapters.gcpause import gc_paused, tune_for_serving
from authd.adapters.hostinfo import gather_host_info
from authd.adapters.logs import LOG_LINES_PER_SECOND, LogLimit, log_load_event
from authd.adapters.logs import start_logging as start_logging  # cli.py's entry point
from authd.adapters.memory import retire, trim_heap
from authd.adapters.metrics import Metrics, MetricsCollector, ZoneRow
from authd.adapters.state import JournalChange, record_change, step_keys, write_signed_copies
from authd.adapters.transport import TcpFactory, UdpServer, listen_ipv6, listen_udp
from authd.adapters.watch import Watcher
from authd.build import LoadOutcome, ZoneLoadEvent
from authd.config import CatalogRole, Config, ZoneConfig, ZoneType, load_config
from authd.connections import ConnectionTable
from authd.errors import AuthdError
from authd.journal import Journal
from authd.limits import (
    COOKIE_SECRET_LEN,
    DS_CHECK_MAX_INTERVAL,
    DS_CHECK_MIN_INTERVAL,
    KEY_EVENT_MARGIN,
    SIGNING_RETRY,
    TCP_LISTEN_BACKLOG,
)
from authd.query import Reply
from authd.signer import Inline
from authd.snapshot import Snapshot, with_zone
from authd.status import ZoneRecord
from authd.views import shadowed_views
from authd.zone import ZoneVersion

log = Logger(namespace="authd")

SWITCH_INTERVAL = 0.0005  # seconds; see run()
SHUTDOWN_POLL = 0.05  # seconds between two looks at the connections still busy
# A reload worker's result: the config with catalog members, its snapshot, the
# load events, the config as read (no members), the catalogs' problems, and
# how the members changed.
BuildResult = tuple[Config, Snapshot, list[ZoneLoadEvent], Config, tuple[str, ...], MemberChanges]


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


def _normalised(path: str) -> str:
    """*path* as the watcher reports it: absolute, without ``..`` or ``.``."""
    return os.path.normpath(os.path.abspath(path))


class Service:
    def __init__(self, reactor: Any, config: Config) -> None:
        self._reactor = reactor
        self.config = config  # with the members of interpreted catalogs (authd.catalog)
        self.base_config = config  # as read from the file
        self._catalog_problems: tuple[str, ...] = ()
        self.snapshot: Snapshot | None = None
        self._generation = 0
        self._reloads = reloads.ReloadState()
        self._waiters: dict[int, defer.Deferred[list[str]]] = {}
        self._next_waiter = 0
        self._stall: StallMonitor | None = None
        self._read_since = time.time()  # when the running (or last) reload began reading
        self.watcher: Watcher | None = None
        self.records: dict[tuple[str, dns.name.Name], ZoneRecord] = {}
        self.started = time.time()
        self.last_reload_stall: float | None = None
        self._ports: list[Any] = []
        self._tcp_ports: list[Any] = []
        self._stopping = False
        self._connections = ConnectionTable(
            config.options.tcp_max_connections, config.options.tcp_max_connections_per_client
        )
        self.fleet: Fleet | None = None
        self._log_limit = LogLimit(LOG_LINES_PER_SECOND, time.monotonic, reactor.callLater)
        # Counters for options.metrics (and ctl status --json); None: metrics off.
        self.metrics: Metrics | None = Metrics() if config.options.metrics is not None else None
        # Signed zones' earliest RRSIG expiry by (view, zone), for the metrics.
        self.signature_expiry: Callable[[], dict[tuple[str, str], float]] = self._expiries
        self._signing_call: Any = None  # the next re-signing (inline-signed zones)
        self._resigned_for: float | None = None  # the due time the last one was for
        self._ds_check_call: Any = None  # the next DS query to parental agents
        self._ds_checking = False
        # DNS cookies without a configured secret: one random secret for this run.
        self._cookie_secret = os.urandom(COOKIE_SECRET_LEN)
        self.commands: dict[str, control.Command] = {
            "status": control.Command(lambda targets, zone: self.status_json()),
            "reload": control.Command(self._ctl_reload, control.ZoneArg.OPTIONAL),
            "notify": control.Command(self._ctl_notify, control.ZoneArg.REQUIRED),
            "retransfer": control.Command(self._ctl_retransfer, control.ZoneArg.REQUIRED),
            "stop": control.Command(self._ctl_stop),
            "keys": control.Command(self._ctl_keys, control.ZoneArg.REQUIRED, args=True),
        }

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
            config, snapshot, events, problems, _ = build_expanded(
                self.base_config, None, None, 0, time.time()
            )
        trim_heap()  # what the build freed (records, grouping) goes back to the OS
        self.snapshot = self._with_cookie_secret(snapshot)
        self.config = config
        self._log_catalog_problems(problems)
        for event in events:
            log_load_event(event)
        self._schedule_signing()
        self._schedule_ds_check()
        return events

    # -- inline signing: re-sign before signatures expire ---------------------

    def _signed_zones(self) -> list[tuple[str, dns.name.Name, Inline]]:
        """(view, zone, signing state) of every zone authd signs (each once:
        a zone shared with an earlier view is that view's)."""
        snapshot = self.snapshot
        if snapshot is None:
            return []
        out = []
        for vc, view in zip(self.config.views, snapshot.views, strict=False):
            for zc in vc.zones:
                version = view.zones.get(zc.name)
                if zc.in_view is None and version is not None and version.inline is not None:
                    out.append((vc.name, zc.name, version.inline))
        return out

    def _expiries(self) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for view, zone, inline in self._signed_zones():
            expiry = inline.signed.earliest_expiry()
            if expiry is not None:
                out[(view, zone.to_text())] = float(expiry)
        return out

    @staticmethod
    def _next_due(inline: Inline) -> float | None:
        """When *inline*'s zone needs a new signed version: its first signature
        due for refresh, or its next key event (a rollover step)."""
        times = [inline.signed.next_refresh(inline.policy)]
        if inline.next_key_event is not None:
            times.append(inline.next_key_event[0])
        found = [float(t) for t in times if t is not None]
        return min(found, default=None)

    def _schedule_signing(self) -> None:
        """Arm one timer for the first signature to fall due for refresh or the
        first key event (``authd.rollover``) of the zones authd signs."""
        if self._signing_call is not None and self._signing_call.active():
            self._signing_call.cancel()
        if self._ds_check_call is not None and self._ds_check_call.active():
            self._ds_check_call.cancel()
        self._signing_call = None
        signed = self._signed_zones()
        due = [at for _, _, inline in signed if (at := self._next_due(inline)) is not None]
        if not due or self._stopping:
            return
        first = min(due)
        # Key times are whole seconds: wake just after, so the build sees the step.
        delay = max(first - time.time(), 0.0) + KEY_EVENT_MARGIN
        if self._resigned_for is not None and first <= self._resigned_for:
            # Still due after a re-signing for it: that one failed (and was
            # logged); retry later, what is served stays valid until it expires.
            # Well within the refresh period, so a few retries fit before expiry.
            shortest = min(inline.policy.signature_refresh for _, _, inline in signed)
            delay = max(delay, min(SIGNING_RETRY, shortest / 4))
        self._signing_call = self._reactor.callLater(delay, self._resign_due)

    # -- parental agents: is a waiting KSK's DS at the parent? -------------------

    def _waiting_for_ds(self) -> list[tuple[str, ZoneConfig, Inline, list[int]]]:
        """Signed zones with parental agents and a KSK waiting for its DS."""
        zcs = {(vc.name, zc.name): zc for vc in self.config.views for zc in vc.zones}
        out = []
        for view, zone, inline in self._signed_zones():
            zc = zcs.get((view, zone))
            if zc is None or not zc.parental_agents:
                continue
            tags = [
                tag
                for tag, role, state, ds in inline.key_states
                if role in rollover.WITH_DS
                and state in ("generated", "published")
                and ds == "asked"
            ]
            if tags:
                out.append((view, zc, inline, tags))
        return out

    def _schedule_ds_check(self) -> None:
        """Ask the parental agents again in a while, if a KSK waits for its DS:
        as often as the parent's propagation delay, within the limits."""
        if self._ds_check_call is not None and self._ds_check_call.active():
            return
        waiting = self._waiting_for_ds()
        if not waiting or self._stopping or self._ds_checking:
            return
        delay = min(float(inline.policy.parent_propagation_delay) for _, _, inline, _ in waiting)
        delay = min(max(delay, DS_CHECK_MIN_INTERVAL), DS_CHECK_MAX_INTERVAL)
        self._ds_check_call = self._reactor.callLater(delay, self._check_ds)

    def _check_ds(self) -> None:
        self._ds_check_call = None
        waiting = self._waiting_for_ds()
        if not waiting:
            return
        self._ds_checking = True
        state_dir = self.config.state_dir

        def work() -> list[tuple[str, dns.name.Name, list[int]]]:
            seen = []
            for view, zc, inline, tags in waiting:
                cds = inline.signed.rrsets.get((zc.name, dns.rdatatype.RdataType.CDS))
                try:
                    answers = dscheck.ask_all(zc.name, zc.parental_agents)
                except dscheck.AgentError as e:
                    log.info("DS check of {zone}: {error}", zone=zc.name.to_text(), error=str(e))
                    continue
                found = parentds.seen_at_parent(tags, cds, answers)
                if found and zc.dnssec is not None:
                    for tag in found:
                        step_keys(
                            state_dir,
                            zc.name,
                            zc.dnssec,
                            int(time.time()),
                            ds_tag=tag,
                            ds_seen=True,
                        )
                    seen.append((view, zc.name, found))
            return seen

        def done(seen: list[tuple[str, dns.name.Name, list[int]]]) -> None:
            self._ds_checking = False
            for _, zone, tags in seen:
                log.info(
                    "DS of {zone} KSK {tags} seen at every parental agent",
                    zone=zone.to_text(),
                    tags=", ".join(str(t) for t in tags),
                )
            if seen:
                self.reload(only=self._with_parents({(v, z) for v, z, _ in seen}))
            self._schedule_ds_check()

        def failed(failure: Failure) -> None:
            self._ds_checking = False
            log.failure("DS check failed", failure)
            self._schedule_ds_check()

        threads.deferToThread(work).addCallbacks(done, failed)

    def _resign_due(self) -> None:
        self._signing_call = None
        now = time.time()
        refresh: set[tuple[str, dns.name.Name]] = set()
        steps: set[tuple[str, dns.name.Name]] = set()
        fired: list[float] = []
        for view, zone, inline in self._signed_zones():
            at = inline.signed.next_refresh(inline.policy)
            if at is not None and at <= now + 1:
                refresh.add((view, zone))
                fired.append(at)
            event = inline.next_key_event
            # A key step only once its second has come: the build takes the
            # steps due at its own (whole-second) time.
            if event is not None and event[0] <= now:
                steps.add((view, zone))
                fired.append(event[0])
        if not refresh and not steps:
            self._schedule_signing()
            return
        # What this reload is for: still due after it means it failed (retry later).
        self._resigned_for = max(fired)
        if refresh:
            names = ", ".join(sorted(zone.to_text() for _, zone in refresh))
            log.info("re-signing {zones}: signatures due for refresh", zones=names)
        if steps:
            names = ", ".join(sorted(zone.to_text() for _, zone in steps))
            log.info("re-signing {zones}: key rollover step due", zones=names)
        self.reload(only=self._with_parents(refresh | steps))

    def _with_parents(
        self, targets: set[tuple[str, dns.name.Name]]
    ) -> set[tuple[str, dns.name.Name]]:
        """*targets* and the parents served here whose DS follow them (``authd.parentds``)."""
        out = set(targets)
        for vc in self.config.views:
            followed = parentds.followed(vc)
            out |= {(vc.name, followed[z]) for v, z in targets if v == vc.name and z in followed}
        return out

    # -- authd ctl keys: ds-seen, rollover ---------------------------------------

    def _ctl_keys(
        self, targets: list[tuple[str, dns.name.Name]], zone: str | None, args: list[str]
    ) -> Any:
        usage = "usage: keys ds-seen ZONE [TAG] | keys rollover ZONE zsk|ksk|csk"
        if not args or args[0] not in ("ds-seen", "rollover") or not targets:
            return {"ok": False, "error": usage}
        action, rest = args[0], args[1:]
        name = targets[0][1]
        zc = next(
            (z for vc in self.config.views for z in vc.zones if z.name == name and z.dnssec),
            None,
        )
        if zc is None or zc.dnssec is None:
            return {"ok": False, "error": f"{name.to_text()} is not signed by authd"}
        policy = zc.dnssec
        tag: int | None = None
        asked: tuple[str, ...] = ()
        if action == "ds-seen":
            if len(rest) > 1 or (rest and not rest[0].isdigit()):
                return {"ok": False, "error": usage}
            tag = int(rest[0]) if rest else None
        else:
            if len(rest) != 1 or rest[0] not in rollover.ROLLABLE:
                return {"ok": False, "error": usage}
            asked = (rest[0],)
        state_dir = self.config.state_dir

        def work() -> None:
            step_keys(
                state_dir,
                name,
                policy,
                int(time.time()),
                asked=asked,
                ds_tag=tag,
                ds_seen=action == "ds-seen",
            )

        def done(_: None) -> Any:
            log.info(
                "keys {action} {zone}{extra} (control channel)",
                action=action,
                zone=name.to_text(),
                extra=f" {' '.join(rest)}" if rest else "",
            )
            d = self.reload(only=self._with_parents(set(targets)))
            return d.addCallback(reloaded)

        def reloaded(problems: list[str]) -> dict[str, Any]:
            if problems:
                return {"ok": False, "error": "; ".join(problems)}
            what = "DS seen" if action == "ds-seen" else f"{rest[0]} rollover started"
            return {"ok": True, "message": f"{name.to_text()}: {what}, re-signed"}

        def failed(failure: Failure) -> dict[str, Any]:
            if failure.check(AuthdError):
                return {"ok": False, "error": f"{name.to_text()}: {failure.getErrorMessage()}"}
            log.failure("keys {action} failed", failure, action=action)
            return {"ok": False, "error": f"keys {action} failed: {failure.getErrorMessage()}"}

        d = threads.deferToThread(work)
        d.addCallback(done)
        d.addErrback(failed)
        return d

    def _with_cookie_secret(self, snapshot: Snapshot) -> Snapshot:
        """Cookies on with no secret configured: this run's random one (RFC 7873 s7.1)."""
        if snapshot.cookies is not None or not snapshot.options.cookies.enabled:
            return snapshot
        return dataclasses.replace(snapshot, cookies=cookies.Secrets(self._cookie_secret))

    def start_fleet(self) -> None:
        self.fleet = Fleet(
            self._reactor, self.config, self.current, self.publish_zone, self.transferred
        )
        self.fleet.metrics = self.metrics
        self.fleet.start()

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
        zc = v.configs.get(zone)
        if zc is not None and zc.catalog_role is CatalogRole.INTERPRET:
            # A new copy of a catalog: its members are followed by a reload
            # that reads no file again (only new members load their copies).
            self.reload({(view, zone)})

    def _log_catalog_problems(self, problems: tuple[str, ...]) -> None:
        """Log what the catalogs' checks ignored, once while it stays the same."""
        if problems != self._catalog_problems:
            for problem in problems:
                log.warn("{problem}", problem=problem)
        self._catalog_problems = problems

    def transferred(self, view: str, zone: dns.name.Name, serial: int, how: str) -> None:
        """A secondary's transferred copy is serving: status shows it as a load."""
        key = (view, zone)
        self.records[key] = status_mod.transferred(self.records.get(key), serial, how, time.time())

    # -- the log of replies --------------------------------------------------

    def _on_reply(self, reply: Reply) -> None:
        if reply.notify is not None and self.fleet is not None:
            accepted = reply.notify
            self.fleet.notified(
                accepted.view, accepted.zone, accepted.client, self._log_limit.allow("NOTIFY")
            )
        n = reply.notify_refused
        r = reply.tsig_rejected
        q = reply.query_refused
        if self.metrics is not None:
            if n is not None:
                self.metrics.notify_refused += 1
            if r is not None:
                self.metrics.tsig_rejected[r.error] += 1
            if q is not None:
                self.metrics.query_refused["allow-query" if q.zone else "no-view"] += 1
        if q is not None and self._log_limit.allow("query refused"):
            log.warn(
                "query for {qname} (zone {zone}) from {client}#{port} key {key} refused: {why}",
                qname=q.qname.to_text(),
                zone=q.zone.to_text() if q.zone is not None else "none",
                client=q.client,
                port=q.port,
                key=q.key.to_text() if q.key is not None else "none",
                why=q.why,
            )
        if n is not None and self._log_limit.allow("NOTIFY refused"):
            log.warn(
                "NOTIFY for {zone} from {client}#{port} key {key} refused: {why}",
                zone=n.zone.to_text(),
                client=n.client,
                port=n.port,
                key=n.key.to_text() if n.key is not None else "none",
                why=n.why,
            )
        if r is not None and self._log_limit.allow(f"TSIG {r.error}"):
            log.warn(
                "TSIG {error} from {client}#{port} key {key}: refused (NOTAUTH)",
                error=r.error,
                client=r.client,
                port=r.port,
                key=r.key.to_text(),
            )
        t = reply.transfer
        if t is not None and self.metrics is not None:
            self.metrics.transfer_out(t)
        # Refusals (no serial) are what a flood from anyone produces: those are
        # limited; a transfer that was allowed is always logged.
        if t is not None and (t.serial is not None or self._log_limit.allow(f"transfer {t.kind}")):
            log.info(
                "transfer {zone} (view {view}) to {client} key {key}: {kind}, serial {serial} "
                "(client {client}#{port})",
                zone=t.zone.to_text(),
                view=t.view,
                client=t.client,
                port=t.port,
                key=t.key.to_text() if t.key is not None else "none",
                kind=t.kind,
                serial=t.serial,
            )
        started = reply.rate_limited
        if started is not None and self._log_limit.allow("rate limiting"):
            log.info(
                "rate limiting started for prefix {prefix}: {kind} responses{name}",
                prefix=started.prefix,
                kind=started.kind,
                name=f" for {started.name}" if started.name else "",
            )
        e = reply.event
        if e is not None:
            log.info(
                "query {client}#{port} {transport} id {id} {qname} {qtype} -> "
                "{rcode} {size}B{cached}",
                client=e.client,
                port=e.port,
                transport=e.transport,
                id=e.id,
                qname=e.qname,
                qtype=e.qtype,
                rcode=e.rcode,
                size=e.size,
                cached=" (cached)" if e.cached else "",
                query_time=e.time,
            )

    def listen(self) -> None:
        opts = self.config.options
        metrics = self.metrics
        for lc in self.config.listen:
            buffers = (opts.udp_receive_buffer, opts.udp_send_buffer)
            udp = UdpServer(self.current, lc.address, self._on_reply, buffers)
            udp.noisy = False
            factory = TcpFactory(
                self.current,
                lc.address,
                opts.tcp_idle_timeout,
                opts.tcp_io_timeout,
                self._connections,
                self._on_reply,
                self._reactor.callLater,
                self._log_limit,
            )
            factory.noisy = False
            if metrics is not None:
                udp.counts = metrics.transports["udp"]
                factory.counts = metrics.transports["tcp"]
                factory.metrics = metrics
            if ":" in lc.address:
                # IPV6_V6ONLY, so that 0.0.0.0 and :: can share a port.
                uport, tcp = listen_ipv6(self._reactor, lc.address, lc.port, udp, factory)
                self._ports.append(uport)
            else:
                self._ports.append(listen_udp(self._reactor, lc.port, udp, lc.address))
                tcp = self._reactor.listenTCP(
                    lc.port, factory, interface=lc.address, backlog=TCP_LISTEN_BACKLOG
                )
            self._ports.append(tcp)
            self._tcp_ports.append(tcp)
        for lc in self.config.listen:
            log.info(
                "listening on {address} port {port} (UDP, TCP)", address=lc.address, port=lc.port
            )

    # -- reloads: authd.reloads decides, this performs ----------------------

    def reload(
        self, only: set[tuple[str, dns.name.Name]] | None = None, config: bool = False
    ) -> defer.Deferred[list[str]]:
        """Reload zone files (all, or *only* some) and with *config* the config too.

        Parsing happens in a worker thread; publishing is one assignment here.
        Requests during a reload are merged and run when it ends.  The Deferred
        fires once the reload that covers this request is done, with what was
        refused (the config, zones kept old or failed): empty when all went well.
        """
        if only is not None:
            # A parent here follows its children's DS: it is built with them.
            only = self._with_parents(set(only))
        scope = reloads.Scope(None if only is None else frozenset(only), config)
        self._next_waiter += 1
        token = self._next_waiter
        waiter: defer.Deferred[list[str]] = defer.Deferred()
        self._waiters[token] = waiter
        self._step(reloads.Requested(scope, token))
        return waiter

    def _step(self, event: reloads.Event, result: BuildResult | None = None) -> None:
        self._reloads, actions = reloads.step(self._reloads, event)
        for action in actions:
            if isinstance(action, reloads.StartWorker):
                self._start_worker(action.scope)
            elif isinstance(action, reloads.Publish):
                assert result is not None
                self._step(reloads.Published(self._publish(action.scope, result)))
            else:
                for token in action.waiters:
                    self._waiters.pop(token).callback(list(action.problems))

    def _start_worker(self, scope: reloads.Scope) -> None:
        self._generation += 1
        generation = self._generation
        log.info("reloading {what}", what=scope.describe())
        self._read_since = time.time()
        old_config = self.config
        old_base = self.base_config

        def work() -> BuildResult:
            base = old_base
            if scope.config and old_config.path is not None:
                # raises on a bad config: the old one keeps running
                base = load_config(old_config.path, gather_host_info())
            with gc_paused():
                new_config, snapshot, events, problems, members = build_expanded(
                    base,
                    old_config,
                    self.snapshot,
                    generation,
                    time.time(),
                    scope.zones,
                    keep_config=base is old_base,
                )
            return new_config, snapshot, events, base, problems, members

        self._stall = StallMonitor(self._reactor)
        d = threads.deferToThread(work)
        d.addCallbacks(self._worker_done, self._worker_failed)
        d.addErrback(lambda f: log.failure("reload bookkeeping failed", f))

    def _worker_done(self, result: BuildResult) -> None:
        self._step(reloads.WorkerSucceeded(), result)

    def _worker_failed(self, failure: Failure) -> None:
        if self._stall is not None:
            self._stall.stop()
        if failure.check(AuthdError):
            log.error(
                "config {path} refused, the running one stays: {error}",
                path=self.config.path,
                error=failure.getErrorMessage(),
            )
            problem = (
                f"config {self.config.path} refused, the running one stays: "
                f"{failure.getErrorMessage()}"
            )
        else:
            log.failure("reload failed; the old zones keep serving", failure)
            problem = f"reload failed: {failure.getErrorMessage()}"
        if self.metrics is not None:
            self.metrics.reloads["failed"] += 1
        self._step(reloads.WorkerFailed(problem))

    def _publish(self, scope: reloads.Scope, result: BuildResult) -> tuple[str, ...]:
        """Swap the worker's snapshot in; what the reload refused."""
        try:
            return self._swap(scope, result)
        except Exception:
            failure = Failure()
            log.failure("reload failed while publishing", failure)
            return (f"reload failed: {failure.getErrorMessage()}",)
        finally:
            if self._stall is not None:
                self._stall.stop()

    def _swap(self, scope: reloads.Scope, result: BuildResult) -> tuple[str, ...]:
        began = time.perf_counter()
        new_config, snapshot, events, base, problems, members = result
        self.base_config = base
        self._log_catalog_problems(problems)
        # Secondary copies published while we parsed must not be rolled back.
        snapshot = reloads.keep_secondaries(snapshot, self.current(), new_config)
        snapshot = self._with_cookie_secret(snapshot)
        old = self.current()
        self.snapshot = snapshot  # the single swap every query sees whole
        retire(self._reactor, old, snapshot)
        del old
        if new_config is not self.config:
            self._config_changed(new_config, reread=scope.config)
            for view, cat, zone, group, _ in members.added:
                log.info(
                    "catalog member {zone} (view {view}) added from catalog {catalog}{group}",
                    zone=zone.to_text(),
                    view=view,
                    catalog=cat.to_text(),
                    group=f", group {group}" if group else "",
                )
            self._drop_members(members.gone)
            self._reset_members(members.reset)
        self.record_events(events)
        # Watch the files this load read before saying how it went: an operator
        # (or a test) may fix a new $INCLUDE the moment the refusal is logged.
        self._watch_files(read_since=self._read_since)
        for event in events:
            if scope.covers((event.view, event.zone)):
                log_load_event(event)
        refused = reloads.refusals(events, scope)
        if self.metrics is not None:
            self.metrics.reloads["refused" if refused else "ok"] += 1
            self.metrics.zones_refused += sum(
                1
                for e in events
                if scope.covers((e.view, e.zone))
                and e.outcome in (LoadOutcome.KEPT_OLD, LoadOutcome.FAILED)
            )
        self.notify_changed(events)
        self._schedule_signing()
        self._schedule_ds_check()
        assert self._stall is not None
        self.last_reload_stall = self._stall.stop()
        log.info(
            "reload done: generation {generation}, published in {publish:.1f} ms, "
            "longest reactor stall {stall:.1f} ms",
            generation=snapshot.generation,
            publish=(time.perf_counter() - began) * 1000,
            stall=self.last_reload_stall * 1000,
        )
        return refused

    def _drop_members(self, gone: tuple[Gone, ...]) -> None:
        """Catalog members no longer listed: forget their records, remove their state."""
        for view, zone, _ in gone:
            self.records.pop((view, zone), None)
            log.info(
                "catalog member {zone} (view {view}) removed: no longer served",
                zone=zone.to_text(),
                view=view,
            )
        for path in clean_up(self.config, gone):
            log.info("removed {path}", path=path)

    def _reset_members(self, reset: tuple[tuple[str, ZoneConfig], ...]) -> None:
        """RFC 9432 section 5.3: a member listed under a new unique id starts
        again, its copy and history dropped, with a full transfer."""
        if not reset:
            return
        opts = self.config.options
        for view, zc in reset:
            log.info(
                "catalog member {zone} (view {view}) reset: new unique id {id}; "
                "its copy and journal are dropped and it is transferred anew",
                zone=zc.name.to_text(),
                view=view,
                id=zc.catalog_id,
            )
            empty = Journal(
                (), max_entries=opts.journal_max_entries, max_bytes=opts.journal_max_bytes
            )
            snap = self.current()
            self._generation += 1
            self.snapshot = with_zone(snap, view, zc.name, None, empty, self._generation)
            retire(self._reactor, snap, self.snapshot)
            self.records.pop((view, zc.name), None)
        for path in clean_up(self.config, [(v, zc.name, zc.file) for v, zc in reset]):
            log.info("removed {path}", path=path)
        for view, zc in reset:
            if self.fleet is not None:
                self.fleet.retransfer(view, zc.name)

    def _config_changed(self, new: Config, reread: bool = True) -> None:
        """*new* is in force: read again from its file, or (*reread* False) the
        same file with other catalog members."""
        old = self.config
        self.config = new
        for warning in (*new.warnings, *shadowed_views(new.views)):
            log.warn("config: {warning}", warning=warning)
        if new.listen != old.listen:
            log.warn("listen addresses changed in the config: they take effect at restart")
        if new.options.control != old.options.control:
            log.warn("options.control changed in the config: it takes effect at restart")
        for key in ("metrics", "user", "pidfile"):
            if getattr(new.options, key) != getattr(old.options, key):
                log.warn("options.{key} changed in the config: it takes effect at restart", key=key)
        self._connections.limit = new.options.tcp_max_connections
        self._connections.per_client = new.options.tcp_max_connections_per_client
        watching = (new.options.watch, new.options.reload_delay)
        if watching != (old.options.watch, old.options.reload_delay):
            # _swap() points the new watcher at the files right after this.
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
        if self.fleet is not None and not reread:
            self.fleet.members_changed(new)
        elif self.fleet is not None:
            self.fleet.stop()
            self.start_fleet()
        if reread:
            log.info("config {path} reloaded", path=new.path)

    def _watch_files(self, read_since: float | None = None) -> None:
        """Point the watcher at every zone file, every $INCLUDE, and the config.

        *read_since*: when the load that read these files began (see Watcher.watch).
        """
        if self.watcher is None:
            return
        files = set()
        if self.config.path is not None:
            files.add(self.config.path)
        for view in self.current().views:
            for name, zc in view.configs.items():
                if zc.type is ZoneType.SECONDARY or zc.catalog_role is CatalogRole.GENERATE:
                    continue  # written (or built) by us, not by the operator
                files |= self._zone_files(view.name, name, zc.file)
        self.watcher.watch(files, read_since)

    def _zone_files(self, view: str, zone: dns.name.Name, main: str) -> set[str]:
        """The files a zone is read from: those its served version and its last load read.

        The last load counts too: a refused edit may have $INCLUDEd a new, broken
        file, and fixing that file must bring the zone back.
        """
        files = {main}
        version = self.current().view_zone(view, zone)
        if version is not None:
            files |= version.files
        record = self.records.get((view, zone))
        if record is not None:
            files |= record.files
        return files

    def files_changed(self, paths: set[str]) -> None:
        """The watcher's debounced callback: reload what those files feed."""
        if self.config.path is not None and _normalised(self.config.path) in paths:
            self.reload(config=True)
            return
        only: set[tuple[str, dns.name.Name]] = set()
        for view in self.current().views:
            for name, zc in view.configs.items():
                if (
                    zc.in_view is not None
                    or zc.type is ZoneType.SECONDARY
                    or zc.catalog_role is CatalogRole.GENERATE
                ):
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
        self.records = status_mod.recorded(self.records, events, time.time())

    def status(self) -> status_mod.ServerStatus:
        fleet = self.fleet
        return status_mod.build(
            self.config,
            self.current(),
            self.records,
            fleet.zone_status if fleet is not None else lambda view, zone: status_mod.NO_FLEET,
            time.time(),
            self.started,
            self.last_reload_stall,
        )

    def status_json(self) -> dict[str, Any]:
        """``authd ctl status --json``: the status, and the counters when metrics are on."""
        out = control.status_json(self.status())
        if self.metrics is not None:
            out["metrics"] = self.metrics.as_json()
            out["metrics"]["tcp_connections"] = len(self._connections)
        return out

    def metric_zones(self) -> list[ZoneRow]:
        """Each zone's serial and, for a secondary, its refresh state, for a scrape."""
        rows: list[ZoneRow] = []
        now = time.time()
        last = self.metrics.last_refresh if self.metrics is not None else {}
        for z in self.status().zones:
            r = z.fleet.refresh
            when = last.get((z.view, z.zone))
            rows.append(
                (
                    z.view,
                    z.zone.to_text(),
                    z.serial,
                    r.phase if r is not None else None,
                    max(0.0, now - when) if when is not None else None,
                    r.expired if r is not None else False,
                )
            )
        return rows

    def metrics_collector(self) -> MetricsCollector:
        assert self.metrics is not None
        return MetricsCollector(
            self.metrics,
            self.metric_zones,
            lambda: len(self._connections),
            lambda: self.last_reload_stall,
            lambda: self.signature_expiry(),
        )

    def log_summary(self) -> None:
        """One start-up line per zone: role, serial, journal span, peers, refresh state."""
        for z in self.status().zones:
            log.info("{summary}", summary=status_mod.summary(z), zone=z.zone, view=z.view)

    def control(self, request: dict[str, Any]) -> Any:
        """One ``authd ctl`` request; the reply is a JSON-able dict (or its Deferred)."""

        def serving(zone: dns.name.Name) -> list[tuple[str, dns.name.Name]]:
            return [(v.name, zone) for v in self.current().views if zone in v.zones]

        return control.dispatch(self.commands, request, serving)

    def _ctl_reload(self, targets: list[tuple[str, dns.name.Name]], zone: str | None) -> Any:
        # Without a zone: the config too, as SIGHUP.
        d = self.reload(set(targets) if targets else None, config=not targets)

        def reloaded(problems: list[str]) -> dict[str, Any]:
            if problems:
                return {"ok": False, "error": "; ".join(problems)}
            return {"ok": True, "message": "reloaded"}

        return d.addCallback(reloaded)

    def _ctl_notify(self, targets: list[tuple[str, dns.name.Name]], zone: str | None) -> Any:
        for view, name in targets:
            if self.fleet is not None:
                self.fleet.notify_zone(view, name)
        return {"ok": True, "message": f"notify sent for {zone}"}

    def _ctl_retransfer(self, targets: list[tuple[str, dns.name.Name]], zone: str | None) -> Any:
        started = [
            f"{name.to_text()} (view {view})"
            for view, name in targets
            if self.fleet is not None and self.fleet.retransfer(view, name)
        ]
        if not started:
            return {"ok": False, "error": f"{zone} is not a secondary zone"}
        return {"ok": True, "message": "full transfer started: " + ", ".join(started)}

    def _ctl_stop(self, targets: list[tuple[str, dns.name.Name]], zone: str | None) -> Any:
        log.info("stop requested on the control channel")
        self._reactor.callLater(0.1, self.shutdown)
        return {"ok": True, "message": "stopping"}

    def shutdown(self) -> None:
        """Stop gracefully: no new TCP connections, idle ones closed once their
        answers are out, transfers in flight finished within
        ``options.shutdown_timeout``; UDP answers until then.  Then the reactor stops."""
        if self._stopping:
            return
        self._stopping = True
        if self._signing_call is not None and self._signing_call.active():
            self._signing_call.cancel()
        if self._ds_check_call is not None and self._ds_check_call.active():
            self._ds_check_call.cancel()
        # The signed versions served, for the next start to serve as they are.
        if self.snapshot is not None:
            for problem in write_signed_copies(self.config, self.snapshot):
                log.warn("{problem}", problem=problem)
        daemon.sd_notify("STOPPING=1")
        deadline = self._reactor.seconds() + self.config.options.shutdown_timeout
        for port in self._tcp_ports:
            port.stopListening()
        if self.watcher is not None:
            self.watcher.stop()
        for conn in self._connections.held():
            conn.close_when_done()  # type: ignore[attr-defined]
        self._wait_for_connections(deadline)

    def _wait_for_connections(self, deadline: float) -> None:
        left = len(self._connections)
        if left and self._reactor.seconds() < deadline:
            self._reactor.callLater(SHUTDOWN_POLL, self._wait_for_connections, deadline)
            return
        if left:
            log.warn(
                "shutdown: {left} TCP connections still busy after {timeout:g} s; closing them",
                left=left,
                timeout=self.config.options.shutdown_timeout,
            )
            for conn in self._connections.held():
                conn.transport.abortConnection()  # type: ignore[attr-defined]
        self._reactor.stop()

    def install_signals(self) -> None:
        def on_hup(signum: int, frame: object) -> None:
            self._reactor.callFromThread(self.reload, None, True)

        def on_stop(signum: int, frame: object) -> None:
            log.info("signal {signum}: stopping", signum=signum)
            self._reactor.callFromThread(self.shutdown)

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
    tune_for_serving()
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
    service.start_fleet()
    service.notify_changed(events)
    service.record_events(events)
    service.log_summary()
    opts = config.options
    if opts.metrics is not None and service.metrics is not None:
        service.metrics.start(reactor)
        try:
            registry = metrics_mod.registry_for(service.metrics_collector())
            port = metrics_mod.listen(reactor, opts.metrics.address, opts.metrics.port, registry)
        except Exception as e:
            log.critical("cannot listen for metrics: {error}", error=str(e))
            return 1
        host = port.getHost()
        shown = f"[{host.host}]" if ":" in host.host else host.host
        log.info("metrics on http://{address}:{port}/metrics", address=shown, port=host.port)
    owner = daemon.lookup_user(opts.user) if opts.user is not None else None
    if opts.control:
        try:
            control.listen(reactor, opts.control, service.control)
            if owner is not None and os.geteuid() == 0:
                os.chown(opts.control, *owner)  # so the dropped user can still own it
            log.info("control socket {path}", path=opts.control)
        except Exception as e:
            log.error("no control socket: {error}", error=str(e))
    if opts.pidfile is not None:
        try:
            daemon.write_pidfile(opts.pidfile, owner if os.geteuid() == 0 else None)
        except OSError as e:
            log.critical("cannot write pidfile {path}: {error}", path=opts.pidfile, error=e)
            return 1
    if opts.user is not None:
        # Every socket is bound: port 53 needs root no longer.
        try:
            uid, gid = daemon.drop_privileges(opts.user)
        except (AuthdError, OSError) as e:
            log.critical("{error}", error=str(e))
            if opts.pidfile is not None:
                daemon.remove_pidfile(opts.pidfile)
            return 1
        log.info("running as user {user} (uid {uid}, gid {gid})", user=opts.user, uid=uid, gid=gid)
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
    daemon.sd_notify(f"READY=1\nSTATUS=serving {len(events)} zones\nMAINPID={os.getpid()}")
    reactor.run(installSignalHandlers=False)
    if opts.pidfile is not None:
        daemon.remove_pidfile(opts.pidfile)
    log.info("stopped")
    return 0
