"""The per-zone IXFR journal: a bounded history of changesets, and its file format.

Owns: the chain of changesets that lets an IXFR (RFC 1995) answer a client
at an older serial, the bounds on that history (entries and bytes, oldest
dropped first, as NSD's ``ixfr-number``/``ixfr-size``), deciding which
changesets a client needs (RFC 1982 serial arithmetic), checking a journal
read from disk against the serial being served, and the on-disk format.

Invariants:

* A ``Journal`` is a value: ``append`` returns a new one.  Its entries form an
  unbroken chain, each ``serial_from`` equal to the previous ``serial_to``
  and each step an increase in the sense of RFC 1982.
* ``changes_since`` answers only when the answer is certain: the client's
  serial is the start of exactly one entry and lies before the journal's end
  in RFC 1982 order; anything else is None and the caller sends a full zone.
* Everything here is pure: values in, values or bytes out.  Reading,
  appending and replacing the file is ``authd.adapters.state``'s job.

File format (all integers big-endian)::

    file    = MAGIC record*
    record  = length:u32 crc:u32 payload          ; crc32 of length and payload
    payload = n_removed:u32 n_added:u32 rr*        ; rr = owner type class ttl rdlength rdata
              ; in IXFR order: old SOA, removed RRs, new SOA, added RRs,
              ; uncompressed wire format (RFC 1035 section 4.1.3)

The adapter only ever appends records (one ``write`` and an ``fsync`` each) or
replaces the whole file atomically (temporary file, ``fsync``, ``rename``,
``fsync`` of the folder).  A ``kill -9`` or power loss during an append
leaves a torn last record; its length or checksum does not hold, so reading
stops before it and the previous entries come back exactly - a record is
never half-applied.  A zero-filled tail (a crash after the file grew but
before its data reached the disk) fails the checksum too, as the length is
part of what it covers.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.serial
import dns.wire

from authd.changeset import RR, Changeset
from authd.errors import AuthdError
from authd.limits import DEFAULT_JOURNAL_MAX_BYTES, DEFAULT_JOURNAL_MAX_ENTRIES

#: Changesets kept per zone by default; older ones are dropped (NSD keeps 5, BIND all).
#: Encoded bytes kept per zone by default; a changeset larger than this is not kept at all.

MAGIC = b"AUTHDJ\x00\x01"  # format name and version 1
_RECORD_HEADER = struct.Struct("!II")  # length, crc32
_COUNTS = struct.Struct("!II")  # removed, added
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdlength
#: Largest payload a record may declare; anything larger is a torn or foreign length.
MAX_RECORD_PAYLOAD = 1 << 30
#: Dead bytes (dropped entries still in the file) tolerated before a rewrite.
MIN_COMPACT_BYTES = 64 * 1024


class JournalError(AuthdError):
    """A journal file is not ours or holds a record that checks out but cannot be read."""


@dataclass(frozen=True, slots=True)
class Journal:
    """A bounded chain of changesets, oldest first."""

    entries: tuple[Changeset, ...] = ()
    sizes: tuple[int, ...] = ()  # the encoded size of each entry, its record header included
    max_entries: int = DEFAULT_JOURNAL_MAX_ENTRIES
    max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES

    def __post_init__(self) -> None:
        if len(self.entries) != len(self.sizes):
            raise ValueError("a journal needs one size per entry")
        if self.max_entries < 0 or self.max_bytes < 0:
            raise ValueError("journal bounds must not be negative")

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    @property
    def serial_from(self) -> int | None:
        """The oldest serial the journal can bring up to date, None when empty."""
        return self.entries[0].serial_from if self.entries else None

    @property
    def serial_to(self) -> int | None:
        """The serial the last changeset leads to, None when empty."""
        return self.entries[-1].serial_to if self.entries else None

    def empty(self) -> Journal:
        """A journal with the same bounds and no entries."""
        return Journal((), (), self.max_entries, self.max_bytes)

    def append(self, changeset: Changeset, size: int | None = None) -> Journal:
        """This journal with *changeset* added and the oldest entries dropped to fit.

        *size* is the changeset's encoded size when the caller already has it.
        Raises ``ValueError`` when *changeset* does not continue the chain or
        does not increase the serial (RFC 1982 section 3.2).
        """
        if not dns.serial.Serial(changeset.serial_to) > changeset.serial_from:
            raise ValueError(
                f"serial {changeset.serial_to} does not follow {changeset.serial_from} (RFC 1982)"
            )
        if self.entries:
            last = self.entries[-1]
            if changeset.origin != last.origin:
                raise ValueError(
                    f"changeset for {changeset.origin} in the journal of {last.origin}"
                )
            if changeset.serial_from != last.serial_to:
                raise ValueError(
                    f"changeset from serial {changeset.serial_from} does not continue "
                    f"the journal, which ends at {last.serial_to}"
                )
        if size is None:
            size = len(encode_record(changeset))
        entries = self.entries + (changeset,)
        sizes = self.sizes + (size,)
        total = sum(sizes)
        drop = 0
        while drop < len(entries) and (
            len(entries) - drop > self.max_entries or total > self.max_bytes
        ):
            total -= sizes[drop]
            drop += 1
        return Journal(entries[drop:], sizes[drop:], self.max_entries, self.max_bytes)

    def changes_since(self, serial: int) -> list[Changeset] | None:
        """The changesets that bring a copy at *serial* up to the journal's end.

        ``[]`` when *serial* is the end; None when the journal cannot say
        (not in it, ambiguous after serial wrap-around, or not before the end
        in RFC 1982 order): the caller then falls back to a full transfer.
        """
        if not self.entries:
            return None
        end = self.entries[-1].serial_to
        if serial == end:
            return []
        starts = [i for i, cs in enumerate(self.entries) if cs.serial_from == serial]
        if len(starts) != 1 or not dns.serial.Serial(serial) < end:
            return None
        return list(self.entries[starts[0] :])

    def should_compact(self, file_size: int) -> bool:
        """Whether a file of *file_size* bytes holding this journal should be rewritten.

        Appends leave dropped entries in the file; once they outweigh the live
        ones (and ``MIN_COMPACT_BYTES``), ``authd.adapters.state`` rewrites it.
        """
        dead = file_size - len(MAGIC) - self.total_bytes
        return dead > max(self.total_bytes, MIN_COMPACT_BYTES)


def reconcile(journal: Journal, origin: dns.name.Name, serial: int) -> tuple[Journal, str | None]:
    """*journal* if it leads to the zone being served, else an empty one and why.

    A journal that ends at another serial describes a history the zone file
    has left (edited while the server was down, or a crash between publishing
    a version and recording it); answering IXFR from it would corrupt the
    secondaries, so it is discarded and they get a full transfer instead.
    """
    if not journal.entries:
        return journal, None
    if journal.entries[0].origin != origin:
        return journal.empty(), (
            f"journal is for {journal.entries[0].origin}, not {origin}; discarded"
        )
    if journal.serial_to != serial:
        return journal.empty(), (
            f"journal ends at serial {journal.serial_to} but the zone is at {serial}; discarded"
        )
    return journal, None


# -- encoding ---------------------------------------------------------------


def _wire(value: dns.name.Name | dns.rdata.Rdata) -> bytes:
    """Uncompressed wire form (``to_wire`` without a file always returns bytes)."""
    wire = value.to_wire()
    assert wire is not None
    return wire


def _rr_wire(rr: RR) -> bytes:
    rdata = _wire(rr.rdata)
    return (
        _wire(rr.name)
        + _RR_FIXED.pack(rr.rdata.rdtype, rr.rdata.rdclass, rr.ttl, len(rdata))
        + rdata
    )


def encode_changeset(changeset: Changeset) -> bytes:
    """The payload of a journal record: counts, then the RRs in IXFR order."""
    parts = [_COUNTS.pack(len(changeset.removed), len(changeset.added))]
    parts.append(_rr_wire(changeset.old_soa))
    parts.extend(_rr_wire(rr) for rr in changeset.removed)
    parts.append(_rr_wire(changeset.new_soa))
    parts.extend(_rr_wire(rr) for rr in changeset.added)
    return b"".join(parts)


def encode_record(changeset: Changeset) -> bytes:
    """A whole journal record: length, checksum, payload."""
    payload = encode_changeset(changeset)
    length = struct.pack("!I", len(payload))
    return length + struct.pack("!I", zlib.crc32(payload, zlib.crc32(length))) + payload


def _read_rr(parser: dns.wire.Parser) -> RR:
    name = parser.get_name()
    rdtype, rdclass, ttl, rdlen = parser.get_struct(_RR_FIXED.format)
    with parser.restrict_to(rdlen):
        rdata = dns.rdata.from_wire_parser(
            dns.rdataclass.RdataClass(rdclass), dns.rdatatype.RdataType(rdtype), parser
        )
    return RR(name, ttl, rdata)


def decode_changeset(payload: bytes) -> Changeset:
    """The changeset in a record payload; raises ``JournalError`` if it is malformed."""
    try:
        parser = dns.wire.Parser(payload)
        n_removed, n_added = parser.get_struct(_COUNTS.format)
        old_soa = _read_rr(parser)
        removed = tuple(_read_rr(parser) for _ in range(n_removed))
        new_soa = _read_rr(parser)
        added = tuple(_read_rr(parser) for _ in range(n_added))
        if parser.remaining():
            raise JournalError("trailing bytes after the last record of a changeset")
    except (dns.exception.DNSException, ValueError, struct.error) as e:
        raise JournalError(f"unreadable changeset: {e}") from e
    for soa in (old_soa, new_soa):
        if soa.rdata.rdtype != dns.rdatatype.SOA:
            raise JournalError("a changeset does not start or end its removals with an SOA")
    return Changeset(old_soa, new_soa, removed, added)


def _records(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(end offset, payload) of each intact record after the magic; stops at a torn one."""
    pos = len(MAGIC)
    n = len(data)
    header = _RECORD_HEADER.size
    while n - pos >= header:
        length, crc = _RECORD_HEADER.unpack_from(data, pos)
        end = pos + header + length
        if length > MAX_RECORD_PAYLOAD or end > n:
            return
        payload = data[pos + header : end]
        if zlib.crc32(payload, zlib.crc32(data[pos : pos + 4])) != crc:
            return
        yield end, payload
        pos = end


