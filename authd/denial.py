"""Authenticated denial of existence: a signed zone's NSEC or NSEC3 chain as lookups.

Owns: ``Denial``, built once per zone version at load (``build_denial``), and
the proofs negative and wildcard answers carry (RFC 4035 section 3.1.3 for
NSEC, RFC 5155 section 7.2 for NSEC3).  Each proof is a list of RRsets, every
NSEC/NSEC3 RRset followed by its RRSIG RRset when it has one, no RRset twice.

Invariants: the chain is a sorted tuple of keys (NSEC owners in the canonical
order of RFC 4034 section 6.1, NSEC3 owner hashes as lowercase base32hex,
whose byte order is the hash order) searched with ``bisect``, so a proof is a
few binary searches; only NSEC3 hashes a name per query, memoised in a table
bounded by ``MAX_NSEC3_HASH_CACHE``.  A version is immutable; the memo holds
no answer, only hashes of names, so sharing it between queries is safe.

A zone is *signed* when its apex has a DNSKEY RRset: ``build_denial`` returns
None otherwise, and the engine then adds no DNSSEC records (an unsigned zone's
DS is not served in referrals, as NSD, Knot and BIND do).  Its kind is NSEC3
when the apex has an NSEC3PARAM (or, for a transfer without one, NSEC3
records exist), else NSEC.  Pure: no dnspython message types, so the compiled
answer path can reuse it.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset

from authd.limits import MAX_NSEC3_HASH_CACHE
from authd.rrsig import sig_key

RdataType = dns.rdatatype.RdataType
NSEC, NSEC3, NSEC3PARAM = RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM
NodeTable = Mapping[dns.name.Name, Mapping[RdataType, dns.rrset.RRset]]

# One link of a chain: the NSEC/NSEC3 RRset and its signatures (None when unsigned).
Link = tuple[dns.rrset.RRset, "dns.rrset.RRset | None"]


class Kind(enum.Enum):
    NONE = "none"  # signed (DNSKEY at the apex) but no chain: no proofs to give
    NSEC = "nsec"
    NSEC3 = "nsec3"


def canonical_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """*name*'s sort key in the canonical order (RFC 4034 section 6.1): labels
    from the root, ASCII letters folded to lower case, compared as octets."""
    return tuple(label.lower() for label in reversed(name.labels))


@dataclass(frozen=True, slots=True, eq=False)
class Denial:
    origin: dns.name.Name
    kind: Kind
    # Sorted: canonical_key (NSEC), or the owner hash as a 1-tuple (NSEC3).
    keys: tuple[tuple[bytes, ...], ...]
    links: tuple[Link, ...]  # the chain, in the order of *keys*
    # NSEC3 parameters (RFC 5155 section 3.1), from the NSEC3PARAM.
    algorithm: int = 1
    iterations: int = 0
    salt: bytes = b""
    opt_out: bool = False  # any NSEC3 of the chain has the Opt-Out flag
    _hashes: dict[tuple[bytes, ...], bytes] = field(default_factory=dict)

    # -- the chain ------------------------------------------------------------

    def _key(self, name: dns.name.Name) -> tuple[bytes, ...]:
        if self.kind is Kind.NSEC:
            return canonical_key(name)
        return (self.hash(name),)

    def hash(self, name: dns.name.Name) -> bytes:
        """The NSEC3 hash of *name* as its owner label (lowercase base32hex)."""
        folded = tuple(label.lower() for label in name.labels)
        found = self._hashes.get(folded)
        if found is None:
            if len(self._hashes) >= MAX_NSEC3_HASH_CACHE:
                self._hashes.clear()  # bounded: start over rather than track recency
            text = dns.dnssec.nsec3_hash(name, self.salt, self.iterations, self.algorithm)
            found = self._hashes[folded] = text.lower().encode()
        return found

    def matching(self, name: dns.name.Name) -> Link | None:
        """The link whose owner is *name* (NSEC) or *name*'s hash (NSEC3)."""
        if not self.keys:
            return None
        key = self._key(name)
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            return self.links[i]
        return None

    def covering(self, name: dns.name.Name) -> Link | None:
        """The link that covers *name* (its owner sorts before, its next after),
        or matches it; NSEC3's last link covers past the end of the ring."""
        if not self.keys:
            return None
        i = bisect.bisect_right(self.keys, self._key(name)) - 1
        return self.links[i]  # i == -1: the last link (RFC 5155 wraps the chain)

    def _closest_provable(
        self, name: dns.name.Name, encloser: dns.name.Name
    ) -> tuple[dns.name.Name, Link | None]:
        """From *encloser* up, the first name with a matching NSEC3 (RFC 5155
        section 7.2.1; under Opt-Out an empty non-terminal may have none)."""
        candidate = encloser
        while True:
            link = self.matching(candidate)
            if link is not None or len(candidate) <= len(self.origin):
                return candidate, link
            candidate = candidate.parent()

    def _closest_encloser_proof(
        self, name: dns.name.Name, encloser: dns.name.Name
    ) -> tuple[dns.name.Name, list[Link | None]]:
        ce, link = self._closest_provable(name, encloser)
        return ce, [link, self.covering(_next_closer(name, ce))]

    # -- the proofs -----------------------------------------------------------

    def nxdomain(self, qname: dns.name.Name, encloser: dns.name.Name) -> list[dns.rrset.RRset]:
        """*qname* does not exist and no wildcard at its closest *encloser*
        does (RFC 4035 3.1.3.2; RFC 5155 7.2.2)."""
        wildcard = _wildcard(encloser)
        if self.kind is Kind.NSEC:
            return _flat([self.covering(qname), self.covering(wildcard)])
        if self.kind is Kind.NSEC3:
            ce, links = self._closest_encloser_proof(qname, encloser)
            return _flat([*links, self.covering(_wildcard(ce))])
        return []

    def nodata(self, qname: dns.name.Name, encloser: dns.name.Name) -> list[dns.rrset.RRset]:
        """*qname* exists without the type asked (RFC 4035 3.1.3.1; RFC 5155
        7.2.3, and 7.2.4 for DS).  An empty non-terminal has no NSEC: the one
        covering it proves it (its next name is a descendant); under NSEC3
        Opt-Out, a name without its own NSEC3 gets the closest provable
        encloser proof.  *encloser* is qname's closest existing ancestor."""
        if self.kind is Kind.NSEC:
            return _flat([self.matching(qname) or self.covering(qname)])
        if self.kind is Kind.NSEC3:
            link = self.matching(qname)
            if link is not None:
                return _flat([link])
            return _flat(self._closest_encloser_proof(qname, encloser)[1])
        return []

    def no_ds(self, cut: dns.name.Name) -> list[dns.rrset.RRset]:
        """A delegation without DS: the referral's proof (RFC 4035 3.1.4;
        RFC 5155 7.2.7, an Opt-Out span when the cut has no NSEC3)."""
        return self.nodata(cut, cut.parent())

    def wildcard_answer(self, qname: dns.name.Name, source: dns.name.Name) -> list[dns.rrset.RRset]:
        """An answer synthesized from the wildcard *source*: the proof that
        qname itself does not exist (RFC 4035 3.1.3.3; RFC 5155 7.2.6, the
        NSEC3 covering the next closer name only)."""
        if self.kind is Kind.NSEC:
            return _flat([self.covering(qname)])
        if self.kind is Kind.NSEC3:
            return _flat([self.covering(_next_closer(qname, source.parent()))])
        return []

    def wildcard_nodata(self, qname: dns.name.Name, source: dns.name.Name) -> list[dns.rrset.RRset]:
        """The wildcard *source* matches but lacks the type (RFC 4035 3.1.3.4;
        RFC 5155 7.2.5)."""
        if self.kind is Kind.NSEC:
            return _flat([self.covering(qname), self.matching(source)])
        if self.kind is Kind.NSEC3:
            ce = source.parent()
            return _flat(
                [self.matching(ce), self.covering(_next_closer(qname, ce)), self.matching(source)]
            )
        return []


