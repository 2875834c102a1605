"""The core's front door: one request in, a reply out.

Owns: the order of the checks a query goes through (drop, FORMERR, NOTIMP,
BADVERS, CHAOS, view, zone), what goes into the answer caches
(``authd.answercache`` keeps them bounded), and EDNS negotiation.  Pure: the
request carries the bytes, the addresses and the transport; the reply carries
zero (drop) or more wire messages and, when query logging is on, an event.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

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

from authd import assemble, cookies, ecs, ratelimit, tally, tsig, views, wire, xfr
from authd.answercache import AnswerCache
from authd.config import Options, ZoneType
from authd.engine import Answer, State, answer_query, find_zone
from authd.journal import Journal
from authd.limits import (
    COOKIE_CLIENT_LEN,
    COOKIE_SERVER_LEN,
    HEADER_LEN,
    MAX_MESSAGE,
    MIN_EDNS_UDP_PAYLOAD,
    NO_EDNS_UDP_LIMIT,
)
from authd.ratelimit import ERROR_TOKEN, Token, Verdict
from authd.render import EdnsReply, edns_options, render
from authd.snapshot import CacheEntry, Snapshot, View

RdataType = dns.rdatatype.RdataType


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
    now: float = 0.0  # seconds since the epoch, for TSIG
    port: int = 0  # source port, for the log (two secondaries on one host)


@dataclass(frozen=True, slots=True)
class QueryEvent:
    """What the query log records; built only when query logging is on."""

    client: str
    qname: str
    qtype: str
    rcode: str
    cached: bool
    size: int
    time: float = 0.0  # when the query arrived (the request's now)
    transport: str = "udp"
    id: int = 0  # the query's message ID
    port: int = 0  # the client's source port


@dataclass(frozen=True, slots=True)
class NotifyReceived:
    """An accepted NOTIFY (RFC 1996) for a secondary zone: check its primaries now."""

    view: str
    zone: dns.name.Name
    serial: int | None
    client: str


@dataclass(frozen=True, slots=True)
class TransferEvent:
    """A zone transfer request and what it got, for the log."""

    view: str
    zone: dns.name.Name
    client: str
    key: dns.name.Name | None
    kind: str  # axfr, ixfr-incremental, ixfr-full, ixfr-up-to-date, refused...
    serial: int | None
    port: int = 0  # the client's source port


@dataclass(frozen=True, slots=True)
class TsigRejected:
    """A signed request refused for its TSIG (RFC 8945 section 5.2), for the log."""

    client: str
    port: int
    key: dns.name.Name
    error: str  # BADSIG, BADKEY, BADTIME


@dataclass(frozen=True, slots=True)
class NotifyRefused:
    """A NOTIFY we did not accept, for the (rate-limited) security log."""

    client: str
    port: int
    zone: dns.name.Name
    key: dns.name.Name | None
    why: str


@dataclass(frozen=True, slots=True)
class QueryRefused:
    """A query refused by an ACL (no view for the client, or a zone's
    allow_query), for the (rate-limited) security log."""

    client: str
    port: int
    qname: dns.name.Name
    zone: dns.name.Name | None  # the zone whose allow_query refused; None: no view
    key: dns.name.Name | None
    why: str


@dataclass(frozen=True, slots=True)
class Reply:
    messages: tuple[bytes, ...]  # empty: send nothing
    event: QueryEvent | None = None
    # Further messages of a zone transfer, rendered as the transport takes them.
    stream: Iterator[bytes] | None = None
    notify: NotifyReceived | None = None
    transfer: TransferEvent | None = None
    tsig_rejected: TsigRejected | None = None
    notify_refused: NotifyRefused | None = None
    query_refused: QueryRefused | None = None
    rate_limited: ratelimit.Started | None = None  # a prefix began to be limited
    # What the metrics count this answer as: set on a Tallied reply, which the
    # core returns only when options.metrics is set (a class attribute here, so
    # the replies of a server without metrics cost no extra field to build).
    tally: ClassVar[str | None] = None

    @property
    def reportable(self) -> bool:
        """Whether the service must see this reply (a log line or an action)."""
        return (
            self.event is not None
            or self.transfer is not None
            or self.notify is not None
            or self.tsig_rejected is not None
            or self.notify_refused is not None
            or self.query_refused is not None
            or self.rate_limited is not None
        )


@dataclass(frozen=True, slots=True)
class Tallied(Reply):
    """A reply with its ``authd.tally`` key, for the metrics."""

    tally: str | None = None  # type: ignore[misc]


def with_tally(reply: Reply, key: str | None) -> Reply:
    """*reply* carrying the tally *key* (None: *reply* as it is)."""
    if key is None:
        return reply
    values = {f.name: getattr(reply, f.name) for f in dataclasses.fields(Reply)}
    return Tallied(**values, tally=key)


_DROP = Reply(())


def _limit(transport: Transport, payload: int | None, udp_max: int) -> int:
    if transport is Transport.TCP:
        return MAX_MESSAGE
    if payload is None:
        return NO_EDNS_UDP_LIMIT
    return min(max(payload, MIN_EDNS_UDP_PAYLOAD), udp_max)


def lab_fault(request: Request, faults: tuple[tuple[str, str], ...]) -> bool:
    """LAB ONLY: does a simulated fault of the server at ``request.local`` drop this query?"""
    for address, fault in faults:
        if address != request.local:
            continue
        if fault == "silent":
            return True
        if fault == "udp-only" and request.transport is Transport.TCP:
            return True
        if fault == "drop-edns":
            try:
                msg = dns.message.from_wire(request.wire)
            except dns.exception.DNSException:
                return False
            if msg.edns >= 0:
                return True
    return False


_COOKIE_REPLY_LEN = COOKIE_CLIENT_LEN + COOKIE_SERVER_LEN  # what every cookie reply carries


class _Answered(NamedTuple):
    reply: Reply
    cacheable: bool
    token: Token | None  # the RRL response class; None: never limited (NOTIFY, XFR, TSIG)
    cookie: cookies.Checked | None  # the request's cookie, when cookies are on


def handle(request: Request, snapshot: Snapshot) -> Reply:
    """Answer one DNS message received over UDP or TCP."""
    if snapshot.options.lab_faults and lab_fault(request, snapshot.options.lab_faults):
        return _DROP  # lab only (authd lab): a simulated server fault
    data = request.wire
    udp = request.transport is Transport.UDP
    front = snapshot.front
    limiter = snapshot.limiter if udp else None  # RRL: UDP only, TCP is never limited
    if front is not None:
        # The exact query seen before (ID aside): its answer, ID patched.
        hit = front.get(front_key(data, udp))
        if hit is not None:
            if limiter is not None:
                out = data[:2] + hit[0]
                limited = _rate_limited(request, snapshot, limiter, out, hit[1], None)
                return _tallied(limited, snapshot.options, out, hit[2])
            if hit[2] is None:
                return Reply((data[:2] + hit[0],))
            # Positional: a keyword call costs this, the hottest path, ~1,000
            # more instructions (tests/test_metrics.py pins tally's position).
            return Tallied(
                (data[:2] + hit[0],), None, None, None, None, None, None, None, None, hit[2]
            )
    key = wire.question_key(data)
    options = snapshot.options
    if key is not None:
        # A plain unsigned query: its view depends on the addresses alone.
        if front is not None or snapshot.open_view is not None:
            view: View | None = snapshot.views[0]
        else:
            view = snapshot.select_view(request.client, request.local)
        if view is not None and not view.restricted:
            # With cookies on, a query with a COOKIE option gets one back (last in
            # the OPT record): cached apart, the cookie patched on each hit.
            with_cookie = key.cookie is not None and snapshot.cookies is not None
            limit = _limit(request.transport, key.payload, options.udp_payload_max)
            cache_key = (
                view.index,
                key.qname,
                key.qtype,
                key.qclass,
                key.flags,
                limit,
                key.payload is not None,  # an OPT only answers an OPT (RFC 6891 s7)
                key.do,
                key.nsid,
                udp,
                with_cookie,
            )
            cache = snapshot.cache
            cached = cache.get(cache_key)
            full_key = cache_key
            full = None
            top = limit
            if cached is None:
                top = _limit(request.transport, MAX_MESSAGE, options.udp_payload_max)
            if top > limit:
                # The answer at the largest size, when it fits *limit*, is the
                # answer at every size between (truncation drops whole RRsets,
                # greedily: authd.render): one entry and one assembly for every
                # payload size it fits, not one per distinct size asked.
                full_key = (*cache_key[:5], top, *cache_key[6:])
                full = cache.get(full_key)
                if full is not None and len(full[0]) <= limit:
                    cached = full
            if cached is not None:
                out = wire.patch_response(cached[0], data, len(key.qname))
                checked = None
                if with_cookie:
                    assert snapshot.cookies is not None and key.cookie is not None
                    checked = cookies.examine(
                        snapshot.cookies, key.cookie, request.client, int(request.now)
                    )
                    out = out[:-_COOKIE_REPLY_LEN] + checked.reply
                else:
                    _remember(snapshot, front, front_key(data, udp), out, cached[1], cached[2])
                if limiter is not None and not (checked is not None and checked.valid):
                    reply = _rate_limited(request, snapshot, limiter, out, cached[1], checked)
                    reply = _tallied(reply, options, out, cached[2])
                    if not options.query_log or not reply.messages:
                        return reply
                    return dataclasses.replace(
                        reply, event=_event(request, reply.messages[0], True)
                    )
                event = _event(request, out, True) if options.query_log else None
                if cached[2] is None:
                    return Reply((out,), event)
                return Tallied((out,), event, tally=cached[2])
            compiled = None
            if not with_cookie:
                if full_key is not cache_key and full is None:
                    at_top = _compiled(data, key, view, snapshot, top)
                    if at_top is not None and len(at_top[0]) <= limit:
                        compiled, cache_key = at_top, full_key
                    elif at_top is not None:
                        if options.answer_cache_entries:
                            # Kept for the larger sizes; this one is assembled to fit.
                            told = _compiled_reply(at_top[0], key, view, options).tally
                            counted = tally.as_cached(told) if told is not None else None
                            entry = (at_top[0], at_top[1], counted)
                            cache.put(full_key, entry, options.answer_cache_entries)
                        compiled = _compiled(data, key, view, snapshot, limit)
                else:
                    compiled = _compiled(data, key, view, snapshot, limit)
            if compiled is not None:
                answered = _Answered(
                    _compiled_reply(compiled[0], key, view, options), True, compiled[1], None
                )
            else:
                answered = _answer(request, snapshot)
            reply = answered.reply
            if (
                answered.cacheable
                and options.answer_cache_entries
                and len(reply.messages) == 1
                and answered.token is not None
            ):
                # Bounded: a full cache gives up its least recently asked entry (CLOCK).
                counted = tally.as_cached(reply.tally) if reply.tally is not None else None
                cache.put(
                    cache_key,
                    (reply.messages[0], answered.token, counted),
                    options.answer_cache_entries,
                )
                if not with_cookie:
                    first = reply.messages[0]
                    _remember(snapshot, front, front_key(data, udp), first, answered.token, counted)
            return _logged(
                request, _limited(request, snapshot, limiter, answered), options.query_log
            )
    answered = _answer(request, snapshot)
    return _logged(request, _limited(request, snapshot, limiter, answered), options.query_log)


def _limited(
    request: Request, snapshot: Snapshot, limiter: ratelimit.Limiter | None, answered: _Answered
) -> Reply:
    """RRL's verdict on a fresh answer, tallied for the metrics."""
    limited = _limit_answered(request, snapshot, limiter, answered)
    if limited is answered.reply:
        return _tallied(limited, snapshot.options)
    first = answered.reply.messages[0] if answered.reply.messages else None
    return _tallied(limited, snapshot.options, first, answered.reply.tally)


