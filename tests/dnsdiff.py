"""Differential questioning of DNS servers: questions from zones, answers as values.

Owns: deriving a bounded set of questions from zone files (every owner name
and empty non-terminal times the common types, probes below delegations,
wildcards and DNAMEs, nonexistent siblings and children, mixed case, no-EDNS
and TCP ANY variants), asking a server over loopback, reducing a reply to a
comparable ``Outcome`` and printing the difference between two outcomes.

Invariants: comparisons ignore the message ID, the order of RRsets and of
records in an RRset, and the letter case of owner names and of names inside
RDATA (RFC 4343); they keep TTLs, header flags, rcode, EDNS and the question
exactly as received.  Zone files are read through ``named-compilezone`` so
``$INCLUDE`` and ``$GENERATE`` are expanded the way BIND does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

QUERY_TIMEOUT = 2.0  # seconds for one question over loopback
EDNS_PAYLOAD = 1232  # RFC 8906/DNS flag day 2020 value; what the peers default to
MAX_QUESTIONS_PER_ZONE = 5000  # a zone generating more is a mistake in the zone
COMMON_TYPES = ("SOA", "NS", "A", "AAAA", "MX", "TXT", "CNAME", "DS")

# A label that no test zone uses: probes for nonexistent names.
NX_LABEL = "zz-nx-probe"


@dataclass(frozen=True, slots=True)
class Question:
    """One query to send: name as sent (case kept), type, transport, EDNS."""

    qname: str
    qtype: str
    tcp: bool = False
    edns: bool = True
    why: str = ""
    rd: bool = True  # dnspython's default, as a stub resolver sends
    dnssec_ok: bool = False
    edns_version: int = 0
    payload: int = EDNS_PAYLOAD
    opcode: str = "QUERY"
    qclass: str = "IN"

    def label(self) -> str:
        transport = "TCP" if self.tcp else "UDP"
        edns = f"EDNS {self.payload}" if self.edns else "no EDNS"
        extras = [
            f"EDNS version {self.edns_version}" if self.edns_version else "",
            "DO" if self.dnssec_ok else "",
            "RD clear" if not self.rd else "",
            f"opcode {self.opcode}" if self.opcode != "QUERY" else "",
        ]
        more = "".join(f", {extra}" for extra in extras if extra)
        return (
            f"{self.qname} {self.qclass} {self.qtype} over {transport}, {edns}{more} ({self.why})"
        )


# One RRset as compared: lower-cased owner, class, type, TTL, canonical RDATA texts.
RRsetKey = tuple[str, str, str, int, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A reply reduced to what the differential compares (or why there is none)."""

    error: str | None = None
    rcode: str = ""
    opcode: str = ""
    flags: frozenset[str] = frozenset()
    question: tuple[str, ...] = ()
    edns: str | None = None
    answer: frozenset[RRsetKey] = frozenset()
    authority: frozenset[RRsetKey] = frozenset()
    additional: frozenset[RRsetKey] = frozenset()

    def sections(self) -> dict[str, frozenset[RRsetKey]]:
        return {
            "answer": self.answer,
            "authority": self.authority,
            "additional": self.additional,
        }


@dataclass(slots=True)
class ZoneData:
    """A zone as read for question generation."""

    origin: dns.name.Name
    nodes: dict[dns.name.Name, set[str]] = field(default_factory=dict)  # name -> types


