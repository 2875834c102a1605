"""Real DNS servers on loopback, for the end-to-end tests and the benchmarks.

Owns: starting Knot DNS, NSD, BIND and authd itself as child processes with
throw-away configurations on 127.0.0.1, waiting until they answer, and
stopping them again.  Each ``start_*`` function returns a ``Server`` that is
also a context manager.  ``cpu=N`` pins a server to one CPU (``taskset``),
for benchmarks that measure it.

Invariants:
- every wait is bounded (``STARTUP_TIMEOUT``, ``STOP_TIMEOUT``); a server that
  does not come up is killed and its log is put in the raised ``PeerError``;
- each server gets its own temporary directory (configuration, zone copies,
  run-time state), removed by ``stop()``;
- a missing binary is an error, never a skip: in CI a missing tool must fail;
- sockets only on 127.0.0.1;
- each server is the leader of its own process group (``Server.pgid``), so
  stopping it stops the helpers it forks, and a benchmark can sum the group's
  CPU time and memory.

Zone files are copied into the server's temporary zone directory together with
the files they ``$INCLUDE`` (relative ``$INCLUDE`` paths are read relative to
the including file's folder, which is also what authd does).  NSD 4 and Knot 3
do not read BIND's ``$GENERATE``; they get a copy of such a zone flattened by
``named-compilezone``, so BIND's own expansion is the reference.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn, TypeVar

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

STARTUP_TIMEOUT = 30.0  # seconds for a server to answer for all its zones
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
PROBE_TIMEOUT = 0.5  # seconds for one readiness query
PROBE_INTERVAL = 0.05  # seconds between readiness checks
MAX_INCLUDE_DEPTH = 8  # nesting of $INCLUDE followed when copying zone files
AUTHD_READY = "authd ready"

ZoneFiles = Mapping[str, "str | os.PathLike[str]"]

_INCLUDE = re.compile(r"^\$INCLUDE\s+(\S+)", re.IGNORECASE)
_GENERATE = re.compile(r"^\$GENERATE\s", re.IGNORECASE)


class PeerError(RuntimeError):
    """A server could not be found, configured, started or stopped."""


def require_binary(name: str) -> str:
    """Return the path of executable *name*; raise if it is not installed."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise PeerError(f"required program {name!r} is not installed")
    return found


def free_port() -> int:
    """A port on 127.0.0.1 free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise PeerError("no port free for both UDP and TCP on 127.0.0.1")


class Server:
    """A running server process with its temporary directory."""

    def __init__(
        self,
        kind: str,
        port: int,
        process: subprocess.Popen[bytes],
        workdir: Path,
        log_path: Path,
    ) -> None:
        self.kind = kind
        self.port = port
        self.host = HOST
        self.process = process
        self.workdir = workdir
        self.log_path = log_path
        self.log = ""  # kept after stop(), when the directory is gone

    @property
    def pgid(self) -> int:
        """The server's process group: its own pid (it was started in a new session)."""
        return self.process.pid

    def __repr__(self) -> str:
        return f"<{self.kind} on {self.host}:{self.port} pid {self.process.pid}>"

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return self.log

    def reload(self) -> None:
        """SIGHUP: authd, named and knotd all reload their zone files on it."""
        self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash: nothing is flushed or cleaned)."""
        _kill_group(self.process)

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL the process group; remove the directory."""
        stop_group(self.process)
        if self.workdir.exists():
            self.log = self.read_log()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


T = TypeVar("T")
WAIT_POLL = 0.02  # seconds between two checks of a condition


