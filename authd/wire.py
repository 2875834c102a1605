"""Byte-level reading of the common query shape, for the answer cache.

Owns: recognising, without building a ``dns.message.Message``, the plain query
that makes up nearly all traffic (one question, no answer or authority, at most
an OPT record) and reducing it to the key its answer depends on; and patching
a cached response for a new asker.  Invariant: ``question_key`` returns a key
only for a packet that is well formed to its last byte, so a cache hit never
answers a malformed packet that the full parser would have refused.
"""

from __future__ import annotations

import functools
import struct
from typing import NamedTuple

import dns.edns
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from authd.limits import HEADER_LEN, MAX_NAME_WIRE

FLAG_QR = 0x8000
OPCODE_MASK = 0x7800
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_CD = 0x0010
TYPE_OPT = 41
EDNS_DO = 0x8000
OPTION_NSID = 3
OPTION_ECS = 8
OPTION_COOKIE = 10
OPTION_PADDING = 12
# Options whose content never makes a query malformed.
_OPAQUE_OPTIONS = frozenset({OPTION_NSID, OPTION_PADDING})


@functools.cache
def _is_generic_option(code: int) -> bool:
    """True when dnspython reads option *code* as opaque bytes, so it cannot fail."""
    return dns.edns.get_option_class(dns.edns.OptionType.make(code)) is dns.edns.GenericOption


class QuestionKey(NamedTuple):
    qname: bytes  # the qname in wire form, ASCII-lowercased
    qtype: int
    qclass: int
    flags: int  # the query flags that a response echoes (RD, CD)
    payload: int | None  # EDNS UDP payload size, None without EDNS
    do: bool
    nsid: bool  # the client asked for NSID (RFC 5001)
    cookie: bytes | None = None  # the COOKIE option's data (RFC 7873), well formed


_HEADER = struct.Struct(">HQ").unpack_from  # flags, then the four counts as one
_ONE_QUESTION = 1 << 48  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0
_ONE_QUESTION_OPT = _ONE_QUESTION | 1  # ... ARCOUNT 1
_TYPE_CLASS = struct.Struct(">HH").unpack_from
# OPT from its owner on: owner (root), type, class (payload), extended rcode,
# version, flags, RDLENGTH.
_OPT = struct.Struct(">BHHBBHH").unpack_from
_BARE_OPT = struct.Struct(">HHBHHBBHH").unpack_from  # QTYPE, QCLASS, then the OPT record


def question_key(wire: bytes) -> QuestionKey | None:
    """The cache key of a plain, well-formed query, or None for anything else."""
    n = len(wire)
    if n < HEADER_LEN + 5:
        return None
    flags, counts = _HEADER(wire, 2)
    # Not a response, opcode QUERY; QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1.
    if flags & (FLAG_QR | OPCODE_MASK) or counts | 1 != _ONE_QUESTION_OPT:
        return None
    pos = HEADER_LEN
    try:
        length = wire[pos]
        while length:
            if length > 63:  # a compression pointer or a reserved label type
                return None
            pos += length + 1
            length = wire[pos]
    except IndexError:
        return None
    qend = pos + 1
    if qend - HEADER_LEN > MAX_NAME_WIRE:
        return None
    rest = n - qend
    # The two commonest shapes, read in one step each: no EDNS, and an OPT
    # record without options.
    if rest == 4 and counts == _ONE_QUESTION:
        qtype, qclass = _TYPE_CLASS(wire, qend)
        return QuestionKey(
            wire[HEADER_LEN:qend].lower(),
            qtype,
            qclass,
            flags & (FLAG_RD | FLAG_CD),
            None,
            False,
            False,
        )
    if rest == 15 and counts == _ONE_QUESTION_OPT:
        qtype, qclass, root, rrtype, payload, _, version, ext, rdlen = _BARE_OPT(wire, qend)
        if root or rrtype != TYPE_OPT or version or rdlen:
            return None  # another owner or type, BADVERS, or a length that overruns
        return QuestionKey(
            wire[HEADER_LEN:qend].lower(),
            qtype,
            qclass,
            flags & (FLAG_RD | FLAG_CD),
            payload,
            bool(ext & EDNS_DO),
            False,
        )
    if rest < 4:
        return None
    qtype, qclass = _TYPE_CLASS(wire, qend)
    pos = qend + 4
    payload = None
    do = nsid = False
    cookie = None
    if wire[11] == 1:
        # The OPT pseudo-RR: root owner, type 41, class = payload, TTL = ext flags.
        if pos + 11 > n:
            return None
        root, rrtype, payload, _, version, ext, rdlen = _OPT(wire, pos)
        if root or rrtype != TYPE_OPT or version:  # EDNS version: anything else needs BADVERS
            return None
        do = bool(ext & EDNS_DO)
        pos += 11
        end = pos + rdlen
        if end != n:
            return None
        while pos < end:
            if pos + 4 > end:
                return None
            code = (wire[pos] << 8) | wire[pos + 1]
            olen = (wire[pos + 2] << 8) | wire[pos + 3]
            if code == OPTION_NSID:
                nsid = True
            elif code == OPTION_ECS:
                # RFC 7871: the answer may depend on the client's subnet and echoes
                # it, so the cache (keyed without it) must never serve it.
                return None
            elif code == OPTION_COOKIE:
                # RFC 7873 section 4: a client cookie of 8 bytes, a server one of 8-32.
                if olen != 8 and not 16 <= olen <= 40 or cookie is not None:
                    return None
                cookie = wire[pos + 4 : pos + 4 + olen]
            elif code not in _OPAQUE_OPTIONS and not _is_generic_option(code):
                # An option the full parser validates (ECS...): let it decide.
                return None
            pos += 4 + olen
        if pos != end:
            return None
    elif pos != n:
        return None
    return QuestionKey(
        wire[HEADER_LEN:qend].lower(),
        qtype,
        qclass,
        flags & (FLAG_RD | FLAG_CD),
        payload,
        do,
        nsid,
        cookie,
    )


