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
import dns.rcode
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
