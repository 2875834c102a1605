"""Outgoing zone transfers as message streams: AXFR (RFC 5936) and IXFR (RFC 1995).

Owns: turning a zone version (and, for IXFR, its journal) into the wire
messages of a transfer response, packed into as few messages as fit, and
signed with TSIG (RFC 8945) when the request was.  Pure: the caller passes the
time for the signatures; deciding whether a client may transfer at all (ACLs,
verifying the request's TSIG) happens before these functions are called.

Invariants:

* A transfer starts and ends with the zone's current SOA (RFC 5936 section
  2.2; RFC 1995 section 4) and holds every RRset of the zone in between,
  empty non-terminals having none.
* Every message is a well-formed DNS message no larger than ``max_size``;
  RRsets are kept whole unless one alone cannot fit a message, and records
  are never cut.
* The first message carries the question; later ones leave it out (RFC 5936
  section 2.2.1).  Every message echoes the ID, has QR and AA set, copies RD,
  and has TC, AD, CD and RA clear.
* A signed request gets every message signed: the first one over the
  request's MAC, each later one over the previous MAC (RFC 8945 section
  5.3.1).  A signed request without a key to answer with is a caller bug and
  raises.
* Over UDP an IXFR answer is one message or, when it does not fit, the
  current SOA alone, telling the client to retry over TCP (RFC 1995 section 2).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.renderer
import dns.rrset
import dns.serial
import dns.tsig

from authd.changeset import RR, Changeset, condense
from authd.compiled import CompiledZone, RRsetWire, render_rrset, wire_name
from authd.journal import Journal
from authd.limits import MAX_MESSAGE, NO_EDNS_UDP_LIMIT, OPT_FIXED_SIZE
from authd.tsig import append_tsig
from authd.xfr_wire import iter_axfr_wire
from authd.zone import ZoneVersion

RdataType = dns.rdatatype.RdataType

#: The largest DNS message over TCP (RFC 1035 section 4.2.2: a 16-bit length).
#: The smallest message size a transfer is packed into; below it a single
#: ordinary RRset might not fit.


@dataclass(frozen=True, slots=True)
class TsigSigner:
    """How to sign a transfer's messages: the key that verified the request, and the time."""

    key: dns.tsig.Key
    now: int  # seconds since the epoch, for the TSIG Time Signed field


class IxfrKind(enum.Enum):
    """What an IXFR request gets, for logging and metrics."""

    UP_TO_DATE = "up-to-date"  # the client is at (or past) our serial: one SOA
    INCREMENTAL = "incremental"  # changesets from the journal
    FULL = "full"  # the journal cannot help: an AXFR-style answer (RFC 1995 section 4)
    RETRY_TCP = "retry-tcp"  # over UDP and too large: one SOA (RFC 1995 section 2)


def client_serial(query: dns.message.Message) -> int | None:
    """The serial an IXFR query says the client has (its authority SOA), or None."""
    if len(query.question) != 1:
        return None
    qname = query.question[0].name
    for rrset in query.authority:
        if rrset.rdtype == RdataType.SOA and rrset.name == qname and len(rrset):
            return int(rrset[0].serial)
    return None


def plan_ixfr(
    serial: int, version: ZoneVersion, journal: Journal
) -> tuple[IxfrKind, list[Changeset]]:
    """What to send a client at *serial*: the kind of answer and the changesets it needs."""
    current = version.serial
    if serial == current or dns.serial.Serial(serial) > current:
        # RFC 1995 section 2: a client that is current (or claims to be ahead)
        # gets only our SOA.  A serial exactly 2**31 away compares neither way
        # (RFC 1982 section 3.2) and falls through to a full transfer.
        return IxfrKind.UP_TO_DATE, []
    if journal.serial_to == current:
        changes = journal.changes_since(serial)
        if changes:
            return IxfrKind.INCREMENTAL, changes
    return IxfrKind.FULL, []


# -- message packing ----------------------------------------------------------


