"""The zone linter's own checks: the warnings ``authd check`` adds to the loader's.

Owns: the linter's own check ids (``LintCheck``, declared beside the checks
below; the loader's are ``authd.checks.LoaderCheck``), the catalogue of both
(``RULES``, built from those declarations), the per-zone warnings, the
cross-zone checks run when several zones are checked together, and the serial
comparison behind ``--against``.

It owns no lookup and no "same data" of its own: names are looked up by the
engine's walk (``authd.engine.locate`` on ``authd.zone.GroupingIndex``), and
``--against`` compares compiled versions with ``ZoneVersion.same_content`` and
explains a refused step with ``authd.serial.step_problem``, as the server's
reload does.  A fix to either reaches ``authd check``.

Invariant: nothing here makes a zone a *refusal*.  A zone's refusals
(``ERROR_IDS``) are exactly the findings of ``authd.checks.check_zone`` on the
same ``Grouping`` the loader builds (``authd.zone.group_records``), plus the
parser's syntax error, so ``authd check`` reports a refusal exactly when
``authd serve`` would refuse the zone.  The one refusal made here,
``serial-not-increased``, is the refusal of a reload (``authd.build.load_one``)
and needs a previous version to compare with.  The other errors are DNSSEC's
(``authd.lint_dnssec``): zones the server serves but validators reject.

Pure: records and groupings in, findings out; no files, no clock (the DNSSEC
validity checks are given *now*).  The warning checks run only here, never on
the server's load path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.SRV
import dns.rdtypes.nsbase
import dns.reversename

from authd import delegation
from authd.checks import CheckId, Finding, LoaderCheck, Origin, Severity, check_zone
from authd.engine import Place, locate
from authd.errors import ZoneError
from authd.limits import MAX_CHAIN
from authd.lint_dnssec import DnssecCheck, LintOptions, SignedZone, lint_delegation, lint_signed
from authd.serial import step_problem as serial_step_problem
from authd.zone import Grouping, compile_grouping, group_records, grouping_index
from authd.zonefile import Record

RdataType = dns.rdatatype.RdataType
Name = dns.name.Name
ERROR, WARNING = Severity.ERROR, Severity.WARNING

# --- limits (each a named constant; docs/linting.md explains the choices) -----

#: TTLs above one week are suspicious: resolvers cap them (BIND max-cache-ttl).
TTL_LONG = 7 * 86400
#: RFC 2181 section 8: a TTL above 2^31 - 1 is treated as zero.
TTL_MAX = 2**31 - 1
#: RFC 1912 section 2.2: refresh between 20 minutes and 12 hours.
SOA_REFRESH_RANGE = (1200, 43200)
#: Retry below refresh (RFC 1912 section 2.2); below a minute is a hammering.
SOA_RETRY_MIN = 60
#: RFC 1912 section 2.2 suggests 2-4 weeks; RIPE-203 recommends 1000 hours.
SOA_EXPIRE_RANGE = (14 * 86400, 1000 * 3600)
#: The negative-caching TTL (RFC 2308 section 5: 1-3 hours work well, more than
#: a day is problematic); below a minute a miss is hardly cached at all.
SOA_MINIMUM_RANGE = (60, 86400)
#: A CNAME chain longer than this is warned about (resolvers restart a query
#: about 8-16 times; authd itself follows at most ``engine.MAX_CHAIN`` links).
CNAME_CHAIN_WARN = 8
#: Near the RFC 1035 section 2.3.4 limits of 63 octets a label, 255 a name.
LABEL_NEAR_LIMIT = 60
NAME_NEAR_LIMIT = 240


@dataclass(frozen=True, slots=True)
class Rule:
    """One check id: its default severity, what it means, and why."""

    id: str
    severity: Severity
    summary: str
    reference: str = ""


_W = WARNING


class LintCheck(CheckId):
    """The linter's own warnings (the loader's ids are ``checks.LoaderCheck``)."""

    # The linter's warnings.
    NS_TARGET_CNAME = ("ns-target-cname", _W, "An NS target is an alias.", "RFC 2181 section 10.3")
    MX_TARGET_CNAME = (
        "mx-target-cname",
        _W,
        "An MX exchange is an alias.",
        "RFC 2181 section 10.3",
    )
    SRV_TARGET_CNAME = ("srv-target-cname", _W, "An SRV target is an alias.", "RFC 2782")
    MX_TARGET_NO_ADDRESS = (
        "mx-target-no-address",
        _W,
        "An MX exchange in a checked zone has no A or AAAA.",
        "RFC 5321 section 5.1",
    )
    SRV_TARGET_NO_ADDRESS = (
        "srv-target-no-address",
        _W,
        "An SRV target in a checked zone has no A or AAAA.",
        "RFC 2782",
    )
    NS_TARGET_UNRESOLVABLE = (
        "ns-target-unresolvable",
        _W,
        "A delegation's NS target in a checked zone (not glue the loader requires) has "
        "no A or AAAA.",
        "RFC 1034 section 4.2.2",
    )
    SIBLING_GLUE_MISSING = (
        "sibling-glue-missing",
        _W,
        "An NS target below another delegation in the zone has no glue.",
        "RFC 9471",
    )
    TARGET_IS_ADDRESS = (
        "target-is-address",
        _W,
        "An NS, MX or SRV target that looks like an IP address.",
        "RFC 1035 section 3.3.9",
    )
    TARGET_ROOT = (
        "target-root",
        _W,
        "An NS, MX or SRV target of '.' where it is not allowed.",
        "RFC 7505, RFC 2782",
    )
    CNAME_TARGET_MISSING = (
        "cname-target-missing",
        _W,
        "A CNAME points to a name that does not exist in a checked zone.",
        "RFC 1034 section 3.6.2",
    )
    CNAME_CHAIN_LONG = ("cname-chain-long", _W, "A long CNAME chain.", "RFC 1912 section 2.4")
    CNAME_LOOP = ("cname-loop", _W, "CNAMEs (or DNAMEs) that loop.", "RFC 1912 section 2.4")
    GLUE_UNUSED = (
        "glue-unused",
        _W,
        "Address records below a delegation that no NS record names.",
        "RFC 1034 section 4.2.1",
    )
    OCCLUDED_DATA = (
        "occluded-data",
        _W,
        "Data at or below a delegation point that is never served.",
        "RFC 1034 section 4.2.1",
    )
    TTL_ZERO = ("ttl-zero", _W, "A TTL of 0: never cached.", "RFC 1035 section 3.2.1")
    TTL_LONG = ("ttl-long", _W, "A TTL longer than a week.", "resolvers cap TTLs")
    TTL_OVER_MAX = ("ttl-over-max", _W, "A TTL above 2^31 - 1, read as 0.", "RFC 2181 section 8")
    SOA_REFRESH = ("soa-refresh", _W, "SOA refresh outside 20 minutes .. 12 hours.", "RFC 1912 2.2")
    SOA_RETRY = ("soa-retry", _W, "SOA retry not below refresh, or under a minute.", "RFC 1912 2.2")
    SOA_EXPIRE = ("soa-expire", _W, "SOA expire outside 2 weeks .. 1000 hours.", "RFC 1912 2.2")
    SOA_MINIMUM = (
        "soa-minimum",
        _W,
        "SOA minimum outside 1 minute .. 1 day.",
        "RFC 2308 section 5",
    )
    LABEL_NEAR_LIMIT = (
        "label-near-limit",
        _W,
        "A label of 60 octets or more (limit 63).",
        "RFC 1035 2.3.4",
    )
    NAME_NEAR_LIMIT = (
        "name-near-limit",
        _W,
        "A name of 240 octets or more (limit 255).",
        "RFC 1035 2.3.4",
    )
    WILDCARD_NS = ("wildcard-ns", _W, "A wildcard owning NS records.", "RFC 4592 section 4.2")
    WILDCARD_DNAME = ("wildcard-dname", _W, "A wildcard owning a DNAME.", "RFC 4592 section 4.4")
    WILDCARD_NON_TERMINAL = (
        "wildcard-non-terminal",
        _W,
        "A '*' label that is not the first one: not a wildcard.",
        "RFC 4592 section 2.1.1",
    )
    DNAME_AND_NS = ("dname-and-ns", _W, "A DNAME beside NS below the apex.", "RFC 6672")
    DS_NOT_AT_DELEGATION = (
        "ds-not-at-delegation",
        _W,
        "A DS record that is not at a delegation point.",
        "RFC 4035 section 2.4",
    )
    HOSTNAME_SYNTAX = (
        "hostname-syntax",
        _W,
        "A host name (A/AAAA owner, NS/MX/SRV target, SOA MNAME) that is not "
        "letters, digits and hyphens.",
        "RFC 952, RFC 1123 section 2.1",
    )
    # Classic zone-file mistakes (named-checkzone users expect them).
    MISSING_TRAILING_DOT = (
        "missing-trailing-dot",
        _W,
        "A name that repeats the origin: written without its trailing dot.",
        "RFC 1035 section 5.1",
    )
    NO_TTL_DIRECTIVE = (
        "no-ttl-directive",
        _W,
        "No $TTL, and records that give no TTL rely on one inferred.",
        "RFC 2308 section 4",
    )
    SOA_SERIAL_ZERO = (
        "soa-serial-zero",
        _W,
        "SOA serial 0: legal, but widely read as 'unset'.",
        "RFC 1982, RFC 1996",
    )
    # Across the zones checked together.
    DELEGATION_NS_MISMATCH = (
        "delegation-ns-mismatch",
        _W,
        "The parent's NS records for a child differ from the child's apex NS.",
        "RFC 1034 section 4.2.2",
    )
    DELEGATION_GLUE_MISMATCH = (
        "delegation-glue-mismatch",
        _W,
        "The parent's glue differs from the child's addresses for the same name.",
        "RFC 1034 section 4.2.2",
    )
    DELEGATION_MISSING = (
        "delegation-missing",
        _W,
        "A checked zone is inside another checked zone that does not delegate it.",
        "RFC 1034 section 4.2.2",
    )
    PTR_NO_FORWARD = (
        "ptr-no-forward",
        _W,
        "A PTR whose target, in a checked zone, has no A/AAAA with that address.",
        "RFC 1912 section 2.1",
    )


#: Every check id ``authd check`` can report, from their declarations: the
#: loader's (``LoaderCheck``), the linter's (``LintCheck``) and the DNSSEC ones
#: (``authd.lint_dnssec.DnssecCheck``).
RULES: Mapping[str, Rule] = {
    c.value: Rule(c.value, c.severity, c.summary, c.reference)
    for c in (*LoaderCheck, *LintCheck, *DnssecCheck)
}

#: The ids the server refuses a zone for, and which ``--disable`` cannot hide.
#: DNSSEC errors are not among them: the server serves such a zone (validators
#: reject its answers), so a deliberately broken test zone may disable them.
ERROR_IDS = frozenset(c.value for c in LoaderCheck if c.severity is ERROR)


def _finding(id: CheckId, where: Origin, message: str) -> Finding:
    return Finding(id, id.severity, where.file, where.line, message)


def _key(name: Name) -> tuple[bytes, ...]:
    """*name*'s labels in lower case: a cheap set key (``Name.__hash__`` is slow)."""
    return tuple(map(bytes.lower, name.labels))


