"""The primary/secondary fleet: NOTIFY out, and secondary zones kept in step.

Owns: sending NOTIFY with retries, the refresh timers of every secondary zone
(driving the pure ``authd.refresh`` machine), SOA checks and transfers in
(IXFR with AXFR fallback, through dnspython in worker threads), writing the
transferred copy atomically, and handing new versions to the service to
publish.  Invariants: a copy is on disk (temp file, fsync, rename, fsync of
the folder) before it is served, so after a crash the file is a complete
old or new version; a failed, timed-out or inconsistent transfer leaves the
served copy alone and is retried by the state machine.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
from twisted.internet import threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from authd import changeset, refresh, xfr_in, zonemd
from authd import notify as notify_mod
from authd.adapters.gcpause import gc_paused
from authd.adapters.metrics import Metrics
from authd.adapters.state import JournalChange, record_change, write_copy
from authd.changeset import RR
from authd.config import Config, Remote, ZoneConfig, ZoneType
from authd.journal import Journal
from authd.refresh import Action, Clamp, RefreshState, SoaTimers
from authd.snapshot import Snapshot
from authd.status import FleetStatus, RefreshStatus
from authd.zone import CompileResult, ZoneVersion, compile_zone, release
from authd.zonefile import Record

log = Logger(namespace="authd")

SOA_QUERY_TIMEOUT = 3.0

# (view, zone, version or None when expired, the journal already updated for it)
Publish = Callable[[str, dns.name.Name, ZoneVersion | None, JournalChange | None], None]
# (view, zone, serial, how: "AXFR from 192.0.2.1#53"): a transfer's copy is serving
Transferred = Callable[[str, dns.name.Name, int, str], None]

_POOL: ThreadPool | None = None
POOL_THREADS = 16


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    return threading.Thread(*args, daemon=True, **kwargs)


def _pool(reactor: Any) -> ThreadPool:
    """Worker threads for NOTIFY, SOA checks and transfers.

    Daemon threads in a pool of their own: a NOTIFY retrying against a dead
    secondary or a slow transfer must not hold up SIGTERM (the reactor's own
    pool is joined at shutdown).  Killing them mid-transfer is safe: a copy
    only replaces the old one by an atomic rename.
    """
    global _POOL
    if _POOL is None:
        _POOL = ThreadPool(0, POOL_THREADS, "authd-fleet")
        _POOL.threadFactory = _daemon_thread  # type: ignore[assignment]
        _POOL.start()
    return _POOL


def _timers(version: ZoneVersion) -> SoaTimers:
    soa = version.soa[0]
    return SoaTimers(int(soa.serial), float(soa.refresh), float(soa.retry), float(soa.expire))  # type: ignore[attr-defined]


def _keyring(
    config: Config, remote: Remote
) -> tuple[dict[dns.name.Name, dns.tsig.Key] | None, dns.name.Name | None]:
    if remote.key is None:
        return None, None
    key = config.keys.get(remote.key)
    assert key is not None  # the config checked every key reference
    k = key.to_dnspython()
    return {k.name: k}, k.name


def send_notify(
    config: Config, target: notify_mod.Target, version: ZoneVersion, label: str
) -> tuple[bool, str]:
    """Blocking: send NOTIFY to *target* until acknowledged or out of retries."""
    opts = config.options
    key = None
    if target.key is not None:
        tk = config.keys.get(target.key)
        key = tk.to_dnspython() if tk is not None else None
    timeout = opts.notify_timeout
    last = "no answer"
    for attempt in range(opts.notify_retries + 1):
        msg = notify_mod.message(version, key, opts.tsig_fudge)
        try:
            reply = dns.query.udp(msg, target.address, port=target.port, timeout=timeout)
        except (dns.exception.Timeout, OSError) as e:
            last = f"attempt {attempt + 1}: {type(e).__name__}"
            timeout = min(timeout * 2, 60.0)  # back off: a busy secondary gets breathing room
            continue
        except dns.exception.DNSException as e:
            return False, f"bad answer: {e}"
        rcode = reply.rcode()
        if rcode == dns.rcode.NOERROR:
            return True, f"acknowledged after {attempt + 1} attempt(s)"
        return False, f"answered {dns.rcode.to_text(rcode)}"
    return False, f"gave up after {opts.notify_retries + 1} attempts ({last})"


@dataclass
class _Secondary:
    view: str
    zc: ZoneConfig
    state: RefreshState
    timer: Any = None
    force_full: bool = False
    dropped: bool = False  # no longer configured (a catalog member removed)
    # An IXFR applied in place, served, its copy not yet written (``_store_copy``).
    copy_pending: ZoneVersion | None = None


class Fleet:
    """NOTIFY sender and secondary-zone manager, living on the reactor."""

    def __init__(
        self,
        reactor: Any,
        config: Config,
        current: Callable[[], Snapshot],
        publish: Publish,
        transferred: Transferred | None = None,
    ) -> None:
        self._reactor = reactor
        self.config = config
        self._current = current
        self._publish = publish
        self._transferred = transferred
        self._secondaries: dict[tuple[str, dns.name.Name], _Secondary] = {}
        o = config.options
        self._clamp = Clamp(o.min_refresh, o.max_refresh, o.min_retry, o.max_retry)
        self._ack: dict[tuple[str, dns.name.Name], dict[str, str]] = {}
        self.metrics: Metrics | None = None  # the service sets it when metrics are on
        # Set by stop(): a config change replaced this fleet.  Results of work
        # still in flight are dropped (the new fleet checks again): a catalog
        # member removed meanwhile must not be published back.
        self._stopped = False
        self._copy_lock = threading.Lock()  # one copy write at a time, the newest last

    def _in_thread(self, f: Callable[..., Any], *args: Any) -> Any:
        return threads.deferToThreadPool(self._reactor, _pool(self._reactor), f, *args)

    # -- NOTIFY out ---------------------------------------------------------

    def zone_status(self, view: str, zone: dns.name.Name) -> FleetStatus:
        """What ``authd ctl status`` shows of this zone's fleet side."""
        sec = self._secondaries.get((view, zone))
        state = None
        if sec is not None:
            s = sec.state
            state = RefreshStatus(
                s.phase.value,
                s.last_result,
                s.failures,
                s.expired,
                max(0.0, s.next_check - time.monotonic()),
            )
        return FleetStatus(state, tuple(self._ack.get((view, zone), {}).items()))

    def retransfer(self, view: str, zone: dns.name.Name) -> bool:
        """Force a full transfer of a secondary zone now (``authd ctl retransfer``)."""
        sec = self._secondaries.get((view, zone))
        if sec is None:
            return False
        sec.force_full = True
        sec.state = dataclasses.replace(sec.state, phase=refresh.Phase.TRANSFERRING)
        self._act(sec, [Action.TRANSFER])
        return True

    def notify_zone(self, view: str, zone: dns.name.Name) -> None:
        snap = self._current()
        v = next((x for x in snap.views if x.name == view), None)
        if v is None:
            return
        zc = v.configs.get(zone)
        version = v.zones.get(zone)
        if zc is None or version is None:
            return
        ourselves = [(lc.address, lc.port) for lc in self.config.listen]
        for target in notify_mod.targets(zc, version, v.zones, ourselves):
            label = f"{target.address}#{target.port}"
            d = self._in_thread(send_notify, self.config, target, version, label)
            if self.metrics is not None:
                self.metrics.notify["sent"] += 1

            def done(
                result: tuple[bool, str], label: str = label, serial: int = version.serial
            ) -> None:
                ok, why = result
                self._ack.setdefault((view, zone), {})[label] = f"serial {serial}: {why}"
                if self.metrics is not None:
                    self.metrics.notify["acked" if ok else "failed"] += 1
                if ok:
                    log.info(
                        "notify {zone} serial {serial} to {target}: {why}",
                        zone=zone.to_text(),
                        serial=serial,
                        target=label,
                        why=why,
                    )
                else:
                    log.warn(
                        "notify {zone} serial {serial} to {target} failed: {why}",
                        zone=zone.to_text(),
                        serial=serial,
                        target=label,
                        why=why,
                    )

            d.addCallback(done)
            d.addErrback(lambda f: log.failure("notify failed", f))

    # -- secondaries --------------------------------------------------------

    def start(self) -> None:
        self._start_zones(self.config, set())

    def _start_zones(self, config: Config, skip: set[tuple[str, dns.name.Name]]) -> None:
        """Start the refresh machine of every secondary of *config* not in *skip*."""
        snap = self._current()
        now = time.monotonic()
        for vc in config.views:
            view = next(v for v in snap.views if v.name == vc.name)
            for zc in vc.zones:
                if zc.type is not ZoneType.SECONDARY or zc.in_view is not None:
                    continue
                if (vc.name, zc.name) in skip:
                    continue
                version = view.zones.get(zc.name)
                copy = _timers(version) if version is not None else None
                age = 0.0
                if version is not None:
                    try:
                        age = max(0.0, time.time() - os.path.getmtime(zc.file))
                    except OSError:
                        age = 0.0
                state, actions = refresh.start(now, copy, age, self._clamp)
                if self.metrics is not None and version is not None:
                    # The copy on disk was last refreshed when its file was touched.
                    self.metrics.last_refresh[(vc.name, zc.name)] = time.time() - age
                sec = _Secondary(vc.name, zc, state)
                self._secondaries[(vc.name, zc.name)] = sec
                log.info(
                    "secondary zone {zone} (view {view}): primaries {primaries}, "
                    "copy serial {serial}",
                    zone=zc.name.to_text(),
                    view=vc.name,
                    primaries=", ".join(f"{p.address}#{p.port}" for p in zc.primaries),
                    serial=copy.serial if copy else "none",
                )
                self._act(sec, actions)

    def members_changed(self, config: Config) -> None:
        """Only catalog members changed (the config file was not read again): new
        secondaries start, dropped ones stop, the others keep their timers, so a
        catalog of thousands of zones does not send thousands of SOA checks."""
        self.config = config
        wanted = {
            (vc.name, zc.name): zc
            for vc in config.views
            for zc in vc.zones
            if zc.type is ZoneType.SECONDARY and zc.in_view is None
        }
        for key in [k for k in self._secondaries if k not in wanted]:
            sec = self._secondaries.pop(key)
            sec.dropped = True  # work in flight for it is discarded
            if sec.timer is not None and sec.timer.active():
                sec.timer.cancel()
        for key, sec in self._secondaries.items():
            sec.zc = wanted[key]  # a member's group, so its primaries, may have changed
        self._start_zones(config, set(self._secondaries))

    def stop(self) -> None:
        self._stopped = True
        for sec in self._secondaries.values():
            if sec.timer is not None and sec.timer.active():
                sec.timer.cancel()

    def notified(self, view: str, zone: dns.name.Name, client: str, logged: bool = True) -> None:
        """A NOTIFY was accepted for a secondary zone: check the primaries now.

        *logged* False: the service's rate limit holds this line back (a flood of
        NOTIFYs from an allowed address still costs only a refresh check each)."""
        sec = self._secondaries.get((view, zone))
        if sec is None:
            return
        if logged:
            log.info(
                "notify for {zone} from {client}: checking primaries",
                zone=zone.to_text(),
                client=client,
            )
        sec.state, actions = refresh.notify(sec.state, time.monotonic())
        self._act(sec, actions)

    def _schedule(self, sec: _Secondary) -> None:
        if sec.timer is not None and sec.timer.active():
            sec.timer.cancel()
        delay = max(0.0, sec.state.next_check - time.monotonic())
        if sec.state.expires_at is not None and not sec.state.expired:
            delay = min(delay, max(0.0, sec.state.expires_at - time.monotonic()))
        sec.timer = self._reactor.callLater(delay, self._tick, sec)

    def _tick(self, sec: _Secondary) -> None:
        sec.state, actions = refresh.tick(sec.state, time.monotonic(), self._clamp)
        self._act(sec, actions)

    def _act(self, sec: _Secondary, actions: list[Action]) -> None:
        if self._stopped or sec.dropped:
            return
        for action in actions:
            if action is Action.QUERY_SOA:
                d = self._in_thread(self._query_soa, sec.zc)
                d.addCallback(self._soa_done, sec)
                d.addErrback(self._soa_failed, sec)
            elif action is Action.TRANSFER:
                served, journal = self._served(sec)
                current = None if sec.force_full else served
                sec.force_full = False
                t = self._in_thread(self._transfer_and_record, sec, current, served, journal)
                t.addCallback(self._transfer_done, sec)
                t.addErrback(self._transfer_failed, sec)
            elif action is Action.EXPIRE:
                log.error(
                    "zone {zone} expired: answering SERVFAIL until a transfer succeeds",
                    zone=sec.zc.name.to_text(),
                )
                self._publish(sec.view, sec.zc.name, None, None)
            elif action is Action.PUBLISH:
                pass  # done in _transfer_done, which holds the new version
        self._schedule(sec)

    def _served(self, sec: _Secondary) -> tuple[ZoneVersion | None, Journal | None]:
        """The version of *sec*'s zone being served, and its IXFR journal."""
        view = next((v for v in self._current().views if v.name == sec.view), None)
        if view is None:
            return None, None
        return view.zones.get(sec.zc.name), view.journals.get(sec.zc.name)

    # Blocking work, in worker threads.

    def _query_soa(self, zc: ZoneConfig) -> int | None:
        errors = []
        for primary in zc.primaries:
            keyring, keyname = _keyring(self.config, primary)
            q = dns.message.make_query(zc.name, dns.rdatatype.SOA)
            if keyring is not None:
                q.use_tsig(keyring, keyname=keyname, fudge=self.config.options.tsig_fudge)
            where = f"{primary.address}#{primary.port}"
            # UDP first; TCP when UDP is truncated, fails or is refused: Knot
            # answers the SOA of a catalog zone only over TCP (as Knot's own
            # secondaries ask), and refuses it over UDP, unsigned.
            for tcp in (False, True):
                try:
                    query = dns.query.tcp if tcp else dns.query.udp
                    r = query(q, primary.address, port=primary.port, timeout=SOA_QUERY_TIMEOUT)
                except (dns.exception.DNSException, OSError) as e:
                    errors.append(f"{where}{' (TCP)' if tcp else ''}: {type(e).__name__} {e}")
                    continue
                if r.flags & dns.flags.TC:
                    continue
                for rrset in r.answer:
                    if (
                        rrset.rdtype == dns.rdatatype.SOA
                        and rrset.name == zc.name
                        and r.rcode() == dns.rcode.NOERROR
                    ):
                        return int(rrset[0].serial)
                rcode = dns.rcode.to_text(r.rcode())
                errors.append(f"{where}{' (TCP)' if tcp else ''}: answered {rcode} without an SOA")
        raise RuntimeError("; ".join(errors) or "no primaries")

    def _transfer_and_record(
        self,
        sec: _Secondary,
        current: ZoneVersion | None,
        served: ZoneVersion | None,
        journal: Journal | None,
    ) -> tuple[ZoneVersion, str, JournalChange, str | None]:
        """Transfer, store the copy, then update the IXFR journal here too:
        diffing two big versions on the reactor thread would stall every query
        for seconds.  The last item says why the copy could not be stored.

        An IXFR applied in place is served first and its copy (the whole
        zone as text: seconds for a big one) written after, in the
        background (``_store_copy``): after a crash in between, the older
        copy and the journal's history are read back and the next refresh
        catches up."""
        version, how, owners = self._transfer(sec.zc, current)
        copy_problem = None
        if owners is None:
            with self._copy_lock:
                sec.copy_pending = None  # this copy supersedes one still waiting
                try:
                    write_copy(sec.zc.file, version)
                except OSError as e:
                    # A transferred zone is better served from memory than not at
                    # all; the log says loudly that a restart will need a new transfer.
                    copy_problem = f"cannot store the copy {sec.zc.file}: {e.strerror or e}"
        change = record_change(
            self.config, sec.view, sec.zc.name, served, version, journal, owners=owners
        )
        if owners is not None:
            sec.copy_pending = version  # written once served: _copy_later
        return version, how, change, copy_problem

    def _store_copy(self, sec: _Secondary) -> None:
        """Write the newest copy still waiting (in a worker thread); older
        ones waiting are skipped, and a full transfer's own write supersedes."""
        with self._copy_lock:
            version, sec.copy_pending = sec.copy_pending, None
            if version is None:
                return
            try:
                write_copy(sec.zc.file, version)
            except OSError as e:
                log.error(
                    "zone {zone}: cannot store the copy {file}: {why}; serving serial "
                    "{serial} from memory only (after a restart it needs a new transfer)",
                    zone=sec.zc.name.to_text(),
                    file=sec.zc.file,
                    why=e.strerror or e,
                    serial=version.serial,
                )

    def _copy_later(self, sec: _Secondary) -> None:
        if sec.copy_pending is not None:
            d = self._in_thread(self._store_copy, sec)
            d.addErrback(
                lambda f: log.error(
                    "zone {zone}: storing the copy failed: {why}",
                    zone=sec.zc.name.to_text(),
                    why=f.getErrorMessage(),
                )
            )

    def _transfer(
        self, zc: ZoneConfig, current: ZoneVersion | None
    ) -> tuple[ZoneVersion, str, tuple[dns.name.Name, ...] | None]:
        """The version a transfer leads to, how it came, and the names it
        changed when it was applied in place (else None)."""
        errors = []
        for primary in zc.primaries:
            tsig = _keyring(self.config, primary)
            attempts = ["ixfr", "axfr"] if current is not None else ["axfr"]
            for kind in attempts:
                try:
                    serial = current.serial if kind == "ixfr" and current is not None else 0
                    # The GC paused for the whole transfer: a big zone is
                    # millions of new objects, and full collections over them
                    # hold the GIL for seconds.
                    with gc_paused():
                        rrs = _fetch(
                            zc, primary, kind, serial, self.config.options.transfer_timeout, tsig
                        )
                        received = xfr_in.read_transfer(zc.name, rrs)
                        release(rrs)
                        full = received.full is not None
                        version, owners = _apply_received(zc, current, received)
                        del received
                    how = kind.upper()
                    if kind == "ixfr" and full:
                        how = "IXFR (answered with the full zone)"  # RFC 1995 section 4
                    return version, f"{how} from {primary.address}#{primary.port}", owners
                except Exception as e:  # any failure: try the next way, then the next primary
                    errors.append(
                        f"{kind} from {primary.address}#{primary.port}: {type(e).__name__} {e}"
                    )
        raise RuntimeError("; ".join(errors))

    # Results, back on the reactor thread.

    def _soa_done(self, serial: int | None, sec: _Secondary) -> None:
        sec.state, actions = refresh.soa_answer(
            sec.state, time.monotonic(), serial, self._clamp, random.random()
        )
        if serial is not None and self.metrics is not None and not actions:
            self.metrics.refreshed(sec.view, sec.zc.name)  # up to date: a good refresh
        if not actions and serial is not None and os.path.exists(sec.zc.file):
            # Up to date: the refresh restarts the expire clock, on disk too.
            try:
                os.utime(sec.zc.file)
            except OSError:
                pass
        self._act(sec, actions)

    def _soa_failed(self, failure: Any, sec: _Secondary) -> None:
        log.warn(
            "SOA check for {zone} failed: {why}",
            zone=sec.zc.name.to_text(),
            why=failure.getErrorMessage(),
        )
        self._soa_done(None, sec)

    def _transfer_done(
        self, result: tuple[ZoneVersion, str, JournalChange, str | None], sec: _Secondary
    ) -> None:
        version, how, change, copy_problem = result
        if self._stopped or sec.dropped:
            # Replaced by a new fleet: the copy (and its journal, already on
            # disk) is served if the zone still is, but nothing is scheduled.
            view = next((v for v in self._current().views if v.name == sec.view), None)
            if view is not None and sec.zc.name in view.configs:
                self._publish(sec.view, sec.zc.name, version, change)
            self._copy_later(sec)
            return
        log.info(
            "zone {zone} transferred: serial {serial}, {records} records, by {how}",
            zone=sec.zc.name.to_text(),
            serial=version.serial,
            records=version.record_count,
            how=how,
        )
        if copy_problem is not None:
            log.error(
                "zone {zone}: {problem}; serving serial {serial} from memory only "
                "(after a restart it needs a new transfer)",
                zone=sec.zc.name.to_text(),
                problem=copy_problem,
                serial=version.serial,
            )
        self._publish(sec.view, sec.zc.name, version, change)
        if sec.copy_pending is not None:
            log.info(
                "zone {zone}: serial {serial} applied in place, its copy stored after serving",
                zone=sec.zc.name.to_text(),
                serial=version.serial,
            )
        self._copy_later(sec)
        if self.metrics is not None:
            self.metrics.transfer_in(how, True)
            self.metrics.refreshed(sec.view, sec.zc.name)
        if self._transferred is not None:
            self._transferred(sec.view, sec.zc.name, version.serial, how)
        sec.state, actions = refresh.transfer_done(
            sec.state, time.monotonic(), _timers(version), self._clamp, random.random()
        )
        self._act(sec, actions)
        self.notify_zone(sec.view, sec.zc.name)

    def _transfer_failed(self, failure: Any, sec: _Secondary) -> None:
        why = failure.getErrorMessage()
        served, _ = self._served(sec)
        if self.metrics is not None:
            self.metrics.transfer_in("IXFR" if served is not None else "AXFR", False)
        log.warn(
            "transfer of {zone} failed, {keeps}: {why}",
            zone=sec.zc.name.to_text(),
            keeps=(
                f"serial {served.serial} keeps serving"
                if served is not None
                else "nothing to serve yet (SERVFAIL)"
            ),
            why=why,
        )
        sec.state, actions = refresh.transfer_done(
            sec.state,
            time.monotonic(),
            None,
            self._clamp,
            random.random(),
            f"transfer failed: {why}",
        )
        self._act(sec, actions)


