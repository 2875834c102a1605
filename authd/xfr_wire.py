"""AXFR out from a compiled zone: prepared RRset bytes packed into messages.

Owns: ``iter_axfr_wire``, the messages of an AXFR response (RFC 5936), or of
an IXFR answered with the whole zone (RFC 1995 section 4), built from a
``CompiledZone`` by joining the RRsets rendered at load, names compressed
within each message as ``authd.assemble`` compresses them.  ``authd.xfr``
calls it (and signs the messages, through *seal*); it keeps that module's
invariants: the zone's SOA first and last, every RRset in between (empty
non-terminals have none), messages of at most *max_size* bytes holding whole
RRsets unless one alone cannot fit (then it travels record by record), the
question in the first message only, QR and AA set, RD copied, an OPT in every
message when the request had EDNS.

The names compressed against are those of the current message only (a
message must parse alone), and never the question's: it echoes the asker's
letter case, which would otherwise pass into the secondary's copy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import dns.rdatatype

from authd.assemble import _name as put_name
from authd.assemble import put_rrset, rollback
from authd.compiled import CompiledZone, RRsetWire
from authd.limits import HEADER_LEN, MAX_MESSAGE, NO_EDNS_UDP_LIMIT, OPT_FIXED_SIZE

SOA = int(dns.rdatatype.RdataType.SOA)
LOW14 = 0x3FFF  # the largest offset a compression pointer reaches


def zone_rrsets(zone: CompiledZone) -> Iterator[RRsetWire]:
    """Every RRset of *zone*, the apex's first (its SOA leading); ENTs have none."""
    for group in _groups(zone):
        yield from group


def _groups(zone: CompiledZone) -> Iterator[Iterable[RRsetWire]]:
    """``zone_rrsets`` a node at a time (one step per node, not per RRset)."""
    apex = zone.node(zone.origin)
    assert apex is not None
    yield (apex.rrsets[SOA],)
    yield [rrset for rdtype, rrset in apex.rrsets.items() if rdtype != SOA]
    origin = zone.origin
    for shard in zone.shards:
        for key, node in shard.items():
            if key != origin:
                yield node.rrsets.values()


def _single(rrset: RRsetWire) -> Iterator[RRsetWire]:
    """*rrset* as one-record RRsets, for one too large for a message of its own."""
    if rrset.tails is not None:
        for tail in rrset.tails:
            yield RRsetWire(rrset.owner, rrset.rdtype, 1, (tail,), ())
    else:
        for part in rrset.parts:
            yield RRsetWire(rrset.owner, rrset.rdtype, 1, None, (part,))


class _Messages:
    """The message being filled, and how to close one (header, OPT, *seal*)."""

    __slots__ = ("head", "counts_tail", "question", "opt", "room", "seal", "out", "names", "placed")

    def __init__(
        self,
        query_id: int,
        rd: bool,
        question: bytes,
        room: int,
        edns_payload: int | None,
        seal: Callable[[bytes], bytes] | None,
    ) -> None:
        flags = 0x8400 | (0x0100 if rd else 0)  # QR, AA; RD copied
        self.head = query_id.to_bytes(2, "big") + flags.to_bytes(2, "big")
        self.opt = b""
        if edns_payload is not None:
            # RFC 6891 6.1.2: root owner, OPT, our payload, no extended rcode or flags.
            self.opt = b"\x00\x00\x29" + edns_payload.to_bytes(2, "big") + bytes(6)
        self.counts_tail = b"\x00\x00" + (b"\x00\x01" if self.opt else b"\x00\x00")
        self.question = question
        self.room = room
        self.seal = seal
        self.out = bytearray(HEADER_LEN) + question
        self.names: dict[bytes, int] = {}

    def close(self, count: int) -> bytes:
        """The filled message (holding *count* records), signed when it must be;
        a new one is started."""
        out = self.out
        qd = b"\x00\x01" if self.question else b"\x00\x00"
        out[:HEADER_LEN] = self.head + qd + count.to_bytes(2, "big") + self.counts_tail
        out += self.opt
        wire = bytes(out)
        if self.seal is not None:
            wire = self.seal(wire)
        self.question = b""  # RFC 5936 2.2.1: the question in the first message only
        self.out = bytearray(HEADER_LEN)
        self.names = {}
        return wire

    def put(self, rrset: RRsetWire) -> bool:
        """Add *rrset* to the message if it fits."""
        out = self.out
        at = len(out)
        put_rrset(out, self.names, rrset, rrset.owner)
        if len(out) > self.room:
            rollback(out, self.names, at)
            return False
        return True

    def spill(self, rrset: RRsetWire, count: int) -> Iterator[bytes]:
        """The messages closed to place *rrset*, which does not fit the current
        one (holding *count* records); ``placed`` is then the new one's count."""
        if count:
            yield self.close(count)
            count = 0
            if self.put(rrset):
                self.placed = rrset.count
                return
        # An RRset too large for a message of its own travels record by record.
        for one in _single(rrset):
            if self.put(one):
                count += 1
                continue
            if count:
                yield self.close(count)
                count = 0
                if self.put(one):
                    count = 1
                    continue
            raise ValueError(
                f"a record of type {rrset.rdtype} does not fit a {self.room}-byte message"
            )
        self.placed = count

    placed: int


