"""Semantic zone checks with stable ids, shared by the loader and the linter.

Owns: what makes a zone unservable (severity ``error``: the loader refuses the
zone) and what is merely suspicious (``warning``: loaded, logged).  Invariant:
the server refuses exactly the zones for which ``check_zone`` reports an error,
so a linter built on this module predicts what ``authd serve`` will do.

Checks run on the grouped records before compilation; they never mutate them.

Check ids are declared once, as members of ``LoaderCheck`` (the loader's
refusals and warnings) and, in ``authd.lint``, of ``LintCheck`` (the linter's
own warnings): each member carries its id, default severity, summary and
reference, and the linter's catalogue (``authd.lint.RULES``) is built from
them.  A finding's ``id`` is such a member (a ``str``, so ``f.id == "soa-missing"``
still holds and the id prints as itself).
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authd.limits import HEADER_LEN, MAX_MESSAGE, MAX_NAME_WIRE, OPT_FIXED_SIZE

RdataType = dns.rdatatype.RdataType


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


class CheckId(enum.StrEnum):
    """The base of every catalogue of check ids: a member is its stable id
    (kebab case) and carries its default severity, a one-line summary and the
    RFC (or other source) behind it."""

    severity: Severity
    summary: str
    reference: str

    def __new__(cls, id: str, severity: Severity, summary: str, reference: str = "") -> CheckId:
        member = str.__new__(cls, id)
        member._value_ = id
        member.severity = severity
        member.summary = summary
        member.reference = reference
        return member


_E, _W = Severity.ERROR, Severity.WARNING


class LoaderCheck(CheckId):
    """The ids the loader emits (``authd.checks``, ``authd.zone``) and the
    input failures every command shares: errors are exactly the refusals."""

    # Input: the server cannot read it either.
    UNREADABLE = ("unreadable", _E, "The zone file cannot be read.")
    CONFIG = ("config", _E, "The configuration is refused (authd serve would not start).")
    SYNTAX = ("syntax", _E, "The zone file does not parse.", "RFC 1035 section 5")
    # The loader's refusals (check_zone).
    SOA_MISSING = ("soa-missing", _E, "No SOA record at the zone apex.", "RFC 1035 section 5.2")
    SOA_MULTIPLE = (
        "soa-multiple",
        _E,
        "More than one SOA record at the apex.",
        "RFC 1035 section 5.2",
    )
    SOA_NOT_AT_APEX = (
        "soa-not-at-apex",
        _E,
        "An SOA record below the apex.",
        "RFC 1035 section 5.2",
    )
    NS_MISSING = ("ns-missing", _E, "No NS records at the zone apex.", "RFC 1035 section 5.2")
    CNAME_AND_OTHER_DATA = (
        "cname-and-other-data",
        _E,
        "A CNAME beside other data at the same name.",
        "RFC 2181 section 10.1",
    )
    CNAME_MULTIPLE = (
        "cname-multiple",
        _E,
        "More than one CNAME at a name.",
        "RFC 2181 section 10.1",
    )
    DNAME_MULTIPLE = ("dname-multiple", _E, "More than one DNAME at a name.", "RFC 6672")
    DNAME_CHILDREN = ("dname-children", _E, "Names below a DNAME owner.", "RFC 6672")
    NS_TARGET_NO_ADDRESS = (
        "ns-target-no-address",
        _E,
        "An apex NS target inside the zone has no A or AAAA.",
        "RFC 1034 section 4.2.1",
    )
    GLUE_MISSING = (
        "glue-missing",
        _E,
        "A delegation's NS target below the cut has no glue address.",
        "RFC 9471",
    )
    RRSET_TOO_LARGE = (
        "rrset-too-large",
        _E,
        "An RRset that no DNS message can carry: the answer with it alone is over 65,535 bytes.",
        "RFC 1035 section 4.2.2",
    )
    # The refusal of a reload (authd.snapshot), predicted by ``authd check --against``.
    SERIAL_NOT_INCREASED = (
        "serial-not-increased",
        _E,
        "The zone changed since the reference version but its serial did not increase.",
        "RFC 1982, RFC 1996",
    )
    # The loader's warnings (authd.zone).
    OUT_OF_ZONE = (
        "out-of-zone",
        _W,
        "A record outside the zone; ignored.",
        "RFC 1035 section 5.2",
    )
    TTL_MISMATCH = (
        "ttl-mismatch",
        _W,
        "Records of one RRset with different TTLs.",
        "RFC 2181 5.2",
    )
    RRSIG_TTL_MISMATCH = (
        "rrsig-ttl-mismatch",
        _W,
        "An RRSIG whose TTL differs from the TTL of the RRset it covers.",
        "RFC 4034 section 3",
    )
    DUPLICATE_RECORD = (
        "duplicate-record",
        _W,
        "The same record listed twice.",
        "RFC 2181 section 5",
    )


@dataclass(frozen=True, slots=True)
class Finding:
    id: str  # a ``CheckId`` member, e.g. ``LoaderCheck.CNAME_AND_OTHER_DATA``
    severity: Severity
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity.value}: {self.message} [{self.id}]"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an RRset came from: the first line of its first record."""

    file: str
    line: int


