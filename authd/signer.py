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

Incremental re-signing (``resign_zone``) goes further: told which owner
names changed, it updates the previous output in place of a new walk: the
data of those names, the glue below a delegation that came or went, and the
NSEC/NSEC3 records of the names touched and of their predecessors in the
chain (with NSEC3, the empty non-terminals above them too).  Its result is
record for record the one ``sign_zone`` makes of the same content with the
same *previous*; whenever it could not be (other keys or policy, signatures
due for refresh, a new negative TTL) it is ``sign_zone``.

Pure: the time is passed in; the cryptography is ``dns.dnssec.sign``.
"""

from __future__ import annotations

import base64
import bisect
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
from authd.rrsig import is_sig_key, sig_key
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
_CUT_TYPES = frozenset({RdataType.NS, RdataType.DS})


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
    # What an incremental re-signing starts from (None: only a full one can).
    chain: _Chain | None = field(default=None, repr=False)

    def records(self, file: str = "<signed>") -> Iterator[Record]:
        """Every record, as the zone-file parser would hand them to ``compile_zone``."""
        for key, rrset in self.rrsets.items():
            for rd in rrset:
                yield Record(rrset.name, rrset.ttl, rd, file, 0)
            sig = self.sigs.get(key)
            if sig is not None:
                for rd in sig:
                    yield Record(sig.name, sig.ttl, rd, file, 0)

    def node_items(self) -> Iterator[tuple[dns.name.Name, RdataType, dns.rrset.RRset]]:
        """(owner, node key, RRset) of every RRset, signatures under ``sig_key``
        (what ``authd.zone.compile_rrsets`` builds a version from)."""
        sigs = self.sigs
        for key, rrset in self.rrsets.items():
            yield key[0], key[1], rrset
            sig = sigs.get(key)
            if sig is not None:
                yield key[0], sig_key(key[1]), sig

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
    if signed.chain is not None:
        return signed.chain.earliest
    return _earliest(signed.sigs)


def _earliest(sigs: Mapping[RRKey, dns.rrset.RRset]) -> int | None:
    soonest: int | None = None
    for sig in sigs.values():
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
    owners: dict[dns.name.Name, frozenset[RdataType]] = field(default_factory=dict)  # glue too
    cuts: set[dns.name.Name] = field(default_factory=set)
    secure_cuts: set[dns.name.Name] = field(default_factory=set)  # with a DS
    glue: set[dns.name.Name] = field(default_factory=set)  # names below a cut
    # Authoritative names (and delegations) -> the types their NSEC/NSEC3 lists
    # (the signer's own at the apex included).
    types: dict[dns.name.Name, frozenset[RdataType]] = field(default_factory=dict)

    def copy(self) -> _Plan:
        # The values are frozensets: a copy shares them and replaces, never mutates.
        return _Plan(
            self.origin,
            dict(self.data),
            dict(self.owners),
            set(self.cuts),
            set(self.secure_cuts),
            set(self.glue),
            dict(self.types),
        )

    def below_cut(self, name: dns.name.Name) -> bool:
        parent = name
        while len(parent) > len(self.origin):
            parent = parent.parent()
            if parent in self.cuts:
                return True
        return False

    def chain_types(self, name: dns.name.Name) -> frozenset[RdataType]:
        """The types an authoritative name's NSEC/NSEC3 lists: at a delegation
        only NS and DS, the rest there being the child's (RFC 4035 section 2.3)."""
        types = self.owners[name]
        if name in self.cuts:
            return types & _CUT_TYPES
        return types

    def insecure_cut(self, name: dns.name.Name) -> bool:
        return name in self.cuts and name not in self.secure_cuts


@dataclass(slots=True, eq=False)
class _Chain:
    """What a signing leaves for the next incremental one: the plan, the
    names in canonical order, the denial chain as ordered lists, and what the
    signatures were made under.  Never mutated once its SignedZone exists."""

    plan: _Plan
    names: list[dns.name.Name]  # every owner of data (glue too), canonical order
    policy: SigningPolicy
    tags: tuple[frozenset[int], frozenset[int]]  # (DNSKEY signers, the rest's)
    ttl: int  # of NSEC/NSEC3 (RFC 9077)
    earliest: int | None  # the soonest RRSIG expiration
    order: list[dns.name.Name] = field(default_factory=list)  # NSEC owners, canonical order
    # NSEC3: the names that make NSEC3s and empty non-terminals above them (all
    # but opt-out's insecure delegations), canonical order; the names with an
    # NSEC3 -> their hash; the hashes in order.
    makers: list[dns.name.Name] = field(default_factory=list)
    digests: dict[dns.name.Name, bytes] = field(default_factory=dict)
    hashes: list[tuple[bytes, dns.name.Name]] = field(default_factory=list)