def _limit_answered(
    request: Request, snapshot: Snapshot, limiter: ratelimit.Limiter | None, answered: _Answered
) -> Reply:
    reply = answered.reply
    if (
        limiter is None
        or answered.token is None
        or len(reply.messages) != 1
        or (answered.cookie is not None and answered.cookie.valid)
    ):
        return reply
    return _rate_limited(
        request, snapshot, limiter, reply.messages[0], answered.token, answered.cookie
    )


def _rate_limited(
    request: Request,
    snapshot: Snapshot,
    limiter: ratelimit.Limiter,
    out: bytes,
    token: Token,
    checked: cookies.Checked | None,
) -> Reply:
    """RRL: *out* as it is, nothing, or its slip (a valid cookie was checked before)."""
    client = request.client
    exempt = limiter.settings.exempt
    if exempt is not None and exempt.allows(client):
        return Reply((out,))
    verdict, started = limiter.check(client, token, request.now)
    if verdict is Verdict.SEND:
        return Reply((out,))
    if verdict is Verdict.DROP:
        return Reply((), rate_limited=started)
    if token[0] == ratelimit.Kind.ERROR:
        # TC on REFUSED or SERVFAIL asks nothing of the client: the error itself
        # leaks at the slip rate, as BIND does.
        return Reply((out,), rate_limited=started)
    return Reply(_slip(request, snapshot, out, checked), rate_limited=started)


