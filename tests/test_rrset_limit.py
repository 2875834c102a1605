"""Records per RRset (issue 16): ``max_records_per_rrset``, like BIND's max-records-per-type.

One RRset over the limit refuses the zone: a zone file with ``file:line`` at
the record that goes over (at start, on a hot reload that keeps the old
version serving, and in ``authd check``), and a transfer from a real primary
(Knot), which the secondary refuses while its old version keeps serving.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest
import yaml
from reloadkit import Lab, addresses, running_lab, soa_serial, zone_text

from authd.cli import main
from authd.config import ConfigError, config_from_dict
from authd.errors import ZoneError
from authd.limits import DEFAULT_MAX_RECORDS_PER_RRSET
from authd.zonefile import parse_zone_file, parse_zone_text

pytestmark = pytest.mark.timeout(90)

ORIGIN = dns.name.from_text("r.test.")
HEAD_LINES = 7  # zone_text's lines: comment, $ORIGIN, $TTL, SOA, NS, ns, www


def _big(count: int, owner: str = "big") -> str:
    return "".join(f"{owner} A 10.0.{i // 256}.{i % 256}\n" for i in range(count))


def test_the_default_admits_the_limit_and_refuses_one_more(tmp_path: Path) -> None:
    path = tmp_path / "r.zone"
    path.write_text(zone_text("r.test", 1, extra=_big(DEFAULT_MAX_RECORDS_PER_RRSET)))
    assert len(parse_zone_file(str(path), ORIGIN)) == HEAD_LINES - 3 + DEFAULT_MAX_RECORDS_PER_RRSET
    path.write_text(zone_text("r.test", 1, extra=_big(DEFAULT_MAX_RECORDS_PER_RRSET + 1)))
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    line = HEAD_LINES + DEFAULT_MAX_RECORDS_PER_RRSET + 1  # the record that goes over
    assert str(err.value) == (
        f"{path}:{line}: more than {DEFAULT_MAX_RECORDS_PER_RRSET} records in the RRset"
        " big.r.test. A (max_records_per_rrset)"
    )


def test_owners_differing_in_case_are_one_rrset() -> None:
    text = zone_text("r.test", 1, extra="BIG A 10.0.0.1\nbig A 10.0.0.2\nBig A 10.0.0.3\n")
    assert len(parse_zone_text(text, ORIGIN)) == 7
    from authd.zonefile import _Parser

    with pytest.raises(ZoneError, match=r"^<text>:10: more than 2 records in the RRset"):
        _Parser(max_records_per_rrset=2).parse(text.split("\n"), ORIGIN, "<text>")


def test_records_spread_over_includes_are_counted_together(tmp_path: Path) -> None:
    inc = tmp_path / "more.inc"
    inc.write_text("www A 192.0.2.7\nwww A 192.0.2.8\n")
    path = tmp_path / "r.zone"
    path.write_text(zone_text("r.test", 1, extra=f"$INCLUDE {inc}\nwww AAAA 2001:db8::1\n"))
    assert len(parse_zone_file(str(path), ORIGIN, max_records_per_rrset=3)) == 7
    with pytest.raises(ZoneError, match=rf"^{inc}:2: more than 2 records in the RRset www"):
        parse_zone_file(str(path), ORIGIN, max_records_per_rrset=2)


def test_other_types_and_owners_are_separate_rrsets() -> None:
    text = zone_text("r.test", 1, extra=_big(3) + _big(3, "other") + "big AAAA 2001:db8::1\n")
    assert len(parse_zone_text(text, ORIGIN)) == 11
    with pytest.raises(ZoneError, match=r"big.r.test. A"):
        from authd.zonefile import _Parser

        _Parser(max_records_per_rrset=2).parse(text.split("\n"), ORIGIN, "<text>")


def test_rrsigs_count_per_covered_type() -> None:
    from authd.zonefile import first_over_rrset_limit, rrset_limit_message

    sig = "A 13 2 300 20300101000000 20200101000000 1 r.test. AAAA"
    text = zone_text(
        "r.test", 1, extra=f"www RRSIG {sig}\nwww RRSIG {sig.replace('A 13', 'NS 13', 1)}\n"
    )
    records = parse_zone_text(text, ORIGIN)
    assert first_over_rrset_limit(records, 1) is None  # one RRSIG over A, one over NS
    twice = [*records, records[-2]]
    over = first_over_rrset_limit(twice, 1)
    assert over == len(twice) - 1
    message = rrset_limit_message(twice[over][0], twice[over][2], 1)
    assert (
        message
        == "more than 1 records in the RRset www.r.test. RRSIG covering A (max_records_per_rrset)"
    )


def test_the_limit_comes_from_the_options_and_the_zone(tmp_path: Path) -> None:
    zones = [
        {"name": "a.test", "file": "a"},
        {"name": "b.test", "file": "b", "max_records_per_rrset": 7},
    ]
    for name in "ab":
        (tmp_path / name).write_text("")
    config = config_from_dict(
        {"options": {"max_records_per_rrset": 99}, "zones": zones}, None, str(tmp_path)
    )
    assert [z.max_records_per_rrset for z in config.views[0].zones] == [99, 7]
    plain = config_from_dict({"zones": zones[:1]}, None, str(tmp_path))
    assert plain.views[0].zones[0].max_records_per_rrset == DEFAULT_MAX_RECORDS_PER_RRSET
    with pytest.raises(ConfigError, match=r"^zones\[0\]\.max_records_per_rrset: "):
        config_from_dict({"zones": [{**zones[0], "max_records_per_rrset": 0}]}, None, str(tmp_path))
    with pytest.raises(ConfigError, match=r"^options\.max_records_per_rrset: "):
        config_from_dict(
            {"options": {"max_records_per_rrset": "x"}, "zones": zones}, None, str(tmp_path)
        )


def _config(tmp_path: Path, zone: Path, limit: int | None) -> Path:
    entry: dict[str, object] = {"name": "r.test", "file": str(zone)}
    if limit is not None:
        entry["max_records_per_rrset"] = limit
    path = tmp_path / "authd.yaml"
    path.write_text(
        yaml.safe_dump({"zones": [entry], "options": {"state_dir": str(tmp_path / "s")}})
    )
    return path


def test_startup_and_authd_check_refuse_the_file_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = tmp_path / "r.zone"
    zone.write_text(zone_text("r.test", 1, extra=_big(5)))
    at = f"{zone}:{HEAD_LINES + 5}: "
    why = "more than 4 records in the RRset big.r.test. A (max_records_per_rrset)"
    config = _config(tmp_path, zone, 4)
    assert main(["serve", "-c", str(config), "--check-config"]) == 1
    assert at + why in capsys.readouterr().err
    done = subprocess.run(
        [sys.executable, "-m", "authd", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{at}error: {why} [syntax]" in done.stdout
    # The per-zone override admits it; without one the default does.
    assert main(["serve", "-c", str(_config(tmp_path, zone, 5)), "--check-config"]) == 0
    assert main(["serve", "-c", str(_config(tmp_path, zone, None)), "--check-config"]) == 0


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def test_a_hot_reload_over_the_limit_keeps_the_old_version(lab: Lab) -> None:
    path = lab.write("r.zone", zone_text("r.test", 1, extra=_big(3)))
    server = lab.start("authd", [{"name": "r.test", "file": str(path), "max_records_per_rrset": 3}])
    path.write_text(zone_text("r.test", 2, www="192.0.2.2", extra=_big(4)))
    line = lab.wait_log(server, r"more than 3 records in the RRset big\.r\.test\. A", 10)
    lab.check(f"{path}:{HEAD_LINES + 4}" in line, f"file:line in {line!r}")
    lab.check(soa_serial(server.port, "r.test") == 1, "the old serial keeps serving")
    lab.check(len(addresses(server.port, "big.r.test")) == 3, "the old RRset keeps serving")
    path.write_text(zone_text("r.test", 3, extra=_big(2)))
    lab.wait_serial(server, "r.test", 3, 10)


def test_a_knot_primary_over_the_limit_is_refused_and_the_old_version_serves(lab: Lab) -> None:
    from harness.peers import HOST, free_port, start_knot

    source = lab.write("r.test.zone", zone_text("r.test", 1, extra=_big(3)))
    port = free_port()
    sections = (
        f"remote:\n  - id: authd\n    address: {HOST}@{port}\n"
        f"acl:\n  - id: transfer\n    address: {HOST}\n    action: transfer\n"
    )
    zone_options = {"r.test": "    acl: transfer\n    notify: authd\n"}
    knot = lab.add(
        "knot primary", start_knot({"r.test": source}, sections=sections, zone_options=zone_options)
    )
    secondary = lab.start(
        "secondary",
        [
            {
                "name": "r.test",
                "type": "secondary",
                "max_records_per_rrset": 3,
                "primaries": [{"address": HOST, "port": knot.port}],
            }
        ],
        {"watch": False, "min_refresh": 1, "min_retry": 1},
        port=port,
    )
    lab.wait_serial(secondary, "r.test", 1, 30)
    (knot.workdir / "zones" / source.name).write_text(zone_text("r.test", 2, extra=_big(4)))
    knot.reload()
    lab.wait_serial(knot, "r.test", 2, 30)
    line = lab.wait_log(secondary, r"transfer of r\.test\. failed", 30)
    lab.check("more than 3 records in the RRset big.r.test. A" in line, line)
    lab.check(soa_serial(secondary.port, "r.test") == 1, "the old serial keeps serving")
    lab.check(len(addresses(secondary.port, "big.r.test")) == 3, "the old RRset keeps serving")


def test_an_ixfr_that_grows_an_rrset_over_the_limit_is_refused() -> None:
    """Only the RRsets an IXFR adds to are counted, in the version it leads to."""
    import dns.rdata

    from authd import changeset, xfr_in
    from authd.zone import compile_zone

    def version(serial: int, extra: str):
        records = parse_zone_text(zone_text("r.test", serial, extra=extra), ORIGIN)
        soa = next(r for r in records if r[2].rdtype == dns.rdatatype.SOA)
        result = compile_zone(ORIGIN, records, "<text>")
        assert result.version is not None
        return result.version, changeset.RR(soa[0], soa[1], soa[2])

    old, old_soa = version(1, _big(3))
    _, new_soa = version(2, "")
    big = dns.name.from_text("big.r.test.")
    rd = dns.rdata.from_text("IN", "A", "10.9.9.9")
    step = changeset.Changeset(old_soa, new_soa, (), (changeset.RR(big, 300, rd),))
    grown = changeset.apply(old, step).version
    assert grown is not None
    assert xfr_in.applied_rrset_limit_problem(grown, [step], 4) is None
    assert xfr_in.applied_rrset_limit_problem(grown, [step], 3) == (
        "more than 3 records in the RRset big.r.test. A (max_records_per_rrset)"
    )
    full = [old_soa, *(changeset.RR(big, 300, r) for r in grown.nodes[big][dns.rdatatype.A])]
    assert xfr_in.rrset_limit_problem(full, 4) is None
    assert "more than 3 records in the RRset big.r.test. A" in str(
        xfr_in.rrset_limit_problem(full, 3)
    )
