"""The log of TSIG refusals and zone transfers, read from a running authd.

A request whose TSIG is refused (RFC 8945 section 5.2: BADSIG, BADKEY,
BADTIME) gets one log line naming the key, the error and the client's
address and port; every transfer line names the client's address, port and
key, so two secondaries on one host tell apart.  A flood of bad signatures
writes at most ``LOG_LINES_PER_SECOND`` lines per second per kind, then one
line saying how many were suppressed.  A refused NOTIFY (not our zone, not a
secondary here, not in allow_notify) is logged the same way, with its reason.
"""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Iterator
from unittest import mock

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.tsig
import pytest
from reloadkit import Lab, running_lab, zone_text

from authd.adapters.logs import LOG_LINES_PER_SECOND
from harness.peers import HOST

pytestmark = pytest.mark.timeout(120)

ZONE = "a.test"
SECRET = base64.b64encode(b"authd-tsig-log-test-key-32-byte!").decode()
WRONG = base64.b64encode(b"not-the-secret-at-all-32-bytes!!").decode()
KEY = dns.tsig.Key("xfr", SECRET, dns.tsig.HMAC_SHA256)
LOGGED_WITHIN = 10.0  # seconds
IO_TIMEOUT = 5.0
FLOOD = 300  # bad-signature queries sent as fast as UDP goes


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def _server(lab: Lab):  # type: ignore[no-untyped-def]
    zone = lab.write("a.zone", zone_text(ZONE, 1))
    config = {
        "keys": [{"name": "xfr", "algorithm": "hmac-sha256", "secret": SECRET}],
        "options": {"watch": False, "state_dir": str(lab.dir / "state")},
        "zones": [{"name": ZONE, "file": str(zone), "allow_transfer": ["key xfr"]}],
    }
    return lab.start_config("authd", config)


def _signed(rdtype: str, key: dns.tsig.Key, **kwargs: object) -> dns.message.Message:
    q = dns.message.make_query(ZONE, rdtype)
    q.use_tsig({key.name: key}, keyname=key.name, **kwargs)  # type: ignore[arg-type]
    return q


def _tcp_from(port: int, query: dns.message.Message | bytes) -> tuple[int, dns.message.Message]:
    """Send *query* over TCP from a known source port; (that port, the first reply)."""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        source = sock.getsockname()[1]
        wire = query if isinstance(query, bytes) else query.to_wire()
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        length = int.from_bytes(_read(sock, 2), "big")
        return source, dns.message.from_wire(_read(sock, length), keyring=False)


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def _lines(server, pattern: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in server.read_log().splitlines() if re.search(pattern, line)]


def _signed_at(key: dns.tsig.Key, when: float) -> bytes:
    """An AXFR query for ZONE signed with *key* as if at *when* (dnspython reads the clock)."""
    with mock.patch("dns.renderer.time.time", return_value=when):
        return _signed("AXFR", key).to_wire()


def test_bad_tsig_requests_are_logged_with_key_error_and_client_port(lab: Lab) -> None:
    """Regression: a request with a bad TSIG (BADSIG) was not logged at all."""
    server = _server(lab)
    now = time.time()
    cases = [
        ("BADSIG", dns.tsig.Key("xfr", WRONG, dns.tsig.HMAC_SHA256), now),
        ("BADKEY", dns.tsig.Key("nosuchkey", SECRET, dns.tsig.HMAC_SHA256), now),
        ("BADTIME", KEY, now - 86400),  # signed a day ago: outside any fudge
    ]
    for error, key, when in cases:
        source, reply = _tcp_from(server.port, _signed_at(key, when))
        lab.check(reply.rcode() == dns.rcode.NOTAUTH, f"{error}: {reply.rcode()!r}")
        name = re.escape(key.name.to_text())
        pattern = rf"TSIG {error} from 127\.0\.0\.1#{source} key {name}: refused"
        lab.wait_log(server, pattern, LOGGED_WITHIN)


def test_transfer_lines_name_the_client_port_and_key(lab: Lab) -> None:
    server = _server(lab)
    ports = []
    for _ in range(2):  # two secondaries on one host
        source, reply = _tcp_from(server.port, _signed("AXFR", KEY))
        lab.check(reply.rcode() == dns.rcode.NOERROR, f"AXFR: {reply.rcode()!r}")
        ports.append(source)
    for source in ports:
        lab.wait_log(
            server,
            rf"transfer a\.test\. \(view default\) to 127\.0\.0\.1 key xfr\.: axfr, serial 1 "
            rf"\(client 127\.0\.0\.1#{source}\)",
            LOGGED_WITHIN,
        )
    # An unsigned request, refused, names its port too.
    source, reply = _tcp_from(server.port, dns.message.make_query(ZONE, "AXFR"))
    lab.check(reply.rcode() == dns.rcode.REFUSED, f"unsigned: {reply.rcode()!r}")
    lab.wait_log(server, rf"key none: refused, .*\(client 127\.0\.0\.1#{source}\)", LOGGED_WITHIN)