def _ckey(name: dns.name.Name) -> tuple[bytes, ...]:
    """Sorts as RFC 4034 section 6.1's canonical order (cheaper than Name.__lt__)."""
    return tuple(label.lower() for label in reversed(name.labels))


def _find(names: list[dns.name.Name], name: dns.name.Name) -> tuple[int, bool]:
    key = _ckey(name)
    i = bisect.bisect_left(names, key, key=_ckey)
    return i, i < len(names) and _ckey(names[i]) == key


def _signable_types(node: Mapping[RdataType, Any]) -> frozenset[RdataType]:
    return frozenset(RdataType.make(k) for k in node if not is_sig_key(k) and k not in SIGNER_TYPES)


def _plan(origin: dns.name.Name, nodes: Mapping[dns.name.Name, Mapping[RdataType, Any]]) -> _Plan:
    plan = _Plan(origin)
    for name, node in nodes.items():
        types = _signable_types(node)
        if not types:
            continue
        plan.owners[name] = types
        for t in types:
            plan.data[(name, t)] = node[t]
        if name != origin and RdataType.NS in types:
            plan.cuts.add(name)
            if RdataType.DS in types:
                plan.secure_cuts.add(name)
    for name in plan.owners:
        if plan.below_cut(name):
            plan.glue.add(name)
        else:
            plan.types[name] = plan.chain_types(name)
    return plan


def _signed_by(rdtype: RdataType, at_cut: bool) -> bool:
    """Whether an authoritative RRset of *rdtype* gets an RRSIG."""
    # At a delegation only DS (and the NSEC there) is the parent's data.
    return not at_cut or rdtype in (RdataType.DS, RdataType.NSEC)


def _of_policy(keys: Sequence[SigningKey], policy: SigningPolicy) -> list[SigningKey]:
    return [k for k in keys if k.algorithm == policy.algorithm]


def _signers(
    origin: dns.name.Name, keys: Sequence[SigningKey], policy: SigningPolicy, now: int
) -> tuple[list[SigningKey], list[SigningKey], list[SigningKey]]:
    """(published, KSK-side, ZSK-side) keys of the policy's algorithm at *now*."""
    keys = _of_policy(keys, policy)
    shown = [k for k in keys if published(k, now)]
    ksks = [k for k in keys if k.role in ("ksk", "csk") and active(k, now) and published(k, now)]
    zsks = [k for k in keys if k.role in ("zsk", "csk") and active(k, now) and published(k, now)]
    if not ksks or not zsks:
        need = " and ".join(policy.roles)
        raise SigningError(f"{origin}: no active {need} key of algorithm {policy.algorithm}")
    return shown, ksks, zsks


def _dnskey_rrset(
    origin: dns.name.Name, shown: Sequence[SigningKey], policy: SigningPolicy
) -> dns.rrset.RRset:
    dnskey = dns.rrset.RRset(origin, IN, RdataType.DNSKEY)
    dnskey.ttl = policy.dnskey_ttl
    for k in sorted(shown, key=lambda k: k.tag):
        dnskey.add(k.dnskey)
    return dnskey


def _apex_types(plan: _Plan, policy: SigningPolicy) -> frozenset[RdataType]:
    extra = {RdataType.DNSKEY}
    if policy.denial is Denial.NSEC3:
        extra.add(RdataType.NSEC3PARAM)
    return plan.owners[plan.origin] | extra


def _negative_ttl(plan: _Plan) -> int:
    soa = plan.data[(plan.origin, RdataType.SOA)]
    # RFC 9077: NSEC/NSEC3 TTL is the negative-answer TTL.
    return min(soa.ttl, int(soa[0].minimum))


