"""Zone versions compiled to wire format: what the assembler copies into answers.

Owns: ``compile_version``, which renders every RRset of a ``ZoneVersion``
once with dnspython (``Rdata.to_wire``; no rdata encoder of our own) into
bytes, noting where the names that may be compressed sit in each rdata (the
ones dnspython compresses: RFC 3597 section 4's well-known types), and
precomputes what answering needs: the additional-section RRsets of each
NS/MX/SRV RRset (the engine's rules - every authoritative in-zone target's A,
then every one's AAAA - applied to the rendered bytes, which is cheaper than
walking dnspython objects again; tests/test_compiled.py holds the two equal)
and the sections of each referral (the engine's own ``_referral``), the
delegation cuts and DNAME owners above every name, the wildcard flag and the
one negative-answer SOA the zone shares.

Also owns ``recompile``: the compiled form of a version that differs from
an already compiled one at a few names (an IXFR applied in place), redoing
only those nodes and the ones that copy their addresses (the reverse index
``CompiledZone.referrers``), the other shards shared.

Names are keyed by their lowercased wire form (bytes): the closest encloser
of a name is found by stripping its first label until the table has it, since
the table holds every name of the zone, empty non-terminals included.

Invariants: a ``CompiledZone`` is immutable and answers exactly what its
``ZoneVersion`` answers (tests/test_compiled.py holds it to the engine); its
node table is split into shards of at most ``SHARD_SIZE`` entries so that
building it on a worker thread never holds the GIL for one long dict resize.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.DNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.IN.SRV
import dns.rrset

from authd import engine
from authd.namedict import SHARD_SIZE, shard_count

if TYPE_CHECKING:
    from authd.zone import Node, ZoneVersion

RdataType = dns.rdatatype.RdataType

# A name ready to be written compressed: its wire form (letter case as the zone
# has it) and, for each suffix but the root, (the suffix lowercased, its offset).
Suffixes = tuple[tuple[bytes, int], ...]
WireName = tuple[bytes, Suffixes]
# One record whose rdata holds compressible names: (type, class and TTL), then
# (literal bytes, name) pairs, then the literal bytes after the last name.
Parts = tuple[bytes, tuple[tuple[bytes, WireName], ...], bytes]


def suffixes(wire: bytes) -> Suffixes:
    """Every non-root suffix of the wire name *wire*, lowercased, with its offset."""
    out = []
    lower = wire.lower()
    pos = 0
    while wire[pos]:
        out.append((lower[pos:], pos))
        pos += wire[pos] + 1
    return tuple(out)


def wire_name(name: dns.name.Name) -> WireName:
    wire = name.to_wire()
    assert wire is not None
    return wire, suffixes(wire)


def key_of(name: dns.name.Name) -> bytes:
    """*name*'s table key: its wire form, lowercased."""
    wire = name.to_wire()
    assert wire is not None
    return wire.lower()


@dataclass(frozen=True, slots=True)
class RRsetWire:
    """One RRset rendered: each record's bytes after the owner name."""

    owner: WireName
    rdtype: int
    count: int
    # When no rdata holds a compressible name: each record's type, class, TTL,
    # RDLENGTH and RDATA, final; the records are joined by the owner's pointer.
    tails: tuple[bytes, ...] | None
    parts: tuple[Parts, ...]  # otherwise, each record to be assembled


@dataclass(frozen=True, slots=True)
class Referral:
    """The sections of a referral at a cut, as ``engine._referral`` picks them
    for a query without DO: NS in authority, in-domain glue (its loss sets TC,
    RFC 9471) and sibling glue (dropped quietly)."""

    ns: RRsetWire
    required: tuple[RRsetWire, ...]
    optional: tuple[RRsetWire, ...]


