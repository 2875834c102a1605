"""ZONEMD (RFC 8976): a zone's own digest, checked before a version is served.

Owns: finding the apex ZONEMD records of a version and verifying them with
dnspython (``dns.zone.Zone.verify_digest``).  Only scheme 1 (SIMPLE) with hash
algorithm 1 (SHA-384) or 2 (SHA-512) is verified; a zone whose ZONEMD records
all use something else is served unverified, as RFC 8976 section 4 says.

Invariant: a version whose supported ZONEMD does not match its content is
refused (``problem`` returns why); the caller keeps the previous version.
"""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone

from authd.changeset import records
from authd.zone import ZoneVersion

_ZONEMD = dns.rdatatype.RdataType.ZONEMD
SCHEME_SIMPLE = 1
HASHES = frozenset({1, 2})  # SHA-384, SHA-512


def problem(version: ZoneVersion) -> str | None:
    """Why *version* must not be served (its ZONEMD does not match), else None."""
    node = version.nodes.get(version.origin)
    rrset = node.get(_ZONEMD) if node is not None else None
    if rrset is None:
        return None
    supported = [z for z in rrset if z.scheme == SCHEME_SIMPLE and z.hash_algorithm in HASHES]
    if not supported:
        return None
    zone = dns.zone.Zone(version.origin, dns.rdataclass.IN, relativize=False)
    for name, ttl, rdata in records(version):
        covers = rdata.covers()
        zone.find_rdataset(name, rdata.rdtype, covers, create=True).add(rdata, ttl)
    try:
        zone.verify_digest()
    except dns.zone.DigestVerificationFailure:
        serials = sorted({z.serial for z in supported})
        return (
            f"zone {version.origin.to_text()} serial {version.serial}: ZONEMD mismatch "
            f"(scheme 1, hash {'/'.join(str(z.hash_algorithm) for z in supported)}, "
            f"ZONEMD serial {'/'.join(map(str, serials))}): version refused"
        )
    return None


__all__ = ["problem"]
