"""Hostile zone files: FIFOs, devices and oversized sources are refused, never read.

A ``$INCLUDE`` of a FIFO used to block start-up and ``authd check`` forever,
and on a hot reload it wedged the reload worker (no later reload, SIGTERM
ignored); ``$INCLUDE /dev/zero`` grew memory without bound.  Each case must
give ``file:line: reason`` at once: in the parser, in ``authd check``, and on
a hot reload of a zone that was serving, which keeps serving and reloads the
next good edit.  Regressions: ``include_of_a_fifo_blocks_forever``,
``include_of_dev_zero_grows_without_bound``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.name
import pytest
from reloadkit import Lab, addresses, running_lab, soa_serial, zone_text

import authd.zonefile as zonefile
from authd.errors import ZoneError
from authd.zonefile import parse_zone_file

pytestmark = pytest.mark.timeout(60)

ORIGIN = dns.name.from_text("h.test.")


def _zone_including(tmp_path: Path, target: str, serial: int = 1) -> Path:
    path = tmp_path / "h.zone"
    path.write_text(zone_text("h.test", serial) + f"$INCLUDE {target}\n")
    return path


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "fifo.inc"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dev-urandom", "directory"])
def test_include_of_a_non_regular_file_is_refused_with_file_and_line(
    tmp_path: Path, kind: str
) -> None:
    target = {
        "fifo": lambda: str(_fifo(tmp_path)),
        "dev-zero": lambda: "/dev/zero",
        "dev-urandom": lambda: "/dev/urandom",
        "directory": lambda: str(tmp_path),
    }[kind]()
    path = _zone_including(tmp_path, target)
    line = path.read_text().count("\n")
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    assert str(err.value) == f"{path}:{line}: not a regular file: {target}"


def test_include_of_a_fifo_blocks_forever(tmp_path: Path) -> None:
    """The top file itself a FIFO, too: refused at once, no writer needed."""
    fifo = _fifo(tmp_path)
    with pytest.raises(ZoneError, match="not a regular file"):
        parse_zone_file(str(fifo), ORIGIN)


def test_zone_sources_over_the_byte_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inc = tmp_path / "big.inc"
    inc.write_text("".join(f"h{i} A 192.0.2.1\n" for i in range(200)))
    path = _zone_including(tmp_path, str(inc))
    monkeypatch.setattr(zonefile, "MAX_ZONE_SOURCE_BYTES", path.stat().st_size + 100)
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    assert f"{path}:{path.read_text().count(chr(10))}: the zone's files hold more than" in str(
        err.value
    )


def test_authd_check_refuses_a_fifo_include_without_blocking(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    path = _zone_including(tmp_path, str(fifo))
    done = subprocess.run(
        [sys.executable, "-m", "authd", "check", "--origin", "h.test", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"not a regular file: {fifo}" in done.stdout + done.stderr


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def test_include_of_dev_zero_grows_without_bound(lab: Lab) -> None:
    """On a hot reload: refused with file:line, the old version serves, reloads go on."""
    path = lab.write("h.zone", zone_text("h.test", 1))
    fifo = lab.dir / "fifo.inc"
    os.mkfifo(fifo)
    server = lab.start("authd", [{"name": "h.test", "file": str(path)}])
    for target in ("/dev/zero", str(fifo)):
        path.write_text(zone_text("h.test", 2, www="192.0.2.2") + f"$INCLUDE {target}\n")
        line = lab.wait_log(server, rf"not a regular file: {target}", 10)
        lab.check(f"{path}:" in line, f"file:line in {line!r}")
        lab.check(soa_serial(server.port, "h.test") == 1, "the old serial keeps serving")
    # The reload machinery is not wedged: the next good edit is served.
    path.write_text(zone_text("h.test", 3, www="192.0.2.3"))
    lab.wait_serial(server, "h.test", 3, 10)
    lab.check(addresses(server.port, "www.h.test") == ["192.0.2.3"], "the new record")


def test_a_zone_over_max_records_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "h.zone"
    path.write_text(zone_text("h.test", 1) + "".join(f"h{i} A 192.0.2.1\n" for i in range(10)))
    assert len(parse_zone_file(str(path), ORIGIN, max_records=14)) == 14  # SOA, NS, ns, www
    with pytest.raises(ZoneError, match=r"more than 13 records in the zone \(max_records\)"):
        parse_zone_file(str(path), ORIGIN, max_records=13)
    generated = tmp_path / "g.zone"
    generated.write_text(zone_text("h.test", 1) + "$GENERATE 1-100 g$ A 192.0.2.1\n")
    with pytest.raises(ZoneError, match=r"g.zone:\d+: more than 50 records"):
        parse_zone_file(str(generated), ORIGIN, max_records=50)


def test_max_records_comes_from_the_config(tmp_path: Path) -> None:
    from authd.config import config_from_dict
    from authd.limits import DEFAULT_MAX_ZONE_RECORDS

    zones = [{"name": "a.test", "file": "a"}, {"name": "b.test", "file": "b", "max_records": 7}]
    for name in "ab":
        (tmp_path / name).write_text("")
    config = config_from_dict(
        {"options": {"max_zone_records": 99}, "zones": zones}, None, str(tmp_path)
    )
    assert [z.max_records for z in config.views[0].zones] == [99, 7]
    plain = config_from_dict({"zones": zones[:1]}, None, str(tmp_path))
    assert plain.views[0].zones[0].max_records == DEFAULT_MAX_ZONE_RECORDS


def test_a_transfer_over_max_records_is_refused(lab: Lab) -> None:
    """The same bound holds for zones that arrive by AXFR (Knot's zone-max-size)."""
    from harness.peers import HOST, free_port

    zone = lab.write(
        "t.zone", zone_text("t.test", 3, extra="".join(f"h{i} A 192.0.2.9\n" for i in range(50)))
    )
    primary_port = free_port()
    secondary = lab.start(
        "secondary",
        [
            {
                "name": "t.test",
                "type": "secondary",
                "max_records": 20,
                "primaries": [{"address": HOST, "port": primary_port}],
            }
        ],
        {"watch": False, "min_refresh": 1, "min_retry": 1},
    )
    lab.start(
        "primary",
        [{"name": "t.test", "file": str(zone), "allow_transfer": [HOST]}],
        {"watch": False},
        port=primary_port,
    )
    line = lab.wait_log(secondary, r"transfer of t\.test\. failed", 30)
    lab.check("more than 20 records (max_records)" in line, line)
    lab.check("nothing to serve yet (SERVFAIL)" in line, line)


def test_a_line_over_max_line_chars_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zonefile, "MAX_LINE_CHARS", 200)
    path = tmp_path / "h.zone"
    path.write_text(zone_text("h.test", 1) + 'txt TXT "' + "x" * 150 + '"\nlong TXT "' + "y" * 5000)
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    line = path.read_text().count("\n") + 1
    assert str(err.value) == f"{path}:{line}: line longer than 200 characters"


def test_following_includes_for_authd_check_never_opens_a_fifo(tmp_path: Path) -> None:
    """``authd check x.inc`` follows other zones' $INCLUDEs to find its includers."""
    from authd.cli import includes

    fifo = _fifo(tmp_path)
    zone = _zone_including(tmp_path, str(fifo))
    assert includes.closure(str(zone)) == {str(zone), os.path.realpath(fifo)}