def decode_journal(
    data: bytes,
    max_entries: int = DEFAULT_JOURNAL_MAX_ENTRIES,
    max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES,
) -> tuple[Journal, int]:
    """The journal in file contents *data*, and the length of their intact prefix.

    Bytes after the intact prefix are a torn append and are ignored.  A
    record that does not continue the chain starts the journal afresh (the
    file outlived a discarded history).  Raises ``JournalError`` for a file
    that is not a journal.
    """
    if len(data) < len(MAGIC):
        if MAGIC.startswith(data):
            return Journal((), (), max_entries, max_bytes), 0  # torn while being created
        raise JournalError("not an authd journal")
    if not data.startswith(MAGIC):
        raise JournalError("not an authd journal (bad magic or version)")
    journal = Journal((), (), max_entries, max_bytes)
    intact = len(MAGIC)
    header = _RECORD_HEADER.size
    for end, payload in _records(data):
        changeset = decode_changeset(payload)
        size = header + len(payload)
        try:
            journal = journal.append(changeset, size)
        except ValueError:
            try:
                journal = journal.empty().append(changeset, size)
            except ValueError as e:
                raise JournalError(f"bad changeset in the journal: {e}") from e
        intact = end
    return journal, intact


def encode_journal(journal: Journal) -> bytes:
    """The whole file for *journal*."""
    return MAGIC + b"".join(encode_record(cs) for cs in journal.entries)


__all__ = [
    "DEFAULT_JOURNAL_MAX_BYTES",
    "DEFAULT_JOURNAL_MAX_ENTRIES",
    "MAGIC",
    "Journal",
    "JournalError",
    "decode_changeset",
    "decode_journal",
    "encode_changeset",
    "encode_journal",
    "encode_record",
    "reconcile",
]
