"""Answers assembled from compiled zones: query bytes in, response bytes out.

Owns: ``respond``, the uncached answer path for the plain query that
``authd.wire.question_key`` recognises: it finds the zone by the wire
qname's suffixes, walks the ``CompiledZone`` as ``authd.engine.resolve``
walks a ``ZoneVersion`` (exact match, CNAME chains inside the zone, DNAME,
wildcards, referrals, NXDOMAIN and NODATA with the zone's one prepared SOA)
and joins the prepared RRset bytes into a message, names compressed as
dnspython's renderer compresses them (RFC 1035 section 4.1.4: every suffix of
every name written is entered at its offset; owner and rdata names are
pointers to earlier ones), EDNS as ``authd.render`` adds it, and truncation
where the engine truncates (whole RRsets; optional additional data dropped
quietly; TC when the answer, the authority or required glue does not fit).

Invariant: ``respond`` returns None for anything it does not handle exactly
as the engine does (another class, DO set, ANY, the DNSSEC and meta types, a
zone that failed to load, a name outside our zones, a version not compiled),
and the caller then asks the engine; tests/test_compiled.py holds every
response it does produce to the engine's, section by section.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import dns.name

from authd.compiled import (
    CompiledZone,
    NodeWire,
    RRsetWire,
    WireName,
    in_zone,
    key_of,
    suffixes,
    synthesized_cname,
    ttl_bytes,
)
from authd.limits import HEADER_LEN, MAX_CHAIN, MAX_NAME_WIRE, OPT_FIXED_SIZE
from authd.ratelimit import ERROR_TOKEN, Kind, Token
from authd.wire import QuestionKey
from authd.zone import ZoneVersion

# Compiled zones by their apex key; None: a zone the engine must answer
# (failed to load, or not compiled), which still hides any parent zone.
WireTable = dict[bytes, CompiledZone | None]

TYPE_CNAME = 5
TYPE_DS = 43
# Left to the engine: DS (answered from the parent side of a cut), the
# DNSSEC types RRSIG, NSEC, NSEC3, NSEC3PARAM (the DNSSEC work decides
# those), type 0, OPT (FORMERR) and the meta and question-only types 128-255
# (ANY, AXFR, TSIG...), which are never plain data (RFC 6895 section 3.1).
_ENGINE_TYPES = frozenset({0, 41, TYPE_DS, 46, 47, 50, 51})
_NOT_QUICK = _ENGINE_TYPES | frozenset(range(128, 256))
RCODE_NXDOMAIN = 3
RCODE_YXDOMAIN = 6
FLAG_QR_AA = 0x8400
FLAG_QR = 0x8000
_NO_DATA: tuple[RRsetWire, ...] = ()
LOW14 = 0x3FFF
_AT_QUESTION = b"\xc0\x0c"
_ABSENT: Any = (
    object()
)  # not a key of the zone table  # a pointer to the question's name (RFC 1035 4.1.4)


def zone_table(zones: Mapping[dns.name.Name, ZoneVersion | None]) -> WireTable:
    """The compiled zones of a view's zone table, by apex key."""
    return {key_of(name): (v.wire if v is not None else None) for name, v in zones.items()}


def _name(
    out: bytearray, names: dict[bytes, int], wire: bytes, sfx: tuple[tuple[bytes, int], ...]
) -> None:
    """Write a name compressed against *names*, entering its new suffixes."""
    base = len(out)
    i = 0
    for suffix, off in sfx:
        ptr = names.get(suffix)
        if ptr is not None:
            out += wire[:off]
            out += (0xC000 | ptr).to_bytes(2, "big")
            break
        i += 1
    else:
        out += wire
    for suffix, off in sfx[:i]:
        if base + off <= LOW14:
            names[suffix] = base + off


def put_rrset(out: bytearray, names: dict[bytes, int], rr: RRsetWire, owner: WireName) -> None:
    wire, sfx = owner
    tails = rr.tails
    if tails is not None:
        _name(out, names, wire, sfx)
        if len(tails) == 1:
            out += tails[0]
            return
        ptr = names.get(sfx[0][0]) if sfx else None
        if ptr is not None:
            out += (0xC000 | ptr).to_bytes(2, "big").join(tails)
            return
        out += tails[0]
        for tail in tails[1:]:
            _name(out, names, wire, sfx)
            out += tail
        return
    for head, pieces, last in rr.parts:
        _name(out, names, wire, sfx)
        out += head
        at = len(out)
        out += b"\x00\x00"
        for literal, (nwire, nsfx) in pieces:
            out += literal
            _name(out, names, nwire, nsfx)
        out += last
        n = len(out) - at - 2
        out[at] = n >> 8
        out[at + 1] = n & 0xFF


