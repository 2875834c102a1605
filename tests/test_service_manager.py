"""Running under a service manager: sd_notify, the unit file, options.user, the pidfile,
IPv4 and IPv6 on one port (IPV6_V6ONLY), log formats, and ``--check-config``'s state check.

Every test starts the real server; the privilege drop needs root (the CI
machine runs as root: without it the test fails under AUTHD_REQUIRE_PEERS,
and is skipped elsewhere).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

from authd.adapters import daemon
from authd.limits import MAX_MESSAGE, TCP_LISTEN_BACKLOG, UDP_MAX_QUERY
from harness.peers import HOST, REPO_ROOT, Server, free_port, require_binary, start_authd

ZONE = "$ORIGIN s.test.\n$TTL 300\n@ SOA ns hm 3 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
WAIT = 30.0  # seconds for a notification or an exit (generous: a loaded machine)
QUERY_TIMEOUT = 5.0


def _soa_serial(address: str, port: int, tcp: bool = False) -> int:
    q = dns.message.make_query("s.test.", "SOA")
    ask = dns.query.tcp if tcp else dns.query.udp
    r = ask(q, address, port=port, timeout=QUERY_TIMEOUT)
    assert r.rcode() == dns.rcode.NOERROR
    return int(r.answer[0][0].serial)


def _config(tmp: Path, listen: list[tuple[str, int]], **options: object) -> Path:
    zone = tmp / "s.test.zone"
    zone.write_text(ZONE)
    lines = ["listen:"]
    lines += [f'  - {{address: "{a}", port: {p}}}' for a, p in listen]
    lines += ["options:", f"  state_dir: {tmp / 'state'}"]
    lines += [f"  {k}: {json.dumps(v)}" for k, v in options.items()]
    lines += ["zones:", f"  - {{name: s.test., file: {zone}}}"]
    path = tmp / "authd.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- sd_notify -------------------------------------------------------------------------------


def test_ready_and_stopping_reach_the_notify_socket(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, [(HOST, port)])
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(WAIT)
        proc = subprocess.Popen(
            [sys.executable, "-m", "authd", "serve", "-c", str(config)],
            env={**_env(), "NOTIFY_SOCKET": path},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            ready = listener.recv(4096).decode()
            assert "READY=1" in ready.splitlines(), ready
            assert f"MAINPID={proc.pid}" in ready.splitlines(), ready
            # Ready means serving: the first query is answered.
            assert _soa_serial(HOST, port) == 3
            proc.send_signal(signal.SIGTERM)
            stopping = listener.recv(4096).decode()
            assert stopping == "STOPPING=1"
            assert proc.wait(timeout=WAIT) == 0
        finally:
            _stop(proc)


def test_abstract_notify_socket_and_none() -> None:
    name = f"authd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(WAIT)
        assert daemon.sd_notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(100) == b"READY=1"
    assert not daemon.sd_notify("READY=1", {})  # not under systemd: nothing to do


# -- the unit file ---------------------------------------------------------------------------


def test_unit_file_verifies(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    unit = (REPO_ROOT / "etc" / "authd.service").read_text()
    assert "Type=notify" in unit and "ExecReload=" in unit
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in unit
    # verify wants the ExecStart binary to exist: point it at one that does.
    copy = tmp_path / "authd.service"
    copy.write_text(unit.replace("/usr/local/bin/authd", shutil.which("true") or "/bin/true"))
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "authd.service" not in done.stderr, done.stderr  # no warning about our unit


# -- IPv4 and IPv6 on one port ---------------------------------------------------------------


@pytest.mark.parametrize("v4, v6", [("0.0.0.0", "::"), ("127.0.0.1", "::1")])
def test_ipv4_and_ipv6_share_a_port(tmp_path: Path, v4: str, v6: str) -> None:
    port = free_port()
    config = _config(tmp_path, [(v4, port), (v6, port)], query_log=True)
    with start_authd(config.read_text()) as server:
        for tcp in (False, True):
            assert _soa_serial("127.0.0.1", port, tcp) == 3
            assert _soa_serial("::1", port, tcp) == 3
        log = _wait_log(server, "::1#")
        # IPV6_V6ONLY: an IPv4 client is itself, never ::ffff:127.0.0.1 (the ACLs see it so).
        assert "query 127.0.0.1#" in log and "::ffff:" not in log, log


def test_a_v4_mapped_listen_address_cannot_take_ipv4(tmp_path: Path) -> None:
    """With V6ONLY a socket on ::ffff:127.0.0.1 carries nothing: refused, with the reason."""
    port = free_port()
    config = _config(tmp_path, [("127.0.0.1", port), ("::ffff:127.0.0.1", port)])
    done = subprocess.run(
        [sys.executable, "-m", "authd", "serve", "-c", str(config), "--check-config"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "listen[1].address" in done.stderr and "127.0.0.1" in done.stderr, done.stderr


def _wait_log(server: Server, needle: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        log = server.read_log()
        if needle in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in the log:\n{server.read_log()}")


# -- logs -----------------------------------------------------------------------------------


def test_json_log_lines_and_the_query_log(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, [(HOST, port)], log_format="json", query_log=True)
    with start_authd(config.read_text()) as server:
        q = dns.message.make_query("s.test.", "SOA", id=4242)
        dns.query.tcp(q, HOST, port=port, timeout=QUERY_TIMEOUT)
        _wait_log(server, "4242")
        records = [json.loads(line) for line in server.read_log().splitlines() if line]
    assert all({"time", "level", "message"} <= r.keys() for r in records)
    assert all(r["time"].endswith("Z") and "T" in r["time"] for r in records)
    query = next(r for r in records if r.get("id") == 4242)
    assert query["transport"] == "tcp" and query["qtype"] == "SOA" and query["rcode"] == "NOERROR"
    assert abs(query["query_time"] - time.time()) < 600


def test_text_log_lines_carry_a_timestamp(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, [(HOST, port)], query_log=True)
    with start_authd(config.read_text()) as server:
        dns.query.udp(dns.message.make_query("s.test.", "SOA", id=77), HOST, port=port, timeout=5)
        log = _wait_log(server, " id 77 ")
    ready = next(line for line in log.splitlines() if "authd ready" in line)
    stamp, rest = ready.split(" ", 1)
    assert rest.startswith("authd[info] authd ready")
    assert time.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    query = next(line for line in log.splitlines() if " id 77 " in line)
    assert f"query {HOST}#" in query and " udp id 77 s.test. SOA -> NOERROR" in query


def test_log_format_is_checked(tmp_path: Path) -> None:
    config = _config(tmp_path, [(HOST, free_port())], log_format="xml")
    done = _check_config(config)
    assert done.returncode == 1 and "options.log_format" in done.stderr, done.stderr


# -- options.user and options.pidfile ---------------------------------------------------------


def _need_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("AUTHD_REQUIRE_PEERS"):
        pytest.fail("the privilege-drop tests need root (the CI machine runs them as root)")
    pytest.skip("needs root")


def _low_port() -> int:
    """A port below 1024 free for UDP and TCP on 127.0.0.1 (needs root to bind)."""
    for port in range(853 + 100, 1024):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((HOST, port))
            except OSError:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free low port on 127.0.0.1")


@pytest.fixture()
def nobody_dir() -> Iterator[Path]:
    """A folder nobody can read and write (pytest's tmp_path is root's 0700)."""
    _need_root()
    path = Path(tempfile.mkdtemp(prefix="authd-user-"))
    nobody = pwd.getpwnam("nobody")
    os.chmod(path, 0o755)
    (path / "state").mkdir()
    os.chown(path / "state", nobody.pw_uid, nobody.pw_gid)
    (path / "run").mkdir()
    os.chown(path / "run", nobody.pw_uid, nobody.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _ids(pid: int) -> tuple[list[int], list[int]]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
    gids = next(line for line in status if line.startswith("Gid:")).split()[1:]
    return [int(u) for u in uids], [int(g) for g in gids]


def test_drops_to_the_user_after_binding_a_low_port(nobody_dir: Path) -> None:
    port = _low_port()
    pidfile = nobody_dir / "run" / "authd.pid"
    config = _config(nobody_dir, [(HOST, port)], user="nobody", pidfile=str(pidfile))
    nobody = pwd.getpwnam("nobody")
    with start_authd(config.read_text(), port) as server:
        pid = server.process.pid
        assert pidfile.read_text() == f"{pid}\n"
        uids, gids = _ids(pid)
        assert uids == [nobody.pw_uid] * 4, uids  # real, effective, saved, filesystem
        assert gids == [nobody.pw_gid] * 4, gids
        assert _soa_serial(HOST, port) == 3 and _soa_serial(HOST, port, tcp=True) == 3
        assert "running as user nobody" in server.read_log()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=WAIT) == 0
    assert not pidfile.exists(), "a clean exit removes the pidfile"


def test_pidfile_written_and_removed(tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "authd.pid"
    config = _config(tmp_path, [(HOST, port)], pidfile=str(pidfile))
    with start_authd(config.read_text()) as server:
        assert pidfile.read_text() == f"{server.process.pid}\n"
        assert not list(tmp_path.glob(".authd.pid.*")), "no temporary file left"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=WAIT) == 0
    assert not pidfile.exists()


def test_a_relative_pidfile_is_relative_to_the_config(tmp_path: Path) -> None:
    from authd.config import config_from_dict

    (tmp_path / "s.zone").write_text(ZONE)
    data = {
        "options": {"pidfile": "run/authd.pid"},
        "zones": [{"name": "s.test.", "file": "s.zone"}],
    }
    config = config_from_dict(data, None, str(tmp_path))
    assert config.options.pidfile == str(tmp_path / "run" / "authd.pid")


def test_an_unknown_user_is_refused_before_serving(tmp_path: Path) -> None:
    config = _config(tmp_path, [(HOST, free_port())], user="no-such-user-authd")
    done = subprocess.run(
        [sys.executable, "-m", "authd", "serve", "-c", str(config)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "no such user" in done.stderr, done.stderr


# -- --check-config and the state folder ------------------------------------------------------


def _check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authd", "serve", "-c", str(config), "--check-config"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_refuses_a_state_dir_the_user_cannot_write(nobody_dir: Path) -> None:
    config = _config(nobody_dir, [(HOST, free_port())], user="nobody")
    assert _check_config(config).returncode == 0
    os.chown(nobody_dir / "state", 0, 0)  # root's, 0755: nobody cannot write it
    done = _check_config(config)
    assert done.returncode == 1
    assert "options.state_dir" in done.stderr and "not writable by user nobody" in done.stderr


def test_check_config_refuses_a_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    config = _config(tmp_path, [(HOST, free_port())])
    (tmp_path / "blocker").write_text("a file where a folder should be")
    text = config.read_text().replace(f"state_dir: {tmp_path / 'state'}", "state_dir: blocker/x")
    config.write_text(text)
    done = _check_config(config)
    assert done.returncode == 1 and "options.state_dir" in done.stderr, done.stderr
    os.chmod(tmp_path, 0o755)


# -- the listening sockets' limits ------------------------------------------------------------


def test_listen_backlog_and_largest_query_on_both_families(tmp_path: Path) -> None:
    ss = require_binary("ss")
    port = free_port()
    config = _config(tmp_path, [("127.0.0.1", port), ("::1", port)])
    with start_authd(config.read_text()):
        # A listening socket's Send-Q in ss is its backlog.
        out = subprocess.run(
            [ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=30
        ).stdout
        backlogs = [int(line.split()[2]) for line in out.splitlines() if line.strip()]
        assert backlogs == [TCP_LISTEN_BACKLOG] * 2, out
        for address, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
            # The largest datagram read whole: padded (RFC 7830) to exactly UDP_MAX_QUERY.
            q = dns.message.make_query("s.test.", "SOA", use_edns=0)
            pad = UDP_MAX_QUERY - len(q.to_wire()) - 4
            q.use_edns(
                0, options=[dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\0" * pad)]
            )
            wire = q.to_wire(max_size=MAX_MESSAGE)
            assert len(wire) == UDP_MAX_QUERY
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.settimeout(QUERY_TIMEOUT)
                s.sendto(wire, (address, port))
                r = dns.message.from_wire(s.recv(65535))
            assert r.rcode() == dns.rcode.NOERROR and r.answer, address