def patch_response(cached: bytes, query: bytes, qname_len: int) -> bytes:
    """*cached* re-addressed to *query*: its ID and its qname's letter case."""
    end = HEADER_LEN + qname_len
    return query[:2] + cached[2:HEADER_LEN] + query[HEADER_LEN:end] + cached[end:]


def header_only(query: bytes, rcode: int) -> bytes | None:
    """A bare response (no sections) to a query whose header alone is readable."""
    if len(query) < HEADER_LEN:
        return None
    flags = (query[2] << 8) | query[3]
    out_flags = FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | (rcode & 0xF)
    return query[:2] + out_flags.to_bytes(2, "big") + bytes(8)


def opt_record(payload: int, do: bool, ext_rcode: int = 0, options: bytes = b"") -> bytes:
    """An OPT pseudo-RR (RFC 6891 section 6.1.2) with *options* already in wire form."""
    ttl = bytes((ext_rcode, 0)) + (EDNS_DO if do else 0).to_bytes(2, "big")
    return (
        (b"\x00" + TYPE_OPT.to_bytes(2, "big") + payload.to_bytes(2, "big") + ttl)
        + len(options).to_bytes(2, "big")
        + options
    )


def cookie_option(data: bytes) -> bytes:
    """The COOKIE option (RFC 7873 section 4) carrying *data*, in wire form."""
    return OPTION_COOKIE.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def slipped(query: bytes, question_end: int, rcode: int, opt: bytes | None, tc: bool) -> bytes:
    """A reply to *query* carrying its question only (RRL's slip).

    With *tc* the client retries over TCP (RFC 7766); *opt* is the OPT
    record to append, as RFC 6891 wants one in a reply to an EDNS query.
    """
    flags = (query[2] << 8) | query[3]
    out = FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | (rcode & 0xF)
    if tc:
        out |= FLAG_TC
    counts = b"\x00\x01\x00\x00\x00\x00" + (b"\x00\x01" if opt is not None else b"\x00\x00")
    return (
        query[:2] + out.to_bytes(2, "big") + counts + query[HEADER_LEN:question_end] + (opt or b"")
    )


# What ``shape`` says of a message.
MALFORMED = -1  # no parser reads it
PLAIN = 0  # its layout is sound and no name in it is compressed
COMPRESSED = 1  # its layout is sound; some name has a pointer, not judged here


