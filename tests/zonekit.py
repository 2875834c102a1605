"""Zones and snapshots from zone-file text, and the pure front door as a client.

Owns: the small steps every table-driven test repeats - compile zone text
into a ``ZoneVersion``, wrap versions into a ``Snapshot``, send a question
through ``authd.query.handle`` and read the reply back as dnspython text.
Nothing here opens a socket; the end-to-end tests use ``tests/serverkit.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from authd.checks import Severity
from authd.config import Options
from authd.query import Request, Transport, handle
from authd.snapshot import Snapshot, View
from authd.zone import ZoneVersion, compile_zone
from authd.zonefile import parse_zone_text

CLIENT = "192.0.2.99"
LOCAL = "127.0.0.1"


def _name(origin: str | dns.name.Name) -> dns.name.Name:
    return origin if isinstance(origin, dns.name.Name) else dns.name.from_text(origin)


def zone_from_text(text: str, origin: str | dns.name.Name) -> ZoneVersion:
    """Parse and compile *text*; any error finding fails the calling test."""
    name = _name(origin)
    result = compile_zone(name, parse_zone_text(text, name), "<text>")
    errors = [str(f) for f in result.findings if f.severity is Severity.ERROR]
    assert not errors, errors
    assert result.version is not None
    return result.version


def snapshot_from_texts(
    zones: Mapping[str, str | None], generation: int = 0, **options: object
) -> Snapshot:
    """One view holding *zones* (origin -> text; None: a zone that failed to load)."""
    table: dict[dns.name.Name, ZoneVersion | None] = {}
    for origin, text in zones.items():
        name = _name(origin)
        table[name] = None if text is None else zone_from_text(text, name)
    return Snapshot((View("default", 0, table),), Options(**options), generation)  # type: ignore[arg-type]


def with_options(snapshot: Snapshot, **options: object) -> Snapshot:
    """*snapshot*'s views with other options (and a fresh, empty cache)."""
    return Snapshot(
        snapshot.views, dataclasses.replace(snapshot.options, **options), snapshot.generation + 1
    )


def make_query(
    qname: str,
    qtype: str | int = "A",
    rdclass: str | int = "IN",
    *,
    edns: int = -1,
    payload: int = 1232,
    do: bool = False,
    flags: int = 0,
    nsid: bool = False,
    qid: int = 0x1234,
) -> dns.message.QueryMessage:
    """A query as a resolver sends it: RD clear unless *flags* says so."""
    options = [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")] if nsid else None
    q = dns.message.make_query(
        qname,
        qtype,
        rdclass,
        use_edns=edns if edns >= 0 else (0 if (do or nsid) else False),
        payload=payload,
        want_dnssec=do,
        options=options,
        id=qid,
    )
    q.flags = flags
    return q


def exchange(
    snapshot: Snapshot, wire: bytes, tcp: bool = False, client: str = CLIENT
) -> bytes | None:
    """*wire* through the front door: the one response, or None when dropped."""
    transport = Transport.TCP if tcp else Transport.UDP
    reply = handle(Request(wire, client, LOCAL, transport), snapshot)
    assert len(reply.messages) <= 1, reply.messages
    return reply.messages[0] if reply.messages else None


def ask(
    snapshot: Snapshot, qname: str, qtype: str | int = "A", *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    """Ask (*qname*, *qtype*) and parse the response, which must exist."""
    query = make_query(qname, qtype, **kw)  # type: ignore[arg-type]
    out = exchange(snapshot, query.to_wire(), tcp=tcp)
    assert out is not None, "query dropped"
    response = dns.message.from_wire(out)
    assert response.id == query.id
    return response


def _group_sorted(lines: Iterable[str]) -> list[str]:
    """Normalise RR lines: collapse blanks, lowercase the owner, sort inside each RRset.

    RRsets keep their order (it matters: CNAME chains, A before AAAA); the
    records of one RRset may come in any order.
    """
    out: list[str] = []
    group: list[str] = []
    key: tuple[str, ...] | None = None
    for raw in lines:
        words = raw.split()
        if not words:
            continue
        words[0] = words[0].lower()
        line = " ".join(words)
        k = (words[0], words[3] if len(words) > 3 else "")
        if k != key and group:
            out.extend(sorted(group))
            group = []
        key = k
        group.append(line)
    out.extend(sorted(group))
    return out


def section_text(rrsets: Iterable[object]) -> list[str]:
    """The RR lines of a message section, normalised by ``_group_sorted``."""
    lines: list[str] = []
    for rrset in rrsets:
        lines.extend(rrset.to_text().splitlines())  # type: ignore[attr-defined]
    return _group_sorted(lines)


def expect_lines(text: str) -> list[str]:
    """Expected RR lines from a table cell (one RR per line)."""
    return _group_sorted(text.strip().splitlines())


def flags_text(msg: dns.message.Message) -> str:
    """The header flags, in a fixed order (``QR AA TC RD RA AD CD``)."""
    order = ["QR", "AA", "TC", "RD", "RA", "AD", "CD"]
    present = set(dns.flags.to_text(msg.flags).split())
    return " ".join(f for f in order if f in present)


def check(
    msg: dns.message.Message,
    rcode: str,
    flags: str | None = None,
    answer: str = "",
    authority: str = "",
    additional: str | None = "",
) -> None:
    """Assert rcode, flags and sections; ``additional=None`` skips that section."""
    assert dns.rcode.to_text(msg.rcode()) == rcode, msg.to_text()
    if flags is not None:
        assert flags_text(msg) == flags, msg.to_text()
    assert section_text(msg.answer) == expect_lines(answer), msg.to_text()
    assert section_text(msg.authority) == expect_lines(authority), msg.to_text()
    if additional is not None:
        assert section_text(msg.additional) == expect_lines(additional), msg.to_text()
