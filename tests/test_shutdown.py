"""SIGTERM finishes what is in flight (issue: "SIGTERM drops work in flight").

Regression ``sigterm_cut_every_axfr_being_sent``: ``reactor.stop`` at once cut
every AXFR being sent (3 of 3).  Now a stop closes the TCP listeners, lets a
transfer in flight finish within ``options.shutdown_timeout``, closes idle
connections once their answers are out, and exits 0; a client that stops
reading cannot hold the process past the timeout.
"""

from __future__ import annotations

import signal
import socket
import struct
import time
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

from harness.peers import HOST, Server, start_authd

pytestmark = pytest.mark.timeout(120)

ORIGIN = "big.test."
RECORDS = 20_000
STUCK_RECORDS = 150_000


def _zone(tmp_path: Path, records: int) -> Path:
    path = tmp_path / "big.zone"
    lines = [f"$ORIGIN {ORIGIN}", "$TTL 300", "@ SOA ns hm 7 7200 3600 1209600 300", "@ NS ns"]
    lines += ["ns A 192.0.2.1"] + [f"h{i} A 192.0.2.{i % 250 + 1}" for i in range(records)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _server(tmp_path: Path, timeout: float, records: int = RECORDS) -> Server:
    zone = _zone(tmp_path, records)
    config = (
        "listen: [{address: 127.0.0.1, port: {port}}]\n"
        f"options: {{watch: false, state_dir: {tmp_path / 'state'}, shutdown_timeout: {timeout}}}\n"
        f"zones: [{{name: {ORIGIN}, file: {zone}, allow_transfer: [127.0.0.1]}}]\n"
    )
    return start_authd(config)


def _axfr_socket(port: int, rcvbuf: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((HOST, port))
    wire = dns.message.make_query(ORIGIN, "AXFR").to_wire()
    s.sendall(struct.pack("!H", len(wire)) + wire)
    return s


def _read_message(s: socket.socket) -> bytes | None:
    head = b""
    while len(head) < 2:
        chunk = s.recv(2 - len(head))
        if not chunk:
            return None
        head += chunk
    (length,) = struct.unpack("!H", head)
    data = b""
    while len(data) < length:
        chunk = s.recv(length - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _exit_code(server: Server, within: float) -> int | None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            return code
        time.sleep(0.05)
    return None


def test_sigterm_cut_every_axfr_being_sent(tmp_path: Path) -> None:
    server = _server(tmp_path, timeout=30)
    try:
        s = _axfr_socket(server.port, rcvbuf=4096)  # a slow reader: the transfer takes a while
        first = _read_message(s)
        assert first is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError):  # no new connections once stopping
            socket.create_connection((HOST, server.port), timeout=2).close()
        records, soas = 0, 0
        message: bytes | None = first
        while message is not None:
            msg = dns.message.from_wire(message, one_rr_per_rrset=True)
            records += sum(len(rrset) for rrset in msg.answer)
            soas += sum(1 for rrset in msg.answer if rrset.rdtype == dns.rdatatype.SOA)
            if soas == 2:
                break
            time.sleep(0.001)
            message = _read_message(s)
        s.close()
        assert soas == 2, f"the transfer was cut after {records} records"
        assert records == RECORDS + 4  # SOA, NS, ns A, the hosts, SOA again
        assert _exit_code(server, 10) == 0
        assert "stopped" in server.read_log()
    finally:
        server.stop()


def test_a_client_that_stops_reading_cannot_hold_the_shutdown(tmp_path: Path) -> None:
    # Big enough that the kernel's send buffer cannot take the whole transfer.
    server = _server(tmp_path, timeout=1, records=STUCK_RECORDS)
    try:
        s = _axfr_socket(server.port, rcvbuf=4096)
        assert _read_message(s) is not None  # then never read again
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert _exit_code(server, 10) == 0
        assert time.monotonic() - began < 5
        assert "still busy after 1 s" in server.read_log()
        s.close()
    finally:
        server.stop()
