"""UDP and TCP transports (RFC 1035 section 4.2, RFC 7766) for the core.

Owns: datagrams and TCP framing, pipelining, the idle timeout, the message
deadline, the connection limits (policy in ``authd.connections``), and
back-pressure.  Invariants: a TCP connection holds at most one partial message
(2 + 65,535 bytes) plus what a single read delivered, and a partial message
must complete within ``tcp_io_timeout`` of its first byte, so a client sending
a byte at a time cannot hold a connection (slowloris); when a client stops
reading, we stop reading from it (the transport pauses us as a producer), so
its answers cannot pile up without bound.  Every UDP socket gets the receive
and send buffers of ``options.udp_receive_buffer``/``udp_send_buffer`` (as
NSD: forced past ``net.core.rmem_max`` when we may, else as large as the
kernel allows, and logged), so a burst of queries queues instead of being
dropped.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time
from collections.abc import Callable, Iterator
from typing import Any

import dns.rcode
from twisted.internet import interfaces, protocol, udp
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from authd import wire
from authd.adapters.logs import LogLimit
from authd.adapters.metrics import Metrics, TransportCounts
from authd.connections import ConnectionTable, Verdict
from authd.limits import HEADER_LEN, TCP_LISTEN_BACKLOG, UDP_MAX_QUERY
from authd.query import Reply, Request, Transport, handle
from authd.snapshot import Snapshot

log = Logger(namespace="authd")

SnapshotSource = Callable[[], Snapshot]
ReplyHook = Callable[[Reply], None]


def _safe_handle(request: Request, snapshot: Snapshot) -> Reply:
    """The core, with a last line of defence: a bug answers SERVFAIL, never crashes."""
    try:
        return handle(request, snapshot)
    except Exception:
        log.failure("internal error answering a query from {client}", client=request.client)
        out = wire.header_only(request.wire, dns.rcode.SERVFAIL)
        return Reply((out,) if out is not None else ())


def bound_socket(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A non-blocking socket bound to *address* and *port*, for the reactor to adopt.

    IPv6 sockets get IPV6_V6ONLY: without it (Linux's default) a socket on
    ``::`` also takes IPv4 for the port, so ``0.0.0.0`` and ``::`` on one port
    collide ("Address already in use"), and IPv4 clients would appear as
    ``::ffff:a.b.c.d`` to the ACLs.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(TCP_LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        what = "TCP" if kind == socket.SOCK_STREAM else "UDP"
        raise OSError(e.errno, f"{address} port {port} ({what}): {e.strerror}") from None
    return sock


def listen_ipv6(reactor: Any, address: str, port: int, udp: Any, tcp: Any) -> tuple[Any, Any]:
    """Listen on an IPv6 address with IPV6_V6ONLY set: (the UDP port, the TCP port)."""
    usock = bound_socket(address, port, socket.SOCK_DGRAM)
    try:
        tsock = bound_socket(address, port, socket.SOCK_STREAM)
    except OSError:
        usock.close()
        raise
    try:
        # The reactor dup()s the descriptors; ours are closed either way.
        uport = UdpPort._fromListeningDescriptor(
            reactor, usock.fileno(), socket.AF_INET6, udp, maxPacketSize=UDP_MAX_QUERY
        )
        uport.startListening()
        tport = reactor.adoptStreamPort(tsock.fileno(), socket.AF_INET6, tcp)
    finally:
        usock.close()
        tsock.close()
    return uport, tport


# Linux's "ignore rmem_max/wmem_max" variants (CAP_NET_ADMIN); Python names neither.
_SO_SNDBUFFORCE = 32
_SO_RCVBUFFORCE = 33


def _size_buffer(sock: socket.socket, option: int, force: int, size: int) -> int:
    """Set one socket buffer to *size* bytes, as NSD does; what the kernel then reports.

    The forcing variant first (it passes the sysctl cap when we hold
    CAP_NET_ADMIN), then the plain one, which the kernel silently caps at
    ``net.core.rmem_max``/``wmem_max``.  Linux reports twice the size it
    was given (the bookkeeping share), so a full size reads back as 2 x *size*.
    """
    if size > 0:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, size)
            except OSError:
                pass  # the kernel's default stays; the caller logs what we got
    return int(sock.getsockopt(socket.SOL_SOCKET, option))


def size_udp_buffers(sock: socket.socket, receive: int, send: int) -> tuple[int, int]:
    """Size *sock*'s receive and send buffers; the (receive, send) bytes the kernel reports."""
    got_receive = _size_buffer(sock, socket.SO_RCVBUF, _SO_RCVBUFFORCE, receive)
    got_send = _size_buffer(sock, socket.SO_SNDBUF, _SO_SNDBUFFORCE, send)
    return got_receive, got_send


