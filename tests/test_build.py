"""Building a snapshot (authd/build.py) and persisting it (authd/adapters/state.py).

The build is pure: what the state folder held comes in as ``Stored`` values
and what it must hold comes out as ``ServedRecord``/``JournalWrite`` values;
the adapter reads before and writes after, with the same results on disk as
when the build wrote them itself.
"""

from __future__ import annotations

from pathlib import Path

import dns.name

from authd.adapters import state
from authd.build import LoadOutcome, Stored, first_loads, plan_snapshot
from authd.config import Config, config_from_dict
from authd.journal import Journal

ORIGIN = dns.name.from_text("b.test.")
KEY = ("default", ORIGIN)


def zone(serial: int, address: str = "192.0.2.1") -> str:
    return f"""$ORIGIN b.test.
$TTL 300
@    SOA  ns hm {serial} 7200 3600 1209600 300
@    NS   ns
ns   A    192.0.2.53
www  A    {address}
"""


def config(tmp_path: Path, serial: str = "keep", state_dir: str = "state") -> Config:
    data = {
        "listen": [{"address": "127.0.0.1"}],
        "options": {"state_dir": str(tmp_path / state_dir)},
        "zones": [{"name": "b.test", "file": "b.zone", "serial": serial}],
    }
    return config_from_dict(data, None, str(tmp_path))


def test_plan_snapshot_writes_nothing_and_returns_the_writes(tmp_path: Path) -> None:
    (tmp_path / "b.zone").write_text(zone(1))
    cfg = config(tmp_path, serial="increment")
    first = plan_snapshot(cfg, None, 0)
    assert [e.outcome for e in first.events] == [LoadOutcome.LOADED]
    assert [(r.view, r.zone, r.serial) for r in first.served] == [("default", ORIGIN, 1)]
    assert first.journals == ()  # an empty history that matches: nothing to write
    (tmp_path / "b.zone").write_text(zone(1, "192.0.2.2"))
    second = plan_snapshot(cfg, first.snapshot, 1)
    [write] = second.journals
    assert write.append is not None and write.append.serial_to == 2
    assert write.journal is second.snapshot.views[0].journals[ORIGIN]
    assert write.fallback.entries == (write.append,)  # memory only: the last change
    assert not (tmp_path / "state").exists()


def test_first_loads_asks_for_the_stored_state_of_new_zones_only(tmp_path: Path) -> None:
    (tmp_path / "b.zone").write_text(zone(1))
    cfg = config(tmp_path, serial="increment")
    assert first_loads(cfg, None) == [("default", ORIGIN, True)]
    built = plan_snapshot(cfg, None, 0)
    assert first_loads(cfg, built.snapshot) == []


def test_stored_serial_and_journal_continue_after_a_restart(tmp_path: Path) -> None:
    (tmp_path / "b.zone").write_text(zone(1))
    cfg = config(tmp_path, serial="increment")
    first = plan_snapshot(cfg, None, 0)
    [record] = first.served
    # The same files after a restart: the remembered serial, whatever the file says.
    stored = {KEY: Stored(Journal(), None, (record.digest, 7))}
    again = plan_snapshot(cfg, None, 0, stored=stored)
    assert again.events[0].serial == 7


def test_unreadable_journal_serves_history_in_memory_only(tmp_path: Path) -> None:
    (tmp_path / "b.zone").write_text(zone(1))
    cfg = config(tmp_path)
    stored = {KEY: Stored(None, "journal x.journal: not an authd journal")}
    built = plan_snapshot(cfg, None, 0, stored=stored)
    note = built.events[0].journal_note
    assert note == "journal x.journal: not an authd journal; IXFR history kept in memory only"
    assert built.snapshot.views[0].journals[ORIGIN].entries == ()


def test_state_build_persists_serial_and_journal(tmp_path: Path) -> None:
    (tmp_path / "b.zone").write_text(zone(1))
    cfg = config(tmp_path, serial="increment")
    snap, _ = state.build_snapshot(cfg, None, 0)
    assert state.read_served(cfg, "default", ORIGIN) is not None
    (tmp_path / "b.zone").write_text(zone(1, "192.0.2.2"))
    snap2, events = state.build_snapshot(cfg, snap, 1)
    assert events[0].serial == 2 and events[0].journal_note is None
    on_disk = state.read_journal(state.journal_path(cfg, "default", ORIGIN))
    assert on_disk.entries == snap2.views[0].journals[ORIGIN].entries
    # A restart with the files as they are: serial 2 again, the history kept.
    snap3, events = state.build_snapshot(cfg, None, 0)
    assert events[0].serial == 2
    assert snap3.views[0].journals[ORIGIN].serial_to == 2


def test_failed_journal_write_falls_back_to_memory_only(tmp_path: Path) -> None:
    (tmp_path / "b.zone").write_text(zone(1))
    (tmp_path / "blocked").write_text("a file where the state folder should be\n")
    cfg = config(tmp_path, state_dir="blocked")
    snap, events = state.build_snapshot(cfg, None, 0)
    (tmp_path / "b.zone").write_text(zone(2, "192.0.2.2"))
    snap2, events = state.build_snapshot(cfg, snap, 1)
    assert events[0].outcome is LoadOutcome.LOADED
    assert events[0].journal_note is not None
    assert events[0].journal_note.endswith("; IXFR history kept in memory only")
    journal = snap2.views[0].journals[ORIGIN]
    assert [(c.serial_from, c.serial_to) for c in journal.entries] == [(1, 2)]
