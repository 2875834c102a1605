"""The YAML configuration: what it accepts, and refusals that name the key.

Every refusal is one ``ConfigError`` whose message starts with the key path
(``zones[2].file: no such file: zones/x.zone``); relative zone paths are read
relative to the config file's folder, not the working directory; and
``authd serve -c X --check-config`` exits 0 for a good config, 1 otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import dns.name
import pytest

from authd import config as config_module
from authd.config import (
    DEFAULT_PORT,
    DEFAULT_UDP_PAYLOAD_MAX,
    Options,
    load_config,
)
from authd.errors import ConfigError

ZONE = """
$ORIGIN {origin}
$TTL 300
@   SOA  ns hm 1 7200 3600 1209600 300
@   NS   ns
ns  A    192.0.2.1
"""

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    """A config folder with zones/a.zone, zones/b.zone and zones/c.zone."""
    zones = tmp_path / "conf" / "zones"
    zones.mkdir(parents=True)
    for name in ("a", "b", "c"):
        (zones / f"{name}.zone").write_text(ZONE.format(origin=f"{name}.test."))
    return tmp_path / "conf"


def _write(confdir: Path, text: str) -> Path:
    path = confdir / "authd.yaml"
    path.write_text(text)
    return path


GOOD = """
listen:
  - {address: 127.0.0.1, port: 5353}
  - {address: "::1", port: 5353}
options:
  udp_payload_max: 1400
  tcp_idle_timeout: 2.5
  tcp_max_connections: 7
  minimal_responses: true
  minimal_any: false
  nsid: ns-a
  version: "authd test"
  identity: ns-a.example
  query_log: true
  answer_cache_entries: 0
zones:
  - {name: a.test, file: zones/a.zone}
  - {name: B.Test., file: ./zones/b.zone}
"""


def test_good_config(confdir: Path) -> None:
    config = load_config(str(_write(confdir, GOOD)))
    assert [(lc.address, lc.port) for lc in config.listen] == [("127.0.0.1", 5353), ("::1", 5353)]
    expected = {
        "udp_payload_max": 1400,
        "tcp_idle_timeout": 2.5,
        "tcp_max_connections": 7,
        "minimal_responses": True,
        "minimal_any": False,
        "nsid": "ns-a",
        "version": "authd test",
        "identity": "ns-a.example",
        "query_log": True,
        "answer_cache_entries": 0,
    }
    assert {k: getattr(config.options, k) for k in expected} == expected
    [view] = config.views
    assert [z.name for z in view.zones] == [
        dns.name.from_text("a.test"),
        dns.name.from_text("b.test"),
    ]
    assert [z.file for z in view.zones] == [
        str(confdir / "zones" / "a.zone"),
        str(confdir / "zones" / "b.zone"),
    ]
    assert [z.key_path for z in view.zones] == ["zones[0]", "zones[1]"]
    assert config.path == str(confdir / "authd.yaml")


def test_defaults(confdir: Path) -> None:
    config = load_config(str(_write(confdir, "zones:\n  - {name: a.test, file: zones/a.zone}\n")))
    defaults = Options()
    for field in dataclasses.fields(Options):
        if field.name != "control":  # a path next to the config file
            assert getattr(config.options, field.name) == getattr(defaults, field.name)
    assert config.options.udp_payload_max == DEFAULT_UDP_PAYLOAD_MAX
    assert {(lc.address, lc.port) for lc in config.listen} == {
        ("127.0.0.1", DEFAULT_PORT),
        ("::1", DEFAULT_PORT),
    }


def test_relative_paths_are_relative_to_the_config_file(
    confdir: Path, tmp_path: Path, monkeypatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "shared.zone").write_text(ZONE.format(origin="s.test."))
    path = _write(confdir, "zones:\n  - {name: s.test, file: ../shared.zone}\n")
    monkeypatch.chdir(elsewhere)
    config = load_config(os.path.relpath(path, elsewhere))
    assert config.views[0].zones[0].file == str(tmp_path / "shared.zone")
    assert os.path.isabs(config.path or "")


ZONES3 = """
zones:
  - {name: a.test, file: zones/a.zone}
  - {name: b.test, file: zones/b.zone}
  - {name: c.test, file: zones/x.zone}
