"""A primary restarted on a changed file at the same serial serves its last-good copy.

Regression ``restart_forgot_what_it_served`` (issue 16): a zone file cut at a
line end, same serial, was served after a restart (701 of 2,055 records) while
the journal led IXFR clients to the full zone: one serial, two contents.  A
file cut mid-line gave SERVFAIL.  Now the state folder keeps a checksummed
last-good copy of each version a primary (``serial: keep``) serves, and a
start judges the file against it exactly as a running reload would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.name
import pytest
from reloadkit import Lab, axfr_lines, running_lab, soa_serial, zone_text

from authd.adapters import state
from authd.build import LoadOutcome
from authd.config import config_from_dict
from authd.limits import MAX_LAST_GOOD_HEAD_LINE
from harness.peers import HOST, free_port

ZONE = dns.name.from_text("p.test.")
HOSTS = "".join(f"h{i} A 192.0.2.{i % 250 + 1}\n" for i in range(60))


def _config(tmp_path: Path):  # type: ignore[no-untyped-def]
    zone = {"name": "p.test", "file": "p.zone"}
    return config_from_dict(
        {"options": {"state_dir": "state"}, "zones": [zone]}, None, str(tmp_path)
    )


def _start(tmp_path: Path):  # type: ignore[no-untyped-def]
    snapshot, events = state.build_snapshot(_config(tmp_path), None, 1)
    return snapshot.view_zone("default", ZONE), events[0]


def _served_once(tmp_path: Path, serial: int = 3) -> str:
    text = zone_text("p.test", serial, extra=HOSTS)
    (tmp_path / "p.zone").write_text(text)
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.LOADED and version is not None
    assert Path(state.last_good_path(_config(tmp_path), "default", ZONE)).is_file()
    return text


def test_restart_forgot_what_it_served(tmp_path: Path) -> None:
    text = _served_once(tmp_path)
    cut = text[: text.index("h30 ")]  # at a line end: a valid, smaller zone at serial 3
    (tmp_path / "p.zone").write_text(cut)
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.KEPT_OLD, event
    assert event.reason is not None and "serial 3 not increased, content changed" in event.reason
    assert "the last-good copy of serial 3 serves" in event.reason
    assert version is not None and version.serial == 3 and version.record_count == 64
    assert version.files == frozenset({str(tmp_path / "p.zone")}), "the copy is never watched"


def test_a_file_cut_mid_line_serves_the_last_good_copy(tmp_path: Path) -> None:
    text = _served_once(tmp_path)
    (tmp_path / "p.zone").write_text(text[: text.index("h30 ") + 6])
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.KEPT_OLD and version is not None
    assert version.record_count == 64


def test_an_unchanged_file_loads_as_before(tmp_path: Path) -> None:
    _served_once(tmp_path)
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.LOADED and event.serial == 3
    assert version is not None and version.record_count == 64


def test_a_higher_serial_replaces_the_last_good_copy(tmp_path: Path) -> None:
    text = _served_once(tmp_path)
    (tmp_path / "p.zone").write_text(text.replace(" 3 7200 ", " 4 7200 ")[: text.index("h30 ")])
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.LOADED and version is not None and version.serial == 4
    # And that is the one remembered now: cutting further at serial 4 is refused.
    (tmp_path / "p.zone").write_text(text.replace(" 3 7200 ", " 4 7200 ")[: text.index("h10 ")])
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.KEPT_OLD and version is not None
    assert version.record_count == 34


def test_a_torn_last_good_copy_is_moved_aside(tmp_path: Path) -> None:
    _served_once(tmp_path)
    path = Path(state.last_good_path(_config(tmp_path), "default", ZONE))
    path.write_bytes(path.read_bytes()[:200])
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.LOADED and version is not None, "the file decides"
    assert event.journal_note is not None and f"moved to {path}.corrupt" in event.journal_note
    assert path.is_file() and Path(f"{path}.corrupt").is_file(), "a new copy was written"


def test_an_unreadable_source_line_still_compares_the_whole_copy(tmp_path: Path) -> None:
    # A first line over MAX_LAST_GOOD_HEAD_LINE: no shortcut, the copy is read whole.
    text = _served_once(tmp_path)
    path = state.last_good_path(_config(tmp_path), "default", ZONE)
    version, _ = _start(tmp_path)
    assert version is not None
    state.write_copy(path, version, "source " + "x" * (MAX_LAST_GOOD_HEAD_LINE + 10))
    (tmp_path / "p.zone").write_text(text[: text.index("h30 ")])
    version, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.KEPT_OLD and version is not None
    assert version.record_count == 64


def test_a_torn_copy_is_rewritten_even_when_the_file_is_unchanged(tmp_path: Path) -> None:
    _served_once(tmp_path)
    path = Path(state.last_good_path(_config(tmp_path), "default", ZONE))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 300])  # the head intact, the tail cut
    _, event = _start(tmp_path)
    assert event.outcome is LoadOutcome.LOADED
    assert event.journal_note is not None and "moved to" in event.journal_note
    assert path.read_bytes() == whole, "the same version written again"


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


@pytest.mark.timeout(120)
def test_a_real_restart_on_a_cut_file_serves_the_published_version(lab: Lab) -> None:
    text = zone_text("p.test", 3, extra=HOSTS)
    zone = lab.write("p.zone", text)
    options = {"watch": False, "state_dir": str(lab.dir / "state")}
    zones = [{"name": "p.test", "file": str(zone), "allow_transfer": [HOST]}]
    port = free_port()
    first = lab.start("first run", zones, options, port=port)
    published = axfr_lines(port, "p.test")
    assert len(published) == 64
    first.kill()
    zone.write_text(text[: text.index("h30 ")])
    second = lab.start("after kill -9", zones, options, port=port)
    line = lab.wait_log(second, r"not reloaded: .*serial 3 not increased, content changed", 5)
    lab.check("last-good copy of serial 3 serves" in line, line)
    lab.check(soa_serial(port, "p.test") == 3, "serial 3 serves")
    lab.check(axfr_lines(port, "p.test") == published, "the published content, not the cut file")