def _soa_rrset(rr: RR) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(rr.name, dns.rdataclass.IN, RdataType.SOA)
    rrset.add(rr.rdata, rr.ttl)
    return rrset


def _grouped(rrs: Iterable[RR]) -> Iterator[dns.rrset.RRset]:
    """Consecutive records of one owner, type and TTL as one RRset (fewer owner names to pack)."""
    rrset: dns.rrset.RRset | None = None
    for name, ttl, rdata in rrs:
        if (
            rrset is None
            or rrset.ttl != ttl
            or rrset.rdtype != rdata.rdtype
            or rrset.covers != rdata.covers()  # RRSIGs of two types are two RRsets
            or not (rrset.name is name or rrset.name == name)
        ):
            if rrset is not None:
                yield rrset
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdata.rdtype, rdata.covers())
            rrset.update_ttl(ttl)
        rrset.add(rdata)
    if rrset is not None:
        yield rrset


def _zone_rrsets(version: ZoneVersion) -> Iterator[dns.rrset.RRset]:
    """Every RRset of *version* except the apex SOA, apex first; ENTs have none."""
    # Only the apex has as many labels as the origin (all names are below it).
    apex_labels = len(version.origin.labels)
    for name, node in version.nodes.items():
        apex = len(name.labels) == apex_labels
        for rdtype, rrset in node.items():
            if not (apex and rdtype == RdataType.SOA):
                yield rrset
    # NSEC3 owners (not names of the zone) and their signatures.
    for node in version.hashed.values():
        yield from node.values()


def _ixfr_rrsets(
    version: ZoneVersion, changesets: Sequence[Changeset]
) -> Iterator[dns.rrset.RRset]:
    """RFC 1995 section 4: current SOA, then per changeset old SOA, removed, new SOA, added."""
    yield version.soa
    for cs in changesets:
        yield _soa_rrset(cs.old_soa)
        yield from _grouped(cs.removed)
        yield _soa_rrset(cs.new_soa)
        yield from _grouped(cs.added)
    yield version.soa


def _axfr_rrsets(version: ZoneVersion) -> Iterator[dns.rrset.RRset]:
    yield version.soa
    yield from _zone_rrsets(version)
    yield version.soa


class _Renderer(Protocol):
    """The part of ``dns.renderer.Renderer`` used here (dnspython leaves it untyped)."""

    counts: list[int]
    compress: dict[dns.name.Name, int]

    def reserve(self, size: int) -> None: ...
    def release_reserved(self) -> None: ...
    def add_question(self, qname: dns.name.Name, rdtype: int, rdclass: int) -> None: ...
    def add_rrset(self, section: int, rrset: dns.rrset.RRset, *, want_shuffle: bool) -> None: ...
    def add_edns(self, edns: int, ednsflags: int, payload: int) -> None: ...
    def write_header(self) -> None: ...
    def get_wire(self) -> bytes: ...


def _renderer(id: int, flags: int, max_size: int) -> _Renderer:
    return cast(_Renderer, dns.renderer.Renderer(id, flags, max_size))


def _sign(
    wire: bytes,
    signer: TsigSigner,
    rdata: dns.rdtypes.ANY.TSIG.TSIG,
    request_mac: bytes,
    ctx: object | None,
) -> tuple[dns.rdtypes.ANY.TSIG.TSIG, object]:
    """RFC 8945 section 5.3.1: the first message over the request MAC, later ones over the last."""
    tsig, new_ctx = dns.tsig.sign(wire, signer.key, rdata, signer.now, request_mac, ctx, True)
    return cast(dns.rdtypes.ANY.TSIG.TSIG, tsig), cast(object, new_ctx)


def _wire(value: dns.name.Name | dns.rdata.Rdata) -> bytes:
    """Uncompressed wire form (``to_wire`` without a file always returns bytes)."""
    wire = value.to_wire()
    assert wire is not None
    return wire


class _TooLarge(Exception):
    """The answer needs more messages than allowed (one, over UDP)."""