def test_a_flood_of_bad_signatures_is_rate_limited(lab: Lab) -> None:
    server = _server(lab)
    bad = dns.tsig.Key("xfr", WRONG, dns.tsig.HMAC_SHA256)
    wire = _signed("SOA", bad).to_wire()
    began = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(IO_TIMEOUT)
        for _ in range(FLOOD):
            sock.sendto(wire, (HOST, server.port))
            sock.recv(4096)  # NOTAUTH/BADSIG; waiting keeps the socket buffers from dropping
    seconds = time.monotonic() - began
    summary = lab.wait_log(server, r"TSIG BADSIG: suppressed \d+ more log lines", LOGGED_WITHIN)
    lines = _lines(server, r"TSIG BADSIG from ")
    windows = int(seconds) + 2  # windows the flood can have touched
    lab.check(len(lines) <= LOG_LINES_PER_SECOND * windows, f"{len(lines)} lines in {seconds:.1f}s")
    suppressed = sum(
        int(m.group(1))
        for line in _lines(server, r"TSIG BADSIG: suppressed")
        if (m := re.search(r"suppressed (\d+) more", line))
    )

    def accounted() -> bool:
        total = len(_lines(server, r"TSIG BADSIG from ")) + sum(
            int(m.group(1))
            for line in _lines(server, r"TSIG BADSIG: suppressed")
            if (m := re.search(r"suppressed (\d+) more", line))
        )
        return total == FLOOD

    lab.wait(f"every request counted ({summary}, {suppressed} so far)", accounted, LOGGED_WITHIN)


# -- refused NOTIFYs ------------------------------------------------------------------


def _notify(zone: str) -> bytes:
    msg = dns.message.make_query(zone, "SOA")
    msg.set_opcode(dns.opcode.NOTIFY)
    msg.flags |= dns.flags.AA
    return msg.to_wire()


@pytest.mark.parametrize(
    ("zone", "rcode", "why"),
    [
        ("other.test.", dns.rcode.NOTAUTH, "not a zone served here"),
        (f"{ZONE}.", dns.rcode.REFUSED, "not a secondary zone here"),
    ],
    ids=["not-ours", "a-primary-zone"],
)
def test_a_refused_notify_is_logged_with_its_reason(
    lab: Lab, zone: str, rcode: int, why: str
) -> None:
    """Regression: ``refused_notify_was_not_logged``."""
    server = _server(lab)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendto(_notify(zone), (HOST, server.port))
        port = sock.getsockname()[1]
        assert dns.message.from_wire(sock.recv(4096)).rcode() == rcode
    line = lab.wait_log(server, r"NOTIFY for .* refused", LOGGED_WITHIN)
    lab.check(f"from {HOST}#{port} key none refused: {why}" in line, line)


def test_a_flood_of_refused_notifies_is_rate_limited(lab: Lab) -> None:
    server = _server(lab)
    wire = _notify("other.test.")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(IO_TIMEOUT)
        began = time.monotonic()
        for _ in range(FLOOD):
            sock.sendto(wire, (HOST, server.port))
            sock.recv(4096)
        seconds = time.monotonic() - began

    def counted() -> tuple[int, int]:
        written = len(_lines(server, r"NOTIFY for other\.test\. from "))
        held = sum(
            int(m.group(1))
            for line in _lines(server, r"NOTIFY refused: suppressed")
            if (m := re.search(r"suppressed (\d+) more", line))
        )
        return written, held

    lab.wait("every refused NOTIFY counted", lambda: sum(counted()) == FLOOD, LOGGED_WITHIN)
    written, _ = counted()
    lab.check(written <= LOG_LINES_PER_SECOND * (int(seconds) + 2), f"{written} lines")


def test_queries_refused_by_an_acl_were_never_logged(lab: Lab) -> None:
    """Regression: a query refused by allow_query (or by no view matching)
    was answered REFUSED with nothing logged; now one rate-limited line names
    the client and its port, the key, the name and the zone; a flood is
    summarised like every other security event."""
    zone = lab.write("a.zone", zone_text(ZONE, 1))
    config = {
        "options": {"watch": False, "state_dir": str(lab.dir / "state")},
        "zones": [{"name": ZONE, "file": str(zone), "allow_query": ["192.0.2.99"]}],
    }
    server = lab.start_config("authd", config)
    wire = dns.message.make_query(f"www.{ZONE}.", "A").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(IO_TIMEOUT)
        began = time.monotonic()
        for _ in range(FLOOD):
            sock.sendto(wire, (HOST, server.port))
            assert dns.message.from_wire(sock.recv(4096)).rcode() == dns.rcode.REFUSED
        port = sock.getsockname()[1]
        seconds = time.monotonic() - began
    line = lab.wait_log(server, r"query for www\.a\.test\. .* refused", LOGGED_WITHIN)
    lab.check(
        f"(zone {ZONE}.) from {HOST}#{port} key none refused: not allowed by allow_query" in line,
        line,
    )

    def counted() -> tuple[int, int]:
        written = len(_lines(server, r"query for www\.a\.test\. "))
        held = sum(
            int(m.group(1))
            for line in _lines(server, r"query refused: suppressed")
            if (m := re.search(r"suppressed (\d+) more", line))
        )
        return written, held

    lab.wait("every refused query counted", lambda: sum(counted()) == FLOOD, LOGGED_WITHIN)
    written, _ = counted()
    lab.check(written <= LOG_LINES_PER_SECOND * (int(seconds) + 2), f"{written} lines")