def _slip(
    request: Request, snapshot: Snapshot, out: bytes, checked: cookies.Checked | None
) -> tuple[bytes, ...]:
    """The short reply a limited response slips as: TC, or BADCOOKIE to a cookie client.

    A client that sent a cookie gets BADCOOKIE with a fresh server cookie
    (RFC 7873 section 5.2.3 lets a server insist on one): echoing it, the
    client is no longer limited.  Others get TC and may retry over TCP.
    """
    key = wire.question_key(request.wire)
    if key is None:
        return ()  # a query of an unusual shape (ECS, several options): just drop it
    question_end = HEADER_LEN + len(key.qname) + 4
    opt = None
    rcode = out[3] & 0xF
    ext_rcode = 0
    if key.payload is not None:
        options = b""
        if checked is not None:
            options = wire.cookie_option(checked.reply)
            rcode, ext_rcode = dns.rcode.BADCOOKIE & 0xF, dns.rcode.BADCOOKIE >> 4
        opt = wire.opt_record(snapshot.options.udp_payload_max, key.do, ext_rcode, options)
    return (wire.slipped(request.wire, question_end, rcode, opt, tc=checked is None),)


def _compiled(
    data: bytes, key: wire.QuestionKey, view: View, snapshot: Snapshot, limit: int
) -> tuple[bytes, Token] | None:
    """The answer from the view's compiled zones (authd.assemble) and its RRL
    response class, or None: the engine answers."""
    entry = snapshot.wire_tables.get(view.index)
    if entry is None or entry[0] is not view.zones:
        table = assemble.zone_table(view.zones)
        entry = snapshot.wire_tables[view.index] = (view.zones, table, assemble.quick_table(table))
    options = snapshot.options
    nsid = options.nsid.encode() if key.nsid and options.nsid is not None else None
    table, quicks = entry[1], entry[2]
    minimal = options.minimal_responses
    udp_max = options.udp_payload_max
    return assemble.quick(data, key, table, quicks, limit, udp_max, minimal) or assemble.respond(
        data, key, table, limit, udp_max, nsid, minimal
    )