@dataclass(frozen=True, slots=True)
class NodeWire:
    """One name of the zone; an empty ``rrsets`` is an empty non-terminal."""

    rrsets: dict[int, RRsetWire]
    cname: RRsetWire | None
    cname_target: bytes | None  # lowercased wire of the CNAME target, when in the zone
    cname_wire: bytes  # the CNAME target's wire form (zone's case), or b""
    dname: RRsetWire | None
    dname_target: bytes  # the DNAME target's wire form (zone's case), or b""
    referral: Referral | None  # set exactly at a cut (NS below the apex)
    # The topmost cut or DNAME owner strictly between the apex and this name:
    # a lookup that lands here stops there (RFC 1034 4.3.2 step 3b).
    stop: bytes | None
    # The additional-section RRsets of this node's NS, MX and SRV RRsets.
    extra: dict[int, tuple[RRsetWire, ...]]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledZone:
    origin: bytes  # lowercased wire form of the apex
    shards: tuple[dict[bytes, NodeWire], ...]  # picked by hash(key) & mask
    mask: int
    apex_dname: bool  # a DNAME at the apex redirects every name below it
    wildcards: bool
    negative: RRsetWire  # the SOA every negative answer carries (RFC 2308 s5)
    # Every suffix of the names in that SOA's rdata: a qname holding one of
    # them below the apex compresses the SOA differently from the rest.
    negative_keys: frozenset[bytes] = frozenset()
    # The negative answer's authority bytes by qname length, for the qnames
    # not in ``negative_keys``: with no answer before it, where the SOA starts
    # and where the apex sits in the question depend on that length alone.
    # A memo of a pure function, filled by the assembler as lengths occur.
    negative_by_length: dict[int, bytes] = field(default_factory=dict)
    # Who copies whose addresses: the key of an in-zone NS, MX or SRV target
    # -> the keys of the nodes pointing to it (their additional sections and
    # referrals), sharded as the nodes are; what ``recompile`` must redo
    # when that target changes.  Empty: unknown (no incremental compile).
    referrers: tuple[dict[bytes, tuple[bytes, ...]], ...] = ()

    def node(self, key: bytes) -> NodeWire | None:
        return self.shards[hash(key) & self.mask].get(key)

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def with_soa(self, soa: dns.rrset.RRset, negative: dns.rrset.RRset) -> CompiledZone:
        """This zone with another apex SOA (a serial policy's); one shard is copied."""
        index = hash(self.origin) & self.mask
        shard = dict(self.shards[index])
        apex = shard[self.origin]
        rrsets = dict(apex.rrsets)
        rrsets[RdataType.SOA] = _render(soa)
        shard[self.origin] = replace(apex, rrsets=rrsets)
        shards = list(self.shards)
        shards[index] = shard
        neg = _render(negative)
        return replace(
            self,
            shards=tuple(shards),
            negative=neg,
            negative_keys=_rdata_keys(neg),
            negative_by_length={},
        )


