"""The IXFR journal: bounds, serial arithmetic, the format (authd/journal.py),
and the file (authd/adapters/state.py).

The file tests include the crash cases: a record torn at every byte offset,
a zero-filled tail, and a writer process killed with SIGKILL mid-stream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.name
import pytest

from authd.adapters.state import append_journal, read_journal, write_journal
from authd.changeset import RR, Changeset
from authd.journal import (
    MAGIC,
    Journal,
    JournalError,
    decode_changeset,
    decode_journal,
    encode_changeset,
    encode_journal,
    encode_record,
    reconcile,
)
from harness.changesets import ORIGIN, chain, cs, rr, soa
from harness.peers import REPO_ROOT


def journal_of(changesets: list[Changeset], **bounds: int) -> Journal:
    j = Journal(**bounds)  # type: ignore[arg-type]
    for c in changesets:
        j = j.append(c)
    return j


# -- bounds -----------------------------------------------------------------


def test_max_entries_drops_the_oldest() -> None:
    changesets = chain(*range(1, 12))
    j = journal_of(changesets, max_entries=3)
    assert j.entries == tuple(changesets[-3:])
    assert (j.serial_from, j.serial_to) == (8, 11)


def test_max_bytes_drops_the_oldest() -> None:
    changesets = chain(*range(1, 12))
    size = len(encode_record(changesets[0]))
    assert all(len(encode_record(c)) == size for c in changesets)
    j = journal_of(changesets, max_bytes=4 * size + size // 2)
    assert j.entries == tuple(changesets[-4:])
    assert j.total_bytes == 4 * size <= j.max_bytes
    assert j.sizes == (size,) * 4


def test_changeset_larger_than_max_bytes_empties_the_journal() -> None:
    small = cs(1, 2)
    big = cs(2, 3, n=200)
    j = journal_of([small], max_bytes=len(encode_record(small)) * 10).append(big)
    assert j.entries == ()
    assert j.changes_since(2) is None
    # The next change starts a new history.
    j = j.append(cs(3, 4))
    assert j.changes_since(3) == [cs(3, 4)]


def test_zero_entries_keeps_nothing() -> None:
    assert journal_of(chain(1, 2, 3), max_entries=0).entries == ()


def test_append_refuses_a_broken_chain() -> None:
    j = journal_of(chain(1, 2))
    with pytest.raises(ValueError, match="does not continue"):
        j.append(cs(5, 6))


def test_append_refuses_a_serial_that_does_not_increase() -> None:
    with pytest.raises(ValueError, match="RFC 1982"):
        Journal().append(cs(5, 5))
    with pytest.raises(ValueError, match="RFC 1982"):
        Journal().append(cs(5, 4))
    with pytest.raises(ValueError, match="RFC 1982"):
        Journal().append(cs(0, 2**31))  # exactly half the space away: undefined


def test_append_refuses_another_zone() -> None:
    other = Changeset(RR(dns.name.from_text("example.net."), 1, soa(2).rdata), soa(3), (), ())
    with pytest.raises(ValueError, match="journal of"):
        journal_of(chain(1, 2)).append(other)


# -- which changesets a client needs ----------------------------------------------


def test_changes_since() -> None:
    changesets = chain(10, 11, 15, 20)
    j = journal_of(changesets)
    assert j.changes_since(10) == changesets
    assert j.changes_since(11) == changesets[1:]
    assert j.changes_since(15) == changesets[2:]
    assert j.changes_since(20) == []  # the end: nothing to send
    assert j.changes_since(12) is None  # never served
    assert j.changes_since(9) is None  # older than the journal
    assert j.changes_since(21) is None  # from the future
    assert Journal().changes_since(10) is None


def test_serial_wrap_around() -> None:
    changesets = chain(4294967294, 4294967295, 1, 2)  # 0 skipped, as BIND does
    j = journal_of(changesets)
    assert j.changes_since(4294967294) == changesets
    assert j.changes_since(4294967295) == changesets[1:]
    assert j.changes_since(1) == changesets[2:]
    assert j.changes_since(2) == []
    assert j.changes_since(0) is None


def test_serial_seen_twice_after_a_full_turn_is_ambiguous() -> None:
    q = 2**30
    # Four quarter steps come back round to 0; the journal then ends at q/2.
    changesets = chain(0, q, 2 * q, 3 * q, 0, q // 2)
    j = journal_of(changesets)
    assert j.changes_since(q // 2) == []  # the end
    assert j.changes_since(0) is None  # starts two entries: which history is it?
    # Unique in the journal, but not before the end in RFC 1982 order.
    assert j.changes_since(q) is None
    assert j.changes_since(2 * q) is None
    assert j.changes_since(3 * q) == changesets[3:]


# -- reconcile with the zone being served ------------------------------------------


def test_reconcile() -> None:
    j = journal_of(chain(1, 2, 3))
    assert reconcile(j, ORIGIN, 3) == (j, None)
    empty, reason = reconcile(j, ORIGIN, 7)
    assert empty.entries == () and empty.max_entries == j.max_entries
    assert reason is not None and "ends at serial 3" in reason and "7" in reason
    empty, reason = reconcile(j, dns.name.from_text("example.net."), 3)
    assert empty.entries == () and reason is not None and "example.net" in reason
    assert reconcile(Journal(), ORIGIN, 3) == (Journal(), None)


def test_should_compact() -> None:
    j = journal_of(chain(1, 2, 3))
    live = len(MAGIC) + j.total_bytes
    assert not j.should_compact(live)
    assert not j.should_compact(live + 64 * 1024)
    assert j.should_compact(live + 64 * 1024 + 1)


# -- encoding ---------------------------------------------------------------


def test_every_kind_of_record_round_trips() -> None:
    records = (
        rr("a", 1, "A", "192.0.2.1"),
        rr("a", 2, "AAAA", "2001:db8::1"),
        rr("b", 3, "TXT", '"with space" "and \\"quote\\"" "\\255\\000"'),
        rr("c", 4, "MX", "10 mail.example."),
        rr("_sip._tcp", 5, "SRV", "0 5 5060 sip.example."),
        rr("d", 6, "CAA", '0 issue "ca.example.net"'),
        rr("e\\.dot", 7, "CNAME", "target.other."),
        rr("f", 8, "TYPE65534", "\\# 3 abcdef"),
        rr("*.w", 9, "NS", "ns.other."),
        rr("ds", 10, "DS", "12345 13 2 " + "ab" * 32),
    )
    c = Changeset(soa(1), soa(2), records[:4], records[4:])
    assert decode_changeset(encode_changeset(c)) == c


def test_malformed_payload_with_a_good_checksum_is_an_error() -> None:
    payload = encode_changeset(cs(1, 2))
    with pytest.raises(JournalError):
        decode_changeset(payload[:-1])
    with pytest.raises(JournalError):
        decode_changeset(payload + b"\x00")


def test_not_a_journal() -> None:
    with pytest.raises(JournalError):
        decode_journal(b"this is not a journal file")
    with pytest.raises(JournalError):
        decode_journal(MAGIC[:-1] + b"\x09")  # another format version


# -- files ------------------------------------------------------------------------


def test_missing_file_is_an_empty_journal(tmp_path: Path) -> None:
    assert read_journal(str(tmp_path / "none.jnl")).entries == ()


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    j = journal_of(chain(1, 2, 3, 4, 5, n=3))
    write_journal(path, j)
    assert read_journal(path) == j
    assert not os.path.exists(path + ".tmp")


def test_append_and_read_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    changesets = chain(4294967294, 4294967295, 1, 2, n=2)
    for c in changesets:
        size = append_journal(path, c)
        assert size == os.path.getsize(path)
    assert read_journal(path) == journal_of(changesets)


def test_bounds_apply_when_reading(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    changesets = chain(*range(1, 11))
    for c in changesets:
        append_journal(path, c)
    j = read_journal(path, max_entries=3)
    assert j.entries == tuple(changesets[-3:])
    assert j.should_compact(os.path.getsize(path)) is False  # small file: not worth it yet
    write_journal(path, j)
    assert os.path.getsize(path) == len(MAGIC) + j.total_bytes


def test_file_with_a_broken_chain_keeps_the_newest_history(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    for c in [*chain(1, 2, 3), *chain(7, 8, 9)]:  # e.g. a discard that did not rewrite
        append_journal(path, c)
    assert read_journal(path).entries == tuple(chain(7, 8, 9))


def test_torn_last_record_at_every_offset(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    changesets = chain(1, 2, 3, 4, n=2)
    for c in changesets:
        append_journal(path, c)
    data = Path(path).read_bytes()
    last = len(encode_record(changesets[-1]))
    start = len(data) - last
    before = journal_of(changesets[:-1])
    for cut in range(start, len(data)):
        torn, intact = decode_journal(data[:cut])
        assert torn == before, cut
        assert intact == start
    assert decode_journal(data)[0] == journal_of(changesets)


def test_torn_tail_is_cut_so_the_next_append_is_readable(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    changesets = chain(1, 2, 3)
    for c in changesets:
        append_journal(path, c)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-5])  # the last append was torn
    assert read_journal(path, repair=False) == journal_of(changesets[:1])
    assert os.path.getsize(path) == len(data) - 5  # not repaired
    j = read_journal(path)
    assert j == journal_of(changesets[:1])
    append_journal(path, changesets[1])
    assert read_journal(path) == journal_of(changesets[:2])


def test_zero_filled_tail(tmp_path: Path) -> None:
    # After a power loss the file may have grown without its data reaching
    # the disk: the tail reads as zeros, which must not pass for a record.
    path = str(tmp_path / "z.jnl")
    changesets = chain(1, 2, 3)
    for c in changesets:
        append_journal(path, c)
    with open(path, "ab") as f:
        f.write(bytes(4096))
    assert read_journal(path) == journal_of(changesets)
    assert os.path.getsize(path) == len(MAGIC) + journal_of(changesets).total_bytes


def test_flipped_byte_in_the_last_record(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    changesets = chain(1, 2, 3)
    for c in changesets:
        append_journal(path, c)
    data = bytearray(Path(path).read_bytes())
    data[-3] ^= 0x40
    Path(path).write_bytes(bytes(data))
    assert read_journal(path) == journal_of(changesets[:1])


def test_file_torn_while_being_created(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    Path(path).write_bytes(MAGIC[:3])
    assert read_journal(path).entries == ()
    assert Path(path).read_bytes() == MAGIC
    append_journal(path, cs(1, 2))
    assert read_journal(path).entries == (cs(1, 2),)


def test_encode_journal_is_what_write_journal_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "z.jnl")
    j = journal_of(chain(1, 2, 3))
    write_journal(path, j)
    assert Path(path).read_bytes() == encode_journal(j)


WRITER = """
import itertools, sys
from harness.changesets import cs
from authd.adapters.state import append_journal
path = sys.argv[1]
print("ready", flush=True)
for i in itertools.count(1):
    append_journal(path, cs(i, i + 1, n=20))
"""


def test_survives_sigkill_at_any_moment(tmp_path: Path) -> None:
    """A writer killed mid-stream leaves a prefix of whole changesets, never half of one."""
    script = WRITER
    for round_ in range(6):
        path = str(tmp_path / f"kill{round_}.jnl")
        proc = subprocess.Popen(
            # From the repository root: `-c` puts the working folder on sys.path.
            [sys.executable, "-c", script, path],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.05 + 0.07 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        j = read_journal(path, max_entries=1 << 30, max_bytes=1 << 40)
        n = len(j.entries)
        expected = chain(*range(1, n + 3), n=20)
        assert j.entries == tuple(expected[:n])
        # And the repaired file takes the next append.
        append_journal(path, expected[n])
        assert read_journal(path, max_entries=1 << 30, max_bytes=1 << 40).entries == tuple(
            expected[: n + 1]
        )
