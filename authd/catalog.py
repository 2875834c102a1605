"""Catalog zones (RFC 9432, schema version 2): produced, read, and turned into zones.

Owns: the catalog a primary generates from the zones that name it
(``generate``), reading a transferred catalog into its member list with the
checks of RFC 9432 section 5 (``read``), and expanding a config with the
members of its interpreted catalogs as secondary zones (``expand``).  Pure:
the adapters hand in versions and configs and get values back.

Invariants: a member's unique id is a hash of its name, so it is the same on
every producer run and every restart (Knot does the same), and two members
never share one; a catalog without version "2" is not interpreted at all
(section 5.1: the consumer keeps the members it had); an invalid member entry
is ignored with a problem line and never makes the whole catalog fail; a zone
the config lists itself wins over a catalog's member of that name, and of two
catalogs listing one zone the first in the config wins.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authd.config import (
    GENERATED_CATALOG,
    CatalogRole,
    Config,
    ViewConfig,
    ZoneConfig,
    ZoneType,
    state_file,
)
from authd.limits import MAX_CATALOG_GROUP_BYTES, MAX_CATALOG_MEMBERS, MAX_CATALOG_PROBLEMS
from authd.snapshot import Snapshot
from authd.zone import ZoneVersion, compile_zone
from authd.zonefile import Record

VERSION = b"2"  # the schema version this module speaks (RFC 9432 section 4.2)
SOURCE = GENERATED_CATALOG  # the "file" of a generated catalog, for messages
# RFC 9432 section 4.1: the apex NS is required and conventionally "invalid.";
# nobody resolves a catalog, so TTLs are 0 (the RFC's examples) and the SOA's
# names are placeholders too.
_SOA = "invalid. invalid. {serial} 3600 600 2419200 0"
_ID_HEX = 16  # 64 bits of SHA-256: a collision among members is lengthened, never shared

IN = dns.rdataclass.IN
T = dns.rdatatype.RdataType


@dataclass(frozen=True, slots=True)
class Member:
    name: dns.name.Name
    unique_id: str  # the member node's label under ``zones.``
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    zone: dns.name.Name
    valid: bool  # False: no version "2", so nothing in it is interpreted
    members: tuple[Member, ...] = ()
    problems: tuple[str, ...] = ()  # entries ignored, and why (for the log)


@dataclass(frozen=True, slots=True)
class Expansion:
    config: Config
    problems: tuple[str, ...] = ()


# -- producing --------------------------------------------------------------------


def unique_id(member: dns.name.Name, length: int = _ID_HEX) -> str:
    """The stable unique id of *member*: hex of SHA-256 over its lowercased wire form."""
    return hashlib.sha256(_wire(member)).hexdigest()[:length]


def _wire(name: dns.name.Name) -> bytes:
    return name.canonicalize().to_wire() or b""  # absolute names always have a wire form


def _rd(rdtype: T, text: str, origin: dns.name.Name) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, rdtype, text, origin=origin)


def member_ids(members: Iterable[dns.name.Name]) -> dict[dns.name.Name, str]:
    """Each member's unique id; on a (64-bit) collision the later name's id is longer."""
    used: set[str] = set()
    out: dict[dns.name.Name, str] = {}
    for name in sorted(set(members)):
        length = _ID_HEX
        label = unique_id(name, length)
        while label in used:
            length += 2
            label = unique_id(name, length)
        used.add(label)
        out[name] = label
    return out


def records(
    zone: dns.name.Name, members: Sequence[tuple[dns.name.Name, str | None]], serial: int
) -> list[Record]:
    """The records of the catalog *zone* listing *members* (name, group or None)."""
    out = [
        Record(zone, 0, _rd(T.SOA, _SOA.format(serial=serial), zone), SOURCE, 0),
        Record(zone, 0, _rd(T.NS, "invalid.", zone), SOURCE, 0),
        Record(
            dns.name.Name(("version",)).derelativize(zone), 0, _rd(T.TXT, '"2"', zone), SOURCE, 0
        ),
    ]
    zones = dns.name.Name(("zones",)).derelativize(zone)
    ids = member_ids(name for name, _ in members)
    for name, group in sorted(members, key=lambda m: m[0]):
        node = dns.name.Name((ids[name],)).derelativize(zones)
        out.append(Record(node, 0, _rd(T.PTR, name.to_text(), zone), SOURCE, 0))
        if group is not None:
            where = dns.name.Name(("group",)).derelativize(node)
            quoted = '"' + group.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(Record(where, 0, _rd(T.TXT, quoted, zone), SOURCE, 0))
    return out


def generate(
    zone: dns.name.Name, members: Sequence[tuple[dns.name.Name, str | None]], serial: int = 1
) -> ZoneVersion:
    """The compiled catalog *zone* listing *members*, serving *serial*."""
    result = compile_zone(zone, records(zone, members, serial), SOURCE)
    if result.version is None:  # our own records: a bug, not bad input
        raise ValueError(f"generated catalog {zone} refused: {result.errors[0]}")
    return result.version


def members_of(view: ViewConfig, catalog: ZoneConfig) -> list[tuple[dns.name.Name, str | None]]:
    """The (name, group) of the zones of *view* naming the generated *catalog*."""
    return [
        (z.name, z.catalog_group)
        for z in view.zones
        if z.catalog_zone == catalog.name and z.in_view is None
    ]


def digest(members: Sequence[tuple[dns.name.Name, str | None]]) -> str:
    """What a generated catalog's content depends on: its serial is reused across restarts
    while this stays the same."""
    h = hashlib.sha256(b"catalog v2\0")
    for name, group in sorted(members, key=lambda m: m[0]):
        h.update(_wire(name) + b"\0" + (group or "").encode() + b"\0")
    return "catalog:" + h.hexdigest()


# -- reading ----------------------------------------------------------------------


def _strings(rrset: dns.rrset.RRset) -> list[tuple[bytes, ...]]:
    return [tuple(rd.strings) for rd in rrset]


def read(version: ZoneVersion) -> Catalog:
    """The members *version* of a catalog lists, with what was ignored and why."""
    zone = version.origin
    problems: list[str] = []
    nodes = version.nodes
    version_node = nodes.get(dns.name.Name(("version",)).derelativize(zone))
    txt = version_node.get(T.TXT) if version_node is not None else None
    if txt is None:
        return Catalog(zone, False, problems=(f"catalog {zone}: no version property",))
    found = _strings(txt)
    if found != [(VERSION,)]:
        shown = " ".join(b"".join(s).decode("ascii", "replace") for s in found)
        return Catalog(
            zone, False, problems=(f"catalog {zone}: unsupported version {shown!r} (want 2)",)
        )
    zones = dns.name.Name(("zones",)).derelativize(zone)
    ptrs: dict[bytes, tuple[str, dns.rrset.RRset]] = {}
    groups: dict[bytes, dns.rrset.RRset] = {}
    for name, node in nodes.items():
        if not name.is_subdomain(zones) or name == zones:
            continue
        labels = name.relativize(zones).labels
        if len(labels) == 1:
            key = labels[0].lower()
            rrset = node.get(T.PTR)
            if rrset is not None:
                ptrs[key] = (dns.name.Name(labels).to_text(), rrset)
        elif len(labels) == 2 and labels[0].lower() == b"group":
            rrset = node.get(T.TXT)
            if rrset is not None:
                groups[labels[1].lower()] = rrset
        # coo, ext and unknown properties: nothing authd acts on (section 4.4).
    members: list[Member] = []
    seen: dict[dns.name.Name, str] = {}
    for key in sorted(ptrs):
        label, rrset = ptrs[key]
        targets = [rd.target for rd in rrset]
        if len(targets) != 1:
            problems.append(f"catalog {zone}: member {label} has {len(targets)} PTRs: ignored")
            continue
        target: dns.name.Name = targets[0]
        if target.is_subdomain(zone):
            problems.append(
                f"catalog {zone}: member {label} is {target} inside the catalog: ignored"
            )
            continue
        if target in seen:
            problems.append(
                f"catalog {zone}: {target} listed twice ({seen[target]} and {label}): "
                f"{label} ignored"
            )
            continue
        if len(members) >= MAX_CATALOG_MEMBERS:
            problems.append(
                f"catalog {zone}: more than {MAX_CATALOG_MEMBERS} members: the rest ignored"
            )
            break
        seen[target] = label
        members.append(Member(target, label, _group(zone, label, groups.get(key), problems)))
    if len(problems) > MAX_CATALOG_PROBLEMS:
        more = len(problems) - MAX_CATALOG_PROBLEMS
        problems = [*problems[:MAX_CATALOG_PROBLEMS], f"catalog {zone}: and {more} more problems"]
    return Catalog(zone, True, tuple(members), tuple(problems))


def _group(
    zone: dns.name.Name, label: str, rrset: dns.rrset.RRset | None, problems: list[str]
) -> str | None:
    if rrset is None:
        return None
    found = _strings(rrset)
    if len(found) != 1 or len(found[0]) != 1:
        problems.append(f"catalog {zone}: member {label}: group is not one TXT string: ignored")
        return None
    raw = found[0][0]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"catalog {zone}: member {label}: group is not UTF-8: ignored")
        return None
    if not text or len(raw) > MAX_CATALOG_GROUP_BYTES:
        problems.append(f"catalog {zone}: member {label}: empty group: ignored")
        return None
    return text


# -- consuming --------------------------------------------------------------------


def interpreted(config: Config) -> list[tuple[str, ZoneConfig]]:
    """(view, zone config) of every catalog *config* interprets."""
    return [
        (vc.name, zc)
        for vc in config.views
        for zc in vc.zones
        if zc.catalog_role is CatalogRole.INTERPRET and zc.in_view is None
    ]


def catalogs_of(config: Config, snapshot: Snapshot) -> dict[tuple[str, dns.name.Name], Catalog]:
    """The interpreted catalogs *snapshot* serves a copy of, read."""
    out = {}
    for view, zc in interpreted(config):
        version = snapshot.view_zone(view, zc.name)
        if version is not None:
            out[(view, zc.name)] = read(version)
    return out


# view, catalog, zone, group, unique id
MemberKey = tuple[str, dns.name.Name, dns.name.Name, str | None, str]


def member_set(config: Config) -> frozenset[MemberKey]:
    """The zones *config* has from catalogs: what a re-expansion compares."""
    return frozenset(
        (vc.name, zc.from_catalog, zc.name, zc.catalog_group, zc.catalog_id or "")
        for vc in config.views
        for zc in vc.zones
        if zc.from_catalog is not None
    )


def member_zone(config: Config, view: str, catalog: ZoneConfig, member: Member) -> ZoneConfig:
    """The secondary zone *member* of *catalog* becomes, served as its group says."""
    template = catalog.catalog_groups.get(member.group or "") if member.group else None
    template = template or catalog.catalog_template
    assert template is not None  # the config gives every interpreted catalog one
    return ZoneConfig(
        name=member.name,
        file=state_file(config.state_dir, view, member.name, ".zone"),
        key_path=f"{catalog.key_path} (catalog {catalog.name} member {member.name})",
        type=ZoneType.SECONDARY,
        primaries=template.primaries,
        allow_transfer=template.allow_transfer,
        allow_notify=template.allow_notify,
        allow_query=template.allow_query,
        notify=template.notify,
        also_notify=template.also_notify,
        max_records=template.max_records,
        from_catalog=catalog.name,
        catalog_group=member.group,
        catalog_id=member.unique_id,
    )


def resets(old: Config, new: Config) -> list[tuple[str, ZoneConfig]]:
    """(view, zone config) of the members *new* lists under another unique id or
    catalog than *old* did: RFC 9432 section 5.3, a reset (its state is dropped
    and it is transferred anew)."""
    before = {
        (vc.name, zc.name): (zc.from_catalog, zc.catalog_id)
        for vc in old.views
        for zc in vc.zones
        if zc.from_catalog is not None
    }
    return [
        (vc.name, zc)
        for vc in new.views
        for zc in vc.zones
        if zc.from_catalog is not None
        and (vc.name, zc.name) in before
        and before[(vc.name, zc.name)] != (zc.from_catalog, zc.catalog_id)
    ]


def expand(
    config: Config,
    catalogs: Mapping[tuple[str, dns.name.Name], Catalog],
    previous: Config | None = None,
) -> Expansion:
    """*config* with the members of its interpreted *catalogs* as secondary zones.

    A catalog with no copy yet, or an invalid one, keeps the members *previous*
    had from it (RFC 9432 section 5.1: an unusable catalog is not processed).
    """
    problems: list[str] = []
    old = member_set(previous) if previous is not None else frozenset()
    views = []
    for vc in config.views:
        base = tuple(z for z in vc.zones if z.from_catalog is None)
        taken: dict[dns.name.Name, str] = {z.name: "the config" for z in base}
        added: list[ZoneConfig] = []
        for zc in base:
            if zc.catalog_role is not CatalogRole.INTERPRET or zc.in_view is not None:
                continue
            cat = catalogs.get((vc.name, zc.name))
            if cat is not None and cat.valid:
                members = list(cat.members)
                problems.extend(cat.problems)
            else:
                if cat is not None:
                    problems.extend(p + "; keeping its members as they were" for p in cat.problems)
                members = [
                    Member(name, uid, group)
                    for view, catalog, name, group, uid in sorted(old, key=lambda k: k[2])
                    if view == vc.name and catalog == zc.name
                ]
            for member in members:
                owner = taken.get(member.name)
                if owner is not None:
                    problems.append(
                        f"catalog {zc.name} member {member.name} (view {vc.name}): "
                        f"also listed by {owner}, which wins"
                    )
                    continue
                taken[member.name] = f"catalog {zc.name}"
                added.append(member_zone(config, vc.name, zc, member))
        views.append(dataclasses.replace(vc, zones=base + tuple(added)))
    return Expansion(dataclasses.replace(config, views=tuple(views)), tuple(problems))