class _Recorder(dict[dns.name.Name, int]):
    """A compression table that never compresses but notes where names start.

    dnspython looks every suffix of a compressible name up (``get``) and then
    enters it at its offset; a name whose class never passes the table on is
    written plainly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.used = False
        self.entries: list[tuple[dns.name.Name, int]] = []

    def get(self, key: dns.name.Name, default: object = None) -> None:  # type: ignore[override]
        self.used = True
        return None

    def __setitem__(self, key: dns.name.Name, value: int) -> None:
        self.entries.append((key, value))


# Per rdata class: None when dnspython writes its names plainly; otherwise the
# slots holding names, in wire order, when the names can be found in the plain
# wire form by search (the well-known types, whose fixed fields before a name
# are at most two bytes: no name fits in them), or () to ask the recorder.
_NAME_SLOTS: dict[type, tuple[str, ...] | None] = {}
_SEARCHABLE = frozenset(
    {
        RdataType.NS,
        RdataType.MD,
        RdataType.MF,
        RdataType.CNAME,
        RdataType.SOA,
        RdataType.MB,
        RdataType.MG,
        RdataType.MR,
        RdataType.PTR,
        RdataType.MINFO,
        RdataType.MX,
    }
)


def _learn(rd: dns.rdata.Rdata) -> tuple[bytes, list[tuple[int, int]]]:
    """Render *rd* through the recorder; remember how its class writes names."""
    cls = type(rd)
    recorder = _Recorder()
    f = io.BytesIO()
    rd.to_wire(f, recorder, None)
    wire = f.getvalue()
    names = []
    # A name's first entry is the whole name; its suffixes follow at the
    # offsets of its next labels.
    end = -1
    for name, pos in recorder.entries:
        if pos >= end:
            length = len(name.to_wire() or b"")
            names.append((pos, length))
            end = pos + length
    if not recorder.used:
        _NAME_SLOTS[cls] = None
    elif cls not in _NAME_SLOTS or _NAME_SLOTS[cls] is None:
        # Slots as the classes list them, base classes repeating some.
        slots = tuple(
            dict.fromkeys(
                slot
                for c in reversed(cls.__mro__)
                for slot in getattr(c, "__slots__", ())
                if isinstance(getattr(rd, slot, None), dns.name.Name)
            )
        )
        _NAME_SLOTS[cls] = slots if rd.rdtype in _SEARCHABLE and len(slots) <= 2 else ()
    return wire, names


def _name_only(rd: Any) -> bytes:
    return rd.target.to_wire()  # type: ignore[no-any-return]


def _mx(rd: Any) -> bytes:
    return rd.preference.to_bytes(2, "big") + rd.exchange.to_wire()  # type: ignore[no-any-return]


def _srv(rd: Any) -> bytes:
    return _SRV_HEAD.pack(rd.priority, rd.weight, rd.port) + rd.target.to_wire()  # type: ignore[no-any-return]


_SRV_HEAD = struct.Struct("!HHH")
# The RDATA of the commonest types with names, as their classes' _to_wire
# writes it without a compression table (RFC 1035 3.3, RFC 2782): the same
# bytes from Name.to_wire's own fast path, which builds no Name per label as
# the file-writing path does (100k zonegen records: compile_version 1.51 ->
# 1.39 s).  Only these very classes: a subclass may write otherwise.
# tests/test_compiled.py holds them to dnspython's Rdata.to_wire.
_FAST_WIRE: dict[type, Callable[[Any], bytes]] = {
    dns.rdtypes.ANY.NS.NS: _name_only,
    dns.rdtypes.ANY.CNAME.CNAME: _name_only,
    dns.rdtypes.ANY.PTR.PTR: _name_only,
    dns.rdtypes.ANY.DNAME.DNAME: _name_only,
    dns.rdtypes.ANY.MX.MX: _mx,
    dns.rdtypes.IN.SRV.SRV: _srv,
}


def _rdata_wire(rd: dns.rdata.Rdata) -> tuple[bytes, list[tuple[int, int]]]:
    """*rd*'s wire form and the (start, length) of each compressible name in it."""
    cls = type(rd)
    if cls not in _NAME_SLOTS:
        return _learn(rd)
    slots = _NAME_SLOTS[cls]
    fast = _FAST_WIRE.get(cls)
    if slots is None:
        return (fast(rd) if fast is not None else rd.to_wire() or b""), []
    if not slots:
        return _learn(rd)
    wire = fast(rd) if fast is not None else rd.to_wire() or b""
    names = []
    at = 0
    for slot in slots:
        name = getattr(rd, slot)
        if len(name) <= 1:
            continue  # the root is never entered in a compression table
        nwire = name.to_wire()
        at = wire.index(nwire, at)
        names.append((at, len(nwire)))
        at += len(nwire)
    return wire, names


class _Interner:
    """Suffix keys shared between names (a zone's names share most of their
    labels), in shards as the node table is, so it never grows in one long step."""

    __slots__ = ("tables", "mask", "records")

    def __init__(self, count: int) -> None:
        self.tables: list[dict[bytes, bytes]] = [{} for _ in range(count)]
        self.mask = count - 1
        # Records already rendered, by (type, class and TTL, rdata object): the
        # parser shares one rdata object between records with the same text, so
        # repeated targets and texts are rendered once and their bytes shared.
        # Valid for one compile, while the version keeps every rdata alive.
        self.records: dict[tuple[bytes, int], tuple[bytes | None, Parts]] = {}

    def key(self, key: bytes) -> bytes:
        return self.tables[hash(key) & self.mask].setdefault(key, key)

    def suffixes(self, wire: bytes) -> Suffixes:
        out = []
        lower = wire.lower()
        tables, mask = self.tables, self.mask
        pos = 0
        while wire[pos]:
            key = lower[pos:]
            out.append((tables[hash(key) & mask].setdefault(key, key), pos))
            pos += wire[pos] + 1
        return tuple(out)


# Addresses mostly differ: remembering their renderings would cost more than it saves.
_UNIQUE = frozenset({RdataType.A, RdataType.AAAA})
# Records remembered per compile (the first ones seen stay, as in the parser's
# caches): enough for the targets and texts a zone repeats, and a bound keeps
# the memo from growing in long steps.
_MEMO_LIMIT = 1 << 14