def _tsig_placeholder(signer: TsigSigner, query: dns.message.Message) -> dns.rdtypes.ANY.TSIG.TSIG:
    key = signer.key
    fudge = 300
    if query.tsig:
        fudge = int(query.tsig[0].fudge)
    mac_size = dns.tsig.mac_sizes.get(key.algorithm) or 64
    return dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        RdataType.TSIG,
        key.algorithm,
        signer.now,
        fudge,
        b"\x00" * mac_size,
        query.id,
        0,
        b"",
    )


class _Sealer:
    """Signs the messages of one transfer in turn (RFC 8945 section 5.3.1)."""

    def __init__(self, signer: TsigSigner, query: dns.message.Message) -> None:
        self.signer = signer
        self.request_mac = query.mac or b""
        self.rdata = _tsig_placeholder(signer, query)
        # The bytes each message keeps for its TSIG record: owner, type, class,
        # TTL, RDLENGTH and the RDATA (a placeholder MAC of the right size).
        self.size = len(_wire(signer.key.name)) + 10 + len(_wire(self.rdata))
        self.ctx: object | None = None

    def __call__(self, wire: bytes) -> bytes:
        tsig, self.ctx = _sign(wire, self.signer, self.rdata, self.request_mac, self.ctx)
        return append_tsig(wire, self.signer.key.name, tsig)


def _check_signer(query: dns.message.Message, signer: TsigSigner | None) -> None:
    if signer is not None and not query.had_tsig:
        raise ValueError("a TSIG signer for an unsigned request")
    if signer is None and query.had_tsig:
        raise ValueError("the request is signed: its response must be signed too")


class _Packer:
    """Packs RRsets into transfer messages, signing each one as it is closed."""

    def __init__(
        self,
        query: dns.message.Message,
        max_size: int,
        signer: TsigSigner | None,
        edns_payload: int | None,
        max_messages: int | None,
    ) -> None:
        _check_signer(query, signer)
        self.query = query
        self.max_size = max(NO_EDNS_UDP_LIMIT, min(max_size, MAX_MESSAGE))
        self.edns_payload = edns_payload if query.edns >= 0 else None
        self.max_messages = max_messages
        self.flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
        self.reserve = OPT_FIXED_SIZE if self.edns_payload is not None else 0
        self.sealer = _Sealer(signer, query) if signer is not None else None
        if self.sealer is not None:
            self.reserve += self.sealer.size
        self.closed = 0  # messages closed so far
        self.ready: list[bytes] = []  # closed, not yet handed out
        self.renderer = self._new_renderer()

    def _new_renderer(self) -> _Renderer:
        if self.max_messages is not None and self.closed >= self.max_messages:
            raise _TooLarge
        r = _renderer(self.query.id, self.flags, self.max_size)
        r.reserve(self.reserve)
        if not self.closed:
            q = self.query.question[0]
            r.add_question(q.name, q.rdtype, q.rdclass)
            # The question echoes the asker's letter case; names compressed
            # against it would take that case into the secondary's copy of
            # the zone, so the zone's names never point at it.
            r.compress.clear()
        return r

    def _close(self) -> None:
        r = self.renderer
        r.release_reserved()
        if self.edns_payload is not None:
            r.add_edns(0, 0, self.edns_payload)
        r.write_header()
        wire = r.get_wire()
        if self.sealer is not None:
            wire = self.sealer(wire)
        self.closed += 1
        self.ready.append(wire)

    def _next(self) -> None:
        self._close()
        self.renderer = self._new_renderer()

    def _try(self, rrset: dns.rrset.RRset) -> bool:
        try:
            # Records in zone order, not shuffled: the same version always
            # transfers as the same bytes.
            self.renderer.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
        except dns.exception.TooBig:
            return False
        return True

    def add(self, rrset: dns.rrset.RRset) -> None:
        if self._try(rrset):
            return
        if self.renderer.counts[dns.renderer.ANSWER]:
            self._next()
            if self._try(rrset):
                return
        # An RRset too large for a message of its own travels record by record.
        for rdata in rrset:
            one = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            one.add(rdata, rrset.ttl)
            if self._try(one):
                continue
            self._next()
            if not self._try(one):
                raise ValueError(
                    f"a {rrset.name} {rrset.rdtype.name} record does not fit a "
                    f"{self.max_size}-byte message"
                )

    def finish(self) -> list[bytes]:
        self._close()
        ready, self.ready = self.ready, []
        return ready


