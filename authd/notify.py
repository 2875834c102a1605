"""NOTIFY out (RFC 1996): whom to tell about a new serial, and the message.

Owns: the target list (``also_notify``, and with ``notify: yes`` the zone's
NS hosts at the addresses our own zones give them, minus the SOA MNAME host
and our own listening sockets) and building the NOTIFY request.  Pure: the
adapter sends, retries and logs.

We never resolve NS names through the system resolver: a lab's example
addresses must not turn into traffic to the outside world, and a primary
normally hosts the addresses of its secondaries' names or lists them in
``also_notify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdatatype
import dns.rrset
import dns.tsig

from authd.config import NotifyMode, Remote, ZoneConfig
from authd.zone import ZoneVersion

RdataType = dns.rdatatype.RdataType
NOTIFY_PORT = 53


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    port: int
    key: dns.name.Name | None


def targets(
    zc: ZoneConfig,
    version: ZoneVersion,
    zones: Mapping[dns.name.Name, ZoneVersion | None],
    ourselves: Iterable[tuple[str, int]],
) -> list[Target]:
    """Where to send NOTIFY for *version* of *zc* (RFC 1996 section 3.6)."""
    if zc.notify is NotifyMode.NO:
        return []
    out: list[Target] = [Target(r.address, r.port, r.key) for r in zc.also_notify]
    if zc.notify is NotifyMode.YES:
        mname = version.soa[0].mname
        apex = version.nodes[version.origin]
        ns = apex.get(RdataType.NS)
        for rd in ns if ns is not None else ():
            host = rd.target
            if host == mname:
                continue  # the primary master does not need telling
            for address in _addresses(host, zones):
                out.append(Target(address, NOTIFY_PORT, None))
    mine = set(ourselves)
    seen: set[tuple[str, int]] = set()
    result = []
    for t in out:
        if (t.address, t.port) in mine or (t.address, t.port) in seen:
            continue
        seen.add((t.address, t.port))
        result.append(t)
    return result


def _addresses(host: dns.name.Name, zones: Mapping[dns.name.Name, ZoneVersion | None]) -> list[str]:
    for origin, version in zones.items():
        if version is None or not host.is_subdomain(origin):
            continue
        node = version.nodes.get(host)
        if node is None:
            continue
        return [rd.address for t in (RdataType.A, RdataType.AAAA) if t in node for rd in node[t]]
    return []


def message(
    version: ZoneVersion, key: dns.tsig.Key | None = None, fudge: int = 300
) -> dns.message.Message:
    """A NOTIFY for *version*, carrying its SOA in the answer section (RFC 1996 3.7)."""
    msg = dns.message.make_query(version.origin, RdataType.SOA)
    msg.set_opcode(dns.opcode.NOTIFY)
    msg.flags = dns.flags.AA | dns.opcode.to_flags(dns.opcode.NOTIFY)
    msg.answer.append(version.soa)
    if key is not None:
        msg.use_tsig(key, fudge=fudge)
    return msg


def remote_of(target: Target) -> Remote:
    return Remote(target.address, target.port, target.key)
