"""View selection cost with 10,000 client prefixes, in-process.

Usage: python -m bench.views [--prefixes 10000] [--lookups 50000] [--json OUT]

What it measures, all in this process (no sockets), best of three runs each:

1. ``Snapshot.select_view`` (the fast path's loop over ``View.matches``) and
   ``authd.views.select`` (the ECS and ``authd views explain`` path, which also
   keeps each ``Match`` and the scope) for clients half inside a listed
   prefix, half anywhere, in two configs:
   - ``10k-prefixes``: view ``listed`` matching 10,000 random IPv4 prefixes
     (10 % negated, BIND order), then a catch-all view;
   - ``single``: the implicit single view (``any``);
2. ``authd.query.handle`` per query for the same clients asking one name:
   with the caches warm as served (the single open view also has the front
   cache keyed by the query bytes, which skips selection altogether); warm
   without the front cache (selection plus the keyed cache: the path every
   multi-view config takes); with caching off (selection, lookup and render
   every time); and ECS queries from a trusted resolver (always the full
   path, never cached), for both configs.

The difference between the two configs is the price of selection among
10,000 prefixes; the ACL itself is one ``bisect`` per lookup (``authd.acl``).

Figures on the 2-core development box (three runs, microseconds per query):
``Snapshot.select_view`` 3.1-3.5 with 10,000 prefixes against 1.5 for the one
open view; ``views.select`` 4.8-4.9 against 2.7; ``handle()`` with a warm
cache 5.7-6.4 (4.2 for one view without the front cache, 0.8 with it);
uncached about 100 against 90; an ECS query, always uncached, 180-200.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.edns
import dns.message

from authd import views
from authd.answercache import AnswerCache
from authd.build import build_snapshot
from authd.config import config_from_dict
from authd.query import Request, Transport, handle
from authd.snapshot import Snapshot

ZONE = """$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.80
"""


def random_prefixes(n: int, rng: random.Random) -> tuple[list[str], list[tuple[int, int]]]:
    texts, nets = [], []
    for _ in range(n):
        plen = rng.choice((16, 18, 20, 22, 24, 24, 24, 24, 28, 32))
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        base = rng.getrandbits(32) & mask
        negated = rng.random() < 0.1
        texts.append(("!" if negated else "") + f"{ipaddress.IPv4Address(base)}/{plen}")
        nets.append((base, mask))
    return texts, nets


def clients(nets: list[tuple[int, int]], n: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        if i % 2:
            base, mask = nets[rng.randrange(len(nets))]
            value = base | (rng.getrandbits(32) & ~mask & 0xFFFFFFFF)
        else:
            value = rng.getrandbits(32)
        out.append(str(ipaddress.IPv4Address(value)))
    return out


def build(folder: Path, prefixes: list[str] | None, cache: bool) -> Snapshot:
    (folder / "a.zone").write_text(ZONE)
    zones = [{"name": "example.com", "file": "a.zone"}]
    data: dict[str, object] = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "options": {
            "state_dir": str(folder / "state"),
            "answer_cache_entries": 100_000 if cache else 0,
        },
        "client_subnet": {"trusted": ["127.0.0.1"]},
    }
    if prefixes is None:
        data["zones"] = zones
    else:
        data["views"] = [
            {"name": "listed", "match_clients": prefixes, "zones": zones},
            {"name": "rest", "match_clients": ["any"], "zones": zones},
        ]
    snap, _ = build_snapshot(config_from_dict(data, None, str(folder)), None, 0)
    return snap


def best_us(fn: Callable[[], object], count: int, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / count * 1e6


def measure(prefix_count: int, lookups: int, seed: int) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    prefixes, nets = random_prefixes(prefix_count, rng)
    addresses = clients(nets, lookups, rng)
    query = dns.message.make_query("www.example.com.", "A").to_wire()
    ecs_queries = []
    for a in addresses[: lookups // 5]:
        net = ipaddress.ip_network(f"{a}/24", strict=False)
        option = dns.edns.ECSOption(str(net.network_address), 24)
        ecs_queries.append(
            dns.message.make_query("www.example.com.", "A", use_edns=0, options=[option]).to_wire()
        )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="authd-bench-views-") as tmp:
        for label, listed in (("10k-prefixes", prefixes), ("single", None)):
            folder = Path(tmp) / label
            folder.mkdir()
            t0 = time.perf_counter()
            snap = build(folder, listed, cache=True)
            compile_s = time.perf_counter() - t0
            # Built afresh: a replaced snapshot would share the warmed caches.
            (folder / "nocache").mkdir()
            nocache = build(folder / "nocache", listed, cache=False)
            nofront = dataclasses.replace(snap, cache=AnswerCache(), front=None)
            requests = [Request(query, a, "127.0.0.1", Transport.UDP) for a in addresses]
            ecs_requests = [
                Request(w, "127.0.0.1", "127.0.0.1", Transport.UDP) for w in ecs_queries
            ]
            for r in requests:  # warm the caches
                handle(r, snap)
                handle(r, nofront)

            def select_loop(s: Snapshot = snap) -> None:
                for a in addresses:
                    s.select_view(a, "127.0.0.1")

            def explain_loop(s: Snapshot = snap) -> None:
                for a in addresses:
                    views.select(s.views, a, "127.0.0.1")

            def handle_loop(s: Snapshot, rs: list[Request]) -> Callable[[], None]:
                def run() -> None:
                    for r in rs:
                        handle(r, s)

                return run

            results[label] = {
                "build_seconds": round(compile_s, 3),
                "select_view_us": best_us(select_loop, len(addresses)),
                "views_select_us": best_us(explain_loop, len(addresses)),
                "handle_cached_us": best_us(handle_loop(snap, requests), len(requests)),
                "handle_cached_no_front_us": best_us(handle_loop(nofront, requests), len(requests)),
                "handle_uncached_us": best_us(handle_loop(nocache, requests), len(requests)),
                "handle_ecs_us": best_us(handle_loop(snap, ecs_requests), len(ecs_requests)),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    results = measure(args.prefixes, args.lookups, args.seed)
    rows = [
        ("config build (s)", "build_seconds"),
        ("Snapshot.select_view (us)", "select_view_us"),
        ("views.select with Match (us)", "views_select_us"),
        ("handle(), answer cached (us)", "handle_cached_us"),
        ("handle(), cached, no front (us)", "handle_cached_no_front_us"),
        ("handle(), cache off (us)", "handle_uncached_us"),
        ("handle(), ECS query (us)", "handle_ecs_us"),
    ]
    head = f"{'per query':32} {args.prefixes:>7} prefixes {'single view':>12} {'difference':>11}"
    print(head)
    for title, key in rows:
        a, b = results["10k-prefixes"][key], results["single"][key]
        print(f"{title:32} {a:>16.2f} {b:>12.2f} {a - b:>+11.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