class _Sign:
    """Makes (or keeps) the RRSIG RRset of one RRset."""

    def __init__(
        self,
        origin: dns.name.Name,
        ksks: Sequence[SigningKey],
        zsks: Sequence[SigningKey],
        policy: SigningPolicy,
        now: int,
        previous: SignedZone | None,
        horizon: int,
        behind: int = 0,
    ) -> None:
        self.origin, self.ksks, self.zsks = origin, ksks, zsks
        # The signatures' clock: *behind* seconds back (lab only; 0 elsewhere).
        self.policy, self.now, self.previous, self.horizon = policy, now - behind, previous, horizon
        self.tags = (frozenset(k.tag for k in ksks), frozenset(k.tag for k in zsks))
        self.resigned = 0

    def __call__(self, key: RRKey, rrset: dns.rrset.RRset) -> dns.rrset.RRset:
        owner, rdtype = key
        is_dnskey = rdtype in KSK_SIGNED
        tags = self.tags[0] if is_dnskey else self.tags[1]
        old = _reusable(self.previous, key, rrset, tags, self.now, self.horizon)
        if old is not None:
            return old
        sig = dns.rrset.RRset(owner, IN, RdataType.RRSIG, covers=rdtype)
        sig.ttl = rrset.ttl
        exp = expiration(owner, rdtype, self.now, self.policy)
        inception = self.now - SIGNING_INCEPTION_SKEW
        for k in self.ksks if is_dnskey else self.zsks:
            sig.add(
                dns.dnssec.sign(
                    rrset,
                    k.private,
                    self.origin,
                    k.dnskey,
                    inception=inception,
                    expiration=exp,
                    origin=self.origin,
                )
            )
        self.resigned += 1
        return sig


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
    shown, ksks, zsks = _signers(origin, keys, policy, now)
    rrsets = dict(plan.data)
    rrsets[(origin, RdataType.DNSKEY)] = _dnskey_rrset(origin, shown, policy)
    plan.types[origin] = _apex_types(plan, policy)
    rrsets.update(_cds(origin, _of_policy(keys, policy), policy, now, plan))
    negative_ttl = _negative_ttl(plan)
    names = sorted(plan.owners, key=_ckey)
    chain = _Chain(plan, names, policy, (frozenset(), frozenset()), negative_ttl, None)
    if policy.denial is Denial.NSEC:
        rrsets.update(_nsec_chain(plan, chain, negative_ttl))
    else:
        rrsets.update(_nsec3_chain(plan, chain, policy, negative_ttl))
    horizon = policy.signature_refresh
    if previous is not None and previous.due_for_refresh(now, policy):
        # A refresh re-signs what falls due within the jitter span too, so the
        # zone is re-signed in one pass, not once per signature as each falls due.
        horizon += policy.signature_jitter
    sign = _Sign(origin, ksks, zsks, policy, now, previous, horizon, behind)
    sigs: dict[RRKey, dns.rrset.RRset] = {}
    glue, cuts = plan.glue, plan.cuts
    for key, rrset in rrsets.items():
        owner, rdtype = key
        if owner in glue or not _signed_by(rdtype, owner in cuts):
            continue
        sigs[key] = sign(key, rrset)
    chain.tags = sign.tags
    chain.earliest = _earliest(sigs)
    return SignedZone(
        origin,
        rrsets,
        sigs,
        sign.resigned,
        len(sigs) - sign.resigned,
        nsec3=policy.denial is Denial.NSEC3,
        behind=behind,
        chain=chain,
    )