def _compiled_reply(out: bytes, key: wire.QuestionKey, view: View, options: Options) -> Reply:
    """A compiled answer as a Reply, with its metrics labels when metrics are on."""
    if options.metrics is None:
        return Reply((out,))
    qname = dns.name.from_wire(key.qname, 0)[0]
    found = find_zone(view.zones, qname, key.qtype)
    zone = found[0].to_text() if found is not None else tally.NO_NAME
    return Tallied((out,), tally=tally.key_of(view.name, zone, key.qtype, out, False))


def front_key(data: bytes, udp: bool) -> bytes | tuple[bytes, bool]:
    """The front cache's key for query *data*: its bytes after the ID, over UDP
    as they are (the hottest lookup: no tuple to build or hash), over TCP in a
    tuple (whose answers differ: no truncation), so the two never meet."""
    return data[2:] if udp else (data[2:], False)


def _remember(
    snapshot: Snapshot,
    front: AnswerCache[CacheEntry] | None,
    key: bytes | tuple[bytes, bool],
    response: bytes,
    token: Token,
    counted: str | None,
) -> None:
    if front is not None:
        front.put(key, (response[2:], token, counted), snapshot.options.answer_cache_entries)


def _tallied(
    reply: Reply, options: Options, out: bytes | None = None, known: str | None = None
) -> Reply:
    """With metrics on, every reply sent has a tally: *known* when RRL let *out*
    through as it was; those not answered from a zone (FORMERR, NOTIMP, NOTIFY,
    transfers, RRL slips...) count by their rcode alone."""
    if options.metrics is None or reply.tally is not None or not reply.messages:
        return reply
    if known is not None and reply.messages[0] is out:
        return with_tally(reply, known)
    counted = tally.key_of(tally.NO_NAME, tally.NO_NAME, None, reply.messages[0], False)
    return with_tally(reply, counted)