def read_zone(origin: str, path: Path) -> ZoneData:
    """Read *path* as BIND expands it (``$INCLUDE``, ``$GENERATE``)."""
    done = subprocess.run(
        ["named-compilezone", "-q", "-i", "none", "-k", "ignore", "-s", "full"]
        + ["-o", "-", origin, path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    zone = dns.zone.from_text(done.stdout, origin, relativize=False, check_origin=False)
    data = ZoneData(zone.origin or dns.name.from_text(origin))
    for name, node in zone.nodes.items():
        data.nodes[name] = {dns.rdatatype.to_text(rds.rdtype) for rds in node.rdatasets}
    return data


def _mixed_case(name: dns.name.Name) -> str:
    text = name.to_text()
    return "".join(c.upper() if i % 2 == 0 else c.lower() for i, c in enumerate(text))


def _child(label: str, parent: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((label.encode(),) + parent.labels)


def questions_for_zone(zone: ZoneData) -> list[Question]:
    """The questions that exercise *zone*; deterministic and bounded."""
    origin = zone.origin
    owners = set(zone.nodes)
    # Empty non-terminals: ancestors of owners, inside the zone, without data.
    ents = set()
    for name in owners:
        parent = name.parent() if name != origin else origin
        while parent != origin and parent.is_subdomain(origin):
            if parent not in owners:
                ents.add(parent)
            parent = parent.parent()
    cuts = {n for n, types in zone.nodes.items() if "NS" in types and n != origin}
    dnames = {n for n, types in zone.nodes.items() if "DNAME" in types}
    wildcards = {n for n in owners if n.labels and n.labels[0] == b"*"}

    probes: dict[dns.name.Name, str] = {}
    for name in sorted(owners | ents):
        probes.setdefault(_child(NX_LABEL, name), "nonexistent child")
        if name != origin:
            probes.setdefault(_child(NX_LABEL, name.parent()), "nonexistent sibling")
    for cut in cuts:
        probes[_child("below", cut)] = "below a delegation"
        probes[_child("deep", _child("below", cut))] = "below a delegation"
    for wild in wildcards:
        parent = wild.parent()
        probes[_child("match", parent)] = "wildcard match"
        probes[_child("two", _child("levels", parent))] = "wildcard match, two labels"
        probes[_child("ghost", wild)] = "below the wildcard owner"
    for dname in dnames:
        probes[_child("www", dname)] = "below a DNAME"
        probes[_child("a", _child("b", dname))] = "below a DNAME, two labels"
    for name in list(probes):
        if name in owners or name in ents:
            del probes[name]

    result: list[Question] = []
    for name in sorted(owners | ents):
        why = "empty non-terminal" if name in ents else "owner"
        types = sorted(zone.nodes.get(name, set()) | set(COMMON_TYPES))
        text = name.to_text()
        for qtype in types:
            result.append(Question(text, qtype, why=why))
        own = sorted(zone.nodes.get(name, {"A"}))
        result.append(Question(_mixed_case(name), own[0], why=f"{why}, mixed case"))
        result.append(Question(text, own[0], rd=False, why=f"{why}, as a resolver asks"))
        result.append(Question(text, own[0], dnssec_ok=True, why=f"{why}, DO set"))
        for qtype in own:
            result.append(Question(text, qtype, edns=False, why=f"{why}, no EDNS"))
            result.append(Question(text, qtype, tcp=True, why=f"{why}, over TCP"))
        result.append(Question(text, "ANY", tcp=True, why=f"{why}, ANY over TCP"))
    for name, why in sorted(probes.items()):
        for qtype in ("A", "AAAA", "MX", "TXT", "NS", "DS", "CNAME"):
            result.append(Question(name.to_text(), qtype, why=why))
        result.append(Question(name.to_text(), "ANY", tcp=True, why=f"{why}, ANY over TCP"))
    if len(result) > MAX_QUESTIONS_PER_ZONE:
        raise ValueError(f"{origin}: {len(result)} questions, over {MAX_QUESTIONS_PER_ZONE}")
    return result


def _canonical_rdata(rdata: dns.rdata.Rdata) -> str:
    # to_digestable() lower-cases embedded names (RFC 4034 section 6.2) and
    # keeps everything else byte for byte; read back for a readable diff.
    wire = rdata.to_digestable()
    again = dns.rdata.from_wire(rdata.rdclass, rdata.rdtype, wire, 0, len(wire))
    return again.to_text()


def _section(rrsets: Iterable[dns.rrset.RRset]) -> frozenset[RRsetKey]:
    keys = []
    for rrset in rrsets:
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.covers != dns.rdatatype.NONE:
            rdtype += "(" + dns.rdatatype.to_text(rrset.covers) + ")"
        keys.append(
            (
                rrset.name.to_text().lower(),
                dns.rdataclass.to_text(rrset.rdclass),
                rdtype,
                rrset.ttl,
                frozenset(_canonical_rdata(rd) for rd in rrset),
            )
        )
    return frozenset(keys)


def outcome_of(reply: dns.message.Message) -> Outcome:
    """Reduce *reply* to the values the differential compares."""
    edns = None
    if reply.edns >= 0:
        options = ",".join(sorted(opt.to_text() for opt in reply.options))
        edns = (
            f"version={reply.edns} payload={reply.payload} "
            f"flags={dns.flags.edns_to_text(reply.ednsflags) or '-'} options=[{options}]"
        )
    return Outcome(
        rcode=dns.rcode.to_text(reply.rcode()),
        opcode=dns.opcode.to_text(reply.opcode()),
        flags=frozenset(dns.flags.to_text(reply.flags).split()),
        question=tuple(
            f"{q.name.to_text()} {dns.rdataclass.to_text(q.rdclass)} "
            f"{dns.rdatatype.to_text(q.rdtype)}"
            for q in reply.question
        ),
        edns=edns,
        answer=_section(reply.answer),
        authority=_section(reply.authority),
        additional=_section(reply.additional),
    )


def ask(question: Question, host: str, port: int, *, dnssec_ok: bool = False) -> Outcome:
    """Send *question* to host:port and reduce the reply (errors become outcomes)."""
    query = dns.message.make_query(
        question.qname,
        question.qtype,
        question.qclass,
        use_edns=question.edns_version if question.edns else False,
        payload=question.payload,
        want_dnssec=dnssec_ok or question.dnssec_ok,
    )
    if not question.rd:
        query.flags &= ~dns.flags.RD
    query.set_opcode(dns.opcode.from_text(question.opcode))
    try:
        if question.tcp:
            reply = dns.query.tcp(query, host, port=port, timeout=QUERY_TIMEOUT)
        else:
            reply = dns.query.udp(query, host, port=port, timeout=QUERY_TIMEOUT)
    except dns.exception.Timeout:
        return Outcome(error="timeout")
    except (dns.exception.DNSException, OSError, EOFError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    return outcome_of(reply)


def _rrset_lines(keys: Iterable[RRsetKey]) -> list[str]:
    lines = []
    for name, rdclass, rdtype, ttl, rdatas in sorted(keys):
        for rd in sorted(rdatas):
            lines.append(f"{name} {ttl} {rdclass} {rdtype} {rd}")
    return lines


def differences(expected: Outcome, got: Outcome) -> list[str]:
    """Readable lines saying how *got* differs from *expected*; empty if equal."""
    if expected == got:
        return []
    out: list[str] = []
    for attr in ("error", "rcode", "opcode", "question", "edns"):
        want, have = getattr(expected, attr), getattr(got, attr)
        if want != have:
            out.append(f"  {attr}: expected {want!r}, got {have!r}")
    if expected.flags != got.flags:
        out.append(
            f"  flags: expected {' '.join(sorted(expected.flags))}, "
            f"got {' '.join(sorted(got.flags))}"
        )
    for section, want in expected.sections().items():
        have = got.sections()[section]
        if want == have:
            continue
        out.append(f"  {section}:")
        for line in _rrset_lines(want - have):
            out.append(f"    - {line}")
        for line in _rrset_lines(have - want):
            out.append(f"    + {line}")
    return out


def render(outcome: Outcome) -> str:
    """The whole outcome as text, for reports."""
    if outcome.error:
        return f"error: {outcome.error}"
    lines = [
        f"rcode {outcome.rcode} flags {' '.join(sorted(outcome.flags))} edns {outcome.edns}",
    ]
    for section, keys in outcome.sections().items():
        for line in _rrset_lines(keys):
            lines.append(f"{section}: {line}")
    return "\n".join(lines)


def report(
    label: str, mismatches: Sequence[tuple[Question, Outcome, Outcome]], limit: int = 60
) -> str:
    """A report of *mismatches* as (question, expected, got), at most *limit* shown."""
    lines = [f"{len(mismatches)} {label}"]
    for question, expected, got in mismatches[:limit]:
        lines.append(f"* {question.label()}")
        lines.extend(differences(expected, got))
    if len(mismatches) > limit:
        lines.append(f"... and {len(mismatches) - limit} more")
    return "\n".join(lines)