class UdpServer(protocol.DatagramProtocol):
    def __init__(
        self,
        snapshot: SnapshotSource,
        local: str,
        on_reply: ReplyHook,
        buffers: tuple[int, int] = (0, 0),
    ) -> None:
        self._snapshot = snapshot
        self._local = local
        self._on_reply = on_reply
        self.counts: TransportCounts | None = None  # metrics on: what UDP answered
        self._buffers = buffers  # (receive, send) bytes asked for; 0: the kernel's default
        self.buffer_sizes = (0, 0)  # what the kernel reports once listening

    def snapshot(self) -> Snapshot:
        """The snapshot answering now (its lean path, authd.fastpath, first)."""
        return self._snapshot()

    def startProtocol(self) -> None:  # noqa: N802
        sock = self.transport.socket  # type: ignore[union-attr]
        receive, send = self._buffers
        self.buffer_sizes = size_udp_buffers(sock, receive, send)
        got_receive, got_send = self.buffer_sizes
        # Below twice what was asked: capped by net.core.rmem_max/wmem_max
        # (no CAP_NET_ADMIN); a burst larger than the buffer will be dropped.
        short = [
            f"{what} {got // 2} of {asked} bytes (raise net.core.{sysctl})"
            for what, got, asked, sysctl in (
                ("receive", got_receive, receive, "rmem_max"),
                ("send", got_send, send, "wmem_max"),
            )
            if asked and got < 2 * asked
        ]
        port = self.transport.getHost().port  # type: ignore[union-attr]
        if short:
            log.warn(
                "UDP {address} port {port}: socket buffers smaller than configured: {short}",
                address=self._local,
                port=port,
                short="; ".join(short),
            )
        else:
            # The kernel's own figures: twice the setting (its bookkeeping share).
            log.info(
                "UDP {address} port {port}: socket buffers SO_RCVBUF {receive}, "
                "SO_SNDBUF {send} bytes",
                address=self._local,
                port=port,
                receive=got_receive,
                send=got_send,
            )

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: N802
        counts = self.counts
        now = time.time()
        request = Request(data, addr[0], self._local, Transport.UDP, now, addr[1])
        reply = _safe_handle(request, self._snapshot())
        sock = self.transport.socket  # type: ignore[union-attr]
        for message in reply.messages:
            # Straight to the socket: the address came from recvfrom, so
            # Twisted's per-write address checks would only cost time.
            try:
                sock.sendto(message, addr)
            except OSError:
                pass  # a full send buffer or an ICMP error: UDP may drop, as Twisted would
        if counts is not None:
            # Metrics on: a list append (folded into the counts each tick), and
            # the first answer after each tick timed.
            counts.pending.append(reply.tally)
            if counts.time_next:
                counts.time_next = False
                counts.timed(time.time() - now)
        if reply.reportable:
            self._on_reply(reply)


class UdpPort(udp.Port):
    """Twisted's UDP port, whose read loop answers plain queries itself.

    Each datagram goes first to the snapshot's lean path (authd.fastpath:
    bytes in, bytes out), read once per wake-up since snapshots are swapped
    on this same thread; whatever it declines goes to
    ``UdpServer.datagramReceived`` as Twisted would deliver it.  This skips,
    per query, Twisted's dispatch and the building of a Request and a Reply.
    """

    protocol: UdpServer

    def doRead(self) -> None:  # noqa: N802
        server = self.protocol
        snapshot = server.snapshot()
        fast = snapshot.fast
        if fast is None:
            super().doRead()
            return
        # The front cache (exact query bytes) read right here: a hit, most of a
        # busy server's traffic, costs a slice, a lookup and a send.
        front = snapshot.front
        slots, values, ref = front.parts() if front is not None else ({}, [], bytearray())
        lookup = slots.get
        recvfrom = self.socket.recvfrom
        sendto = self.socket.sendto
        size = self.maxPacketSize
        most = self.maxThroughput
        six = self.addressFamily == socket.AF_INET6
        read = 0
        while read < most:
            try:
                data, addr = recvfrom(size)
            except OSError as e:
                if e.args[0] in udp._sockErrReadIgnore or e.args[0] in udp._sockErrReadRefuse:
                    return
                raise
            read += len(data)
            slot = lookup(data[2:])  # authd.query.front_key for UDP
            if slot is not None:
                ref[slot] = 1
                out: bytes | None = data[:2] + values[slot][0]
            else:
                try:
                    out = fast(data, True, True)
                except Exception:
                    out = None  # the full path answers, or says why it cannot
            if out is not None:
                try:
                    sendto(out, addr)
                except OSError:
                    pass  # a full send buffer or an ICMP error: UDP may drop
                continue
            try:
                server.datagramReceived(data, addr[:2] if six else addr)
            except BaseException:
                log.failure("UDP datagram from {client}", client=addr[0])
            if server.snapshot() is not snapshot:
                return  # what it did published a snapshot: the reactor calls again


