"""Incoming zone transfers, read into authd's own structures (no I/O here).

Owns: turning the records of an AXFR or IXFR response (RFC 5936, RFC 1995),
in the order they arrived, into what a secondary applies: the whole zone, or
the chain of changesets from the serial it has; and writing a version back
out as zone-file text for the secondary's stored copy, with a checksum that
tells a whole copy from a torn or altered one.

The copy format (``copy_text``): a header comment naming the format, the zone
as zone-file lines, and a last comment line holding the SHA-256 of every byte
before it.  A copy cut anywhere lacks that line or fails it; a copy without
the header was written by an older authd and is read as a plain zone file.

Why not a ``dns.zone.Zone``: for a big zone its node table is one dict grown
in single GIL-holding steps (50-130 ms each at a million names, stalling the
queries a secondary answers meanwhile), and an IXFR into it needs a full
dnspython copy of the zone first.  Here an IXFR costs ``changeset.apply``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from authd.changeset import RR, Changeset, records
from authd.rrsig import sig_key
from authd.zone import ZoneVersion
from authd.zonefile import first_over_rrset_limit, rrset_limit_message

_SOA = dns.rdatatype.RdataType.SOA
_RRSIG = dns.rdatatype.RdataType.RRSIG


class TransferFormatError(ValueError):
    """The response is not a well-formed AXFR or IXFR of the zone."""


@dataclass(frozen=True, slots=True)
class Received:
    """What a transfer brought: the whole zone, or changesets, or nothing new."""

    # Every record, the SOA first (AXFR, or IXFR answered so); a list, so that
    # the caller can free a million of them a slice at a time.
    full: list[RR] | None
    changesets: tuple[Changeset, ...] = ()  # IXFR: in order, from the serial asked for

    @property
    def up_to_date(self) -> bool:
        return self.full is None and not self.changesets


def _is_soa(rr: RR) -> bool:
    return bool(rr.rdata.rdtype == _SOA)


def read_transfer(origin: dns.name.Name, rrs: Sequence[RR]) -> Received:
    """Read the records of one transfer response (all its messages, in order).

    Both forms start and end with the zone's new SOA.  Between them, an AXFR
    (and an IXFR answered with the full zone) holds every other record; an
    incremental IXFR holds, per version step, the old SOA, the records
    removed, the new SOA and the records added (RFC 1995 section 4).  A lone
    SOA answers an IXFR whose serial is current.
    """
    if not rrs or not _is_soa(rrs[0]) or rrs[0].name != origin:
        raise TransferFormatError(f"a transfer of {origin} must start with its SOA")
    first = rrs[0]
    if len(rrs) == 1:
        return Received(None)  # IXFR: already at that serial
    last = rrs[-1]
    if not _is_soa(last) or last.rdata != first.rdata:
        raise TransferFormatError("the transfer does not end with the SOA it started with")
    if not _is_soa(rrs[1]):
        body = rrs[1:-1]
        if any(_is_soa(rr) for rr in body):
            raise TransferFormatError("an SOA record inside a full zone transfer")
        return Received([first, *body])
    changesets = []
    pos = 1
    end = len(rrs) - 1
    while pos < end:
        old_soa = rrs[pos]
        pos += 1
        removed = []
        while pos < end and not _is_soa(rrs[pos]):
            removed.append(rrs[pos])
            pos += 1
        if pos >= end:
            raise TransferFormatError("an IXFR step without its new SOA")
        new_soa = rrs[pos]
        pos += 1
        added = []
        while pos < end and not _is_soa(rrs[pos]):
            added.append(rrs[pos])
            pos += 1
        changesets.append(Changeset(old_soa, new_soa, tuple(removed), tuple(added)))
    if changesets[-1].new_soa.rdata != first.rdata:
        raise TransferFormatError("the IXFR steps do not end at the serial it announced")
    return Received(None, tuple(changesets))


def rrset_limit_problem(full: Sequence[RR], limit: int) -> str | None:
    """Why a full transfer is refused for an RRset over *limit* records, or None."""
    over = first_over_rrset_limit(full, limit)
    if over is None:
        return None
    return rrset_limit_message(full[over].name, full[over].rdata, limit)


def applied_rrset_limit_problem(
    version: ZoneVersion, changesets: Iterable[Changeset], limit: int
) -> str | None:
    """Why *version*, reached by *changesets*, is refused for an RRset they
    grew over *limit* records, or None: only the RRsets they add to are counted."""
    for cs in changesets:
        for rr in cs.added:
            rd = rr.rdata
            key = sig_key(rd.type_covered) if rd.rdtype == _RRSIG else rd.rdtype  # type: ignore[attr-defined]
            node = version.nodes.get(rr.name) or version.hashed.get(rr.name) or {}
            rrset = node.get(key)
            if rrset is not None and len(rrset) > limit:
                return rrset_limit_message(rr.name, rd, limit)
    return None


def zone_text(version: ZoneVersion) -> Iterator[str]:
    """*version* as zone-file lines (absolute names), the SOA first: a secondary's copy."""
    yield f"$ORIGIN {version.origin.to_text()}\n"
    for name, ttl, rdata in records(version):
        yield (
            f"{name.to_text()} {ttl} IN {dns.rdatatype.to_text(rdata.rdtype)} "
            f"{rdata.to_text(origin=None, relativize=False)}\n"
        )


COPY_HEADER = "; authd secondary copy v1: the last line is the SHA-256 of every line before it\n"
_TRAILER = b"; sha256 "


def copy_text(version: ZoneVersion, note: str | None = None) -> Iterator[str]:
    """*version* as a checksummed copy: ``COPY_HEADER``, a ``; NOTE`` line if given
    (one line, covered by the checksum), ``zone_text``, the checksum line."""
    h = hashlib.sha256()
    head = [COPY_HEADER] if note is None else [COPY_HEADER, f"; {note}\n"]
    for line in (*head, *zone_text(version)):
        h.update(line.encode("utf-8"))
        yield line
    yield f"{_TRAILER.decode()}{h.hexdigest()}\n"


def copy_problem(lines: Iterable[bytes]) -> str | None:
    """Why the copy made of *lines* (as read, newlines kept) is not whole, or None.

    None too for a copy without ``COPY_HEADER`` (an older authd's, unchecked).
    """
    it = iter(lines)
    first = next(it, b"")
    if first != COPY_HEADER.encode():
        return None
    h = hashlib.sha256(first)
    previous: bytes | None = None
    for line in it:
        if previous is not None:
            h.update(previous)
        previous = line
    if previous is None or not previous.startswith(_TRAILER) or not previous.endswith(b"\n"):
        return "no checksum line at its end (torn: cut while being written?)"
    stated = previous[len(_TRAILER) : -1].decode("ascii", "replace")
    if stated != h.hexdigest():
        return f"checksum mismatch (file says {stated[:16]}..., content is {h.hexdigest()[:16]}...)"
    return None


__all__ = [
    "COPY_HEADER",
    "Received",
    "TransferFormatError",
    "copy_problem",
    "copy_text",
    "read_transfer",
    "zone_text",
]
