"""Every limit in ``authd.limits``: used by the code, and exercised here by name.

A limit added to ``authd/limits.py`` without a test here (or elsewhere in
``tests/``) fails ``test_every_limit_is_tested``; a 512 or 65535 written as a
bare number in the core again fails ``test_no_wire_limit_is_a_bare_number``.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import pytest
from zonekit import exchange, make_query, snapshot_from_texts

import authd.limits as limits
from authd.config import Options, config_from_dict
from authd.errors import ConfigError
from authd.query import Transport, _limit
from authd.refresh import Clamp

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(n for n in vars(limits) if n.isupper())

ZONE = (
    "$ORIGIN lim.test.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
    + "".join(f'big TXT "{i:03d}{"x" * 200}"\n' for i in range(40))
)


def _config(data: dict):
    return config_from_dict(data, None, str(ROOT))


@pytest.fixture(scope="module")
def snapshot():
    return snapshot_from_texts({"lim.test.": ZONE})


def test_every_limit_is_used_by_the_code() -> None:
    sources = "\n".join(
        p.read_text() for p in (ROOT / "authd").rglob("*.py") if p.name != "limits.py"
    )
    unused = [n for n in NAMES if not re.search(rf"\b{n}\b", sources)]
    assert unused == []


def test_every_limit_is_tested() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    untested = [n for n in NAMES if not re.search(rf"\b{n}\b", tests)]
    assert untested == []


def test_no_wire_limit_is_a_bare_number() -> None:
    found = []
    for path in (ROOT / "authd").rglob("*.py"):
        if path.name == "limits.py":
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            # Decimal only: 0xFFFF is a 16-bit mask, not a message size.
            if not isinstance(node, ast.Constant) or node.value not in (512, 65535, 1232):
                continue
            text = ast.get_source_segment(source, node) or ""
            if text in ("512", "65535", "65_535", "1232"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert found == []


# -- the wire format ----------------------------------------------------------------------


def test_header_len_shorter_packets_are_dropped(snapshot) -> None:
    wire = make_query("ns.lim.test.", "A").to_wire()
    assert exchange(snapshot, wire[: limits.HEADER_LEN - 1]) is None
    assert exchange(snapshot, wire[: limits.HEADER_LEN]) is not None  # FORMERR


def test_opt_fixed_size_is_the_opt_record_without_options(snapshot) -> None:
    plain = exchange(snapshot, make_query("ns.lim.test.", "A").to_wire())
    edns = exchange(snapshot, make_query("ns.lim.test.", "A", edns=0).to_wire())
    assert plain is not None and edns is not None
    assert len(edns) - len(plain) == limits.OPT_FIXED_SIZE


def test_max_name_wire_longer_question_is_formerr(snapshot) -> None:
    label = b"\x3f" + b"a" * 63
    name = label * 4  # 256 octets before the root label: one too many
    assert len(name) + 1 > limits.MAX_NAME_WIRE
    wire = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x00\x01\x00\x01"
    out = exchange(snapshot, wire)
    assert out is not None and out[3] & 0xF == dns.rcode.FORMERR


def test_no_edns_udp_limit_truncates(snapshot) -> None:
    out = exchange(snapshot, make_query("big.lim.test.", "TXT").to_wire())
    assert out is not None and len(out) <= limits.NO_EDNS_UDP_LIMIT
    assert dns.message.from_wire(out).flags & dns.flags.TC


def test_min_edns_udp_payload_smaller_payloads_read_as_512() -> None:
    assert _limit(Transport.UDP, 100, 4096) == limits.MIN_EDNS_UDP_PAYLOAD
    assert _limit(Transport.UDP, None, 4096) == limits.NO_EDNS_UDP_LIMIT


def test_max_message_bounds_tcp_and_the_payload_option() -> None:
    assert _limit(Transport.TCP, None, 1232) == limits.MAX_MESSAGE
    with pytest.raises(ConfigError, match="udp_payload_max"):
        _config({"options": {"udp_payload_max": limits.MAX_MESSAGE + 1}, "zones": []})


def test_max_port_bounds_listen_ports() -> None:
    bad = {"listen": [{"address": "127.0.0.1", "port": limits.MAX_PORT + 1}], "zones": []}
    with pytest.raises(ConfigError, match="listen"):
        _config(bad)


def test_max_nsid_bytes_longer_nsid_is_refused() -> None:
    with pytest.raises(ConfigError, match=f"longer than {limits.MAX_NSID_BYTES} bytes"):
        _config({"options": {"nsid": "n" * (limits.MAX_NSID_BYTES + 1)}, "zones": []})


# -- defaults an operator may change --------------------------------------------------------

OPTION_DEFAULTS = {
    "udp_payload_max": limits.DEFAULT_UDP_PAYLOAD_MAX,
    "tcp_idle_timeout": limits.DEFAULT_TCP_IDLE_TIMEOUT,
    "tcp_io_timeout": limits.DEFAULT_TCP_IO_TIMEOUT,
    "tcp_max_connections": limits.DEFAULT_TCP_MAX_CONNECTIONS,
    "tcp_max_connections_per_client": limits.DEFAULT_TCP_MAX_CONNECTIONS_PER_CLIENT,
    "answer_cache_entries": limits.DEFAULT_ANSWER_CACHE_ENTRIES,
    "tsig_fudge": limits.DEFAULT_TSIG_FUDGE,
    "journal_max_entries": limits.DEFAULT_JOURNAL_MAX_ENTRIES,
    "journal_max_bytes": limits.DEFAULT_JOURNAL_MAX_BYTES,
    "min_refresh": limits.DEFAULT_MIN_REFRESH,
    "max_refresh": limits.DEFAULT_MAX_REFRESH,
    "min_retry": limits.DEFAULT_MIN_RETRY,
    "max_retry": limits.DEFAULT_MAX_RETRY,
    "shutdown_timeout": limits.DEFAULT_SHUTDOWN_TIMEOUT,
}


@pytest.mark.parametrize(("option", "default"), OPTION_DEFAULTS.items())
def test_option_defaults_come_from_limits(option: str, default: float) -> None:
    assert getattr(Options(), option) == default
    assert getattr(_config({"zones": []}).options, option) == default


def test_refresh_clamp_defaults_are_the_config_defaults() -> None:
    clamp = Clamp()
    assert (clamp.min_refresh, clamp.max_refresh, clamp.min_retry, clamp.max_retry) == (
        limits.DEFAULT_MIN_REFRESH,
        limits.DEFAULT_MAX_REFRESH,
        limits.DEFAULT_MIN_RETRY,
        limits.DEFAULT_MAX_RETRY,
    )
    opts = Options()
    assert dataclasses.astuple(clamp) == (
        opts.min_refresh,
        opts.max_refresh,
        opts.min_retry,
        opts.max_retry,
    )


def test_default_port_is_the_listen_port_when_none_is_given() -> None:
    config = _config({"listen": [{"address": "127.0.0.1"}], "zones": []})
    assert [lc.port for lc in config.listen] == [limits.DEFAULT_PORT]
    assert limits.DEFAULT_PORT > 1023  # unprivileged


def test_journal_defaults_match_the_config_defaults() -> None:
    from authd.journal import Journal

    journal = Journal()
    assert (journal.max_entries, journal.max_bytes) == (
        limits.DEFAULT_JOURNAL_MAX_ENTRIES,
        limits.DEFAULT_JOURNAL_MAX_BYTES,
    )


def test_max_config_nodes_and_bytes_are_named_in_the_refusals() -> None:
    assert limits.MAX_CONFIG_NODES >= 100_000 and limits.MAX_CONFIG_BYTES >= 1 << 20
