"""TSIG refusals (RFC 8945 5.2): NOTAUTH with the error, and never larger than the limit.

The TSIG owner may not be compressed in our reply (RFC 8945 4.2), so a request
whose key name is a 2-byte pointer to a 255-octet question name would draw a
reply far bigger than itself; over UDP without EDNS every reply must still fit
512 bytes (RFC 1035 4.2.1).  Regression: ``tsig_error_reply_grows_past_512``.
"""

from __future__ import annotations

import dataclasses
import struct
import time

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig
import pytest
from zonekit import exchange, snapshot_from_texts

from authd.query import Request, Transport, handle

ZONE = """
$ORIGIN tsig.test.
$TTL 300
@   SOA ns hm 1 7200 3600 1209600 300
@   NS  ns
ns  A   192.0.2.1
"""
KEY = dns.tsig.Key("xfr.tsig.test.", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==", "hmac-sha256")
LONG = dns.name.from_text(".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]))  # 255 octets


@pytest.fixture
def snapshot():
    plain = snapshot_from_texts({"tsig.test.": ZONE})
    return dataclasses.replace(plain, keyring={KEY.name: KEY})


def _hostile(algorithm: bytes = b"\x0bhmac-sha256\x00", mac: bytes = b"\x00" * 32) -> bytes:
    """A query for LONG whose TSIG owner is a pointer to the question name (offset 12)."""
    question = LONG.to_wire() + struct.pack("!HH", 1, 1)
    rdata = (
        algorithm
        + struct.pack("!HIH", 0, int(time.time()), 300)
        + struct.pack("!H", len(mac))
        + mac
        + struct.pack("!HHH", 0x7777, 0, 0)
    )
    tsig_rr = b"\xc0\x0c" + struct.pack("!HHIH", 250, 255, 0, len(rdata)) + rdata
    return struct.pack("!6H", 0x7777, 0, 1, 0, 0, 1) + question + tsig_rr


def _tsig_error(out: bytes) -> int | None:
    msg = dns.message.from_wire(out, keyring=False)
    return None if msg.tsig is None else int(msg.tsig[0].error)


def test_tsig_error_reply_grows_past_512(snapshot) -> None:
    wire = _hostile()
    out = exchange(snapshot, wire)
    assert out is not None
    assert len(out) <= 512, f"{len(wire)} bytes in, {len(out)} out"
    msg = dns.message.from_wire(out, keyring=False)
    assert msg.rcode() == dns.rcode.NOTAUTH and msg.id == 0x7777
    assert _tsig_error(out) == dns.rcode.BADKEY  # the error still reaches the client


def test_tsig_error_reply_keeps_the_question_when_it_fits(snapshot) -> None:
    q = dns.message.make_query("ns.tsig.test.", "A")
    q.use_tsig(dns.tsig.Key("nokey.", KEY.secret, "hmac-sha256"))
    out = exchange(snapshot, q.to_wire())
    assert out is not None
    msg = dns.message.from_wire(out, keyring=False)
    assert msg.rcode() == dns.rcode.NOTAUTH
    assert [r.name for r in msg.question] == [dns.name.from_text("ns.tsig.test.")]
    assert _tsig_error(out) == dns.rcode.BADKEY


@pytest.mark.parametrize(
    "algorithm",
    [b"\x0bhmac-sha256\x00", b"\xc0\x0c", bytes([63]) + b"x" * 63 + b"\xc0\x0c"],
    ids=["known", "pointer-to-question", "long-algorithm"],
)
@pytest.mark.parametrize("mac", [b"", b"\x01" * 32, b"\x02" * 200], ids=["no-mac", "32", "200"])
def test_no_refusal_exceeds_512_without_edns(snapshot, algorithm: bytes, mac: bytes) -> None:
    out = exchange(snapshot, _hostile(algorithm, mac))
    assert out is None or len(out) <= 512
    if out is not None:
        assert dns.message.from_wire(out, keyring=False).rcode() in (
            dns.rcode.NOTAUTH,
            dns.rcode.FORMERR,
        )


BIG = ZONE + "".join(f'big TXT "{i:03d}{"t" * 100}"\n' for i in range(30))


@pytest.mark.parametrize("edns", [None, 512, 1232])
def test_signed_answers_count_their_tsig_before_truncation(edns: int | None) -> None:
    """The TSIG record is room taken before truncating, never added past the limit."""
    snapshot = dataclasses.replace(
        snapshot_from_texts({"tsig.test.": BIG}), keyring={KEY.name: KEY}
    )
    q = dns.message.make_query("big.tsig.test.", "TXT", use_edns=edns is not None, payload=edns)
    q.use_tsig({KEY.name: KEY}, keyname=KEY.name)
    reply = handle(
        Request(q.to_wire(), "192.0.2.7", "127.0.0.1", Transport.UDP, time.time()), snapshot
    )
    [out] = reply.messages
    assert len(out) <= (edns or 512)
    r = dns.message.from_wire(out, keyring={KEY.name: KEY}, request_mac=q.mac)
    assert r.had_tsig and r.flags & dns.flags.TC


LONG_KEY = dns.tsig.Key(LONG, KEY.secret, "hmac-sha256")  # a 255-octet key name


def _signed(q: dns.message.Message, key: dns.tsig.Key, *, mac: bytes | None = None) -> bytes:
    q.use_tsig({key.name: key}, keyname=key.name)
    wire = q.to_wire()
    if mac is not None:  # a wrong MAC of the same length: BADSIG
        start = wire.rindex(q.mac)
        wire = wire[:start] + mac + wire[start + len(mac) :]
    return wire


def _raw(opcode: int, qd: int, question: bytes, ar: bytes = b"", arcount: int = 0) -> bytes:
    return struct.pack("!6H", 0x5151, opcode << 11, qd, 0, 0, arcount) + question + ar


LONG_Q = LONG.to_wire() + struct.pack("!HH", 1, 1)


def _requests() -> list[tuple[str, bytes, float]]:
    """Every class of refused, unauthenticated or malformed request, each as
    large as it can make its reply: the 255-octet question name throughout."""
    skew = time.time() + 86400  # the server's clock a day ahead: BADTIME
    now = time.time()
    q = dns.message.make_query
    notify = dns.message.make_query(LONG, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    primary_notify = dns.message.make_query("tsig.test.", "SOA")
    primary_notify.set_opcode(dns.opcode.NOTIFY)
    ixfr = dns.message.make_query(LONG, "IXFR")
    ixfr.authority.append(dns.rrset.from_text(LONG, 0, "IN", "SOA", ". . 1 2 3 4 5"))
    cases = [
        ("refused-zone", q(LONG, "A").to_wire(), now),
        ("axfr-over-udp", q(LONG, "AXFR").to_wire(), now),
        ("ixfr-over-udp", ixfr.to_wire(), now),
        ("notify-unknown-zone", notify.to_wire(), now),
        ("notify-for-a-primary-zone", primary_notify.to_wire(), now),
        ("update", _raw(5, 1, LONG.to_wire() + struct.pack("!HH", 6, 1)), now),
        ("update-bad-zone", _raw(5, 1, LONG_Q), now),
        ("iquery", _raw(1, 1, LONG_Q), now),
        ("status", _raw(2, 1, LONG_Q), now),
        ("opcode-15", _raw(15, 1, LONG_Q), now),
        ("two-questions", _raw(0, 2, LONG_Q * 2), now),
        ("meta-qtype-any-class", _raw(0, 1, LONG.to_wire() + struct.pack("!HH", 1, 255)), now),
        ("tsig-unknown-long-key", _signed(q(LONG, "A"), LONG_KEY), now),
        ("tsig-long-key-written-out", _signed(q("ns.tsig.test.", "A"), LONG_KEY), now),
        ("tsig-badsig", _signed(q(LONG, "A"), KEY, mac=b"\x00" * 32), now),
        ("tsig-badtime", _signed(q(LONG, "A"), KEY), skew),
        ("tsig-badsig-axfr", _signed(q(LONG, "AXFR"), KEY, mac=b"\x00" * 32), now),
        ("tsig-notify-badkey", _signed(notify, LONG_KEY), now),
        ("tsig-pointer-owner", _hostile(), now),
        ("tsig-long-algorithm", _hostile(bytes([63]) + b"x" * 63 + b"\xc0\x0c"), now),
    ]
    hostile = _hostile()
    tsig_rr = hostile[12 + len(LONG_Q) :]
    cases.append(("two-tsigs", _raw(0, 1, LONG_Q, tsig_rr * 2, 2), now))
    opt = b"\x00" + struct.pack("!HHIH", 41, 512, 0, 0)
    cases.append(("tsig-before-opt", _raw(0, 1, LONG_Q, tsig_rr + opt, 2), now))
    return cases


@pytest.mark.parametrize("case", _requests(), ids=lambda c: c[0])
def test_no_reply_to_a_refused_or_malformed_request_exceeds_512(snapshot, case) -> None:
    """Without EDNS, over UDP, no reply is over 512 bytes (RFC 1035 4.2.1)."""
    _, wire, now = case
    reply = handle(Request(wire, "192.0.2.7", "127.0.0.1", Transport.UDP, now), snapshot)
    for out in reply.messages:
        assert len(out) <= 512, f"{len(wire)} bytes in, {len(out)} out"
        msg = dns.message.from_wire(out, keyring=False)
        assert msg.id == 0x5151 or msg.id == int.from_bytes(wire[:2], "big")
        assert msg.rcode() != dns.rcode.NOERROR or not msg.answer
