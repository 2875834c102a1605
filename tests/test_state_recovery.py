"""Broken state is recovered, never stuck: a bad journal, a full disk, a directory copy.

Regressions: ``journal_with_bad_magic_was_appended_to_forever`` (IXFR history
lost at every restart), ``full_disk_left_the_temp_file`` (``<zone>.tmp``
filling the disk further), ``directory_in_the_copys_place_gave_silent_servfail``
(the log said the old copy kept serving; the zone answered SERVFAIL).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import dns.name
import pytest
from reloadkit import Lab, running_lab, soa_serial, zone_text
from zonekit import zone_from_text

from authd.adapters import state
from authd.config import config_from_dict
from authd.journal import Journal
from harness.changesets import cs
from harness.peers import HOST, free_port

ZONE = dns.name.from_text("s.test.")


def _config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return config_from_dict({"options": {"state_dir": "state"}, "zones": []}, None, str(tmp_path))


def test_journal_with_bad_magic_was_appended_to_forever(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = Path(state.journal_path(config, "default", ZONE))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"NOT A JOURNAL" + b"\x00" * 100)
    stored = state.read_stored(config, "default", ZONE, managed=False)
    assert stored.journal is None and stored.problem is not None
    assert "moved to" in stored.problem and f"{path}.corrupt" in stored.problem
    assert not path.exists() and Path(f"{path}.corrupt").read_bytes().startswith(b"NOT A")
    # The next change starts a readable history in the journal's place.
    state.append_journal(str(path), cs(1, 2))
    assert len(state.read_journal(str(path)).entries) == 1


def test_full_disk_left_the_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "z.journal"
    state.write_journal(str(path), Journal().append(cs(1, 2)))
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        state.write_journal(str(path), Journal().append(cs(1, 2)).append(cs(2, 3)))
    assert path.read_bytes() == before, "the old journal is untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.journal"], "no temp file left"


def test_copy_write_failure_on_a_directory_leaves_no_temp_file(tmp_path: Path) -> None:
    copy = tmp_path / "s.test.zone"
    copy.mkdir()
    version = zone_from_text(zone_text("s.test", 1), ZONE)
    with pytest.raises(OSError):
        state.write_copy(str(copy), version)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.test.zone"]


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


@pytest.mark.timeout(120)
def test_directory_in_the_copys_place_gave_silent_servfail(lab: Lab) -> None:
    zone = lab.write("s.zone", zone_text("s.test", 5))
    copy = lab.dir / "copy-is-a-directory"
    copy.mkdir()
    primary_port = free_port()
    options = {"watch": False, "min_refresh": 1, "min_retry": 1}
    secondary = lab.start(
        "secondary",
        [
            {
                "name": "s.test",
                "type": "secondary",
                "file": str(copy),
                "primaries": [{"address": HOST, "port": primary_port}],
            }
        ],
        options,
    )
    lab.start(
        "primary",
        [{"name": "s.test", "file": str(zone), "allow_transfer": [HOST]}],
        options,
        port=primary_port,
    )
    lab.wait_serial(secondary, "s.test", 5, 30)
    line = lab.wait_log(secondary, r"serving serial 5 from memory only", 10)
    lab.check(f"cannot store the copy {copy}" in line, line)
    lab.check(soa_serial(secondary.port, "s.test") == 5, "served from memory")


_FULL_DISK = """
import errno, os, resource, signal, sys
sys.path.insert(0, "tests")
import dns.name
from reloadkit import zone_text
from zonekit import zone_from_text
from authd.adapters import state
from authd.journal import Journal
from harness.changesets import cs

copy, journal = sys.argv[1], sys.argv[2]
zone = dns.name.from_text("s.test.")
big = "".join(f"h{i} TXT {'x' * 200}\\n" for i in range(200))
state.write_copy(copy, zone_from_text(zone_text("s.test", 1), zone))
state.write_journal(journal, Journal().append(cs(1, 2)))
# The disk is now full: no file may grow past 8 kB (EFBIG, as ENOSPC would).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
failed = []
try:
    state.write_copy(copy, zone_from_text(zone_text("s.test", 2, extra=big), zone))
except OSError as e:
    failed.append(e.errno)
history = Journal()
for serial in range(1, 400):
    history = history.append(cs(serial, serial + 1))
try:
    state.write_journal(journal, history)
except OSError as e:
    failed.append(e.errno)
print(failed)
"""


def test_a_write_past_the_file_size_limit_leaves_no_temp_file(tmp_path: Path) -> None:
    """A real short write (RLIMIT_FSIZE), not a mocked one: the old copy and
    journal stay whole and no temporary file is left behind."""
    import subprocess
    import sys

    folder = tmp_path / "state"
    folder.mkdir()
    copy, journal = folder / "s.test.zone", folder / "s.test.journal"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(copy), str(journal)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"[{errno.EFBIG}, {errno.EFBIG}]", done.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["s.test.journal", "s.test.zone"]
    assert len(state.read_journal(str(journal)).entries) == 1, "the old journal is whole"
    stored = copy.read_text()
    assert " 1 7200 " in stored and "h199" not in stored, "the old copy is whole"