def _logged(request: Request, reply: Reply, query_log: bool) -> Reply:
    if not query_log or not reply.messages:
        return reply
    return dataclasses.replace(reply, event=_event(request, reply.messages[0], False))


def _event(request: Request, response: bytes, cached: bool) -> QueryEvent:
    try:
        msg = dns.message.from_wire(response, question_only=True)
        q = msg.question[0]
        qname, qtype = q.name.to_text(), dns.rdatatype.to_text(q.rdtype)
        rcode = dns.rcode.to_text(msg.rcode())
    except (dns.exception.DNSException, IndexError):
        qname, qtype, rcode = "?", "?", dns.rcode.to_text(dns.rcode.Rcode(response[3] & 0xF))
    qid = int.from_bytes(response[:2], "big")
    return QueryEvent(
        request.client,
        qname,
        qtype,
        rcode,
        cached,
        len(response),
        request.now,
        request.transport.value,
        qid,
        request.port,
    )


@dataclass(slots=True)
class _Context:
    """What the steps of one slow-path answer share."""

    request: Request
    snapshot: Snapshot
    msg: dns.message.Message
    edns: EdnsReply | None
    signer: tsig.Verified | None
    now: int

    @property
    def keyname(self) -> dns.name.Name | None:
        return self.signer.key.name if self.signer is not None else None

    def sign(self, out: bytes) -> bytes:
        return tsig.sign(out, self.signer) if self.signer is not None else out

    @property
    def limit(self) -> int:
        payload = self.msg.payload if self.msg.edns >= 0 else None
        return _limit(self.request.transport, payload, self.snapshot.options.udp_payload_max)

    @property
    def tsig_reserve(self) -> int:
        """Room kept at the end of a response for the TSIG record we append."""
        if self.signer is None:
            return 0
        return tsig.reserve_size(self.signer.key.name, self.signer.key.algorithm)

    def simple(
        self, rcode: dns.rcode.Rcode, aa: bool = False, echo: dns.message.Message | None = None
    ) -> Reply:
        """A response with no data; *echo* is what it copies (default: the request)."""
        limit = max(self.limit - self.tsig_reserve, NO_EDNS_UDP_LIMIT)
        out = _simple(self.msg if echo is None else echo, rcode, self.edns, aa, limit)
        return Reply((self.sign(out),))

    def unknown_opcode(self) -> Reply:
        """NOTIMP echoing only the ID and the opcode, as BIND does.

        The sections and flags of an opcode we do not implement mean nothing to
        us, so none is copied: no question, RD and CD clear (RFC 1035 defines the
        copy for QUERY only; genreport's opcodeflg test expects them clear).
        """
        bare = dns.message.Message(self.msg.id)
        bare.set_opcode(self.msg.opcode())
        return self.simple(dns.rcode.NOTIMP, echo=bare)


def _answer(request: Request, snapshot: Snapshot) -> _Answered:
    """The full path: parse, verify, check, answer; whether it may be cached; its class."""
    data = request.wire
    if len(data) < HEADER_LEN or data[2] & 0x80:
        return _Answered(_DROP, False, None, None)  # no header, or a response: never answered
    early = wire.junk_reply(data)
    if early is not None:
        return _Answered(Reply((early,)), False, ERROR_TOKEN, None)
    return _parsed(request, snapshot)


