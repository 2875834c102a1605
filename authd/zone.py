"""Compiled, immutable zone versions: records in, a structure made for answering out.

Owns: grouping records into RRsets, dropping out-of-zone data, running the
semantic checks, and precomputing what lookups need (delegation points, DNAME
owners, empty non-terminals, the negative-answer TTL).  Invariant: a
``ZoneVersion`` is never mutated after ``compile_zone`` returns it; a reload
builds a new one and the server swaps a single reference.

Signed zones (DNSSEC): a node holds its RRSIGs as one RRset per covered type
under ``authd.rrsig.sig_key`` with the TTL they were signed with; NSEC3
owners live in ``hashed``, not in ``nodes`` (they are not names of the zone);
``denial`` holds the NSEC/NSEC3 proofs built at load (``authd.denial``).
Code that iterates a node's keys sees signature keys too (``is_sig_key``).

Also owns ``ZoneIndex``, what the engine's lookup reads of a zone, and
``GroupingIndex``, that view of a zone grouped but not compiled, so the linter
runs the server's own lookup (``authd.engine.locate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Set, Sized
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from authd.checks import Finding, LoaderCheck, Origin, Severity, check_zone
from authd.denial import Denial, build_denial
from authd.errors import ZoneError
from authd.limits import DEFAULT_MAX_RECORDS_PER_RRSET, DEFAULT_MAX_ZONE_RECORDS
from authd.namedict import NameMap, name_dict, replaced
from authd.rrsig import sig_key, split_rrsigs
from authd.signatures import negative_signature
from authd.zonefile import Record, parse_zone_file

if TYPE_CHECKING:
    from authd.compiled import CompiledZone
    from authd.signer import Inline

RdataType = dns.rdatatype.RdataType
IN = dns.rdataclass.IN
_RRSIG = RdataType.RRSIG

# A node maps rdtype -> RRset, and sig_key(covered) -> its RRSIG RRset; an empty
# node is an empty non-terminal (RFC 4592 2.2.2).
Node = dict[RdataType, dns.rrset.RRset]


N_co = TypeVar("N_co", bound=Mapping[RdataType, object], covariant=True)
_T = TypeVar("_T")
_K = TypeVar("_K")


class ZoneIndex(Protocol[N_co]):
    """What the engine's lookup (``authd.engine.locate``) reads of a zone.

    A compiled ``ZoneVersion`` is one; so is ``GroupingIndex``, the same view
    of a zone the linter has grouped but not compiled.  *nodes* holds every
    name of the zone, empty non-terminals as empty nodes (RFC 4592 2.2.2).
    """

    @property
    def origin(self) -> dns.name.Name: ...
    @property
    def nodes(self) -> Mapping[dns.name.Name, N_co]: ...
    @property
    def cuts(self) -> Set[dns.name.Name]: ...
    @property
    def dnames(self) -> Set[dns.name.Name]: ...
    @property
    def wildcards(self) -> bool: ...


@dataclass(frozen=True, slots=True, eq=False)
class ZoneVersion:
    origin: dns.name.Name
    soa: dns.rrset.RRset
    negative_soa: dns.rrset.RRset  # the SOA as negative answers carry it (RFC 2308 s5)
    nodes: NameMap[Node]  # every name in the zone, ENTs included
    cuts: frozenset[dns.name.Name]  # owners of NS below the apex
    dnames: frozenset[dns.name.Name]  # owners of DNAME (the apex may be one)
    wildcards: bool  # any ``*`` owner: skip the wildcard probe when there is none
    file: str
    record_count: int
    files: frozenset[str] = frozenset()  # the zone file and every file it $INCLUDEs
    # NSEC3 owners with their NSEC3 and its RRSIG: not names of the zone
    # (RFC 5155 section 7.2.8), so not in *nodes*; transfers carry them.
    hashed: NameMap[Node] = dataclasses.field(default_factory=dict)
    # The zone's DNSSEC proofs, built at load; None for an unsigned zone.
    denial: Denial | None = None
    negative_soa_sig: dns.rrset.RRset | None = None  # RRSIG(SOA) at the negative TTL

    # The same zone rendered to wire format for the assembler (authd.compiled);
    # None: answered by the engine alone (the linter's versions).
    wire: CompiledZone | None = None
    # Signed by authd (inline signing): the unsigned version it was signed
    # from, the signer's output and the policy, for the next re-signing.
    inline: Inline | None = None

    @property
    def signed(self) -> bool:
        """A zone is signed when its apex has DNSKEY records (see ``build_denial``)."""
        return self.denial is not None

    def tables(self) -> tuple[NameMap[Node], ...]:
        """Every node table: the names of the zone, then the NSEC3 owners."""
        return (self.nodes, self.hashed) if self.hashed else (self.nodes,)

    @property
    def serial(self) -> int:
        return int(self._soa_rdata.serial)

    @property
    def _soa_rdata(self) -> dns.rdtypes.ANY.SOA.SOA:
        return self.soa[0]  # type: ignore[no-any-return]

    def with_serial(self, serial: int) -> ZoneVersion:
        """This version serving *serial* instead (authd's own serial policies)."""
        soa = self.soa.copy()
        rdata = soa[0].replace(serial=serial)
        soa.clear()
        soa.add(rdata)
        negative = self.negative_soa.copy()
        negative.clear()
        negative.add(rdata)
        apex = dict(self.nodes[self.origin])
        apex[RdataType.SOA] = soa
        nodes = replaced(self.nodes, self.origin, apex)
        wire = self.wire.with_soa(soa, negative) if self.wire is not None else None
        return dataclasses.replace(self, soa=soa, negative_soa=negative, nodes=nodes, wire=wire)

    def same_content(self, other: ZoneVersion) -> bool:
        """True when the two versions differ at most in the SOA serial."""
        if self.origin != other.origin or len(self.hashed) != len(other.hashed):
            return False
        return _same_nodes(self.nodes, other.nodes) and _same_nodes(self.hashed, other.hashed)


def _same_nodes(nodes: NameMap[Node], onodes: NameMap[Node]) -> bool:
    if len(nodes) != len(onodes):
        return False
    for name, node in nodes.items():
        # Equal sizes and every name found: the same names.
        onode = onodes.get(name)
        if onode is None or node.keys() != onode.keys():
            return False
        for rdtype, rrset in node.items():
            orrset = onode[rdtype]
            if rrset.ttl != orrset.ttl:
                return False
            if rdtype == RdataType.SOA:
                if rrset[0].replace(serial=0) != orrset[0].replace(serial=0):
                    return False
            elif not _same_rdatas(rrset, orrset):
                return False
    return True


# Per rdata class: its slots, parents' included (dnspython lists them per class).
_SLOTS: dict[type, tuple[str, ...]] = {}


def _fields(rd: object) -> tuple[object, ...]:
    cls = type(rd)
    slots = _SLOTS.get(cls)
    if slots is None:
        slots = _SLOTS[cls] = tuple(
            s for c in cls.__mro__ for s in getattr(c, "__slots__", ()) if s != "__weakref__"
        )
    # Names by their exact labels: Name.__eq__ is slow (and ignores case).
    return tuple(v.labels if isinstance(v := getattr(rd, s), dns.name.Name) else v for s in slots)


def _same_rdatas(a: dns.rrset.RRset, b: dns.rrset.RRset) -> bool:
    """Whether two RRsets of one owner and type hold the same records.

    dnspython compares rdata by rendering each to wire form, several times per
    record: most of the 14 s same_content took on a million records.  Equal
    fields (names compared by their exact labels) prove equality far more
    cheaply; only when they differ does dnspython decide (letter case in a
    name, say).
    """
    if len(a) != len(b):
        return False
    if len(a) == 1:
        x, y = next(iter(a.items)), next(iter(b.items))
        if x is y or (type(x) is type(y) and _fields(x) == _fields(y)):
            return True
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class CompileResult:
    version: ZoneVersion | None  # None when an error finding refused the zone
    findings: tuple[Finding, ...]
    files: frozenset[str] = frozenset()  # every file read (set by load_zone)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


@dataclass(frozen=True, slots=True, eq=False)
class Grouping:
    """A zone's records grouped into RRsets, each with the line it starts on.

    What ``check_zone`` reads and what the linter (``authd.lint``) reads too,
    so both see the same data with its ``file:line``.
    """

    origin: dns.name.Name
    file: str
    rrsets: NameMap[dict[RdataType, tuple[list[object], Origin]]]
    ttls: NameMap[dict[RdataType, int]]  # owner -> type -> TTL, the smaller on a mismatch
    cuts: frozenset[dns.name.Name]  # owners of NS below the apex
    count: int  # records kept (out-of-zone ones are dropped)
    findings: tuple[Finding, ...]  # out-of-zone, ttl-mismatch
    # owner -> covered type -> TTL of the RRSIGs covering it (``ttls`` holds the
    # largest RRSIG TTL of a name under RRSIG, for the linter's TTL checks).
    sig_ttls: dict[dns.name.Name, dict[RdataType, int]] = dataclasses.field(default_factory=dict)


def group_records(
    origin: dns.name.Name, records: Iterable[Record], file: str, *, sharded: bool = True
) -> Grouping:
    """Group *records* into RRsets for *origin*, dropping out-of-zone data.

    *sharded* keeps big tables in ``NameDict`` shards so that building them
    never holds the GIL long (the server answers queries meanwhile); a
    process that only lints passes False and gets plain, faster dicts.
    """
    findings: list[Finding] = []
    # Tables sized by the record count: owners are at most that many.
    if not isinstance(records, Sized):
        records = list(records)
    expected = len(records) if sharded else 0
    grouped: NameMap[dict[RdataType, tuple[list[object], Origin]]] = name_dict(expected)
    ttls: NameMap[dict[RdataType, int]] = name_dict(expected)
    sig_ttls: dict[dns.name.Name, dict[RdataType, int]] = {}
    count = 0
    olen = len(origin.labels)
    origin_labels = origin.labels
    for rec in records:
        name = rec.name
        # Owners the parser made from this origin end in its very labels: a
        # tuple compare; anything else gets dnspython's case-insensitive test.
        if name.labels[-olen:] != origin_labels and not name.is_subdomain(origin):
            findings.append(
                Finding(
                    LoaderCheck.OUT_OF_ZONE,
                    LoaderCheck.OUT_OF_ZONE.severity,
                    rec.file,
                    rec.line,
                    f"{name} is outside the zone {origin}; ignored",
                )
            )
            continue
        rdtype = rec.rdata.rdtype
        if rdtype == RRSIG:
            _group_rrsig(rec, grouped, ttls, sig_ttls, findings)
            count += 1
            continue
        types = grouped.get(name)
        if types is None:
            types = grouped[name] = {}
            type_ttls = ttls[name] = {}
        else:
            type_ttls = ttls[name]
        entry = types.get(rdtype)
        if entry is None:
            types[rdtype] = ([rec.rdata], Origin(rec.file, rec.line))
            type_ttls[rdtype] = rec.ttl
        else:
            entry[0].append(rec.rdata)
            old_ttl = type_ttls[rdtype]
            if rec.ttl != old_ttl:
                # RRSIGs at a name cover different RRsets of different TTLs:
                # each is compared with its own RRset instead (_rrsig_ttls).
                if rdtype != _RRSIG:
                    findings.append(
                        Finding(
                            LoaderCheck.TTL_MISMATCH,
                            LoaderCheck.TTL_MISMATCH.severity,
                            rec.file,
                            rec.line,
                            f"TTL {rec.ttl} differs from {old_ttl} in the {name} "
                            f"{dns.rdatatype.to_text(rdtype)} RRset; using the smaller",
                        )
                    )
                type_ttls[rdtype] = min(old_ttl, rec.ttl)
        count += 1
    findings.extend(_rrsig_ttls(records, ttls))

    cuts = frozenset(n for n, types in grouped.items() if RdataType.NS in types and n != origin)
    return Grouping(origin, file, grouped, ttls, cuts, count, tuple(findings), sig_ttls)


RRSIG = RdataType.RRSIG


def _group_rrsig(
    rec: Record,
    grouped: NameMap[dict[RdataType, tuple[list[object], Origin]]],
    ttls: NameMap[dict[RdataType, int]],
    sig_ttls: dict[dns.name.Name, dict[RdataType, int]],
    findings: list[Finding],
) -> None:
    """Group an RRSIG record: one entry per name (what the checks read), with
    the TTL kept per covered type (RFC 4034 section 3: an RRSIG's TTL is that
    of the RRset it covers, so signatures of different types differ)."""
    name = rec.name
    types = grouped.get(name)
    if types is None:
        types = grouped[name] = {}
        type_ttls = ttls[name] = {}
    else:
        type_ttls = ttls[name]
    entry = types.get(RRSIG)
    if entry is None:
        types[RRSIG] = ([rec.rdata], Origin(rec.file, rec.line))
        type_ttls[RRSIG] = rec.ttl
    else:
        entry[0].append(rec.rdata)
        # The largest: a TTL finding on RRSIG then means every signature has
        # it (a TTL-0 NSEC3PARAM's RRSIG is the NSEC3PARAM's finding).
        type_ttls[RRSIG] = max(type_ttls[RRSIG], rec.ttl)
    covered = rec.rdata.type_covered  # type: ignore[attr-defined]
    per = sig_ttls.get(name)
    if per is None:
        per = sig_ttls[name] = {}
    old = per.get(covered)
    if old is None:
        per[covered] = rec.ttl
    elif old != rec.ttl:
        findings.append(
            Finding(
                LoaderCheck.TTL_MISMATCH,
                LoaderCheck.TTL_MISMATCH.severity,
                rec.file,
                rec.line,
                f"TTL {rec.ttl} differs from {old} in the {name} RRSIG RRset covering "
                f"{dns.rdatatype.to_text(covered)}; using the smaller",
            )
        )
        per[covered] = min(old, rec.ttl)


def _rrsig_ttls(records: Iterable[Record], ttls: NameMap[dict[RdataType, int]]) -> list[Finding]:
    """``rrsig-ttl-mismatch`` for every RRSIG whose TTL is not that of the RRset
    it covers (RFC 4034 section 3); RRSIGs of an owner are never compared with
    each other: they cover different RRsets (issue 11).  A second pass, but
    only over each record's type: RRSIGs are rare in most zones."""
    findings = []
    for rec in records:
        if rec.rdata.rdtype != _RRSIG:
            continue
        covered: RdataType = rec.rdata.type_covered  # type: ignore[attr-defined]
        covered_ttl = ttls.get(rec.name, {}).get(covered)
        if covered_ttl is None or covered_ttl == rec.ttl:
            continue  # an RRSIG with no RRset (the linter says so), or the right TTL
        kind = dns.rdatatype.to_text(covered)
        findings.append(
            Finding(
                LoaderCheck.RRSIG_TTL_MISMATCH,
                LoaderCheck.RRSIG_TTL_MISMATCH.severity,
                rec.file,
                rec.line,
                f"{rec.name} RRSIG {kind} has TTL {rec.ttl} but the {kind} RRset it covers "
                f"has {covered_ttl}; an RRSIG's TTL is its RRset's (RFC 4034 section 3)",
            )
        )
    return findings


GroupedTypes = Mapping[RdataType, tuple[list[object], Origin]]
_NO_TYPES: GroupedTypes = MappingProxyType({})


def _key(name: dns.name.Name) -> tuple[bytes, ...]:
    """*name*'s labels in lower case: a cheap set key (``Name.__hash__`` loops
    over every octet in Python)."""
    return tuple(map(bytes.lower, name.labels))


class _GroupedNodes(Mapping[dns.name.Name, GroupedTypes]):
    """A grouping's names plus its empty non-terminals, keyed by ``_key``.

    Built on the first lookup: the names with data, then every ancestor
    between a name and the apex that has none (as ``compile_grouping`` adds
    them).  Label tuples, not ``Name``: a lookup descends level by level, and
    hashing a ``Name`` at each level was most of the linter's lookup time.
    """

    __slots__ = ("_origin", "_rrsets", "_table")

    def __init__(self, origin: dns.name.Name, rrsets: Mapping[dns.name.Name, GroupedTypes]):
        self._origin = origin
        self._rrsets = rrsets
        self._table: dict[tuple[bytes, ...], GroupedTypes] | None = None

    def _nodes(self) -> dict[tuple[bytes, ...], GroupedTypes]:
        if self._table is None:
            depth = len(self._origin)
            table = {_key(name): types_ for name, types_ in self._rrsets.items()}
            # The apex is always a node: a zone without apex data (refused)
            # still has one.
            empty = {_key(self._origin)}
            for key in table:
                empty.update(key[i:] for i in range(1, len(key) - depth))
            for key in empty:
                table.setdefault(key, _NO_TYPES)
            self._table = table
        return self._table

    def __getitem__(self, name: dns.name.Name) -> GroupedTypes:
        return self._nodes()[_key(name)]

    def get(self, name: dns.name.Name, default: Any = None) -> Any:  # Mapping.get's shape
        return self._nodes().get(_key(name), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, dns.name.Name) and _key(name) in self._nodes()

    def __iter__(self) -> Iterator[dns.name.Name]:
        return (dns.name.Name(key) for key in self._nodes())

    def __len__(self) -> int:
        return len(self._nodes())


class _NameSet(Set[dns.name.Name]):
    """A set of names tested by ``_key`` (see ``_GroupedNodes``)."""

    __slots__ = ("_keys",)

    def __init__(self, names: Iterable[dns.name.Name]) -> None:
        self._keys = frozenset(map(_key, names))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, dns.name.Name) and _key(name) in self._keys

    def __iter__(self) -> Iterator[dns.name.Name]:
        return (dns.name.Name(key) for key in self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True, slots=True, eq=False)