def listen_udp(reactor: Any, port: int, server: UdpServer, address: str) -> UdpPort:
    """Listen on an IPv4 address with authd's UDP port (reactor.listenUDP's steps)."""
    p = UdpPort(port, server, address, UDP_MAX_QUERY, reactor)
    p.startListening()
    return p


def _unsent(transport: object) -> int:
    """Bytes not yet delivered to the peer: Twisted's buffer plus the kernel's send queue."""
    queued = len(getattr(transport, "dataBuffer", b"")) + getattr(transport, "_tempDataLen", 0)
    try:
        fd = transport.fileno()  # type: ignore[attr-defined]
        raw = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ on Linux
        queued += struct.unpack("i", raw)[0]
    except (AttributeError, OSError, ValueError):
        pass
    return queued


@implementer(interfaces.IPushProducer, interfaces.IHalfCloseableProtocol)
class TcpConnection(protocol.Protocol, TimeoutMixin):
    """One client connection: length-prefixed queries, answered in arrival order."""

    def __init__(self, factory: TcpFactory) -> None:
        self._factory = factory
        self._buffer = bytearray()
        self._client = ""
        self._port = 0
        self._stream: Iterator[bytes] | None = None  # a zone transfer being sent
        self._write_paused = False
        self._read_closed = False  # the client half-closed: answer, then close
        self._unsent_at_timeout = -1
        self._deadline: Any = None  # the pending message's tcp_io_timeout call

    def connectionMade(self) -> None:  # noqa: N802
        f = self._factory
        peer = self.transport.getPeer()  # type: ignore[union-attr]
        self._client, self._port = peer.host, peer.port
        admission = f.connections.admit(self, self._client)
        if admission.evicted is not None:
            # The longest idle (or slowest) connection gives way, so a new client gets in.
            victim = admission.evicted
            if f.metrics is not None:
                f.metrics.tcp_evicted += 1
            if f.log_limit.allow("TCP connection limit"):
                log.warn(
                    "TCP connection limit {limit} reached: closed a waiting connection "
                    "from {victim} for one from {client}",
                    limit=f.connections.limit,
                    victim=victim._client,  # type: ignore[attr-defined]
                    client=self._client,
                )
            victim.transport.abortConnection()  # type: ignore[attr-defined]
        if admission.verdict is not Verdict.ADMITTED:
            if f.metrics is not None:
                f.metrics.tcp_refused[admission.verdict.value] += 1
            if f.log_limit.allow(f"TCP {admission.verdict.value}"):
                log.warn(
                    "TCP connection from {client} refused: {why}",
                    client=self._client,
                    why=(
                        f"it already holds {f.connections.per_client} connections"
                        if admission.verdict is Verdict.CLIENT_LIMIT
                        else f"all {f.connections.limit} connections are sending answers"
                    ),
                )
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.setTimeout(f.idle_timeout)
        # Registering as the producer of our own transport lets it pause us
        # when the client does not read its answers (see pauseProducing).
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.resetTimeout()
        buf = self._buffer
        buf += data
        f = self._factory
        self._answer_complete_messages(buf, f)
        self._settle()

    def _answer_complete_messages(self, buf: bytearray, f: TcpFactory) -> None:
        while len(buf) >= 2 and self._stream is None:
            length = (buf[0] << 8) | buf[1]
            if length < HEADER_LEN:
                # RFC 7766 section 8: nothing we can answer; stop listening to garbage.
                self.transport.abortConnection()  # type: ignore[union-attr]
                return
            if len(buf) < 2 + length:
                break
            message = bytes(buf[2 : 2 + length])
            del buf[: 2 + length]
            self._cancel_deadline()  # this message is complete; the next has its own
            self._factory.connections.idle(self)  # so the next one queues afresh
            snapshot = f.snapshot()
            fast = snapshot.fast
            if fast is not None:
                # A plain query (authd.fastpath), as over UDP; never a transfer.
                try:
                    quick = fast(message, False)
                except Exception:
                    quick = None
                if quick is not None:
                    self.transport.write(len(quick).to_bytes(2, "big") + quick)  # type: ignore[union-attr]
                    continue
            counts = f.counts
            timed = counts is not None and counts.time_next  # as over UDP
            if timed:
                counts.time_next = False  # type: ignore[union-attr]
            began = time.perf_counter() if timed else 0.0
            request = Request(
                message, self._client, f.local, Transport.TCP, time.time(), self._port
            )
            reply = _safe_handle(request, snapshot)
            for out in reply.messages:
                self.transport.write(len(out).to_bytes(2, "big") + out)  # type: ignore[union-attr]
            if counts is not None:
                counts.count(reply)
                if timed:
                    counts.timed(time.perf_counter() - began)
            if reply.reportable:
                f.on_reply(reply)
            if not self.transport or not self.connected:
                return
            if reply.stream is not None:
                # A transfer: stop reading queries until its last message is out,
                # and send it a message at a time so other clients are served too.
                self._stream = reply.stream
                self.transport.pauseProducing()  # type: ignore[union-attr]
                f.call_later(0, self._pump)
                return

    def close_when_done(self) -> None:
        """Shutting down: read no more queries; close once what is owed is sent.

        A transfer in flight is finished first (``_pump`` closes after its last
        message, as after a half-close); answers already written are flushed
        by ``loseConnection``.
        """
        self._read_closed = True
        self._buffer = bytearray()  # a query not yet whole is never answered
        self._cancel_deadline()
        if self._stream is None:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def _settle(self) -> None:
        """After reading: start the message deadline, and tell the table if we are idle."""
        if not self.connected or not self._factory.connections.holds(self):
            return
        reading = self._stream is None and not self._write_paused
        if self._buffer and reading:
            if self._deadline is None:
                f = self._factory
                self._deadline = f.call_later(f.io_timeout, self._too_slow)
        else:
            self._cancel_deadline()
        table = self._factory.connections
        if self._stream is not None or self._write_paused:
            table.sending(self)
        elif self._buffer:
            table.receiving(self)
        else:
            table.idle(self)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        f = self._factory
        if f.log_limit.allow("TCP io timeout"):
            log.warn(
                "TCP message from {client} not complete within {timeout:g} s of its first "
                "byte; closing",
                client=self._client,
                timeout=f.io_timeout,
            )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _pump(self) -> None:
        if self._stream is None or self._write_paused or not self.connected:
            return
        try:
            out = next(self._stream, None)
        except Exception:
            log.failure("zone transfer to {client} failed", client=self._client)
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        if out is None:
            self._stream = None
            if self._read_closed:
                if self._buffer:
                    self.dataReceived(b"")
                if self._stream is None:
                    self.transport.loseConnection()  # type: ignore[union-attr]
                return
            self.transport.resumeProducing()  # type: ignore[union-attr]
            if self._buffer:
                self.dataReceived(b"")
            else:
                self._settle()
            return
        self.resetTimeout()
        self.transport.write(len(out).to_bytes(2, "big") + out)  # type: ignore[union-attr]
        self._factory.call_later(0, self._pump)

    def timeoutConnection(self) -> None:  # noqa: N802
        # RFC 7828 3.2.1: idle means nothing outstanding.  Answers still being
        # delivered keep the connection, as long as the client keeps reading.
        unsent = _unsent(self.transport)
        if (unsent or self._stream is not None) and unsent != self._unsent_at_timeout:
            self._unsent_at_timeout = unsent
            self.setTimeout(self._factory.idle_timeout)  # the mixin's timer has fired: re-arm
            return
        # abort, not lose: a client that stopped reading would hold a lose open.
        self.transport.abortConnection()  # type: ignore[union-attr]

    # IHalfCloseableProtocol: a client may send its queries, then shut down its
    # side; RFC 1035 4.2.2 wants its answers delivered before we close.
    def readConnectionLost(self) -> None:  # noqa: N802
        self._read_closed = True
        if self._stream is None:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:  # noqa: N802
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self.setTimeout(None)
        self._cancel_deadline()
        self._factory.connections.release(self)
        self._buffer = bytearray()
        self._stream = None

    # IPushProducer: called by our transport when its write buffer fills or drains.
    def pauseProducing(self) -> None:  # noqa: N802
        self._write_paused = True
        self.transport.pauseProducing()  # type: ignore[union-attr]
        self._settle()

    def resumeProducing(self) -> None:  # noqa: N802
        self._write_paused = False
        self.resetTimeout()  # the client is reading: not idle
        if self._stream is not None:
            self._pump()  # reading stays paused until the transfer is sent
        else:
            self.transport.resumeProducing()  # type: ignore[union-attr]
            self._settle()

    def stopProducing(self) -> None:  # noqa: N802
        pass


class TcpFactory(protocol.Factory):
    def __init__(
        self,
        snapshot: SnapshotSource,
        local: str,
        idle_timeout: float,
        io_timeout: float,
        connections: ConnectionTable,
        on_reply: ReplyHook,
        call_later: Callable[..., Any],
        log_limit: LogLimit,
    ) -> None:
        self.call_later = call_later
        self.snapshot = snapshot
        self.local = local
        self.idle_timeout = idle_timeout
        self.io_timeout = io_timeout
        self.connections = connections  # shared by every listening socket
        self.on_reply = on_reply
        self.log_limit = log_limit
        self.metrics: Metrics | None = None  # metrics on: refusals are counted
        self.counts: TransportCounts | None = None  # and what TCP answered

    def buildProtocol(self, addr: object) -> TcpConnection:  # noqa: N802
        return TcpConnection(self)
