"""Zone transfer figures: IXFR against AXFR bytes, and AXFR time of authd and Knot.

The measurement is ``harness.xfrfigures.measure`` (shared with the fleet
tests); this module is its command line.

Usage: python -m bench.xfr [--records N] [--json OUT]   (default 100000)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness.xfrfigures import measure


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="authd-bench-xfr-") as tmp:
        result = measure(args.records, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