def _record(
    head: bytes, rd: dns.rdata.Rdata, intern: _Interner | None
) -> tuple[bytes | None, Parts]:
    """One record after its owner: its final bytes when it holds no compressible
    name (else None), and its parts."""
    wire, names = _rdata_wire(rd)
    if not names:
        return head + len(wire).to_bytes(2, "big") + wire, (head, (), wire)
    pieces = []
    last = 0
    for start, length in names:
        name = wire[start : start + length]
        sfx = intern.suffixes(name) if intern is not None else suffixes(name)
        pieces.append((wire[last:start], (name, sfx)))
        last = start + length
    return None, (head, tuple(pieces), wire[last:])


def _render(
    rrset: dns.rrset.RRset, owner: WireName | None = None, intern: _Interner | None = None
) -> RRsetWire:
    owner_name = owner if owner is not None else wire_name(rrset.name)
    head = rrset.rdtype.to_bytes(2, "big") + rrset.rdclass.to_bytes(2, "big")
    head += rrset.ttl.to_bytes(4, "big")
    tails: list[bytes] = []
    parts: list[Parts] = []
    memo = intern.records if intern is not None and rrset.rdtype not in _UNIQUE else None
    for rd in rrset:
        if memo is not None:
            done = memo.get((head, id(rd)))
            if done is not None:
                if done[0] is not None:
                    tails.append(done[0])
                parts.append(done[1])
                continue
        tail, part = _record(head, rd, intern)
        if tail is not None:
            tails.append(tail)
        parts.append(part)
        if memo is not None and len(memo) < _MEMO_LIMIT:
            memo[(head, id(rd))] = (tail, part)
    all_plain = len(tails) == len(parts)
    return RRsetWire(
        owner_name,
        int(rrset.rdtype),
        len(rrset),
        tuple(tails) if all_plain else None,
        () if all_plain else tuple(parts),
    )


def _rerender(
    node: Mapping[RdataType, dns.rrset.RRset],
    old: Mapping[RdataType, dns.rrset.RRset] | None,
    key: bytes,
    owner: WireName,
    intern: _Interner,
    old_wire: CompiledZone,
) -> dict[int, RRsetWire]:
    """*node*'s RRsets rendered, taking the old rendering of each RRset that
    is the very object the old version had (same owner, so same owner bytes)."""
    if old is None:
        return {int(t): _render(r, owner, intern) for t, r in node.items()}
    old_node = old_wire.shards[hash(key) & old_wire.mask].get(key)
    out = {}
    for t, r in node.items():
        was = old.get(t) if old_node is not None else None
        done = old_node.rrsets.get(int(t)) if was is r and old_node is not None else None
        out[int(t)] = done if done is not None else _render(r, owner, intern)
    return out


def render_rrset(rrset: dns.rrset.RRset, owner: WireName | None = None) -> RRsetWire:
    """*rrset* rendered as the compiler renders it (*owner*: shared with the
    other RRsets of its name), for what the compiled zone does not hold."""
    return _render(rrset, owner)


def _rdata_keys(rrset: RRsetWire) -> frozenset[bytes]:
    return frozenset(
        key for _, pieces, _ in rrset.parts for _, (_, sfx) in pieces for key, _ in sfx
    )


def ttl_bytes(rrset: RRsetWire) -> bytes:
    """*rrset*'s TTL as its four wire bytes."""
    head = rrset.tails[0] if rrset.tails is not None else rrset.parts[0][0]
    return head[4:8]


def synthesized_cname(owner: bytes, target: bytes, ttl: bytes) -> RRsetWire:
    """The CNAME a DNAME answer synthesizes (RFC 6672 section 2.3), from wire
    names; *ttl* is the DNAME's, as four wire bytes."""
    head = b"\x00\x05\x00\x01" + ttl
    return RRsetWire(
        (owner, suffixes(owner)),
        RdataType.CNAME,
        1,
        None,
        ((head, ((b"", (target, suffixes(target))),), b""),),
    )


_EXTRA_TYPES = (RdataType.NS, RdataType.MX, RdataType.SRV)
_NO_EXTRA: dict[int, tuple[RRsetWire, ...]] = {}


