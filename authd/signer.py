"""Inline signing: an unsigned zone, its keys and a policy in; the signed zone out.

Owns: which RRsets get signatures (every authoritative RRset and the DS at a
delegation; never the NS of a delegation nor glue, RFC 4035 section 2.2), by
which key (DNSKEY by the KSK or CSK, the rest by the ZSK or CSK), the DNSKEY
RRset at the apex, the NSEC chain (RFC 4035 section 2.3) or the NSEC3 chain
with NSEC3PARAM (RFC 5155 section 7.1, opt-out when asked), and signature
timing: inception an hour back, expiration at now + validity less a jitter
that is a function of (owner, type), so the same input signs the same way.

Re-signing (``sign_zone(..., previous=...)``) keeps every signature of the
previous output whose RRset is unchanged, was made by the keys still
signing, and is not yet due for refresh; so an edit re-signs only the changed
RRsets and the NSEC/NSEC3 records whose content moved with them, and the IXFR
that follows is small.

Pure: the time is passed in; the cryptography is ``dns.dnssec.sign``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CDNSKEY
import dns.rdtypes.ANY.CDS
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.util
import dns.rrset

from authd import keytimeline
from authd.errors import AuthdError
from authd.keytimeline import TimedKey
from authd.limits import SIGNING_INCEPTION_SKEW
from authd.rrsig import is_sig_key
from authd.signpolicy import Denial, SigningPolicy
from authd.zonefile import Record

if TYPE_CHECKING:
    from authd.zone import ZoneVersion

RdataType = dns.rdatatype.RdataType
IN = dns.rdataclass.IN
# Types the signer makes: any of them in the unsigned input is dropped.
SIGNER_TYPES = frozenset(
    {
        RdataType.RRSIG,
        RdataType.NSEC,
        RdataType.NSEC3,
        RdataType.NSEC3PARAM,
        RdataType.DNSKEY,
        RdataType.CDS,
        RdataType.CDNSKEY,
    }
)
# Signed by the keys that sign the DNSKEY RRset (RFC 7344 section 4.1: a key
# the parent's DS points to).
KSK_SIGNED = frozenset({RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY})
NSEC3_SHA1 = 1  # RFC 5155 section 11: the only hash algorithm
NSEC3_OPT_OUT = 1  # RFC 5155 section 3.1.2.1

RRKey = tuple[dns.name.Name, RdataType]


class SigningError(AuthdError):
    """The zone cannot be signed with these keys (none active, wrong algorithm...)."""


class SigningKey(TimedKey, Protocol):
    """What the signer reads of a key (``authd.keyfiles.ZoneKey`` is one): its
    times (``authd.keytimeline``) and the key itself."""

    @property
    def dnskey(self) -> dns.rdtypes.ANY.DNSKEY.DNSKEY: ...
    @property
    def private(self) -> Any: ...
    @property
    def algorithm(self) -> int: ...


@dataclass(frozen=True, slots=True, eq=False)
class SignedZone:
    """A signed zone as RRsets: *rrsets* holds data (the signer's types too) by
    (owner, type); *sigs* the RRSIG RRset covering each of them, by the same key."""

    origin: dns.name.Name
    rrsets: dict[RRKey, dns.rrset.RRset]
    sigs: dict[RRKey, dns.rrset.RRset]
    resigned: int = 0  # RRsets signed anew by this call (the rest were kept)
    kept: int = 0
    nsec3: bool = False
    # Signatures dated this many seconds before the real clock (a lab's
    # expired-signatures scenario; 0 everywhere else).
    behind: int = 0

    def records(self, file: str = "<signed>") -> Iterator[Record]:
        """Every record, as the zone-file parser would hand them to ``compile_zone``."""
        for key, rrset in self.rrsets.items():
            for rd in rrset:
                yield Record(rrset.name, rrset.ttl, rd, file, 0)
            sig = self.sigs.get(key)
            if sig is not None:
                for rd in sig:
                    yield Record(sig.name, sig.ttl, rd, file, 0)

    def earliest_expiry(self) -> int | None:
        """The soonest RRSIG expiration (unix seconds); None when nothing is signed."""
        return earliest_expiry(self)

    def due_for_refresh(self, now: int, policy: SigningPolicy) -> bool:
        """Whether a signature expires within the policy's refresh period."""
        due = self.next_refresh(policy)
        return due is not None and due <= now

    def next_refresh(self, policy: SigningPolicy) -> int | None:
        """When the first signature falls due for refresh (unix seconds)."""
        expiry = earliest_expiry(self)
        # In real time: a zone signed behind the clock is not re-signed in a loop.
        return None if expiry is None else expiry - policy.signature_refresh + self.behind


@dataclass(frozen=True, slots=True, eq=False)
class Inline:
    """What a version signed by authd remembers: the unsigned version it was
    signed from (what an edit is compared with), the signer's output (whose
    signatures a re-signing keeps) and the policy it followed."""

    unsigned: ZoneVersion
    signed: SignedZone
    policy: SigningPolicy
    keys: tuple[tuple[int, int, str], ...]  # (tag, algorithm, role) of the keys it had
    # What the keys showed when signed (authd.rollover.key_view): a change re-signs.
    key_view: tuple[tuple[int, ...], ...] = ()
    # (tag, role, state, ds) of each key at signing, and the next key event (when, what).
    key_states: tuple[tuple[int, str, str, str], ...] = ()
    next_key_event: tuple[int, str] | None = None


def earliest_expiry(signed: SignedZone) -> int | None:
    soonest: int | None = None
    for sig in signed.sigs.values():
        for rd in sig:
            exp = int(rd.expiration)
            if soonest is None or exp < soonest:
                soonest = exp
    return soonest


def active(key: SigningKey, now: int) -> bool:
    """Signs at *now*: activated, not retired, published (``keytimeline.signing``)."""
    return keytimeline.signing(key, now)


def published(key: SigningKey, now: int) -> bool:
    """In the DNSKEY RRset at *now*."""
    return keytimeline.published(key, now)


def expiration(owner: dns.name.Name, rdtype: int, now: int, policy: SigningPolicy) -> int:
    """now + validity, less a jitter fixed by (owner, type): re-signing at the
    same time signs alike, and a big zone's signatures do not all expire at once."""
    if policy.signature_jitter <= 0:
        return now + policy.signature_validity
    seed = owner.to_digestable()
    seed += rdtype.to_bytes(2, "big")
    spread = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % policy.signature_jitter
    return now + policy.signature_validity - spread


@dataclass(slots=True)
class _Plan:
    """The unsigned zone sorted out: authoritative RRsets, delegations, glue."""

    origin: dns.name.Name
    data: dict[RRKey, dns.rrset.RRset] = field(default_factory=dict)
    cuts: set[dns.name.Name] = field(default_factory=set)
    secure_cuts: set[dns.name.Name] = field(default_factory=set)  # with a DS
    glue: set[dns.name.Name] = field(default_factory=set)  # names below a cut
    types: dict[dns.name.Name, set[RdataType]] = field(default_factory=dict)


def _plan(origin: dns.name.Name, nodes: Mapping[dns.name.Name, Mapping[RdataType, Any]]) -> _Plan:
    plan = _Plan(origin)
    for name, node in nodes.items():
        for key, rrset in node.items():
            if is_sig_key(key) or key in SIGNER_TYPES:
                continue
            plan.data[(name, RdataType.make(key))] = rrset
        if name != origin and RdataType.NS in node:
            plan.cuts.add(name)
            if RdataType.DS in node:
                plan.secure_cuts.add(name)
    for name, _ in plan.data:
        parent = name
        while len(parent) > len(origin):
            parent = parent.parent()
            if parent in plan.cuts:
                plan.glue.add(name)
                break
    for name, rdtype in plan.data:
        if name not in plan.glue:
            plan.types.setdefault(name, set()).add(rdtype)
    return plan


def _signed_by(rdtype: RdataType, at_cut: bool) -> bool:
    """Whether an authoritative RRset of *rdtype* gets an RRSIG."""
    # At a delegation only DS (and the NSEC there) is the parent's data.
    return not at_cut or rdtype in (RdataType.DS, RdataType.NSEC)


def sign_zone(
    origin: dns.name.Name,
    nodes: Mapping[dns.name.Name, Mapping[RdataType, Any]],
    keys: Sequence[SigningKey],
    policy: SigningPolicy,
    now: int,
    previous: SignedZone | None = None,
    behind: int = 0,
) -> SignedZone:
    """Sign the zone whose names are *nodes* (a compiled version's nodes, or
    any mapping name -> type -> RRset); records of the signer's own types in
    it are replaced.  With *previous*, its still-good signatures are kept.
    *behind* (lab only) dates the signatures that many seconds back; which
    keys sign still follows *now*."""
    plan = _plan(origin, nodes)
    if previous is not None and previous.behind != behind:
        previous = None  # dated on another clock: none of its signatures fit
    if (origin, RdataType.SOA) not in plan.data:
        raise SigningError(f"{origin}: no SOA at the apex")
    keys = [k for k in keys if k.algorithm == policy.algorithm]
    shown = [k for k in keys if published(k, now)]
    ksks = [k for k in keys if k.role in ("ksk", "csk") and active(k, now) and published(k, now)]
    zsks = [k for k in keys if k.role in ("zsk", "csk") and active(k, now) and published(k, now)]
    if not ksks or not zsks:
        need = " and ".join(policy.roles)
        raise SigningError(f"{origin}: no active {need} key of algorithm {policy.algorithm}")
    rrsets = {k: v for k, v in plan.data.items()}
    dnskey = dns.rrset.RRset(origin, IN, RdataType.DNSKEY)
    dnskey.ttl = policy.dnskey_ttl
    for k in sorted(shown, key=lambda k: k.tag):
        dnskey.add(k.dnskey)
    rrsets[(origin, RdataType.DNSKEY)] = dnskey
    plan.types[origin].add(RdataType.DNSKEY)
    rrsets.update(_cds(origin, keys, policy, now, plan))
    soa = plan.data[(origin, RdataType.SOA)]
    # RFC 9077: NSEC/NSEC3 TTL is the negative-answer TTL.
    negative_ttl = min(soa.ttl, int(soa[0].minimum))
    if policy.denial is Denial.NSEC:
        rrsets.update(_nsec_chain(plan, negative_ttl))
    else:
        rrsets.update(_nsec3_chain(plan, policy, negative_ttl))
    sigs: dict[RRKey, dns.rrset.RRset] = {}
    resigned = kept = 0
    signing_tags = {
        True: frozenset(k.tag for k in ksks),
        False: frozenset(k.tag for k in zsks),
    }
    sig_now = now - behind  # the signatures' clock
    inception = sig_now - SIGNING_INCEPTION_SKEW
    horizon = policy.signature_refresh
    if previous is not None and previous.due_for_refresh(now, policy):
        # A refresh re-signs what falls due within the jitter span too, so the
        # zone is re-signed in one pass, not once per signature as each falls due.
        horizon += policy.signature_jitter
    for key, rrset in rrsets.items():
        owner, rdtype = key
        if owner in plan.glue:
            continue
        if not _signed_by(rdtype, owner in plan.cuts):
            continue
        is_dnskey = rdtype in KSK_SIGNED
        signers = ksks if is_dnskey else zsks
        old = _reusable(previous, key, rrset, signing_tags[is_dnskey], sig_now, horizon)
        if old is not None:
            sigs[key] = old
            kept += 1
            continue
        sig = dns.rrset.RRset(owner, IN, RdataType.RRSIG, covers=rdtype)
        sig.ttl = rrset.ttl
        exp = expiration(owner, rdtype, sig_now, policy)
        for k in signers:
            sig.add(
                dns.dnssec.sign(
                    rrset,
                    k.private,
                    origin,
                    k.dnskey,
                    inception=inception,
                    expiration=exp,
                    origin=origin,
                )
            )
        sigs[key] = sig
        resigned += 1
    nsec3 = policy.denial is Denial.NSEC3
    return SignedZone(origin, rrsets, sigs, resigned, kept, nsec3=nsec3, behind=behind)


def _cds(
    origin: dns.name.Name,
    keys: Sequence[SigningKey],
    policy: SigningPolicy,
    now: int,
    plan: _Plan,
) -> dict[RRKey, dns.rrset.RRset]:
    """CDS (SHA-256) and CDNSKEY RRsets for the keys whose DS the parent should
    have at *now* (RFC 7344 section 4, RFC 8078; ``keytimeline.in_cds``): the
    new KSK's from the start of a rollover, the old one's until its DNSKEY has
    left every cache.  TTL as the DNSKEY RRset's."""
    t = policy.timings()
    asked = sorted((k for k in keys if keytimeline.in_cds(k, t, now)), key=lambda k: k.tag)
    if not asked:
        return {}
    cds = dns.rrset.RRset(origin, IN, RdataType.CDS)
    cdnskey = dns.rrset.RRset(origin, IN, RdataType.CDNSKEY)
    cds.ttl = cdnskey.ttl = policy.dnskey_ttl
    for k in asked:
        ds = dns.dnssec.make_ds(origin, k.dnskey, "SHA256")
        cds.add(
            dns.rdtypes.ANY.CDS.CDS(
                IN, RdataType.CDS, ds.key_tag, ds.algorithm, ds.digest_type, ds.digest
            )
        )
        d = k.dnskey
        cdnskey.add(
            dns.rdtypes.ANY.CDNSKEY.CDNSKEY(
                IN, RdataType.CDNSKEY, d.flags, d.protocol, d.algorithm, d.key
            )
        )
    plan.types[origin] |= {RdataType.CDS, RdataType.CDNSKEY}
    return {(origin, RdataType.CDS): cds, (origin, RdataType.CDNSKEY): cdnskey}


def _reusable(
    previous: SignedZone | None,
    key: RRKey,
    rrset: dns.rrset.RRset,
    tags: frozenset[int],
    now: int,
    horizon: int,
) -> dns.rrset.RRset | None:
    """The previous signature of *key* if it still holds for *rrset* and does
    not expire within *horizon* seconds."""
    if previous is None:
        return None
    old_sig = previous.sigs.get(key)
    old = previous.rrsets.get(key)
    if old_sig is None or old is None or old.ttl != rrset.ttl or old != rrset:
        return None
    if frozenset(int(rd.key_tag) for rd in old_sig) != tags:
        return None
    if min(int(rd.expiration) for rd in old_sig) - now <= horizon:
        return None
    return old_sig


def _bitmap(types: Iterable[int]) -> list[tuple[int, bytes]]:
    rdtypes = sorted({RdataType.make(t) for t in types})
    return dns.rdtypes.util.Bitmap.from_rdtypes(rdtypes).windows


def _nsec_chain(plan: _Plan, ttl: int) -> dict[RRKey, dns.rrset.RRset]:
    """RFC 4035 section 2.3: every authoritative name and delegation, in
    canonical order, points at the next; the last at the apex."""
    names = sorted(plan.types)
    out: dict[RRKey, dns.rrset.RRset] = {}
    for i, name in enumerate(names):
        nxt = names[(i + 1) % len(names)]
        types = set(plan.types[name]) | {RdataType.NSEC, RdataType.RRSIG}
        rd = dns.rdtypes.ANY.NSEC.NSEC(IN, RdataType.NSEC, nxt, _bitmap(types))
        rrset = dns.rrset.RRset(name, IN, RdataType.NSEC)
        rrset.ttl = ttl
        rrset.add(rd)
        out[(name, RdataType.NSEC)] = rrset
    return out


def _nsec3_chain(plan: _Plan, policy: SigningPolicy, ttl: int) -> dict[RRKey, dns.rrset.RRset]:
    """RFC 5155 section 7.1: one NSEC3 per authoritative name and empty
    non-terminal (except, with opt-out, insecure delegations), ordered by hash."""
    origin = plan.origin
    params = policy.nsec3
    flags = NSEC3_OPT_OUT if params.opt_out else 0
    param = dns.rrset.RRset(origin, IN, RdataType.NSEC3PARAM)
    # RFC 5155 section 4.1.2: flags 0 in NSEC3PARAM.  TTL as the NSEC3s (RFC 9077).
    param.ttl = ttl
    param.add(
        dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
            IN, RdataType.NSEC3PARAM, NSEC3_SHA1, 0, params.iterations, params.salt
        )
    )
    plan.types[origin].add(RdataType.NSEC3PARAM)
    covered: dict[dns.name.Name, set[RdataType]] = {}
    for name, types in plan.types.items():
        if params.opt_out and name in plan.cuts and name not in plan.secure_cuts:
            continue
        covered[name] = set(types)
        # Empty non-terminals between the name and the apex (RFC 5155 7.1).
        parent = name
        while len(parent) > len(origin) + 1:
            parent = parent.parent()
            covered.setdefault(parent, set())
    hashes: list[tuple[bytes, dns.name.Name]] = []
    for name in covered:
        text = dns.dnssec.nsec3_hash(name, params.salt, params.iterations, NSEC3_SHA1)
        hashes.append((_b32hex_decode(text), name))  # sorted as raw bytes
    hashes.sort()
    out: dict[RRKey, dns.rrset.RRset] = {(origin, RdataType.NSEC3PARAM): param}
    for i, (digest, name) in enumerate(hashes):
        nxt = hashes[(i + 1) % len(hashes)][0]
        types = covered[name]
        if types and not (name in plan.cuts and name not in plan.secure_cuts):
            types = types | {RdataType.RRSIG}
        rd = dns.rdtypes.ANY.NSEC3.NSEC3(
            IN,
            RdataType.NSEC3,
            NSEC3_SHA1,
            flags,
            params.iterations,
            params.salt,
            nxt,
            _bitmap(types),
        )
        owner = dns.name.Name((_b32hex_encode(digest).encode(), *origin.labels))
        rrset = dns.rrset.RRset(owner, IN, RdataType.NSEC3)
        rrset.ttl = ttl
        rrset.add(rd)
        out[(owner, RdataType.NSEC3)] = rrset
    return out


def _b32hex_decode(text: str) -> bytes:
    return base64.b32hexdecode(text.upper() + "=" * (-len(text) % 8))


def _b32hex_encode(raw: bytes) -> str:
    return base64.b32hexencode(raw).decode().rstrip("=").lower()


__all__ = [
    "SIGNER_TYPES",
    "Inline",
    "SignedZone",
    "SigningError",
    "SigningKey",
    "active",
    "earliest_expiry",
    "expiration",
    "published",
    "sign_zone",
]
