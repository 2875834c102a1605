"""The answer engine: RFC 1034 section 4.3.2 over compiled zone versions.

Owns: choosing the zone that answers, the lookup inside it (exact match,
delegation, CNAME and DNAME chains, RFC 4592 wildcards, RFC 2308 negative
answers) and additional-section processing.  Pure: zone versions and a question
in, an ``Answer`` value out; NXDOMAIN is a state, never an exception.

``locate`` exposes the walk itself (where a name lands: node, empty
non-terminal, wildcard, NXDOMAIN, delegation, DNAME) over any ``ZoneIndex``,
so the linter asks the same code the answers come from.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from authd.limits import MAX_CHAIN
from authd.zone import Node, ZoneIndex, ZoneVersion

RdataType = dns.rdatatype.RdataType
IN = dns.rdataclass.IN

# Longest CNAME/DNAME chain followed inside a zone before we stop and return
# what we have (BIND restarts at most 11 times; 12 links is ample for real data).

EDE_NOT_AUTHORITATIVE = 20

# A zone table maps an apex to its version; None marks a zone that failed to
# load and must answer SERVFAIL rather than fall through to a parent zone.
ZoneTable = Mapping[dns.name.Name, "ZoneVersion | None"]

# A node as a ZoneIndex holds it: a compiled version's RRsets, or a grouping's.
N = TypeVar("N", bound=Mapping[RdataType, object])


class State(enum.Enum):
    ANSWER = "answer"  # data found (possibly after a chain)
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    DELEGATION = "delegation"  # referral to a child zone
    REFUSED = "refused"  # not our zone
    SERVFAIL = "servfail"  # our zone, but it failed to load


@dataclass(slots=True)
class Answer:
    """The sections of a response before rendering; built once per lookup."""

    state: State
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    aa: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    # Additional records whose loss must set TC (RFC 9471 in-domain glue)...
    required: list[dns.rrset.RRset] = field(default_factory=list)
    # ...and those that are dropped silently when they do not fit (RFC 2181 s9).
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    ede: int | None = None  # an Extended DNS Error code (RFC 8914) for the OPT
    # The wildcard that synthesized the answer (RFC 4592), for rate limiting:
    # every name it answers is one response class, as BIND and NSD count them.
    wildcard: dns.name.Name | None = None


def find_zone(
    zones: ZoneTable, qname: dns.name.Name, qtype: int
) -> tuple[dns.name.Name, ZoneVersion | None] | None:
    """The closest enclosing zone of *qname*, or None when we have none.

    DS lives on the parent side of a cut (RFC 4035 section 3.1.4.1): at a
    child's apex it is answered from the parent zone when we also host that.
    """
    n = qname
    while True:
        if n in zones:
            if qtype == RdataType.DS and n == qname and len(n) > 1:
                parent = find_zone(zones, n.parent(), RdataType.A)
                if parent is not None:
                    return parent
            return n, zones[n]
        if len(n) <= 1:
            return None
        n = n.parent()


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    out: dns.rrset.RRset = rrset.copy()
    out.name = owner
    return out


def _cname_rrset(owner: dns.name.Name, target: dns.name.Name, ttl: int) -> dns.rrset.RRset:
    rdata = dns.rdtypes.ANY.CNAME.CNAME(IN, RdataType.CNAME, target)
    return dns.rrset.from_rdata(owner, ttl, rdata)


class _Walk(enum.Enum):
    FOUND = 1  # the node for qname exists (may be empty: ENT)
    WILDCARD = 2  # qname does not exist; a wildcard at the closest encloser does
    NXDOMAIN = 3
    CUT = 4  # a delegation at or above qname
    DNAME = 5  # a DNAME strictly above qname


def _walk(
    zone: ZoneIndex[N], qname: dns.name.Name, qtype: int
) -> tuple[_Walk, dns.name.Name, N | None]:
    """Descend from the apex to *qname*, stopping at cuts and DNAMEs.

    Returns the outcome, the name it concerns (the cut, the DNAME owner, the
    closest encloser, or qname itself) and its node.
    """
    origin = zone.origin
    nodes = zone.nodes
    if origin in zone.dnames and qname != origin:
        return _Walk.DNAME, origin, nodes[origin]
    depth = len(origin)
    qlen = len(qname)
    if qlen == depth:
        return _Walk.FOUND, qname, nodes[origin]
    cuts = zone.cuts
    dnames = zone.dnames
    if not cuts and not dnames:
        node = nodes.get(qname)
        if node is not None:
            return _Walk.FOUND, qname, node
        # No cuts or DNAMEs to stop at: just find the closest encloser.
        ancestor = qname.parent()
        while ancestor not in nodes:
            ancestor = ancestor.parent()
        return _wildcard_or_nx(zone, ancestor)
    encloser = origin
    for i in range(depth + 1, qlen + 1):
        name = qname.split(i)[1] if i < qlen else qname
        node = nodes.get(name)
        if node is None:
            return _wildcard_or_nx(zone, encloser)
        if name in cuts and not (name == qname and qtype == RdataType.DS):
            return _Walk.CUT, name, node
        if name in dnames and name != qname:
            return _Walk.DNAME, name, node
        encloser = name
    return _Walk.FOUND, qname, nodes[qname]


def _wildcard_or_nx(
    zone: ZoneIndex[N], encloser: dns.name.Name
) -> tuple[_Walk, dns.name.Name, N | None]:
    if zone.wildcards:
        source = dns.name.Name((b"*", *encloser.labels))
        node = zone.nodes.get(source)
        if node is not None:
            return _Walk.WILDCARD, source, node
    return _Walk.NXDOMAIN, encloser, None


class Place(enum.Enum):
    """Where a name lands in a zone, as the lookup descends to it: the states
    behind every answer (Knot's HIT/DELEG/MISS...), for callers that want the
    place rather than the sections (the linter, ``authd check``)."""

    OUTSIDE = "outside"  # not at or below the zone's apex
    NODE = "node"  # the name exists and has data
    EMPTY_NON_TERMINAL = "empty-non-terminal"  # exists, with no data (RFC 4592 2.2.2)
    WILDCARD = "wildcard"  # does not exist; the closest encloser's ``*`` answers
    NXDOMAIN = "nxdomain"  # does not exist, no wildcard
    DELEGATION = "delegation"  # at or below a cut: the child's data
    DNAME = "dname"  # strictly below a DNAME owner: redirected (RFC 6672)


@dataclass(frozen=True, slots=True)
class Location(Generic[N]):
    """The outcome of ``locate``: the place, and the name and node it concerns."""

    place: Place
    # The name itself (NODE, EMPTY_NON_TERMINAL), the wildcard owner, the cut,
    # the DNAME owner, or the closest encloser (NXDOMAIN); None when OUTSIDE.
    owner: dns.name.Name | None
    node: N | None  # that owner's node; None for OUTSIDE and NXDOMAIN


_PLACES = {
    _Walk.WILDCARD: Place.WILDCARD,
    _Walk.NXDOMAIN: Place.NXDOMAIN,
    _Walk.CUT: Place.DELEGATION,
    _Walk.DNAME: Place.DNAME,
}


def locate(zone: ZoneIndex[N], name: dns.name.Name, qtype: int = RdataType.A) -> Location[N]:
    """Where *name* lands in *zone*: the very walk ``resolve`` answers from.

    *qtype* matters only for DS, which is looked up on the parent side of a
    cut (RFC 4035 section 3.1.4.1).
    """
    if not name.is_subdomain(zone.origin):
        return Location(Place.OUTSIDE, None, None)
    outcome, owner, node = _walk(zone, name, qtype)
    if outcome is _Walk.FOUND:
        place = Place.NODE if node else Place.EMPTY_NON_TERMINAL
        return Location(place, owner, node)
    return Location(_PLACES[outcome], owner, node)


def _is_authoritative(zone: ZoneVersion, name: dns.name.Name) -> bool:
    """True when *name* is in the zone and not at or below a delegation."""
    if not name.is_subdomain(zone.origin):
        return False
    if not zone.cuts:
        return True
    n = name
    while len(n) > len(zone.origin):
        if n in zone.cuts:
            return False
        n = n.parent()
    return True


def _addresses(
    zone: ZoneVersion, targets: list[dns.name.Name], glue_ok: bool
) -> list[dns.rrset.RRset]:
    """A records for every target, then AAAA, so IPv4 survives truncation first."""
    found = []
    for rdtype in (RdataType.A, RdataType.AAAA):
        for target in targets:
            if not glue_ok and not _is_authoritative(zone, target):
                continue
            node = zone.nodes.get(target)
            if node is not None and rdtype in node:
                found.append(node[rdtype])
    return found


def _dedupe(
    rrsets: list[dns.rrset.RRset], seen: set[tuple[dns.name.Name, RdataType]]
) -> list[dns.rrset.RRset]:
    out = []
    for r in rrsets:
        key = (r.name, r.rdtype)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


_TARGET_ATTR = {RdataType.NS: "target", RdataType.MX: "exchange", RdataType.SRV: "target"}


def _additional_for(zone: ZoneVersion, rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    targets: list[dns.name.Name] = []
    for rrset in rrsets:
        attr = _TARGET_ATTR.get(rrset.rdtype)
        if attr is None:
            continue
        for rd in rrset:
            target = getattr(rd, attr)
            if target not in targets and target != dns.name.root:
                targets.append(target)
    return _addresses(zone, [t for t in targets if t.is_subdomain(zone.origin)], False)


def _referral(
    zone: ZoneVersion, cut: dns.name.Name, node: Node, result: Answer, dnssec: bool
) -> None:
    ns = node[RdataType.NS]
    result.authority.append(ns)
    # DS proves a secure delegation; only DNSSEC-aware (DO) clients get it (RFC 4035 3.1.4).
    if dnssec and RdataType.DS in node:
        result.authority.append(node[RdataType.DS])
    targets = [rd.target for rd in ns]
    # RFC 9471: glue below the cut is required; sibling glue is optional.
    in_domain = [t for t in targets if t.is_subdomain(cut)]
    sibling = [t for t in targets if not t.is_subdomain(cut) and t.is_subdomain(zone.origin)]
    result.required.extend(_addresses(zone, in_domain, True))
    result.additional.extend(_addresses(zone, sibling, True))


def _any_rrsets(node: Node, minimal: bool) -> list[dns.rrset.RRset]:
    rrsets = [node[t] for t in sorted(node)]
    if minimal and rrsets:
        # RFC 8482 section 4.1: answer ANY with one RRset (as BIND's minimal-any).
        return rrsets[:1]
    return rrsets


def resolve(
    zone: ZoneVersion,
    qname: dns.name.Name,
    qtype: int,
    *,
    minimal_responses: bool = False,
    minimal_any: bool = False,
    dnssec: bool = False,
) -> Answer:
    """Answer (*qname*, *qtype*) from *zone*, following chains inside it.

    *dnssec* is the query's DO bit.
    """
    result = Answer(State.ANSWER)
    seen: set[dns.name.Name] = set()
    current = qname
    for _ in range(MAX_CHAIN + 1):
        seen.add(current)
        outcome, owner, node = _walk(zone, current, qtype)
        if outcome is _Walk.CUT:
            assert node is not None
            _referral(zone, owner, node, result, dnssec)
            result.state = State.DELEGATION
            # A referral alone is not authoritative; after a chain the answer is.
            result.aa = bool(result.answer)
            return _finish(zone, result, minimal_responses)
        if outcome is _Walk.DNAME:
            assert node is not None
            dname = node[RdataType.DNAME]
            result.answer.append(dname)
            try:
                target = current.relativize(owner).concatenate(dname[0].target)
            except dns.name.NameTooLong:
                # RFC 6672 section 2.2: the substituted name is too long.
                result.rcode = dns.rcode.YXDOMAIN
                return _finish(zone, result, minimal_responses)
            result.answer.append(_cname_rrset(current, target, dname.ttl))
            # Asked for the CNAME itself: the synthesized one is the answer, as
            # for a real CNAME (RFC 1034 4.3.2 step 3a); NSD, Knot and BIND agree.
            if qtype == RdataType.CNAME:
                return _finish(zone, result, minimal_responses)
            if not target.is_subdomain(zone.origin) or target in seen:
                return _finish(zone, result, minimal_responses)
            current = target
            continue
        if outcome is _Walk.NXDOMAIN:
            result.state = State.NXDOMAIN
            result.rcode = dns.rcode.NXDOMAIN
            result.authority.append(zone.negative_soa)
            return _finish(zone, result, minimal_responses)
        assert node is not None
        synthesize = outcome is _Walk.WILDCARD
        if synthesize and result.wildcard is None:
            result.wildcard = owner
        if RdataType.CNAME in node and qtype not in (RdataType.CNAME, RdataType.ANY):
            cname = node[RdataType.CNAME]
            result.answer.append(_renamed(cname, current) if synthesize else cname)
            target = cname[0].target
            if not target.is_subdomain(zone.origin) or target in seen:
                return _finish(zone, result, minimal_responses)
            current = target
            continue
        if qtype == RdataType.ANY:
            rrsets = _any_rrsets(node, minimal_any)
        else:
            rrset = node.get(RdataType.make(qtype))
            rrsets = [] if rrset is None else [rrset]
        if not rrsets:
            result.state = State.NODATA if not result.answer else State.ANSWER
            result.authority.append(zone.negative_soa)
            return _finish(zone, result, minimal_responses)
        if synthesize:
            rrsets = [_renamed(r, current) for r in rrsets]
        result.answer.extend(rrsets)
        if not minimal_responses:
            result.additional.extend(_additional_for(zone, rrsets))
        return _finish(zone, result, minimal_responses)
    # The chain limit was reached: return the links we have (NOERROR, as BIND).
    return _finish(zone, result, minimal_responses)


def _finish(zone: ZoneVersion, result: Answer, minimal_responses: bool) -> Answer:
    seen = {(r.name, r.rdtype) for r in result.answer}
    result.required = _dedupe(result.required, seen)
    result.additional = [] if minimal_responses else _dedupe(result.additional, seen)
    return result


def answer_query(
    zones: ZoneTable,
    qname: dns.name.Name,
    qtype: int,
    *,
    minimal_responses: bool = False,
    minimal_any: bool = False,
    dnssec: bool = False,
) -> Answer:
    """The full engine: pick the zone, then resolve inside it."""
    found = find_zone(zones, qname, qtype)
    if found is None:
        # EDE 20 "Not Authoritative" (RFC 8914 s4.21), as NSD and Knot send.
        return Answer(State.REFUSED, dns.rcode.REFUSED, aa=False, ede=EDE_NOT_AUTHORITATIVE)
    _, zone = found
    if zone is None:
        return Answer(State.SERVFAIL, dns.rcode.SERVFAIL, aa=False)
    return resolve(
        zone,
        qname,
        qtype,
        minimal_responses=minimal_responses,
        minimal_any=minimal_any,
        dnssec=dnssec,
    )