def _packed(packer: _Packer, rrsets: Iterable[dns.rrset.RRset]) -> Iterator[bytes]:
    """The messages of *packer*, each yielded as soon as it is full (and signed)."""
    for rrset in rrsets:
        packer.add(rrset)
        if packer.ready:
            yield from packer.ready
            packer.ready.clear()
    yield from packer.finish()


def _pack(
    query: dns.message.Message,
    rrsets: Iterable[dns.rrset.RRset],
    max_size: int,
    tsig: TsigSigner | None,
    edns_payload: int | None,
    max_messages: int | None = None,
) -> Iterator[bytes]:
    # The packer is built here, not in the generator, so bad arguments raise
    # at the call rather than at the first ``next``.
    return _packed(_Packer(query, max_size, tsig, edns_payload, max_messages), rrsets)


def _check_query(query: dns.message.Message, version: ZoneVersion, rdtype: RdataType) -> None:
    if len(query.question) != 1:
        raise ValueError("a transfer request has exactly one question")
    q = query.question[0]
    if q.rdtype != rdtype or q.name != version.origin:
        raise ValueError(f"the request is not {rdtype.name} {version.origin}")


def _hashed_wire(version: ZoneVersion) -> Iterator[RRsetWire]:
    """The NSEC3 owners' RRsets, rendered as they are sent: they are not names
    of the compiled zone (the assembler never answers from them)."""
    for name, node in version.hashed.items():
        owner = wire_name(name)
        for rrset in node.values():
            yield render_rrset(rrset, owner)


def _from_compiled(
    query: dns.message.Message,
    version: ZoneVersion,
    zone: CompiledZone,
    max_size: int,
    signer: TsigSigner | None,
    edns_payload: int | None,
) -> Iterator[bytes]:
    """The whole zone as ``_pack`` would send it, from the compiled form's bytes."""
    _check_signer(query, signer)
    sealer = _Sealer(signer, query) if signer is not None else None
    q = query.question[0]
    return iter_axfr_wire(
        query.id,
        bool(query.flags & dns.flags.RD),
        _wire(q.name) + struct.pack("!HH", q.rdtype, q.rdclass),
        zone,
        max_size=max_size,
        edns_payload=edns_payload if query.edns >= 0 else None,
        extra=_hashed_wire(version),
        reserve=sealer.size if sealer is not None else 0,
        seal=sealer,
    )


# -- public -----------------------------------------------------------------


def iter_axfr_messages(
    query: dns.message.Message,
    version: ZoneVersion,
    *,
    max_size: int = MAX_MESSAGE,
    tsig: TsigSigner | None = None,
    edns_payload: int | None = None,
    compiled: bool = True,
) -> Iterator[bytes]:
    """The messages of an AXFR response to *query* (RFC 5936), built as they are taken.

    Lets an adapter send a large zone a message at a time, giving the event
    loop back in between instead of rendering it all at once.
    *edns_payload*: when the request had EDNS, each message carries an OPT
    record advertising this payload size (None: no OPT).  The messages are
    joined from the version's compiled form when it has one; *compiled*
    False renders them with dnspython (the reference the tests hold it to).
    """
    _check_query(query, version, RdataType.AXFR)
    if compiled and version.wire is not None:
        return _from_compiled(query, version, version.wire, max_size, tsig, edns_payload)
    return _pack(query, _axfr_rrsets(version), max_size, tsig, edns_payload)


