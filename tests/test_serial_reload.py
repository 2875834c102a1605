"""Reloading a zone file: the serial policy of ``authd.build.load_one``.

A new file is published when its serial increased (RFC 1982 arithmetic, so
4294967295 -> 1 is an increase); the same serial with the same content is
"unchanged"; changed content without a serial increase is refused and the old
version keeps serving, with a reason naming the file and both serials; a file
that no longer parses keeps the old version too.  ``build_snapshot`` carries
the old versions over into a new snapshot, whose cache starts empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rcode
import pytest
from zonekit import ask

from authd.build import LoadOutcome, build_snapshot, load_one
from authd.config import config_from_dict

ORIGIN = dns.name.from_text("r.test.")


def zone(serial: int, address: str = "192.0.2.1", comment: str = "") -> str:
    return f"""; {comment}
$ORIGIN r.test.
$TTL 300
@    SOA  ns hm {serial} 7200 3600 1209600 300
@    NS   ns
ns   A    192.0.2.53
www  A    {address}
"""


def _zc(path: Path):
    from authd.config import ZoneConfig

    return ZoneConfig(ORIGIN, str(path), "zones[0]")


def _load(path: Path, text: str, old=None):
    path.write_text(text)
    return load_one("default", _zc(path), old)


@dataclass(frozen=True)
class Step:
    id: str
    old: int
    new_text: str
    outcome: LoadOutcome
    serving: int  # the serial that serves afterwards
    reason: str | None = None  # with {file}


STEPS = [
    Step("serial-increased", 1, zone(2, "192.0.2.2"), LoadOutcome.LOADED, 2),
    Step("serial-increased-same-content", 1, zone(2), LoadOutcome.LOADED, 2),
    Step("unchanged", 1, zone(1), LoadOutcome.UNCHANGED, 1),
    Step("unchanged-only-comments-differ", 1, zone(1, comment="edited"), LoadOutcome.UNCHANGED, 1),
    Step("changed-same-serial", 1, zone(1, "192.0.2.2"), LoadOutcome.KEPT_OLD, 1,
         "{file}: serial 1 not increased, content changed; keeping serial 1"),
    Step("changed-serial-decreased", 5, zone(4, "192.0.2.2"), LoadOutcome.KEPT_OLD, 5,
         "{file}: serial 4 decreased from 5 (RFC 1982), content changed; keeping serial 5"),
    Step("wrap-around-is-an-increase", 4294967295, zone(1, "192.0.2.2"), LoadOutcome.LOADED, 1),
    Step("wrap-around-from-zero", 4294967295, zone(0, "192.0.2.2"), LoadOutcome.LOADED, 0),
    Step("largest-increase", 1, zone(2**31, "192.0.2.2"), LoadOutcome.LOADED, 2**31),
    Step("exactly-2^31-away", 1, zone(2**31 + 1, "192.0.2.2"), LoadOutcome.KEPT_OLD, 1,
         "{file}: serial 2147483649 is exactly 2^31 away from 1, which RFC 1982 leaves "
         "undefined (neither greater nor smaller), content changed; keeping serial 1"),
    Step("more-than-2^31-is-a-decrease", 10, zone(2**31 + 20, "192.0.2.2"),
         LoadOutcome.KEPT_OLD, 10,
         "{file}: serial 2147483668 is 2147483658 above 10: a step of 2^31 or more, which "
         "RFC 1982 reads as a decrease (serials compare within half the 32-bit space); raise "
         "it in steps smaller than 2^31, letting secondaries catch up between them, content "
         "changed; keeping serial 10"),
    Step("syntax-error", 1, zone(2) + "www A not-an-address\n", LoadOutcome.KEPT_OLD, 1),
    Step("check-error", 1, zone(2) + "www CNAME ns\n", LoadOutcome.KEPT_OLD, 1),
]  # fmt: skip


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_reload_step(tmp_path: Path, step: Step) -> None:
    path = tmp_path / "r.zone"
    old, first = _load(path, zone(step.old))
    assert first.outcome is LoadOutcome.LOADED and old is not None
    new, event = _load(path, step.new_text, old)
    assert event.outcome is step.outcome, event.reason
    assert new is not None and new.serial == step.serving
    assert event.serial == step.serving
    if step.outcome in (LoadOutcome.UNCHANGED, LoadOutcome.KEPT_OLD):
        assert new is old, "the old version object keeps serving"
    if step.reason is not None:
        assert event.reason == step.reason.format(file=path)
    if step.outcome is LoadOutcome.KEPT_OLD:
        assert event.reason is not None and str(path) in event.reason


def test_syntax_error_reason_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.zone"
    old, _ = _load(path, zone(1))
    text = zone(2) + "www A not-an-address\n"
    _, event = _load(path, text, old)
    line = text.count("\n")  # the bad line is the last one
    assert event.reason is not None and event.reason.startswith(f"{path}:{line}: ")


def test_check_error_reason_names_the_check(tmp_path: Path) -> None:
    path = tmp_path / "r.zone"
    old, _ = _load(path, zone(1))
    _, event = _load(path, zone(2) + "www CNAME ns\n", old)
    assert event.reason is not None and event.reason.endswith("[cname-and-other-data]")
    assert any(f.id == "cname-and-other-data" for f in event.findings)


def test_first_load_failure_has_nothing_to_keep(tmp_path: Path) -> None:
    path = tmp_path / "r.zone"
    version, event = _load(path, "$ORIGIN r.test.\n@ 300 SOA ns hm 1 2 3 4 5\n")
    assert version is None
    assert event.outcome is LoadOutcome.FAILED
    assert event.serial is None


def test_vanished_file_keeps_the_old_version(tmp_path: Path) -> None:
    path = tmp_path / "r.zone"
    old, _ = _load(path, zone(1))
    path.unlink()
    new, event = load_one("default", _zc(path), old)
    assert new is old
    assert event.outcome is LoadOutcome.KEPT_OLD
    assert event.reason is not None and event.reason.startswith(f"{path}: ")


def test_serial_decrease_without_content_change_does_not_claim_a_change(tmp_path: Path) -> None:
    # Only the serial went down: the old version stays, and the reason must not
    # say the content changed (it did not).
    path = tmp_path / "r.zone"
    old, _ = _load(path, zone(5))
    new, event = _load(path, zone(4), old)
    assert new is old
    assert event.outcome in (LoadOutcome.KEPT_OLD, LoadOutcome.UNCHANGED)
    assert "content changed" not in (event.reason or "")


def test_build_snapshot_carries_old_versions_and_starts_a_new_cache(tmp_path: Path) -> None:
    (tmp_path / "r.zone").write_text(zone(1))
    config = config_from_dict(
        {"listen": [{"address": "127.0.0.1"}], "zones": [{"name": "r.test", "file": "r.zone"}]},
        None,
        str(tmp_path),
    )
    snap1, events = build_snapshot(config, None, 0)
    assert [e.outcome for e in events] == [LoadOutcome.LOADED]
    assert ask(snap1, "www.r.test.", "A").answer[0][0].to_text() == "192.0.2.1"
    assert snap1.cache

    (tmp_path / "r.zone").write_text(zone(1, "192.0.2.9"))  # serial not raised
    snap2, events = build_snapshot(config, snap1, 1)
    assert [e.outcome for e in events] == [LoadOutcome.KEPT_OLD]
    assert snap2.generation == 1 and len(snap2.cache) == 0
    assert snap2.views[0].zones[ORIGIN] is snap1.views[0].zones[ORIGIN]
    assert ask(snap2, "www.r.test.", "A").answer[0][0].to_text() == "192.0.2.1"

    (tmp_path / "r.zone").write_text(zone(2, "192.0.2.9"))
    snap3, events = build_snapshot(config, snap2, 2)
    assert [e.outcome for e in events] == [LoadOutcome.LOADED]
    assert ask(snap3, "www.r.test.", "A").answer[0][0].to_text() == "192.0.2.9"
    # The old snapshot is untouched: queries holding it still see serial 1.
    assert ask(snap2, "www.r.test.", "A").answer[0][0].to_text() == "192.0.2.1"

    (tmp_path / "r.zone").write_text("garbage that is not a zone\n")
    snap4, events = build_snapshot(config, snap3, 3)
    assert [e.outcome for e in events] == [LoadOutcome.KEPT_OLD]
    assert ask(snap4, "www.r.test.", "A").answer[0][0].to_text() == "192.0.2.9"
    assert ask(snap4, "r.test.", "SOA").rcode() == dns.rcode.NOERROR