# The grouped view of a zone the checks read: owner -> type -> (rdatas, where).
Grouped = Mapping[dns.name.Name, Mapping[RdataType, tuple[list[object], Origin]]]

# Types allowed beside a CNAME (RFC 2181 section 10.1; RFC 4035 section 2.5).
CNAME_COMPANIONS = frozenset(
    {RdataType.CNAME, RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.KEY}
)
ADDRESS_TYPES = (RdataType.A, RdataType.AAAA)


def _finding(id: LoaderCheck, where: Origin, message: str) -> Finding:
    return Finding(id, id.severity, where.file, where.line, message)


def _distinct(rdatas: list[object]) -> int:
    """How many different records; a repeated identical one is a duplicate, not two."""
    return len(set(rdatas))


def _key(name: dns.name.Name) -> tuple[bytes, ...]:
    """*name*'s labels in lower case: a cheap set key (``Name.__hash__`` is slow)."""
    return tuple(map(bytes.lower, name.labels))


def check_zone(
    origin: dns.name.Name, grouped: Grouped, cuts: Iterable[dns.name.Name], zone_file: str
) -> list[Finding]:
    """Every finding for the zone *origin* whose records are *grouped*.

    *cuts* are the delegation points (owners of NS below the apex).
    """
    findings: list[Finding] = []
    apex = grouped.get(origin)
    top = Origin(zone_file, 0)
    if apex is None or RdataType.SOA not in apex:
        findings.append(
            _finding(LoaderCheck.SOA_MISSING, top, f"no SOA record at the apex {origin}")
        )
    else:
        rdatas, where = apex[RdataType.SOA]
        if len(rdatas) > 1 and _distinct(rdatas) != 1:
            findings.append(
                _finding(
                    LoaderCheck.SOA_MULTIPLE,
                    where,
                    f"{_distinct(rdatas)} SOA records at {origin}; a zone has exactly one",
                )
            )
    if apex is None or RdataType.NS not in apex:
        findings.append(
            _finding(LoaderCheck.NS_MISSING, top, f"no NS records at the apex {origin}")
        )
    cut_set = frozenset(cuts)
    dname_owners = []
    # Cheap membership tests first: most names have none of these types.
    SOA, CNAME, DNAME = RdataType.SOA, RdataType.CNAME, RdataType.DNAME
    for name, types in grouped.items():
        if SOA in types and name != origin:
            findings.append(
                _finding(
                    LoaderCheck.SOA_NOT_AT_APEX,
                    types[SOA][1],
                    f"SOA record at {name}, which is not the zone apex {origin}",
                )
            )
        if CNAME in types:
            rdatas, where = types[CNAME]
            if len(types) > 1:
                others = sorted(
                    dns.rdatatype.to_text(t) for t in types if t not in CNAME_COMPANIONS
                )
                if others:
                    findings.append(
                        _finding(
                            LoaderCheck.CNAME_AND_OTHER_DATA,
                            where,
                            f"{name} has a CNAME and other data ({', '.join(others)})",
                        )
                    )
            if len(rdatas) > 1 and _distinct(rdatas) > 1:
                findings.append(
                    _finding(
                        LoaderCheck.CNAME_MULTIPLE,
                        where,
                        f"{name} has {_distinct(rdatas)} CNAME records; at most one is allowed",
                    )
                )
        if DNAME in types:
            rdatas, where = types[DNAME]
            dname_owners.append((name, where))
            if len(rdatas) > 1 and _distinct(rdatas) > 1:
                findings.append(
                    _finding(
                        LoaderCheck.DNAME_MULTIPLE,
                        where,
                        f"{name} has {_distinct(rdatas)} DNAME records; at most one is allowed",
                    )
                )
    if dname_owners:
        findings.extend(_check_below_dname(grouped, dname_owners))
    findings.extend(_check_ns_addresses(origin, grouped, cut_set))
    findings.extend(_check_rrset_sizes(grouped))
    return findings