def axfr_messages(
    query: dns.message.Message,
    version: ZoneVersion,
    *,
    max_size: int = MAX_MESSAGE,
    tsig: TsigSigner | None = None,
    edns_payload: int | None = None,
    compiled: bool = True,
) -> list[bytes]:
    """The messages of an AXFR response to *query* (RFC 5936), in sending order."""
    return list(
        iter_axfr_messages(
            query,
            version,
            max_size=max_size,
            tsig=tsig,
            edns_payload=edns_payload,
            compiled=compiled,
        )
    )


def iter_ixfr_messages(
    query: dns.message.Message,
    version: ZoneVersion,
    journal: Journal,
    *,
    max_size: int = MAX_MESSAGE,
    udp: bool = False,
    tsig: TsigSigner | None = None,
    edns_payload: int | None = None,
    condensed: bool = True,
    compiled: bool = True,
) -> tuple[IxfrKind, Iterator[bytes]]:
    """The kind of IXFR answer *query* gets (RFC 1995) and its messages, built as taken.

    The client's serial comes from the SOA in the request's authority
    section (``client_serial``); a request without one is bad input and
    raises ``ValueError`` (the caller answers FORMERR).  With *condensed*, a
    run of changesets goes out as one net changeset.  With *udp*, the answer
    is a single message of at most *max_size* bytes, or the current SOA alone
    when it does not fit.  A full answer over TCP comes from the compiled
    form as an AXFR does (*compiled* as there).
    """
    _check_query(query, version, RdataType.IXFR)
    serial = client_serial(query)
    if serial is None:
        raise ValueError("an IXFR request without an SOA in its authority section")
    kind, changes = plan_ixfr(serial, version, journal)
    if kind is IxfrKind.UP_TO_DATE:
        return kind, _pack(query, [version.soa], max_size, tsig, edns_payload)
    if kind is IxfrKind.INCREMENTAL:
        rrsets = _ixfr_rrsets(version, [condense(changes)] if condensed else changes)
    elif not udp and compiled and version.wire is not None:
        return kind, _from_compiled(query, version, version.wire, max_size, tsig, edns_payload)
    else:
        rrsets = _axfr_rrsets(version)
    if not udp:
        return kind, _pack(query, rrsets, max_size, tsig, edns_payload)
    try:
        # Stops rendering at the first record that does not fit, so a large
        # zone asked for over UDP costs one message's work.
        only = list(_pack(query, rrsets, max_size, tsig, edns_payload, max_messages=1))
    except _TooLarge:
        return IxfrKind.RETRY_TCP, _pack(query, [version.soa], max_size, tsig, edns_payload)
    return kind, iter(only)


def ixfr_response(
    query: dns.message.Message,
    version: ZoneVersion,
    journal: Journal,
    *,
    max_size: int = MAX_MESSAGE,
    udp: bool = False,
    tsig: TsigSigner | None = None,
    edns_payload: int | None = None,
    condensed: bool = True,
) -> tuple[IxfrKind, list[bytes]]:
    """``iter_ixfr_messages`` with the messages in a list."""
    kind, messages = iter_ixfr_messages(
        query,
        version,
        journal,
        max_size=max_size,
        udp=udp,
        tsig=tsig,
        edns_payload=edns_payload,
        condensed=condensed,
    )
    return kind, list(messages)


def ixfr_messages(
    query: dns.message.Message,
    version: ZoneVersion,
    journal: Journal,
    *,
    max_size: int = MAX_MESSAGE,
    udp: bool = False,
    tsig: TsigSigner | None = None,
    edns_payload: int | None = None,
    condensed: bool = True,
) -> list[bytes]:
    """The messages of an IXFR response to *query* (RFC 1995), in sending order."""
    return ixfr_response(
        query,
        version,
        journal,
        max_size=max_size,
        udp=udp,
        tsig=tsig,
        edns_payload=edns_payload,
        condensed=condensed,
    )[1]


__all__ = [
    "IxfrKind",
    "TsigSigner",
    "axfr_messages",
    "client_serial",
    "iter_axfr_messages",
    "iter_ixfr_messages",
    "ixfr_messages",
    "ixfr_response",
    "plan_ixfr",
]
