"""The loopback server helpers themselves: they fail loudly and leave nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.query
import pytest

from harness.peers import HOST, PeerError, Server, free_port, require_binary, start_knot, start_nsd

ZONES = Path(__file__).resolve().parent.parent / "zones"


def test_a_missing_program_is_an_error_not_a_skip() -> None:
    with pytest.raises(PeerError, match="not installed"):
        require_binary("authd-no-such-program")


def test_free_port_is_on_loopback_and_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


def test_a_broken_zone_stops_the_peer_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.test.zone"
    broken.write_text("$ORIGIN broken.test.\n@ 300 SOA ns hostmaster 1 2 3 4\n")  # no MINIMUM
    with pytest.raises(PeerError, match="--- log ---"):
        start_nsd({"broken.test": broken}, timeout=2)


@pytest.mark.parametrize("start", [start_knot, start_nsd], ids=["knot", "nsd"])
def test_peer_answers_then_stops_and_cleans_up(start: Callable[..., Server]) -> None:
    zone = {"example.com": ZONES / "example.com.zone"}
    with start(zone) as server:
        query = dns.message.make_query("host-12.example.com", "A")
        reply = dns.query.udp(query, HOST, port=server.port, timeout=2)
        # $GENERATE reached the peer through named-compilezone.
        assert [rrset.to_text() for rrset in reply.answer] == [
            "host-12.example.com. 3600 IN A 198.51.100.12"
        ]
        workdir = server.workdir
    assert server.process.poll() is not None
    assert not workdir.exists()
