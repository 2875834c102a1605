"""DNS cookies (RFC 7873) with RFC 9018 server cookies (``authd.cookies``), in the core.

SipHash-2-4 against the reference vectors and RFC 9018's worked example;
``examine`` as a table (RFC 7873 section 5.2: client cookie only, valid,
expired, from the future, another secret, another client, the previous
secret); ``handle`` returning the cookie on the full and the cached paths,
FORMERR for a malformed one, and a valid cookie exempting a client from RRL.
Real sockets, ``dig +cookie`` and BIND are in ``test_cookies_e2e.py``.
"""

from __future__ import annotations

import dataclasses

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
import siphashc
from zonekit import make_query, snapshot_from_texts

from authd import cookies
from authd.config import config_from_dict
from authd.errors import ConfigError
from authd.limits import (
    COOKIE_CLIENT_LEN,
    COOKIE_MAX_AGE,
    COOKIE_MAX_FUTURE,
    COOKIE_REFRESH_AGE,
    COOKIE_SECRET_LEN,
    COOKIE_SERVER_LEN,
    COOKIE_SERVER_MAX,
    COOKIE_SERVER_MIN,
)
from authd.query import Request, Transport, handle
from authd.ratelimit import Limiter, Settings
from authd.snapshot import Snapshot, with_fresh_caches

KEY = bytes(range(16))
# RFC 9018 appendix A.1: a client at 198.51.100.100 learns a server cookie.
RFC_SECRET = bytes.fromhex("e5e973e5a6b2a43f48e7dc849e37bfcf")
RFC_CLIENT = bytes.fromhex("2464c4abcf10c957")
RFC_TIME = 1559731985
RFC_SERVER = bytes.fromhex("010000005cf79f111f8130c3eee29480")
SECRETS = cookies.Secrets(bytes(range(100, 116)))
NOW = 1_800_000_000
CLIENT = "192.0.2.10"
ZONE = """$ORIGIN ck.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
"""


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0x726FDB47DD0E0E31), (8, 0x93F5F5799A932462), (15, 0xA129CA6149BE45E5)],
)
def test_siphash24_reference_vectors(length: int, expected: int) -> None:
    # The SipHash paper's vectors: key 00..0f, message 00..(length-1).
    assert siphashc.siphash(KEY, bytes(range(length))) == expected


def test_rfc9018_example_server_cookie() -> None:
    address = bytes((198, 51, 100, 100))
    assert cookies.server_cookie(RFC_SECRET, RFC_CLIENT, address, RFC_TIME) == RFC_SERVER
    checked = cookies.examine(
        cookies.Secrets(RFC_SECRET), RFC_CLIENT + RFC_SERVER, "198.51.100.100", RFC_TIME + 10
    )
    assert checked == cookies.Checked(RFC_CLIENT + RFC_SERVER, True)


def _cookie(client: bytes, at: int, secret: bytes = SECRETS.current, ip: str = CLIENT) -> bytes:
    return cookies.server_cookie(secret, client, bytes(map(int, ip.split("."))), at)


CC = b"clientck"


@pytest.mark.parametrize(
    ("sent", "valid", "echoed"),
    [
        (CC, False, False),  # RFC 7873 5.2.3: a client cookie only: a fresh server cookie
        (CC + _cookie(CC, NOW - 10), True, True),  # valid and young: echoed
        (CC + _cookie(CC, NOW - COOKIE_REFRESH_AGE - 1), True, False),  # valid, renewed
        (CC + _cookie(CC, NOW - COOKIE_MAX_AGE - 1), False, False),  # expired (RFC 9018 4.3)
        (CC + _cookie(CC, NOW + COOKIE_MAX_FUTURE), True, True),
        (CC + _cookie(CC, NOW + COOKIE_MAX_FUTURE + 1), False, False),  # from the future
        (CC + _cookie(CC, NOW, bytes(16)), False, False),  # another secret
        (CC + _cookie(CC, NOW, ip="192.0.2.11"), False, False),  # another client's
        (CC + _cookie(b"otherclt", NOW), False, False),  # another client cookie's
        (CC + b"\x02" + _cookie(CC, NOW)[1:], False, False),  # version 2: not ours
        (CC + bytes(8), False, False),  # 8 bytes: well formed, not ours (RFC 7873 5.2.4)
        (CC + bytes(32), False, False),
    ],
    ids=[
        "client-only",
        "valid",
        "valid-old",
        "expired",
        "future-ok",
        "future",
        "other-secret",
        "other-ip",
        "other-client-cookie",
        "version",
        "short",
        "long",
    ],
)
def test_examine(sent: bytes, valid: bool, echoed: bool) -> None:
    checked = cookies.examine(SECRETS, sent, CLIENT, NOW)
    assert checked.valid is valid
    assert len(checked.reply) == COOKIE_CLIENT_LEN + COOKIE_SERVER_LEN
    assert checked.reply[:8] == CC
    assert (checked.reply == sent) is echoed
    if not echoed:
        assert checked.reply[8:] == _cookie(CC, NOW)  # version 1, now, our hash


def test_the_previous_secret_is_accepted_and_replaced() -> None:
    old = bytes(range(200, 216))
    rolled = cookies.Secrets(SECRETS.current, old)
    checked = cookies.examine(rolled, CC + _cookie(CC, NOW - 5, old), CLIENT, NOW)
    assert checked.valid and checked.reply == CC + _cookie(CC, NOW)
    assert not cookies.examine(SECRETS, CC + _cookie(CC, NOW - 5, old), CLIENT, NOW).valid


