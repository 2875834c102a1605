"""A parent zone served here follows its signed children's keys: the DS RRset
at each child's delegation is the one the child's CDS asks for.

Owns: finding a signed zone's parent among the zones of the same view (a
primary, not shared from another view: its version is built here), the DS
RRset a child's keys ask for at an instant (RFC 7344 section 4: the CDS
set, as SHA-256 DS, RFC 8078 section 3 for what a parent does with it), and
putting those DS RRsets into the parent's unsigned version before it is
compared, signed and served.

Invariants: only a delegation the parent's file has (an NS RRset at the
child's name) gets a DS; a parent that is signed but not by authd (a
pre-signed file with a DNSKEY at its apex) is left alone, since a changed DS
would break its signatures.  Pure: times and keys are passed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authd import keytimeline
from authd.config import CatalogRole, ViewConfig, ZoneConfig, ZoneType
from authd.rrsig import is_sig_key
from authd.signer import SigningError, SigningKey
from authd.zone import ZoneVersion, compile_zone
from authd.zonefile import Record

RdataType = dns.rdatatype.RdataType
Overrides = Mapping[dns.name.Name, dns.rrset.RRset]


def _builds_here(zc: ZoneConfig) -> bool:
    return (
        zc.type is ZoneType.PRIMARY
        and zc.in_view is None
        and zc.catalog_role is not CatalogRole.GENERATE
    )


def parent_of(vc: ViewConfig, child: dns.name.Name) -> ZoneConfig | None:
    """The closest enclosing zone of *child* that *vc* builds itself (a primary)."""
    best: ZoneConfig | None = None
    for zc in vc.zones:
        if zc.name != child and child.is_subdomain(zc.name) and _builds_here(zc):
            if best is None or len(zc.name) > len(best.name):
                best = zc
    return best


def followed(vc: ViewConfig) -> dict[dns.name.Name, dns.name.Name]:
    """Child -> parent, for each zone *vc* signs whose parent *vc* builds."""
    out = {}
    for zc in vc.zones:
        if zc.dnssec is None or not _builds_here(zc):
            continue
        parent = parent_of(vc, zc.name)
        if parent is not None:
            out[zc.name] = parent.name
    return out


def child_ds(
    child: dns.name.Name, keys: Sequence[SigningKey], zc: ZoneConfig, now: int
) -> dns.rrset.RRset | None:
    """The DS RRset *child*'s CDS asks for at *now* (None: no KSK/CSK yet)."""
    policy = zc.dnssec
    assert policy is not None
    t = policy.timings()
    asked = [k for k in keys if keytimeline.in_cds(k, t, now)]
    if not asked:
        return None
    ds = dns.rrset.RRset(child, dns.rdataclass.IN, RdataType.DS)
    ds.ttl = policy.parent_ds_ttl
    for k in sorted(asked, key=lambda k: k.tag):
        ds.add(dns.dnssec.make_ds(child, k.dnskey, "SHA256"))
    return ds


def overrides(
    vc: ViewConfig,
    keys: Mapping[dns.name.Name, Sequence[SigningKey]],
    now: int,
    served: Mapping[dns.name.Name, ZoneVersion | None] | None = None,
) -> dict[dns.name.Name, dict[dns.name.Name, dns.rrset.RRset]]:
    """Parent -> (child -> DS RRset) for the parents *vc* builds.  A child
    whose keys could not be read keeps the DS its parent serves (*served*):
    its old signed version keeps serving, so must the DS that secures it."""
    by_name = {zc.name: zc for zc in vc.zones}
    out: dict[dns.name.Name, dict[dns.name.Name, dns.rrset.RRset]] = {}
    for child, parent in followed(vc).items():
        if child in keys:
            ds = child_ds(child, keys[child], by_name[child], now)
        else:
            version = (served or {}).get(parent)
            ds = None if version is None else version.nodes.get(child, {}).get(RdataType.DS)
        if ds is not None:
            out.setdefault(parent, {})[child] = ds
    return out


def applicable(version: ZoneVersion, ds: Overrides) -> dict[dns.name.Name, dns.rrset.RRset]:
    """The part of *ds* that *version* can take: at its delegations, and not
    at all when the version is signed by someone else."""
    apex = version.nodes.get(version.origin, {})
    if RdataType.DNSKEY in apex:
        return {}
    return {child: rrset for child, rrset in ds.items() if child in version.cuts}


def differs(version: ZoneVersion | None, ds: Overrides) -> bool:
    """Whether *version* serves another DS RRset than *ds* at one of its children."""
    if version is None:
        return bool(ds)
    for child, rrset in ds.items():
        have = version.nodes.get(child, {}).get(RdataType.DS)
        if have is None or have.ttl != rrset.ttl or set(have) != set(rrset):
            return True
    return False


def with_ds(
    version: ZoneVersion, ds: Overrides, waive: frozenset[str] = frozenset()
) -> ZoneVersion:
    """*version* with the DS RRsets of *ds* in place of its own at those names."""
    take = applicable(version, ds)
    if not take:
        return version
    records: list[Record] = []
    for name, node in version.nodes.items():
        for key, rrset in node.items():
            if name in take and not is_sig_key(key) and key == RdataType.DS:
                continue
            records.extend(Record(name, rrset.ttl, rd, version.file, 0) for rd in rrset)
    for rrset in take.values():
        records.extend(Record(rrset.name, rrset.ttl, rd, version.file, 0) for rd in rrset)
    result = compile_zone(version.origin, records, version.file, waive)
    if result.version is None:
        raise SigningError(f"{version.origin}: the children's DS: {result.errors[0]}")
    return dataclasses.replace(result.version, files=version.files)


def seen_at_parent(
    waiting: Sequence[int], cds: dns.rrset.RRset | None, answers: Sequence[dns.rrset.RRset | None]
) -> list[int]:
    """The tags of *waiting* KSKs whose CDS record every parental agent's DS
    RRset (*answers*, None: no DS there) carries, by tag, algorithm, digest
    type and digest: the DS is seen when all the parent's servers have it."""
    if cds is None or not answers:
        return []
    out = []
    for tag in waiting:
        mine = {(r.key_tag, r.algorithm, r.digest_type, r.digest) for r in cds if r.key_tag == tag}
        if not mine:
            continue
        if all(
            answer is not None
            and mine & {(r.key_tag, r.algorithm, r.digest_type, r.digest) for r in answer}
            for answer in answers
        ):
            out.append(tag)
    return out


__all__ = [
    "applicable",
    "child_ds",
    "differs",
    "followed",
    "overrides",
    "parent_of",
    "seen_at_parent",
    "with_ds",
]
