"""Iterative resolution through the lab, step by step, explained as a teacher would.

Owns the resolver's reasoning: which server to ask and why, reading a reply as
an answer, a referral, a CNAME or a lame answer, looking up a name server whose
glue is missing, retrying a truncated reply over TCP.  Invariant: no I/O here;
the caller passes ``ask(address, name, type, tcp) -> Message | None`` (None: no
answer in time), so the walk is the same against a live lab or a table in a
test.  Every walk is bounded by LAB_TRACE_MAX_QUERIES and LAB_TRACE_MAX_DEPTH.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authd.limits import LAB_TRACE_MAX_DEPTH, LAB_TRACE_MAX_QUERIES, MAX_CHAIN

Ask = Callable[[str, dns.name.Name, dns.rdatatype.RdataType, bool], "dns.message.Message | None"]


class Outcome(enum.Enum):
    ANSWER = "answer"
    NXDOMAIN = "NXDOMAIN"
    NODATA = "no data"
    SERVFAIL = "SERVFAIL"


@dataclass(frozen=True, slots=True)
class Step:
    depth: int  # 0: the question itself; 1+: looking up a name server's address
    text: str


@dataclass(frozen=True, slots=True)
class Hop:
    """One zone on the way down: the server of it that answered, and its reply
    (a referral to the next zone, or the last hop's answer)."""

    zone: dns.name.Name
    address: str
    reply: dns.message.Message


@dataclass(slots=True)
class Segment:
    """The walk for one name from the root (a CNAME starts a new one)."""

    qname: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    hops: list[Hop] = field(default_factory=list)


@dataclass(slots=True)
class Trace:
    """What a walk found: its steps, the outcome, and the answer records."""

    steps: list[Step] = field(default_factory=list)
    outcome: Outcome = Outcome.SERVFAIL
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    queries: int = 0
    why: str = ""  # for SERVFAIL: what went wrong
    # The question's own walk, zone by zone (not the name servers' lookups):
    # what ``authd.labchain`` follows the chain of trust along.
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Read:
    """One reply, understood: ``kind`` is answer, nxdomain, nodata or referral."""

    kind: str
    rrsets: tuple[dns.rrset.RRset, ...] = ()
    child: dns.name.Name | None = None  # a referral's zone
    servers: tuple[NameServer, ...] = ()  # and its servers


@dataclass(frozen=True, slots=True)
class NameServer:
    host: dns.name.Name
    addresses: tuple[str, ...]  # from glue (or hints); empty: must be looked up


def _zone_text(zone: dns.name.Name) -> str:
    return "the root zone" if zone == dns.name.root else f"zone {zone}"


class Walker:
    """One trace: ``run(name, type)`` walks from *hints* (the lab's root servers)."""

    def __init__(self, ask: Ask, hints: list[NameServer]) -> None:
        self.ask = ask
        self.hints = hints
        self.trace = Trace()
        self._hop: Hop | None = None  # the last zone's reply that was understood

    def say(self, depth: int, text: str) -> None:
        self.trace.steps.append(Step(depth, text))

    def run(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Trace:
        outcome, answer, why = self._resolve(name, rdtype, 0)
        self.trace.outcome, self.trace.answer, self.trace.why = outcome, answer, why
        return self.trace

    # -- the walk

    def _resolve(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, depth: int
    ) -> tuple[Outcome, list[dns.rrset.RRset], str]:
        answer: list[dns.rrset.RRset] = []
        seen_names = {qname}
        zone = dns.name.root
        servers = list(self.hints)
        self.say(
            depth,
            f"Resolve {qname} {dns.rdatatype.to_text(rdtype)}: start at the root, the only "
            "servers a resolver knows by heart (its hints).",
        )
        segment = Segment(qname, rdtype)
        if depth == 0:
            self.trace.segments.append(segment)
        while True:
            reply, used = self._ask_zone(zone, servers, qname, rdtype, depth)
            if reply is not None and self._hop is not None and depth == 0:
                segment.hops.append(self._hop)
            if reply is None:
                why = f"no server of {_zone_text(zone)} gave a usable answer"
                self.say(depth, f"Give up: {why} -> SERVFAIL.")
                return Outcome.SERVFAIL, answer, why
            kind = reply.kind
            if kind == "referral" and reply.child is not None:
                zone, servers = reply.child, list(reply.servers)
                continue
            if kind == "answer":
                rrsets = list(reply.rrsets)
                answer.extend(rrsets)
                target = self._cname_target(rrsets, qname, rdtype)
                if target is None:
                    return Outcome.ANSWER, answer, ""
                if target in seen_names or len(seen_names) > MAX_CHAIN:
                    why = f"CNAME loop: {target} was already on the chain"
                    self.say(depth, f"Give up: {why} -> SERVFAIL.")
                    return Outcome.SERVFAIL, answer, why
                seen_names.add(target)
                self.say(
                    depth,
                    f"{qname} is an alias (CNAME) for {target}: the walk starts again "
                    "from the root for the new name.",
                )
                qname, zone, servers = target, dns.name.root, list(self.hints)
                if depth == 0:
                    segment = Segment(qname, rdtype)
                    self.trace.segments.append(segment)
                continue
            outcome = Outcome.NXDOMAIN if kind == "nxdomain" else Outcome.NODATA
            return outcome, answer, ""

    def _cname_target(
        self, rrsets: list[dns.rrset.RRset], qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.name.Name | None:
        """Follow the CNAMEs inside one answer; the name still to resolve, or None."""
        name = qname
        for _ in range(MAX_CHAIN):
            if any(r.name == name and r.rdtype == rdtype for r in rrsets):
                return None
            cname = next(
                (r for r in rrsets if r.name == name and r.rdtype == dns.rdatatype.CNAME), None
            )
            if cname is None or rdtype == dns.rdatatype.CNAME:
                return None if name == qname else name
            name = cname[0].target
        return name

    def _ask_zone(
        self,
        zone: dns.name.Name,
        servers: list[NameServer],
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        depth: int,
    ) -> tuple[Read | None, NameServer | None]:
        for ns in servers:
            addresses = ns.addresses
            if not addresses:
                addresses = self._lookup_address(ns.host, zone, depth)
                if not addresses:
                    continue
            for address in addresses:
                if self.trace.queries >= LAB_TRACE_MAX_QUERIES:
                    self.say(depth, f"Stop: {LAB_TRACE_MAX_QUERIES} queries sent, the limit.")
                    return None, None
                why = "a root server" if zone == dns.name.root else f"a server of {zone}"
                self.say(
                    depth,
                    f"Ask {ns.host} ({address}), {why}, for {qname} "
                    f"{dns.rdatatype.to_text(rdtype)} over UDP, with EDNS, no recursion.",
                )
                reply = self._query(address, qname, rdtype, depth)
                if reply is None:
                    continue
                read = self._read(reply, zone, qname, rdtype, ns, address, depth)
                if read is not None:
                    self._hop = Hop(zone, address, reply)
                    return read, ns
        return None, None

    def _query(
        self, address: str, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, depth: int
    ) -> dns.message.Message | None:
        self.trace.queries += 1
        reply = self.ask(address, qname, rdtype, False)
        if reply is None:
            self.say(depth, "  No answer in time (timeout): try the next server.")
            return None
        if reply.flags & dns.flags.TC:
            self.say(
                depth,
                "  The answer is truncated (TC bit): it did not fit in UDP, so ask again over TCP.",
            )
            self.trace.queries += 1
            reply = self.ask(address, qname, rdtype, True)
            if reply is None:
                self.say(
                    depth,
                    "  No answer over TCP: this server cannot give the whole answer "
                    "(TCP blocked?). Try the next server.",
                )
                return None
        return reply

    def _read(
        self,
        reply: dns.message.Message,
        zone: dns.name.Name,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        ns: NameServer,
        address: str,
        depth: int,
    ) -> Read | None:
        rcode = reply.rcode()
        aa = bool(reply.flags & dns.flags.AA)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self.say(
                depth,
                f"  {ns.host} answers {dns.rcode.to_text(rcode)}: it does not serve "
                f"{zone} (a lame delegation). Try the next server.",
            )
            return None
        if aa and rcode == dns.rcode.NXDOMAIN:
            self.say(depth, f"  Authoritative answer: {qname} does not exist (NXDOMAIN).")
            return Read("nxdomain")
        # With DO (trace --dnssec) the answer holds RRSIGs: the chain of trust reads them.
        data = [r for r in reply.answer if r.rdtype != dns.rdatatype.RRSIG]
        if aa and data:
            for rrset in data:
                self.say(depth, f"  Authoritative answer: {rrset.to_text().splitlines()[0]}")
                for line in rrset.to_text().splitlines()[1:]:
                    self.say(depth, f"                        {line}")
            return Read("answer", tuple(data))
        if aa:
            self.say(
                depth,
                f"  Authoritative answer: {qname} exists but has no "
                f"{dns.rdatatype.to_text(rdtype)} records (NODATA).",
            )
            return Read("nodata")
        cut = next(
            (
                r
                for r in reply.authority
                if r.rdtype == dns.rdatatype.NS
                and qname.is_subdomain(r.name)
                and r.name.is_subdomain(zone)
                and r.name != zone
            ),
            None,
        )
        if cut is None:
            self.say(
                depth,
                f"  {ns.host} is not authoritative and gives no referral closer to {qname}: "
                "a lame answer. Try the next server.",
            )
            return None
        glue: dict[dns.name.Name, list[str]] = {}
        for r in reply.additional:
            if r.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                glue.setdefault(r.name, []).extend(str(rd) for rd in r)
        nss = []
        self.say(depth, f"  Referral: {cut.name} is delegated to other servers:")
        for rd in cut:
            host = rd.target
            addrs = tuple(a for a in glue.get(host, []) if ":" not in a)
            if addrs:
                note = f"glue {', '.join(addrs)}"
            elif host.is_subdomain(cut.name):
                note = "NO GLUE, though the name is inside the child zone (missing glue)"
            else:
                note = "no glue (its name is outside the zone: look it up separately)"
            self.say(depth, f"    NS {host}  {note}")
            nss.append(NameServer(host, addrs))
        # Servers with glue first: they cost no extra lookups.
        nss.sort(key=lambda n: (not n.addresses, n.host.to_text()))
        return Read("referral", child=cut.name, servers=tuple(nss))

    def _lookup_address(
        self, host: dns.name.Name, zone: dns.name.Name, depth: int
    ) -> tuple[str, ...]:
        if depth + 1 > LAB_TRACE_MAX_DEPTH:
            self.say(depth, f"  Cannot look up {host}: lookups nested {LAB_TRACE_MAX_DEPTH} deep.")
            return ()
        self.say(
            depth,
            f"  To ask {host} we need its address: a separate lookup of {host} A, from the root.",
        )
        outcome, answer, _ = self._resolve(host, dns.rdatatype.A, depth + 1)
        addrs = tuple(str(rd) for r in answer if r.rdtype == dns.rdatatype.A for rd in r)
        if addrs:
            self.say(depth, f"  {host} is at {', '.join(addrs)}; back to {_zone_text(zone)}.")
        else:
            self.say(depth, f"  {host} has no address ({outcome.value}): skip it.")
        return addrs


def trace(
    ask: Ask, hints: list[NameServer], name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> Trace:
    """Resolve *name* *rdtype* iteratively from *hints*, asking through *ask*."""
    return Walker(ask, hints).run(name, rdtype)


def summary(result: Trace, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> list[str]:
    """The closing lines: the outcome and the answer records."""
    head = f"Result for {name} {dns.rdatatype.to_text(rdtype)}: {result.outcome.value}"
    if result.outcome is Outcome.SERVFAIL:
        return [f"{head} ({result.why})"]
    lines = [head] + [line for r in result.answer for line in r.to_text().splitlines()]
    lines.append(f"({result.queries} queries)")
    return lines
