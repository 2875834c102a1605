"""A real authd on 127.0.0.1 and ::1 for end-to-end tests, and a small client.

Owns: writing zone texts and a dual-stack configuration to a temporary folder,
choosing a port free on both loopback addresses for UDP and TCP, starting the
server through ``peers.start_authd`` (which waits for ``authd ready``), and
bounded socket helpers (every receive has a timeout).
"""

from __future__ import annotations

import json
import socket
import struct
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import dns.message

from harness.peers import PeerError, Server, start_authd

V4 = "127.0.0.1"
V6 = "::1"
HOSTS = (V4, V6)
IO_TIMEOUT = 3.0  # seconds for any single socket wait


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def dual_stack_port(attempts: int = 50) -> int:
    """A port free for UDP and TCP on both 127.0.0.1 and ::1 right now."""
    for _ in range(attempts):
        held: list[socket.socket] = []
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(probe)
            probe.bind((V4, 0))
            port = int(probe.getsockname()[1])
            for host in HOSTS:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    if host == V4 and kind == socket.SOCK_DGRAM:
                        continue
                    s = socket.socket(_family(host), kind)
                    held.append(s)
                    s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise PeerError("no port free on both 127.0.0.1 and ::1")


def start(
    zones: Mapping[str, str],
    options: Mapping[str, object] | None = None,
    folder: Path | None = None,
) -> tuple[Server, dict[str, Path]]:
    """authd serving *zones* (origin -> zone text); returns it and the zone files."""
    folder = folder or Path(tempfile.mkdtemp(prefix="authd-e2e-"))
    files: dict[str, Path] = {}
    for origin, text in zones.items():
        path = folder / f"{origin.rstrip('.')}.zone"
        path.write_text(text)
        files[origin] = path
    lines = [
        "listen:",
        f"  - {{address: {V4}, port: {{port}}}}",
        f'  - {{address: "{V6}", port: {{port}}}}',
    ]
    if options:
        lines.append("options: " + json.dumps(dict(options)))
    lines.append("zones:")
    lines += [
        f"  - {{name: {json.dumps(origin)}, file: {json.dumps(str(path))}}}"
        for origin, path in files.items()
    ]
    text = "\n".join(lines) + "\n"
    return start_authd(text, port=dual_stack_port()), files


def tcp_connect(host: str, port: int) -> socket.socket:
    s = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    s.settimeout(IO_TIMEOUT)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    """*n* bytes, or fewer if the peer closed first."""
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def tcp_read_message(s: socket.socket) -> bytes | None:
    """One length-prefixed message, or None when the connection closed."""
    head = recv_exact(s, 2)
    if len(head) < 2:
        return None
    (length,) = struct.unpack("!H", head)
    body = recv_exact(s, length)
    return body if len(body) == length else None


def frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


def udp_exchange(host: str, port: int, wire: bytes, timeout: float = IO_TIMEOUT) -> bytes | None:
    """Send one datagram; the reply, or None when none came within *timeout*."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(wire, (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except TimeoutError:
            return None
        return data


def tcp_exchange(host: str, port: int, wire: bytes) -> bytes | None:
    with tcp_connect(host, port) as s:
        s.sendall(frame(wire))
        try:
            return tcp_read_message(s)
        except (ConnectionResetError, TimeoutError):
            return None


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed *s* (EOF or reset), or None if it stayed open."""
    start = time.monotonic()
    deadline = start + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            data = s.recv(65535)
        except TimeoutError:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        if not data:
            return time.monotonic() - start


def parse(wire: bytes | None) -> dns.message.Message:
    assert wire is not None, "no answer"
    return dns.message.from_wire(wire)
