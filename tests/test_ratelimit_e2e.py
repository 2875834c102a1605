"""Response rate limiting end to end: authd on loopback, real UDP and TCP sockets.

From one source the answered rate of one response class stays near the
limit and the slip ratio holds, while another source (another /24) is
answered in full; TCP is never limited; an exempt client is not limited; the
start of limiting is logged; IPv6 clients are limited as well.  Loopback
is 127.0.0.0/8, so sources in other /24s are just other 127.x addresses.
Bounds are generous: the machine is shared, and the server's clock, not
ours, decides each credit.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import pytest
from zonekit import make_query

from harness.flood import Stream, flood
from harness.peers import HOST, Server, start_authd

RATE = 20
ZONE = """$ORIGIN rrl.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
"""
LIMITED, OTHER, EXEMPT = "127.0.0.1", "127.0.1.1", "127.0.2.1"
SECONDS = 3.0
SETTLE = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    zone = tmp_path_factory.mktemp("rrl") / "rrl.test.zone"
    zone.write_text(ZONE)
    options = {"rate_limit": {"responses_per_second": RATE, "slip": 2, "exempt": ["127.0.2.0/24"]}}
    with start_authd({"rrl.test.": str(zone)}, options=options) as s:
        yield s


def _www() -> bytes:
    return make_query("www.rrl.test.", "A").to_wire()


def test_one_source_is_held_near_the_limit_another_is_answered_in_full(server: Server) -> None:
    limited = Stream(LIMITED, _www(), 150.0)
    other = Stream(OTHER, _www(), 8.0)  # under the limit
    result = flood(HOST, server.port, [limited, other], SECONDS, SETTLE)
    assert limited.sent >= 100 and other.sent >= 10, (limited, other)
    # The bucket starts with RATE credits and earns RATE a second while the
    # server reads queries; it has the test's span plus the settling time.
    ceiling = RATE + RATE * (result.seconds + SETTLE + 1.0)
    assert RATE <= limited.answered <= ceiling, (limited.answered, ceiling)
    # slip 2: every second limited response comes back with TC, the rest never.
    refused = limited.sent - limited.answered
    assert abs(limited.truncated - refused / 2) <= 2 + refused * 0.02, limited
    assert limited.received < limited.sent
    assert other.answered == other.sent, other  # another /24 is answered in full
    assert max(limited.sizes) > min(limited.sizes)  # slips are the short replies


def _tcp_answers(port: int, source: str, count: int) -> int:
    answered = 0
    with socket.create_connection((HOST, port), 5.0, source_address=(source, 0)) as s:
        s.sendall(b"".join(struct.pack("!H", len(_www())) + _www() for _ in range(count)))
        buf = b""
        deadline = time.monotonic() + 10.0
        while answered < count and time.monotonic() < deadline:
            chunk = s.recv(65535)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                msg = dns.message.from_wire(buf[2 : 2 + n])
                buf = buf[2 + n :]
                if not msg.flags & dns.flags.TC and msg.answer:
                    answered += 1
    return answered


def test_tcp_is_never_limited(server: Server) -> None:
    # Exhaust the bucket over UDP first, then ask over TCP from the same source.
    flood(HOST, server.port, [Stream(LIMITED, _www(), 200.0)], 0.5, 0.3)
    assert _tcp_answers(server.port, LIMITED, 80) == 80


def test_an_exempt_client_is_not_limited(server: Server) -> None:
    exempt = Stream(EXEMPT, _www(), 150.0)
    flood(HOST, server.port, [exempt], 1.5, SETTLE)
    assert exempt.sent >= 100 and exempt.answered == exempt.sent, exempt


def test_limiting_is_logged_for_the_prefix(server: Server) -> None:
    flood(HOST, server.port, [Stream(LIMITED, _www(), 200.0)], 0.5, 0.3)
    deadline = time.monotonic() + 10.0
    needle = "rate limiting started for prefix 127.0.0.0/24: answer responses for www.rrl.test."
    while needle not in server.read_log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert needle in server.read_log()
    assert "127.0.2.0" not in server.read_log()  # the exempt client never was


def test_no_rate_limit_by_default(tmp_path: Path) -> None:
    zone = tmp_path / "rrl.test.zone"
    zone.write_text(ZONE)
    with start_authd({"rrl.test.": str(zone)}) as s:
        stream = Stream(LIMITED, _www(), 150.0)
        flood(HOST, s.port, [stream], 1.0, SETTLE)
    assert stream.sent >= 100 and stream.answered == stream.sent, stream


def test_ipv6_clients_are_limited_per_prefix_too(tmp_path: Path) -> None:
    zone = tmp_path / "rrl.test.zone"
    zone.write_text(ZONE)
    config = (
        'listen: [{address: "::1", port: {port}}]\n'
        f"zones: [{{name: rrl.test., file: {zone}}}]\n"
        f"options: {{rate_limit: {{responses_per_second: {RATE}, slip: 2}}}}\n"
    )
    with start_authd(config) as s:
        stream = Stream("::1", _www(), 150.0)
        result = flood("::1", s.port, [stream], 2.0, SETTLE)
    assert stream.sent >= 100, stream
    assert RATE <= stream.answered <= RATE + RATE * (result.seconds + SETTLE + 1.0), stream
    assert abs(stream.truncated - (stream.sent - stream.answered) / 2) <= 2 + stream.sent * 0.02