def _name_end(wire: bytes, pos: int) -> tuple[int, int]:
    """Where the name at *pos* ends in place, and PLAIN or COMPRESSED; or
    (-1, MALFORMED) when no version of dnspython reads it.

    The rules every reader has: a pointer points before the last one (so
    before the name itself: no loops), labels have type 00 or 11, the whole
    name, pointers followed, is at most 255 octets.  Newer readers refuse more
    of compressed names (overlapping targets, long chains); those are left to
    the parser.
    """
    n = len(wire)
    end = -1
    biggest = pos
    total = 0
    while pos < n:
        length = wire[pos]
        if length == 0:
            if total + 1 > MAX_NAME_WIRE:
                return -1, MALFORMED
            return (pos + 1, PLAIN) if end < 0 else (end, COMPRESSED)
        if length < 64:
            total += length + 1
            pos += length + 1
        elif length >= 0xC0:
            if pos + 1 >= n:
                return -1, MALFORMED
            target = ((length & 0x3F) << 8) | wire[pos + 1]
            if target >= biggest:
                return -1, MALFORMED
            if end < 0:
                end = pos + 2
            biggest = pos = target
        else:
            return -1, MALFORMED
    return -1, MALFORMED


def shape(wire: bytes) -> int:
    """MALFORMED, PLAIN or COMPRESSED: what the layout of message *wire*
    (12 bytes or more) says before any parse.

    MALFORMED: a name no parser reads (see ``_name_end``), a section that runs
    past the end, or bytes left over; dnspython refuses all of these.  Rdata
    is only skipped, so a message that passes may still be refused for its
    content.  Cheap, so junk is turned away before a parse.
    """
    n = len(wire)
    pos = HEADER_LEN
    records = (wire[4] << 8) | wire[5]
    fixed = 4  # a question's type and class
    seen = PLAIN
    for section in range(2):
        for _ in range(records):
            pos, kind = _name_end(wire, pos)
            if pos < 0:
                return MALFORMED
            seen |= kind
            pos += fixed
            if pos > n:
                return MALFORMED
            if section:
                pos += (wire[pos - 2] << 8) | wire[pos - 1]  # RDLENGTH
                if pos > n:
                    return MALFORMED
        # Answer, authority and additional alike: owner, type to RDLENGTH, rdata.
        records = sum((wire[i] << 8) | wire[i + 1] for i in (6, 8, 10))
        fixed = 10
    return seen if pos == n else MALFORMED


def junk_reply(data: bytes) -> bytes | None:
    """The reply the full path would give *data* (a header, not a response),
    when its layout alone decides it; None when only a parse can tell.

    Junk is most of a flood of bad packets, and this costs a fraction of a
    parse: a message no parser reads gets FORMERR; with no additional records
    (so no OPT to echo, no TSIG to check), a QUERY without exactly one question
    gets FORMERR and an opcode we do not serve gets NOTIMP.  The replies are
    the full path's to the byte (tests/test_malformed.py checks it).
    """
    layout = shape(data)
    if layout == MALFORMED:
        return header_only(data, dns.rcode.FORMERR)
    if data[10] or data[11]:
        return None
    opcode = (data[2] >> 3) & 0xF
    if opcode == dns.opcode.QUERY:
        if data[4] or data[5] != 1:
            return header_only(data, dns.rcode.FORMERR)
    elif layout == PLAIN and not any(data[6:10]) and opcode != dns.opcode.NOTIFY:
        # Only questions, uncompressed and sound: it parses (an UPDATE only if
        # dnspython's zone-section rules hold), so unknown_opcode's bare NOTIMP.
        if opcode == dns.opcode.UPDATE and not _one_soa_zone(data):
            return header_only(data, dns.rcode.FORMERR)
        flags = 0x8000 | (data[2] & 0x78) << 8 | dns.rcode.NOTIMP
        return data[:2] + flags.to_bytes(2, "big") + bytes(8)
    return None


_META_CLASSES = frozenset({dns.rdataclass.NONE, dns.rdataclass.ANY})


def _one_soa_zone(data: bytes) -> bool:
    """Whether the zone section of the UPDATE *data* (a PLAIN layout: names in
    place, only questions) is what dnspython reads (RFC 2136 section 2.3):
    none, or one SOA entry of a class that is not a meta-class."""
    count = data[4] << 8 | data[5]
    if count == 0:
        return True
    if count > 1:
        return False
    pos = HEADER_LEN
    while data[pos]:
        pos += data[pos] + 1
    rdtype = data[pos + 1] << 8 | data[pos + 2]
    rdclass = data[pos + 3] << 8 | data[pos + 4]
    return rdtype == dns.rdatatype.SOA and rdclass not in _META_CLASSES