def rollback(out: bytearray, names: dict[bytes, int], start: int) -> None:
    del out[start:]
    for k in [k for k, v in names.items() if v >= start]:
        del names[k]


@functools.cache
def _opt_record(payload: int) -> bytes:
    """Our OPT record without options (RFC 6891 6.1.2), as ``respond`` writes it."""
    return b"\x00\x00\x29" + payload.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"


@functools.cache
def _flag_bytes(flags: int) -> bytes:
    return flags.to_bytes(2, "big")


# Per zone one label above the names ``quick`` answers: the zone, its node
# shards and mask, and whether a wildcard sits right below its apex.
QuickZone = tuple[CompiledZone, tuple[dict[bytes, NodeWire], ...], int, bool]
QuickTable = dict[bytes, QuickZone]


def quick_table(table: WireTable) -> QuickTable:
    """What ``quick`` reads of *table*'s zones, by apex key; zones with a DNAME
    at the apex (every name below is redirected) are left to ``respond``."""
    out: QuickTable = {}
    for origin, zone in table.items():
        if zone is not None and not zone.apex_dname:
            out[origin] = (zone, zone.shards, zone.mask, zone.node(b"\x01*" + origin) is not None)
    return out


def quick(
    query: bytes,
    key: QuestionKey,
    table: WireTable,
    quicks: QuickTable,
    limit: int,
    payload: int,
    minimal: bool,
) -> tuple[bytes, Token] | None:
    """The commonest answers one label below a zone's apex, byte for byte as
    ``respond``'s walk renders them, in far fewer steps: a name that does not
    exist (a random-subdomain flood's NXDOMAIN) or lacks the type (NODATA),
    both with the SOA bytes the walk memoised for the qname's length; and one
    RRset without compressible names in its rdata (A, AAAA, TXT...).  None:
    anything else (and NSID, DO, other classes), for ``respond``.  *quicks* is
    ``quick_table(table)``."""
    lower = key.qname
    parent = lower[lower[0] + 1 :]
    entry = quicks.get(parent)
    if entry is None:
        return None
    qtype = key.qtype
    if key.do or key.nsid or key.qclass != 1 or qtype in _NOT_QUICK or lower in table:
        return None
    zone, shards, mask, wild = entry
    node = shards[hash(lower) & mask].get(lower)
    if node is None:
        if wild:
            return None
        flags = FLAG_QR_AA | RCODE_NXDOMAIN
        counts = _NEGATIVE_COUNTS
        token: Token = (Kind.NXDOMAIN, parent, 0)
    elif node.referral is not None or node.cname is not None:
        return None
    else:
        rr = node.rrsets.get(qtype)
        if rr is not None:
            tails = rr.tails
            if tails is None or (not minimal and node.extra and node.extra.get(qtype)):
                return None
            body = _AT_QUESTION + _AT_QUESTION.join(tails)
            counts = _COUNTS.get(rr.count) or _counts(rr.count)
            token = (Kind.ANSWER, lower, qtype)
            flags = FLAG_QR_AA
        else:
            flags = FLAG_QR_AA
            counts = _NEGATIVE_COUNTS
            token = (Kind.NODATA, lower, 0)
    if counts is _NEGATIVE_COUNTS:
        if lower in zone.negative_keys:
            return None
        memo = zone.negative_by_length.get(len(lower))
        if memo is None:
            return None  # the walk renders it first, and memoises it
        body = memo
    qend = HEADER_LEN + len(lower) + 4
    if key.payload is None:
        if qend + len(body) > limit:
            return None
        return b"".join(
            (query[:2], _flag_bytes(flags | key.flags), counts, b"\x00\x00", query[12:qend], body)
        ), token
    if qend + len(body) + OPT_FIXED_SIZE > limit:
        return None
    return b"".join(
        (
            query[:2],
            _flag_bytes(flags | key.flags),
            counts,
            b"\x00\x01",
            query[12:qend],
            body,
            _opt_record(payload),
        )
    ), token


_NEGATIVE_COUNTS = b"\x00\x01\x00\x00\x00\x01"  # QD 1, AN 0, NS 1 (ARCOUNT follows)