def resign_zone(
    previous: SignedZone,
    nodes: Mapping[dns.name.Name, Mapping[RdataType, Any]],
    changed: Iterable[dns.name.Name],
    keys: Sequence[SigningKey],
    policy: SigningPolicy,
    now: int,
    behind: int = 0,
) -> SignedZone:
    """``sign_zone(origin, nodes, keys, policy, now, previous, behind)``, given that
    *nodes* differs from what *previous* was signed from only at the owner
    names *changed* (the apex is always taken as changed: its SOA is)."""
    origin = previous.origin
    chain = previous.chain
    if (
        chain is None
        or chain.policy != policy
        or previous.due_for_refresh(now, policy)
        or origin not in nodes
        or RdataType.SOA not in nodes[origin]
        or previous.behind != behind
    ):
        return sign_zone(origin, nodes, keys, policy, now, previous, behind)
    shown, ksks, zsks = _signers(origin, keys, policy, now)
    sign = _Sign(origin, ksks, zsks, policy, now, previous, policy.signature_refresh, behind)
    if sign.tags != chain.tags:
        return sign_zone(origin, nodes, keys, policy, now, previous, behind)
    plan = chain.plan.copy()
    names = list(chain.names)
    touched: set[RRKey] = set()  # keys whose RRset, or whether it is signed, may differ
    flipped: list[dns.name.Name] = []  # delegations that came or went
    region = {origin, *changed}
    for name in region:
        node = nodes.get(name)
        new = _signable_types(node) if node is not None else frozenset()
        old = plan.owners.get(name, frozenset())
        for t in old - new:
            del plan.data[(name, t)]
        for t in new:
            assert node is not None
            plan.data[(name, t)] = node[t]
        touched.update((name, t) for t in old | new)
        i, present = _find(names, name)
        if new:
            plan.owners[name] = new
            if not present:
                names.insert(i, name)
        else:
            plan.owners.pop(name, None)
            if present:
                del names[i]
        cut = name != origin and RdataType.NS in new
        if cut != (name in plan.cuts):
            flipped.append(name)
            (plan.cuts.add if cut else plan.cuts.discard)(name)
        (plan.secure_cuts.add if cut and RdataType.DS in new else plan.secure_cuts.discard)(name)
    if _negative_ttl(plan) != chain.ttl:
        return sign_zone(origin, nodes, keys, policy, now, previous, behind)
    for cut in flipped:
        # Its descendants follow it in canonical order: their glue status flips.
        i, present = _find(names, cut)
        i += present
        while i < len(names) and names[i].is_subdomain(cut):
            region.add(names[i])
            touched.update((names[i], t) for t in plan.owners[names[i]])
            i += 1
    for name in region:
        if name in plan.owners and plan.below_cut(name):
            plan.glue.add(name)
            plan.types.pop(name, None)
        else:
            plan.glue.discard(name)
            if name in plan.owners:
                plan.types[name] = plan.chain_types(name)
            else:
                plan.types.pop(name, None)
    plan.types[origin] = _apex_types(plan, policy)
    rrsets = dict(previous.rrsets)
    # CDS and CDNSKEY follow the keys' times (a rollover), not the edit: made again.
    cds = _cds(origin, _of_policy(keys, policy), policy, now, plan)
    for key in touched:
        rrset = plan.data.get(key)
        if rrset is None:
            rrsets.pop(key, None)
        else:
            rrsets[key] = rrset
    for rdtype in (RdataType.CDS, RdataType.CDNSKEY):
        key = (origin, rdtype)
        touched.add(key)
        if key in cds:
            rrsets[key] = cds[key]
        else:
            rrsets.pop(key, None)
    dnskey_key = (origin, RdataType.DNSKEY)
    rrsets[dnskey_key] = _dnskey_rrset(origin, shown, policy)
    touched.add(dnskey_key)
    new_chain = _Chain(plan, names, policy, sign.tags, chain.ttl, None)
    if policy.denial is Denial.NSEC:
        denial = _nsec_update(plan, chain, new_chain, region)
    else:
        denial = _nsec3_update(plan, chain, new_chain, policy, region)
    for key, rrset in denial.items():
        if rrset is None:
            rrsets.pop(key, None)
        else:
            was = previous.rrsets.get(key)
            # The same record as before: the same object (a later diff skips it).
            rrsets[key] = was if was is not None and _same(was, rrset) else rrset
        touched.add(key)
    sigs = dict(previous.sigs)
    dropped: list[dns.rrset.RRset] = []
    made: list[dns.rrset.RRset] = []
    for key in touched:
        owner, rdtype = key
        rrset = rrsets.get(key)
        old_sig = sigs.get(key)
        if rrset is None or owner in plan.glue or not _signed_by(rdtype, owner in plan.cuts):
            if old_sig is not None:
                dropped.append(sigs.pop(key))
            continue
        sig = sign(key, rrset)
        if sig is not old_sig:
            if old_sig is not None:
                dropped.append(old_sig)
            made.append(sig)
            sigs[key] = sig
    earliest = chain.earliest
    if any(int(rd.expiration) == earliest for sig in dropped for rd in sig):
        earliest = _earliest(sigs)  # the soonest went: look again
    else:
        soonest = [int(rd.expiration) for sig in made for rd in sig]
        if earliest is not None:
            soonest.append(earliest)
        earliest = min(soonest, default=None)
    new_chain.earliest = earliest
    return SignedZone(
        origin,
        rrsets,
        sigs,
        sign.resigned,
        len(sigs) - sign.resigned,
        nsec3=policy.denial is Denial.NSEC3,
        behind=behind,
        chain=new_chain,
    )


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
    if old_sig is None or old is None or old.ttl != rrset.ttl:
        return None
    if old is not rrset and old != rrset:
        return None
    if frozenset(int(rd.key_tag) for rd in old_sig) != tags:
        return None
    if min(int(rd.expiration) for rd in old_sig) - now <= horizon:
        return None
    return old_sig


