"""``authd keys list|generate|import|ds``: a zone's DNSSEC keys in the key store.

The store is ``<state_dir>/keys/<zone>/`` (``authd.adapters.keystore``);
``state_dir`` comes from ``-c CONFIG`` (as ``authd serve`` resolves it) or
``--state-dir``.  A zone the config does not serve gets a note, not a refusal:
keys may be imported before the zone's ``dnssec:`` line is added.

Exit codes: 0 done, 1 a key or the store refused (a clear message on
stderr, nothing written), 2 usage (a bad zone name, no such file given).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import dns.exception
import dns.name

from authd.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Subparsers, error
from authd.errors import AuthdError

if TYPE_CHECKING:
    from authd.keyfiles import ZoneKey
    from authd.keytimeline import Timings

PROG = "authd keys"


def register(sub: Subparsers) -> None:
    """Add the ``keys`` subcommand to *sub*."""
    keys = sub.add_parser("keys", help="list, generate, import DNSSEC keys; print DS records")
    actions = keys.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="the server's config (its options.state_dir)")
        p.add_argument("--state-dir", help="the state folder (overrides the config's)")

    listing = actions.add_parser("list", help="keys with their roles, times and next event")
    listing.add_argument("zone", nargs="?", help="one zone (default: every zone in the store)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    common(listing)
    listing.set_defaults(func=run_list)

    generate = actions.add_parser("generate", help="make a new key pair for a zone")
    generate.add_argument("zone")
    generate.add_argument("--algorithm", type=int, choices=[13, 15], default=13)
    generate.add_argument("--role", choices=["csk", "ksk", "zsk"], default="csk")
    common(generate)
    generate.set_defaults(func=run_generate)

    imp = actions.add_parser(
        "import", help="copy BIND key pairs (K<zone>+<alg>+<tag>.key/.private)"
    )
    imp.add_argument("zone")
    imp.add_argument("files", nargs="+", metavar="KEYFILE", help="BIND .key files")
    imp.add_argument(
        "--ds-seen",
        action="store_true",
        help="the parent already has these KSKs' DS (a migration from BIND)",
    )
    common(imp)
    imp.set_defaults(func=run_import)

    seen = actions.add_parser(
        "ds-seen",
        help="the parent has the DS of the KSK waiting for it (or of TAG); "
        "a running server: authd ctl keys ds-seen",
    )
    seen.add_argument("zone")
    seen.add_argument("tag", nargs="?", type=int)
    common(seen)
    seen.set_defaults(func=run_ds_seen)

    ds = actions.add_parser("ds", help="print the DS records for the parent (SHA-256)")
    ds.add_argument("zone")
    common(ds)
    ds.set_defaults(func=run_ds)


# -- where the store is ----------------------------------------------------------------------


def _state_dir(args: argparse.Namespace, zone: dns.name.Name | None) -> str:
    """The state folder, from ``--state-dir`` or the config; notes (on stderr)
    a *zone* the config does not serve."""
    if args.state_dir:
        return str(args.state_dir)
    from authd.cli.common import load_host_config

    config = load_host_config(args.config)
    if zone is not None and not any(z.name == zone for v in config.views for z in v.zones):
        print(f"{PROG}: note: the config does not serve {zone}", file=sys.stderr)
    return config.state_dir


def _timings(args: argparse.Namespace, zone: dns.name.Name) -> Timings:
    """The zone's policy timings from the config (the default policy's without one)."""
    from authd.signpolicy import DEFAULT

    if args.config:
        from authd.cli.common import load_host_config

        config = load_host_config(args.config)
        for vc in config.views:
            for zc in vc.zones:
                if zc.name == zone and zc.dnssec is not None:
                    return zc.dnssec.timings()
    return DEFAULT.timings()


def _zone(text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as e:
        raise _Usage(f"{text!r} is not a zone name: {e}") from None


class _Usage(Exception):
    pass


def _run(args: argparse.Namespace, body: Callable[[], int]) -> int:
    try:
        return int(body())
    except _Usage as e:
        error(PROG, e)
        return EXIT_USAGE
    except AuthdError as e:
        error(PROG, e)
        return EXIT_FINDINGS


# -- list ------------------------------------------------------------------------------------


def _when(t: int | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_state(key: ZoneKey, now: int) -> str:
    """Where *key* is at *now*, by its times: generated, published, active,
    retired (no longer signing, still published) or removed."""
    from authd.rollover import state_of

    return state_of(key, now)


def next_event(key: ZoneKey, now: int) -> tuple[str, int] | None:
    """The earliest of *key*'s times still ahead of *now*: (what, when)."""
    ahead = [
        (when, what)
        for what in ("publish", "activate", "retire", "remove")
        if (when := getattr(key, what)) is not None and int(when) > now
    ]
    if not ahead:
        return None
    when, what = min(ahead)
    return what, when


def _key_json(zone: dns.name.Name, key: ZoneKey, now: int, t: Timings) -> dict[str, object]:
    from authd.keyfiles import TIMES
    from authd.rollover import ds_of

    event = next_event(key, now)
    return {
        "zone": zone.to_text(),
        "tag": key.tag,
        "algorithm": key.algorithm,
        "role": key.role,
        "state": key_state(key, now),
        "ds": ds_of(key, t, now),
        "created": key.created,
        **{t: getattr(key, t) for t in TIMES},
        "next_event": None if event is None else {"what": event[0], "at": event[1]},
    }


