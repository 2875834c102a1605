"""``authd lab check`` as values: a delegation's facts in, findings out.

Owns the judgement, in the spirit of Zonemaster's delegation and consistency
tests: for each delegation, do the parent's NS and the child's agree, is the
glue the child's own address, does every listed server answer authoritatively
over UDP (with and without EDNS) and TCP, with the same serial.  Each finding
names the lab scenario it reveals.  Invariant: pure; the command gathers the
facts (``Delegation``) over the network and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name


@dataclass(frozen=True, slots=True)
class ServerProbe:
    """What one server of a zone said to ``SOA`` questions at its address."""

    host: dns.name.Name
    address: str | None  # None: no address could be found
    udp_edns: bool  # an authoritative answer over UDP with EDNS
    udp_plain: bool  # the same without EDNS
    tcp: bool
    serial: int | None
    apex_cname: bool = False  # the apex holds a CNAME
    replied: bool = False  # any reply at all (REFUSED included)


@dataclass(frozen=True, slots=True)
class Delegation:
    zone: dns.name.Name
    parent: dns.name.Name
    parent_ns: frozenset[dns.name.Name]  # the referral's NS set
    glue: dict[dns.name.Name, frozenset[str]]  # the referral's glue
    child_ns: frozenset[dns.name.Name] | None  # the child's apex NS (None: nobody said)
    child_addresses: dict[dns.name.Name, frozenset[str]]  # the child's own A for in-zone NS
    probes: tuple[ServerProbe, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    scenario: str  # the lab scenario this reveals
    zone: dns.name.Name
    text: str

    def __str__(self) -> str:
        return f"{self.zone}: {self.text} [{self.scenario}]"


def judge(d: Delegation) -> list[Finding]:
    """The findings for one delegation; empty when it is healthy."""
    out: list[Finding] = []

    def add(scenario: str, text: str) -> None:
        out.append(Finding(scenario, d.zone, text))

    for host in sorted(d.parent_ns):
        if host.is_subdomain(d.zone) and not d.glue.get(host):
            add("missing-glue", f"{d.parent} delegates to {host}, inside the zone, with no glue")
        own = d.child_addresses.get(host)
        given = d.glue.get(host)
        if given and own is not None and own != given:
            add(
                "glue-mismatch",
                f"glue for {host} in {d.parent} is {', '.join(sorted(given))}, "
                f"the child says {', '.join(sorted(own)) or 'nothing'}",
            )
    if d.child_ns is not None and d.child_ns != d.parent_ns:
        only_parent = sorted(d.parent_ns - d.child_ns)
        only_child = sorted(d.child_ns - d.parent_ns)
        parts = []
        if only_parent:
            parts.append("only the parent lists " + ", ".join(map(str, only_parent)))
        if only_child:
            parts.append("only the child lists " + ", ".join(map(str, only_child)))
        add("ns-differ", f"parent and child NS sets differ: {'; '.join(parts)}")
    serials = set()
    for p in d.probes:
        where = f"{p.host} ({p.address})"
        if p.address is None:
            continue  # reported as missing glue, or the name does not resolve
        if not (p.udp_edns or p.udp_plain or p.tcp):
            if p.replied:
                add("lame", f"{where} answers, but not authoritatively for {d.zone}")
            else:
                add("silent", f"{where} does not answer at all (UDP or TCP)")
            continue
        if p.udp_plain and not p.udp_edns:
            add("drop-edns", f"{where} answers plain DNS but not queries with EDNS")
        if p.udp_edns and not p.tcp:
            add("udp-only", f"{where} answers over UDP but not over TCP")
        if p.apex_cname:
            add("cname-apex", f"{where} has a CNAME at the apex of {d.zone}")
        if p.serial is not None:
            serials.add(p.serial)
    if len(serials) > 1:
        add("stale-secondary", f"servers disagree on the serial: {sorted(serials)}")
    return out
