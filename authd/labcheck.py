"""``authd lab check`` as values: a delegation's facts in, findings out.

Owns the judgement, in the spirit of Zonemaster's delegation and consistency
tests: does every listed server answer authoritatively over UDP (with and
without EDNS) and TCP, with the same serial.  Whether the parent's NS and the
child's agree and the glue is the child's own address is ``authd check``'s
cross-zone judgement (``authd.delegation.compare``), reused here on what the
servers answered.  Each finding names the lab scenario it reveals.
Invariant: pure; the command gathers the facts (``Delegation``) over the
network and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name

from authd import delegation, labchain
from authd.labscenarios import DS_MISMATCH, EXPIRED_SIGNATURES

# What a bogus chain reveals; a problem no scenario makes is a plain "dnssec" finding.
_CHAIN_SCENARIO = {
    labchain.Problem.DS_MATCHES_NO_KEY: DS_MISMATCH,
    labchain.Problem.EXPIRED: EXPIRED_SIGNATURES,
    labchain.Problem.NOT_YET_VALID: EXPIRED_SIGNATURES,
}
DNSSEC_FINDING = "dnssec"


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
    # the child's own addresses for the in-zone NS (of the parent's set and its own)
    child_addresses: dict[dns.name.Name, frozenset[str]]
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

    diff = delegation.compare(d.zone, d.parent_ns, d.glue, d.child_ns, d.child_addresses)
    for host in diff.missing_glue:
        add("missing-glue", f"{d.parent} delegates to {host}, inside the zone, with no glue")
    for m in diff.glue_mismatch:
        add(
            "glue-mismatch",
            f"glue for {m.host} in {d.parent} is {', '.join(sorted(m.glue))}, "
            f"the child says {', '.join(sorted(m.child)) or 'nothing'}",
        )
    if diff.ns_differ:
        parts = []
        if diff.only_parent:
            parts.append("only the parent lists " + ", ".join(map(str, diff.only_parent)))
        if diff.only_child:
            parts.append("only the child lists " + ", ".join(map(str, diff.only_child)))
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


def judge_chain(zone: dns.name.Name, verdict: labchain.Verdict | None) -> list[Finding]:
    """The finding for *zone*'s chain of trust in a signed lab (secure: none)."""
    if verdict is None or verdict.state is labchain.State.SECURE:
        return []
    if verdict.state is labchain.State.INSECURE:
        text = f"the chain of trust ends at {verdict.zone}: {verdict.why}"
        return [Finding(DNSSEC_FINDING, zone, text)]
    assert verdict.problem is not None
    scenario = _CHAIN_SCENARIO.get(verdict.problem, DNSSEC_FINDING)
    return [Finding(scenario, zone, f"chain of trust bogus: {verdict.why}")]