class ServerSet:
    """The servers one test (or bench) started, by label; a failure shows all their logs."""

    def __init__(self) -> None:
        self.servers: list[tuple[str, Server]] = []

    def add(self, label: str, server: Server) -> Server:
        self.servers.append((label, server))
        return server

    def logs(self, tail: int = 120) -> str:
        """The last *tail* lines of every server's log, each under a header."""
        parts = []
        for label, server in self.servers:
            lines = server.read_log().splitlines()
            parts.append(
                f"--- {label} ({server.kind} on port {server.port}, pid {server.process.pid}), "
                f"last {tail} lines ---\n" + "\n".join(lines[-tail:])
            )
        return "\n".join(parts)

    def fail(self, why: str) -> NoReturn:
        raise AssertionError(f"{why}\n{self.logs()}")

    def check(self, condition: object, why: str) -> None:
        if not condition:
            self.fail(why)

    def wait(self, what: str, probe: Callable[[], T], timeout: float, poll: float = WAIT_POLL) -> T:
        """Poll *probe* until it returns something truthy: at most timeout/poll times,
        and never past *timeout* (a slow probe uses up the time, not the count)."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / poll) + 1):
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                break
            time.sleep(poll)
        self.fail(f"timed out after {timeout:g}s waiting for {what}")

    def stop_all(self) -> None:
        """Stop the servers, the last started first (secondaries before their primary)."""
        for _, server in reversed(self.servers):
            server.stop()


def stop_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Stop a child started with ``start_new_session``: SIGTERM it, wait up to *timeout*,
    then SIGKILL its whole process group (NSD and BIND fork helpers into it)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(process, timeout)


def _kill_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"process {process.pid} survived SIGKILL") from exc


def _launch(kind: str, argv: list[str], workdir: Path, port: int, cpu: int | None) -> Server:
    log_path = workdir / f"{kind}.log"
    if cpu is not None:
        # taskset execs the server: the pid (and group) stays the server's own.
        argv = [require_binary("taskset"), "-c", str(cpu), *argv]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
    return Server(kind, port, process, workdir, log_path)


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH", "")
    return f"{REPO_ROOT}{os.pathsep}{existing}" if existing else str(REPO_ROOT)


def _fail(server: Server, why: str) -> PeerError:
    log = server.read_log()
    server.stop()
    tail = "\n".join(log.splitlines()[-40:])
    return PeerError(f"{server.kind} on port {server.port}: {why}\n--- log ---\n{tail}")


def _answers_soa(port: int, zone: str, tcp: bool) -> bool:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    try:
        if tcp:
            reply = dns.query.tcp(query, HOST, port=port, timeout=PROBE_TIMEOUT)
        else:
            reply = dns.query.udp(query, HOST, port=port, timeout=PROBE_TIMEOUT)
    except (OSError, dns.exception.DNSException):
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def _wait_until_serving(server: Server, zones: list[str], timeout: float) -> None:
    """Poll until every zone's SOA is answered over UDP and TCP."""
    deadline = time.monotonic() + timeout
    pending = list(zones)
    while pending:
        if server.process.poll() is not None:
            raise _fail(server, f"exited with status {server.process.returncode}")
        if time.monotonic() > deadline:
            raise _fail(server, f"not serving {pending} after {timeout:.0f}s")
        zone = pending[0]
        if _answers_soa(server.port, zone, tcp=False) and _answers_soa(server.port, zone, tcp=True):
            pending.pop(0)
        else:
            time.sleep(PROBE_INTERVAL)