def _bitmap(types: Iterable[int]) -> list[tuple[int, bytes]]:
    rdtypes = sorted({RdataType.make(t) for t in types})
    return dns.rdtypes.util.Bitmap.from_rdtypes(rdtypes).windows


def _nsec_rrset(
    name: dns.name.Name, nxt: dns.name.Name, types: Iterable[RdataType], ttl: int
) -> dns.rrset.RRset:
    bitmap = _bitmap({*types, RdataType.NSEC, RdataType.RRSIG})
    rrset = dns.rrset.RRset(name, IN, RdataType.NSEC)
    rrset.ttl = ttl
    rrset.add(dns.rdtypes.ANY.NSEC.NSEC(IN, RdataType.NSEC, nxt, bitmap))
    return rrset


def _nsec_chain(plan: _Plan, chain: _Chain, ttl: int) -> dict[RRKey, dns.rrset.RRset]:
    """RFC 4035 section 2.3: every authoritative name and delegation, in
    canonical order, points at the next; the last at the apex."""
    names = chain.order = sorted(plan.types, key=_ckey)
    out: dict[RRKey, dns.rrset.RRset] = {}
    for i, name in enumerate(names):
        nxt = names[(i + 1) % len(names)]
        out[(name, RdataType.NSEC)] = _nsec_rrset(name, nxt, plan.types[name], ttl)
    return out


def _same(a: dns.rrset.RRset | None, b: dns.rrset.RRset) -> bool:
    return a is not None and a.ttl == b.ttl and a == b


def _nsec_update(
    plan: _Plan, old: _Chain, chain: _Chain, region: set[dns.name.Name]
) -> dict[RRKey, dns.rrset.RRset | None]:
    """The NSEC records that change when the names of *region* changed: theirs
    and their predecessors' (None: removed)."""
    order = chain.order = list(old.order)
    out: dict[RRKey, dns.rrset.RRset | None] = {}
    for name in region:
        i, present = _find(order, name)
        if name in plan.types and not present:
            order.insert(i, name)
        elif name not in plan.types and present:
            del order[i]
            out[(name, RdataType.NSEC)] = None
    redo: set[int] = set()
    for name in region:
        i, present = _find(order, name)
        if present:
            redo.add(i)
        redo.add((i - 1) % len(order))
    for i in redo:
        name = order[i]
        rrset = _nsec_rrset(name, order[(i + 1) % len(order)], plan.types[name], old.ttl)
        key = (name, RdataType.NSEC)
        out[key] = rrset
    return out


def _nsec3_makes(plan: _Plan, policy: SigningPolicy, name: dns.name.Name) -> bool:
    """Whether *name* has an NSEC3 of its own and makes the empty non-terminals above it."""
    return name in plan.types and not (policy.nsec3.opt_out and plan.insecure_cut(name))


def _nsec3_types(plan: _Plan, name: dns.name.Name, maker: bool) -> frozenset[RdataType]:
    if not maker:
        return frozenset()  # an empty non-terminal (RFC 5155 section 7.1)
    types = plan.types[name]
    if not plan.insecure_cut(name):
        types = types | {RdataType.RRSIG}
    return types


def _nsec3_rrset(
    origin: dns.name.Name,
    policy: SigningPolicy,
    digest: bytes,
    nxt: bytes,
    types: Iterable[RdataType],
    ttl: int,
) -> dns.rrset.RRset:
    params = policy.nsec3
    rd = dns.rdtypes.ANY.NSEC3.NSEC3(
        IN,
        RdataType.NSEC3,
        NSEC3_SHA1,
        NSEC3_OPT_OUT if params.opt_out else 0,
        params.iterations,
        params.salt,
        nxt,
        _bitmap(types),
    )
    rrset = dns.rrset.RRset(_nsec3_owner(origin, digest), IN, RdataType.NSEC3)
    rrset.ttl = ttl
    rrset.add(rd)
    return rrset


def _nsec3_owner(origin: dns.name.Name, digest: bytes) -> dns.name.Name:
    return dns.name.Name((_b32hex_encode(digest).encode(), *origin.labels))


def _nsec3_digest(name: dns.name.Name, policy: SigningPolicy) -> bytes:
    params = policy.nsec3
    text = dns.dnssec.nsec3_hash(name, params.salt, params.iterations, NSEC3_SHA1)
    return _b32hex_decode(text)  # sorted as raw bytes


