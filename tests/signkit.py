"""Signed zones for the DNSSEC tests, signed once per pytest session.

Owns: the session's ``SigningCache`` (``harness.signing``), the bundled and
test zones signed three ways, and a small signed hierarchy for validating
resolvers: root -> ``test.`` -> leaves, with a secure, an insecure and a
deliberately bogus delegation.

Invariants: each (zone, file, denial) is signed once per session and the
files stay until the session ends (``close_session``); the hierarchy's names
and statuses are fixed here (``HIERARCHY_STATUS``), so the tests that use it
read as a table.
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from pathlib import Path

from harness.peers import HOST
from harness.signing import Denial, SignedZone, SigningCache

REPO = Path(__file__).resolve().parent.parent
ZONE_DIRS = (REPO / "zones", REPO / "tests" / "zones")

_cache: SigningCache | None = None


def cache() -> SigningCache:
    """The session's signing cache (created on first use, removed at exit)."""
    global _cache
    if _cache is None:
        _cache = SigningCache()
        atexit.register(_cache.close)
    return _cache


def zone_files() -> dict[str, Path]:
    """Zone name -> file for every ``*.zone`` in zones/ and tests/zones/."""
    zones: dict[str, Path] = {}
    for folder in ZONE_DIRS:
        for path in sorted(folder.glob("*.zone")):
            zones[path.name.removesuffix(".zone")] = path
    return zones


# DS records added before signing, so that the signed sets have secure
# referrals to zones no test server holds (child.example.com is served beside
# its parent, so its referral is never seen): one with two in-domain name
# servers, one with thirteen whose glue and DS do not all fit in 1232 octets.
# The digests match no key: nothing validates below these cuts.
EXTRA_DS: dict[str, tuple[str, ...]] = {
    "example.com": (f"sub.example.com. 3600 IN DS 4711 13 2 {'ab' * 32}",),
    "big.test": (f"many.big.test. 900 IN DS 4712 13 2 {'cd' * 32}",),
}


def signed_set(denial: Denial) -> dict[str, SignedZone]:
    """Every bundled and test zone signed with *denial*: zone name -> signed zone."""
    return {
        zone: cache().sign(zone, path, denial, extra=EXTRA_DS.get(zone, ()))
        for zone, path in zone_files().items()
    }


# --- The hierarchy -------------------------------------------------------------

# Everything lives on one server (HOST, the port the test picks): the root
# zone, the TLD "test." and its children.  Unbound reaches them through stub
# zones (see harness.peers.start_unbound), one per zone below the root.
ROOT_ZONE = """\
$TTL 3600
.                SOA  ns.test. hostmaster.test. 1 3600 600 86400 300
.                NS   ns.test.
test.            NS   ns.test.
ns.test.         A    {host}
plain.           NS   ns.plain.
ns.plain.        A    {host}
"""

TLD_ZONE = """\
$TTL 3600
test.                 SOA  ns.test. hostmaster.test. 1 3600 600 86400 300
test.                 NS   ns.test.
ns.test.              A    {host}
www.test.             A    192.0.2.1
secure.test.          NS   ns.secure.test.
ns.secure.test.       A    {host}
nsec.test.            NS   ns.nsec.test.
ns.nsec.test.         A    {host}
insecure.test.        NS   ns.insecure.test.
ns.insecure.test.     A    {host}
bogus.test.           NS   ns.bogus.test.
ns.bogus.test.        A    {host}
"""

LEAF_ZONE = """\
$TTL 3600
@                SOA  ns hostmaster 1 3600 600 86400 300
@                NS   ns
ns               A    {host}
www              A    192.0.2.80
www              AAAA 2001:db8::80
alias            CNAME www
a.b              A    192.0.2.90
*.wild           TXT  "wildcard"
*.cwild          CNAME www
mx               MX   10 www
"""

PLAIN_ZONE = """\
$TTL 3600
plain.           SOA  ns.plain. hostmaster.plain. 1 3600 600 86400 300
plain.           NS   ns.plain.
ns.plain.        A    {host}
www.plain.       A    192.0.2.2
"""

# How each zone is signed (None: not signed).
HIERARCHY_DENIAL: dict[str, Denial | None] = {
    ".": Denial.NSEC,
    "test.": Denial.NSEC3_OPTOUT,  # insecure.test is in an opt-out span
    "secure.test.": Denial.NSEC3,
    "nsec.test.": Denial.NSEC,
    "bogus.test.": Denial.NSEC,  # signed, but its DS in test. matches no key
    "insecure.test.": None,
    "plain.": None,  # insecure delegation from an NSEC-signed parent
}

SECURE, INSECURE, BOGUS = "secure", "insecure", "bogus"

