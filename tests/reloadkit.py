"""Helpers for the hot-reload, serial-policy and control-channel tests.

Owns: small zone texts, writing authd configs into short temporary folders
(the control socket's path must stay under the 108-byte Unix limit, which a
pytest ``tmp_path`` can exceed), a ``Lab`` that keeps every server a test
started and puts all their logs into a failure, bounded polling, DNS probes
and running ``authd ctl`` as a subprocess.

Invariants: every wait is a loop with a deadline; sockets only on 127.0.0.1;
``lab`` stops every server it started, and pytest prints their logs when the
test failed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import yaml

from harness.peers import HOST, REPO_ROOT, Server, ServerSet, free_port, start_authd

IO_TIMEOUT = 1.0  # seconds for one DNS query
CTL_TIMEOUT = 30.0  # seconds for one ``authd ctl`` run
_PORT_MARK = 987654321  # stands for the port in a dumped config


def zone_text(
    origin: str,
    serial: int,
    www: str = "192.0.2.1",
    extra: str = "",
    comment: str = "",
) -> str:
    """A small valid zone; *extra* lines are appended verbatim."""
    return (
        f"; {comment}\n"
        f"$ORIGIN {origin.rstrip('.')}.\n"
        "$TTL 300\n"
        f"@    SOA  ns hostmaster {serial} 7200 3600 1209600 300\n"
        "@    NS   ns\n"
        "ns   A    192.0.2.53\n"
        f"www  A    {www}\n" + extra
    )


def config_yaml(
    zones: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any] | None = None,
    port: int | str = "{port}",
) -> str:
    """An authd config on 127.0.0.1:*port* (``{port}``: start_authd fills it in)."""
    config: dict[str, Any] = {
        "listen": [{"address": HOST, "port": _PORT_MARK}],
        "zones": [dict(z) for z in zones],
    }
    if options:
        config["options"] = dict(options)
    text = yaml.safe_dump(config, sort_keys=False)
    return text.replace(f"port: {_PORT_MARK}", f"port: {port}")


class Lab(ServerSet):
    """The servers and folders of one test; failures carry every server's log."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="authd-rl-"))

    # -- servers -----------------------------------------------------------------

    def start(
        self,
        label: str,
        zones: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
        port: int | None = None,
    ) -> Server:
        """authd serving *zones* (config entries: name, file, ...) until ``authd ready``."""
        server = start_authd(config_yaml(zones, options), port=port or free_port())
        return self.add(label, server)

    def start_config(
        self, label: str, config: Mapping[str, Any], port: int | None = None
    ) -> Server:
        """authd with a whole config (a mapping; its ``listen`` is set here)."""
        port = port or free_port()
        text = yaml.safe_dump({"listen": [{"address": HOST, "port": port}], **config})
        server = start_authd(text, port=port)
        return self.add(label, server)

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def close(self) -> None:
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- assertions and waits ------------------------------------------------------

    def wait_log(self, server: Server, pattern: str, timeout: float, after: int = 0) -> str:
        """The first log line matching *pattern* among those after the first *after* lines."""

        def probe() -> str | None:
            lines = server.read_log().splitlines()[after:]
            return next((line for line in lines if re.search(pattern, line)), None)

        return str(self.wait(f"a log line matching {pattern!r}", probe, timeout))

    def wait_serial(self, server: Server, zone: str, serial: int, timeout: float) -> float:
        """Seconds until *server* answers *serial* for *zone*."""
        start = time.monotonic()
        self.wait(
            f"{zone} serial {serial} (serving {soa_serial(server.port, zone)})",
            lambda: soa_serial(server.port, zone) == serial,
            timeout,
        )
        return time.monotonic() - start


def running_lab() -> Iterator[Lab]:
    """The body of each test module's ``lab`` fixture: ``yield from running_lab()``."""
    lab = Lab()
    try:
        yield lab
    finally:
        logs = lab.logs(tail=400)
        lab.close()
        # Captured output: pytest shows it for failed tests only.
        print(logs)


# -- DNS probes ---------------------------------------------------------------------


def query(port: int, name: str, rdtype: str) -> dns.message.Message | None:
    q = dns.message.make_query(name, rdtype)
    try:
        return dns.query.udp(q, HOST, port=port, timeout=IO_TIMEOUT)
    except (OSError, dns.exception.DNSException):
        return None


def soa_serial(port: int, zone: str) -> int | None:
    """The serial answered for *zone*, None on no answer or an error rcode."""
    reply = query(port, zone, "SOA")
    if reply is None or reply.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def axfr_lines(port: int, zone: str, timeout: float = 10.0) -> list[str]:
    """Every record an AXFR of *zone* brings, as sorted zone-file lines with absolute
    names (``NAME TTL IN TYPE RDATA``; the closing SOA dropped)."""
    lines = []
    messages = dns.query.xfr(
        HOST, zone, port=port, timeout=timeout, lifetime=timeout, relativize=False
    )
    for message in messages:
        for rrset in message.answer:
            kind = dns.rdatatype.to_text(rrset.rdtype)
            lines.extend(f"{rrset.name} {rrset.ttl} IN {kind} {rd.to_text()}" for rd in rrset)
    return sorted(lines[:-1])


def rcode(port: int, name: str, rdtype: str = "SOA") -> int | None:
    reply = query(port, name, rdtype)
    return None if reply is None else int(reply.rcode())


def addresses(port: int, name: str) -> list[str]:
    reply = query(port, name, "A")
    if reply is None:
        return []
    return sorted(rd.to_text() for rrset in reply.answer if rrset.rdtype == 1 for rd in rrset)


def lines(server: Server, pattern: str) -> list[str]:
    return [line for line in server.read_log().splitlines() if re.search(pattern, line)]


def log_length(server: Server) -> int:
    return len(server.read_log().splitlines())


# -- authd ctl -------------------------------------------------------------------------


def ctl(*args: str, timeout: float = CTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m authd ctl ARGS``; its exit code, stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "authd", "ctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO_ROOT),
        check=False,
    )


def config_path(server: Server) -> str:
    return str(server.workdir / "authd.yaml")


def edit_config(server: Server, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite *server*'s config file with *change* applied to its parsed YAML."""
    path = config_path(server)
    with open(path) as f:
        config = yaml.safe_load(f)
    change(config)
    text = yaml.safe_dump(config, sort_keys=False)
    with open(path, "w") as f:
        f.write(text)


def add_zone(server: Server, name: str, file: str | os.PathLike[str]) -> None:
    edit_config(server, lambda c: c["zones"].append({"name": name, "file": str(file)}))


def remove_zone(server: Server, name: str) -> None:
    def change(config: dict[str, Any]) -> None:
        config["zones"] = [z for z in config["zones"] if z["name"] != name]

    edit_config(server, change)


def control_path(server: Server) -> str:
    """The default control socket: ``<state_dir>/authd.ctl`` beside the config."""
    return str(server.workdir / "state" / "authd.ctl")
