"""Changesets: the difference between two versions of a zone, as IXFR carries it.

Owns: computing the difference of two ``ZoneVersion``s (``diff``), folding a
chain of differences into one (``condense``), and applying a difference to a
version (``apply``, for tests and for secondaries that receive IXFR), or in
place, replacing only the nodes it names (``apply_incremental``, what a
secondary tries first), and diffing two versions known to differ only at
some names (``diff_owners``).

Invariants:

* The apex SOA is never in ``removed`` or ``added``; it travels as
  ``old_soa``/``new_soa``, exactly where RFC 1995 section 4 puts it.
* A record is identified by (owner, rdata); its TTL is a property of the
  RRset it belongs to.  A TTL change therefore removes every record of the old
  RRset (with the old TTL) and adds every record of the new one (with the new
  TTL), so a receiver that applies ``removed`` then ``added`` ends up with one
  TTL per RRset (RFC 2181 section 5.2).
* ``removed`` holds records of the old version only, ``added`` records of the
  new version only; none appears in both with the same TTL, and none twice.
* ``apply(old, diff(old, new))`` compiles to a version with the same content
  and serial as ``new``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authd.checks import CNAME_COMPANIONS, rrset_may_be_too_large
from authd.namedict import NameMap, updated
from authd.zone import CompileResult, Node, ZoneVersion, compile_zone
from authd.zonefile import Record

RdataType = dns.rdatatype.RdataType
_SOA = RdataType.SOA
IN = dns.rdataclass.IN


class RR(NamedTuple):
    """One resource record: owner, TTL and rdata (class IN, type in the rdata)."""

    name: dns.name.Name
    ttl: int
    rdata: dns.rdata.Rdata


@dataclass(frozen=True, slots=True)
class Changeset:
    """What changed from the version with ``old_soa`` to the one with ``new_soa``."""

    old_soa: RR
    new_soa: RR
    removed: tuple[RR, ...]
    added: tuple[RR, ...]

    @property
    def serial_from(self) -> int:
        return int(self.old_soa.rdata.serial)  # type: ignore[attr-defined]

    @property
    def serial_to(self) -> int:
        return int(self.new_soa.rdata.serial)  # type: ignore[attr-defined]

    @property
    def origin(self) -> dns.name.Name:
        return self.old_soa.name

    def __len__(self) -> int:
        """The number of records an IXFR of this changeset carries (both SOAs included)."""
        return 2 + len(self.removed) + len(self.added)


def _soa_rr(version: ZoneVersion) -> RR:
    return RR(version.origin, version.soa.ttl, version.soa[0])


def _all(rrset: dns.rrset.RRset, out: list[RR]) -> None:
    name, ttl = rrset.name, rrset.ttl
    out.extend(RR(name, ttl, rd) for rd in rrset)


# Rdata class -> its value slots; a memo, filled once per class.
_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(cls: type) -> tuple[str, ...]:
    """The value slots of an rdata class, without the zone-file comment."""
    slots = _SLOTS.get(cls)
    if slots is None:
        names: list[str] = []
        for klass in cls.__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if slot != "rdcomment" and slot not in names:
                    names.append(slot)
        slots = _SLOTS[cls] = tuple(names)
    return slots


_PLAIN = (int, str, bytes, type(None))


def _identical(x: dns.rdata.Rdata, y: dns.rdata.Rdata) -> bool:
    """True only when *x* and *y* certainly have the same wire form.

    Compares the rdata's fields (names by their exact labels) instead of
    rendering both to canonical wire form as ``Rdata.__eq__`` does; a False
    here means "not sure" (a name in another letter case, an address written
    another way, a field of an unusual type) and the caller asks dnspython.
    """
    if x is y:
        return True
    cls = type(x)
    if type(y) is not cls:
        return False
    for slot in _slots(cls):
        a = getattr(x, slot)
        b = getattr(y, slot)
        if a is b:
            continue
        if type(a) is dns.name.Name:
            if type(b) is not dns.name.Name or a.labels != b.labels:
                return False
        elif isinstance(a, _PLAIN) or (type(a) is tuple and all(isinstance(e, _PLAIN) for e in a)):
            if a != b:
                return False
        else:
            return False
    return True


def _same_rdatas(a: dns.rrset.RRset, b: dns.rrset.RRset) -> bool:
    # The common case - the same records in the same order, often the same
    # objects - is settled field by field; anything else by set equality.
    if len(a) != len(b):
        return False
    if all(_identical(x, y) for x, y in zip(a, b, strict=True)):
        return True
    return bool(a == b)


def _rrset_diff(
    old: dns.rrset.RRset, new: dns.rrset.RRset, removed: list[RR], added: list[RR]
) -> None:
    if old.ttl != new.ttl:
        _all(old, removed)
        _all(new, added)
    elif not _same_rdatas(old, new):
        name, ttl = new.name, new.ttl
        removed.extend(RR(name, ttl, rd) for rd in old if rd not in new)
        added.extend(RR(name, ttl, rd) for rd in new if rd not in old)


def _node_diff(
    onode: Node | None,
    node: Node,
    apex: bool,
    removed: list[RR],
    added: list[RR],
) -> None:
    if onode is node:
        return
    if onode is None:
        for rdtype, rrset in node.items():
            if not (apex and rdtype == _SOA):
                _all(rrset, added)
        return
    for rdtype, rrset in node.items():
        if apex and rdtype == _SOA:
            continue
        orrset = onode.get(rdtype)
        if orrset is rrset:
            continue
        if orrset is None:
            _all(rrset, added)
        else:
            _rrset_diff(orrset, rrset, removed, added)
    for rdtype, orrset in onode.items():
        if rdtype not in node and not (apex and rdtype == _SOA):
            _all(orrset, removed)


def diff(old: ZoneVersion, new: ZoneVersion) -> Changeset:
    """The changeset that turns *old* into *new*.

    Cost: one comparison per RRset.  Nodes and RRsets shared by the two
    versions (the same object) are skipped without looking inside; equal
    RRsets are recognised field by field.  Names are matched by walking both
    node tables side by side - a version compiled from an edited file keeps
    the order of the names it shares with the old one - and only where the
    walks disagree (a name added, removed or moved) by hashing names, which
    for ``dns.name.Name`` is slow pure Python.
    """
    if old.origin != new.origin:
        raise ValueError(f"cannot diff {old.origin} against {new.origin}")
    # Every name of a version is at or below its origin, so only the apex has
    # as many labels as the origin (cheaper than comparing names).
    apex_labels = len(new.origin.labels)
    removed: list[RR] = []
    added: list[RR] = []
    _table_diff(old.nodes, new.nodes, apex_labels, removed, added)
    if old.hashed or new.hashed:
        # NSEC3 owners: never the apex (depth 0 matches no name).
        _table_diff(old.hashed, new.hashed, 0, removed, added)
    return Changeset(_soa_rr(old), _soa_rr(new), tuple(removed), tuple(added))


def _table_diff(
    onodes: NameMap[Node],
    nnodes: NameMap[Node],
    apex_labels: int,
    removed: list[RR],
    added: list[RR],
) -> None:
    # Walk the old table with an iterator (a list of its items would be one
    # more allocation per name, which wakes the cyclic garbage collector).
    old_items = iter(onodes.items())
    current = next(old_items, None)
    for name, node in nnodes.items():
        apex = len(name.labels) == apex_labels
        if current is not None:
            oname, onode = current
            if oname is name or oname.labels == name.labels:
                current = next(old_items, None)
                _node_diff(onode, node, apex, removed, added)
                continue
            # Out of step: drop old names that are gone, then match by lookup.
            while current is not None and current[0] not in nnodes:
                for rrset in current[1].values():
                    _all(rrset, removed)
                current = next(old_items, None)
            if current is not None and (current[0] is name or current[0].labels == name.labels):
                _node_diff(current[1], node, apex, removed, added)
                current = next(old_items, None)
                continue
        _node_diff(onodes.get(name), node, apex, removed, added)
    while current is not None:
        if current[0] not in nnodes:
            for rrset in current[1].values():
                _all(rrset, removed)
        current = next(old_items, None)


def condense(changesets: Sequence[Changeset]) -> Changeset:
    """One changeset with the net effect of a chain of consecutive ones.

    A record added and later removed vanishes; one removed and later added
    back with the same TTL vanishes too.  Raises ``ValueError`` when the chain
    is empty or broken (a changeset not starting at the serial the previous
    one ended at).
    """
    if not changesets:
        raise ValueError("nothing to condense")
    if len(changesets) == 1:
        return changesets[0]
    # (owner, rdata) -> TTL: records of the base version that are gone, and
    # records present at the end that the base version did not have.
    gone: dict[tuple[dns.name.Name, dns.rdata.Rdata], int] = {}
    new: dict[tuple[dns.name.Name, dns.rdata.Rdata], int] = {}
    previous: Changeset | None = None
    for cs in changesets:
        if previous is not None and cs.serial_from != previous.serial_to:
            raise ValueError(
                f"broken chain: a changeset from serial {cs.serial_from} follows "
                f"one ending at {previous.serial_to}"
            )
        previous = cs
        for name, ttl, rd in cs.removed:
            key = (name, rd)
            if new.pop(key, None) is None:
                gone[key] = ttl
        for name, ttl, rd in cs.added:
            key = (name, rd)
            if gone.get(key) == ttl:
                del gone[key]
            else:
                new[key] = ttl
    return Changeset(
        changesets[0].old_soa,
        changesets[-1].new_soa,
        tuple(RR(n, t, rd) for (n, rd), t in gone.items()),
        tuple(RR(n, t, rd) for (n, rd), t in new.items()),
    )


def records(version: ZoneVersion) -> Iterator[RR]:
    """Every record of *version*, the apex SOA first, in node order."""
    yield _soa_rr(version)
    origin = version.origin
    for table in version.tables():
        for name, node in table.items():
            apex = name == origin
            for rdtype, rrset in node.items():
                if apex and rdtype == _SOA:
                    continue
                ttl = rrset.ttl
                for rd in rrset:
                    yield RR(name, ttl, rd)


def apply(
    version: ZoneVersion, changeset: Changeset, waive: frozenset[str] = frozenset()
) -> CompileResult:
    """Compile the version that results from applying *changeset* to *version*.

    *waive*: LAB ONLY, as for ``compile_zone`` (a lab secondary serves the
    broken zone its primary serves).

    Raises ``ValueError`` when the changeset does not start at *version*'s
    serial or removes a record *version* does not hold: applying it anyway
    would silently diverge from the primary (RFC 1995 section 5 has the
    client fall back to AXFR instead).  A removed record is matched by owner
    and rdata, whatever its TTL.
    """
    if changeset.origin != version.origin:
        raise ValueError(f"changeset for {changeset.origin} applied to {version.origin}")
    if changeset.serial_from != version.serial:
        raise ValueError(
            f"changeset starts at serial {changeset.serial_from}, the zone is at {version.serial}"
        )
    # Only the owners the changeset names are looked at closely: a dict of
    # every record would be a million-entry table grown in single long steps
    # (stalling the reactor thread) and a slow rdata hash per record.
    removed = dict.fromkeys((name, rd) for name, _ttl, rd in changeset.removed)
    added = {(name, rd): ttl for name, ttl, rd in changeset.added}
    touched = {
        id(node)
        for name, _ in [*removed, *added]
        for table in version.tables()
        if (node := table.get(name)) is not None
    }
    file = version.file
    soa = changeset.new_soa
    recs = [Record(soa.name, soa.ttl, soa.rdata, file, 0)]
    found = set()
    origin = version.origin
    for name, node in (item for table in version.tables() for item in table.items()):
        check = id(node) in touched
        for rdtype, rrset in node.items():
            if rdtype == _SOA and name == origin:
                continue  # the old SOA: the new one is first in recs
            ttl = rrset.ttl
            for rd in rrset:
                if check:
                    key = (name, rd)
                    if key in removed:
                        found.add(key)
                        continue
                    if key in added:
                        continue  # added again (a new TTL): the changeset's copy wins
                recs.append(Record(name, ttl, rd, file, 0))
    for name, rd in removed:
        if (name, rd) not in found:
            raise ValueError(f"changeset removes {name} {rd.rdtype.name} {rd} which is not there")
    recs.extend(Record(name, ttl, rd, file, 0) for (name, rd), ttl in added.items())
    return compile_zone(version.origin, recs, file, waive)


# Types whose change reshapes more than their own node (cuts, DNAME
# redirections, the apex, DNSSEC proofs): ``apply_incremental`` leaves them
# to the full ``apply``.
_HARD_TYPES = frozenset(
    {
        RdataType.NS,
        RdataType.DNAME,
        _SOA,
        RdataType.RRSIG,
        RdataType.NSEC,
        RdataType.NSEC3,
        RdataType.NSEC3PARAM,
        RdataType.DNSKEY,
    }
)
_ADDRESSES = (RdataType.A, RdataType.AAAA)


@dataclass(frozen=True, slots=True)
class Applied:
    """A changeset applied in place: the new version and the names it touched."""

    version: ZoneVersion
    touched: tuple[dns.name.Name, ...]


def apply_incremental(version: ZoneVersion, changeset: Changeset) -> Applied | None:
    """*changeset* applied to *version* by replacing only the nodes it names;
    None when it may change more than those (the caller uses ``apply``).

    The result equals ``apply(version, changeset).version`` (the tests hold
    it to that): the node shards the changeset does not touch, and in the
    compiled form every node that does not copy a touched one, are shared
    with *version*, so a one-record edit of a million-record zone costs
    milliseconds.  Left to ``apply`` (correctness first, and each is rare in
    the IXFR of a big zone): a signed or inline-signed zone; NS, DNAME, SOA
    and DNSSEC records; wildcard owners and names below a DNAME; a name left
    with no data (it may become an empty non-terminal or vanish with its
    own); a name that loses its last address (a delegation's glue or an NS
    target: the load checks say so); a CNAME beside other data or a second
    CNAME; a TTL that differs within an RRset; out-of-zone owners.  Raises
    ``ValueError`` as ``apply`` does for a changeset that does not fit.
    """
    # Imported here: the compiler builds on the engine, which reads zones.
    from authd.compiled import compile_version, recompile

    if changeset.origin != version.origin:
        raise ValueError(f"changeset for {changeset.origin} applied to {version.origin}")
    if changeset.serial_from != version.serial:
        raise ValueError(
            f"changeset starts at serial {changeset.serial_from}, the zone is at {version.serial}"
        )
    if version.wire is None or version.denial is not None or version.hashed:
        return None
    if version.inline is not None:
        return None
    origin = version.origin
    olen = len(origin.labels)
    # owner -> type -> (rdatas removed, (rdata, TTL) added)
    edits: dict[dns.name.Name, dict[RdataType, tuple[list[dns.rdata.Rdata], list[RR]]]] = {}
    for rrs, adding in ((changeset.removed, False), (changeset.added, True)):
        for rr in rrs:
            rdtype = rr.rdata.rdtype
            name = rr.name
            if rdtype in _HARD_TYPES or not name.is_subdomain(origin):
                return None
            if name.labels[0] == b"*" or any(
                dns.name.Name(name.labels[i:]) in version.dnames
                for i in range(1, len(name.labels) - olen + 1)
            ):
                return None
            per = edits.setdefault(name, {}).setdefault(rdtype, ([], []))
            if adding:
                per[1].append(rr)
            else:
                per[0].append(rr.rdata)
    changes: dict[dns.name.Name, Node] = {}
    count = version.record_count
    for name, types in edits.items():
        onode = version.nodes.get(name)
        node: Node = dict(onode) if onode is not None else {}
        key = name if onode is None else _key_name(version, name)
        for rdtype, (gone, coming) in types.items():
            orrset = node.get(rdtype)
            held = list(orrset) if orrset is not None else []
            for rd in gone:
                if rd not in held:
                    raise ValueError(
                        f"changeset removes {name} {rd.rdtype.name} {rd} which is not there"
                    )
            dropped = set(gone) | {rr.rdata for rr in coming}
            kept = [rd for rd in held if rd not in dropped]
            ttls = {rr.ttl for rr in coming}
            if len(ttls) > 1 or (kept and ttls and orrset is not None and ttls != {orrset.ttl}):
                return None  # a TTL mismatch: apply reports it
            rdatas = dict.fromkeys([*kept, *(rr.rdata for rr in coming)])
            if coming and rrset_may_be_too_large(rdtype, list(rdatas)):
                return None  # maybe over a message (rrset-too-large): apply judges it
            count += len(rdatas) - len(held)
            if not rdatas:
                node.pop(rdtype, None)
                continue
            rrset = dns.rrset.RRset(orrset.name if orrset is not None else key, IN, rdtype)
            rrset.ttl = orrset.ttl if kept and orrset is not None else ttls.pop()
            rrset.items = rdatas
            node[rdtype] = rrset
        if not node:
            return None  # a name emptied: an empty non-terminal, or gone with its own
        cname = node.get(RdataType.CNAME)
        if cname is not None and (
            len(cname) > 1 or any(t not in CNAME_COMPANIONS for t in node if t != RdataType.CNAME)
        ):
            return None
        if onode is not None and any(t in onode for t in _ADDRESSES):
            if not any(t in node for t in _ADDRESSES):
                return None
        changes[key] = node
    # New names: their missing ancestors become empty non-terminals.
    for name in list(changes):
        parent = name
        while len(parent) > olen + 1:
            parent = parent.parent()
            if parent in changes or parent in version.nodes:
                break
            changes[parent] = {}
    # The apex SOA: the new one, and the negative answers' copy.
    new_soa = changeset.new_soa
    soa = dns.rrset.RRset(version.soa.name, IN, _SOA)
    soa.ttl = new_soa.ttl
    soa.add(new_soa.rdata)
    apex = dict(changes.get(origin) or version.nodes[origin])
    apex[_SOA] = soa
    changes[_key_name(version, origin)] = apex
    negative = soa.copy()
    negative.ttl = min(soa.ttl, int(new_soa.rdata.minimum))  # type: ignore[attr-defined]
    new = dataclasses.replace(
        version,
        soa=soa,
        negative_soa=negative,
        nodes=updated(version.nodes, changes),
        record_count=count,
        wire=None,
    )
    touched = tuple(changes)
    assert version.wire is not None
    wire = recompile(version.wire, version, new, touched)
    if wire is None:
        wire = compile_version(new)
    return Applied(dataclasses.replace(new, wire=wire), touched)


def _key_name(version: ZoneVersion, name: dns.name.Name) -> dns.name.Name:
    """*name* as *version*'s table spells it (letter case kept from the zone)."""
    node = version.nodes.get(name)
    return next(iter(node.values())).name if node else name


def diff_owners(old: ZoneVersion, new: ZoneVersion, owners: Iterable[dns.name.Name]) -> Changeset:
    """``diff(old, new)`` when the two differ only at *owners* (``Applied.touched``):
    only those nodes are compared."""
    apex_labels = len(new.origin.labels)
    removed: list[RR] = []
    added: list[RR] = []
    for name in owners:
        onode = old.nodes.get(name)
        node = new.nodes.get(name)
        apex = len(name.labels) == apex_labels
        if node is None:
            if onode is not None:
                for rrset in onode.values():
                    _all(rrset, removed)
            continue
        _node_diff(onode, node, apex, removed, added)
    return Changeset(_soa_rr(old), _soa_rr(new), tuple(removed), tuple(added))


__all__ = [
    "RR",
    "Applied",
    "Changeset",
    "apply",
    "apply_incremental",
    "condense",
    "diff",
    "diff_owners",
    "records",
]
