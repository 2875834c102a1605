"""Which RRSIGs go with an answer: the signatures half of a DO=1 response.

Owns: pairing each RRset the engine puts in a section with the RRSIG RRset
that covers it (RFC 4035 section 3.1.1), renamed to the query name when the
data was synthesized from a wildcard (the RRSIG as signed, whose labels field
tells the validator so, RFC 4035 section 3.1.3.3); the RRSIGs a qtype RRSIG
question asks for; and the negative answer's SOA signature at the negative
TTL.  Invariant: an RRset is always followed directly by its signatures, so
the renderer can keep or drop the two together.  Pure: nodes in, lists out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dns.name
import dns.rdatatype
import dns.rrset

from authd.rrsig import is_sig_key, sig_key

RdataType = dns.rdatatype.RdataType
SigNode = Mapping[RdataType, dns.rrset.RRset]


def with_signatures(
    rrsets: Iterable[dns.rrset.RRset], node: SigNode, owner: dns.name.Name | None = None
) -> list[dns.rrset.RRset]:
    """*rrsets* of *node*, each followed by its RRSIGs (renamed to *owner*
    when given: a wildcard's data answering for another name)."""
    out: list[dns.rrset.RRset] = []
    for rrset in rrsets:
        out.append(rrset)
        sig = node.get(sig_key(rrset.rdtype))
        if sig is not None:
            out.append(sig if owner is None else renamed(sig, owner))
    return out


def signature_rrsets(node: SigNode, owner: dns.name.Name | None = None) -> list[dns.rrset.RRset]:
    """Every RRSIG RRset of *node*, in type order: the answer to qtype RRSIG."""
    sigs = [node[k] for k in sorted(k for k in node if is_sig_key(k))]
    return sigs if owner is None else [renamed(s, owner) for s in sigs]


def data_types(node: SigNode) -> list[RdataType]:
    """*node*'s data types (its keys that are not signatures), in type order."""
    return sorted(k for k in node if not is_sig_key(k))


def negative_signature(apex: SigNode, negative_soa: dns.rrset.RRset) -> dns.rrset.RRset | None:
    """The SOA's RRSIGs as a negative answer carries them: at the negative
    TTL of the SOA beside them (RFC 2308 section 5; NSD and Knot do so)."""
    sig = apex.get(sig_key(RdataType.SOA))
    if sig is None or sig.ttl == negative_soa.ttl:
        return sig
    out: dns.rrset.RRset = sig.copy()
    out.ttl = negative_soa.ttl
    return out


def renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    out: dns.rrset.RRset = rrset.copy()
    out.name = owner
    return out


__all__ = [
    "data_types",
    "negative_signature",
    "renamed",
    "signature_rrsets",
    "with_signatures",
]
