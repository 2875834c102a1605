"""The server's counters and the Prometheus endpoint that publishes them.

Owns: ``Metrics``, plain counters the transports, the fleet and the service
bump on the reactor thread (a dict increment per answered query, keyed by the
core's tally key: a string, whose hash is cached), and ``MetricsCollector``,
which turns them into Prometheus metric families only when scraped; ``listen`` serves them with
twisted.web on ``options.metrics``.  Invariants: counting never touches
prometheus_client on the answer path (its locked counters would cost a few
hundred nanoseconds a query); all counting and scraping happen on the reactor
thread, so no lock is needed; every label comes from a bounded set (views
and zones of the config, ``authd.tally``'s question types, rcodes, the
transfer kinds), and the queue of tallies not yet counted is folded once it
holds ``METRICS_FOLD_AT`` (and at every scrape), so the counters' memory is
bounded; the latency histogram times the first answer of each transport
after every ``METRICS_TICK`` (its count says how many were timed, the query
counters how many there were).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dns.name
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from twisted.internet import task
from twisted.logger import Logger
from twisted.web import resource, server

from authd.limits import (
    DEFAULT_UDP_PAYLOAD_MAX,
    MAX_MESSAGE,
    METRICS_FOLD_AT,
    METRICS_TICK,
    NO_EDNS_UDP_LIMIT,
)
from authd.query import Reply, TransferEvent
from authd.tally import Tally, decode

log = Logger(namespace="authd")

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
SIZE_BUCKETS = (64, 128, 256, NO_EDNS_UDP_LIMIT, DEFAULT_UDP_PAYLOAD_MAX, 1500, 4096, MAX_MESSAGE)
TRANSPORTS = ("udp", "tcp")

# The zone status a scrape reads: (view, zone, serial or None, refresh phase or
# None for a primary, seconds since the last good refresh or None, expired)
ZoneRow = tuple[str, str, int | None, str | None, float | None, bool]
# Signed zones' earliest RRSIG expiry (view, zone) -> epoch seconds: DNSSEC
# signing is not built yet; the service passes a source that returns {}.
ExpirySource = Callable[[], dict[tuple[str, str], float]]


class TransportCounts:
    """What one transport answered.

    The answer path appends each reply's tally to ``pending`` (a list append
    is the cheapest thing Python does: a third of a dict increment) and times
    an answer when ``time_next`` is set; ``Metrics.tick`` folds the queue into
    ``tallies`` and sets the flag again.
    """

    __slots__ = ("latency", "latency_sum", "pending", "tallies", "time_next")

    def __init__(self) -> None:
        # By tally key; None counts the queries dropped (no reply sent).
        self.tallies: Counter[str | None] = Counter()
        self.pending: list[str | None] = []
        self.time_next = False
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def count(self, reply: Reply) -> None:
        self.pending.append(reply.tally)  # the key carries the size too

    def fold(self) -> None:
        if self.pending:
            self.tallies.update(self.pending)
            self.pending.clear()

    def timed(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)  # the UDP path reads the wall clock: it may step back
        self.latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def decoded(self) -> list[tuple[Tally, int]]:
        self.fold()
        return [(decode(k), n) for k, n in self.tallies.items() if k is not None]

    def dropped(self) -> int:
        self.fold()
        return self.tallies.get(None, 0)

    def all_sizes(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for t, n in self.decoded():
            out[t.size] = out.get(t.size, 0) + n
        return out


class Metrics:
    """Every counter the server keeps; bumped on the reactor thread."""

    def __init__(self) -> None:
        self.transports = {t: TransportCounts() for t in TRANSPORTS}
        self._ticker: Any = None
        self.tcp_refused: defaultdict[str, int] = defaultdict(int)
        self.tcp_evicted = 0  # waiting connections closed at the limit for a new one
        self.tsig_rejected: defaultdict[str, int] = defaultdict(int)  # by TSIG error
        self.notify_refused = 0  # NOTIFYs we did not accept (logged, rate-limited)
        self.query_refused: defaultdict[str, int] = defaultdict(int)  # by ACL: no-view, allow-query
        self.transfers_out: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.transfers_in: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.notify: defaultdict[str, int] = defaultdict(int)  # sent, acked, failed
        self.reloads: defaultdict[str, int] = defaultdict(int)  # ok, refused, failed
        self.zones_refused = 0  # zones a reload kept old or failed
        self.last_refresh: dict[tuple[str, dns.name.Name], float] = {}  # wall clock

    def tick(self) -> None:
        """Every ``METRICS_TICK``: time the next answers; fold a long queue."""
        for tc in self.transports.values():
            tc.time_next = True
            if len(tc.pending) >= METRICS_FOLD_AT:
                tc.fold()

    def start(self, reactor: Any) -> None:
        self._ticker = task.LoopingCall(self.tick)
        self._ticker.clock = reactor
        self._ticker.start(METRICS_TICK, now=True)

    def transfer_out(self, event: TransferEvent) -> None:
        kind, _, result = event.kind.partition("-")
        if kind in ("axfr", "ixfr") and event.serial is not None:
            self.transfers_out[(kind, result or "full")] += 1
        else:
            self.transfers_out[("refused", event.kind)] += 1

    def transfer_in(self, how: str | None, ok: bool) -> None:
        kind = "ixfr" if how is not None and how.startswith("IXFR") else "axfr"
        if how is None:
            kind = "unknown"
        self.transfers_in[(kind, "success" if ok else "failure")] += 1

    def refreshed(self, view: str, zone: dns.name.Name) -> None:
        self.last_refresh[(view, zone)] = time.time()

    def queries(self) -> dict[tuple[str, str, str, str, str], int]:
        """Queries by (transport, view, zone, qtype, rcode)."""
        out: defaultdict[tuple[str, str, str, str, str], int] = defaultdict(int)
        for name, tc in self.transports.items():
            for t, n in tc.decoded():
                out[(name, t.view, t.zone, t.qtype, t.rcode)] += n
        return dict(out)

    def cache_hits(self, transport: str) -> int:
        return sum(n for t, n in self.transports[transport].decoded() if t.cached)

    def truncated(self, transport: str) -> int:
        return sum(n for t, n in self.transports[transport].decoded() if t.truncated)

    def as_json(self) -> dict[str, Any]:
        """The counters for ``authd ctl status --json``."""
        by_rcode: defaultdict[str, int] = defaultdict(int)
        by_qtype: defaultdict[str, int] = defaultdict(int)
        by_zone: defaultdict[str, int] = defaultdict(int)
        by_transport: defaultdict[str, int] = defaultdict(int)
        for (transport, _view, zone, qtype, rcode), n in self.queries().items():
            by_rcode[rcode] += n
            by_qtype[qtype] += n
            by_zone[zone] += n
            by_transport[transport] += n
        detail = [
            {
                "transport": k[0],
                "view": k[1],
                "zone": k[2],
                "qtype": k[3],
                "rcode": k[4],
                "count": n,
            }
            for k, n in sorted(self.queries().items())
        ]
        sizes = {}
        latency = {}
        for name, tc in self.transports.items():
            counts = [0] * (len(SIZE_BUCKETS) + 1)
            for size, n in tc.all_sizes().items():
                counts[bisect.bisect_left(SIZE_BUCKETS, size)] += n
            sizes[name] = dict(_buckets(SIZE_BUCKETS, counts))
            latency[name] = dict(_buckets(LATENCY_BUCKETS, tc.latency))
        return {
            "queries": sum(by_transport.values()),
            "queries_detail": detail,
            "response_size_buckets": sizes,
            "answer_latency_buckets_sampled": latency,
            "queries_by_transport": dict(by_transport),
            "queries_by_rcode": dict(by_rcode),
            "queries_by_qtype": dict(by_qtype),
            "queries_by_zone": dict(by_zone),
            "answer_cache_hits": sum(self.cache_hits(t) for t in TRANSPORTS),
            "dropped": sum(self.transports[t].dropped() for t in TRANSPORTS),
            "truncated": sum(self.truncated(t) for t in TRANSPORTS),
            "tcp_refused": dict(self.tcp_refused),
            "tcp_evicted": self.tcp_evicted,
            "tsig_rejected": dict(self.tsig_rejected),
            "notify_refused": self.notify_refused,
            "queries_refused_by_acl": dict(self.query_refused),
            "transfers_out": {f"{k}/{r}": n for (k, r), n in self.transfers_out.items()},
            "transfers_in": {f"{k}/{r}": n for (k, r), n in self.transfers_in.items()},
            "notify": dict(self.notify),
            "reloads": dict(self.reloads),
            "reload_zones_refused": self.zones_refused,
        }


class MetricsCollector:
    """A prometheus_client collector reading ``Metrics`` and the zones' state when scraped."""

    def __init__(
        self,
        metrics: Metrics,
        zones: Callable[[], list[ZoneRow]],
        connections: Callable[[], int],
        stall: Callable[[], float | None],
        expiry: ExpirySource,
    ) -> None:
        self._m = metrics
        self._zones = zones
        self._connections = connections
        self._stall = stall
        self._expiry = expiry

    def collect(self) -> Iterator[Metric]:
        m = self._m
        q = CounterMetricFamily(
            "authd_queries",
            "Queries answered, by transport, view, zone, question type and rcode",
            labels=["transport", "view", "zone", "qtype", "rcode"],
        )
        for labels, n in sorted(m.queries().items()):
            q.add_metric(list(labels), n)
        yield q
        hits = CounterMetricFamily(
            "authd_answer_cache_hits", "Answers served from the answer cache", labels=["transport"]
        )
        trunc = CounterMetricFamily(
            "authd_responses_truncated", "Responses sent with TC set", labels=["transport"]
        )
        sizes = HistogramMetricFamily(
            "authd_response_size_bytes", "Size of the responses sent", labels=["transport"]
        )
        latency = HistogramMetricFamily(
            "authd_answer_latency_seconds",
            f"Time from a query read to its answer written, one answer timed a {METRICS_TICK:g} s",
            labels=["transport"],
        )
        for name in TRANSPORTS:
            tc = m.transports[name]
            hits.add_metric([name], m.cache_hits(name))
            trunc.add_metric([name], m.truncated(name))
            size_counts = [0] * (len(SIZE_BUCKETS) + 1)
            total = 0
            for size, n in tc.all_sizes().items():
                size_counts[bisect.bisect_left(SIZE_BUCKETS, size)] += n
                total += size * n
            sizes.add_metric([name], _buckets(SIZE_BUCKETS, size_counts), total)
            latency.add_metric([name], _buckets(LATENCY_BUCKETS, tc.latency), tc.latency_sum)
        dropped = CounterMetricFamily(
            "authd_queries_dropped",
            "Messages answered with nothing (too short to answer, or a response)",
            labels=["transport"],
        )
        for name in TRANSPORTS:
            dropped.add_metric([name], m.transports[name].dropped())
        yield dropped
        yield hits
        yield trunc
        yield sizes
        yield latency
        yield GaugeMetricFamily(
            "authd_tcp_connections", "TCP connections open", value=self._connections()
        )
        refused = CounterMetricFamily(
            "authd_tcp_connections_refused", "TCP connections refused", labels=["reason"]
        )
        for reason, n in sorted(m.tcp_refused.items()):
            refused.add_metric([reason], n)
        yield refused
        yield CounterMetricFamily(
            "authd_tcp_connections_evicted",
            "Waiting TCP connections closed at the connection limit to admit a new one",
            value=m.tcp_evicted,
        )
        tsig = CounterMetricFamily(
            "authd_tsig_rejected", "Requests refused for their TSIG, by error", labels=["error"]
        )
        for error, n in sorted(m.tsig_rejected.items()):
            tsig.add_metric([error], n)
        yield tsig
        yield CounterMetricFamily(
            "authd_notify_refused",
            "NOTIFY messages received and not accepted",
            value=m.notify_refused,
        )
        for family, doc, table in (
            (
                "authd_transfers_out",
                "Zone transfers asked of us, by kind and result",
                m.transfers_out,
            ),
            ("authd_transfers_in", "Zone transfers we made, by kind and result", m.transfers_in),
        ):
            c = CounterMetricFamily(family, doc, labels=["kind", "result"])
            for (kind, result), count in sorted(table.items()):
                c.add_metric([kind, result], count)
            yield c
        for what, doc in (
            ("sent", "NOTIFY messages sent"),
            ("acked", "NOTIFY messages acknowledged"),
            ("failed", "NOTIFY messages that got no good answer after their retries"),
        ):
            yield CounterMetricFamily(f"authd_notify_{what}", doc, value=m.notify.get(what, 0))
        reloads = CounterMetricFamily("authd_reloads", "Reloads, by result", labels=["result"])
        for result in ("ok", "refused", "failed"):
            reloads.add_metric([result], m.reloads.get(result, 0))
        yield reloads
        yield CounterMetricFamily(
            "authd_reload_zones_refused",
            "Zones a reload kept old or failed to load",
            value=m.zones_refused,
        )
        stall = self._stall()
        if stall is not None:
            yield GaugeMetricFamily(
                "authd_reload_reactor_stall_seconds",
                "The longest reactor stall of the last reload",
                value=stall,
            )
        yield from self._zone_families()

    def _zone_families(self) -> Iterator[Metric]:
        serial = GaugeMetricFamily("authd_zone_serial", "Serial served", labels=["view", "zone"])
        state = GaugeMetricFamily(
            "authd_secondary_refresh_state",
            "A secondary zone's refresh phase (1 for the current one)",
            labels=["view", "zone", "phase"],
        )
        since = GaugeMetricFamily(
            "authd_secondary_seconds_since_refresh",
            "Seconds since a secondary zone last refreshed from its primaries",
            labels=["view", "zone"],
        )
        expired = GaugeMetricFamily(
            "authd_secondary_expired",
            "1 when a secondary zone has expired",
            labels=["view", "zone"],
        )
        for view, zone, zserial, phase, age, gone in self._zones():
            if zserial is not None:
                serial.add_metric([view, zone], zserial)
            if phase is not None:
                state.add_metric([view, zone, phase], 1)
                expired.add_metric([view, zone], 1 if gone else 0)
                if age is not None:
                    since.add_metric([view, zone], age)
        yield serial
        yield state
        yield since
        yield expired
        expiry = GaugeMetricFamily(
            "authd_signature_expiry_timestamp_seconds",
            "A signed zone's earliest RRSIG expiry (Unix time)",
            labels=["view", "zone"],
        )
        for (view, zone), when in sorted(self._expiry().items()):
            expiry.add_metric([view, zone], when)
        yield expiry


def _buckets(bounds: Iterable[float], counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs from per-bucket *counts* (the last one is +Inf)."""
    out = []
    running = 0
    for bound, n in zip(bounds, counts, strict=False):
        running += n
        out.append((_le(bound), float(running)))
    running += counts[-1]
    out.append(("+Inf", float(running)))
    return out


def _le(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else repr(bound)


class MetricsPage(resource.Resource):
    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        if request.path not in (b"/metrics", b"/"):
            request.setResponseCode(404)
            return b"not found: the metrics are at /metrics\n"
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self._registry)


def registry_for(collector: MetricsCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return registry


def listen(reactor: Any, address: str, port: int, registry: CollectorRegistry) -> Any:
    """Serve *registry* over HTTP at ``http://address:port/metrics``; the listening port."""
    site = server.Site(MetricsPage(registry))
    site.noisy = False
    site.displayTracebacks = False
    return reactor.listenTCP(port, site, interface=address)