class GroupingIndex:
    """A ``ZoneIndex`` over a ``Grouping``: the engine's lookup on a zone that
    is grouped but not compiled (the linter's case).  A node is the grouping's
    ``type -> (rdatas, where)`` table, so a finding can name its line."""

    origin: dns.name.Name
    nodes: Mapping[dns.name.Name, GroupedTypes]
    cuts: Set[dns.name.Name]
    dnames: Set[dns.name.Name]
    wildcards: bool


def grouping_index(grouping: Grouping) -> GroupingIndex:
    """What ``compile_grouping`` would precompute for lookups, without
    compiling: the DNAME owners, whether there are wildcards, and the empty
    non-terminals (lazily)."""
    dnames = []
    wildcards = False
    DNAME = RdataType.DNAME
    for name, types_ in grouping.rrsets.items():
        if DNAME in types_:
            dnames.append(name)
        if name.labels and name.labels[0] == b"*":
            wildcards = True
    return GroupingIndex(
        grouping.origin,
        _GroupedNodes(grouping.origin, grouping.rrsets),
        _NameSet(grouping.cuts),
        _NameSet(dnames),
        wildcards,
    )


def compile_zone(
    origin: dns.name.Name,
    records: Iterable[Record],
    file: str,
    waive: frozenset[str] = frozenset(),
) -> CompileResult:
    """Group, check and compile *records* into a zone version for *origin*.

    A list of *records* is emptied: their names and rdatas live on in the
    version, and freeing a million records is done in small steps here.
    """
    grouping = group_records(origin, records, file)
    result = compile_grouping(grouping, waive)
    release_grouping(grouping)
    if isinstance(records, list):
        release(records)
    return result