def compile_version(version: ZoneVersion, reuse: ZoneVersion | None = None) -> CompiledZone:
    """Render *version* into a ``CompiledZone`` answering as the engine does;
    an RRset that is the same object in *reuse* keeps its rendering there.

    Two passes over the names: the first renders every RRset under its
    node's key, the second adds what refers to other nodes (referrals,
    additional targets), found by key: no table keyed by every RRset, which
    would grow in long steps as the node table would unsharded.
    """
    origin = version.origin
    origin_key = key_of(origin)
    nodes = version.nodes
    count = shard_count(len(nodes))
    mask = count - 1
    intern = _Interner(count)
    prior = None
    if reuse is not None and reuse.wire is not None and reuse.origin == origin:
        prior = (reuse.nodes, reuse.wire)
    # Pass 1, per key: the name, its node and its rendered RRsets.
    first: list[
        dict[bytes, tuple[dns.name.Name, dict[RdataType, dns.rrset.RRset], dict[int, RRsetWire]]]
    ]
    first = [{} for _ in range(count)]
    for name, node in nodes.items():
        wire = name.to_wire() or b""
        owner = (wire, intern.suffixes(wire))
        key = owner[1][0][0] if owner[1] else b"\x00"
        if prior is None:
            rrsets = {int(t): _render(r, owner, intern) for t, r in node.items()}
        else:
            rrsets = _rerender(node, prior[0].get(name), key, owner, intern, prior[1])
        first[hash(key) & mask][key] = (name, node, rrsets)

    def rrsets_at(key: bytes) -> dict[int, RRsetWire] | None:
        hit = first[hash(key) & mask].get(key)
        return hit[2] if hit is not None else None

    cut_keys = {key_of(n) for n in version.cuts}
    # Cuts and DNAME owners below the apex, by key, for the stop of each name.
    stops = cut_keys | {key_of(n) for n in version.dnames if n != origin}
    shards: list[dict[bytes, NodeWire]] = [{} for _ in range(count)]
    referrers: list[dict[bytes, list[bytes]]] = [{} for _ in range(count)]
    for index, table in enumerate(first):
        shard = shards[index]
        for key, (name, node, rrsets) in table.items():
            shard[key] = _node_wire(
                version, origin_key, key, name, node, rrsets, rrsets_at, stops, cut_keys, intern.key
            )
            for target in _targets(rrsets, origin_key):
                refs = referrers[hash(target) & mask].get(target)
                if refs is None:
                    referrers[hash(target) & mask][intern.key(target)] = [key]
                else:
                    refs.append(key)
    apex = shards[hash(origin_key) & mask][origin_key]
    negative = _render(version.negative_soa, apex.rrsets[RdataType.SOA].owner, intern)
    compiled = CompiledZone(
        origin_key,
        tuple(shards),
        mask,
        origin in version.dnames,
        version.wildcards,
        negative,
        _rdata_keys(negative),
        referrers=tuple({k: tuple(v) for k, v in table.items()} for table in referrers),
    )
    # The scaffolding freed a shard at a time: dropped at the return, these
    # tables (a tuple or list per name) went in one deallocation that held
    # the GIL for 77 ms at 300,000 records.
    for tables in (first, referrers, intern.tables):
        while tables:
            tables.pop()
    return compiled


def _identity(key: bytes) -> bytes:
    return key


def _targets(rrsets: Mapping[int, RRsetWire], origin_key: bytes) -> set[bytes]:
    """The keys of the in-zone names a node's NS, MX and SRV records point to:
    the names whose addresses its additional sections and referral copy."""
    out: set[bytes] = set()
    for t in _EXTRA_TYPES:
        rrset = rrsets.get(t)
        if rrset is not None:
            out.update(_targets_of(rrset, origin_key))
    return out


# Where the target name starts in the RDATA of NS, MX (after the preference)
# and SRV (after priority, weight and port).
_TARGET_AT = {RdataType.NS: 0, RdataType.MX: 2, RdataType.SRV: 6}


def _rdatas(rrset: RRsetWire) -> list[bytes]:
    """Each record's RDATA as dnspython wrote it (uncompressed)."""
    if rrset.tails is not None:
        return [tail[10:] for tail in rrset.tails]
    return [
        b"".join([lit + name for lit, (name, _) in pieces]) + last
        for _, pieces, last in rrset.parts
    ]


def _targets_of(rrset: RRsetWire, origin_key: bytes) -> list[bytes]:
    """The keys of the in-zone names the NS, MX or SRV *rrset* points to, each
    once, in record order (``engine._additional_for``'s targets, as keys)."""
    at = _TARGET_AT[RdataType(rrset.rdtype)]
    out: list[bytes] = []
    for rdata in _rdatas(rrset):
        target = rdata[at:].lower()
        if target != b"\x00" and target not in out and in_zone(target, origin_key):
            out.append(target)
    return out