def _parsed(request: Request, snapshot: Snapshot) -> _Answered:
    data = request.wire
    try:
        # keyring=False: parse a TSIG without checking it; tsig.verify does that.
        msg = dns.message.from_wire(data, keyring=False)
    except dns.message.ShortHeader:
        return _Answered(_DROP, False, None, None)
    except Exception:
        # Anything the parser refuses (bad pointers, trailing junk, two OPTs,
        # bad rdata...) gets FORMERR from the header alone.
        out = wire.header_only(data, dns.rcode.FORMERR)
        return _Answered(Reply((out,)) if out is not None else _DROP, False, ERROR_TOKEN, None)
    options = snapshot.options
    now = int(request.now)
    edns: EdnsReply | None = None
    if msg.edns >= 0:
        nsid = None
        if options.nsid is not None and any(
            o.otype == dns.edns.OptionType.NSID for o in msg.options
        ):
            nsid = options.nsid.encode()
        edns = EdnsReply(options.udp_payload_max, bool(msg.ednsflags & dns.flags.DO), nsid)
    checked: cookies.Checked | None = None
    if edns is not None and snapshot.cookies is not None:
        for o in msg.options:
            if isinstance(o, dns.edns.CookieOption):  # its lengths checked by the parser
                checked = cookies.examine(
                    snapshot.cookies, o.client + o.server, request.client, now
                )
                edns = dataclasses.replace(edns, cookie=checked.reply)
                break
    signer: tsig.Verified | None = None
    if msg.had_tsig:
        verified = tsig.verify(data, msg, snapshot.keyring, now, options.tsig_fudge)
        if isinstance(verified, tsig.Refused):
            payload = msg.payload if msg.edns >= 0 else None
            limit = _limit(request.transport, payload, options.udp_payload_max)
            rejected = TsigRejected(
                request.client, request.port, verified.keyname, verified.error.name
            )
            out = _tsig_refusal(msg, verified, edns, limit, now)
            return _Answered(Reply((out,), tsig_rejected=rejected), False, ERROR_TOKEN, checked)
        msg, signer = verified
    ctx = _Context(request, snapshot, msg, edns, signer, now)

    def error(reply: Reply) -> _Answered:
        return _Answered(reply, False, ERROR_TOKEN if signer is None else None, checked)

    if edns is not None and msg.edns > 0:
        # RFC 6891 section 6.1.3: answer BADVERS with the version we do speak.
        return error(ctx.simple(dns.rcode.BADVERS))
    opcode = msg.opcode()
    if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
        return error(ctx.unknown_opcode())
    if len(msg.question) != 1:
        return error(ctx.simple(dns.rcode.FORMERR))
    q = msg.question[0]
    if opcode == dns.opcode.QUERY and (msg.answer or msg.authority and q.rdtype != RdataType.IXFR):
        return error(ctx.simple(dns.rcode.FORMERR))
    try:
        subnet = ecs.find(msg.options, request.client, ctx.keyname, snapshot.client_subnet)
    except ecs.Malformed:
        return error(ctx.simple(dns.rcode.FORMERR))  # RFC 7871 section 7.2.1
    if subnet is not None and (opcode != dns.opcode.QUERY or q.rdtype in _QTYPE_TRANSFER):
        subnet = dataclasses.replace(subnet, trusted=False)  # ECS chooses answers, not zones
    view = _select_view(ctx, subnet)
    edns = ctx.edns
    if opcode == dns.opcode.NOTIFY:
        return _Answered(_notify(ctx, view), False, None, checked)
    if q.rdtype in _QTYPE_FORMERR:
        return error(ctx.simple(dns.rcode.FORMERR))
    if q.rdtype in _QTYPE_NOTIMP:
        return error(ctx.simple(dns.rcode.NOTIMP))
    if q.rdtype in _QTYPE_TRANSFER and q.rdclass == dns.rdataclass.IN:
        return _Answered(_transfer(ctx, view), False, None, checked)
    acl_refused: QueryRefused | None = None
    if q.rdclass == dns.rdataclass.CH:
        result = _chaos(q.name, q.rdtype, snapshot)
    elif view is None:
        # No view for this client (BIND: REFUSED), or a class we do not serve.
        result = Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
        acl_refused = QueryRefused(
            request.client, request.port, q.name, None, ctx.keyname, "no view matches the client"
        )
    elif q.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
        result = Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
    elif (barred := _query_barred(view, q.name, q.rdtype, request.client, ctx.keyname)) is not None:
        result = Answer(State.REFUSED, dns.rcode.REFUSED, aa=False)
        acl_refused = QueryRefused(
            request.client, request.port, q.name, barred, ctx.keyname, "not allowed by allow_query"
        )
    else:
        result = answer_query(
            view.zones,
            q.name,
            q.rdtype,
            minimal_responses=options.minimal_responses,
            minimal_any=options.minimal_any and request.transport is Transport.UDP,
            dnssec=edns is not None and edns.do,
        )
    out = render(
        msg.id, msg.flags, q.name, q.rdtype, q.rdclass, result, edns, ctx.limit, ctx.tsig_reserve
    )
    token: Token | None = None
    if signer is None:
        qname = (q.name.to_wire() or b"").lower()
        if q.rdclass == dns.rdataclass.CH:
            token = ratelimit.by_rcode(result.rcode, qname, q.rdtype)
        else:
            token = ratelimit.classify(result, qname, q.rdtype)
    counted = None
    if options.metrics is not None:
        found = find_zone(view.zones, q.name, q.rdtype) if view is not None else None
        counted = tally.key_of(
            view.name if view is not None else tally.NO_NAME,
            found[0].to_text() if found is not None else tally.NO_NAME,
            q.rdtype,
            out,
            False,
        )
    signed = (ctx.sign(out),)
    reply = Reply(signed) if counted is None else Tallied(signed, tally=counted)
    if acl_refused is not None:
        reply = dataclasses.replace(reply, query_refused=acl_refused)
    # An ECS answer echoes the client's prefix, so it is never shared through the cache.
    return _Answered(reply, signer is None and subnet is None, token, checked)


