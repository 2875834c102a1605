"""DNS cookies end to end: ``dig +cookie``, UDP and TCP, RRL exemption, and BIND beside us.

``dig +cookie`` gets a server cookie; a client echoing it is recognised (a
valid, young cookie comes back unchanged, a forged one is replaced) over UDP
and TCP; a flood carrying a valid cookie is not rate limited while the same
flood without one is.  BIND, given the same ``cookie-secret``, makes cookies
of the same format that authd accepts as its own: RFC 9018's point, one
anycast group of mixed servers.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import pytest
from zonekit import make_query

from harness.flood import Stream, flood
from harness.peers import HOST, Server, require_binary, start_authd, start_bind

SECRET = "0123456789abcdef0123456789abcdef"
ZONE = """$ORIGIN ck.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
"""
CC = bytes.fromhex("a1b2c3d4e5f60718")
RATE = 20
IO_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ck") / "ck.test.zone"
    path.write_text(ZONE)
    return path


@pytest.fixture(scope="module")
def server(zone: Path) -> Iterator[Server]:
    options = {"cookies": {"secret": SECRET}, "rate_limit": {"responses_per_second": RATE}}
    with start_authd({"ck.test.": str(zone)}, options=options) as s:
        yield s


def _dig(port: int, *extra: str) -> str:
    argv = [require_binary("dig"), f"@{HOST}", "-p", str(port), "+norec", "+tries=1", "+time=3"]
    argv += [*extra, "www.ck.test.", "A"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True).stdout


def _dig_cookie(out: str) -> str:
    found = re.search(r"; COOKIE: ([0-9a-f]+)", out)
    assert found is not None, out
    return found.group(1)


def _query(cookie: bytes) -> dns.message.Message:
    q = make_query("www.ck.test.", "A", edns=0)
    q.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(dns.edns.OptionType.COOKIE, cookie)])
    return q


def _cookie_of(msg: dns.message.Message) -> bytes:
    for o in msg.options:
        if isinstance(o, dns.edns.CookieOption):
            return o.client + o.server
    raise AssertionError(f"no COOKIE option in {msg}")


def _ask(port: int, cookie: bytes, tcp: bool = False) -> dns.message.Message:
    query = _query(cookie)
    if tcp:
        return dns.query.tcp(query, HOST, port=port, timeout=IO_TIMEOUT)
    return dns.query.udp(query, HOST, port=port, timeout=IO_TIMEOUT)


def _check_format(cookie: bytes, client: bytes) -> None:
    """RFC 9018 section 4: version 1, reserved zero, a timestamp near now, 8 hash bytes."""
    assert len(cookie) == 8 + 16 and cookie[:8] == client
    server = cookie[8:]
    assert server[0] == 1 and server[1:4] == b"\0\0\0"
    assert abs(int.from_bytes(server[4:8], "big") - time.time()) < 120


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dig_cookie_gets_a_server_cookie_and_an_echo_is_recognised(
    server: Server, transport: str
) -> None:
    tcp = ["+tcp"] if transport == "tcp" else []
    out = _dig(server.port, "+cookie", *tcp)
    assert "(good)" in out  # dig: the client cookie came back
    full = _dig_cookie(out)
    assert len(full) == 48
    _check_format(bytes.fromhex(full), bytes.fromhex(full[:16]))
    # Echoed, a valid young cookie is recognised and returned unchanged...
    again = _dig(server.port, f"+cookie={full}", *tcp)
    assert _dig_cookie(again) == full
    # ...and a forged one is not: it gets a fresh cookie of ours instead.
    forged = full[:-2] + ("00" if full[-2:] != "00" else "11")
    assert _dig_cookie(_dig(server.port, f"+cookie={forged}", *tcp)) != forged


def test_a_valid_cookie_exempts_a_flood_from_rrl(server: Server) -> None:
    good = _cookie_of(_ask(server.port, CC))
    assert _cookie_of(_ask(server.port, good)) == good  # recognised
    with_cookie = Stream("127.0.0.1", _query(good).to_wire(), 150.0)
    flood(HOST, server.port, [with_cookie], 1.5, 1.0)
    assert with_cookie.sent >= 100 and with_cookie.answered == with_cookie.sent, with_cookie
    # The same flood with a client cookie only is limited: the slips are
    # BADCOOKIE (with a fresh cookie to retry with), not TC.
    client_only = Stream("127.0.0.1", _query(CC).to_wire(), 150.0)
    flood(HOST, server.port, [client_only], 1.5, 1.0)
    assert client_only.answered < client_only.sent / 2, client_only
    assert client_only.badcookie > 0 and client_only.truncated == 0, client_only


def test_tcp_with_a_cookie(server: Server) -> None:
    good = _cookie_of(_ask(server.port, CC, tcp=True))
    _check_format(good, CC)
    assert _cookie_of(_ask(server.port, good, tcp=True)) == good


def test_bind_with_the_same_secret_makes_cookies_authd_accepts(zone: Path, server: Server) -> None:
    extra = (
        f'    cookie-algorithm siphash24;\n    cookie-secret "{SECRET}";\n    answer-cookie yes;\n'
    )
    with start_bind({"ck.test.": str(zone)}, extra=extra) as bind:
        from_bind = _cookie_of(_ask(bind.port, CC))
        from_authd = _cookie_of(_ask(server.port, CC))
        # The same format as BIND's (RFC 9018), option for option...
        _check_format(from_bind, CC)
        _check_format(from_authd, CC)
        # ...and the same cookie: authd recognises BIND's and returns it unchanged.
        assert _cookie_of(_ask(server.port, from_bind)) == from_bind
        stamp_b, stamp_a = from_bind[12:16], from_authd[12:16]
        if stamp_b == stamp_a:  # made in the same second: byte for byte equal
            assert from_bind == from_authd
