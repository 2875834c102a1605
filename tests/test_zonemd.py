"""ZONEMD (RFC 8976): a version whose zone digest does not match is never served.

Loaded files are checked in ``build.load_one``; transfers in the secondary's
fleet, here against BIND as the primary (serving files whose ZONEMD dnspython
computed, or a wrong one): the mismatching version is not published and the
refresh retries it later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.zone
import pytest
from reloadkit import Lab, axfr_lines, running_lab, soa_serial

from authd import zonemd
from authd.build import LoadOutcome, load_one
from authd.config import ZoneConfig, config_from_dict
from authd.errors import ConfigError
from harness.peers import HOST, free_port, start_bind

ORIGIN = dns.name.from_text("z.test.")


def zone_body(serial: int, www: str = "192.0.2.2") -> str:
    # Refresh and retry of 1 s: the secondary asks again soon after a refusal.
    return (
        "$ORIGIN z.test.\n$TTL 300\n"
        f"@ SOA ns hostmaster {serial} 1 1 1209600 300\n"
        "@ NS ns\nns A 192.0.2.1\n"
        f"www A {www}\n" + "".join(f'h{i} TXT "host {i}"\n' for i in range(20))
    )


def with_zonemd(serial: int, www: str = "192.0.2.2", hash_alg: int = 1, wrong: bool = False) -> str:
    """The zone with a ZONEMD dnspython computed (for another content if *wrong*)."""
    body = zone_body(serial, www)
    digest_of = zone_body(serial, "192.0.2.250") if wrong else body
    zone = dns.zone.from_text(digest_of, ORIGIN, relativize=False)
    return body + f"@ ZONEMD {zone.compute_digest(hash_alg).to_text()}\n"


def _load(tmp_path: Path, text: str, verify: bool = True):  # type: ignore[no-untyped-def]
    path = tmp_path / "z.zone"
    path.write_text(text)
    return load_one(
        "default", ZoneConfig(ORIGIN, str(path), "zones[0]", zonemd_verify=verify), None
    )


@pytest.mark.parametrize("hash_alg", [1, 2])
def test_a_matching_zonemd_loads(tmp_path: Path, hash_alg: int) -> None:
    version, event = _load(tmp_path, with_zonemd(4, hash_alg=hash_alg))
    assert event.outcome is LoadOutcome.LOADED and version is not None
    assert zonemd.problem(version) is None


def test_a_mismatching_zonemd_is_refused(tmp_path: Path) -> None:
    version, event = _load(tmp_path, with_zonemd(4, wrong=True))
    assert version is None and event.outcome is LoadOutcome.FAILED
    assert event.reason is not None
    assert "zone z.test. serial 4: ZONEMD mismatch" in event.reason, event.reason


def test_a_zonemd_for_another_serial_is_refused(tmp_path: Path) -> None:
    text = with_zonemd(4).replace("hostmaster 4 ", "hostmaster 5 ")
    _, event = _load(tmp_path, text)
    assert event.outcome is LoadOutcome.FAILED and "ZONEMD mismatch" in str(event.reason)


def test_zonemd_verify_false_loads_a_mismatch(tmp_path: Path) -> None:
    _, event = _load(tmp_path, with_zonemd(4, wrong=True), verify=False)
    assert event.outcome is LoadOutcome.LOADED


def test_an_unsupported_hash_is_served_unverified(tmp_path: Path) -> None:
    # RFC 8976 section 4: no ZONEMD the verifier supports: nothing to check.
    text = zone_body(4) + "@ ZONEMD 4 1 240 " + "ab" * 48 + "\n"
    _, event = _load(tmp_path, text)
    assert event.outcome is LoadOutcome.LOADED


def test_a_reload_with_a_mismatch_keeps_the_old_version(tmp_path: Path) -> None:
    old, _ = _load(tmp_path, with_zonemd(4))
    path = tmp_path / "z.zone"
    path.write_text(with_zonemd(5, www="192.0.2.9", wrong=True))
    version, event = load_one("default", ZoneConfig(ORIGIN, str(path), "zones[0]"), old)
    assert version is old and event.outcome is LoadOutcome.KEPT_OLD and event.serial == 4


def test_zonemd_verify_must_be_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "z.zone").write_text(zone_body(1))
    zone = {"name": "z.test", "file": "z.zone", "zonemd_verify": "no"}
    with pytest.raises(ConfigError, match=r"zones\[0\]\.zonemd_verify: expected true or false"):
        config_from_dict({"zones": [zone]}, None, str(tmp_path))


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


@pytest.mark.timeout(120)
def test_a_mismatching_transfer_from_bind_is_not_published(lab: Lab) -> None:
    zone = lab.dir / "z.zone"
    zone.write_text(with_zonemd(1))
    primary = lab.add(
        "bind",
        start_bind(
            {"z.test": zone},
            free_port(),
            zone_options={"z.test": "notify no; allow-transfer { any; };"},
        ),
    )
    secondary = lab.start(
        "secondary",
        [
            {
                "name": "z.test",
                "type": "secondary",
                "file": str(lab.dir / "copy" / "z.test.zone"),
                "primaries": [{"address": HOST, "port": primary.port}],
                "allow_transfer": [HOST],
            }
        ],
        {"watch": False, "min_refresh": 1, "min_retry": 1},
    )
    lab.wait_serial(secondary, "z.test", 1, 30)
    # BIND serves a serial 2 whose ZONEMD does not match: refused, 1 keeps serving.
    target = primary.workdir / "zones" / zone.name  # BIND's copy of the file
    target.write_text(with_zonemd(2, www="192.0.2.7", wrong=True))
    primary.reload()
    lab.wait("BIND serving serial 2", lambda: soa_serial(primary.port, "z.test") == 2, 30)
    line = lab.wait_log(secondary, r"zone z\.test\. serial 2: ZONEMD mismatch", 30)
    lab.check("serial 1 keeps serving" in line, line)
    lab.check(soa_serial(secondary.port, "z.test") == 1, "the old version serves")
    # The refresh asks again: a second refusal, never a publication.
    after = len(secondary.read_log().splitlines())
    lab.wait_log(secondary, r"serial 2: ZONEMD mismatch", 30, after=after)
    lab.check(soa_serial(secondary.port, "z.test") == 1, "still the old version")
    # A correct serial 3 is published, with BIND's content.
    target.write_text(with_zonemd(3, www="192.0.2.8"))
    primary.reload()
    lab.wait_serial(secondary, "z.test", 3, 30)
    lab.check(
        axfr_lines(secondary.port, "z.test") == axfr_lines(primary.port, "z.test"),
        "the same content as BIND",
    )