def compile_grouping(
    grouping: Grouping, waive: frozenset[str] = frozenset(), *, wire: bool = True
) -> CompileResult:
    """Check and compile *grouping* into a zone version; with *wire*, into
    wire format too (``authd.compiled``), for the assembler.

    *waive*: LAB ONLY (``lab.waive`` of an ``authd lab`` config): these error
    ids are served as warnings, so a lab can serve a deliberately broken zone.
    """
    origin, file, grouped, ttls, cuts, count = (
        grouping.origin,
        grouping.file,
        grouping.rrsets,
        grouping.ttls,
        grouping.cuts,
        grouping.count,
    )
    findings = [*grouping.findings, *check_zone(origin, grouped, cuts, file)]
    if waive:  # lab only: see the docstring
        findings = [
            Finding(f.id, Severity.WARNING, f.file, f.line, f"{f.message} (waived by the lab)")
            if f.id in waive
            else f
            for f in findings
        ]
    if any(f.severity is Severity.ERROR for f in findings):
        return CompileResult(None, tuple(findings))

    nodes: NameMap[Node] = name_dict(len(grouped))
    # NSEC3 owners are not names of the zone (RFC 5155 section 7.2.8): kept
    # apart, so they make no empty non-terminals and answer no lookup.
    hashed: NameMap[Node] = name_dict(0)
    dnames = []
    wildcards = False
    sig_ttls = grouping.sig_ttls
    NSEC3 = RdataType.NSEC3
    for name, types in grouped.items():
        node: Node = {}
        type_ttls = ttls[name]
        for rdtype, (rdatas, where) in types.items():
            if rdtype == RRSIG:
                sigs = split_rrsigs(name, rdatas, sig_ttls.get(name, {}), type_ttls[rdtype])
                kept = sum(map(len, sigs.values()))
                node.update(sigs)
            else:
                rrset = dns.rrset.RRset(name, IN, rdtype)
                rrset.ttl = type_ttls[rdtype]
                # Filling the ordered set directly hashes each rdata once (RRset.add
                # hashes twice, and an rdata's hash renders it to wire: the bulk of
                # a big zone's load time).  The rdatas come from the parser, so they
                # already have this RRset's class and type.
                rrset.items = dict.fromkeys(rdatas)
                kept = len(rrset)
                node[rdtype] = rrset
            if kept != len(rdatas):
                findings.append(
                    Finding(
                        LoaderCheck.DUPLICATE_RECORD,
                        LoaderCheck.DUPLICATE_RECORD.severity,
                        where.file,
                        where.line,
                        f"{name} {dns.rdatatype.to_text(rdtype)} lists the same record "
                        "more than once; duplicates ignored",
                    )
                )
        if NSEC3 in node:
            hashed[name] = {NSEC3: node.pop(NSEC3)}
            sig = node.pop(sig_key(NSEC3), None)
            if sig is not None:
                hashed[name][sig_key(NSEC3)] = sig
            if not node:
                continue
        nodes[name] = node
        if RdataType.DNAME in node:
            dnames.append(name)
        if name.labels and name.labels[0] == b"*":
            wildcards = True
    version = _version(origin, nodes, hashed, cuts, dnames, wildcards, file, count, wire)
    return CompileResult(version, tuple(findings))


