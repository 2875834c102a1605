"""A secondary's stored copy carries a checksum, checked at start (issue 16).

Regressions: ``torn_copy_was_served_at_its_serial`` (a copy cut at a line end
served 701 of 2,055 records with nothing logged) and
``altered_copy_was_served`` (one rdata changed, IXFRs applied on top of it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dns.name
import pytest
from reloadkit import Lab, axfr_lines, running_lab, soa_serial, zone_text
from zonekit import zone_from_text

from authd import xfr_in
from authd.adapters import state
from authd.build import LoadOutcome, plan_snapshot
from authd.config import config_from_dict
from harness.peers import HOST, free_port

ZONE = dns.name.from_text("s.test.")
HOSTS = "".join(f"h{i} A 192.0.2.{i % 250 + 1}\n" for i in range(40))


def _secondary_config(tmp_path: Path, copy: Path):  # type: ignore[no-untyped-def]
    zone = {"name": "s.test", "type": "secondary", "file": str(copy)}
    zone["primaries"] = [{"address": HOST, "port": 53}]
    return config_from_dict(
        {"options": {"state_dir": "state"}, "zones": [zone]}, None, str(tmp_path)
    )


def _start(tmp_path: Path, copy: Path):  # type: ignore[no-untyped-def]
    config = _secondary_config(tmp_path, copy)
    return state.build_snapshot(config, None, 1)


def _written(tmp_path: Path) -> Path:
    copy = tmp_path / "s.test.zone"
    state.write_copy(str(copy), zone_from_text(zone_text("s.test", 7, extra=HOSTS), ZONE))
    return copy


def test_a_whole_copy_serves_at_start(tmp_path: Path) -> None:
    copy = _written(tmp_path)
    assert copy.read_text().startswith(xfr_in.COPY_HEADER)
    snapshot, events = _start(tmp_path, copy)
    assert events[0].outcome is LoadOutcome.LOADED and events[0].serial == 7
    assert events[0].records == 44


@pytest.mark.parametrize("cut", ["line end", "mid line", "checksum line"])
def test_torn_copy_was_served_at_its_serial(tmp_path: Path, cut: str) -> None:
    copy = _written(tmp_path)
    data = copy.read_bytes()
    if cut == "line end":
        torn = data[: data.index(b"\nh20.s.test.") + 1]
    elif cut == "mid line":
        torn = data[: data.index(b"\nh20.s.test.") + 4]
    else:
        torn = data[:-10]
    copy.write_bytes(torn)
    snapshot, events = _start(tmp_path, copy)
    event = events[0]
    assert event.outcome is LoadOutcome.FAILED and event.awaiting_transfer
    assert event.reason is not None and f"moved to {copy}.corrupt" in event.reason, event.reason
    assert "awaiting a full transfer" in event.reason
    assert snapshot.view_zone("default", ZONE) is None, "nothing wrong is served"
    assert not copy.exists() and Path(f"{copy}.corrupt").read_bytes() == torn


def test_altered_copy_was_served(tmp_path: Path) -> None:
    copy = _written(tmp_path)
    copy.write_text(copy.read_text().replace("192.0.2.21\n", "192.0.2.99\n", 1))
    _, events = _start(tmp_path, copy)
    assert events[0].outcome is LoadOutcome.FAILED
    assert events[0].reason is not None and "checksum mismatch" in events[0].reason


def test_a_copy_from_an_older_authd_without_checksum_still_serves(tmp_path: Path) -> None:
    # Upgrade path: copies written before the checksum are plain zone text.
    copy = tmp_path / "s.test.zone"
    version = zone_from_text(zone_text("s.test", 7, extra=HOSTS), ZONE)
    copy.write_text("".join(xfr_in.zone_text(version)))
    _, events = _start(tmp_path, copy)
    assert events[0].outcome is LoadOutcome.LOADED and events[0].serial == 7


def test_a_directory_in_the_copys_place_is_reported_at_start(tmp_path: Path) -> None:
    copy = tmp_path / "s.test.zone"
    copy.mkdir()
    _, events = _start(tmp_path, copy)
    assert events[0].outcome is LoadOutcome.FAILED and events[0].awaiting_transfer
    assert events[0].reason is not None and "is a directory" in events[0].reason
    assert copy.is_dir(), "not ours to remove"


def test_the_pure_build_leaves_the_copy_alone(tmp_path: Path) -> None:
    # --check-config builds without the state folder: it never moves a copy.
    copy = _written(tmp_path)
    copy.write_bytes(copy.read_bytes()[:-10])
    plan_snapshot(_secondary_config(tmp_path, copy), None, 1)
    assert copy.exists()


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


@pytest.mark.timeout(120)
def test_a_torn_copy_is_replaced_by_a_full_transfer(lab: Lab) -> None:
    """A real restart on a torn copy: logged loudly, moved aside, AXFR, the primary's content."""
    zone = lab.write("s.zone", zone_text("s.test", 9, extra=HOSTS))
    copy = lab.dir / "copy" / "s.test.zone"
    state.write_copy(str(copy), zone_from_text(zone_text("s.test", 9, extra=HOSTS), ZONE))
    copy.write_bytes(copy.read_bytes()[:300])  # cut mid-record: 9 at a wrong content
    primary_port = free_port()
    options = {"watch": False, "min_refresh": 1, "min_retry": 1}
    primary = lab.start(
        "primary",
        [{"name": "s.test", "file": str(zone), "allow_transfer": [HOST]}],
        options,
        port=primary_port,
    )
    secondary = lab.start(
        "secondary",
        [
            {
                "name": "s.test",
                "type": "secondary",
                "file": str(copy),
                "primaries": [{"address": HOST, "port": primary_port}],
                "allow_transfer": [HOST],
            }
        ],
        options,
    )
    line = lab.wait_log(secondary, r"stored copy .* moved to .*\.corrupt", 10)
    lab.check("[error]" in line and "no checksum line" in line, line)
    lab.wait_log(secondary, r"transferred: serial 9, 44 records, by AXFR", 30)
    lab.check(soa_serial(secondary.port, "s.test") == 9, "the transferred version serves")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and xfr_in.copy_problem(copy.open("rb")) is not None:
        time.sleep(0.1)
    lab.check(xfr_in.copy_problem(copy.open("rb")) is None, "a whole copy was written")
    ours = axfr_lines(secondary.port, "s.test")
    lab.check(ours == axfr_lines(primary.port, "s.test"), "the same content as the primary")