def run_list(args: argparse.Namespace) -> int:
    """``authd keys list [ZONE]``."""
    from authd.adapters.keystore import list_zones, load_keys
    from authd.keyfiles import ALGORITHMS, TIMES
    from authd.rollover import ds_of, next_step

    def body() -> int:
        zone = _zone(args.zone) if args.zone else None
        state = _state_dir(args, zone)
        now = int(time.time())
        zones = [zone] if zone is not None else list_zones(state)
        found = [(z, key) for z in zones for key in load_keys(state, z)]
        timings = {z: _timings(args, z) for z in zones}
        if args.json:
            steps = {}
            for z in zones:
                step = next_step([k for y, k in found if y == z], timings[z], now)
                steps[z.to_text()] = None if step is None else {"at": step[0], "what": step[1]}
            listed = [_key_json(z, k, now, timings[z]) for z, k in found]
            print(json.dumps({"keys": listed, "next_events": steps}, indent=2))
            return EXIT_OK
        if not found:
            where = f"for {zone}" if zone is not None else "in the store"
            print(f"no keys {where} ({state}/keys)")
            return EXIT_OK
        for z, key in found:
            name = ALGORITHMS[key.algorithm]
            ds = ds_of(key, timings[z], now)
            print(
                f"{z} {key.tag:>5} {key.algorithm} ({name}) {key.role} {key_state(key, now)}"
                f" ds={ds}"
            )
            print("    " + " ".join(f"{t}={_when(getattr(key, t))}" for t in ("created", *TIMES)))
            event = next_event(key, now)
            print(
                f"    next: {'none known' if event is None else f'{event[0]} at {_when(event[1])}'}"
            )
        for z in zones:
            step = next_step([k for y, k in found if y == z], timings[z], now)
            if step is not None:
                print(f"{z} next event: {step[1]} at {_when(step[0])}")
        return EXIT_OK

    return _run(args, body)


# -- generate, import ------------------------------------------------------------------------


def run_generate(args: argparse.Namespace) -> int:
    """``authd keys generate ZONE [--algorithm 13|15] [--role csk|ksk|zsk]``."""
    from authd.adapters.keystore import generate_key, load_keys

    def body() -> int:
        zone = _zone(args.zone)
        state = _state_dir(args, zone)
        now = int(time.time())
        # A key with no active key of its role to take over from signs at once
        # (a zone's first keys); one added beside an active key of its role is
        # only published: replacing that key's signatures before the new DNSKEY
        # has reached the caches would be bogus there (RFC 6781 section
        # 4.1.1.1), so the signing policy activates it when it is safe.
        first = not any(
            k.role == args.role and key_state(k, now) == "active" for k in load_keys(state, zone)
        )
        key = generate_key(
            state,
            zone,
            args.algorithm,
            args.role,
            now,
            publish=now,
            activate=now if first else None,
        )
        print(f"{zone} {key.tag} {key.algorithm} {key.role}: {key.file}")
        if not first:
            print(
                f"{PROG}: note: published, not active: the signing policy activates it",
                file=sys.stderr,
            )
        return EXIT_OK

    return _run(args, body)


def run_import(args: argparse.Namespace) -> int:
    """``authd keys import ZONE Kzone.+013+tag.key...``."""
    from authd.adapters.keystore import import_bind_keys

    def body() -> int:
        zone = _zone(args.zone)
        state = _state_dir(args, zone)
        for key in import_bind_keys(
            state, zone, list(args.files), int(time.time()), ds_seen=args.ds_seen
        ):
            print(f"{zone} {key.tag} {key.algorithm} {key.role}: imported as {key.file}")
        return EXIT_OK

    return _run(args, body)


def run_ds_seen(args: argparse.Namespace) -> int:
    """``authd keys ds-seen ZONE [TAG]``: record in the store that the parent
    has the DS (a running server takes the step at its next reload; ``authd
    ctl keys ds-seen`` does both at once)."""
    from authd.adapters.keystore import update_keys
    from authd.rollover import apply, ds_seen

    def body() -> int:
        zone = _zone(args.zone)
        state = _state_dir(args, zone)
        t = _timings(args, zone)
        now = int(time.time())
        changed: list[int] = []

        def change(keys: tuple[ZoneKey, ...]) -> list[ZoneKey]:
            changes = ds_seen(keys, now, t, args.tag)
            changed.extend(c.tag for c in changes if c.ds_seen == now)
            return apply(keys, changes)

        update_keys(state, zone, change)
        if not changed:
            print(f"{zone}: no KSK waits for its DS; nothing changed")
        for tag in changed:
            print(f"{zone} {tag}: DS seen at the parent at {_when(now)}")
        return EXIT_OK

    return _run(args, body)


# -- ds --------------------------------------------------------------------------------------


def run_ds(args: argparse.Namespace) -> int:
    """``authd keys ds ZONE``: the DS records of the zone's KSKs and CSKs not
    yet removed, as zone file lines for the parent."""
    from authd.adapters.keystore import load_keys
    from authd.keyfiles import ds_records

    def body() -> int:
        zone = _zone(args.zone)
        state = _state_dir(args, zone)
        now = int(time.time())
        keys = [k for k in load_keys(state, zone) if k.remove is None or k.remove > now]
        records = ds_records(keys)
        if not records:
            error(PROG, f"{zone} has no KSK or CSK in {state}/keys")
            return EXIT_FINDINGS
        for ds in records:
            print(f"{zone} IN DS {ds.to_text()}")
        return EXIT_OK

    return _run(args, body)
