"""Serial policies (zone key ``serial:``): the serial authd serves on a content change.

``keep`` (the default) serves the file's serial and refuses changed content
without an increase (``test_serial_reload.py``).  ``increment``, ``unixtime``
and ``dateserial`` ignore the file's serial after the first load and serve
their own on each content change; the file is never written back.  Every
serial they produce is an RFC 1982 increase over the one served before, so
secondaries follow, and after a restart authd never goes below the last
serial of the IXFR journal.

Pure tables for ``policy_serial`` and ``load_one``, then one end-to-end test
with a real server restarted on the same state folder.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.serial
import pytest
from reloadkit import Lab, addresses, lines, running_lab, soa_serial, zone_text

from authd.build import LoadOutcome, load_one
from authd.config import SerialPolicy, ZoneConfig
from authd.serial import policy_serial

INC, UNIX, DATE = SerialPolicy.INCREMENT, SerialPolicy.UNIXTIME, SerialPolicy.DATESERIAL
MAX = 2**32 - 1


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def at(year: int, month: int, day: int, hour: int = 12) -> float:
    """A UTC time as seconds since the epoch."""
    return float(calendar.timegm((year, month, day, hour, 0, 0)))


JUNE_1 = at(2024, 6, 1)


@dataclass(frozen=True)
class Case:
    id: str
    policy: SerialPolicy
    old: int
    now: float
    new: int


CASES = [
    Case("increment", INC, 5, JUNE_1, 6),
    Case("increment-ignores-the-clock", INC, 5, at(2030, 1, 1), 6),
    Case("increment-wraps-past-0", INC, MAX, JUNE_1, 1),  # 0 reads as unset: BIND skips it
    Case("increment-from-zero", INC, 0, JUNE_1, 1),
    Case("increment-2^31-1", INC, 2**31 - 1, JUNE_1, 2**31),
    Case("unixtime", UNIX, 5, JUNE_1, int(JUNE_1)),
    Case("unixtime-same-second-is-old+1", UNIX, int(JUNE_1), JUNE_1, int(JUNE_1) + 1),
    Case("unixtime-never-below-old", UNIX, int(JUNE_1) + 1000, JUNE_1, int(JUNE_1) + 1001),
    Case("unixtime-old-is-max", UNIX, MAX, JUNE_1, int(JUNE_1)),  # RFC 1982: an increase
    Case("unixtime-past-2^32-wraps", UNIX, 100, 2.0**32 + 50, 101),  # 50 is not above 100
    Case("unixtime-past-2^32-wraps-up", UNIX, 10, 2.0**32 + 50, 50),
    Case("unixtime-2^31-away-is-old+1", UNIX, 1, 2.0**31 + 1, 2),  # undefined: not an increase
    Case("dateserial-first-of-the-day", DATE, 2024053107, JUNE_1, 2024060100),
    Case("dateserial-same-day-plus-1", DATE, 2024060100, JUNE_1, 2024060101),
    Case("dateserial-same-day-again", DATE, 2024060141, JUNE_1, 2024060142),
    Case("dateserial-new-day-resets", DATE, 2024060141, at(2024, 6, 2, 0), 2024060200),
    Case("dateserial-new-year", DATE, 2024123105, at(2025, 1, 1, 0), 2025010100),
    Case("dateserial-99-runs-into-tomorrow", DATE, 2024060199, JUNE_1, 2024060200),
    Case("dateserial-never-below-old", DATE, 2030010100, JUNE_1, 2030010101),
    Case("dateserial-from-a-small-serial", DATE, 1, JUNE_1, 2024060100),
    Case("dateserial-wraps-from-max", DATE, MAX, JUNE_1, 2024060100),
    Case("dateserial-old-near-max", DATE, MAX - 5, JUNE_1, 2024060100),
    Case("dateserial-2^31-away-is-old+1", DATE, (2024060100 - 2**31) % 2**32, JUNE_1,
         (2024060100 - 2**31) % 2**32 + 1),  # 2024060100 is exactly 2^31 away: undefined
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy_serial(case: Case) -> None:
    got = policy_serial(case.policy, case.old, case.now)
    assert got == case.new
    assert 0 <= got <= MAX
    assert dns.serial.Serial(got) > dns.serial.Serial(case.old), "always an RFC 1982 increase"


@pytest.mark.parametrize("policy", [INC, UNIX, DATE])
@pytest.mark.parametrize("old", [0, 1, 2**31 - 1, 2**31, 2**31 + 1, MAX - 1, MAX, 2024060100])
@pytest.mark.parametrize("now", [0.0, JUNE_1, 2.0**31, 2.0**32 - 1, 2.0**32 + 7])
def test_policy_serial_always_increases(policy: SerialPolicy, old: int, now: float) -> None:
    got = policy_serial(policy, old, now)
    assert 0 < got <= MAX, "never 0: many tools read it as unset (soa-serial-zero)"
    assert dns.serial.Serial(got) > dns.serial.Serial(old)


# -- load_one under each policy -----------------------------------------------------------

ORIGIN = dns.name.from_text("p.test.")


def _zc(path: Path, policy: SerialPolicy) -> ZoneConfig:
    return ZoneConfig(ORIGIN, str(path), "zones[0]", serial=policy)


def _load(path, policy, text, old=None, now=JUNE_1, floor=None):  # type: ignore[no-untyped-def]
    path.write_text(text)
    return load_one("default", _zc(path, policy), old, now, floor)


EXPECTED_AFTER_CHANGE = {
    # policy -> the serial served after a content change from file serial 1
    INC: 2,
    UNIX: int(JUNE_1),
    DATE: 2024060100,
}


@pytest.mark.parametrize("policy", [INC, UNIX, DATE], ids=lambda p: p.value)
def test_load_one_content_change_serves_the_policy_serial(tmp_path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.zone"
    first, event = _load(path, policy, zone_text("p.test", 1))
    assert event.outcome is LoadOutcome.LOADED and first is not None
    assert first.serial == 1, "the first load serves the file's serial"

    # Content changed, file serial unchanged: authd's serial, not a refusal.
    second, event = _load(path, policy, zone_text("p.test", 1, www="192.0.2.2"), first)
    assert event.outcome is LoadOutcome.LOADED, event.reason
    assert second is not None and second.serial == EXPECTED_AFTER_CHANGE[policy]
    assert event.serial == second.serial
    assert second.soa[0].serial == second.serial
    assert second.negative_soa[0].serial == second.serial, "negative answers carry it too"
    assert path.read_text() == zone_text("p.test", 1, www="192.0.2.2"), "file not written back"

    # Same content again (even with another file serial): unchanged, same object.
    for file_serial in (1, 100, 0):
        third, event = _load(
            path, policy, zone_text("p.test", file_serial, www="192.0.2.2"), second
        )
        assert event.outcome is LoadOutcome.UNCHANGED
        assert third is second and event.serial == second.serial

    # Another change with a file serial far above: still the policy's serial.
    fourth, event = _load(path, policy, zone_text("p.test", 4000000000, www="192.0.2.4"), second)
    assert event.outcome is LoadOutcome.LOADED
    assert fourth is not None
    assert fourth.serial == policy_serial(policy, second.serial, JUNE_1)
    # A decreased file serial does not matter either.
    fifth, event = _load(path, policy, zone_text("p.test", 0, www="192.0.2.5"), fourth)
    assert event.outcome is LoadOutcome.LOADED
    assert fifth is not None and fifth.serial == policy_serial(policy, fourth.serial, JUNE_1)


@pytest.mark.parametrize("policy", [INC, UNIX, DATE], ids=lambda p: p.value)
def test_load_one_only_comments_changed_is_unchanged(tmp_path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.zone"
    first, _ = _load(path, policy, zone_text("p.test", 1))
    again, event = _load(path, policy, zone_text("p.test", 1, comment="edited"), first)
    assert event.outcome is LoadOutcome.UNCHANGED and again is first


@pytest.mark.parametrize("policy", [INC, UNIX, DATE], ids=lambda p: p.value)
def test_load_one_a_broken_file_keeps_the_old_version(tmp_path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.zone"
    first, _ = _load(path, policy, zone_text("p.test", 1))
    text = zone_text("p.test", 1) + "bad A not-an-address\n"
    kept, event = _load(path, policy, text, first)
    assert event.outcome is LoadOutcome.KEPT_OLD and kept is first
    assert event.reason is not None and event.reason.startswith(f"{path}:{text.count(chr(10))}: ")


@pytest.mark.parametrize("policy", [INC, UNIX, DATE], ids=lambda p: p.value)
def test_first_load_after_a_restart_never_goes_below_the_journal(tmp_path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.zone"
    # The journal ended at 2030010105; the file still says 1.
    floor = 2030010105
    version, event = _load(path, policy, zone_text("p.test", 1), None, JUNE_1, floor)
    assert event.outcome is LoadOutcome.LOADED and version is not None
    assert version.serial == policy_serial(policy, floor, JUNE_1)
    assert dns.serial.Serial(version.serial) > dns.serial.Serial(floor)
    # A file serial already above the floor is served as it is.
    version, _ = _load(path, policy, zone_text("p.test", floor + 10), None, JUNE_1, floor)
    assert version is not None and version.serial == floor + 10


def test_keep_ignores_the_floor(tmp_path: Path) -> None:
    # ``keep`` serves the file as written: the operator owns the serial.
    path = tmp_path / "p.zone"
    version, _ = _load(path, SerialPolicy.KEEP, zone_text("p.test", 1), None, JUNE_1, 50)
    assert version is not None and version.serial == 1


# -- end to end: increment, edits without a serial change, a restart ---------------------


def test_increment_end_to_end_survives_a_restart(lab: Lab) -> None:
    path = lab.write("p.zone", zone_text("p.test", 1))
    state = lab.dir / "state"
    zones = [{"name": "p.test", "file": str(path), "serial": "increment"}]
    options = {"state_dir": str(state)}
    first = lab.start("authd first run", zones, options)
    lab.check(soa_serial(first.port, "p.test") == 1, "serial 1 at start")

    path.write_text(zone_text("p.test", 1, www="192.0.2.2"))  # serial not touched
    lab.wait_serial(first, "p.test", 2, 2.0)
    lab.check(addresses(first.port, "www.p.test") == ["192.0.2.2"], "the edit is served")
    path.write_text(zone_text("p.test", 1, www="192.0.2.3"))
    lab.wait_serial(first, "p.test", 3, 2.0)
    lab.check(path.read_text() == zone_text("p.test", 1, www="192.0.2.3"), "file not rewritten")
    lab.check(not first.read_log().count("not reloaded"), "nothing refused")
    before = 3
    first.stop()
    lab.check(first.process.returncode == 0, "clean stop")

    second = lab.start("authd second run", zones, options)
    served = soa_serial(second.port, "p.test")
    lab.check(
        served is not None and dns.serial.Serial(served) >= dns.serial.Serial(before),
        f"after the restart the serial ({served}) is not below {before}",
    )
    lab.check(addresses(second.port, "www.p.test") == ["192.0.2.3"], "the file's content")
    print(f"served before the restart: {before}, after: {served}")

    # Editing goes on from there.
    path.write_text(zone_text("p.test", 1, www="192.0.2.4"))
    assert served is not None
    lab.wait_serial(second, "p.test", (served + 1) % 2**32, 2.0)


def test_a_restart_without_changes_keeps_the_serial_and_the_journal(lab: Lab) -> None:
    # With ``serial: increment`` the file keeps its own serial (1) while authd
    # served 2, 3...; after a restart with the file unchanged, the last served
    # serial would be the right one to serve again (the secondaries have it and
    # the journal leads to it).  Regression: the floor rule served floor + 1 and
    # the journal, ending at the floor, was discarded ("journal ends at serial 3
    # but the zone is at 4"), so every restart forced AXFR on the secondaries.
    path = lab.write("p.zone", zone_text("p.test", 1))
    zones = [{"name": "p.test", "file": str(path), "serial": "increment"}]
    options = {"state_dir": str(lab.dir / "state")}
    first = lab.start("authd first run", zones, options)
    path.write_text(zone_text("p.test", 1, www="192.0.2.2"))
    lab.wait_serial(first, "p.test", 2, 2.0)
    first.stop()
    second = lab.start("authd second run", zones, options)
    lab.check(not lines(second, r"journal .* discarded"), "the journal is kept")
    lab.check(soa_serial(second.port, "p.test") == 2, "serial 2 again")
