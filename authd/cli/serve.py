"""``authd serve``: run the server, or validate a config with ``--check-config``.

Owns: the overrides a quick try needs (``--listen ADDR[:PORT]``, ``--port N``,
``--query-log``), applied on top of the loaded config with
``dataclasses.replace`` (the config file is never edited), and what
``--check-config`` accepts.  A secondary zone with no stored copy yet passes
``--check-config`` with a note: it is filled by its first transfer, so a new
secondary can be validated before its first deploy.

Exit codes: 0 fine, 1 a refused config or zone, 2 a bad override.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import time
from collections.abc import Sequence

from authd.adapters.gcpause import gc_off
from authd.adapters.state import signing_keys
from authd.build import LoadOutcome, build_snapshot
from authd.cli.common import EXIT_USAGE, Subparsers, error, load_host_config
from authd.config import Config, ListenConfig
from authd.errors import AuthdError
from authd.limits import DEFAULT_PORT, MAX_PORT
from authd.views import shadowed_views


def register(sub: Subparsers) -> None:
    """Add the ``serve`` subcommand to *sub*."""
    serve = sub.add_parser("serve", help="serve zones (default: the bundled example zones)")
    serve.add_argument("-c", "--config", help="YAML config file (default: etc/authd.yaml)")
    serve.add_argument("--check-config", action="store_true", help="validate, load, exit 0/1")
    serve.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="ADDR[:PORT]",
        help="listen here instead of the config's addresses (repeatable; IPv6 as [::1]:5300)",
    )
    serve.add_argument(
        "--port",
        metavar="N",
        help="use port N for every listen address (the config's, or --listen's without a port)",
    )
    serve.add_argument("--query-log", action="store_true", help="log every query")
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.set_defaults(func=run)


class OverrideError(ValueError):
    """A bad ``--listen`` or ``--port`` value: exit 2."""


def parse_port(text: str, what: str = "--port") -> int:
    """A port number 0..65535 (0: the system picks one, as in the config)."""
    if not text.isdigit():
        raise OverrideError(f"{what} {text}: not a port number (0..{MAX_PORT})")
    port = int(text)
    if port > MAX_PORT:
        raise OverrideError(f"{what} {text}: not a port number (0..{MAX_PORT})")
    return port


def parse_listen(text: str) -> tuple[str, int | None]:
    """``ADDR[:PORT]`` -> (address, port or None); IPv6 as ``[::1]:5300``,
    ``[::1]`` or a bare ``::1`` (no port then: its colons are the address's)."""
    what = f"--listen {text}"
    port: int | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise OverrideError(f"{what}: missing ']' after the IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise OverrideError(f"{what}: expected ':PORT' after ']'")
            port = parse_port(rest[1:], what)
        family = 6
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = parse_port(port_text, what)
        family = 4
    else:
        host, family = text, 0
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise OverrideError(f"{what}: not an IP address: {host!r}") from None
    if family and address.version != family:
        hint = "an IPv6 address goes in brackets" if family == 4 else "brackets are for IPv6"
        raise OverrideError(f"{what}: {hint}")
    return str(address), port


def listen_override(
    current: Sequence[ListenConfig], listen: Sequence[str], port: str | None
) -> tuple[ListenConfig, ...]:
    """The listen addresses after ``--listen`` (replacing *current*) and
    ``--port`` (every address's port, except one given with ``--listen``)."""
    new_port = parse_port(port) if port is not None else None
    if listen:
        out = []
        for text in listen:
            address, given = parse_listen(text)
            chosen = given if given is not None else new_port
            out.append(ListenConfig(address, chosen if chosen is not None else DEFAULT_PORT))
    else:
        out = [
            ListenConfig(lc.address, new_port if new_port is not None else lc.port)
            for lc in current
        ]
    seen: set[tuple[str, int]] = set()
    for lc in out:
        if (lc.address, lc.port) in seen:
            raise OverrideError(f"duplicate listen address {lc.address} port {lc.port}")
        seen.add((lc.address, lc.port))
    return tuple(out)


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """*config* with the command line's ``--listen``, ``--port`` and ``--query-log``."""
    if args.listen or args.port is not None:
        config = dataclasses.replace(
            config, listen=listen_override(config.listen, args.listen, args.port)
        )
    if args.query_log:
        config = dataclasses.replace(
            config, options=dataclasses.replace(config.options, query_log=True)
        )
    return config


def state_dir_problem(config: Config) -> str | None:
    """Why the server could not write its state folder (None: it can).

    Without it the server has no control socket and keeps journals in memory
    only, so ``--check-config`` refuses.  A folder not there yet must be
    creatable.  With ``options.user`` and root, the user's rights decide.
    """
    from authd.adapters import daemon

    path = config.state_dir
    uid, gid = os.geteuid(), os.getegid()
    who = f"uid {uid}"
    if config.options.user is not None and uid == 0:
        try:
            uid, gid = daemon.lookup_user(config.options.user)
        except AuthdError as e:
            return str(e)
        who = f"user {config.options.user}"
    existing = path
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        return f"state_dir {path}: {existing} is not a folder"
    if uid == os.geteuid():
        # Ourselves: ask the kernel (a read-only mount refuses even root).
        writable = os.access(existing, os.W_OK | os.X_OK)
    else:
        writable = daemon.writable_by(existing, uid, gid)
    if not writable:
        what = "is not writable" if existing == path else f"cannot be created in {existing}"
        return f"state_dir {path} {what} by {who} (control socket, journals, secondary copies)"
    return None


def check_config(config: Config) -> int:
    """``--check-config``: load every zone as the server would; 0 or 1."""
    for warning in (*config.warnings, *shadowed_views(config.views)):
        error("authd", f"warning: {warning}")
    problem = state_dir_problem(config)
    if problem is not None:
        error("authd", f"options.{problem}")
    zones = config.zone_files()
    now = time.time()
    # Signed zones are signed as the server would (keys not yet made: in memory).
    keys, key_problems = signing_keys(config, int(now), write=False)
    with gc_off():  # a one-shot load of acyclic zone data: see gcpause
        _, events = build_snapshot(config, None, 0, now, None, keys, key_problems)
    bad = waiting = 0
    for event in events:
        zc = zones.get((event.view, event.zone))
        if event.awaiting_transfer and zc is not None:
            # Filled by its first transfer: no refusal.
            waiting += 1
            primaries = ", ".join(
                r.address if r.port == 53 else f"{r.address} port {r.port}" for r in zc.primaries
            )
            error(
                "authd", f"secondary zone {event.zone}: no copy yet, will transfer from {primaries}"
            )
        elif event.outcome is LoadOutcome.FAILED:
            bad += 1
            error("authd", f"zone {event.zone}: {event.reason}")
        else:
            for finding in event.findings:
                error("authd", finding)
    awaiting = f", {waiting} awaiting a first transfer" if waiting else ""
    error("authd", f"config {config.path}: {len(events)} zones, {bad} refused{awaiting}")
    return 1 if bad or problem is not None else 0


def run(args: argparse.Namespace) -> int:
    """``authd serve``; returns the exit code."""
    try:
        config = load_host_config(args.config)
    except AuthdError as e:
        error("authd", f"config refused: {e}")
        return 1
    try:
        config = apply_overrides(config, args)
    except OverrideError as e:
        error("authd serve", e)
        return EXIT_USAGE
    if args.check_config:
        return check_config(config)
    from twisted.logger import LogLevel

    from authd.adapters.service import run as run_service
    from authd.adapters.service import start_logging

    level = LogLevel.debug if args.verbose else LogLevel.info
    start_logging(level, fmt=config.options.log_format.value)
    return run_service(config)
