"""Signatures stored per covered type: how a compiled node keys its RRSIGs.

Owns: the node key of the RRSIG RRset that covers a type, and splitting a
name's RRSIG records into one RRset per covered type.  Invariant: each RRSIG
RRset of a compiled node covers exactly one type and keeps the TTL its
records were signed with (RFC 4034 section 3: an RRSIG's TTL is the TTL of
the RRset it covers), so RRSIGs of different types are never merged nor
their TTLs rewritten.

A compiled node (``authd.zone.Node``) maps a data type to its RRset, and
``sig_key(T)`` to the RRSIG RRset covering T.  ``sig_key`` values are above
every 16-bit type number, so they never collide with a real type; they are
typed as ``RdataType`` so one table holds data and signatures, and code that
shows a node's keys must test ``is_sig_key`` first (dnspython cannot name
them).  Transfers, diffs and journals iterate a node's RRsets and so carry
each signature RRset with its own TTL without knowing about DNSSEC.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

RdataType = dns.rdatatype.RdataType

SIG_BASE = 0x10000  # above every RR type number (RFC 1035: 16 bits)


def sig_key(covered: int) -> RdataType:
    """The node key of the RRSIG RRset covering *covered*."""
    return cast(RdataType, SIG_BASE | covered)


def is_sig_key(key: int) -> bool:
    return key >= SIG_BASE


def covered_type(key: int) -> RdataType:
    """The type a ``sig_key`` covers."""
    return RdataType.make(key & 0xFFFF)


def split_rrsigs(
    owner: dns.name.Name, rdatas: Iterable[object], ttls: dict[RdataType, int], default_ttl: int
) -> dict[RdataType, dns.rrset.RRset]:
    """*owner*'s RRSIG records as one RRset per covered type, keyed by ``sig_key``.

    *ttls* maps a covered type to the TTL its signatures were read with;
    *default_ttl* serves a covered type missing there.
    """
    out: dict[RdataType, dns.rrset.RRset] = {}
    for rd in rdatas:
        covered = rd.type_covered  # type: ignore[attr-defined]
        key = sig_key(covered)
        rrset = out.get(key)
        if rrset is None:
            rrset = out[key] = dns.rrset.RRset(
                owner, dns.rdataclass.IN, RdataType.RRSIG, covers=covered
            )
            rrset.ttl = ttls.get(covered, default_ttl)
        # As compile_grouping does: the parser's rdatas already match the RRset.
        rrset.items[rd] = None
    return out


__all__ = ["SIG_BASE", "covered_type", "is_sig_key", "sig_key", "split_rrsigs"]