def compile_rrsets(
    origin: dns.name.Name,
    rrsets: Iterable[tuple[dns.name.Name, RdataType, dns.rrset.RRset]],
    cuts: frozenset[dns.name.Name],
    file: str,
    reuse: ZoneVersion | None = None,
) -> ZoneVersion:
    """A version of RRsets already grouped and checked (the signer's output:
    a checked unsigned zone plus the signer's own records), keyed by
    (owner, node key); the RRset objects are kept as given, so a version built
    from mostly the same objects as *reuse* shares their wire form with it and
    a diff against it skips them."""
    nodes: dict[dns.name.Name, Node] = {}
    # By the name object first: hashing a dns.name.Name is slow pure Python,
    # and a name's RRsets mostly share one object.  (The names stay alive in
    # the RRsets, so no id is reused meanwhile.)
    seen: dict[int, Node] = {}
    for name, key, rrset in rrsets:
        node = seen.get(id(name))
        if node is None:
            node = nodes.get(name)
            if node is None:
                node = nodes[name] = {}
            seen[id(name)] = node
        node[key] = rrset
    seen.clear()
    table: NameMap[Node] = name_dict(len(nodes))
    hashed: NameMap[Node] = name_dict(0)
    dnames = []
    wildcards = False
    count = 0
    NSEC3 = RdataType.NSEC3
    for name, node in nodes.items():
        count += sum(map(len, node.values()))
        if NSEC3 in node:
            hashed[name] = node
            continue
        table[name] = node
        if RdataType.DNAME in node:
            dnames.append(name)
        if name.labels and name.labels[0] == b"*":
            wildcards = True
    nodes.clear()
    return _version(origin, table, hashed, cuts, dnames, wildcards, file, count, True, reuse)


