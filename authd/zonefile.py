"""Master-file (RFC 1035 section 5) parsing into records with their source lines.

Owns: turning zone-file text into ``Record`` tuples with absolute owner names,
dnspython rdata, and the ``file:line`` each came from.  Invariant: a file either
parses completely or raises ``ZoneError`` naming the first bad line; nothing
partial is ever returned.
"""

from __future__ import annotations

from typing import NamedTuple

import dns.name
import dns.rdata


class Record(NamedTuple):
    """One resource record as read from a zone file."""

    name: dns.name.Name  # absolute owner name
    ttl: int
    rdata: dns.rdata.Rdata  # class IN; ``rdata.rdtype`` gives the type
    file: str
    line: int


def parse_zone_file(path: str, origin: dns.name.Name) -> list[Record]:
    """Parse the zone file at *path* whose initial ``$ORIGIN`` is *origin*."""
    raise NotImplementedError


def parse_zone_text(text: str, origin: dns.name.Name, filename: str = "<text>") -> list[Record]:
    """Parse zone-file *text*; ``$INCLUDE`` paths are relative to *filename*'s folder."""
    raise NotImplementedError
