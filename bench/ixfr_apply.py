"""What a secondary's one-record IXFR costs, in process: rebuilt against applied in place.

Owns: generating an N-record zone (``harness.zonegen``), compiling it, then
timing, for a changeset that readdresses one host (as ``secondary_stall``'s
edit does), the full rebuild (``changeset.apply``: every record regrouped,
checked and compiled) against ``changeset.apply_incremental`` (only the
touched nodes, the compiled form by ``compiled.recompile``), the journal's
diff of the two versions against ``diff_owners``, and the stored copy's
write (done after serving on the in-place path).  Both results are checked
equal before any figure is printed.

Usage: python -m bench.ixfr_apply [--records 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from authd import changeset
from authd.adapters.state import write_copy
from authd.changeset import RR, Changeset
from authd.zone import compile_zone
from authd.zonefile import parse_zone_text
from harness import zonegen

ORIGIN = "bench.test."


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    origin = dns.name.from_text(ORIGIN)
    text = "\n".join(zonegen.generate(args.records, ORIGIN)) + "\n"
    began = time.perf_counter()
    result = compile_zone(origin, parse_zone_text(text, origin), "<bench>")
    del text
    version = result.version
    assert version is not None, result.errors
    print(f"{args.records} records: loaded and compiled in {time.perf_counter() - began:.1f} s")
    www = dns.name.from_text("www", origin)
    rrset = version.nodes[www][dns.rdatatype.A]
    soa = version.soa
    cs = Changeset(
        RR(origin, soa.ttl, soa[0]),
        RR(origin, soa.ttl, soa[0].replace(serial=version.serial + 1)),
        (RR(www, rrset.ttl, rrset[0]),),
        (RR(www, rrset.ttl, dns.rdata.from_text(dns.rdataclass.IN, "A", "192.0.2.200")),),
    )
    t0 = time.perf_counter()
    full = changeset.apply(version, cs).version
    t1 = time.perf_counter()
    inc = changeset.apply_incremental(version, cs)
    t2 = time.perf_counter()
    assert full is not None and inc is not None
    assert inc.version.same_content(full) and inc.version.serial == full.serial
    changeset.diff(version, inc.version)
    t3 = time.perf_counter()
    changeset.diff_owners(version, inc.version, inc.touched)
    t4 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        write_copy(os.path.join(folder, "copy.zone"), inc.version)
    t5 = time.perf_counter()
    rebuild, in_place = t1 - t0, t2 - t1
    print(f"apply, full rebuild:        {rebuild:8.3f} s")
    print(f"apply_incremental:          {in_place:8.3f} s  ({rebuild / in_place:,.0f}x faster)")
    print(f"journal diff, whole zones:  {t3 - t2:8.3f} s")
    print(f"journal diff_owners:        {t4 - t3:8.3f} s")
    print(f"stored copy write:          {t5 - t4:8.3f} s  (after serving, in place)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