def _wait_for_line(server: Server, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while needle not in server.read_log():
        if server.process.poll() is not None:
            raise _fail(server, f"exited with status {server.process.returncode}")
        if time.monotonic() > deadline:
            raise _fail(server, f"no {needle!r} line after {timeout:.0f}s")
        time.sleep(PROBE_INTERVAL)


def _includes(path: Path) -> list[str]:
    found = []
    with open(path, errors="replace") as lines:
        for line in lines:
            match = _INCLUDE.match(line)
            if match:
                found.append(match.group(1).strip('"'))
    return found


def _uses_generate(path: Path, depth: int = 0) -> bool:
    if depth > MAX_INCLUDE_DEPTH:
        raise PeerError(f"{path}: $INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}")
    with open(path, errors="replace") as lines:
        if any(_GENERATE.match(line) for line in lines):
            return True
    return any(
        _uses_generate(path.parent / name, depth + 1)
        for name in _includes(path)
        if not os.path.isabs(name)
    )


def _copy_with_includes(source: Path, target: Path, depth: int = 0) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise PeerError(f"{source}: $INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}")
    if target.exists() and target.read_bytes() != source.read_bytes():
        raise PeerError(f"two different zone files would both be copied to {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    for name in _includes(source):
        if not os.path.isabs(name):
            _copy_with_includes(source.parent / name, target.parent / name, depth + 1)


def _flatten(zone: str, source: Path, target: Path) -> None:
    """Write *source* with $INCLUDE and $GENERATE expanded by named-compilezone."""
    argv = [
        require_binary("named-compilezone"),
        "-q",
        "-i",
        "none",
        "-k",
        "ignore",
        "-s",
        "full",
        "-o",
        str(target),
        zone,
        source.name,
    ]
    done = subprocess.run(
        argv, cwd=source.parent, capture_output=True, timeout=STARTUP_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise PeerError(f"named-compilezone {source}: {done.stdout!r} {done.stderr!r}")


def _stage_zones(zones: ZoneFiles, zonesdir: Path, expand_generate: bool) -> dict[str, str]:
    """Copy the zone files into *zonesdir*; return zone name -> relative file name."""
    staged: dict[str, str] = {}
    zonesdir.mkdir(parents=True, exist_ok=True)
    for zone, file in zones.items():
        source = Path(file).resolve()
        if not source.is_file():
            raise PeerError(f"zone {zone}: no file {source}")
        if expand_generate and _uses_generate(source):
            name = f"{_zone_key(zone)}.flat"
            _flatten(zone, source, zonesdir / name)
        else:
            name = source.name
            _copy_with_includes(source, zonesdir / name)
        staged[_zone_key(zone)] = name
    return staged


def _zone_key(zone: str) -> str:
    return dns.name.from_text(zone).to_text(omit_final_dot=True).lower()


def _workdir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"authd-peer-{kind}-"))


def _prepare(binary: str, kind: str, port: int | None) -> tuple[str, int, Path]:
    """The program's path, the port (a free one unless given) and a fresh folder."""
    return require_binary(binary), port or free_port(), _workdir(kind)


def _by_zone_key(per_zone: Mapping[str, str] | None) -> dict[str, str]:
    return {_zone_key(z): text for z, text in (per_zone or {}).items()}


def _start(
    kind: str,
    argv: list[str],
    workdir: Path,
    port: int,
    zones: list[str],
    timeout: float,
    cpu: int | None,
) -> Server:
    server = _launch(kind, argv, workdir, port, cpu)
    _wait_until_serving(server, zones, timeout)
    return server


KNOT_TEMPLATE = "    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n"


def start_knot(
    zones: ZoneFiles,
    port: int | None = None,
    timeout: float = STARTUP_TIMEOUT,
    *,
    extra: str = "",
    sections: str = "",
    template: str = KNOT_TEMPLATE,
    templates: str = "",
    zone_options: Mapping[str, str] | None = None,
    secondaries: Sequence[str] = (),
    wait_for: Sequence[str] | None = None,
    cpu: int | None = None,
) -> Server:
    """Knot DNS (knotd) serving *zones* (zone name -> file) on 127.0.0.1:*port*.

    *extra* is appended to the ``server:`` section verbatim (indented lines).
    For transfer tests: *sections* is inserted verbatim at the top level
    (``key:``, ``remote:``, ``acl:``); *template* replaces the settings of the
    default template (``zonefile-load: difference`` and ``journal-content:
    changes`` make a primary serve IXFR after a reload); *templates* adds more
    template entries (``  - id: ...`` lines; ``{storage}`` in them is the zone
    folder), as a catalog consumer's ``catalog-template``; *zone_options* maps
    a zone name to lines added to its entry (``    master: primary``);
    *secondaries* are zones without a file, transferred in.  The start waits
    until every zone in *wait_for* (default: all of them) answers its SOA.
    """
    knotd, port, workdir = _prepare("knotd", "knot", port)
    options = _by_zone_key(zone_options)
    try:
        staged = _stage_zones(zones, workdir / "zones", expand_generate=True)
        (workdir / "run").mkdir()
        (workdir / "db").mkdir()
        zone_lines = "".join(
            f'  - domain: "{zone}."\n    file: "{name}"\n' + options.get(zone, "")
            for zone, name in staged.items()
        )
        zone_lines += "".join(
            f'  - domain: "{_zone_key(zone)}."\n' + options.get(_zone_key(zone), "")
            for zone in secondaries
        )
        conf = (
            "server:\n"
            f'    rundir: "{workdir / "run"}"\n'
            f"    listen: {HOST}@{port}\n"
            "    udp-workers: 1\n"
            "    tcp-workers: 1\n"
            "    background-workers: 1\n" + extra + "database:\n"
            f'    storage: "{workdir / "db"}"\n'
            "log:\n"
            "  - target: stderr\n"
            "    any: info\n" + sections + "template:\n"
            "  - id: default\n"
            f'    storage: "{workdir / "zones"}"\n'
            + template
            + templates.replace("{storage}", str(workdir / "zones"))
            + "zone:\n"
            + zone_lines
        )
        (workdir / "knot.conf").write_text(conf)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    argv = [knotd, "-c", str(workdir / "knot.conf")]
    waits = list(staged) + [_zone_key(z) for z in secondaries] if wait_for is None else wait_for
    return _start("knot", argv, workdir, port, [_zone_key(z) for z in waits], timeout, cpu)


def start_nsd(
    zones: ZoneFiles,
    port: int | None = None,
    timeout: float = STARTUP_TIMEOUT,
    *,
    extra: str = "",
    cpu: int | None = None,
) -> Server:
    """NSD serving *zones* (zone name -> file) on 127.0.0.1:*port*.

    *extra* is appended to the ``server:`` section verbatim (indented lines).
    """
    nsd, port, workdir = _prepare("nsd", "nsd", port)
    try:
        staged = _stage_zones(zones, workdir / "zones", expand_generate=True)
        zone_lines = "".join(
            f'zone:\n    name: "{zone}"\n    zonefile: "{name}"\n' for zone, name in staged.items()
        )
        conf = (
            "server:\n"
            f"    ip-address: {HOST}@{port}\n"
            f"    port: {port}\n"
            "    do-ip6: no\n"
            '    username: ""\n'
            '    chroot: ""\n'
            f'    zonesdir: "{workdir / "zones"}"\n'
            f'    pidfile: "{workdir / "nsd.pid"}"\n'
            f'    xfrdfile: "{workdir / "xfrd.state"}"\n'
            f'    zonelistfile: "{workdir / "zone.list"}"\n'
            f'    xfrdir: "{workdir}"\n'
            '    database: ""\n'
            "    server-count: 1\n"
            "    verbosity: 1\n" + extra + "remote-control:\n"
            "    control-enable: no\n" + zone_lines
        )
        (workdir / "nsd.conf").write_text(conf)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    argv = [nsd, "-d", "-c", str(workdir / "nsd.conf")]
    return _start("nsd", argv, workdir, port, list(staged), timeout, cpu)


def start_bind(
    zones: ZoneFiles,
    port: int | None = None,
    timeout: float = STARTUP_TIMEOUT,
    *,
    extra: str = "",
    top: str = "",
    zone_options: Mapping[str, str] | None = None,
    secondaries: Sequence[str] = (),
    wait_for: Sequence[str] | None = None,
    cpu: int | None = None,
) -> Server:
    """BIND 9 (named) serving *zones* (zone name -> file) on 127.0.0.1:*port*.

    *extra* is appended to the ``options`` block verbatim (indented lines).
    For transfer tests: *top* is inserted verbatim after the ``options``
    block (``key``, ``server`` statements); *zone_options* maps a zone name
    to the statements of its ``zone`` block after ``type``/``file`` (for a
    primary they replace the default ``notify no;``; for one of the
    *secondaries*, zones without a file given here, they are the whole
    block, ``type secondary; primaries ...; file ...;``).  The start waits
    until every zone in *wait_for* (default: all of them) answers its SOA.
    """
    named, port, workdir = _prepare("named", "bind", port)
    options = _by_zone_key(zone_options)
    try:
        staged = _stage_zones(zones, workdir / "zones", expand_generate=False)
        zone_lines = "".join(
            f'zone "{zone}" {{ type primary; file "{name}"; {options.get(zone, "notify no;")} }};\n'
            for zone, name in staged.items()
        )
        zone_lines += "".join(
            f'zone "{_zone_key(zone)}" {{ {options[_zone_key(zone)]} }};\n' for zone in secondaries
        )
        conf = (
            "options {\n"
            f'    directory "{workdir / "zones"}";\n'
            f'    pid-file "{workdir / "named.pid"}";\n'
            f'    session-keyfile "{workdir / "session.key"}";\n'
            f'    managed-keys-directory "{workdir}";\n'
            f"    listen-on port {port} {{ {HOST}; }};\n"
            "    listen-on-v6 { none; };\n"
            "    recursion no;\n"
            "    dnssec-validation no;\n"
            "    allow-query { any; };\n"
            "    notify no;\n" + extra + "};\n"
            "controls { };\n" + top + zone_lines
        )
        (workdir / "named.conf").write_text(conf)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    argv = [named, "-g", "-n", "1", "-c", str(workdir / "named.conf")]
    waits = list(staged) + [_zone_key(z) for z in secondaries] if wait_for is None else wait_for
    return _start("bind", argv, workdir, port, [_zone_key(z) for z in waits], timeout, cpu)


def authd_config(zones: ZoneFiles, port: int, options: Mapping[str, object] | None = None) -> str:
    """The YAML configuration for authd serving *zones* on 127.0.0.1:*port*."""
    config: dict[str, object] = {
        "listen": [{"address": HOST, "port": port}],
        "zones": [
            {"name": _zone_key(zone), "file": str(Path(file).resolve())}
            for zone, file in zones.items()
        ],
    }
    if options:
        config["options"] = dict(options)
    return yaml.safe_dump(config, sort_keys=False)


def start_authd(
    config: str | ZoneFiles,
    port: int | None = None,
    *,
    options: Mapping[str, object] | None = None,
    timeout: float = STARTUP_TIMEOUT,
    cpu: int | None = None,
) -> Server:
    """Run ``python -m authd serve`` until it logs ``authd ready``.

    *config* is either the YAML text (``{port}`` in it is replaced by the
    port, so callers can let this module pick one) or a mapping zone name ->
    file, from which a configuration listening on 127.0.0.1 is written.
    """
    port = port or free_port()
    workdir = _workdir("authd")
    if isinstance(config, str):
        text = config.replace("{port}", str(port))
        if options:
            raise PeerError("options are given inside the configuration text")
    else:
        text = authd_config(config, port, options)
    conf_path = workdir / "authd.yaml"
    conf_path.write_text(text)
    argv = [sys.executable, "-m", "authd", "serve", "-c", str(conf_path)]
    server = _launch("authd", argv, workdir, port, cpu)
    _wait_for_line(server, AUTHD_READY, timeout)
    return server
