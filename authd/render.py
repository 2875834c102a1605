"""Rendering an ``Answer`` to wire format within a size limit.

Owns: header flags, EDNS in responses (RFC 6891), NSID (RFC 5001) and
truncation (RFC 2181 section 9, RFC 9471).  Invariant: a response is always
a well-formed message: whole RRsets are dropped, never bytes; optional
additional data goes first and silently, and TC is set only when the answer,
the authority or required glue did not fit.  The OPT record is reserved up
front so it always fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.OPT
import dns.renderer
import dns.rrset

from authd.engine import Answer
from authd.limits import HEADER_LEN, OPT_FIXED_SIZE

EDNS_DO = 0x8000


@dataclass(frozen=True, slots=True)
class EdnsReply:
    """What the OPT record of a response carries."""

    payload: int  # our UDP payload size
    do: bool
    nsid: bytes | None = None
    ext_rcode: int = 0  # the upper 8 bits of a 12-bit rcode (BADVERS = 16 -> 1)
    ede: int | None = None  # Extended DNS Error (RFC 8914), no extra text
    ecs: dns.edns.ECSOption | None = None  # EDNS Client Subnet echo (RFC 7871 s7.2.1)
    # Client cookie + server cookie (RFC 7873); always the last option, so the
    # answer cache can patch a cached response's cookie in place.
    cookie: bytes | None = None


def edns_options(edns: EdnsReply) -> list[dns.edns.Option]:
    """The options of a response's OPT record, in a fixed order."""
    options: list[dns.edns.Option] = []
    if edns.nsid is not None:
        options.append(dns.edns.NSIDOption(edns.nsid))
    if edns.ecs is not None:
        options.append(edns.ecs)
    if edns.ede is not None:
        options.append(dns.edns.EDEOption(dns.edns.EDECode.make(edns.ede)))
    if edns.cookie is not None:
        options.append(dns.edns.CookieOption(edns.cookie[:8], edns.cookie[8:]))
    return options


def _opt_rrset(edns: EdnsReply) -> dns.rrset.RRset:
    rdata = dns.rdtypes.ANY.OPT.OPT(edns.payload, dns.rdatatype.OPT, edns_options(edns))
    rrset = dns.rrset.RRset(
        dns.name.root, dns.rdataclass.RdataClass(edns.payload), dns.rdatatype.OPT
    )
    rrset.add(rdata)
    rrset.ttl = (edns.ext_rcode << 24) | (EDNS_DO if edns.do else 0)
    return rrset


def _opt_size(edns: EdnsReply) -> int:
    size = OPT_FIXED_SIZE + (4 + len(edns.nsid) if edns.nsid is not None else 0)
    if edns.ecs is not None:
        size += 4 + 4 + len(edns.ecs.addrdata)  # code, length; family, prefixes, address
    if edns.cookie is not None:
        size += 4 + len(edns.cookie)
    return size + (6 if edns.ede is not None else 0)


def render(
    query_id: int,
    query_flags: int,
    qname: dns.name.Name,
    qtype: int,
    qclass: int,
    answer: Answer,
    edns: EdnsReply | None,
    limit: int,
    reserve: int = 0,
) -> bytes:
    """The response to a query; *qname* is rendered as asked (its case echoed).

    *reserve* keeps room for a TSIG record the caller appends after rendering.
    """
    flags = dns.flags.QR | (query_flags & (dns.flags.RD | dns.flags.CD)) | (answer.rcode & 0xF)
    if answer.aa:
        flags |= dns.flags.AA
    ext_rcode = answer.rcode >> 4
    if edns is not None and (ext_rcode or answer.ede is not None):
        edns = dataclasses.replace(edns, ext_rcode=ext_rcode, ede=answer.ede)
    r = dns.renderer.Renderer(query_id, flags, limit)
    question_size = HEADER_LEN + len(qname.to_wire() or b"") + 4
    if edns is not None and edns.nsid is not None:
        if question_size + _opt_size(edns) + reserve > limit:
            # NSID is informative: drop it rather than exceed the client's size.
            edns = dataclasses.replace(edns, nsid=None)
    if edns is not None:
        r.reserve(_opt_size(edns))
    if reserve:
        r.reserve(reserve)
    truncated = False
    try:
        r.add_question(qname, qtype, qclass)
        for rrset in answer.answer:
            r.add_rrset(dns.renderer.ANSWER, rrset)
        for rrset in answer.authority:
            r.add_rrset(dns.renderer.AUTHORITY, rrset)
        for rrset in answer.required:
            r.add_rrset(dns.renderer.ADDITIONAL, rrset)
    except dns.exception.TooBig:
        truncated = True
    else:
        for rrset in answer.additional:
            try:
                r.add_rrset(dns.renderer.ADDITIONAL, rrset)
            except dns.exception.TooBig:
                continue  # optional data: drop it quietly, a smaller one may fit
    r.release_reserved()
    if reserve:
        r.reserve(reserve)  # still room for the TSIG, not for more data
    if edns is not None:
        r.add_rrset(dns.renderer.ADDITIONAL, _opt_rrset(edns))
    if truncated:
        r.flags |= dns.flags.TC
    r.write_header()
    return r.get_wire()  # type: ignore[no-any-return]