_A, _AAAA, _NS, _CNAME, _DNAME, _SOA = (
    RdataType.A,
    RdataType.AAAA,
    RdataType.NS,
    RdataType.CNAME,
    RdataType.DNAME,
    RdataType.SOA,
)
_MX, _SRV, _DS, _PTR = RdataType.MX, RdataType.SRV, RdataType.DS, RdataType.PTR
_RRSIG, _NSEC3PARAM = RdataType.RRSIG, RdataType.NSEC3PARAM
_ROOT = dns.name.root.labels
_TYPE_TEXT = {t: dns.rdatatype.to_text(t) for t in (_NS, _MX, _SRV, _CNAME)}
_ADDRESS = (_A, _AAAA)
# The types whose rdata names another host or zone, and the field that holds it.
_NAMED_TARGETS = {
    _NS: "target",
    _CNAME: "target",
    _DNAME: "target",
    _PTR: "target",
    _MX: "exchange",
    _SRV: "target",
}
# What may sit at a delegation point besides NS (RFC 4035 section 2.4 / 3.1.4).
_AT_CUT = frozenset({_NS, _DS, RdataType.NSEC, RdataType.RRSIG, _A, _AAAA})
_LDH = re.compile(rb"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?").fullmatch
_DECIMAL = re.compile(rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])").fullmatch

RRsets = Mapping[Name, Mapping[RdataType, tuple[list[object], Origin]]]


def _target(rd: object) -> Name:
    """The domain name an NS, CNAME, DNAME or PTR record points to."""
    return cast(dns.rdtypes.nsbase.NSBase, rd).target


# --- one zone's results ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ref:
    """A name one zone's data points at, for checks in the zone that holds it."""

    kind: RdataType  # NS, MX, SRV, CNAME
    owner: Name
    target: Name
    where: Origin


