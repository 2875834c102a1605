"""The control channel: a Unix socket speaking one JSON object per line.

Owns: ``authd ctl`` requests on the server side.  Access is by file
permissions: the socket is created mode 0600 in the state folder, so only
the server's user (and root) can connect.  Invariants: one request per line,
at most ``MAX_REQUEST`` bytes; every request gets exactly one JSON reply line;
a malformed request gets ``{"ok": false, "error": ...}`` and the connection
stays usable.  Commands are a table (``Command``: a handler and its zone
argument's rule); ``dispatch`` checks the rules, so an unknown command's
error lists the known ones and a handler only sees arguments it accepts.
The typed status (``authd.status``) is rendered to JSON here, at the edge.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from authd.status import LoadRecord, ServerStatus, ZoneStatus

log = Logger(namespace="authd")

MAX_REQUEST = 4096

Handler = Callable[[dict[str, Any]], "defer.Deferred[dict[str, Any]] | dict[str, Any]"]


Target = tuple[str, dns.name.Name]  # (view, zone)


class ZoneArg(enum.Enum):
    """What a command does with ``zone``."""

    IGNORED = "ignored"  # checked if given, then unused (status, stop)
    OPTIONAL = "optional"  # without it: every zone (reload)
    REQUIRED = "required"  # notify, retransfer


@dataclass(frozen=True, slots=True)
class Command:
    # (the zone's (view, zone) pairs, empty without a zone; the zone as asked) -> reply
    # With *args* (``keys``): also the request's ``args``, a list of strings.
    run: Callable[..., Any]
    zone: ZoneArg = ZoneArg.IGNORED
    args: bool = False


def dispatch(
    commands: Mapping[str, Command],
    request: dict[str, Any],
    serving: Callable[[dns.name.Name], list[Target]],
) -> Any:
    """Run *request* through the table: a JSON-able reply dict, or its Deferred.

    *serving* gives the (view, zone) pairs that serve a zone name.
    """
    name = request["command"]
    command = commands.get(name)
    if command is None:
        return {
            "ok": False,
            "error": f"unknown command {name!r} (known: {', '.join(sorted(commands))})",
        }
    zone_text = request.get("zone")
    targets: list[Target] = []
    if zone_text is not None:
        try:
            zone = dns.name.from_text(str(zone_text))
        except dns.exception.DNSException as e:
            return {"ok": False, "error": f"bad zone name {zone_text!r}: {e}"}
        targets = serving(zone)
        if not targets:
            return {"ok": False, "error": f"no such zone: {zone.to_text()}"}
    elif command.zone is ZoneArg.REQUIRED:
        return {"ok": False, "error": f"{name} needs a zone"}
    zone_arg = None if zone_text is None else str(zone_text)
    if command.args:
        args = request.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return {"ok": False, "error": f"{name}: 'args' must be a list of strings"}
        return command.run(targets, zone_arg, args)
    return command.run(targets, zone_arg)


def _load_json(load: LoadRecord | None) -> dict[str, Any] | None:
    if load is None:
        return None
    return {"at": load.at, "outcome": load.outcome, "reason": load.reason, "serial": load.serial}


def _zone_json(z: ZoneStatus) -> dict[str, Any]:
    j = z.journal
    out: dict[str, Any] = {
        "view": z.view,
        "zone": z.zone.to_text(),
        "role": z.role,
        "file": z.file,
        "serial": z.serial,
        "records": z.records,
        "serving": z.serving,
        "loaded_at": z.loaded_at,
        "last_load": _load_json(z.last_load),
        "journal": None
        if j is None
        else {"from": j.serial_from, "to": j.serial_to, "entries": j.entries, "bytes": j.bytes},
        "primaries": list(z.primaries),
        "also_notify": list(z.also_notify),
    }
    r = z.fleet.refresh
    if r is not None:
        out["refresh"] = {
            "phase": r.phase,
            "last_result": r.last_result,
            "failures": r.failures,
            "expired": r.expired,
            "next_check_in": r.next_check_in,
        }
    if z.fleet.last_acks:
        out["secondaries_last_ack"] = dict(z.fleet.last_acks)
    g = z.signing
    if g is not None:
        out["signing"] = {
            "policy": g.policy,
            "denial": g.denial,
            "keys": [{"tag": t, "algorithm": a, "role": r} for t, a, r in g.keys],
            "earliest_expiry": g.earliest_expiry,
            "next_signing": g.next_signing,
            "key_states": [
                {"tag": t, "role": r, "state": st, "ds": ds} for t, r, st, ds in g.key_states
            ],
            "next_key_event": None
            if g.next_key_event is None
            else {"at": g.next_key_event[0], "what": g.next_key_event[1]},
        }
    return out


def status_json(status: ServerStatus) -> dict[str, Any]:
    """What ``authd ctl status --json`` prints."""
    stall = status.last_reload_stall
    return {
        "ok": True,
        "generation": status.generation,
        "uptime": status.uptime,
        "config": status.config,
        "last_reload_reactor_stall_ms": None if stall is None else round(stall * 1000, 1),
        "zones": [_zone_json(z) for z in status.zones],
    }


class ControlConnection(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_REQUEST

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def lineReceived(self, line: bytes) -> None:  # noqa: N802
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("command"), str):
                raise ValueError("expected an object with a string 'command'")
        except ValueError as e:
            self._send({"ok": False, "error": f"bad request: {e}"})
            return
        d = defer.maybeDeferred(self._handler, request)
        d.addCallbacks(self._send, self._failed)

    def _failed(self, failure: Any) -> None:
        log.failure("control request failed", failure)
        self._send({"ok": False, "error": failure.getErrorMessage()})

    def _send(self, reply: dict[str, Any]) -> None:
        if self.transport is not None:
            self.sendLine(json.dumps(reply).encode())

    def lineLengthExceeded(self, line: bytes) -> None:  # noqa: N802
        self._send({"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"})
        self.transport.loseConnection()  # type: ignore[union-attr]


class ControlFactory(protocol.Factory):
    noisy = False

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def buildProtocol(self, addr: object) -> ControlConnection:  # noqa: N802
        return ControlConnection(self._handler)


def listen(reactor: Any, path: str, handler: Handler) -> Any:
    """Listen on the Unix socket *path* (mode 0600), replacing a stale one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            # Connecting to a plain file is refused like a stale socket; removing
            # it would delete whatever a mistyped ``options.control`` names.
            raise RuntimeError(f"{path}: exists and is not a socket; not replaced")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # a socket left by a killed server: nobody accepts on it
        except OSError as e:
            # EAGAIN (a live server's backlog is full), EACCES (another user's
            # server), ENOTSOCK...: not provably stale, so never removed.
            raise RuntimeError(f"{path}: exists and cannot be probed ({e}); not replaced") from e
        else:
            raise RuntimeError(f"{path}: another authd is listening on this control socket")
        finally:
            probe.close()
    return reactor.listenUNIX(path, ControlFactory(handler), mode=0o600, wantPID=False)