def _version(
    origin: dns.name.Name,
    nodes: NameMap[Node],
    hashed: NameMap[Node],
    cuts: frozenset[dns.name.Name],
    dnames: list[dns.name.Name],
    wildcards: bool,
    file: str,
    count: int,
    wire: bool,
    reuse: ZoneVersion | None = None,
) -> ZoneVersion:
    # Empty non-terminals: every ancestor between a name and the apex exists.
    for name in list(nodes):
        parent = name
        while len(parent) > len(origin) + 1:
            parent = parent.parent()
            if parent in nodes:
                break
            nodes[parent] = {}
    soa = nodes[origin][RdataType.SOA]
    negative_soa = soa.copy()
    negative_soa.ttl = min(soa.ttl, int(soa[0].minimum))
    denial = build_denial(origin, nodes, hashed, cuts)
    version = ZoneVersion(
        origin=origin,
        soa=soa,
        negative_soa=negative_soa,
        nodes=nodes,
        cuts=cuts,
        dnames=frozenset(dnames),
        wildcards=wildcards,
        file=file,
        record_count=count,
        hashed=hashed,
        denial=denial,
        negative_soa_sig=negative_signature(nodes[origin], negative_soa) if denial else None,
    )
    if wire:
        # Imported here: the compiler builds on the engine, which reads zones.
        from authd.compiled import compile_version

        version = dataclasses.replace(version, wire=compile_version(version, reuse))
    return version