@dataclass(frozen=True, slots=True, eq=False)
class ZoneLint:
    """What ``authd check`` found in one zone, and what cross-zone checks need."""

    origin: Name
    file: str
    grouping: Grouping | None  # None when the file did not parse
    findings: tuple[Finding, ...]
    refs: tuple[_Ref, ...] = ()  # targets outside the zone or below its cuts
    ptrs: tuple[tuple[Name, Name, Origin], ...] = ()  # (owner, target, where)
    resolver: _Names | None = field(default=None, repr=False)
    signed: SignedZone | None = None  # its DNSSEC, for the cross-zone DS checks
    notes: tuple[str, ...] = ()  # said on stderr: what was not checked, and why

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is ERROR]

    @property
    def refusals(self) -> list[Finding]:
        """The errors for which ``authd serve`` refuses the zone."""
        return [f for f in self.findings if f.id in ERROR_IDS]

    @property
    def serial(self) -> int | None:
        if self.grouping is None:
            return None
        return _serial(self.grouping)


def _serial(g: Grouping) -> int | None:
    apex = g.rrsets.get(g.origin)
    if apex is None or _SOA not in apex:
        return None
    return int(cast(dns.rdtypes.ANY.SOA.SOA, apex[_SOA][0][0]).serial)


def syntax_failure(origin: Name, error: ZoneError) -> ZoneLint:
    """The result for a zone file that does not parse: one ``syntax`` error."""
    where = Origin(error.file, error.line)
    return ZoneLint(origin, error.file, None, (_finding(LoaderCheck.SYNTAX, where, error.reason),))


def lint_records(
    origin: Name, records: Sequence[Record], file: str, options: LintOptions | None = None
) -> ZoneLint:
    """Every finding for the zone *origin* made of *records*: the loader's errors
    and warnings (the same code the server runs), the linter's warnings and the
    DNSSEC checks (``authd.lint_dnssec``; validity times only when
    *options* gives ``now``)."""
    g = group_records(origin, records, file, sharded=False)
    findings = [*g.findings, *check_zone(origin, g.rrsets, g.cuts, file)]
    scan = _Scan(g)
    findings.extend(scan.findings)
    findings.extend(_inferred_ttls(records))
    signed = lint_signed(g, records, options or LintOptions())
    findings.extend(signed.findings)
    findings.sort(key=lambda f: (f.file, f.line))
    return ZoneLint(
        origin,
        file,
        g,
        tuple(findings),
        tuple(scan.refs),
        tuple(scan.ptrs),
        scan.resolver,
        signed.zone,
        signed.notes,
    )


def _inferred_ttls(records: Sequence[Record]) -> list[Finding]:
    """``no-ttl-directive``, once, at the first record that gives no TTL while
    no ``$TTL`` applies.

    Such a record takes the last TTL written (authd, dnspython, NSD) or the SOA
    MINIMUM (BIND, and RFC 1035 servers before RFC 2308 gave MINIMUM its
    negative-caching meaning): the same file serves different TTLs on
    different servers.  A file without ``$TTL`` whose every record gives its
    TTL is not reported: nothing depends on a default.
    """
    inferred = [r for r in records if r.ttl_inferred]
    if not inferred:
        return []
    first = inferred[0]
    others = len(inferred) - 1
    more = f"; so do {others} more record{'s' if others != 1 else ''}" if others else ""
    return [
        _finding(
            LintCheck.NO_TTL_DIRECTIVE,
            Origin(first.file, first.line),
            f"no $TTL: {first.name} {dns.rdatatype.to_text(first.rdata.rdtype)} gives no TTL "
            f"and takes {first.ttl} from the last TTL written or the SOA MINIMUM, where "
            f"servers differ (BIND uses the SOA MINIMUM){more}; start the file with $TTL "
            "(RFC 2308 section 4)",
        )
    ]


def _as_written(name: Name, origin: Name) -> str:
    """*name* as the file spelled it, relative to *origin* (no trailing dot)."""
    return name.relativize(origin).to_text()


# --- lookups inside one zone: the engine's own ----------------------------------

Types = Mapping[RdataType, tuple[list[object], Origin]]
# (where the name lands, the cut or DNAME owner it concerns, its data when it
# has any: a NODE, or the WILDCARD that answers for it).
_Lookup = tuple[Place, Name | None, Types | None]


class _Names:
    """The engine's lookup (``authd.engine.locate``) in one grouped zone,
    memoised: the linter judges a target exactly where the server would find
    it (delegations, DNAMEs, empty non-terminals, RFC 4592 wildcards)."""

    def __init__(self, g: Grouping) -> None:
        self.g = g
        self.index = grouping_index(g)
        self._memo: dict[tuple[bytes, ...], _Lookup] = {}  # by _key: cheaper than Name

    def lookup(self, name: Name, key: tuple[bytes, ...] | None = None) -> _Lookup:
        """Where *name* (whose ``_key`` is *key*) lands in this zone."""
        if key is None:
            key = _key(name)
        hit = self._memo.get(key)
        if hit is None:
            found = locate(self.index, name)
            place = found.place
            types = found.node if place in (Place.NODE, Place.WILDCARD) else None
            hit = self._memo[key] = (place, found.owner, types)
        return hit

    def next_link(self, name: Name, key: tuple[bytes, ...]) -> tuple[Name, Origin] | None:
        """Where a CNAME or DNAME in this zone sends *name*, if one does."""
        place, at, types = self.lookup(name, key)
        if types is not None and _CNAME in types:
            rdatas, where = types[_CNAME]
            return _target(rdatas[0]), where
        if place is Place.DNAME and at is not None:
            rdatas, where = self.g.rrsets[at][_DNAME]
            try:
                return name.relativize(at).concatenate(_target(rdatas[0])), where
            except dns.name.NameTooLong:
                return None  # too long: YXDOMAIN (RFC 6672)
        return None


def _address_problem(lookup: _Lookup) -> str | None:
    """Why a host name found by *lookup* gives no address, or None if it does
    (or if the answer lives in another zone)."""
    place, _, types = lookup
    if place in (Place.OUTSIDE, Place.DELEGATION):
        return None
    if place is Place.DNAME:
        return "alias"
    if place is Place.NXDOMAIN:
        return "does not exist"
    if place is Place.EMPTY_NON_TERMINAL or types is None:
        return "has no A or AAAA record (an empty non-terminal)"
    if _CNAME in types:
        return "alias"
    if _A in types or _AAAA in types:
        return None
    return "has no A or AAAA record"


