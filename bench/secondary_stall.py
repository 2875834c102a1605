"""Secondary stall benchmark: what transfers of a big zone cost a secondary's queries.

Owns: generating an N-record zone (``harness.zonegen``), starting an authd primary
(file watcher on, NOTIFY to the secondary) and an authd secondary with no
copy yet, on 127.0.0.1; a client querying the secondary every 10 ms (the
prober of ``reload_stall.py``) while it (a) takes the zone by AXFR and (b)
after a one-record edit on the primary, takes the change by IXFR.  For each
it reports the client's worst latency, p99, lost queries and the time until
the secondary serves the new serial; for the IXFR also from when the primary
first serves it (a second client probes the primary), which excludes the
primary's own reload.  The primary shares the machine, so its
own work (reloading, sending the AXFR) competes for the same cores.

Usage: python -m bench.secondary_stall [--records 1000000] [--json OUT]
Slow: at 1,000,000 records each transfer takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.reload_stall import ORIGIN, SERIAL, Prober, edit, summarize
from harness import zonegen
from harness.peers import HOST, free_port, start_authd

TIMEOUT = 900.0  # seconds for a transfer to be served, at most


def wait_serial(prober: Prober, serial: int, since: float) -> float | None:
    """When the secondary first answered with *serial* (monotonic), or None."""
    while time.monotonic() - since < TIMEOUT:
        at = prober.first_serial_at(serial, since)
        if at is not None:
            return at
        time.sleep(0.1)
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="authd-secondary-stall-"))
    zone = folder / "bench.test.zone"
    zonegen.write_zone(str(zone), args.records, ORIGIN)
    pport, sport = free_port(), free_port()
    primary = start_authd(
        f"listen: [{{address: {HOST}, port: {{port}}}}]\n"
        f"options: {{state_dir: {folder}/p, watch: true}}\n"
        f"zones:\n  - {{name: {ORIGIN}, file: {zone}, allow_transfer: [{HOST}], "
        f"notify: explicit, also_notify: [{{address: {HOST}, port: {sport}}}]}}\n",
        port=pport,
        timeout=TIMEOUT,
    )
    secondary = start_authd(
        f"listen: [{{address: {HOST}, port: {{port}}}}]\n"
        f"options: {{state_dir: {folder}/s, watch: false}}\n"
        f"zones:\n  - {{name: {ORIGIN}, type: secondary, file: {folder}/s/copy.zone, "
        f"primaries: [{{address: {HOST}, port: {pport}}}]}}\n",
        port=sport,
        timeout=TIMEOUT,
    )
    prober = Prober(sport)
    on_primary = Prober(pport)
    probing_primary = False
    results: dict[str, Any] = {"records": args.records}
    try:
        prober.start()
        began = time.monotonic()
        served = wait_serial(prober, SERIAL, began)
        if served is None:
            raise SystemExit(f"no AXFR within {TIMEOUT} s:\n{secondary.read_log()[-3000:]}")
        # From 0.5 s on: the first queries race the secondary's start-up.
        results["axfr"] = {
            "served_after_s": round(served - began, 1),
            "client": summarize(prober.window(began + 0.5, served)),
        }
        on_primary.start()
        probing_primary = True
        edited = edit(zone, SERIAL + 1, "192.0.2.200")
        served = wait_serial(prober, SERIAL + 1, edited)
        if served is None:
            raise SystemExit(f"no IXFR within {TIMEOUT} s:\n{secondary.read_log()[-3000:]}")
        primary_at = on_primary.first_serial_at(SERIAL + 1, edited)
        time.sleep(3.0)  # the old copy is freed about 1 s after the swap
        results["ixfr"] = {
            "served_after_s": round(served - edited, 1),
            "after_primary_s": None if primary_at is None else round(served - primary_at, 2),
            "client": summarize(prober.window(edited, served + 2.5)),
        }
        results["secondary_log"] = [
            line for line in secondary.read_log().splitlines() if "transferred" in line
        ]
    finally:
        prober.stop()
        if probing_primary:
            on_primary.stop()
        secondary.stop()
        primary.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for kind in ("axfr", "ixfr"):
        c = results[kind]["client"]
        print(
            f"{kind.upper()}: served after {results[kind]['served_after_s']} s; client worst "
            f"{c['worst_ms']} ms, p99 {c['p99_ms']} ms, lost {c['lost']} of {c['queries']}"
        )
    print(f"IXFR: served on the secondary {results['ixfr']['after_primary_s']} s after the primary")
    print("\n".join(results["secondary_log"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
