"""AXFR out from a compiled zone: prepared RRset bytes packed into messages.

Owns: ``iter_axfr_wire``, the messages of an unsigned AXFR response (RFC
5936) built from a ``CompiledZone`` by joining the RRsets rendered at load,
names compressed within each message as ``authd.assemble`` compresses them.
It keeps ``authd.xfr``'s invariants: the zone's SOA first and last, every
RRset in between (empty non-terminals have none), messages of at most
*max_size* bytes holding whole RRsets unless one alone cannot fit (then it
travels record by record), the question in the first message only, QR and
AA set, RD copied, an OPT in every message when the request had EDNS.
Signed transfers stay with ``authd.xfr`` (TSIG signs message by message).
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.rdatatype

from authd.assemble import put_rrset, rollback
from authd.compiled import CompiledZone, RRsetWire
from authd.limits import HEADER_LEN, MAX_MESSAGE, NO_EDNS_UDP_LIMIT, OPT_FIXED_SIZE

SOA = int(dns.rdatatype.RdataType.SOA)


def _zone_rrsets(zone: CompiledZone) -> Iterator[RRsetWire]:
    apex = zone.node(zone.origin)
    assert apex is not None
    soa = apex.rrsets[SOA]
    yield soa
    for rdtype, rrset in apex.rrsets.items():
        if rdtype != SOA:
            yield rrset
    for shard in zone.shards:
        for key, node in shard.items():
            if key != zone.origin:
                yield from node.rrsets.values()
    yield soa


def _single(rrset: RRsetWire) -> Iterator[RRsetWire]:
    """*rrset* as one-record RRsets, for one too large for a message of its own."""
    if rrset.tails is not None:
        for tail in rrset.tails:
            yield RRsetWire(rrset.owner, rrset.rdtype, 1, (tail,), ())
    else:
        for part in rrset.parts:
            yield RRsetWire(rrset.owner, rrset.rdtype, 1, None, (part,))


def iter_axfr_wire(
    query_id: int,
    rd: bool,
    question: bytes,
    zone: CompiledZone,
    *,
    max_size: int = MAX_MESSAGE,
    edns_payload: int | None = None,
) -> Iterator[bytes]:
    """The messages of an AXFR of *zone*; *question* is the request's, as wire bytes."""
    size = max(NO_EDNS_UDP_LIMIT, min(max_size, MAX_MESSAGE))
    room = size - (OPT_FIXED_SIZE if edns_payload is not None else 0)
    flags = (0x8400 | (0x0100 if rd else 0)).to_bytes(2, "big")
    opt = b""
    if edns_payload is not None:
        opt = b"\x00\x00\x29" + edns_payload.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
    first = True
    out = bytearray()
    names: dict[bytes, int] = {}
    count = 0

    def start() -> None:
        nonlocal out, names, count
        # The question echoes the asker's letter case: zone names never point
        # at it, so the secondary's copy keeps the zone's case (as authd.xfr).
        out = bytearray(HEADER_LEN) + (question if first else b"")
        names = {}
        count = 0

    def close() -> bytes:
        header = query_id.to_bytes(2, "big") + flags + (b"\x00\x01" if first else b"\x00\x00")
        header += count.to_bytes(2, "big") + b"\x00\x00" + (b"\x00\x01" if opt else b"\x00\x00")
        out[:HEADER_LEN] = header
        return bytes(out + opt)

    def fits(rrset: RRsetWire) -> bool:
        nonlocal count
        at = len(out)
        put_rrset(out, names, rrset, rrset.owner)
        if len(out) > room:
            rollback(out, names, at)
            return False
        count += rrset.count
        return True

    start()
    for rrset in _zone_rrsets(zone):
        if fits(rrset):
            continue
        if count:
            yield close()
            first = False
            start()
            if fits(rrset):
                continue
        for one in _single(rrset):
            if fits(one):
                continue
            yield close()
            first = False
            start()
            if not fits(one):
                raise ValueError(
                    f"a record of type {rrset.rdtype} does not fit a {size}-byte message"
                )
    yield close()


__all__ = ["iter_axfr_wire"]
