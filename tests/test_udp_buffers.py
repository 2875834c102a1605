"""UDP socket buffers (issue 10: no query lost to a burst).

``options.udp_receive_buffer``/``udp_send_buffer`` size every UDP socket as
NSD sizes its own (1 MiB in, 4 MiB out by default; forced past
``net.core.rmem_max`` when the process may, else capped by the kernel).
The config refuses nonsense with the key path; the running server's sockets
carry the sizes (read back with ``ss``, as an operator would), and the log
says what the kernel granted.  That dnsperf ``-c 10 -q 500`` then loses
nothing is a benchmark (``python -m bench.qps --mix burst``), not a timed test.
"""

from __future__ import annotations

import re
import socket
import subprocess

import pytest
import serverkit

import authd.limits as limits
from authd.adapters.transport import size_udp_buffers
from authd.config import Options, config_from_dict
from authd.errors import ConfigError
from harness.peers import require_binary

ZONE = "$ORIGIN buf.test.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"


def _options(**values: object) -> Options:
    return config_from_dict({"options": values, "zones": []}, None, "/").options


def _can_force() -> bool:
    """Whether this process may pass net.core.rmem_max (CAP_NET_ADMIN), as the server may."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 1 << 16)  # SO_RCVBUFFORCE
        except OSError:
            return False
    return True


def _sysctl(name: str) -> int:
    with open(f"/proc/sys/net/core/{name}") as f:
        return int(f.read())


def _expected(asked: int, cap: int) -> int:
    """What Linux reports for a buffer set to *asked*: twice the setting, capped unless forced."""
    return 2 * (asked if _can_force() else min(asked, cap))


def test_defaults_are_nsds() -> None:
    opts = _options()
    assert opts.udp_receive_buffer == limits.DEFAULT_UDP_RECEIVE_BUFFER == 1 << 20
    assert opts.udp_send_buffer == limits.DEFAULT_UDP_SEND_BUFFER == 4 << 20


@pytest.mark.parametrize("key", ["udp_receive_buffer", "udp_send_buffer"])
@pytest.mark.parametrize(
    "value",
    [0, limits.MIN_UDP_SOCKET_BUFFER, 3_000_000, limits.MAX_UDP_SOCKET_BUFFER],
)
def test_accepted_sizes(key: str, value: int) -> None:
    assert getattr(_options(**{key: value}), key) == value


@pytest.mark.parametrize("key", ["udp_receive_buffer", "udp_send_buffer"])
@pytest.mark.parametrize(
    "value",
    [-1, 1, limits.MIN_UDP_SOCKET_BUFFER - 1, limits.MAX_UDP_SOCKET_BUFFER + 1, "1m", 1.5, True],
)
def test_refused_sizes_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        _options(**{key: value})
    assert e.value.path == f"options.{key}"


@pytest.mark.parametrize("receive,send", [(1 << 20, 4 << 20), (300_000, 500_000), (65_536, 8192)])
def test_sizing_a_bound_socket(receive: int, send: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        got = size_udp_buffers(s, receive, send)
        assert got == (
            s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
        )
        assert got == (
            _expected(receive, _sysctl("rmem_max")),
            _expected(send, _sysctl("wmem_max")),
        )


def test_zero_leaves_the_kernels_default() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        before = (
            s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
        )
        assert size_udp_buffers(s, 0, 0) == before


def _skmem(port: int) -> list[dict[str, int]]:
    """The skmem fields of every UDP socket bound to *port* (``ss -uampn``)."""
    ss = require_binary("ss")
    out = subprocess.run(
        [ss, "-H", "-uampn", f"sport = :{port}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    found = []
    for m in re.finditer(r"skmem:\(([^)]*)\)", out):
        fields = {}
        for part in m.group(1).split(","):
            k = re.match(r"([a-z_]+)(\d+)$", part)
            if k:
                fields[k.group(1)] = int(k.group(2))
        found.append(fields)
    return found


def test_the_configured_sizes_reach_every_udp_socket() -> None:
    receive, send = 1_500_000, 2_500_000  # odd sizes: no kernel default matches them
    server, _ = serverkit.start(
        {"buf.test.": ZONE}, {"udp_receive_buffer": receive, "udp_send_buffer": send}
    )
    try:
        sockets = _skmem(server.port)
        assert len(sockets) == 2, sockets  # 127.0.0.1 and ::1
        for fields in sockets:
            assert fields["rb"] == _expected(receive, _sysctl("rmem_max"))
            assert fields["tb"] == _expected(send, _sysctl("wmem_max"))
        log = server.read_log()
        assert log.count("socket buffers") == 2, log
        if _can_force():
            assert f"SO_RCVBUF {2 * receive}, SO_SNDBUF {2 * send} bytes" in log
    finally:
        server.stop()


def test_the_default_sizes_reach_the_socket() -> None:
    server, _ = serverkit.start({"buf.test.": ZONE})
    try:
        for fields in _skmem(server.port):
            assert fields["rb"] == _expected(limits.DEFAULT_UDP_RECEIVE_BUFFER, _sysctl("rmem_max"))
            assert fields["tb"] == _expected(limits.DEFAULT_UDP_SEND_BUFFER, _sysctl("wmem_max"))
    finally:
        server.stop()