def _wildcard(encloser: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((b"*", *encloser.labels))


def _next_closer(name: dns.name.Name, encloser: dns.name.Name) -> dns.name.Name:
    """The ancestor of *name* one label longer than *encloser* (RFC 5155 1.3)."""
    return dns.name.Name(name.labels[len(name.labels) - len(encloser.labels) - 1 :])


def _flat(links: list[Link | None]) -> list[dns.rrset.RRset]:
    out: list[dns.rrset.RRset] = []
    seen: set[int] = set()
    for link in links:
        if link is None or id(link[0]) in seen:
            continue
        seen.add(id(link[0]))
        out.append(link[0])
        if link[1] is not None:
            out.append(link[1])
    return out


def build_denial(
    origin: dns.name.Name, nodes: NodeTable, hashed: NodeTable, cuts: Set[dns.name.Name]
) -> Denial | None:
    """The zone's proofs, or None when it is not signed (no DNSKEY at the apex).

    *cuts* is accepted for the compiled path; NSEC owners below a cut (none in
    a well-formed zone) are left out of the chain.
    """
    apex = nodes.get(origin)
    if apex is None or RdataType.DNSKEY not in apex:
        return None
    param = apex.get(NSEC3PARAM)
    if param is not None or hashed:
        return _nsec3_denial(origin, hashed, param)
    entries = []
    for name, node in nodes.items():
        nsec = node.get(NSEC)
        if nsec is not None and not _below_cut(name, origin, cuts):
            entries.append((canonical_key(name), (nsec, node.get(sig_key(NSEC)))))
    if not entries:
        return Denial(origin, Kind.NONE, (), ())
    entries.sort(key=lambda e: e[0])
    return Denial(origin, Kind.NSEC, tuple(e[0] for e in entries), tuple(e[1] for e in entries))


def _below_cut(name: dns.name.Name, origin: dns.name.Name, cuts: Set[dns.name.Name]) -> bool:
    if not cuts:
        return False
    n = name
    while len(n) > len(origin) + 1:
        n = n.parent()
        if n in cuts:
            return True
    return False


def _nsec3_denial(
    origin: dns.name.Name, hashed: NodeTable, param: dns.rrset.RRset | None
) -> Denial:
    chosen = None
    if param is not None:
        # RFC 5155 section 4.1.2: flags other than 0 mark a parameter set
        # authoritative servers do not use.
        chosen = next((rd for rd in param if rd.flags == 0), None)
    entries = []
    opt_out = False
    for name, node in hashed.items():
        nsec3 = node.get(NSEC3)
        if nsec3 is None or name.parent() != origin:
            continue
        rd = nsec3[0]
        if chosen is None:
            chosen = rd
        if (rd.algorithm, rd.iterations, rd.salt) != (
            chosen.algorithm,
            chosen.iterations,
            chosen.salt,
        ):
            continue  # another chain (a parameter change in progress)
        opt_out = opt_out or bool(rd.flags & 1)
        entries.append(((name.labels[0].lower(),), (nsec3, node.get(sig_key(NSEC3)))))
    if chosen is None:
        return Denial(origin, Kind.NONE, (), ())
    entries.sort(key=lambda e: e[0])
    return Denial(
        origin,
        Kind.NSEC3,
        tuple(e[0] for e in entries),
        tuple(e[1] for e in entries),
        algorithm=int(chosen.algorithm),
        iterations=int(chosen.iterations),
        salt=bytes(chosen.salt),
        opt_out=opt_out,
    )


__all__ = ["Denial", "Kind", "Link", "build_denial", "canonical_key"]