# An answer's fixed part: the header, the question's type and class, an OPT
# record (most clients send one; it is reserved before any data) and, per
# record, the owner as a pointer to the question plus type, class, TTL, RDLENGTH.
_ANSWER_FIXED = HEADER_LEN + 4 + OPT_FIXED_SIZE
_RR_FIXED = 2 + 10
# The largest wire rdata of the types whose size is bounded, and a cheap
# upper bound from the fields of some others; the rest are rendered, and any
# RRset over the bound is rendered as an answer carries it (names compressed).
_NAME = MAX_NAME_WIRE
_BITMAP = 256 * 34  # RFC 4034 section 4.1.2: 256 windows of 32 bytes and 2 more
_MAX_RDATA: dict[int, int] = {
    RdataType.A: 4,
    RdataType.AAAA: 16,
    **dict.fromkeys((RdataType.NS, RdataType.CNAME, RdataType.PTR, RdataType.DNAME), _NAME),
    RdataType.MX: 2 + _NAME,
    RdataType.SRV: 6 + _NAME,
    RdataType.SOA: 2 * _NAME + 20,
    RdataType.HINFO: 2 * 256,
    RdataType.NAPTR: 4 + 3 * 256 + _NAME,
    RdataType.NSEC: _NAME + _BITMAP,
    RdataType.NSEC3: 5 + 2 * 256 + _BITMAP,
    RdataType.NSEC3PARAM: 5 + 255,
}
_RDATA_BOUND: dict[int, Callable[[dns.rdata.Rdata], int]] = {
    **dict.fromkeys(
        (RdataType.TXT, RdataType.SPF),
        lambda rd: 256 * len(rd.strings),  # type: ignore[attr-defined]
    ),
    RdataType.RRSIG: lambda rd: 18 + _NAME + len(rd.signature),  # type: ignore[attr-defined]
    RdataType.DNSKEY: lambda rd: 4 + len(rd.key),  # type: ignore[attr-defined]
    RdataType.DS: lambda rd: 4 + len(rd.digest),  # type: ignore[attr-defined]
}


def _rdata_len(rd: dns.rdata.Rdata) -> int:
    return len(rd.to_wire() or b"")


_BUDGET = MAX_MESSAGE - _ANSWER_FIXED - MAX_NAME_WIRE


def rrset_may_be_too_large(rdtype: int, rdatas: Sequence[dns.rdata.Rdata]) -> bool:
    """Whether an RRset of these records may be over a message (the cheap
    bound of ``rrset-too-large``; only then is it rendered to be exact)."""
    n = len(rdatas)
    most = _MAX_RDATA.get(rdtype)
    if most is not None and n * (_RR_FIXED + most) <= _BUDGET:
        return False
    measure = _RDATA_BOUND.get(rdtype, _rdata_len)
    return n * _RR_FIXED + sum(map(measure, rdatas)) > _BUDGET


def _check_rrset_sizes(grouped: Grouped) -> list[Finding]:
    """RRsets too large for any message (RFC 1035 section 4.2.2: 65,535 bytes):
    even alone, over TCP, their answer could only be an empty one with TC set.

    A bound first (no rendering for the common types); only an RRset over it
    is rendered as an answer would carry it (names compressed), to be exact.
    """
    findings = []
    for name, types in grouped.items():
        for rdtype, (rdatas, where) in types.items():
            rds: list[dns.rdata.Rdata] = rdatas  # type: ignore[assignment]
            if not rrset_may_be_too_large(rdtype, rds):
                continue
            groups: dict[RdataType, list[dns.rdata.Rdata]] = {}
            for rd in dict.fromkeys(rds):  # duplicates are dropped at load
                covered = rd.covers() if rdtype == RdataType.RRSIG else RdataType.TYPE0
                groups.setdefault(covered, []).append(rd)
            for covered, members in groups.items():
                size = _answer_size(name, rdtype, covered, members)
                if size > MAX_MESSAGE:
                    text = dns.rdatatype.to_text(rdtype)
                    if covered:
                        text += f" covering {dns.rdatatype.to_text(covered)}"
                    findings.append(
                        _finding(
                            LoaderCheck.RRSET_TOO_LARGE,
                            where,
                            f"the RRset {name} {text} ({len(members)} records) needs {size} "
                            f"bytes in an answer, over the {MAX_MESSAGE} a DNS message holds",
                        )
                    )
    return findings