def _counts(answers: int) -> bytes:
    """QDCOUNT 1, ANCOUNT *answers*, NSCOUNT 0 (ARCOUNT follows)."""
    return b"\x00\x01" + answers.to_bytes(2, "big") + b"\x00\x00"


_COUNTS = {n: _counts(n) for n in range(1, 17)}


def respond(
    query: bytes,
    key: QuestionKey,
    table: WireTable,
    limit: int,
    payload: int,
    nsid: bytes | None,
    minimal: bool,
) -> tuple[bytes, Token] | None:
    """The response to *query* from compiled zones and its response class for
    rate limiting (as ``ratelimit.classify`` gives the engine's), or None: ask
    the engine.

    *limit* is the size the response must fit; *payload* is the UDP size our
    OPT record announces; *nsid* is our NSID when the query asked for it.
    """
    qtype = key.qtype
    if key.do or key.qclass != 1 or qtype in _ENGINE_TYPES or 128 <= qtype <= 255:
        return None
    lower = key.qname
    pos = 0
    while True:
        zone = table.get(lower[pos:] if pos else lower, _ABSENT)
        if zone is not _ABSENT:
            if zone is None:
                return None
            break
        n = lower[pos]
        if n == 0:
            return None  # not our zone: the engine's REFUSED
        pos += n + 1

    qlen = len(lower)
    origin = zone.origin
    shards = zone.shards
    mask = zone.mask
    qcase = query[HEADER_LEN : HEADER_LEN + qlen]
    answer: list[tuple[RRsetWire, WireName | None]] = []
    authority: tuple[RRsetWire, ...] = _NO_DATA
    required: tuple[RRsetWire, ...] = _NO_DATA
    optional: tuple[RRsetWire, ...] = _NO_DATA
    rcode = 0
    aa = True
    referral_at = b""  # the cut, for a referral
    wildcard = b""  # the first wildcard that synthesized (RFC 4592)
    seen: set[bytes] = set()
    cur = lower
    cur_case = qcase
    for _ in range(MAX_CHAIN + 1):
        seen.add(cur)
        # The walk (engine._walk): the closest existing name, then the stop above it.
        dkey = b""
        if zone.apex_dname and cur != origin:
            e = dkey = origin
            node = shards[hash(origin) & mask][origin]
        else:
            e = cur
            found = shards[hash(e) & mask].get(e)
            while found is None:
                e = e[e[0] + 1 :]
                found = shards[hash(e) & mask].get(e)
            node = found
            if node.stop is not None:
                e = node.stop
                node = shards[hash(e) & mask][e]
                if node.referral is None:
                    dkey = e
            elif node.dname is not None and e != cur and node.referral is None:
                dkey = e
            ref = node.referral
            if ref is not None and not dkey:
                referral_at = e
                authority = (ref.ns,)
                required = ref.required
                if not minimal:
                    optional = ref.optional
                aa = bool(answer)  # a referral alone is not authoritative
                break
        if dkey:
            # RFC 6672: the DNAME, and a CNAME synthesized from it.
            dname = node.dname
            assert dname is not None
            answer.append((dname, None))
            target = cur_case[: len(cur) - len(dkey)] + node.dname_target
            if len(target) > MAX_NAME_WIRE:
                rcode = RCODE_YXDOMAIN
                break
            answer.append((synthesized_cname(cur_case, target, ttl_bytes(dname)), None))
            if qtype == TYPE_CNAME:
                break
            tkey = target.lower()
            if tkey in seen or not in_zone(tkey, origin):
                break
            cur, cur_case = tkey, target
            continue
        owner: WireName | None = None
        if e != cur:
            wild = shards[hash(b"\x01*" + e) & mask].get(b"\x01*" + e) if zone.wildcards else None
            if wild is None:
                rcode = RCODE_NXDOMAIN
                authority = (zone.negative,)
                break
            node = wild
            if not wildcard:
                wildcard = b"\x01*" + e
            owner = (cur_case, suffixes(cur_case))  # RFC 4592: the owner is the name asked
        cname = node.cname
        if cname is not None and qtype != TYPE_CNAME:
            answer.append((cname, owner))
            target_key = node.cname_target
            if target_key is None or target_key in seen:
                break
            cur, cur_case = target_key, node.cname_wire
            continue
        rr = node.rrsets.get(qtype)
        if rr is None:
            authority = (zone.negative,)
            break
        answer.append((rr, owner))
        if not minimal:
            optional = node.extra.get(qtype, _NO_DATA)
        break

    # Rendering: the question as asked, then the sections.
    qend = HEADER_LEN + qlen + 4
    out = bytearray(query[:qend])
    opt_size = 0
    if key.payload is not None:
        opt_size = OPT_FIXED_SIZE
        if nsid is not None:
            if qend + opt_size + 4 + len(nsid) > limit:
                nsid = None  # informative only: dropped rather than exceed the limit
            else:
                opt_size += 4 + len(nsid)
    room = limit - opt_size
    tc = False
    an = ns = ar = 0
    done = False
    memo = None
    if not answer:
        if authority and authority[0] is zone.negative:
            # NXDOMAIN or NODATA: the zone's shared SOA, as bytes memoised by
            # qname length when no label of the qname below the apex is one the
            # SOA's names could be compressed against.
            memo = zone.negative_by_length
            keys = zone.negative_keys
            p = 0
            while p < qlen - len(origin):
                if lower[p:] in keys:
                    memo = None
                    break
                p += lower[p] + 1
            if memo is not None:
                body = memo.get(qlen)
                if body is not None and qend + len(body) <= room:
                    out += body
                    ns = 1
                    done = True
    elif len(answer) == 1 and not authority and not required and not optional and qlen > 1:
        # One RRset at the qname with no names in its rdata (A, AAAA, TXT...):
        # every owner is a pointer to the question, nothing else compresses.
        rr, own = answer[0]
        tails = rr.tails
        # At the qname: a wildcard's (renamed) or an exact match's, not a DNAME
        # that made the name too long (YXDOMAIN, its owner an ancestor).
        if tails is not None and (own is not None or rr.owner[1][0][0] == lower):
            body = _AT_QUESTION + _AT_QUESTION.join(tails)
            if qend + len(body) <= room:
                out += body
                an = rr.count
                done = True
    if not done:
        names: dict[bytes, int] = {}
        p = 0
        while lower[p]:
            names[lower[p:]] = HEADER_LEN + p
            p += lower[p] + 1
        for rr, own in answer:
            start = len(out)
            put_rrset(out, names, rr, own if own is not None else rr.owner)
            if len(out) > room:
                rollback(out, names, start)
                tc = True
                break
            an += rr.count
        if not tc:
            for rr in authority:
                start = len(out)
                put_rrset(out, names, rr, rr.owner)
                if len(out) > room:
                    rollback(out, names, start)
                    tc = True
                    break
                ns += rr.count
            if memo is not None and ns:
                memo[qlen] = bytes(out[qend:])
        if not tc:
            for rr in required:
                start = len(out)
                put_rrset(out, names, rr, rr.owner)
                if len(out) > room:
                    rollback(out, names, start)
                    tc = True
                    break
                ar += rr.count
        if not tc:
            for rr in optional:
                start = len(out)
                put_rrset(out, names, rr, rr.owner)
                if len(out) > room:
                    rollback(out, names, start)
                    continue  # optional: a smaller one may still fit
                ar += rr.count
    if key.payload is not None:
        # RFC 6891 6.1.2: root owner, OPT, our payload, no extended rcode or flags.
        out += b"\x00\x00\x29" + payload.to_bytes(2, "big") + b"\x00\x00\x00\x00"
        if nsid is not None:
            out += (len(nsid) + 4).to_bytes(2, "big") + b"\x00\x03" + len(nsid).to_bytes(2, "big")
            out += nsid
        else:
            out += b"\x00\x00"
        ar += 1
    flags = (FLAG_QR_AA if aa else FLAG_QR) | key.flags | rcode | (0x0200 if tc else 0)
    out[2:12] = (
        flags.to_bytes(2, "big")
        + b"\x00\x01"
        + an.to_bytes(2, "big")
        + ns.to_bytes(2, "big")
        + ar.to_bytes(2, "big")
    )
    if rcode == RCODE_NXDOMAIN:
        # All names that do not exist under one zone are one class (the SOA's owner).
        token: Token = (Kind.NXDOMAIN, origin, 0)
    elif rcode:
        token = ERROR_TOKEN
    elif referral_at:
        token = (Kind.REFERRAL, referral_at, 0)
    elif not answer:
        token = (Kind.NODATA, lower, 0)
    else:
        token = (Kind.ANSWER, wildcard or lower, qtype)
    return bytes(out), token


__all__ = [
    "QuickTable",
    "WireTable",
    "put_rrset",
    "quick",
    "quick_table",
    "respond",
    "rollback",
    "zone_table",
]
