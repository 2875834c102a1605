"""What one answered query counts as, for the metrics: a value the core returns.

Owns: ``Tally`` (view, zone, question type label, rcode, truncated, cached) and
the bounded set of question types that get a label of their own.  The core
attaches a tally to the replies it can describe (answers from a zone, the
answer cache's hits) only when metrics are on; the adapter counts tallies
in plain dicts and publishes them when scraped.  Invariants: every field
comes from a bounded set (configured views and zones, ``QTYPE_LABELS`` plus
``other``, the 16 header rcodes), so counting tallies has bounded memory.
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
    """One answered query's labels; a tuple so that counting it is one dict hit."""

    view: str
    zone: str
    qtype: str
    rcode: str
    truncated: bool
    cached: bool


def qtype_label(qtype: int) -> str:
    return QTYPE_LABELS.get(qtype, OTHER)


def of_response(view: str, zone: str, qtype: int, response: bytes, cached: bool) -> Tally:
    """The tally of a rendered *response* (its header gives rcode and TC)."""
    rcode = RCODE_LABELS[response[3] & 0xF] if len(response) > 3 else OTHER
    truncated = len(response) > 2 and bool(response[2] & 0x02)
    return Tally(view, zone, qtype_label(qtype), rcode, truncated, cached)