def _looks_like_address(name: Name, origin_key: tuple[bytes, ...]) -> bool:
    """True for ``192.0.2.1.`` or ``192.0.2.1.<origin>`` (a relative address
    written as a name), and for a first label that is an IPv6 address."""
    labels = name.labels
    if not labels or not labels[0]:
        return False
    first = labels[0]
    if b":" in first:
        try:
            ipaddress.IPv6Address(first.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    if not first[:1].isdigit() or len(labels) < 5:
        return False
    if not all(_DECIMAL(label) for label in labels[:4]):
        return False
    rest = tuple(map(bytes.lower, labels[4:]))
    return rest == (b"",) or rest == origin_key


def _is_hostname(labels: Sequence[bytes]) -> bool:
    return all(map(_LDH, labels))


# Per type, a key with the same equality as the rdata itself but cheaper to
# hash (dnspython hashes rdata through its wire form).
def _dup_key(rdtype: RdataType) -> Callable[[object], Hashable]:
    if rdtype in _ADDRESS:
        return lambda rd: cast(dns.rdtypes.IN.A.A, rd).address
    if rdtype in (_NS, RdataType.PTR):
        return _target
    if rdtype == _MX:
        return lambda rd: (
            cast(dns.rdtypes.ANY.MX.MX, rd).preference,
            cast(dns.rdtypes.ANY.MX.MX, rd).exchange,
        )
    return lambda rd: rd


class _Scan:
    """One pass over a grouped zone collecting the linter's warnings."""

    def __init__(self, g: Grouping) -> None:
        self.g = g
        self.findings: list[Finding] = []
        self.refs: list[_Ref] = []
        self.ptrs: list[tuple[Name, Name, Origin]] = []
        origin = g.origin
        okey = _key(origin)
        depth = len(okey)
        self.origin_key = okey
        cut_keys = {_key(c) for c in g.cuts}
        reverse = okey[-2:] == (b"arpa", b"")  # in-addr.arpa, ip6.arpa
        add = self.findings.append
        targets: list[tuple[RdataType, Name, Name, Origin, int]] = []  # kind, owner, target
        ns_targets: set[Name] = set()
        cnames: list[tuple[Name, Name, Origin]] = []
        at_cuts: list[tuple[Name, Mapping[RdataType, tuple[list[object], Origin]]]] = []
        # A relative name written with its origin but no trailing dot ends in
        # the origin twice (``www.example.com`` in example.com. becomes
        # www.example.com.example.com.); the root zone cannot tell.
        self.doubled = okey[:-1] + okey if depth > 1 else ()
        doubled_len = len(self.doubled) if depth > 1 else 1 << 30
        for name, types in g.rrsets.items():
            labels = name.labels
            n = len(labels)
            if n >= doubled_len and self._repeats_origin(labels):
                add(
                    _finding(
                        LintCheck.MISSING_TRAILING_DOT,
                        _first(types),
                        f"owner {_as_written(name, origin)} became {name}: missing trailing "
                        "dot? (a name without one is relative to the origin)",
                    )
                )
            for rdtype in _NAMED_TARGETS.keys() & types.keys():
                rdatas, where = types[rdtype]
                attr = _NAMED_TARGETS[rdtype]
                for rd in rdatas:
                    target: Name = getattr(rd, attr)
                    if len(target.labels) >= doubled_len and self._repeats_origin(target.labels):
                        add(
                            _finding(
                                LintCheck.MISSING_TRAILING_DOT,
                                where,
                                f"{name} {dns.rdatatype.to_text(rdtype)} target "
                                f"{_as_written(target, origin)} became {target}: missing "
                                "trailing dot? (a name without one is relative to the origin)",
                            )
                        )
            # RFC 1035 section 2.3.4 limits: the parser refuses what exceeds them.
            wire = sum(map(len, labels)) + n
            if wire >= LABEL_NEAR_LIMIT:
                first_where = _first(types)
                longest = max(map(len, labels))
                if longest >= LABEL_NEAR_LIMIT:
                    add(
                        _finding(
                            LintCheck.LABEL_NEAR_LIMIT,
                            first_where,
                            f"{name} has a label of {longest} octets (the limit is 63)",
                        )
                    )
                if wire >= NAME_NEAR_LIMIT:
                    add(
                        _finding(
                            LintCheck.NAME_NEAR_LIMIT,
                            first_where,
                            f"{name} is {wire} octets long (the limit is 255): "
                            "no room for longer names built from it",
                        )
                    )
            if labels[0] == b"*":
                if _NS in types:
                    add(
                        _finding(
                            LintCheck.WILDCARD_NS,
                            types[_NS][1],
                            f"wildcard {name} owns NS records: a wildcard delegation "
                            "is undefined (RFC 4592 section 4.2)",
                        )
                    )
                if _DNAME in types:
                    add(
                        _finding(
                            LintCheck.WILDCARD_DNAME,
                            types[_DNAME][1],
                            f"wildcard {name} owns a DNAME: not synthesised as one "
                            "(RFC 4592 section 4.4)",
                        )
                    )
            if n > depth + 1 and b"*" in labels[1 : n - depth]:
                add(
                    _finding(
                        LintCheck.WILDCARD_NON_TERMINAL,
                        _first(types),
                        f"{name} has '*' as an inner label: it is a plain name, "
                        "not a wildcard (RFC 4592 section 2.1.1)",
                    )
                )
            if cut_keys and (n > depth + 1 or (_NS in types and n > depth)):
                at_cuts.append((name, types))
            hostname_checked = False
            for rdtype, (rdatas, where) in types.items():
                if len(rdatas) > 1:
                    self._duplicates(name, rdtype, rdatas, where)
                if rdtype in _ADDRESS:
                    if not hostname_checked:
                        hostname_checked = True
                        rel = labels[: n - depth]
                        if rel and rel[0] == b"*":
                            rel = rel[1:]
                        if rel and not _is_hostname(rel):
                            add(
                                _finding(
                                    LintCheck.HOSTNAME_SYNTAX,
                                    where,
                                    f"{name} owns an address record but is not a valid host "
                                    "name (letters, digits, hyphens; RFC 952, RFC 1123)",
                                )
                            )
                elif rdtype == _CNAME:
                    cnames.append((name, _target(rdatas[0]), where))
                elif rdtype == _MX:
                    for rd in rdatas:
                        mx = cast(dns.rdtypes.ANY.MX.MX, rd)
                        if mx.exchange.labels == _ROOT:
                            # RFC 7505: a null MX is the only MX, preference 0.
                            if len(rdatas) > 1 or mx.preference != 0:
                                add(
                                    _finding(
                                        LintCheck.TARGET_ROOT,
                                        where,
                                        f"{name} MX {mx.preference} . is a null MX, which "
                                        "must be the only MX at its name, with preference "
                                        "0 (RFC 7505 section 3)",
                                    )
                                )
                            continue
                        targets.append((_MX, name, mx.exchange, where, 0))
                elif rdtype == _SRV:
                    for rd in rdatas:
                        srv = cast(dns.rdtypes.IN.SRV.SRV, rd)
                        if srv.target.labels == _ROOT:
                            # RFC 2782: "." means "decidedly not available", alone.
                            if len(rdatas) > 1:
                                add(
                                    _finding(
                                        LintCheck.TARGET_ROOT,
                                        where,
                                        f"{name} SRV target '.' (service not available) "
                                        "beside other SRV records (RFC 2782)",
                                    )
                                )
                            continue
                        targets.append((_SRV, name, srv.target, where, 0))
                elif rdtype == _NS:
                    for rd in rdatas:
                        target = _target(rd)
                        if target.labels == _ROOT:
                            add(
                                _finding(
                                    LintCheck.TARGET_ROOT,
                                    where,
                                    f"{name} NS '.': the root is not a name server",
                                )
                            )
                            continue
                        ns_targets.add(target)
                        targets.append((_NS, name, target, where, n))
                    if _DNAME in types and n > depth:
                        add(
                            _finding(
                                LintCheck.DNAME_AND_NS,
                                where,
                                f"{name} has both NS and DNAME: below the apex the "
                                "delegation hides the DNAME (RFC 6672)",
                            )
                        )
                elif rdtype == _DS:
                    if _NS not in types or n == depth:
                        add(
                            _finding(
                                LintCheck.DS_NOT_AT_DELEGATION,
                                where,
                                f"DS at {name}, which is not a delegation point: it "
                                "belongs in the parent zone, beside the NS of the cut "
                                "(RFC 4035 section 2.4)",
                            )
                        )
                elif rdtype == _PTR:
                    if reverse:
                        self.ptrs.extend((name, _target(rd), where) for rd in rdatas)
                elif rdtype == _SOA and n == depth:
                    self._soa(cast(dns.rdtypes.ANY.SOA.SOA, rdatas[0]), where)
        self._ttls()
        self.resolver = _Names(g)
        if at_cuts:
            self._below_cuts(at_cuts, ns_targets)
        self._targets(targets)
        self._cnames(cnames)

    def _repeats_origin(self, labels: Sequence[bytes]) -> bool:
        tail = labels[len(labels) - len(self.doubled) :]
        return tuple(map(bytes.lower, tail)) == self.doubled

    # --- record-level checks ------------------------------------------------

    def _duplicates(
        self, name: Name, rdtype: RdataType, rdatas: list[object], where: Origin
    ) -> None:
        # The loader's rule (authd.zone.compile_grouping): an RRset holds each
        # record once.
        if len(set(map(_dup_key(rdtype), rdatas))) == len(rdatas):
            return
        self.findings.append(
            _finding(
                LoaderCheck.DUPLICATE_RECORD,
                where,
                f"{name} {dns.rdatatype.to_text(rdtype)} lists the same record "
                "more than once; duplicates ignored",
            )
        )

    def _ttls(self) -> None:
        rrsets = self.g.rrsets
        for name, type_ttls in self.g.ttls.items():
            for rdtype, ttl in type_ttls.items():
                if not 0 < ttl <= TTL_LONG:
                    # An RRSIG has the TTL of the RRset it covers (judged
                    # there; rrsig-ttl-mismatch otherwise), and signers write
                    # NSEC3PARAM with TTL 0 on purpose: it is for servers
                    # only (RFC 5155 section 4).
                    if rdtype == _RRSIG or (ttl == 0 and rdtype == _NSEC3PARAM):
                        continue
                    self._ttl(name, rdtype, ttl, rrsets[name][rdtype][1])

    def _ttl(self, name: Name, rdtype: RdataType, ttl: int, where: Origin) -> None:
        what = f"{name} {dns.rdatatype.to_text(rdtype)}"
        if ttl == 0:
            self.findings.append(
                _finding(LintCheck.TTL_ZERO, where, f"{what} has TTL 0: it is never cached")
            )
        elif ttl > TTL_MAX:
            self.findings.append(
                _finding(
                    LintCheck.TTL_OVER_MAX,
                    where,
                    f"{what} has TTL {ttl}, above 2^31 - 1: resolvers read it as 0 "
                    "(RFC 2181 section 8)",
                )
            )
        else:
            self.findings.append(
                _finding(
                    LintCheck.TTL_LONG,
                    where,
                    f"{what} has TTL {ttl} ({ttl / 86400:g} days), more than a week: "
                    "a mistake takes that long to undo",
                )
            )

    def _soa(self, soa: dns.rdtypes.ANY.SOA.SOA, where: Origin) -> None:
        add = self.findings.append
        if int(soa.serial) == 0:
            add(
                _finding(
                    LintCheck.SOA_SERIAL_ZERO,
                    where,
                    "SOA serial 0: legal in RFC 1982 arithmetic, but widely read as 'unset': "
                    "BIND's own serial increments skip 0, and tools that compare serials "
                    "(monitoring, provisioning, some secondaries) take 0 for 'no zone "
                    "yet'; start at 1 or a date (YYYYMMDDnn)",
                )
            )
        refresh, retry, expire, minimum = (
            int(soa.refresh),
            int(soa.retry),
            int(soa.expire),
            int(soa.minimum),
        )
        lo, hi = SOA_REFRESH_RANGE
        if not lo <= refresh <= hi:
            add(
                _finding(
                    LintCheck.SOA_REFRESH,
                    where,
                    f"SOA refresh {refresh} is outside {lo}..{hi} seconds "
                    "(20 minutes to 12 hours, RFC 1912 section 2.2)",
                )
            )
        if retry >= refresh or retry < SOA_RETRY_MIN:
            why = f"not below refresh {refresh}" if retry >= refresh else "under a minute"
            add(
                _finding(
                    LintCheck.SOA_RETRY,
                    where,
                    f"SOA retry {retry} is {why} (RFC 1912 section 2.2)",
                )
            )
        lo, hi = SOA_EXPIRE_RANGE
        if not lo <= expire <= hi or expire <= refresh + retry:
            why = (
                f"not above refresh + retry ({refresh + retry})"
                if expire <= refresh + retry
                else f"outside {lo}..{hi} seconds (2 weeks, RFC 1912 section 2.2, to "
                "1000 hours, RIPE-203)"
            )
            add(_finding(LintCheck.SOA_EXPIRE, where, f"SOA expire {expire} is {why}"))
        lo, hi = SOA_MINIMUM_RANGE
        if not lo <= minimum <= hi:
            add(
                _finding(
                    LintCheck.SOA_MINIMUM,
                    where,
                    f"SOA minimum (negative-caching TTL) {minimum} is outside {lo}..{hi} "
                    "seconds (RFC 2308 section 5: 1-3 hours work well, over a day is "
                    "problematic)",
                )
            )
        mname = soa.mname
        if mname.labels != _ROOT and not _is_hostname(mname.labels[:-1]):
            add(
                _finding(
                    LintCheck.HOSTNAME_SYNTAX,
                    where,
                    f"SOA MNAME {mname} is not a valid host name (RFC 1123 section 2.1)",
                )
            )

    # --- delegations --------------------------------------------------------

    def _below_cuts(
        self,
        names: list[tuple[Name, Mapping[RdataType, tuple[list[object], Origin]]]],
        ns_targets: set[Name],
    ) -> None:
        """Occluded data and unused glue at and below delegation points."""
        resolver_cuts = {_key(c): c for c in self.g.cuts}
        depth = len(self.origin_key)
        add = self.findings.append
        for name, types in names:
            key = _key(name)
            # The highest cut strictly above the name, then the name itself:
            # where the engine's walk stops (``locate`` gives DELEGATION at the
            # same cut), found by label suffixes because every name at or
            # below a cut is asked, and the walk for each cost a third more
            # time on a zone of 30,000 delegations.
            cut = None
            for i in range(len(key) - depth - 1, 0, -1):
                cut = resolver_cuts.get(key[i:])
                if cut is not None:
                    break
            if cut is None:
                if _NS not in types:
                    continue
                cut = name  # at a delegation point: only NS, DS, glue and DNSSEC
                hidden = [t for t in types if t not in _AT_CUT]
            else:
                hidden = [t for t in types if t not in _ADDRESS]
            if hidden:
                first = min((types[t][1] for t in hidden), key=_line)
                where = "at the delegation point" if cut is name else f"below the delegation {cut}"
                shown = " ".join(sorted(dns.rdatatype.to_text(t) for t in hidden))
                add(
                    _finding(
                        LintCheck.OCCLUDED_DATA,
                        first,
                        f"{name} {shown} is {where}: it is not authoritative and never served",
                    )
                )
            if (_A in types or _AAAA in types) and name not in ns_targets:
                glue = min((types[t][1] for t in _ADDRESS if t in types), key=_line)
                where = "at the delegation point" if cut is name else f"below the delegation {cut}"
                add(
                    _finding(
                        LintCheck.GLUE_UNUSED,
                        glue,
                        f"{name} has address records {where} but no NS record names it: "
                        "stray glue, never served",
                    )
                )

    # --- targets of NS, MX, SRV ---------------------------------------------

    def _targets(self, targets: list[tuple[RdataType, Name, Name, Origin, int]]) -> None:
        resolver = self.resolver
        add = self.findings.append
        # By _key: "" a host name, "address" looks like an IP address, "other" neither.
        verdicts: dict[tuple[bytes, ...], str] = {}
        depth = len(self.origin_key)
        for kind, owner, target, where, owner_labels in targets:
            tkey = _key(target)
            verdict = verdicts.get(tkey)
            if verdict is None:
                if _looks_like_address(target, self.origin_key):
                    verdict = "address"
                else:
                    verdict = "" if _is_hostname(target.labels[:-1]) else "other"
                verdicts[tkey] = verdict
            if verdict:
                label = _TYPE_TEXT[kind]
                if verdict == "address":
                    add(
                        _finding(
                            LintCheck.TARGET_IS_ADDRESS,
                            where,
                            f"{owner} {label} target {target} looks like an IP address; "
                            f"{label} records need a host name",
                        )
                    )
                    continue
                add(
                    _finding(
                        LintCheck.HOSTNAME_SYNTAX,
                        where,
                        f"{owner} {label} target {target} is not a valid host name "
                        "(letters, digits, hyphens; RFC 1123 section 2.1)",
                    )
                )
            found = resolver.lookup(target, tkey)
            if found[0] in (Place.OUTSIDE, Place.DELEGATION):
                self.refs.append(_Ref(kind, owner, target, where))
                if kind != _NS or found[0] is Place.OUTSIDE:
                    continue
            if kind == _NS:
                self._ns_target(owner, owner_labels == depth, target, where, found)
                continue
            problem = _address_problem(found)
            if problem is not None:
                add(_target_finding(kind, owner, target, where, problem, None))

    def _ns_target(
        self, owner: Name, at_apex: bool, target: Name, where: Origin, found: _Lookup
    ) -> None:
        if found[0] is Place.DELEGATION:
            # Below a delegation the address is glue: exact names only.  A
            # delegation's own glue is the loader's (glue-missing); glue for a
            # target below another delegation is "sibling glue": optional (RFC
            # 9471), but without it resolvers must first resolve
            # the target through that delegation.
            types = self.g.rrsets.get(target)
            has_address = types is not None and (_A in types or _AAAA in types)
            if not has_address and (at_apex or not target.is_subdomain(owner)):
                self.findings.append(
                    _finding(
                        LintCheck.SIBLING_GLUE_MISSING,
                        where,
                        f"{owner} NS {target}: the target is below the delegation "
                        f"{found[1]} and has no glue here; resolvers must look it up "
                        "there first (RFC 9471)",
                    )
                )
            return
        problem = _address_problem(found)
        if problem == "alias":
            self.findings.append(_target_finding(_NS, owner, target, where, "alias", None))
            return
        # The loader refuses an apex NS target in authoritative data without an
        # address (ns-target-no-address) and a delegation's own glue
        # (glue-missing); a target below another cut resolves through that
        # delegation (sibling glue is optional, RFC 9471).
        if problem is None or at_apex:
            return
        self.findings.append(
            _finding(
                LintCheck.NS_TARGET_UNRESOLVABLE,
                where,
                f"{owner} NS {target}: the target is in this zone but {problem}",
            )
        )

    # --- CNAME chains -------------------------------------------------------

    def _cnames(self, cnames: list[tuple[Name, Name, Origin]]) -> None:
        resolver = self.resolver
        add = self.findings.append
        for owner, target, where in cnames:
            kind = resolver.lookup(target)[0]
            if kind is Place.NXDOMAIN:
                add(
                    _finding(
                        LintCheck.CNAME_TARGET_MISSING,
                        where,
                        f"{owner} CNAME {target}: the target does not exist in this zone",
                    )
                )
            elif kind in (Place.OUTSIDE, Place.DELEGATION):
                self.refs.append(_Ref(_CNAME, owner, target, where))
        # Chain lengths by memo, names by _key; -1 marks a loop or a chain into one.
        Key = tuple[bytes, ...]
        memo: dict[Key, int] = {}
        reached: set[Key] = set()  # names some link leads to: not chain heads
        reported: set[frozenset[Key]] = set()
        starts = [(_key(start), start, where) for start, _, where in cnames]
        for skey, start, _ in starts:
            if skey in memo:
                continue
            path: list[Key] = []
            shown: list[Name] = []
            wheres: list[Origin] = []
            index: dict[Key, int] = {}
            n, nkey = start, skey
            while True:
                known = memo.get(nkey)
                if known is not None:
                    result = known
                    break
                if nkey in index:
                    at = index[nkey]
                    members = frozenset(path[at:])
                    if members not in reported:
                        reported.add(members)
                        first = min(wheres[at:], key=_line)
                        loop = " -> ".join(str(c) for c in [*shown[at:], n])
                        add(
                            _finding(
                                LintCheck.CNAME_LOOP, first, f"CNAME loop: {loop} (never answered)"
                            )
                        )
                    result = -1
                    break
                link = resolver.next_link(n, nkey)
                if link is None:
                    result = 0
                    break
                index[nkey] = len(path)
                path.append(nkey)
                shown.append(n)
                wheres.append(link[1])
                n = link[0]
                nkey = _key(n)
                reached.add(nkey)
            for k in range(len(path) - 1, -1, -1):
                result = -1 if result < 0 else result + 1
                memo[path[k]] = result
        for skey, start, where in starts:
            length = memo.get(skey, 0)
            if length > CNAME_CHAIN_WARN and skey not in reached:
                beyond = f"; authd follows at most {MAX_CHAIN}" if length > MAX_CHAIN else ""
                add(
                    _finding(
                        LintCheck.CNAME_CHAIN_LONG,
                        where,
                        f"CNAME chain of {length} links from {start} (more than "
                        f"{CNAME_CHAIN_WARN}: resolvers may give up{beyond})",
                    )
                )


def _line(where: Origin) -> tuple[str, int]:
    return where.file, where.line


def _first(types: Mapping[RdataType, tuple[list[object], Origin]]) -> Origin:
    """Where a name's first RRset starts."""
    return min((where for _, where in types.values()), key=_line)


_TARGET_IDS = {
    (_NS, "alias"): LintCheck.NS_TARGET_CNAME,
    (_MX, "alias"): LintCheck.MX_TARGET_CNAME,
    (_SRV, "alias"): LintCheck.SRV_TARGET_CNAME,
    (_MX, None): LintCheck.MX_TARGET_NO_ADDRESS,
    (_SRV, None): LintCheck.SRV_TARGET_NO_ADDRESS,
}


def _target_finding(
    kind: RdataType, owner: Name, target: Name, where: Origin, problem: str, zone: str | None
) -> Finding:
    label = dns.rdatatype.to_text(kind)
    alias = problem == "alias"
    id = _TARGET_IDS[(kind, "alias" if alias else None)]
    place = f" (in {zone})" if zone else ""
    if alias:
        why = "is an alias (CNAME or below a DNAME)"
        rule = "RFC 2782" if kind == _SRV else "RFC 2181 section 10.3"
        message = f"{owner} {label} {target}: the target{place} {why}; {label} needs a host name"
        return _finding(id, where, f"{message} ({rule})")
    return _finding(id, where, f"{owner} {label} {target}: the target{place} {problem}")


# --- across zones ---------------------------------------------------------------


def lint_together(zones: Sequence[ZoneLint]) -> list[Finding]:
    """Checks across zones checked together: delegations between them, targets
    one zone has in another, and reverse (PTR) against forward (A/AAAA) data."""
    by_key: dict[tuple[bytes, ...], ZoneLint] = {}
    for z in zones:
        if z.grouping is not None and z.resolver is not None:
            by_key.setdefault(_key(z.origin), z)
    if len(by_key) < 2:
        return []

    def enclosing(name: Name, strict: bool = False) -> ZoneLint | None:
        key = _key(name)
        for i in range(1 if strict else 0, len(key)):
            z = by_key.get(key[i:])
            if z is not None:
                return z
        return None

    findings: list[Finding] = []
    for z in by_key.values():
        findings.extend(_delegations(z, by_key))
        findings.extend(_secure_delegations(z, by_key))
        parent = enclosing(z.origin, strict=True)
        if parent is not None:
            findings.extend(_delegated(parent, z))
        for ref in z.refs:
            other = enclosing(ref.target)
            if other is None or other is z:
                continue
            findings.extend(_ref_in(ref, other))
        for owner, target, where in z.ptrs:
            other = enclosing(target)
            if other is not None:
                findings.extend(_ptr(owner, target, where, other))
    return findings


def _zone_file(z: ZoneLint) -> str:
    return f"{z.origin} in {z.file}"


def _ref_in(ref: _Ref, z: ZoneLint) -> list[Finding]:
    assert z.resolver is not None
    found = z.resolver.lookup(ref.target)
    if ref.kind == _CNAME:
        if found[0] is Place.NXDOMAIN:
            return [
                _finding(
                    LintCheck.CNAME_TARGET_MISSING,
                    ref.where,
                    f"{ref.owner} CNAME {ref.target}: the target does not exist in {_zone_file(z)}",
                )
            ]
        return []
    problem = _address_problem(found)
    if problem is None:
        return []
    if ref.kind == _NS and problem != "alias":
        return [
            _finding(
                LintCheck.NS_TARGET_UNRESOLVABLE,
                ref.where,
                f"{ref.owner} NS {ref.target}: the target (in {_zone_file(z)}) {problem}",
            )
        ]
    return [_target_finding(ref.kind, ref.owner, ref.target, ref.where, problem, _zone_file(z))]


def _ns_set(g: Grouping, name: Name) -> tuple[set[Name], Origin] | None:
    types = g.rrsets.get(name)
    if types is None or _NS not in types:
        return None
    rdatas, where = types[_NS]
    return {_target(rd) for rd in rdatas}, where


def _addresses(g: Grouping, name: Name) -> tuple[set[str], Origin | None]:
    types = g.rrsets.get(name)
    out: set[str] = set()
    where = None
    if types is not None:
        for t in _ADDRESS:
            if t in types:
                rdatas, w = types[t]
                out.update(cast(dns.rdtypes.IN.A.A, rd).address for rd in rdatas)
                where = w if where is None or w.line < where.line else where
    return out, where


def _names(names: Iterable[Name]) -> str:
    return ", ".join(sorted(str(n) for n in names)) or "none"


def _delegations(parent: ZoneLint, by_key: Mapping[tuple[bytes, ...], ZoneLint]) -> list[Finding]:
    """Parent-side NS and glue against the child zone's apex, for children given too."""
    g = parent.grouping
    assert g is not None
    findings = []
    for cut in g.cuts:
        child = by_key.get(_key(cut))
        if child is None or child.grouping is None:
            continue
        cg = child.grouping
        ours = _ns_set(g, cut)
        theirs = _ns_set(cg, cg.origin)
        if ours is None or theirs is None:
            continue
        # Glue and the child's addresses for every name server inside the child.
        inside = [t for t in ours[0] if t.is_subdomain(cut)]
        glue_at = {t: _addresses(g, t) for t in inside}
        child_at = {t: _addresses(cg, t) for t in inside}
        diff = delegation.compare(
            cut,
            ours[0],
            {t: a for t, (a, _) in glue_at.items()},
            theirs[0],
            {t: a for t, (a, _) in child_at.items()},
        )
        if diff.ns_differ:
            where = theirs[1]
            findings.append(
                _finding(
                    LintCheck.DELEGATION_NS_MISMATCH,
                    ours[1],
                    f"NS for {cut} here ({_names(ours[0])}) differ from the child zone's "
                    f"apex NS ({_names(theirs[0])}) at {where.file}:{where.line}; "
                    f"only here: {_names(diff.only_parent)}; "
                    f"only in the child: {_names(diff.only_child)}",
                )
            )
        # diff.missing_glue is glue-missing, a loader error that already says so.
        for m in diff.glue_mismatch:
            glue_where = glue_at[m.host][1]
            assert glue_where is not None  # glue was given, so it was written somewhere
            child_where = child_at[m.host][1]
            there = (
                f"{child_where.file}:{child_where.line}" if child_where is not None else child.file
            )
            findings.append(
                _finding(
                    LintCheck.DELEGATION_GLUE_MISMATCH,
                    glue_where,
                    f"glue for {m.host} here ({', '.join(sorted(m.glue))}) differs from "
                    f"the child zone's addresses ({', '.join(sorted(m.child)) or 'none'}) "
                    f"at {there}",
                )
            )
    return findings


def _secure_delegations(
    parent: ZoneLint, by_key: Mapping[tuple[bytes, ...], ZoneLint]
) -> list[Finding]:
    """The parent's DS (or its absence) against each child given too."""
    g = parent.grouping
    assert g is not None
    findings = []
    for cut in sorted(g.cuts):
        child = by_key.get(_key(cut))
        if child is None or child.grouping is None:
            continue
        if parent.signed is None or child.signed is None:
            continue
        findings.extend(
            lint_delegation(
                parent.origin, g, parent.signed, child.grouping, child.signed, child.file
            )
        )
    return findings


def _delegated(parent: ZoneLint, child: ZoneLint) -> list[Finding]:
    """A child zone given with its parent must be delegated from it."""
    assert parent.resolver is not None and parent.grouping is not None
    kind, at, _ = parent.resolver.lookup(child.origin)
    if kind in (Place.DELEGATION, Place.DNAME):
        return []  # delegated here, or through a zone between the two
    apex = parent.grouping.rrsets.get(parent.origin, {})
    where = apex[_SOA][1] if _SOA in apex else Origin(parent.file, 0)
    return [
        _finding(
            LintCheck.DELEGATION_MISSING,
            where,
            f"{child.origin} is checked as a zone ({child.file}) but {parent.origin} has no "
            f"NS records for it: resolvers never get referred there",
        )
    ]


def _ptr(owner: Name, target: Name, where: Origin, z: ZoneLint) -> list[Finding]:
    try:
        address = ipaddress.ip_address(dns.reversename.to_address(owner))
    except (dns.exception.DNSException, ValueError):
        return []  # not a full address (RFC 2317 classless names, partial ones)
    assert z.resolver is not None
    kind, _, types = z.resolver.lookup(target)
    if kind in (Place.DELEGATION, Place.OUTSIDE):
        return []
    want = _A if address.version == 4 else _AAAA
    have: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    if types is not None and want in types:
        have = {ipaddress.ip_address(cast(dns.rdtypes.IN.A.A, rd).address) for rd in types[want][0]}
    if address in have:
        return []
    label = dns.rdatatype.to_text(want)
    problem = "does not exist" if kind is Place.NXDOMAIN else f"has no {label} {address}"
    return [
        _finding(
            LintCheck.PTR_NO_FORWARD,
            where,
            f"{owner} PTR {target}, but {target} {problem} in {_zone_file(z)}",
        )
    ]


# --- serials: --against -----------------------------------------------------------


def compare_with(old: Grouping, new: Grouping, ref: str) -> Finding | None:
    """The ``serial-not-increased`` error when *new* changed since *old* (the
    version at *ref*) without a serial increase; None when the server would
    take *new* as a reload of *old*.

    Both are compiled and compared by ``ZoneVersion.same_content``, the test
    the server's reload applies (``authd.snapshot``).  A side that does not
    compile has nothing to compare: the server never served that *old*, and
    a refused *new* already fails the check with its own errors.
    """
    old_serial, new_serial = _serial(old), _serial(new)
    if old_serial is None or new_serial is None:
        return None
    problem = serial_step_problem(old_serial, new_serial)
    if problem is None:
        return None
    old_version = compile_grouping(old, wire=False).version
    new_version = compile_grouping(new, wire=False).version
    if old_version is None or new_version is None:
        return None
    same = new_version.same_content(old_version)
    if old_serial == new_serial and same:
        return None
    changed = "content unchanged" if same else "content changed"
    apex = new.rrsets[new.origin]
    return _finding(
        LoaderCheck.SERIAL_NOT_INCREASED,
        apex[_SOA][1],
        f"serial {new_serial} {problem} since {ref}, {changed}: secondaries would not transfer it "
        "and authd would keep serving the old version",
    )


def strict(findings: Iterable[Finding]) -> list[Finding]:
    """*findings* with every warning made an error (``--strict``)."""
    return [
        f if f.severity is ERROR else Finding(f.id, ERROR, f.file, f.line, f.message)
        for f in findings
    ]


__all__ = [
    "CNAME_CHAIN_WARN",
    "ERROR_IDS",
    "RULES",
    "Rule",
    "ZoneLint",
    "compare_with",
    "lint_records",
    "lint_together",
    "strict",
    "syntax_failure",
]
