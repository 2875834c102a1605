"""Synthetic changesets for journal tests and the processes those tests kill.

Owns: ``cs(a, b, n)``, a changeset from serial *a* to *b* whose *n* removed
and *n* added records are derived from the serials, and ``chain`` of them.

Invariants: the same arguments always give equal changesets (a separate
writer process and the test that reads its file agree on every record), and
every changeset of a given *n* encodes to the same number of bytes (owners
are fixed-width), so byte bounds can be tested by counting.
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass

from authd.changeset import RR, Changeset

ORIGIN = dns.name.from_text("example.")
IN = dns.rdataclass.IN


def rr(name: str, ttl: int, rdtype: str, text: str) -> RR:
    return RR(dns.name.from_text(name, ORIGIN), ttl, dns.rdata.from_text(IN, rdtype, text))


def soa(serial: int) -> RR:
    return rr("@", 3600, "SOA", f"ns.other. hostmaster.example. {serial} 7200 3600 1209600 300")


def cs(serial_from: int, serial_to: int, n: int = 1) -> Changeset:
    """A changeset between two serials, its records derived from them."""
    # Fixed-width owners: every changeset of a given n encodes to the same size.
    removed = tuple(rr(f"h{serial_from:010d}-{i:03d}", 300, "A", "10.0.0.1") for i in range(n))
    added = tuple(rr(f"h{serial_to:010d}-{i:03d}", 300, "A", "10.1.0.1") for i in range(n))
    return Changeset(soa(serial_from), soa(serial_to), removed, added)


def chain(*serials: int, n: int = 1) -> list[Changeset]:
    return [cs(a, b, n) for a, b in zip(serials, serials[1:], strict=False)]
