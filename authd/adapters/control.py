"""The control channel: a Unix socket speaking one JSON object per line.

Owns: ``authd ctl`` requests on the server side.  Access is by file
permissions: the socket is created mode 0600 in the state folder, so only
the server's user (and root) can connect.  Invariants: one request per line,
at most ``MAX_REQUEST`` bytes; every request gets exactly one JSON reply line;
a malformed request gets ``{"ok": false, "error": ...}`` and the connection
stays usable.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

log = Logger(namespace="authd")

MAX_REQUEST = 4096

Handler = Callable[[dict[str, Any]], "defer.Deferred[dict[str, Any]] | dict[str, Any]"]


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
