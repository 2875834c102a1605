"""``authd ctl``: talk to a running server over its control socket.

Owns: the client side of the control channel (one JSON request line, one
JSON reply line) and turning replies into text for people or ``--json``.
Exit codes: 0 done, 1 the server said no, 2 no server to talk to.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any

from authd.cli.common import Subparsers
from authd.config import default_config, load_config, read_yaml
from authd.errors import AuthdError, ConfigError

TIMEOUT = 30.0  # seconds for an answer
RELOAD_TIMEOUT = 900.0  # reload answers when done: a million-record zone takes ~40 s


def request(path: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    """Send one request to the control socket at *path*; its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(payload).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply = json.loads(buf)
    if not isinstance(reply, dict):
        raise ValueError("the server's reply is not an object")
    return reply


KEY_ACTIONS = ("ds-seen", "rollover")


def _ago(t: float | None) -> str:
    if t is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def format_status(reply: dict[str, Any]) -> str:
    lines = [
        f"config {reply.get('config')}, generation {reply.get('generation')}, "
        f"up {reply.get('uptime', 0):.0f}s"
    ]
    for z in reply.get("zones", []):
        serial = z["serial"] if z["serial"] is not None else "-"
        state = "serving" if z["serving"] else "NOT SERVING (SERVFAIL)"
        lines.append(
            f"{z['zone']} view {z['view']}: {z['role']}, serial {serial}, {z['records']} records, "
            f"{state}"
        )
        last = z.get("last_load") or {}
        if last:
            why = f" ({last['reason']})" if last.get("reason") else ""
            lines.append(
                f"    loaded at {_ago(z.get('loaded_at'))}; last load: {last['outcome']}{why}"
            )
        j = z.get("journal")
        lines.append(
            f"    journal: serials {j['from']}..{j['to']}, {j['entries']} changes, "
            f"{j['bytes']} bytes"
            if j
            else "    journal: empty"
        )
        if z.get("primaries"):
            lines.append(f"    primaries: {', '.join(z['primaries'])}")
        r = z.get("refresh")
        if r:
            lines.append(
                f"    refresh: {r['phase']}, last result: {r['last_result']}, "
                f"next check in {r['next_check_in']:.0f}s{', EXPIRED' if r['expired'] else ''}"
            )
        for target, ack in (z.get("secondaries_last_ack") or {}).items():
            lines.append(f"    notify {target}: {ack}")
        g = z.get("signing")
        if g:
            keys = ", ".join(f"{k['role']} {k['tag']} (alg {k['algorithm']})" for k in g["keys"])
            lines.append(
                f"    signing: policy {g['policy']} ({g['denial']}), keys {keys or 'none'}"
            )
            lines.append(
                f"    signatures: earliest expiry {_ago(g['earliest_expiry'])}, "
                f"next signing {_ago(g['next_signing'])}"
            )
            for k in g.get("key_states") or []:
                lines.append(f"    key {k['role']} {k['tag']}: {k['state']}, ds {k['ds']}")
            event = g.get("next_key_event")
            lines.append(
                "    next key event: "
                + (f"{event['what']} at {_ago(event['at'])}" if event else "none scheduled")
            )
    return "\n".join(lines)


def _socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    if not args.config:
        config = default_config()
    else:
        try:
            config = load_config(args.config)
        except AuthdError as e:
            # A broken config edit is refused by the server, which keeps running
            # on the old one: that is when ``ctl status`` matters most.  Only
            # the socket's place is needed, so read just those options.
            path = _control_from_options(args.config)
            if path is None:
                raise
            print(f"authd ctl: note: the config does not load ({e}); using {path}", file=sys.stderr)
            return path
    assert config.options.control is not None
    return config.options.control


def _control_from_options(config_path: str) -> str | None:
    """The control socket named by *config_path*'s options alone, as ``load_config``
    resolves it (``options.control``, default ``<state_dir>/authd.ctl``, both
    relative to the config's folder); None when the file cannot be read.  A file
    that is not even YAML (a half-saved edit) is read up to where it breaks,
    and gives the default place when nothing before that parses."""
    if not os.path.isfile(config_path):
        return None
    try:
        data = read_yaml(config_path, before_error=True)
    except ConfigError:
        data = None
    options = data.get("options") if isinstance(data, dict) else None
    options = options or {}
    if not isinstance(options, dict):
        return None
    state_dir = options.get("state_dir", "state")
    control = options.get("control")
    if not isinstance(state_dir, str) or not isinstance(control, str | None):
        return None
    base = os.path.dirname(os.path.abspath(config_path))
    state = os.path.normpath(os.path.join(base, state_dir))
    return os.path.normpath(os.path.join(base, control or os.path.join(state, "authd.ctl")))


def _cmd_ctl(args: argparse.Namespace) -> int:
    try:
        path = _socket_path(args)
    except AuthdError as e:
        print(f"authd ctl: {e}", file=sys.stderr)
        return 2
    payload: dict[str, Any] = {"command": args.action}
    if args.action == "keys":
        # keys ds-seen ZONE [TAG] | keys rollover ZONE zsk|ksk|csk
        if args.zone not in KEY_ACTIONS or not args.rest:
            print(
                "authd ctl: usage: keys ds-seen ZONE [TAG] | keys rollover ZONE zsk|ksk|csk",
                file=sys.stderr,
            )
            return 2
        payload["zone"] = args.rest[0]
        payload["args"] = [args.zone, *args.rest[1:]]
    elif args.rest:
        print(f"authd ctl: {args.action}: unexpected {' '.join(args.rest)}", file=sys.stderr)
        return 2
    elif args.zone:
        payload["zone"] = args.zone
    timeout = args.timeout or (RELOAD_TIMEOUT if args.action in ("reload", "keys") else TIMEOUT)
    try:
        reply = request(path, payload, timeout)
    except (OSError, ValueError) as e:
        print(f"authd ctl: cannot talk to the server at {path}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
    elif not reply.get("ok"):
        print(f"authd ctl: {reply.get('error')}", file=sys.stderr)
    elif args.action == "status":
        print(format_status(reply))
    else:
        print(reply.get("message", "ok"))
    return 0 if reply.get("ok") else 1


def register(sub: Subparsers) -> None:
    """Add the ``ctl`` subcommand to *sub*."""
    ctl = sub.add_parser("ctl", help="control a running server (status, reload, notify...)")
    ctl.add_argument("action", choices=["status", "reload", "notify", "retransfer", "stop", "keys"])
    ctl.add_argument(
        "zone",
        nargs="?",
        help="zone name (reload: optional; notify, retransfer); keys: ds-seen or rollover",
    )
    ctl.add_argument(
        "rest", nargs="*", help="keys ds-seen ZONE [TAG]; keys rollover ZONE zsk|ksk|csk"
    )
    ctl.add_argument("-c", "--config", help="the server's config (to find its control socket)")
    ctl.add_argument("--socket", help="control socket path (overrides the config)")
    ctl.add_argument("--json", action="store_true", help="print the server's JSON reply")
    ctl.add_argument(
        "--timeout",
        type=float,
        help=f"seconds to wait for the answer (default {TIMEOUT:g}; reload {RELOAD_TIMEOUT:g})",
    )
    ctl.set_defaults(func=_cmd_ctl)
