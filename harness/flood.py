"""A paced UDP query sender that tallies what comes back, for RRL tests and benches.

Each stream sends one query from its own source address (any 127.0.0.0/8
address works on Linux loopback) at a fixed rate for a bounded time, and
counts the replies: full answers, truncated ones (TC, RRL's slip), BADCOOKIE,
and the bytes both ways.  Queries get fresh IDs so replies match streams by
socket alone; a reply that never comes is simply not counted.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

BADCOOKIE_LOW = 23 & 0xF  # the header's half of rcode 23 (RFC 7873)


@dataclass(slots=True)
class Stream:
    source: str  # the address to send from
    wire: bytes  # the query (its ID is overwritten)
    rate: float  # queries a second
    sent: int = 0
    bytes_out: int = 0
    answered: int = 0  # replies without TC (and not BADCOOKIE)
    truncated: int = 0  # replies with TC set
    badcookie: int = 0
    bytes_in: int = 0
    sizes: list[int] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.answered + self.truncated + self.badcookie


@dataclass(frozen=True, slots=True)
class Result:
    streams: tuple[Stream, ...]
    seconds: float  # from the first query to the last


def flood(
    host: str, port: int, streams: Sequence[Stream], seconds: float, settle: float = 1.0
) -> Result:
    """Send every stream at its rate for *seconds*, then collect replies for *settle* more."""
    socks = []
    for s in streams:
        sock = socket.socket(
            socket.AF_INET6 if ":" in s.source else socket.AF_INET, socket.SOCK_DGRAM
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((s.source, 0))
        sock.setblocking(False)
        socks.append(sock)
    by_fd = {sock.fileno(): (sock, s) for sock, s in zip(socks, streams, strict=True)}
    start = time.monotonic()
    end = start + seconds
    last_send = start
    qid = 0
    try:
        while True:
            now = time.monotonic()
            if now < end:
                for sock, s in zip(socks, streams, strict=True):
                    due = min(int(s.rate * (now - start)) + 1, int(s.rate * seconds))
                    while s.sent < due:
                        qid = (qid + 1) & 0xFFFF
                        wire = qid.to_bytes(2, "big") + s.wire[2:]
                        try:
                            sock.sendto(wire, (host, port))
                        except BlockingIOError:
                            break
                        s.sent += 1
                        s.bytes_out += len(wire)
                        last_send = now
            elif now > end + settle:
                break
            ready, _, _ = select.select(list(by_fd), [], [], 0.0005 if now < end else 0.05)
            for fd in ready:
                sock, s = by_fd[fd]
                while True:
                    try:
                        data = sock.recv(65535)
                    except BlockingIOError:
                        break
                    s.bytes_in += len(data)
                    s.sizes.append(len(data))
                    if len(data) >= 4 and data[2] & 0x02:
                        s.truncated += 1
                    elif len(data) >= 4 and data[3] & 0xF == BADCOOKIE_LOW:
                        s.badcookie += 1
                    else:
                        s.answered += 1
    finally:
        for sock in socks:
            sock.close()
    return Result(tuple(streams), max(last_send - start, 1e-3))