"""

REFUSALS = [
    ("missing-file", ZONES3, "zones[2].file", "zones[2].file: no such file: zones/x.zone"),
    ("unknown-top-key", "zone: []\n", "zone", None),
    ("unknown-option", "options: {udp_payload: 1}\nzones: []\n", "options.udp_payload", None),
    ("unknown-zone-key", "zones:\n  - {name: a.test, file: zones/a.zone, colour: red}\n",
     "zones[0].colour", None),
    ("unknown-listen-key", "listen:\n  - {addr: 127.0.0.1}\nzones: []\n", "listen[0].addr", None),
    ("zones-missing", "options: {}\n", "zones", None),
    ("zones-not-a-list", "zones: a.test\n", "zones", "zones: expected a list, got str 'a.test'"),
    ("zone-name-missing", "zones:\n  - {file: zones/a.zone}\n", "zones[0].name",
     "zones[0].name: missing"),
    ("zone-file-missing", "zones:\n  - {name: a.test}\n", "zones[0].file",
     "zones[0].file: missing"),
    ("zone-name-bad", "zones:\n  - {name: 'a..test', file: zones/a.zone}\n", "zones[0].name", None),
    ("zone-name-not-string", "zones:\n  - {name: 5, file: zones/a.zone}\n", "zones[0].name",
     "zones[0].name: expected a domain name, got int 5"),
    ("duplicate-zone", "zones:\n  - {name: a.test, file: zones/a.zone}\n"
     "  - {name: A.TEST., file: zones/b.zone}\n", "zones[1].name",
     "zones[1].name: duplicate zone A.TEST. (also zones[0])"),
    ("payload-not-int", "options: {udp_payload_max: big}\nzones: []\n", "options.udp_payload_max",
     "options.udp_payload_max: expected an integer, got str 'big'"),
    ("payload-too-small", "options: {udp_payload_max: 511}\nzones: []\n",
     "options.udp_payload_max", "options.udp_payload_max: 511 is out of range 512..65535"),
    ("payload-too-big", "options: {udp_payload_max: 65536}\nzones: []\n",
     "options.udp_payload_max", "options.udp_payload_max: 65536 is out of range 512..65535"),
    ("bool-is-not-int", "options: {tcp_max_connections: true}\nzones: []\n",
     "options.tcp_max_connections", "options.tcp_max_connections: expected an integer, got True"),
    ("connections-zero", "options: {tcp_max_connections: 0}\nzones: []\n",
     "options.tcp_max_connections", "options.tcp_max_connections: 0 is out of range 1..1000000"),
    ("io-timeout-zero", "options: {tcp_io_timeout: 0}\nzones: []\n", "options.tcp_io_timeout",
     "options.tcp_io_timeout: 0 is out of range (0, 60] seconds"),
    ("per-client-zero", "options: {tcp_max_connections_per_client: 0}\nzones: []\n",
     "options.tcp_max_connections_per_client",
     "options.tcp_max_connections_per_client: 0 is out of range 1..1000000"),
    ("idle-zero", "options: {tcp_idle_timeout: 0}\nzones: []\n", "options.tcp_idle_timeout",
     "options.tcp_idle_timeout: 0 is out of range (0, 3600] seconds"),
    ("idle-negative", "options: {tcp_idle_timeout: -1.5}\nzones: []\n", "options.tcp_idle_timeout",
     None),
    ("idle-string", "options: {tcp_idle_timeout: 10s}\nzones: []\n", "options.tcp_idle_timeout",
     None),
    ("cache-negative", "options: {answer_cache_entries: -1}\nzones: []\n",
     "options.answer_cache_entries", None),
    ("minimal-not-bool", "options: {minimal_responses: 'yes'}\nzones: []\n",
     "options.minimal_responses",
     "options.minimal_responses: expected true or false, got str 'yes'"),
    ("nsid-not-string", "options: {nsid: 5}\nzones: []\n", "options.nsid",
     "options.nsid: expected a string or null, got int 5"),
    ("nsid-too-long", f"options: {{nsid: {'n' * 513}}}\nzones: []\n", "options.nsid",
     "options.nsid: longer than 512 bytes"),
    ("options-not-mapping", "options: [1]\nzones: []\n", "options", None),
    ("top-not-mapping", "- 1\n", "config", None),
    ("listen-empty", "listen: []\nzones: []\n", "listen",
     "listen: at least one listen address is needed"),
    ("listen-no-address", "listen:\n  - {port: 53}\nzones: []\n", "listen[0].address",
     "listen[0].address: missing"),
    ("bad-address", "listen:\n  - {address: localhost}\nzones: []\n", "listen[0].address",
     "listen[0].address: not an IP address: 'localhost'"),
    ("bad-address-v4", "listen:\n  - {address: 127.0.0.256}\nzones: []\n", "listen[0].address",
     None),
    ("address-not-string", "listen:\n  - {address: 2130706433}\nzones: []\n", "listen[0].address",
     None),
    ("port-out-of-range", "listen:\n  - {address: 127.0.0.1, port: 65536}\nzones: []\n",
     "listen[0].port", "listen[0].port: 65536 is out of range 0..65535"),
    ("port-negative", "listen:\n  - {address: '::1', port: -1}\nzones: []\n", "listen[0].port",
     None),
    ("duplicate-listen", "listen:\n  - {address: 127.0.0.1, port: 53}\n"
     "  - {address: 127.0.0.1, port: 53}\nzones: []\n", "listen[1]",
     "listen[1]: duplicate listen address 127.0.0.1 port 53"),
    ("duplicate-listen-v6-spelling", "listen:\n  - {address: '::1', port: 53}\n"
     "  - {address: '0:0::1', port: 53}\nzones: []\n", "listen[1]", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "path", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_name_the_key(confdir: Path, text: str, path: str, message: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(_write(confdir, text)))
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    if "unknown key" in str(info.value):
        assert "(allowed: " in str(info.value), "an unknown key lists the keys allowed there"
    if message is not None:
        assert str(info.value) == message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "nope.yaml"))


def test_invalid_yaml_names_the_line(confdir: Path) -> None:
    path = _write(confdir, "zones:\n  - {name: a.test, file: zones/a.zone\n  - oops: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert f"{path}:" in str(info.value)
    assert "not valid YAML" in str(info.value)


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authd", "serve", "-c", str(path), "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


@pytest.mark.timeout(120)
def test_check_config_exit_codes(confdir: Path) -> None:
    good = _check_config(_write(confdir, GOOD))
    assert good.returncode == 0, good.stderr
    assert "2 zones, 0 refused" in good.stderr

    bad_key = _check_config(_write(confdir, ZONES3))
    assert bad_key.returncode == 1
    assert "zones[2].file: no such file: zones/x.zone" in bad_key.stderr

    (confdir / "zones" / "nons.zone").write_text("$ORIGIN n.test.\n@ 300 SOA ns hm 1 2 3 4 5\n")
    bad_zone = _check_config(
        _write(
            confdir,
            "zones:\n  - {name: a.test, file: zones/a.zone}\n"
            "  - {name: n.test, file: zones/nons.zone}\n",
        )  # fmt: skip
    )
    assert bad_zone.returncode == 1
    assert "2 zones, 1 refused" in bad_zone.stderr
    assert "ns-missing" in bad_zone.stderr


# -- hostile config files: bounded, never blocking ------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LAUGHS, "more than 1000000 YAML nodes once aliases are expanded"),
        ("a: &a [*a]\n", "an alias inside its own anchor"),
        ("[" * 5000 + "]" * 5000, "YAML nested too deeply"),
        ("zones: []\n\xff\n", "not valid YAML"),
    ],
    ids=["billion-laughs", "recursive-alias", "deep-nesting", "not-yaml"],
)
def test_hostile_yaml_is_refused_quickly(confdir: Path, text: str, message: str) -> None:
    path = _write(confdir, text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(str(path))


# Within the node bound (100,000 strings) but under a typed option.
TYPED_BOMB = (
    "options:\n  nsid:\n"
    + "".join(
        f"    - &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}' if i else 'x'] * 10)}]\n"
        for i in range(5)
    )
    + "zones: []\n"
)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            TYPED_BOMB,
            "options.nsid: expected a string or null, got list [['x', 'x', 'x', 'x', ...]",
        ),
        ("options:\n  nsid: " + "y" * 1_000_000 + "\nzones: []\n", "options.nsid: "),
        ("options:\n  ? " + "k" * 100_000 + "\n  : 1\nzones: []\n", "options." + "k" * 64 + "..."),
        ("options:\n  serial: " + "z" * 100_000 + "\nzones: []\n", "options.serial: "),
    ],
    ids=["alias-bomb-under-nsid", "long-nsid", "long-key", "long-value"],
)
def test_a_typed_option_echoed_the_whole_alias_bomb(confdir: Path, text: str, where: str) -> None:
    """Regression: the refusal repeated the value whole (580 kB for this bomb)."""
    path = _write(confdir, text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value).startswith(where), str(err.value)[:300]
    assert len(str(err.value)) < 1000, len(str(err.value))  # the allowed keys: ~600


def test_aliases_within_the_bound_still_work(confdir: Path) -> None:
    path = _write(confdir, "listen: &l [{address: 127.0.0.1, port: 5353}]\nzones: []\nx: *l\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(str(path))  # parsed (aliases and all); refused for the unknown key only


@pytest.mark.timeout(20)
def test_fifo_or_device_config_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "authd.yaml"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        with pytest.raises(ConfigError, match="not a regular file"):
            load_config(path)


def test_oversized_config_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "MAX_CONFIG_BYTES", 1000)
    path = tmp_path / "authd.yaml"
    path.write_text("zones: []\n" + "#" * 2000 + "\n")
    with pytest.raises(ConfigError, match="larger than 1000 bytes"):
        load_config(str(path))
