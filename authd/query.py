"""The core's front door: one request in, a reply out.

Owns: the order of the checks a query goes through (drop, FORMERR, NOTIMP,
BADVERS, CHAOS, view, zone), the answer cache, and EDNS negotiation.  Pure: the
request carries the bytes, the addresses and the transport; the reply carries
zero (drop) or more wire messages and, when query logging is on, an event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from authd import wire
from authd.engine import Answer, State, answer_query
from authd.render import EdnsReply, render
from authd.snapshot import Snapshot, View

RdataType = dns.rdatatype.RdataType

NO_EDNS_UDP_LIMIT = 512  # RFC 1035 section 4.2.1
MIN_EDNS_UDP_LIMIT = 512  # RFC 6891 section 6.2.5
TCP_LIMIT = 65535

# Meta types that are never answered from zone data (RFC 6895 section 3.1).
_QTYPE_FORMERR = frozenset({RdataType.OPT, RdataType.TSIG, RdataType.TKEY})
_QTYPE_NOTIMP = frozenset({RdataType.MAILA, RdataType.MAILB})
_QTYPE_TRANSFER = frozenset({RdataType.AXFR, RdataType.IXFR})

_CHAOS_VERSION = frozenset(dns.name.from_text(n) for n in ("version.bind", "version.server"))
_CHAOS_IDENTITY = frozenset(dns.name.from_text(n) for n in ("id.server", "hostname.bind"))


class Transport(enum.Enum):
    UDP = "udp"
    TCP = "tcp"


@dataclass(frozen=True, slots=True)
class Request:
    wire: bytes
    client: str  # source address
    local: str  # the address the query arrived on
    transport: Transport


@dataclass(frozen=True, slots=True)
class QueryEvent:
    """What the query log records; built only when query logging is on."""

    client: str
    qname: str
    qtype: str
    rcode: str
    cached: bool
    size: int


@dataclass(frozen=True, slots=True)
class Reply:
    messages: tuple[bytes, ...]  # empty: send nothing
    event: QueryEvent | None = None


_DROP = Reply(())


def _limit(transport: Transport, payload: int | None, udp_max: int) -> int:
    if transport is Transport.TCP:
        return TCP_LIMIT
    if payload is None:
        return NO_EDNS_UDP_LIMIT
    return min(max(payload, MIN_EDNS_UDP_LIMIT), udp_max)


def handle(request: Request, snapshot: Snapshot) -> Reply:
    """Answer one DNS message received over UDP or TCP."""
    data = request.wire
    key = wire.question_key(data)
    view = snapshot.select_view(request.client, request.local)
    options = snapshot.options
    if key is not None and view is not None:
        cache_key = (
            view.index,
            key.qname,
            key.qtype,
            key.qclass,
            key.flags,
            _limit(request.transport, key.payload, options.udp_payload_max),
            key.payload is not None,  # an OPT only answers an OPT (RFC 6891 s7)
            key.do,
            key.nsid,
            request.transport is Transport.UDP,
        )
        cached = snapshot.cache.get(cache_key)
        if cached is not None:
            out = wire.patch_response(cached, data, len(key.qname))
            return Reply((out,), _event(request, out, True) if options.query_log else None)
        response = _answer(request, snapshot, view)
        if response is None:
            return _DROP
        cache = snapshot.cache
        if options.answer_cache_entries:
            if len(cache) >= options.answer_cache_entries:
                cache.clear()  # bounded memory: start over rather than track recency
            cache[cache_key] = response
        return Reply((response,), _event(request, response, False) if options.query_log else None)
    response = _answer(request, snapshot, view)
    if response is None:
        return _DROP
    return Reply((response,), _event(request, response, False) if options.query_log else None)


def _event(request: Request, response: bytes, cached: bool) -> QueryEvent:
    try:
        msg = dns.message.from_wire(response, question_only=True)
        q = msg.question[0]
        qname, qtype = q.name.to_text(), dns.rdatatype.to_text(q.rdtype)
        rcode = dns.rcode.to_text(msg.rcode())
    except (dns.exception.DNSException, IndexError):
        qname, qtype, rcode = "?", "?", dns.rcode.to_text(dns.rcode.Rcode(response[3] & 0xF))
    return QueryEvent(request.client, qname, qtype, rcode, cached, len(response))


def _answer(request: Request, snapshot: Snapshot, view: View | None) -> bytes | None:
    data = request.wire
    if len(data) < wire.HEADER_LEN or data[2] & 0x80:
        return None  # no header to answer, or a response: never answer those
    try:
        msg = dns.message.from_wire(data)
    except dns.message.ShortHeader:
        return None
    except Exception:
        # Anything the parser refuses (bad pointers, trailing junk, two OPTs,
        # bad rdata...) gets FORMERR from the header alone.
        return wire.header_only(data, dns.rcode.FORMERR)
    options = snapshot.options
    edns: EdnsReply | None = None
    if msg.edns >= 0:
        nsid = None
        if options.nsid is not None and any(
            o.otype == dns.edns.OptionType.NSID for o in msg.options
        ):
            nsid = options.nsid.encode()
        edns = EdnsReply(options.udp_payload_max, bool(msg.ednsflags & dns.flags.DO), nsid)
        if msg.edns > 0:
            # RFC 6891 section 6.1.3: answer BADVERS with the version we do speak.
            return _simple(msg, request, snapshot, dns.rcode.BADVERS, edns)
    if msg.opcode() != dns.opcode.QUERY:
        return _simple(msg, request, snapshot, dns.rcode.NOTIMP, edns)
    if len(msg.question) != 1 or msg.answer or msg.authority:
        return _simple(msg, request, snapshot, dns.rcode.FORMERR, edns)
    q = msg.question[0]
    limit = _limit(
        request.transport, msg.payload if msg.edns >= 0 else None, options.udp_payload_max
    )
    if q.rdtype in _QTYPE_FORMERR:
        return _simple(msg, request, snapshot, dns.rcode.FORMERR, edns)
    if q.rdtype in _QTYPE_NOTIMP:
        return _simple(msg, request, snapshot, dns.rcode.NOTIMP, edns)
    if q.rdclass == dns.rdataclass.CH:
        result = _chaos(q.name, q.rdtype, snapshot)
    elif view is None:
        result = Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
    elif q.rdtype in _QTYPE_TRANSFER:
        # No transfer is allowed until an ACL or a TSIG key says so.
        result = Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
    elif q.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
        result = Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
    else:
        result = answer_query(
            view.zones,
            q.name,
            q.rdtype,
            minimal_responses=options.minimal_responses,
            minimal_any=options.minimal_any and request.transport is Transport.UDP,
            dnssec=edns is not None and edns.do,
        )
    return render(msg.id, msg.flags, q.name, q.rdtype, q.rdclass, result, edns, limit)


def _simple(
    msg: dns.message.Message,
    request: Request,
    snapshot: Snapshot,
    rcode: dns.rcode.Rcode,
    edns: EdnsReply | None = None,
) -> bytes:
    """An error response echoing the question when there is exactly one."""
    flags = dns.flags.QR | (msg.flags & (dns.flags.RD | dns.flags.CD)) | (rcode & 0xF)
    flags |= dns.opcode.to_flags(msg.opcode())
    response = dns.message.Message(msg.id)
    response.flags = flags
    if len(msg.question) == 1:
        response.question = list(msg.question)
    if edns is not None:
        response.use_edns(
            0,
            dns.flags.DO if edns.do else 0,
            edns.payload,
            options=[dns.edns.NSIDOption(edns.nsid)] if edns.nsid is not None else None,
        )
        response.set_rcode(rcode)
    return response.to_wire(max_size=TCP_LIMIT)  # type: ignore[no-any-return]


def _chaos(qname: dns.name.Name, qtype: int, snapshot: Snapshot) -> Answer:
    """CHAOS TXT identity queries: REFUSED unless the operator configured them."""
    if qtype not in (RdataType.TXT, RdataType.ANY):
        return Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
    if qname in _CHAOS_VERSION:
        text = snapshot.options.version
    elif qname in _CHAOS_IDENTITY:
        text = snapshot.options.identity
    else:
        text = None
    if text is None:
        return Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
    rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.CH, RdataType.TXT, [text.encode()])
    rrset = dns.rrset.RRset(qname, dns.rdataclass.CH, RdataType.TXT)
    rrset.add(rdata, 0)
    return Answer(State.ANSWER, answer=[rrset])
