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
HEAD_LINES = 7  # zone_text's lines


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


@pytest.mark.parametrize("kind", ["read-fails", "open-fails"])
def test_an_unreadable_include_was_reported_without_the_including_line(
    tmp_path: Path, kind: str
) -> None:
    """Regression: a read error in an include named the include alone, at
    line 0; the ``$INCLUDE`` line that led there is where to look.  As root
    no mode bit makes a file unreadable: /proc/self/mem is a regular file
    whose read fails (EIO), a path through a file fails to open (ENOTDIR)."""
    target, why = {
        "read-fails": ("/proc/self/mem", "cannot read: Input/output error"),
        "open-fails": (f"{tmp_path}/h.zone/x", "cannot read: Not a directory"),
    }[kind]
    path = _zone_including(tmp_path, target)
    line = path.read_text().count("\n")
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    assert str(err.value) == f"{path}:{line}: {why}: {target}"
    done = subprocess.run(
        [sys.executable, "-m", "authd", "check", "--origin", "h.test", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{path}:{line}: error: {why}: {target}" in done.stdout, done.stdout + done.stderr


BIG_TOKEN = "q" * 200_000


@pytest.mark.parametrize(
    "line",
    [
        f"x A {BIG_TOKEN}",
        f"x {BIG_TOKEN} A 192.0.2.1",
        f"{BIG_TOKEN}.x A 192.0.2.1",
        f"x MX {BIG_TOKEN} y",
        f"x SRV 1 2 {BIG_TOKEN} t",
        f"${BIG_TOKEN} x",
        f"$GENERATE {BIG_TOKEN} x A 192.0.2.1",
        f"x SSHFP 1 1 {BIG_TOKEN}",
        f"x NSEC y {BIG_TOKEN}",
    ],
    ids=["address", "type", "name", "integer", "port", "directive", "range", "rdata", "bitmap"],
)
def test_a_bad_token_was_echoed_whole(line: str) -> None:
    """Regression: a 20 MB token went whole into the log, ``ctl reload``,
    every ``ctl status`` and ``authd check``.  Tokens are cut at
    MAX_ECHO_CHARS (names and paths at 1,020), a refusal at 2,040 whatever it quotes."""
    from authd.limits import MAX_ECHO_CHARS
    from authd.zonefile import parse_zone_text

    with pytest.raises(ZoneError) as err:
        parse_zone_text(zone_text("h.test", 1) + line + "\n", ORIGIN)
    message = str(err.value)
    assert message.startswith(f"<text>:{HEAD_LINES + 1}: "), message[:200]
    shown = message.count("q")
    assert "q..." in message and (shown <= MAX_ECHO_CHARS or shown == 4 * 255), message[:200]
    assert len(message) < 2 * 4 * 255 + 40, message[:200]


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


# A small authd is ~100 MB resident; /dev/zero read whole reached 4 GB in 10-25 s.
MEMORY_CAP = 512 * 1024 * 1024


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


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
        rss = _rss_bytes(server.process.pid)
        lab.check(rss < MEMORY_CAP, f"{rss} bytes resident after {target}, over {MEMORY_CAP}")
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


def test_a_record_whose_parentheses_run_past_max_record_chars_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each line is short, but one record may not grow without bound over many."""
    monkeypatch.setattr(zonefile, "MAX_RECORD_CHARS", 500)
    path = tmp_path / "h.zone"
    start = zone_text("h.test", 1).count("\n") + 1
    path.write_text(zone_text("h.test", 1) + "t TXT (\n" + '"abcdefghij"\n' * 100 + ")\n")
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    assert str(err.value).startswith(f"{path}:")
    assert "record longer than 500 characters" in str(err.value)
    assert int(str(err.value).split(":")[1]) > start  # the line where it ran over


@pytest.mark.parametrize("quoted", [False, True], ids=["word", "quoted"])
def test_a_token_over_max_token_chars_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quoted: bool
) -> None:
    monkeypatch.setattr(zonefile, "MAX_TOKEN_CHARS", 100)
    path = tmp_path / "h.zone"
    word = "a" * 150
    line = zone_text("h.test", 1).count("\n") + 1
    body = f'"{word}"' if quoted else word
    path.write_text(zone_text("h.test", 1) + f"t TXT {body}\n")
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    assert str(err.value) == f"{path}:{line}: token longer than 100 characters"


def test_the_default_token_limit_admits_a_whole_rdata_in_one_hex_word() -> None:
    from authd.limits import MAX_RDATA_BYTES, MAX_TOKEN_CHARS

    assert MAX_TOKEN_CHARS >= 2 * MAX_RDATA_BYTES


def test_rdata_over_rdlength_is_refused_at_parse(tmp_path: Path) -> None:
    """RFC 1035 section 3.2.1: RDLENGTH is 16 bits; dnspython builds a bigger TXT."""
    from authd.limits import MAX_RDATA_BYTES

    strings = " ".join(['"' + "a" * 255 + '"'] * 300)  # 76,800 bytes of rdata
    path = tmp_path / "h.zone"
    line = zone_text("h.test", 1).count("\n") + 1
    path.write_text(zone_text("h.test", 1) + f"big TXT {strings}\n")
    with pytest.raises(ZoneError) as err:
        parse_zone_file(str(path), ORIGIN)
    assert str(err.value) == (
        f"{path}:{line}: TXT rdata of 76800 bytes is over {MAX_RDATA_BYTES} (RDLENGTH)"
    )
    fits = " ".join(['"' + "a" * 255 + '"'] * 256)  # 65,536: one byte over
    path.write_text(zone_text("h.test", 1) + f"big TXT {fits}\n")
    with pytest.raises(ZoneError, match="65536 bytes is over"):
        parse_zone_file(str(path), ORIGIN)
    under = " ".join(['"' + "a" * 255 + '"'] * 255 + ['"' + "a" * 254 + '"'])  # 65,535
    path.write_text(zone_text("h.test", 1) + f"big TXT {under}\n")
    assert len(parse_zone_file(str(path), ORIGIN)) == 5


def test_include_root_confines_includes_and_their_symlinks(tmp_path: Path) -> None:
    inside = tmp_path / "zones"
    inside.mkdir()
    (inside / "ok.inc").write_text("ok A 192.0.2.7\n")
    outside = tmp_path / "secret.inc"
    outside.write_text("leak A 192.0.2.8\n")
    (inside / "link.inc").symlink_to(outside)
    zone = inside / "h.zone"
    root = os.path.realpath(inside)
    zone.write_text(zone_text("h.test", 1) + "$INCLUDE ok.inc\n")
    assert len(parse_zone_file(str(zone), ORIGIN, include_root=root)) == 5
    for target in ("../secret.inc", "link.inc", str(outside)):
        zone.write_text(zone_text("h.test", 1) + f"$INCLUDE {target}\n")
        line = zone.read_text().count("\n")
        with pytest.raises(ZoneError) as err:
            parse_zone_file(str(zone), ORIGIN, include_root=root)
        assert str(err.value) == f"{zone}:{line}: $INCLUDE outside include_root {root}: {target}"
        assert len(parse_zone_file(str(zone), ORIGIN)) == 5  # unconfined by default


def test_include_root_comes_from_the_config_with_key_paths(tmp_path: Path) -> None:
    from authd.config import ConfigError, config_from_dict

    (tmp_path / "inc").mkdir()
    (tmp_path / "a").write_text("")
    zones = [{"name": "a.test", "file": "a"}, {"name": "b.test", "file": "a", "include_root": "."}]
    config = config_from_dict(
        {"options": {"include_root": "inc"}, "zones": zones}, None, str(tmp_path)
    )
    got = [z.include_root for z in config.views[0].zones]
    assert got == [os.path.realpath(tmp_path / "inc"), os.path.realpath(tmp_path)]
    assert (
        config_from_dict({"zones": zones[:1]}, None, str(tmp_path)).views[0].zones[0].include_root
        is None
    )
    with pytest.raises(ConfigError, match=r"^options\.include_root: not a folder: 'nope'"):
        config_from_dict({"options": {"include_root": "nope"}, "zones": zones}, None, str(tmp_path))
    bad = [{"name": "a.test", "file": "a", "include_root": "a"}]
    with pytest.raises(ConfigError, match=r"^zones\[0\]\.include_root: not a folder"):
        config_from_dict({"zones": bad}, None, str(tmp_path))