def _nsec3_chain(
    plan: _Plan, chain: _Chain, policy: SigningPolicy, ttl: int
) -> dict[RRKey, dns.rrset.RRset]:
    """RFC 5155 section 7.1: one NSEC3 per authoritative name and empty
    non-terminal (except, with opt-out, insecure delegations), ordered by hash."""
    origin = plan.origin
    params = policy.nsec3
    param = dns.rrset.RRset(origin, IN, RdataType.NSEC3PARAM)
    # RFC 5155 section 4.1.2: flags 0 in NSEC3PARAM.  TTL as the NSEC3s (RFC 9077).
    param.ttl = ttl
    param.add(
        dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
            IN, RdataType.NSEC3PARAM, NSEC3_SHA1, 0, params.iterations, params.salt
        )
    )
    covered: dict[dns.name.Name, frozenset[RdataType]] = {}
    makers = []
    for name in plan.types:
        if not _nsec3_makes(plan, policy, name):
            continue
        makers.append(name)
        covered[name] = _nsec3_types(plan, name, True)
        # Empty non-terminals between the name and the apex (RFC 5155 7.1).
        parent = name
        while len(parent) > len(origin) + 1:
            parent = parent.parent()
            covered.setdefault(parent, frozenset())
    chain.makers = sorted(makers, key=_ckey)
    chain.digests = {name: _nsec3_digest(name, policy) for name in covered}
    hashes = chain.hashes = sorted((d, n) for n, d in chain.digests.items())
    out: dict[RRKey, dns.rrset.RRset] = {(origin, RdataType.NSEC3PARAM): param}
    for i, (digest, name) in enumerate(hashes):
        nxt = hashes[(i + 1) % len(hashes)][0]
        rrset = _nsec3_rrset(origin, policy, digest, nxt, covered[name], ttl)
        out[(rrset.name, RdataType.NSEC3)] = rrset
    return out


def _nsec3_update(
    plan: _Plan,
    old: _Chain,
    chain: _Chain,
    policy: SigningPolicy,
    region: set[dns.name.Name],
) -> dict[RRKey, dns.rrset.RRset | None]:
    """The NSEC3 records that change when the names of *region* changed: those
    of the names and of the empty non-terminals above them, and of their
    predecessors by hash (None: removed)."""
    origin = plan.origin
    makers = chain.makers = list(old.makers)
    digests = chain.digests = dict(old.digests)
    hashes = chain.hashes = list(old.hashes)
    for name in region:
        i, present = _find(makers, name)
        makes = _nsec3_makes(plan, policy, name)
        if makes and not present:
            makers.insert(i, name)
        elif present and not makes:
            del makers[i]
    candidates = set(region)
    for name in region:
        parent = name
        while len(parent) > len(origin) + 1:
            parent = parent.parent()
            candidates.add(parent)
    out: dict[RRKey, dns.rrset.RRset | None] = {}
    kinds: dict[dns.name.Name, bool] = {}  # covered name -> it is a maker (else an ENT)
    for name in candidates:
        i, maker = _find(makers, name)
        # A maker below *name* follows it in canonical order.
        i += maker
        ent = not maker and i < len(makers) and makers[i].is_subdomain(name)
        was = digests.get(name)
        if maker or ent:
            kinds[name] = maker
            if was is None:
                digest = digests[name] = _nsec3_digest(name, policy)
                bisect.insort(hashes, (digest, name), key=lambda h: h[0])
        elif was is not None:
            del digests[name]
            j = bisect.bisect_left(hashes, was, key=lambda h: h[0])
            del hashes[j]
            out[(_nsec3_owner(origin, was), RdataType.NSEC3)] = None
    redo: set[int] = set()
    for name in candidates:
        known = digests.get(name) or old.digests.get(name)
        if known is None:
            continue
        digest = known
        j = bisect.bisect_left(hashes, digest, key=lambda h: h[0])
        if name in kinds:
            redo.add(j)
        redo.add((j - 1) % len(hashes))
    for j in redo:
        digest, name = hashes[j]
        if name in kinds:
            maker = kinds[name]
        else:
            # A predecessor outside the region: its types are as they were.
            maker = _find(makers, name)[1]
        types = _nsec3_types(plan, name, maker)
        nxt = hashes[(j + 1) % len(hashes)][0]
        rrset = _nsec3_rrset(origin, policy, digest, nxt, types, old.ttl)
        out[(rrset.name, RdataType.NSEC3)] = rrset
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
    "resign_zone",
    "sign_zone",
]
