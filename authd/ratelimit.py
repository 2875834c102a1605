"""Response rate limiting (RRL): whether a UDP response goes out, is dropped, or slips.

Owns: the response classes (BIND's and NSD's: an answer is counted per qname
and qtype, or per wildcard that synthesized it; NODATA per qname; a referral
per delegation; NXDOMAIN per zone; every error alike), the client prefixes
(``/24`` and ``/56`` by default), one token bucket per (prefix, class), the
slip count, and the bounded table that holds the buckets.

Semantics: a bucket earns ``rate`` credits a second and banks at most
``rate * window``; a response that finds a credit spends it and goes out; one
that finds none is *limited* and spends nothing, so under a flood the class
still gets about ``rate`` answers a second (NSD's behaviour: BIND lets the
account go ``window`` seconds into debt, which answers a steady flood with
nothing at all).  Of the limited responses every ``slip``-th slips (a short
reply with TC set, so a real client retries over TCP), the others are
dropped; ``slip`` 0 never slips, 1 always does.  TCP is never limited, and
neither are the ``exempt`` clients nor those with a valid server cookie (the
caller decides that).

Invariants: pure (the clock is the ``now`` passed in); the table never holds
more than ``table_entries`` buckets: a new class takes the slot of the least
recently used one, as BIND and NSD reuse their oldest entries, so a flood of
spoofed sources costs a fixed amount of memory.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections import OrderedDict
from dataclasses import dataclass

import dns.name
import dns.rcode

from authd.acl import CompiledAcl
from authd.engine import Answer, State
from authd.limits import (
    DEFAULT_RRL_IPV4_PREFIX,
    DEFAULT_RRL_IPV6_PREFIX,
    DEFAULT_RRL_RESPONSES_PER_SECOND,
    DEFAULT_RRL_SLIP,
    DEFAULT_RRL_TABLE_ENTRIES,
    DEFAULT_RRL_WINDOW,
    RRL_PREFIX_CACHE,
)


class Kind(enum.IntEnum):
    """The response class's kind; which of the three limits applies."""

    ANSWER = 0  # responses_per_second
    NODATA = 1  # responses_per_second
    REFERRAL = 2  # responses_per_second
    NXDOMAIN = 3  # nxdomains_per_second
    ERROR = 4  # errors_per_second (REFUSED, SERVFAIL, FORMERR...)


# A response class without the client: (kind, name in lowercase wire form, qtype).
Token = tuple[int, bytes, int]
ERROR_TOKEN: Token = (Kind.ERROR, b"", 0)


class Verdict(enum.Enum):
    SEND = "send"
    DROP = "drop"
    SLIP = "slip"  # send a truncated reply instead (errors: the error itself)


@dataclass(frozen=True, slots=True)
class Settings:
    """``options.rate_limit``; a per-second limit of 0 means that kind is not limited."""

    responses_per_second: int = DEFAULT_RRL_RESPONSES_PER_SECOND
    errors_per_second: int = DEFAULT_RRL_RESPONSES_PER_SECOND
    nxdomains_per_second: int = DEFAULT_RRL_RESPONSES_PER_SECOND
    window: int = DEFAULT_RRL_WINDOW
    slip: int = DEFAULT_RRL_SLIP
    ipv4_prefix_length: int = DEFAULT_RRL_IPV4_PREFIX
    ipv6_prefix_length: int = DEFAULT_RRL_IPV6_PREFIX
    exempt: CompiledAcl | None = None
    table_entries: int = DEFAULT_RRL_TABLE_ENTRIES

    def numbers(self) -> tuple[int, ...]:
        """Everything but the exempt list: equal numbers keep the buckets across a reload."""
        return (
            self.responses_per_second,
            self.errors_per_second,
            self.nxdomains_per_second,
            self.window,
            self.slip,
            self.ipv4_prefix_length,
            self.ipv6_prefix_length,
            self.table_entries,
        )


@dataclass(frozen=True, slots=True)
class Started:
    """A bucket that just began limiting: what the (rate-limited) log says."""

    prefix: str  # 192.0.2.0/24
    kind: str  # answer, nxdomain...
    name: str  # the class's name, "" for errors


def classify(answer: Answer, qname: bytes, qtype: int) -> Token:
    """The response class of an engine answer; *qname* is lowercase wire form."""
    state = answer.state
    rcode = answer.rcode
    if rcode == dns.rcode.NXDOMAIN or state is State.NXDOMAIN:
        # Every name under one zone that does not exist is one class, so random
        # subdomains do not each get a bucket: keyed on the SOA's owner.
        zone = answer.authority[0].name if answer.authority else dns.name.root
        return (Kind.NXDOMAIN, (zone.to_wire() or b"").lower(), 0)
    if rcode != dns.rcode.NOERROR:
        return ERROR_TOKEN
    if state is State.DELEGATION:
        cut = next((r.name for r in answer.authority if r.rdtype == 2), None)  # NS
        return (Kind.REFERRAL, (cut.to_wire() or b"").lower() if cut is not None else qname, 0)
    if state is State.NODATA:
        return (Kind.NODATA, qname, 0)
    if answer.wildcard is not None:
        return (Kind.ANSWER, (answer.wildcard.to_wire() or b"").lower(), qtype)
    return (Kind.ANSWER, qname, qtype)