def _below_cut(key: bytes, cut_keys: Set[bytes], olen: int) -> bool:
    """Whether the name *key* is at or below one of the zone's cuts."""
    while len(key) > olen:
        if key in cut_keys:
            return True
        key = key[key[0] + 1 :]
    return False


def _rendered(
    rrsets_at: Callable[[bytes], Mapping[int, RRsetWire] | None], rrset: dns.rrset.RRset
) -> RRsetWire:
    """The rendering of *rrset*, an RRset of the zone being compiled."""
    found = rrsets_at(key_of(rrset.name))
    assert found is not None, rrset.name
    return found[int(rrset.rdtype)]


def _node_wire(
    version: ZoneVersion,
    origin_key: bytes,
    key: bytes,
    name: dns.name.Name,
    node: Node,
    rrsets: dict[int, RRsetWire],
    rrsets_at: Callable[[bytes], Mapping[int, RRsetWire] | None],
    stops: Set[bytes],
    cut_keys: Set[bytes],
    intern: Callable[[bytes], bytes],
) -> NodeWire:
    """The compiled node *key*, its RRsets already *rendered*; what it copies from
    other nodes (referral glue, additional addresses) is found by *rrsets_at*,
    the rendered RRsets of a key (None: no such node)."""
    olen = len(origin_key)
    stop = None
    if stops:
        # Top-down: the first stop from the apex wins (the walk meets it first).
        ancestors = []
        p = key[key[0] + 1 :] if key != origin_key else key
        while len(p) > olen:
            ancestors.append(p)
            p = p[p[0] + 1 :]
        for a in reversed(ancestors):
            if a in stops:
                stop = intern(a)
                break
    CNAME, DNAME = RdataType.CNAME, RdataType.DNAME
    cname = rrsets.get(CNAME)
    cname_target = None
    cname_wire = b""
    if cname is not None:
        cname_wire = _rdatas(cname)[0]
        lower = cname_wire.lower()
        if in_zone(lower, origin_key):
            cname_target = intern(lower)
    dname = rrsets.get(DNAME)
    referral = None
    if key in cut_keys:
        answer = engine.Answer(engine.State.DELEGATION)
        engine._referral(version, name, node, answer, None)
        answer = engine._finish(version, answer, False)
        referral = Referral(
            rrsets[RdataType.NS],
            tuple(_rendered(rrsets_at, r) for r in answer.required),
            tuple(_rendered(rrsets_at, r) for r in answer.additional),
        )
    extra = _NO_EXTRA
    for t in _EXTRA_TYPES:
        rrset = rrsets.get(t)
        if rrset is None:
            continue
        # As ``engine._additional_for``: every authoritative target's A, then
        # every one's AAAA (IPv4 survives truncation first).
        found = []
        targets = [k for k in _targets_of(rrset, origin_key) if not _below_cut(k, cut_keys, olen)]
        for rdtype in (RdataType.A, RdataType.AAAA):
            for target in targets:
                at = rrsets_at(target)
                if at is not None and rdtype in at:
                    found.append(at[rdtype])
        if found:
            if extra is _NO_EXTRA:
                extra = {}
            extra[int(t)] = tuple(found)
    return NodeWire(
        rrsets,
        rrsets.get(CNAME),
        cname_target,
        cname_wire,
        rrsets.get(DNAME),
        _rdatas(dname)[0] if dname is not None else b"",
        referral,
        stop,
        extra,
    )


#: Nodes ``recompile`` redoes at most; beyond, a full compile is as cheap.
RECOMPILE_MAX_NODES = 20_000