def iter_axfr_wire(
    query_id: int,
    rd: bool,
    question: bytes,
    zone: CompiledZone,
    *,
    max_size: int = MAX_MESSAGE,
    edns_payload: int | None = None,
    extra: Iterable[RRsetWire] = (),
    reserve: int = 0,
    seal: Callable[[bytes], bytes] | None = None,
) -> Iterator[bytes]:
    """The messages of a full transfer of *zone*, built as they are taken.

    *question* is the request's, as wire bytes (its name as asked); *extra*
    are RRsets sent after the zone's and before the closing SOA (the NSEC3
    owners, which are not names of the compiled zone); *reserve* bytes of
    each message are kept for *seal*, which is given each finished message and
    returns it as sent (with its TSIG appended).
    """
    size = max(NO_EDNS_UDP_LIMIT, min(max_size, MAX_MESSAGE))
    room = size - reserve - (OPT_FIXED_SIZE if edns_payload is not None else 0)
    if room <= HEADER_LEN + len(question):
        raise ValueError(f"no room for records in a {size}-byte message")
    msgs = _Messages(query_id, rd, question, room, edns_payload, seal)
    return _stream(msgs, zone, extra)


def _stream(msgs: _Messages, zone: CompiledZone, extra: Iterable[RRsetWire]) -> Iterator[bytes]:
    apex = zone.node(zone.origin)
    assert apex is not None
    soa = (apex.rrsets[SOA],)
    out, names = msgs.out, msgs.names
    get = names.get
    room = msgs.room
    count = 0
    # The owner of the last RRset written and what stands for it in this
    # message (``rep``): a pointer to it, or its compressed form when it sits
    # too far in to be pointed at; it cannot change while the message fills.
    # A node's RRsets share one owner (the compiler's), so after the first
    # they cost no lookups, and so do the records after an RRset's first.
    last_owner: object = None
    rep = b""
    for group in itertools.chain(_groups(zone), (extra, soa)):
        for rr in group:
            at = len(out)
            own = rr.owner
            if own is not last_owner:
                wire, sfx = own
                if not sfx:  # the root: nothing to compress
                    put_rrset(out, names, rr, own)
                    last_owner = None
                    if len(out) <= room:
                        count += rr.count
                    else:
                        rollback(out, names, at)
                        yield from msgs.spill(rr, count)
                        out, names, count = msgs.out, msgs.names, msgs.placed
                        get = names.get
                    continue
                else:
                    # assemble._name, inlined: the owner compressed against the
                    # message, its new suffixes entered while they can be reached.
                    i = 0
                    for suffix, off in sfx:
                        p = get(suffix)
                        if p is not None:
                            out += wire[:off]
                            out += (0xC000 | p).to_bytes(2, "big")
                            break
                        i += 1
                    else:
                        out += wire
                    if i and at <= LOW14:
                        for suffix, off in sfx[:i]:
                            if at + off <= LOW14:
                                names[suffix] = at + off
                        rep = (0xC000 | at).to_bytes(2, "big")
                    else:
                        rep = bytes(out[at:])  # a pointer already, or unreachable
                    last_owner = own
            else:
                out += rep
            tails = rr.tails
            if tails is not None:
                out += tails[0]
                if len(tails) > 1:
                    out += rep
                    out += rep.join(tails[1:])
            else:
                first = True
                for head, pieces, last in rr.parts:
                    if first:
                        first = False
                    else:
                        out += rep
                    out += head
                    length_at = len(out)
                    out += b"\x00\x00"
                    for literal, (nwire, nsfx) in pieces:
                        out += literal
                        put_name(out, names, nwire, nsfx)
                    out += last
                    n = len(out) - length_at - 2
                    out[length_at] = n >> 8
                    out[length_at + 1] = n & 0xFF
            if len(out) <= room:
                count += rr.count
                continue
            rollback(out, names, at)
            last_owner = None
            yield from msgs.spill(rr, count)
            out, names, count = msgs.out, msgs.names, msgs.placed
            get = names.get
    yield msgs.close(count)


__all__ = ["iter_axfr_wire", "zone_rrsets"]