def _select_view(ctx: _Context, subnet: ecs.ClientSubnet | None) -> View | None:
    """The client's view; with ECS, also set the option the response carries."""
    request, snapshot = ctx.request, ctx.snapshot
    if subnet is None:
        return snapshot.select_view(request.client, request.local, ctx.keyname)
    client = subnet.address if subnet.steers else request.client
    chosen = views.select(snapshot.views, client, request.local, ctx.keyname)
    if ctx.edns is not None:  # always so: ECS travels in the OPT record
        ctx.edns = dataclasses.replace(ctx.edns, ecs=subnet.reply(chosen.scope))
    return chosen.view


def _query_barred(
    view: View, qname: dns.name.Name, qtype: int, client: str, key: dns.name.Name | None
) -> dns.name.Name | None:
    """The zone whose allow_query refuses this query, or None: allowed."""
    if not view.restricted:
        return None
    found = find_zone(view.zones, qname, qtype)
    if found is None:
        return None
    zc = view.configs.get(found[0])
    if zc is None or zc.allow_query is None or zc.allow_query.allows(client, key):
        return None
    return found[0]


def _notify(ctx: _Context, view: View | None) -> Reply:
    """A NOTIFY (RFC 1996 section 3.7): acknowledge it and, if accepted, say so."""
    q = ctx.msg.question[0]
    zc = view.configs.get(q.name) if view is not None else None

    def refused(rcode: dns.rcode.Rcode, why: str) -> Reply:
        r = ctx.request
        event = NotifyRefused(r.client, r.port, q.name, ctx.keyname, why)
        return dataclasses.replace(ctx.simple(rcode), notify_refused=event)

    if view is None or q.name not in view.zones:
        return refused(dns.rcode.NOTAUTH, "not a zone served here")
    if q.rdtype != RdataType.SOA:
        return refused(dns.rcode.NOTAUTH, f"question type {dns.rdatatype.to_text(q.rdtype)}")
    if zc is None or zc.type is not ZoneType.SECONDARY:
        return refused(dns.rcode.REFUSED, "not a secondary zone here")
    if zc.allow_notify is None or not zc.allow_notify.allows(ctx.request.client, ctx.keyname):
        return refused(dns.rcode.REFUSED, "not allowed by allow_notify")
    serial = None
    for rrset in ctx.msg.answer:
        if rrset.rdtype == RdataType.SOA and rrset.name == q.name and len(rrset):
            serial = int(rrset[0].serial)
    reply = ctx.simple(dns.rcode.NOERROR, aa=True)
    return dataclasses.replace(
        reply, notify=NotifyReceived(view.name, zc.name, serial, ctx.request.client)
    )