def by_rcode(rcode: int, qname: bytes, qtype: int) -> Token:
    """The class of a response built without the engine (CHAOS, header-only errors)."""
    if rcode == dns.rcode.NOERROR:
        return (Kind.ANSWER, qname, qtype)
    if rcode == dns.rcode.NXDOMAIN:
        return (Kind.NXDOMAIN, qname, 0)
    return ERROR_TOKEN


@dataclass(slots=True)
class _Bucket:
    credit: float
    stamp: float  # when credit was last brought up to date
    touched: float  # when the bucket last moved to the recent end of the table
    limited: int = 0  # responses limited since the bucket last had credit
    slips: int = 0  # every limited response ever, so one in ``slip`` slips across refills


_SEND: tuple[Verdict, None] = (Verdict.SEND, None)


class Limiter:
    """The buckets of one configuration; mutable, owned by the snapshots that share it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        r = settings.responses_per_second
        self._rates = (r, r, r, settings.nxdomains_per_second, settings.errors_per_second)
        self._caps = tuple(float(rate * settings.window) for rate in self._rates)
        self._v4 = settings.ipv4_prefix_length
        self._v6 = settings.ipv6_prefix_length
        self._table: OrderedDict[tuple[int, Token], _Bucket] = OrderedDict()
        self._prefixes: dict[str, int] = {}
        # Totals since this limiter was made, for status and metrics.
        self.dropped = 0
        self.slipped = 0

    def __len__(self) -> int:
        return len(self._table)

    def exempt(self, client: str) -> bool:
        acl = self.settings.exempt
        return acl is not None and acl.allows(client)

    def prefix(self, client: str) -> int:
        """*client*'s prefix as one integer (IPv6 ones offset past every IPv4 one)."""
        try:
            return int.from_bytes(socket.inet_pton(socket.AF_INET, client), "big") >> (
                32 - self._v4
            )
        except OSError:
            pass
        try:
            raw = socket.inet_pton(socket.AF_INET6, client.split("%", 1)[0])
        except OSError:
            return -1  # not an address (a test's fake client): one shared bucket set
        if raw[:12] == b"\0" * 10 + b"\xff\xff":  # IPv4-mapped: counted as IPv4
            return int.from_bytes(raw[12:], "big") >> (32 - self._v4)
        return (1 << 32) + (int.from_bytes(raw, "big") >> (128 - self._v6))

    def check(self, client: str, token: Token, now: float) -> tuple[Verdict, Started | None]:
        """Spend a credit for one response of class *token* to *client* at *now*."""
        kind = token[0]
        rate = self._rates[kind]
        if rate == 0:
            return _SEND
        prefixes = self._prefixes
        prefix = prefixes.get(client)
        if prefix is None:
            if len(prefixes) >= RRL_PREFIX_CACHE:
                prefixes.clear()
            prefix = prefixes[client] = self.prefix(client)
        key = (prefix, token)
        table = self._table
        bucket = table.get(key)
        if bucket is None:
            if len(table) >= self.settings.table_entries:
                table.popitem(last=False)  # the least recently used bucket goes
            bucket = table[key] = _Bucket(self._caps[kind], now, now)
        else:
            elapsed = now - bucket.stamp
            if elapsed > 0:
                credit = bucket.credit + elapsed * rate
                cap = self._caps[kind]
                bucket.credit = credit if credit < cap else cap
                bucket.stamp = now
            # Recency to the second is enough to choose which bucket to reuse,
            # and saves reordering the table on every response.
            if now - bucket.touched >= 1.0:
                table.move_to_end(key)
                bucket.touched = now
        if bucket.credit >= 1.0:
            bucket.credit -= 1.0
            bucket.limited = 0
            return _SEND
        bucket.limited += 1
        bucket.slips += 1
        started = self._started(client, token) if bucket.limited == 1 else None
        slip = self.settings.slip
        if slip and bucket.slips % slip == 0:
            self.slipped += 1
            return Verdict.SLIP, started
        self.dropped += 1
        return Verdict.DROP, started

    def _started(self, client: str, token: Token) -> Started:
        try:
            address = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return Started(client, Kind(token[0]).name.lower(), "")
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        length = self._v4 if address.version == 4 else self._v6
        net = ipaddress.ip_network(f"{address}/{length}", strict=False)
        name = dns.name.from_wire(token[1], 0)[0].to_text() if token[1] else ""
        return Started(str(net), Kind(token[0]).name.lower(), name)


def reuse(previous: Limiter | None, settings: Settings | None) -> Limiter | None:
    """The limiter a new snapshot uses: the old buckets when only the exempt list changed."""
    if settings is None:
        return None
    if previous is not None and previous.settings.numbers() == settings.numbers():
        previous.settings = settings
        return previous
    return Limiter(settings)