def load_zone(
    origin: dns.name.Name,
    file: str,
    max_records: int = DEFAULT_MAX_ZONE_RECORDS,
    include_root: str | None = None,
    waive: frozenset[str] = frozenset(),
    max_records_per_rrset: int = DEFAULT_MAX_RECORDS_PER_RRSET,
) -> CompileResult:
    """Parse and compile a zone file; raises ``ZoneError`` on a syntax error."""
    records = parse_zone_file(file, origin, max_records, include_root, max_records_per_rrset)
    # Remember every file read, so a watcher knows which edits concern this zone.
    files = frozenset({file, *(r.file for r in records)})
    result = compile_zone(origin, records, file, waive)  # empties records
    if result.version is None:
        return dataclasses.replace(result, files=files)
    version = dataclasses.replace(result.version, files=files)
    return dataclasses.replace(result, version=version, files=files)


def release_grouping(grouping: Grouping) -> None:
    """Empty *grouping*'s tables an entry at a time.

    The scaffolding of a big zone is millions of objects; freeing it in one
    go is one long deallocation that holds the GIL (stalling the thread that
    answers queries).  Taken apart piece by piece, that thread runs between.
    """
    _take_apart(grouping.rrsets)
    _take_apart(grouping.ttls)


def release(items: list[_T]) -> None:
    """Empty a big list a slice at a time (see ``release_grouping``)."""
    while items:
        del items[-10_000:]


def _take_apart(d: MutableMapping[_K, _T]) -> None:
    while d:
        d.popitem()


__all__ = [
    "CompileResult",
    "Grouping",
    "GroupingIndex",
    "Node",
    "ZoneError",
    "ZoneIndex",
    "ZoneVersion",
    "compile_grouping",
    "compile_rrsets",
    "compile_zone",
    "group_records",
    "grouping_index",
    "load_zone",
    "release",
    "release_grouping",
]
