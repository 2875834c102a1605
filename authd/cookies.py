"""DNS cookies (RFC 7873) with the interoperable server cookie of RFC 9018.

Owns: reading a request's COOKIE option, checking the server cookie it
carries, and making the one a response returns.  A server cookie is 16
bytes: version 1, three reserved zero bytes, a 32-bit timestamp, and
SipHash-2-4 (keyed with the server secret) over client cookie | version |
reserved | timestamp | client address (RFC 9018 section 4.4).  Servers that
share the secret (an anycast group, or authd beside BIND) accept each
other's cookies.

Invariants: pure (the time and the secret are passed in; a random secret is
the adapter's to make); a cookie is valid only if its hash matches under the
current or the previous secret and its timestamp is at most an hour old and
at most five minutes ahead (RFC 9018 section 4.3), in serial arithmetic so
2106 is no cliff; a valid cookie younger than half an hour is echoed, any
other gets a fresh one, so answering a valid client costs one hash.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import siphashc

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

VERSION = 1
_HEADER = bytes((VERSION, 0, 0, 0))


@dataclass(frozen=True, slots=True)
class Settings:
    """``options.cookies``: secrets are 16 bytes (32 hex digits); none: random at start."""

    enabled: bool = True
    secret: bytes | None = None
    previous_secret: bytes | None = None  # still accepted, during a rollover


@dataclass(frozen=True, slots=True)
class Secrets:
    current: bytes
    previous: bytes | None = None

    def __post_init__(self) -> None:
        for s in (self.current, self.previous):
            if s is not None and len(s) != COOKIE_SECRET_LEN:
                raise ValueError(f"a cookie secret is {COOKIE_SECRET_LEN} bytes")


@dataclass(frozen=True, slots=True)
class Checked:
    """What a request's cookie gets: the option data to return, and whether it was ours."""

    reply: bytes  # client cookie + server cookie, for the response's COOKIE option
    valid: bool  # a valid server cookie came with the request (exempt from RRL)


def well_formed(length: int) -> bool:
    """RFC 7873 section 5.2.2: any other length is FORMERR."""
    return length == COOKIE_CLIENT_LEN or (
        COOKIE_CLIENT_LEN + COOKIE_SERVER_MIN <= length <= COOKIE_CLIENT_LEN + COOKIE_SERVER_MAX
    )


def _address(client: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET, client)
    except OSError:
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, client.split("%", 1)[0])
    except OSError:
        return client.encode()  # not an address (tests' fake clients): still deterministic


def server_cookie(secret: bytes, client_cookie: bytes, address: bytes, timestamp: int) -> bytes:
    """The 16-byte server cookie for *client_cookie* from *address* at *timestamp*."""
    head = _HEADER + (timestamp & 0xFFFFFFFF).to_bytes(4, "big")
    digest = siphashc.siphash(secret, client_cookie + head + address)
    return head + digest.to_bytes(8, "little")  # SipHash's output bytes, as the reference


def _age(timestamp: int, now: int) -> int:
    """now - timestamp in 32-bit serial arithmetic (negative: from the future)."""
    d = (now - timestamp) & 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


def examine(secrets: Secrets, data: bytes, client: str, now: int) -> Checked:
    """Check the COOKIE option *data* (its length already well formed) from *client*."""
    client_cookie = data[:COOKIE_CLIENT_LEN]
    server = data[COOKIE_CLIENT_LEN:]
    address = _address(client)
    if len(server) == COOKIE_SERVER_LEN and server[:4] == _HEADER:
        stamp = int.from_bytes(server[4:8], "big")
        age = _age(stamp, now)
        if -COOKIE_MAX_FUTURE <= age <= COOKIE_MAX_AGE:
            for secret in (secrets.current, secrets.previous):
                if secret is None:
                    continue
                if server_cookie(secret, client_cookie, address, stamp) == server:
                    if age < COOKIE_REFRESH_AGE and secret is secrets.current:
                        return Checked(data, True)
                    fresh = server_cookie(secrets.current, client_cookie, address, now)
                    return Checked(client_cookie + fresh, True)
    # Only a client cookie, or a server cookie that is not (or no longer) ours:
    # RFC 7873 sections 5.2.3 and 5.2.4, answered normally with a fresh one.
    fresh = server_cookie(secrets.current, client_cookie, address, now)
    return Checked(client_cookie + fresh, False)