def recompile(
    old: CompiledZone,
    old_version: ZoneVersion,
    version: ZoneVersion,
    touched: Iterable[dns.name.Name],
    max_nodes: int = RECOMPILE_MAX_NODES,
) -> CompiledZone | None:
    """*version* compiled from *old*, the compiled form of *old_version*, when
    they differ only at the names *touched* (and the apex SOA); None when that
    is not known to be enough (the caller compiles the whole version).

    Redone: the touched nodes (their RRsets rendered again; an absent node is
    dropped, a new one added) and the nodes whose additional sections or
    referral copy a touched name's addresses (``CompiledZone.referrers``).
    Every other node, and every shard holding none of these, is shared with
    *old*, which is left as it was (queries in flight, other views read it).

    The caller guarantees what this cannot see cheaply: the two versions have
    the same cuts, DNAME owners and wildcard flag, and each touched name's
    ancestors are nodes of *version* (new empty non-terminals are touched).
    """
    mask = old.mask
    if len(old.referrers) != len(old.shards) or version.denial is not None:
        return None
    if version.cuts != old_version.cuts or version.dnames != old_version.dnames:
        return None
    if version.wildcards != old_version.wildcards:
        return None
    origin = version.origin
    origin_key = old.origin
    names = {key_of(n): n for n in touched}
    names.setdefault(origin_key, origin)  # the SOA changes with every step
    affected: dict[bytes, dns.name.Name | None] = dict(names)
    for key in names:
        for ref in old.referrers[hash(key) & mask].get(key, ()):
            affected.setdefault(ref, None)
        if len(affected) > max_nodes:
            return None
    # Pass 1: the touched nodes' RRsets, rendered again.
    fresh: dict[bytes, tuple[dns.name.Name, Node, dict[int, RRsetWire]]] = {}
    gone = []
    for key, name in names.items():
        node = version.nodes.get(name)
        if node is None:
            gone.append(key)
            continue
        wire = name.to_wire() or b""
        owner = (wire, suffixes(wire))
        fresh[key] = (name, node, {int(t): _render(r, owner) for t, r in node.items()})
    gone_keys = frozenset(gone)

    def rrsets_at(key: bytes) -> Mapping[int, RRsetWire] | None:
        hit = fresh.get(key)
        if hit is not None:
            return hit[2]
        if key in gone_keys:
            return None
        prior = old.node(key)
        return prior.rrsets if prior is not None else None

    shards = list(old.shards)
    copied: set[int] = set()

    def shard_of(key: bytes) -> dict[bytes, NodeWire]:
        index = hash(key) & mask
        if index not in copied:
            shards[index] = dict(shards[index])
            copied.add(index)
        return shards[index]

    cut_keys = {key_of(n) for n in version.cuts}
    stops = cut_keys | {key_of(n) for n in version.dnames if n != origin}
    # Pass 2: every affected node; a referrer keeps its own RRsets.
    for key, known in affected.items():
        if key in fresh:
            name, node, rrsets = fresh[key]
        elif known is None:
            prior = old.node(key)
            if prior is None:
                continue  # a stale referrer entry: nothing to redo
            owner_wire = next(iter(prior.rrsets.values())).owner[0]
            name = dns.name.from_wire(owner_wire, 0)[0]
            found = version.nodes.get(name)
            if found is None:
                continue
            node, rrsets = found, prior.rrsets
        else:
            continue  # touched and gone
        shard_of(key)[key] = _node_wire(
            version, origin_key, key, name, node, rrsets, rrsets_at, stops, cut_keys, _identity
        )
    for key in gone:
        shard_of(key).pop(key, None)
    # The reverse index follows the touched nodes' targets.
    referrers = list(old.referrers)
    rcopied: set[int] = set()
    for key in names:
        before = old.node(key)
        after = fresh.get(key)
        was = _targets(before.rrsets, origin_key) if before is not None else set()
        now = _targets(after[2], origin_key) if after is not None else set()
        for target in was ^ now:
            index = hash(target) & mask
            if index not in rcopied:
                referrers[index] = dict(referrers[index])
                rcopied.add(index)
            refs = referrers[index].get(target, ())
            if target in now:
                referrers[index][target] = (*refs, key)
            else:
                kept = tuple(r for r in refs if r != key)
                if kept:
                    referrers[index][target] = kept
                else:
                    referrers[index].pop(target, None)
    apex = shards[hash(origin_key) & mask][origin_key]
    negative = _render(version.negative_soa, apex.rrsets[RdataType.SOA].owner)
    return replace(
        old,
        shards=tuple(shards),
        negative=negative,
        negative_keys=_rdata_keys(negative),
        negative_by_length={},
        referrers=tuple(referrers),
    )


def in_zone(key: bytes, origin: bytes) -> bool:
    """Whether the name *key* is at or below *origin* (both lowercased wire forms)."""
    olen = len(origin)
    while len(key) > olen:
        key = key[key[0] + 1 :]
    return key == origin


__all__ = [
    "SHARD_SIZE",
    "CompiledZone",
    "NodeWire",
    "RRsetWire",
    "Referral",
    "WireName",
    "compile_version",
    "in_zone",
    "key_of",
    "recompile",
    "render_rrset",
    "suffixes",
    "synthesized_cname",
    "wire_name",
]
