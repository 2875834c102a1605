"""Catalog provisioning benchmark: how fast consumers follow an authd catalog.

Owns: an authd producer on 127.0.0.1 generating ``catalog.invalid.`` over N
small member zones (NOTIFY to the consumer), and one consumer at a time,
authd, Knot and BIND, each started with nothing: the seconds from its start
until it answers the SOA of every member (provisioning: the process start,
one catalog transfer and N member transfers; authd's start alone is a
second or two of Python imports), then, after half the members leave the catalog
(config rewritten, SIGHUP), the seconds until none of those is answered.
Reported with the ratios authd/Knot and authd/BIND measured in the same run.

Usage: python -m bench.catalog [--members 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import yaml

from harness.peers import (
    HOST,
    KNOT_TEMPLATE,
    Server,
    free_port,
    start_authd,
    start_bind,
    start_knot,
)

CAT = "catalog.invalid"
TIMEOUT = 300.0  # seconds for a consumer to follow, at most


def answers(port: int, zone: str) -> bool:
    query = dns.message.make_query(zone + ".", dns.rdatatype.SOA)
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def until(names: list[str], port: int, want: bool, since: float) -> float:
    """Seconds from *since* until every zone of *names* is answered (*want*) or not."""
    left = set(names)
    while left and time.monotonic() - since < TIMEOUT:
        left = {z for z in left if answers(port, z) != want}
        if left:
            time.sleep(0.05)
    if left:
        raise SystemExit(f"{len(left)} zones still {'missing' if want else 'served'}")
    return time.monotonic() - since


def producer_config(port: int, folder: Path, names: list[str], members: set[str], to: int) -> str:
    notify = [{"address": HOST, "port": to}]
    zones: list[dict[str, Any]] = [
        {"name": CAT, "catalog_role": "generate", "allow_transfer": [HOST], "also_notify": notify}
    ]
    for name in names:
        zone: dict[str, Any] = {
            "name": name,
            "file": str(folder / "zones" / f"{name}.zone"),
            "allow_transfer": [HOST],
        }
        if name in members:
            zone["catalog_zone"] = CAT
        zones.append(zone)
    config = {
        "listen": [{"address": HOST, "port": port}],
        "options": {"state_dir": str(folder / "pstate"), "watch": False},
        "zones": zones,
    }
    return yaml.safe_dump(config, sort_keys=False)


def authd_consumer(port: int, primary: int, folder: Path) -> Server:
    config = {
        "listen": [{"address": HOST, "port": port}],
        "options": {"state_dir": str(folder / "cstate"), "watch": False},
        "zones": [
            {
                "name": CAT,
                "type": "secondary",
                "catalog_role": "interpret",
                "primaries": [{"address": HOST, "port": primary}],
            }
        ],
    }
    return start_authd(yaml.safe_dump(config), port=port, timeout=TIMEOUT)


def knot_consumer(port: int, primary: int, folder: Path) -> Server:
    sections = (
        f"remote:\n  - id: primary\n    address: {HOST}@{primary}\n"
        f"acl:\n  - id: notify\n    address: {HOST}\n    action: notify\n"
    )
    templates = (
        '  - id: member\n    storage: "{storage}"\n    master: primary\n    acl: notify\n'
        + KNOT_TEMPLATE
    )
    options = "    master: primary\n    acl: notify\n    catalog-role: interpret\n"
    return start_knot(
        {},
        port,
        sections=sections,
        templates=templates,
        secondaries=[CAT],
        wait_for=[],
        zone_options={CAT: options + "    catalog-template: member\n"},
    )


def bind_consumer(port: int, primary: int, folder: Path) -> Server:
    extra = (
        f'    catalog-zones {{ zone "{CAT}." default-primaries port {primary} '
        f"{{ {HOST}; }} in-memory yes; }};\n"
    )
    options = f'type secondary; primaries port {primary} {{ {HOST}; }}; file "catalog.copy";'
    return start_bind({}, port, extra=extra, secondaries=[CAT], zone_options={CAT: options})


CONSUMERS: dict[str, Callable[[int, int, Path], Server]] = {
    "authd": authd_consumer,
    "knot": knot_consumer,
    "bind": bind_consumer,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"members": args.members}
    for kind, start in CONSUMERS.items():
        folder = Path(tempfile.mkdtemp(prefix="authd-bench-catalog-"))
        (folder / "zones").mkdir()
        names = [f"z{i:05d}.example" for i in range(args.members)]
        for name in names:
            (folder / "zones" / f"{name}.zone").write_text(
                f"$ORIGIN {name}.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n"
                "@ NS ns\nns A 192.0.2.1\n"
            )
        pport, cport = free_port(), free_port()
        primary = start_authd(
            producer_config(pport, folder, names, set(names), cport), port=pport, timeout=TIMEOUT
        )
        consumer = None
        try:
            began = time.monotonic()
            consumer = start(cport, pport, folder)
            started = time.monotonic() - began  # the launcher's own wait differs by kind
            added = until(names, cport, True, began)
            keep = set(names[: len(names) // 2])
            (primary.workdir / "authd.yaml").write_text(
                producer_config(pport, folder, names, keep, cport)
            )
            removed_at = time.monotonic()
            primary.reload()
            removed = until(sorted(set(names) - keep), cport, False, removed_at)
            results[kind] = {
                "launcher_returned_s": round(started, 2),
                "provision_s": round(added, 2),
                "remove_half_s": round(removed, 2),
            }
            print(
                f"{kind}: {args.members} members served {added:.2f}s after the process "
                f"started (launcher returned at {started:.2f}s), half removed in {removed:.2f}s",
                flush=True,
            )
        finally:
            if consumer is not None:
                consumer.stop()
            primary.stop()
            shutil.rmtree(folder, ignore_errors=True)
    for peer in ("knot", "bind"):
        for what in ("provision_s", "remove_half_s"):
            ratio = results["authd"][what] / max(results[peer][what], 1e-3)
            results[f"authd/{peer} {what}"] = round(ratio, 2)
            print(f"authd/{peer} {what}: {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