def _fetch(
    zc: ZoneConfig,
    primary: Remote,
    kind: str,
    serial: int,
    timeout: float,
    tsig: tuple[dict[dns.name.Name, dns.tsig.Key] | None, dns.name.Name | None],
) -> list[RR]:
    """Every record of one AXFR or IXFR response from *primary*, in order.

    dnspython's ``xfr`` reads the messages, checks TSIG on each and knows
    where a transfer ends; what they hold is read by ``authd.xfr_in``.
    """
    keyring, keyname = tsig
    rrs: list[RR] = []
    for message in dns.query.xfr(
        primary.address,
        zc.name,
        rdtype=dns.rdatatype.IXFR if kind == "ixfr" else dns.rdatatype.AXFR,
        port=primary.port,
        keyring=keyring,
        keyname=keyname,
        relativize=False,
        timeout=timeout,
        lifetime=timeout,
        serial=serial,
    ):
        for rrset in message.answer:
            ttl = rrset.ttl
            rrs.extend(RR(rrset.name, ttl, rd) for rd in rrset)
        if len(rrs) > zc.max_records + 2:  # an IXFR's SOAs and an AXFR's closing SOA
            raise ValueError(f"more than {zc.max_records} records (max_records): refused")
    return rrs


def _apply_received(
    zc: ZoneConfig, current: ZoneVersion | None, received: xfr_in.Received
) -> tuple[ZoneVersion, tuple[dns.name.Name, ...] | None]:
    """The version a transfer leads to from *current*, and the names it
    changed when every step was applied in place (else None); raises when
    it is refused."""
    owners: dict[dns.name.Name, None] | None = None
    if received.full is not None:
        problem = xfr_in.rrset_limit_problem(received.full, zc.max_records_per_rrset)
        if problem is not None:
            raise ValueError(f"transferred zone refused: {problem}")
        records = [Record(name, ttl, rd, zc.file, 0) for name, ttl, rd in received.full]
        release(received.full)
        # zc.lab_waive: LAB ONLY; a lab secondary takes the broken zone its primary serves.
        result = compile_zone(zc.name, records, zc.file, zc.lab_waive)  # empties records too
    elif received.changesets:
        if current is None:
            raise ValueError("an incremental transfer with no zone to apply it to")
        version = current
        owners = {}
        for cs in received.changesets:
            # ValueError when a step does not fit: the caller falls back to AXFR.
            # In place when it can (a lab's waived checks need the full one).
            applied = None if zc.lab_waive else changeset.apply_incremental(version, cs)
            if applied is not None:
                result = CompileResult(applied.version, ())
                if owners is not None:
                    owners.update(dict.fromkeys(applied.touched))
            else:
                result = changeset.apply(version, cs, zc.lab_waive)
                owners = None
            if result.version is None:
                break
            version = result.version
    else:
        if current is None:
            raise ValueError("an empty transfer with no zone to keep")
        return current, None
    if result.version is None:
        raise ValueError(f"transferred zone refused: {result.errors[0]}")
    if received.full is None:
        problem = xfr_in.applied_rrset_limit_problem(
            result.version, received.changesets, zc.max_records_per_rrset
        )
        if problem is not None:
            raise ValueError(f"transferred zone refused: {problem}")
    # RFC 8976: a transfer whose ZONEMD does not match is not published; the
    # refresh retries it later while the previous version keeps serving.
    mismatch = zonemd.problem(result.version) if zc.zonemd_verify else None
    if mismatch is not None:
        raise ValueError(mismatch)
    return result.version, tuple(owners) if owners is not None else None