def _transfer(ctx: _Context, view: View | None) -> Reply:
    """AXFR (RFC 5936) and IXFR (RFC 1995) out, gated by allow_transfer and TSIG."""
    request, msg = ctx.request, ctx.msg
    q = msg.question[0]
    zc = view.configs.get(q.name) if view is not None else None

    def refused(rcode: dns.rcode.Rcode, kind: str) -> Reply:
        event = TransferEvent(
            view.name if view is not None else "-",
            q.name,
            request.client,
            ctx.keyname,
            kind,
            None,
            request.port,
        )
        return dataclasses.replace(ctx.simple(rcode), transfer=event)

    if view is None or q.name not in view.zones:
        return refused(dns.rcode.NOTAUTH, "not-authoritative")
    if q.rdtype == RdataType.AXFR and request.transport is Transport.UDP:
        return refused(dns.rcode.NOTIMP, "axfr-over-udp")  # as NSD: AXFR needs TCP
    acl = zc.allow_transfer if zc is not None else None
    if acl is None or not acl.allows(request.client, ctx.keyname):
        return refused(dns.rcode.REFUSED, "refused")
    version = view.zones.get(q.name)
    if version is None:
        return refused(dns.rcode.SERVFAIL, "zone-not-loaded")
    signer = None
    if ctx.signer is not None:
        signer = xfr.TsigSigner(ctx.signer.key, ctx.now)
    payload = ctx.snapshot.options.udp_payload_max if ctx.edns is not None else None
    if q.rdtype == RdataType.AXFR:
        # From the compiled zone's prepared bytes (authd.xfr_wire), signed or not.
        messages = xfr.iter_axfr_messages(msg, version, tsig=signer, edns_payload=payload)
        kind = "axfr"
    else:
        if xfr.client_serial(msg) is None:
            return refused(dns.rcode.FORMERR, "ixfr-without-soa")
        journal = view.journals.get(q.name) or Journal(())
        udp = request.transport is Transport.UDP
        ixfr_kind, messages = xfr.iter_ixfr_messages(
            msg, version, journal, max_size=ctx.limit, udp=udp, tsig=signer, edns_payload=payload
        )
        kind = f"ixfr-{ixfr_kind.value}"
    first = next(messages, None)
    event = TransferEvent(
        view.name, q.name, request.client, ctx.keyname, kind, version.serial, request.port
    )
    return Reply((first,) if first is not None else (), stream=messages, transfer=event)


def _simple(
    msg: dns.message.Message,
    rcode: dns.rcode.Rcode,
    edns: EdnsReply | None = None,
    aa: bool = False,
    limit: int = NO_EDNS_UDP_LIMIT,
) -> bytes:
    """A response with no data, echoing the question when there is exactly one.

    It fits *limit* (the UDP size the client can take): an NSID that would not
    fit is left out, and so, as a last resort, is the question.
    """
    # dnspython says TooBig, or ValueError when the OPT alone exceeds the limit.
    try:
        return _simple_wire(msg, rcode, edns, aa, limit)
    except (dns.exception.TooBig, ValueError):
        pass
    if edns is not None and edns.nsid is not None:
        edns = dataclasses.replace(edns, nsid=None)
        try:
            return _simple_wire(msg, rcode, edns, aa, limit)
        except (dns.exception.TooBig, ValueError):
            pass
    bare = dns.message.Message(msg.id)
    bare.flags = msg.flags
    return _simple_wire(bare, rcode, edns, aa, limit)


def _tsig_refusal(
    msg: dns.message.Message, refused: tsig.Refused, edns: EdnsReply | None, limit: int, now: int
) -> bytes:
    """NOTAUTH with the TSIG error in a TSIG record (RFC 8945 5.2), within *limit*.

    The TSIG owner is written out (RFC 8945 4.2 forbids compressing it), so a
    key name the client compressed can grow the reply: the question goes first
    (as NSD does), then the TSIG record itself; the reply never exceeds *limit*.
    """
    out = tsig.error_response(_simple(msg, dns.rcode.NOTAUTH, edns, limit=limit), refused, now)
    if len(out) <= limit:
        return out
    bare = dns.message.Message(msg.id)
    bare.flags = msg.flags  # the opcode too
    header_only = _simple(bare, dns.rcode.NOTAUTH, edns, limit=limit)
    out = tsig.error_response(header_only, refused, now)
    return out if len(out) <= limit else header_only


def _simple_wire(
    msg: dns.message.Message,
    rcode: dns.rcode.Rcode,
    edns: EdnsReply | None,
    aa: bool,
    limit: int,
) -> bytes:
    flags = dns.flags.QR | (msg.flags & (dns.flags.RD | dns.flags.CD)) | (rcode & 0xF)
    flags |= dns.opcode.to_flags(msg.opcode())
    if aa:
        flags |= dns.flags.AA
    response = dns.message.Message(msg.id)
    response.flags = flags
    if len(msg.question) == 1:
        response.question = list(msg.question)
    if edns is not None:
        response.use_edns(
            0,
            dns.flags.DO if edns.do else 0,
            edns.payload,
            options=edns_options(edns) or None,
        )
        response.set_rcode(rcode)
    return response.to_wire(max_size=limit)


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
