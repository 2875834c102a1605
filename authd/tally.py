"""What one answered query counts as, for the metrics: a value the core returns.

Owns: the tally key of an answer (view, zone, question type label, rcode,
truncated, cached, size, in one string), ``Tally`` (a key decoded) and the
bounded set of question types that get a label of their own.  The core
attaches a tally to the replies it can describe (answers from a zone, the
answer cache's hits) only when metrics are on; the adapter counts tallies
in plain dicts and publishes them when scraped.  Invariants: every label
comes from a bounded set (configured views and zones, ``QTYPE_LABELS`` plus
``other``, the 16 header rcodes) and sizes are at most 65,535, so counting
tallies has bounded memory; ``decode(key_of(...))`` gives back the labels.
"""

from __future__ import annotations

from typing import NamedTuple

import dns.rcode
import dns.rdatatype

# The question types counted by name; any other counts as "other".
QTYPE_LABELS: dict[int, str] = {
    int(t): dns.rdatatype.to_text(t)
    for t in (
        dns.rdatatype.A,
        dns.rdatatype.AAAA,
        dns.rdatatype.NS,
        dns.rdatatype.SOA,
        dns.rdatatype.CNAME,
        dns.rdatatype.DNAME,
        dns.rdatatype.MX,
        dns.rdatatype.TXT,
        dns.rdatatype.PTR,
        dns.rdatatype.SRV,
        dns.rdatatype.NAPTR,
        dns.rdatatype.CAA,
        dns.rdatatype.TLSA,
        dns.rdatatype.SSHFP,
        dns.rdatatype.SVCB,
        dns.rdatatype.HTTPS,
        dns.rdatatype.DS,
        dns.rdatatype.DNSKEY,
        dns.rdatatype.RRSIG,
        dns.rdatatype.NSEC,
        dns.rdatatype.NSEC3PARAM,
        dns.rdatatype.ANY,
        dns.rdatatype.AXFR,
        dns.rdatatype.IXFR,
    )
}
OTHER = "other"
NO_NAME = "-"  # no view chose the client, or no zone of ours answered

# Header rcodes 0..15 by number (a response's low four bits of byte 3).
RCODE_LABELS: tuple[str, ...] = tuple(dns.rcode.to_text(dns.rcode.Rcode(i)) for i in range(16))


class Tally(NamedTuple):
    """One answered query's labels, as decoded from its key."""

    view: str
    zone: str
    qtype: str
    rcode: str
    truncated: bool
    cached: bool
    size: int  # the response's length in bytes


def qtype_label(qtype: int) -> str:
    return QTYPE_LABELS.get(qtype, OTHER)


# A tally travels as one string, "cached TAB view TAB zone TAB qtype TAB rcode TAB
# truncated TAB size": a string caches its hash, so the adapter's count of a
# cached answer (whose key is stored with it) is one dict increment that hashes
# nothing.  No label holds a TAB (view names are [A-Za-z0-9_.-]; zone names are
# in presentation form, where a TAB is escaped as \009).
SEP = "\t"


def key_of(view: str, zone: str, qtype: int | None, response: bytes, cached: bool) -> str:
    """The tally key of a rendered *response* (its header gives rcode and TC);
    *qtype* None: not a question we answered from a zone (counted as other)."""
    rcode = RCODE_LABELS[response[3] & 0xF] if len(response) > 3 else OTHER
    truncated = len(response) > 2 and bool(response[2] & 0x02)
    return SEP.join(
        (
            "1" if cached else "0",
            view,
            zone,
            qtype_label(qtype) if qtype is not None else OTHER,
            rcode,
            "1" if truncated else "0",
            str(len(response)),
        )
    )


def as_cached(key: str) -> str:
    """*key* for the same answer served from the cache."""
    return "1" + key[1:]


def decode(key: str) -> Tally:
    cached, view, zone, qtype, rcode, truncated, size = key.split(SEP)
    return Tally(view, zone, qtype, rcode, truncated == "1", cached == "1", int(size))
