"""Zone transfer figures: IXFR against AXFR bytes, and AXFR time of authd and Knot.

The measurement is ``harness.xfrfigures.measure`` (shared with the fleet
tests); this module is its command line.  After the JSON it prints authd's
figures beside Knot's, the reference, with the ratios authd/Knot.

Usage: python -m bench.xfr [--records N] [--json OUT]   (default 100000)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.xfrfigures import measure


def _figure(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{float(value):,.3f}"


def summary(result: dict[str, Any]) -> str:
    """authd's figures beside Knot's (the reference of issue 10), with authd/Knot."""
    a, k = result["authd"], result["knot"]
    rows = [
        ("AXFR time, raw (s)", "axfr_raw_seconds"),
        ("AXFR time, inbound_xfr (s)", "axfr_dnspython_seconds"),
        ("AXFR bytes", "axfr_bytes"),
        ("AXFR messages", "axfr_messages"),
        ("IXFR bytes, one record changed", "ixfr_bytes"),
    ]
    lines = [
        f"{result['records']:,} records",
        f"{'':<32}{'authd':>14}{'Knot':>14}{'authd/Knot':>12}",
    ]
    for label, key in rows:
        mine, ref = float(a[key]), float(k[key])
        ratio = f"{mine / ref:.1f}x" if ref else "-"
        lines.append(f"{label:<32}{_figure(a[key]):>14}{_figure(k[key]):>14}{ratio:>12}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="authd-bench-xfr-") as tmp:
        result = measure(args.records, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    print(summary(result))
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
