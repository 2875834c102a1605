"""TSIG (RFC 8945) for requests and single-message responses.

Owns: verifying a signed request against our keys, and signing a response
(or answering a bad signature with the unsigned error a peer expects).
Pure: the time comes in as ``now``.  Invariant: a response to a verified
request is always signed with the same key; a request whose signature we
could not verify (BADKEY, BADSIG) gets an unsigned TSIG carrying the error,
never a MAC made with a key the client may not hold (RFC 8945 5.3.2).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

RdataType = dns.rdatatype.RdataType


class TsigError(enum.IntEnum):
    """TSIG error codes (RFC 8945 section 3)."""

    NOERROR = 0
    BADSIG = 16
    BADKEY = 17
    BADTIME = 18
    BADTRUNC = 22


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose signature checked out: how to sign its response."""

    key: dns.tsig.Key
    request_mac: bytes
    original_id: int
    fudge: int
    now: int


@dataclass(frozen=True, slots=True)
class Refused:
    """A signed request we cannot accept; the response carries *error*."""

    error: TsigError
    keyname: dns.name.Name
    algorithm: dns.name.Name
    original_id: int
    fudge: int
    # BADTIME is signed (the client holds the key); BADKEY and BADSIG are not.
    key: dns.tsig.Key | None = None
    request_mac: bytes = b""


def verify(
    wire: bytes,
    unverified: dns.message.Message,
    keyring: Mapping[dns.name.Name, dns.tsig.Key],
    now: int,
    fudge: int,
) -> tuple[dns.message.Message, Verified] | Refused:
    """Check the TSIG of *wire*, already parsed (unverified) as *unverified*.

    *fudge* is our bound on clock skew; the stricter of ours and the
    client's applies.
    """
    assert unverified.tsig is not None
    trd = unverified.tsig[0]
    keyname = unverified.tsig.name
    client_fudge = int(trd.fudge)
    key = keyring.get(keyname)

    def refused(error: TsigError, signed: bool = False) -> Refused:
        return Refused(
            error,
            keyname,
            trd.algorithm,
            int(trd.original_id),
            client_fudge,
            key if signed else None,
            bytes(trd.mac) if signed else b"",
        )

    if key is None or key.algorithm != trd.algorithm:
        return refused(TsigError.BADKEY)
    try:
        msg = dns.message.from_wire(wire, keyring={keyname: key})
    except dns.tsig.BadTime:
        return refused(TsigError.BADTIME, signed=True)
    except (dns.tsig.BadSignature, dns.tsig.BadAlgorithm):
        return refused(TsigError.BADSIG)
    except dns.exception.DNSException:
        return refused(TsigError.BADSIG)
    if abs(int(trd.time_signed) - now) > min(fudge, client_fudge):
        return refused(TsigError.BADTIME, signed=True)
    return msg, Verified(key, bytes(trd.mac), int(trd.original_id), client_fudge, now)


def reserve_size(keyname: dns.name.Name, algorithm: dns.name.Name) -> int:
    """Bytes a TSIG record takes at the end of a response, to keep room for it."""
    mac = dns.tsig.mac_sizes.get(algorithm) or 64
    # owner, type/class/TTL/rdlength, algorithm, time(6) fudge(2) mac-size(2) mac
    # original id(2) error(2) other-len(2) other (6 for BADTIME)
    return len(_wire(keyname)) + 10 + len(_wire(algorithm)) + 16 + mac + 6


def _wire(name: dns.name.Name) -> bytes:
    out = name.to_wire()
    assert out is not None  # to_wire without a file returns the bytes
    return out


def append_tsig(wire: bytes, keyname: dns.name.Name, tsig: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    """*wire* with the TSIG record appended; its owner is never compressed (RFC 8945 4.2)."""
    rdata = tsig.to_wire()
    assert rdata is not None
    (arcount,) = struct.unpack_from("!H", wire, 10)
    return (
        wire[:10]
        + struct.pack("!H", arcount + 1)
        + wire[12:]
        + _wire(keyname)
        + struct.pack("!HHIH", RdataType.TSIG, dns.rdataclass.ANY, 0, len(rdata))
        + rdata
    )


def _rdata(
    algorithm: dns.name.Name,
    now: int,
    fudge: int,
    original_id: int,
    error: int,
    other: bytes,
    mac: bytes = b"",
) -> dns.rdtypes.ANY.TSIG.TSIG:
    return dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        RdataType.TSIG,
        algorithm,
        now,
        fudge,
        mac,
        original_id,
        error,
        other,
    )


def sign(wire: bytes, v: Verified) -> bytes:
    """Sign a single-message response to a verified request (RFC 8945 5.3)."""
    placeholder = _rdata(v.key.algorithm, v.now, v.fudge, v.original_id, 0, b"")
    tsig, _ = dns.tsig.sign(wire, v.key, placeholder, v.now, v.request_mac, None, False)
    return append_tsig(wire, v.key.name, tsig)


def error_response(wire: bytes, r: Refused, now: int) -> bytes:
    """Attach the TSIG that reports *r*'s error to the (NOTAUTH) response *wire*."""
    if r.error is TsigError.BADTIME and r.key is not None:
        # RFC 8945 5.2.3: signed, with our time in Other Data.
        other = struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF)
        placeholder = _rdata(r.algorithm, now, r.fudge, r.original_id, r.error, other)
        tsig, _ = dns.tsig.sign(wire, r.key, placeholder, now, r.request_mac, None, False)
        return append_tsig(wire, r.keyname, tsig)
    return append_tsig(
        wire, r.keyname, _rdata(r.algorithm, now, r.fudge, r.original_id, r.error, b"")
    )
