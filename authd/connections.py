"""TCP connection admission: the global limit, the per-client limit, and who gives way.

Owns the policy that a slow or greedy client meets when connections run out
(RFC 7766 section 6.2.3 leaves it to the server).  A new connection is
admitted while there is room; at the global limit the connection that has been
idle longest (nothing half-received, nothing being sent) is closed to make
room, so clients that hold connections open without using them cannot lock
out new ones; failing that, the one whose half-received message began
longest ago (a slowloris sending a byte at a time); a connection sending
answers or a transfer never gives way, and when all are sending, the new
one is refused.  One
client (an IPv4 address, or an IPv6 /64, the unit one host controls) may hold
at most ``per_client`` connections.

Pure: the adapter passes opaque connection keys and client addresses, and
carries out the eviction it is told about.  Invariant: a connection is in
the table from ``admit`` until ``release``; the idle ones are kept in the order
they became idle, so the longest idle is found in O(1).
"""

from __future__ import annotations

import enum
import ipaddress
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass

IPV6_CLIENT_PREFIX = 64  # an IPv6 client is its /64: one host often holds the whole prefix


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    CLIENT_LIMIT = "client-limit"  # this client already holds per_client connections
    FULL = "full"  # every connection is sending: none could give way


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    evicted: Hashable | None = None  # the idle connection closed to make room


def client_key(address: str) -> str:
    """The unit the per-client limit counts: the address, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


class ConnectionTable:
    """Who holds a connection, and which are idle (oldest first)."""

    def __init__(self, limit: int, per_client: int) -> None:
        self.limit = limit
        self.per_client = per_client
        self._client: dict[Hashable, str] = {}
        self._idle: dict[Hashable, None] = {}  # insertion order: longest idle first
        self._receiving: dict[Hashable, None] = {}  # longest-pending message first
        self._per_client: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._client)

    def admit(self, conn: Hashable, address: str) -> Admission:
        """Admit *conn* from *address* (idle until it receives), perhaps evicting another."""
        client = client_key(address)
        if self._per_client[client] >= self.per_client:
            return Admission(Verdict.CLIENT_LIMIT)
        evicted: Hashable | None = None
        if len(self._client) >= self.limit:
            waiting = self._idle or self._receiving
            if not waiting:
                return Admission(Verdict.FULL)
            evicted = next(iter(waiting))
            self.release(evicted)
        self._client[conn] = client
        self._per_client[client] += 1
        self._idle[conn] = None
        return Admission(Verdict.ADMITTED, evicted)

    def sending(self, conn: Hashable) -> None:
        """*conn* has answers or a transfer on the way out: it must not give way."""
        self._idle.pop(conn, None)
        self._receiving.pop(conn, None)

    def receiving(self, conn: Hashable) -> None:
        """*conn* has a message half-received (a no-op if that message was seen already)."""
        if conn in self._client and conn not in self._receiving:
            self._idle.pop(conn, None)
            self._receiving[conn] = None

    def idle(self, conn: Hashable) -> None:
        """*conn* has nothing outstanding (a no-op if it was idle already)."""
        if conn in self._client and conn not in self._idle:
            self._receiving.pop(conn, None)
            self._idle[conn] = None

    def release(self, conn: Hashable) -> None:
        """*conn* is gone (closed by either side, or evicted)."""
        client = self._client.pop(conn, None)
        if client is None:
            return
        self._idle.pop(conn, None)
        self._receiving.pop(conn, None)
        self._per_client[client] -= 1
        if not self._per_client[client]:
            del self._per_client[client]

    def holds(self, conn: Hashable) -> bool:
        return conn in self._client

    def held(self) -> list[Hashable]:
        """Every connection in the table (a copy: closing them changes the table)."""
        return list(self._client)