# (qname, qtype) -> (status, rcode) a validating resolver must reach.
HIERARCHY_STATUS: dict[tuple[str, str], tuple[str, str]] = {
    (".", "SOA"): (SECURE, "NOERROR"),
    (".", "DNSKEY"): (SECURE, "NOERROR"),
    ("nx-tld.", "A"): (SECURE, "NXDOMAIN"),
    ("test.", "DNSKEY"): (SECURE, "NOERROR"),
    ("www.test.", "A"): (SECURE, "NOERROR"),
    ("www.test.", "TXT"): (SECURE, "NOERROR"),
    ("secure.test.", "DS"): (SECURE, "NOERROR"),
    ("insecure.test.", "DS"): (INSECURE, "NOERROR"),
    **{
        (f"{name}{leaf}", qtype): (SECURE, rcode)
        for leaf in ("secure.test.", "nsec.test.")
        for name, qtype, rcode in (
            ("", "DNSKEY", "NOERROR"),
            ("", "SOA", "NOERROR"),
            ("www.", "A", "NOERROR"),
            ("www.", "TXT", "NOERROR"),  # NODATA
            ("nothing.", "A", "NXDOMAIN"),
            ("b.", "A", "NOERROR"),  # empty non-terminal
            ("x.wild.", "TXT", "NOERROR"),  # wildcard
            ("x.wild.", "A", "NOERROR"),  # wildcard NODATA
            ("alias.", "A", "NOERROR"),  # CNAME to www
            ("x.cwild.", "A", "NOERROR"),  # wildcard CNAME to www
            ("x.cwild.", "TXT", "NOERROR"),  # wildcard CNAME, then NODATA
            ("mx.", "MX", "NOERROR"),
        )
    },
    ("www.insecure.test.", "A"): (INSECURE, "NOERROR"),
    ("nothing.insecure.test.", "A"): (INSECURE, "NXDOMAIN"),
    ("www.plain.", "A"): (INSECURE, "NOERROR"),
    ("nothing.plain.", "A"): (INSECURE, "NXDOMAIN"),
    ("www.bogus.test.", "A"): (BOGUS, "SERVFAIL"),
    ("bogus.test.", "DNSKEY"): (BOGUS, "SERVFAIL"),
    ("nothing.bogus.test.", "A"): (BOGUS, "SERVFAIL"),
}


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """The signed hierarchy: zone name -> file to serve, and the root's trust anchor."""

    files: dict[str, Path]
    signed: dict[str, SignedZone]
    trust_anchor: str

    @property
    def cuts(self) -> list[str]:
        """The zones below the root, for unbound's stub zones."""
        return [zone for zone in self.files if zone != "."]


def _bogus_ds(signed: SignedZone) -> str:
    """A DS with the child's real key tag and algorithm but a digest of no key."""
    owner, ttl, rdclass, _ds, tag, algorithm, _digest_type, *_ = signed.ds[0].split()
    return f"{owner} {ttl} {rdclass} DS {tag} {algorithm} 2 {'00' * 32}"


_hierarchy: Hierarchy | None = None


def hierarchy() -> Hierarchy:
    """Build (once per session) and sign the root -> test. -> leaves hierarchy."""
    global _hierarchy
    if _hierarchy is not None:
        return _hierarchy
    folder = cache().root / "hierarchy"
    folder.mkdir(exist_ok=True)
    texts = {
        ".": ROOT_ZONE,
        "test.": TLD_ZONE,
        "secure.test.": LEAF_ZONE,
        "nsec.test.": LEAF_ZONE,
        "bogus.test.": LEAF_ZONE,
        "insecure.test.": LEAF_ZONE,
        "plain.": PLAIN_ZONE,
    }
    sources = {}
    for zone, text in texts.items():
        path = folder / f"{zone if zone != '.' else 'root.'}zone"
        path.write_text(f"$ORIGIN {zone}\n" + text.format(host=HOST))
        sources[zone] = path
    files: dict[str, Path] = {}
    signed: dict[str, SignedZone] = {}
    for leaf in ("secure.test.", "nsec.test.", "bogus.test."):
        denial = HIERARCHY_DENIAL[leaf]
        assert denial is not None
        signed[leaf] = cache().sign(leaf, sources[leaf], denial)
    tld_ds = [
        *signed["secure.test."].ds,
        *signed["nsec.test."].ds,
        _bogus_ds(signed["bogus.test."]),
    ]
    signed["test."] = cache().sign("test.", sources["test."], Denial.NSEC3_OPTOUT, extra=tld_ds)
    signed["."] = cache().sign(".", sources["."], Denial.NSEC, extra=signed["test."].ds)
    for zone in texts:
        files[zone] = signed[zone].path if zone in signed else sources[zone]
    _hierarchy = Hierarchy(files, signed, signed["."].trust_anchor)
    return _hierarchy
