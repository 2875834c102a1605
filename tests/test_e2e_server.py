"""End to end: ``python -m authd serve`` on 127.0.0.1 and ::1, real sockets.

Queries over UDP and TCP with dnspython, ``dig`` and ``kdig``; RFC 7766 TCP
behaviour (pipelining with answers matched by ID, a message arriving one byte
at a time, the idle timeout, the connection limit, a length prefix promising
more than ever comes); SIGHUP reloads (a higher serial is published, a broken
file keeps the old answer); SIGTERM exits 0.  Every wait is bounded.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import serverkit
from serverkit import HOSTS, V4, V6, frame, parse, tcp_connect, tcp_read_message

from harness.peers import require_binary

pytestmark = pytest.mark.timeout(120)

ZONE = (
    """
$ORIGIN e2e.test.
$TTL 300
@     SOA   ns hm 1 7200 3600 1209600 300
@     NS    ns
ns    A     192.0.2.53
www   A     192.0.2.80
www   AAAA  2001:db8::80
"""
    + "\n".join(f'big TXT "{i:02d}{"z" * 100}"' for i in range(40))
    + "\n"
)

IDLE = 1  # seconds, for the limited server
IO_TIMEOUT = 0.5  # seconds for a whole TCP message, from its first byte
MAX_CONNECTIONS = 3
V4_OTHER = "127.0.0.2"  # a second loopback client address (all of 127/8 is local)


@pytest.fixture(scope="module")
def server():
    srv, _ = serverkit.start({"e2e.test.": ZONE}, {"nsid": "authd-e2e"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def limited():
    options = {
        "tcp_idle_timeout": IDLE,
        "tcp_max_connections": MAX_CONNECTIONS,
        "tcp_io_timeout": IO_TIMEOUT,
    }
    srv, _ = serverkit.start({"e2e.test.": ZONE}, options)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def per_client():
    srv, _ = serverkit.start({"e2e.test.": ZONE}, {"tcp_max_connections_per_client": 2})
    yield srv
    srv.stop()


def _query(qname: str = "www.e2e.test.", qtype: str = "A", **kw) -> dns.message.Message:
    return dns.message.make_query(qname, qtype, **kw)


# -- dnspython over both transports and both address families -----------------


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dnspython_query(server, host: str, tcp: bool) -> None:
    q = _query()
    send = dns.query.tcp if tcp else dns.query.udp
    r = send(q, host, port=server.port, timeout=serverkit.IO_TIMEOUT)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA
    assert [rd.to_text() for rd in r.answer[0]] == ["192.0.2.80"]


@pytest.mark.parametrize("host", HOSTS)
def test_big_answer_truncated_over_udp_whole_over_tcp(server, host: str) -> None:
    q = _query("big.e2e.test.", "TXT")
    r = dns.query.udp(
        q, host, port=server.port, timeout=serverkit.IO_TIMEOUT, ignore_trailing=False
    )
    assert r.flags & dns.flags.TC
    r = dns.query.tcp(q, host, port=server.port, timeout=serverkit.IO_TIMEOUT)
    assert not r.flags & dns.flags.TC
    assert len(r.answer[0]) == 40


# -- dig and kdig ---------------------------------------------------------------


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _parse_tool_output(text: str) -> tuple[str, set[str], list[str], list[str]]:
    """(status, header flags, answer RR lines, NSID strings) from dig/kdig output."""
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r";; [Ff]lags:([a-z ]*);", text)
    assert status and flags, text
    answer: list[str] = []
    in_answer = False
    for line in text.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            in_answer = True
            continue
        if in_answer:
            if not line.strip() or line.startswith(";"):
                in_answer = False
                continue
            answer.append(" ".join(line.split()))
    nsid = re.findall(r'NSID: [0-9A-Fa-f ]+\(?"([^"]*)"\)?', text)
    return status.group(1), set(flags.group(1).split()), answer, nsid


TOOLS = {
    "dig": lambda host, port, tcp, extra: [
        require_binary("dig"), f"@{host}", "-p", str(port), "+norec", "+tries=1", "+time=3",
        *(["+tcp"] if tcp else []), *extra,
    ],
    "kdig": lambda host, port, tcp, extra: [
        require_binary("kdig"), f"@{host}", "-p", str(port), "+norec", "+retry=0", "+time=3",
        *(["+tcp"] if tcp else []), *extra,
    ],
}  # fmt: skip


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_tools_answer(server, tool: str, host: str, tcp: bool) -> None:
    out = _run(TOOLS[tool](host, server.port, tcp, ["www.e2e.test.", "AAAA"]))
    status, flags, answer, _ = _parse_tool_output(out)
    assert status == "NOERROR"
    assert flags == {"qr", "aa"}
    assert answer == ["www.e2e.test. 300 IN AAAA 2001:db8::80"]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tools_nxdomain_and_refused(server, tool: str) -> None:
    status, flags, answer, _ = _parse_tool_output(
        _run(TOOLS[tool](V4, server.port, False, ["nope.e2e.test.", "A"]))
    )
    assert (status, answer) == ("NXDOMAIN", []) and "aa" in flags
    status, flags, answer, _ = _parse_tool_output(
        _run(TOOLS[tool](V6, server.port, False, ["www.example.org.", "A"]))
    )
    assert (status, answer) == ("REFUSED", []) and "aa" not in flags


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tools_nsid(server, tool: str) -> None:
    out = _run(TOOLS[tool](V4, server.port, False, ["+nsid", "www.e2e.test.", "A"]))
    assert _parse_tool_output(out)[3] == ["authd-e2e"]


def test_dig_falls_back_to_tcp_on_truncation(server) -> None:
    out = _run(TOOLS["dig"](V4, server.port, False, ["big.e2e.test.", "TXT"]))
    assert "Truncated, retrying in TCP mode" in out
    assert len(_parse_tool_output(out)[2]) == 40


# -- RFC 7766 TCP behaviour -----------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_tcp_pipelining_twenty_queries(server, host: str) -> None:
    names = ["www", "nope", "ns", "big", "e2e.test."]
    ids = random.Random(7).sample(range(1, 65536), 20)
    expected: dict[int, tuple[str, int]] = {}
    data = b""
    for i, qid in enumerate(ids):
        label = names[i % len(names)]
        qname = label if label.endswith(".") else f"{label}.e2e.test."
        qtype = ("A", "AAAA", "TXT", "SOA")[i % 4]
        q = _query(qname, qtype, id=qid)
        expected[qid] = (qname, dns.rdatatype.from_text(qtype))
        data += frame(q.to_wire())
    with tcp_connect(host, server.port) as s:
        s.sendall(data)  # all twenty back to back, before reading anything
        got = {}
        for _ in range(20):
            r = parse(tcp_read_message(s))
            got[r.id] = (r.question[0].name.to_text(), r.question[0].rdtype)
    assert got == expected


def test_tcp_one_byte_at_a_time(server) -> None:
    q = _query(id=0x0B0B)
    data = frame(q.to_wire()) * 2
    with tcp_connect(V4, server.port) as s:
        for i in range(len(data)):
            s.sendall(data[i : i + 1])
            time.sleep(0.005)
        for _ in range(2):
            r = parse(tcp_read_message(s))
            assert r.id == 0x0B0B and r.rcode() == dns.rcode.NOERROR


def test_tcp_length_prefix_split_from_message(server) -> None:
    wire = _query(id=0x0C0C).to_wire()
    with tcp_connect(V6, server.port) as s:
        s.sendall(frame(wire)[:1])
        time.sleep(0.05)
        s.sendall(frame(wire)[1:2])
        time.sleep(0.05)
        s.sendall(wire[:5])
        time.sleep(0.05)
        s.sendall(wire[5:])
        assert parse(tcp_read_message(s)).id == 0x0C0C


@pytest.mark.parametrize("host", HOSTS)
def test_tcp_idle_timeout_closes(limited, host: str) -> None:
    with tcp_connect(host, limited.port) as s:
        waited = serverkit.closed_within(s, IDLE + 4)
    assert waited is not None, "the idle connection stayed open"
    assert IDLE * 0.5 <= waited <= IDLE + 4


def test_tcp_idle_timeout_counts_from_the_last_query(limited) -> None:
    with tcp_connect(V4, limited.port) as s:
        start = time.monotonic()
        for i in range(3):  # keep it busy past one idle period
            time.sleep(IDLE * 0.5)
            s.sendall(frame(_query(id=100 + i).to_wire()))
            assert parse(tcp_read_message(s)).id == 100 + i
        assert time.monotonic() - start > IDLE
        assert serverkit.closed_within(s, IDLE + 4) is not None


@pytest.mark.parametrize("host", HOSTS)
def test_tcp_half_close_still_gets_every_answer(server, host: str) -> None:
    # RFC 1035 4.2.2 (kept by RFC 7766 6.1): the server "should delay closing its
    # end of the connection until all outstanding client requests have been
    # satisfied".  Clients that shut down their sending side after the last
    # query (shutdown(SHUT_WR)) must still get every answer, every time.
    for attempt in range(10):
        with tcp_connect(host, server.port) as s:
            s.sendall(b"".join(frame(_query(id=attempt * 10 + j).to_wire()) for j in range(3)))
            s.shutdown(socket.SHUT_WR)
            ids = []
            try:
                for _ in range(3):
                    wire = tcp_read_message(s)
                    if wire is None:
                        break
                    ids.append(parse(wire).id)
            except ConnectionResetError:
                pass
        assert ids == [attempt * 10 + j for j in range(3)], f"attempt {attempt}"


def test_tcp_idle_timeout_spares_a_connection_still_receiving_answers(limited) -> None:
    # The idle timeout is for connections with nothing outstanding (RFC 1035
    # 4.2.2; RFC 7828 3.2.1 defines idle as "no outstanding requests").  A
    # client that pipelines many queries and reads the answers steadily, but
    # for longer than the timeout, must not lose the tail to an abort.
    assert _wait_until_accepted(limited.port, time.monotonic() + IDLE + 5)
    count = 300
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # before connect: small window
    s.settimeout(serverkit.IO_TIMEOUT)
    with s:
        s.connect((V4, limited.port))
        s.sendall(
            b"".join(frame(_query("big.e2e.test.", "TXT", id=i).to_wire()) for i in range(count))
        )
        got = 0
        start = time.monotonic()
        try:
            while got < count and time.monotonic() - start < 30:
                wire = tcp_read_message(s)
                if wire is None:
                    break
                assert parse(wire).id == got
                got += 1
                time.sleep(0.01)  # a steady reader, slower than one idle period in total
        except ConnectionResetError:
            pass
    assert time.monotonic() - start > IDLE, "the test must outlast one idle period"
    assert got == count


def _open_counted(port: int, n: int) -> list:
    """*n* connections, each proven accepted by an answered query."""
    conns = []
    try:
        for i in range(n):
            conns.append(tcp_connect(V4 if i % 2 else V6, port))
            conns[-1].sendall(frame(_query(id=200 + i).to_wire()))
            assert parse(tcp_read_message(conns[-1])).id == 200 + i
    except BaseException:
        for s in conns:
            s.close()
        raise
    return conns


def _wait_until_accepted(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with tcp_connect(V4, port) as s:
                s.sendall(frame(_query(id=0x0FFF).to_wire()))
                if tcp_read_message(s) is not None:
                    return True
        except (ConnectionResetError, TimeoutError, BrokenPipeError):
            pass
        time.sleep(0.1)
    return False


def _over_the_limit_answer(port: int) -> bytes | None:
    # The server accepts and at once aborts: the reset may even beat connect().
    try:
        with tcp_connect(V4, port) as extra:
            extra.sendall(frame(_query(id=0x4444).to_wire()))
            return tcp_read_message(extra)
    except (ConnectionResetError, BrokenPipeError):
        return None


def test_tcp_connection_limit_closes_the_longest_idle_for_a_new_client(limited) -> None:
    # Earlier tests' connections must be gone first (they close within IDLE).
    assert _wait_until_accepted(limited.port, time.monotonic() + IDLE + 5)
    time.sleep(0.2)
    conns = _open_counted(limited.port, MAX_CONNECTIONS)
    try:
        # All three are idle: the oldest gives way, and the newcomer is answered.
        with tcp_connect(V4, limited.port) as extra:
            extra.sendall(frame(_query(id=0x4444).to_wire()))
            assert parse(tcp_read_message(extra)).id == 0x4444
        assert serverkit.closed_within(conns[0], 5) is not None, "the longest idle stayed"
        for i, s in enumerate(conns[1:], 1):
            s.sendall(frame(_query(id=300 + i).to_wire()))
            assert parse(tcp_read_message(s)).id == 300 + i
    finally:
        for s in conns:
            s.close()


def test_tcp_connection_limit_with_none_idle_closes_the_longest_pending_message(limited) -> None:
    assert _wait_until_accepted(limited.port, time.monotonic() + IDLE + 5)
    time.sleep(0.2)
    conns = _open_counted(limited.port, MAX_CONNECTIONS)
    try:
        for s in conns:
            s.sendall(b"\x00")  # half a length prefix: a message pending
            time.sleep(0.02)
        with tcp_connect(V4, limited.port) as extra:
            extra.sendall(frame(_query(id=0x4545).to_wire()))
            assert parse(tcp_read_message(extra)).id == 0x4545
        assert serverkit.closed_within(conns[0], 0.2) is not None, "the oldest pending stayed"
        # The other half-sent messages miss their deadline.
        for s in conns[1:]:
            assert serverkit.closed_within(s, IO_TIMEOUT + 4) is not None
    finally:
        for s in conns:
            s.close()


def test_slowloris_byte_per_interval_is_cut_at_the_message_deadline(limited) -> None:
    """A query sent a byte at a time slower than tcp_io_timeout never holds the slot."""
    assert _wait_until_accepted(limited.port, time.monotonic() + IDLE + 5)
    wire = frame(_query(id=0x5A5A).to_wire())
    with tcp_connect(V4, limited.port) as s:
        start = time.monotonic()
        closed = False
        try:
            for i in range(len(wire)):
                s.sendall(wire[i : i + 1])
                time.sleep(IO_TIMEOUT * 0.6)  # each byte resets no timer
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            closed = serverkit.closed_within(s, IO_TIMEOUT + 4) is not None
        assert closed
        assert time.monotonic() - start < len(wire) * IO_TIMEOUT * 0.6 + 4


def test_tcp_per_client_limit_leaves_other_clients_in(per_client) -> None:
    held = [
        socket.create_connection((V4, per_client.port), timeout=5, source_address=(V4_OTHER, 0))
        for _ in range(2)
    ]
    try:
        # held[] are idle but it is the per-client limit that refuses: no eviction.
        for s in held:
            s.sendall(frame(_query(id=0x6161).to_wire()))
            assert parse(tcp_read_message(s)).id == 0x6161
        # The refusal is a reset right after accept; on loopback it can reach the
        # client while connect() is still returning, so either place counts.
        try:
            third = socket.create_connection(
                (V4, per_client.port), timeout=5, source_address=(V4_OTHER, 0)
            )
        except ConnectionResetError:
            third = None
        if third is not None:
            with third:
                try:
                    third.sendall(frame(_query(id=0x6262).to_wire()))
                    assert tcp_read_message(third) is None
                except (ConnectionResetError, BrokenPipeError):
                    pass
        r = parse(serverkit.tcp_exchange(V4, per_client.port, _query(id=0x6363).to_wire()))
        assert r.id == 0x6363
    finally:
        for s in held:
            s.close()


def test_huge_length_prefix_then_nothing(limited) -> None:
    assert _wait_until_accepted(limited.port, time.monotonic() + IDLE + 5)
    with tcp_connect(V4, limited.port) as stuck:
        stuck.sendall(b"\xff\xff" + b"\x00" * 20)  # promises 65,535 bytes, sends 20
        # Others are still answered meanwhile, over TCP and UDP.
        r = parse(serverkit.tcp_exchange(V6, limited.port, _query(id=0x5151).to_wire()))
        assert r.id == 0x5151
        r = parse(serverkit.udp_exchange(V4, limited.port, _query(id=0x5252).to_wire()))
        assert r.id == 0x5252
        assert serverkit.closed_within(stuck, IDLE + 4) is not None


# -- signals ----------------------------------------------------------------------


def _zone_v(serial: int, address: str) -> str:
    return (
        f"$ORIGIN r.test.\n$TTL 300\n@ SOA ns hm {serial} 7200 3600 1209600 300\n"
        f"@ NS ns\nns A 192.0.2.53\nwww A {address}\n"
    )


def _address(port: int) -> str:
    r = parse(serverkit.udp_exchange(V4, port, _query("www.r.test.").to_wire()))
    return r.answer[0][0].to_text()


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sighup_reload(tmp_path: Path) -> None:
    srv, files = serverkit.start({"r.test.": _zone_v(1, "192.0.2.1")}, folder=tmp_path)
    try:
        path = files["r.test."]
        assert _address(srv.port) == "192.0.2.1"  # now in the answer cache too

        path.write_text(_zone_v(2, "192.0.2.2"))
        srv.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _address(srv.port) == "192.0.2.2", 10), srv.read_log()

        # Changed content without a higher serial: refused, the old answer stays.
        path.write_text(_zone_v(2, "192.0.2.99"))
        srv.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: srv.read_log().count("reload done") >= 2, 10)
        assert "serial 2 not increased" in srv.read_log()
        assert _address(srv.port) == "192.0.2.2"

        # A file that no longer parses: the old answer stays.
        path.write_text(_zone_v(3, "192.0.2.3") + "www A not-an-address\n")
        srv.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: srv.read_log().count("reload done") >= 3, 10)
        assert "not reloaded" in srv.read_log()
        assert _address(srv.port) == "192.0.2.2"
        r = dns.query.tcp(_query("r.test.", "SOA"), V6, port=srv.port, timeout=3)
        assert r.answer[0][0].serial == 2
        assert srv.process.poll() is None
    finally:
        srv.stop()


def test_sigterm_exits_zero() -> None:
    srv, _ = serverkit.start({"e2e.test.": ZONE})
    try:
        assert _wait_for(
            lambda: serverkit.udp_exchange(V4, srv.port, _query().to_wire()) is not None, 5
        )
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(timeout=10) == 0
        assert "stopped" in srv.read_log()
    finally:
        srv.stop()


def test_sighup_storm_ends_with_the_last_file(tmp_path: Path) -> None:
    # Reloads requested while one runs are coalesced, never lost or run in parallel.
    srv, files = serverkit.start({"r.test.": _zone_v(1, "192.0.2.1")}, folder=tmp_path)
    try:
        path = files["r.test."]
        for serial in range(2, 12):
            path.write_text(_zone_v(serial, f"192.0.2.{serial}"))
            srv.process.send_signal(signal.SIGHUP)
            time.sleep(0.01)
        assert _wait_for(lambda: _address(srv.port) == "192.0.2.11", 15), srv.read_log()
        assert srv.process.poll() is None
        assert "reload failed" not in srv.read_log()
    finally:
        srv.stop()


def test_port_in_use_exits_one(server, tmp_path: Path) -> None:
    (tmp_path / "e2e.zone").write_text(ZONE)
    conf = tmp_path / "authd.yaml"
    conf.write_text(
        f"listen:\n  - {{address: {V4}, port: {server.port}}}\n"
        f"zones:\n  - {{name: e2e.test, file: e2e.zone}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "authd", "serve", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "cannot listen" in done.stderr
    # The running server did not notice.
    assert parse(serverkit.udp_exchange(V4, server.port, _query().to_wire())).rcode() == 0