def test_timestamps_are_serial_numbers_across_2106() -> None:
    wrap = 1 << 32
    checked = cookies.examine(SECRETS, CC + _cookie(CC, wrap - 10), CLIENT, wrap + 5)
    assert checked.valid


@pytest.mark.parametrize("length", range(0, 42))
def test_well_formed_lengths(length: int) -> None:
    expected = length == 8 or 8 + COOKIE_SERVER_MIN <= length <= 8 + COOKIE_SERVER_MAX
    assert cookies.well_formed(length) is expected


def test_secrets_are_sixteen_bytes() -> None:
    assert COOKIE_SECRET_LEN == 16
    with pytest.raises(ValueError):
        cookies.Secrets(bytes(15))


# -- the query path --------------------------------------------------------------------


@pytest.fixture
def snap() -> Snapshot:
    base = snapshot_from_texts({"ck.test.": ZONE})
    return with_fresh_caches(dataclasses.replace(base, cookies=SECRETS))


def _query(cookie: bytes | None, qid: int = 1, name: str = "www.ck.test.") -> bytes:
    q = make_query(name, "A", edns=0, qid=qid)
    if cookie is not None:
        q.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(dns.edns.OptionType.COOKIE, cookie)])
    return q.to_wire()


def _ask(snap: Snapshot, wire: bytes, client: str = CLIENT, tcp: bool = False, now: int = NOW):
    transport = Transport.TCP if tcp else Transport.UDP
    reply = handle(Request(wire, client, "127.0.0.1", transport, float(now)), snap)
    return dns.message.from_wire(reply.messages[0]) if reply.messages else None


def _returned(msg: dns.message.Message) -> bytes | None:
    for o in msg.options:
        if isinstance(o, dns.edns.CookieOption):
            return o.client + o.server
    return None


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_client_cookie_gets_a_server_cookie_on_every_path(snap: Snapshot, tcp: bool) -> None:
    seen = []
    for i, client in enumerate(["192.0.2.10", "192.0.2.11", "192.0.2.10"]):
        cc = bytes([i]) * 8
        msg = _ask(snap, _query(cc, qid=i), client, tcp)
        assert msg is not None and msg.id == i and msg.rcode() == dns.rcode.NOERROR
        assert len(msg.answer) == 1  # the answer is intact around the patched cookie
        got = _returned(msg)
        assert got is not None and got[:8] == cc
        assert got[8:] == _cookie(cc, NOW, ip=client)
        seen.append(got)
    assert len(snap.cache) == 1  # the later two were cache hits, each with its own cookie


def test_a_valid_server_cookie_is_echoed_on_a_cache_hit(snap: Snapshot) -> None:
    _ask(snap, _query(CC))
    sent = CC + _cookie(CC, NOW - 60)
    msg = _ask(snap, _query(sent))
    assert msg is not None and _returned(msg) == sent


def test_no_cookie_no_cookie_back_and_cookies_off(snap: Snapshot) -> None:
    msg = _ask(snap, _query(None))
    assert msg is not None and _returned(msg) is None
    off = with_fresh_caches(dataclasses.replace(snap, cookies=None))
    msg = _ask(off, _query(CC))
    assert msg is not None and _returned(msg) is None


@pytest.mark.parametrize("length", [1, 7, 9, 15, 41])
def test_a_malformed_cookie_is_formerr(snap: Snapshot, length: int) -> None:
    msg = _ask(snap, _query(bytes(length)))
    assert msg is not None and msg.rcode() == dns.rcode.FORMERR  # RFC 7873 section 5.2.2


def test_a_valid_cookie_exempts_a_client_from_rrl(snap: Snapshot) -> None:
    limited = with_fresh_caches(
        dataclasses.replace(snap, limiter=Limiter(Settings(responses_per_second=2, slip=1)))
    )
    good = _query(CC + _cookie(CC, NOW))
    answers = [_ask(limited, good) for _ in range(30)]
    assert all(m is not None and len(m.answer) == 1 for m in answers)
    # A client cookie alone is limited; the slip is BADCOOKIE with a fresh cookie...
    plain = [_ask(limited, _query(CC)) for _ in range(5)]
    assert [len(m.answer) for m in plain if m is not None][:2] == [1, 1]
    slipped = plain[-1]
    assert slipped is not None and slipped.rcode() == dns.rcode.BADCOOKIE
    assert not slipped.flags & dns.flags.TC and not slipped.answer
    fresh = _returned(slipped)
    assert fresh == CC + _cookie(CC, NOW)
    # ...which, echoed, gets answers again.
    again = _ask(limited, _query(fresh))
    assert again is not None and len(again.answer) == 1


def test_config() -> None:
    def opts(value: object):
        return config_from_dict({"zones": [], "options": {"cookies": value}}, None, ".").options

    assert config_from_dict({"zones": []}, None, ".").options.cookies == cookies.Settings()
    assert opts(False).cookies.enabled is False
    s = opts({"secret": "ab" * 16, "previous_secret": "cd" * 16}).cookies
    assert s.secret == b"\xab" * 16 and s.previous_secret == b"\xcd" * 16
    for value, path in [
        ({"secret": "ab" * 15}, "options.cookies.secret"),
        ({"secret": "xyz"}, "options.cookies.secret"),
        ({"previous_secret": "ab" * 16}, "options.cookies.previous_secret"),
        ({"secret": "ab" * 16, "algorithm": "aes"}, "options.cookies.algorithm"),
        ({"enabled": "yes please"}, "options.cookies.enabled"),
    ]:
        with pytest.raises(ConfigError) as e:
            opts(value)
        assert e.value.path == path