def _answer_size(
    name: dns.name.Name, rdtype: RdataType, covered: RdataType, rdatas: list[dns.rdata.Rdata]
) -> int:
    """The size of the smallest answer carrying this RRset: with its question
    (the longest name a wildcard may answer) and an OPT record."""
    f = io.BytesIO()
    f.write(bytes(HEADER_LEN))
    compress: dict[dns.name.Name, int] = {}
    name.to_wire(f, compress)
    qname_len = f.tell() - HEADER_LEN
    f.write(bytes(4))
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype, covered)
    for rd in rdatas:
        rrset.add(rd)
    rrset.to_wire(f, compress)
    wildcard = bool(name.labels) and name.labels[0] == b"*"
    longest = MAX_NAME_WIRE - qname_len if wildcard else 0
    return f.tell() + OPT_FIXED_SIZE + longest


def _check_below_dname(
    grouped: Grouped, owners: list[tuple[dns.name.Name, Origin]]
) -> list[Finding]:
    # RFC 6672 section 2.3: a DNAME owner has no descendants.
    below: dict[tuple[bytes, ...], list[Finding]] = {_key(owner): [] for owner, _ in owners}
    wheres = {_key(owner): (owner, where) for owner, where in owners}
    depths = sorted({len(key) for key in below})
    for name, types in grouped.items():
        n = len(name.labels)
        if n <= depths[0]:
            continue
        key = _key(name)
        for depth in depths:
            if depth >= n:
                break
            found = below.get(key[-depth:])
            if found is not None:
                owner, where = wheres[key[-depth:]]
                first = next(iter(types.values()))[1]
                found.append(
                    _finding(
                        LoaderCheck.DNAME_CHILDREN,
                        first,
                        f"{name} is below the DNAME at {owner} ({where.file}:{where.line})",
                    )
                )
    return [f for owner, _ in owners for f in below[_key(owner)]]


def _check_ns_addresses(
    origin: dns.name.Name, grouped: Grouped, cuts: frozenset[dns.name.Name]
) -> list[Finding]:
    findings = []
    origin_key = _key(origin)
    depth = len(origin_key)
    for owner in [origin, *cuts]:
        types = grouped.get(owner)
        if types is None or RdataType.NS not in types:
            continue
        rdatas, where = types[RdataType.NS]
        for rd in rdatas:
            target = rd.target  # type: ignore[attr-defined]
            tkey = _key(target)
            if len(tkey) < depth or tkey[len(tkey) - depth :] != origin_key:
                continue  # not in the zone
            # Only addresses at or below a cut the NS lives at are glue that is
            # required; targets inside authoritative data must simply exist.
            tt = grouped.get(target, {})
            if any(t in tt for t in ADDRESS_TYPES):
                continue
            # Rare (a target without addresses), so no set of every cut's
            # labels up front: freeing one for a zone of many delegations
            # holds the GIL for milliseconds.
            labels = target.labels
            below_cut = any(
                dns.name.Name(labels[i:]) in cuts for i in range(len(labels) - len(origin.labels))
            )
            if owner == origin and not below_cut:
                findings.append(
                    _finding(
                        LoaderCheck.NS_TARGET_NO_ADDRESS,
                        where,
                        f"NS target {target} is in the zone but has no A or AAAA record",
                    )
                )
            elif owner != origin and target.is_subdomain(owner):
                findings.append(
                    _finding(
                        LoaderCheck.GLUE_MISSING,
                        where,
                        f"delegation {owner} needs glue for {target}, which has no A or AAAA",
                    )
                )
    # Cuts come from a set: order the findings by where they are.
    findings.sort(key=lambda f: (f.file, f.line))
    return findings
