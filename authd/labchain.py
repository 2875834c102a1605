"""The lab's chain of trust, followed link by link and explained as a teacher would.

Owns the DNSSEC judgement of ``authd lab trace --dnssec`` and of the "is the
DNSSEC chain whole" part of ``authd lab check``: from the trust anchor (the
root's DS), each zone's DNSKEY set must hold a key that a DS in the parent
matches and that signs the set (RFC 4035 section 5.2); each DS set must be
signed by the parent's keys; a delegation with no DS must come with a signed
NSEC proving there is none (the chain ends: insecure); and the answer, or its
NSEC denial (RFC 4035 section 5.4), must be signed by the zone's keys.  The
verdict is secure, insecure (where the chain stops being signed) or bogus and
why (a DS matching no key, an expired or not yet valid signature, a bad one,
a missing RRSIG).

Invariant: pure.  The cryptography is ``dns.dnssec`` (``validate_rrsig``,
``make_ds``, ``key_id``); the network is the caller's ``ask`` (one query with
the DO bit, as ``authd.labtrace.Ask``); the time is passed in.  Every step
looks at no more than LAB_CHAIN_MAX_KEYS keys, DS records or signatures.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.RRSIG
import dns.rrset

from authd.labtrace import Ask, Segment, Trace
from authd.limits import LAB_CHAIN_MAX_KEYS

Name = dns.name.Name
RdataType = dns.rdatatype.RdataType


class State(enum.Enum):
    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"


class Problem(enum.Enum):
    """Why a chain is bogus."""

    DS_MATCHES_NO_KEY = "the DS matches no DNSKEY of the zone"
    EXPIRED = "a signature has expired"
    NOT_YET_VALID = "a signature is not yet valid"
    BAD_SIGNATURE = "a signature does not verify"
    UNKNOWN_KEY = "signed by a key that is not in the DNSKEY set"
    MISSING_RRSIG = "a record set has no RRSIG"
    NO_DNSKEY = "the zone's servers give no DNSKEY set"
    NO_DS_PROOF = "no DS and no signed proof that there is none"
    NO_DENIAL_PROOF = "no signed NSEC proof of the negative answer"


_ORDER = {State.SECURE: 0, State.INSECURE: 1, State.BOGUS: 2}


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    zone: Name  # where the chain ended (insecure) or broke (bogus); the answer's zone if secure
    problem: Problem | None = None
    why: str = ""

    def worse(self, other: Verdict) -> Verdict:
        return other if _ORDER[other.state] > _ORDER[self.state] else self


def _when(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _zone_text(zone: Name) -> str:
    return "the root zone" if zone == dns.name.root else f"zone {zone}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _type(rdtype: int) -> str:
    return dns.rdatatype.to_text(RdataType.make(rdtype))


def rrset_of(
    sections: list[dns.rrset.RRset], name: Name, rdtype: RdataType
) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
    """The RRset of *name* *rdtype* in *sections* and the RRSIGs covering it."""
    data = next((r for r in sections if r.name == name and r.rdtype == rdtype), None)
    sigs = next(
        (
            r
            for r in sections
            if r.name == name and r.rdtype == RdataType.RRSIG and r.covers == rdtype
        ),
        None,
    )
    return data, sigs


def check_signature(
    rrset: dns.rrset.RRset,
    sigs: dns.rrset.RRset | None,
    keys: dns.rrset.RRset,
    now: float,
) -> tuple[Problem | None, str]:
    """Whether one RRSIG in *sigs* by a key of *keys* verifies *rrset* at *now*;
    (None, how) when one does, else the first problem met and its words."""
    what = f"{rrset.name} {_type(rrset.rdtype)}"
    if sigs is None or len(sigs) == 0:
        return Problem.MISSING_RRSIG, f"{what} comes with no RRSIG"
    failures: list[tuple[Problem, str]] = []
    for sig in list(sigs)[:LAB_CHAIN_MAX_KEYS]:
        assert isinstance(sig, dns.rdtypes.ANY.RRSIG.RRSIG)
        tag = sig.key_tag
        mine = [
            k
            for k in list(keys)[:LAB_CHAIN_MAX_KEYS]
            if dns.dnssec.key_id(k) == tag and k.algorithm == sig.algorithm
        ]
        if sig.signer != keys.name or not mine:
            failures.append(
                (
                    Problem.UNKNOWN_KEY,
                    f"the RRSIG over {what} was made by key {tag} of {sig.signer}, "
                    f"which is not in the DNSKEY set of {keys.name}",
                )
            )
            continue
        if now > sig.expiration:
            failures.append(
                (
                    Problem.EXPIRED,
                    f"the RRSIG over {what} by key {tag} expired on {_when(sig.expiration)} "
                    f"(valid from {_when(sig.inception)}): the signature is too old",
                )
            )
            continue
        if now < sig.inception:
            failures.append(
                (
                    Problem.NOT_YET_VALID,
                    f"the RRSIG over {what} by key {tag} is not valid before "
                    f"{_when(sig.inception)}",
                )
            )
            continue
        try:
            dns.dnssec.validate_rrsig(rrset, sig, {keys.name: keys}, None, now)
        except dns.dnssec.ValidationFailure:
            failures.append(
                (
                    Problem.BAD_SIGNATURE,
                    f"the RRSIG over {what} by key {tag} does not verify: the data or "
                    "the signature was changed after signing (bad signature)",
                )
            )
            continue
        alg = dns.dnssec.algorithm_to_text(sig.algorithm)
        return None, (
            f"the RRSIG over {what} by key {tag} ({alg}) verifies, valid until "
            f"{_when(sig.expiration)}"
        )
    return failures[0]


def match_ds(
    zone: Name, ds: dns.rrset.RRset, keys: dns.rrset.RRset
) -> list[tuple[dns.rdtypes.ANY.DS.DS, dns.rdtypes.ANY.DNSKEY.DNSKEY]]:
    """The (DS, DNSKEY) pairs where the DS is the digest of that key (RFC 4034 s5.1.4)."""
    out = []
    for d in list(ds)[:LAB_CHAIN_MAX_KEYS]:
        assert isinstance(d, dns.rdtypes.ANY.DS.DS)
        for k in list(keys)[:LAB_CHAIN_MAX_KEYS]:
            assert isinstance(k, dns.rdtypes.ANY.DNSKEY.DNSKEY)
            if dns.dnssec.key_id(k) != d.key_tag or k.algorithm != d.algorithm:
                continue
            try:
                made = dns.dnssec.make_ds(zone, k, d.digest_type, validating=True)
            except (dns.dnssec.UnsupportedAlgorithm, dns.exception.DNSException):
                continue
            if made.digest == d.digest:
                out.append((d, k))
    return out


def _covers(nsec: dns.rrset.RRset, name: Name) -> bool:
    """Whether the NSEC at *nsec*'s owner proves *name* absent: owner < name <
    next in canonical order (dnspython orders names canonically), the last
    NSEC of the zone wrapping round to the apex."""
    owner: Name = nsec.name
    nxt: Name = nsec[0].next
    if owner < nxt:
        return bool(owner < name < nxt)
    return bool(name > owner or name < nxt)  # the last NSEC: next is the apex


def _types(nsec: dns.rrset.RRset) -> set[RdataType]:
    rd = nsec[0]
    assert isinstance(rd, dns.rdtypes.ANY.NSEC.NSEC)
    return {
        RdataType.make(window * 256 + i * 8 + bit)
        for window, bitmap in rd.windows
        for i, byte in enumerate(bitmap)
        for bit in range(8)
        if byte & (0x80 >> bit)
    }


@dataclass(slots=True)
class Chain:
    """Follows the chain of trust; ``steps`` holds what it said, in order."""

    ask: Ask
    now: float
    anchor: dns.rrset.RRset | None  # the root's DS (the lab's root.anchor)
    steps: list[str] = field(default_factory=list)
    keys: dict[Name, dns.rrset.RRset] = field(default_factory=dict)  # validated DNSKEY sets

    def say(self, text: str) -> None:
        self.steps.append(text)

    def _dnskey(self, zone: Name, address: str) -> dns.message.Message | None:
        where = "a root server" if zone == dns.name.root else f"a server of {zone}"
        self.say(f"Ask {address}, {where}, for {zone} DNSKEY, with DO (send the signatures too).")
        return self._query(address, zone, RdataType.DNSKEY)

    def _query(self, address: str, name: Name, rdtype: RdataType) -> dns.message.Message | None:
        reply = self.ask(address, name, rdtype, False)
        if reply is not None and reply.flags & dns.flags.TC:
            self.say("  Truncated (signatures make answers big): ask again over TCP.")
            reply = self.ask(address, name, rdtype, True)
        return reply

    def zone_keys(
        self, zone: Name, address: str, ds: dns.rrset.RRset, where: str
    ) -> Verdict | None:
        """Check *zone*'s DNSKEY set (from *address*) against *ds* (from *where*):
        None when it is trusted (kept in ``keys``), else the bogus verdict."""
        reply = self._dnskey(zone, address)
        keys, sigs = rrset_of(reply.answer if reply is not None else [], zone, RdataType.DNSKEY)
        cname, _ = rrset_of(reply.answer if reply is not None else [], zone, RdataType.CNAME)
        if keys is None and cname is not None:
            why = (
                f"{address} answers {zone} DNSKEY with a CNAME to {cname[0].target}: "
                "a CNAME at the apex hides every other record there, the DNSKEY set too"
            )
            self.say(f"  {_cap(why)} -> bogus.")
            return Verdict(State.BOGUS, zone, Problem.NO_DNSKEY, why)
        if keys is None:
            why = f"{address} gives no DNSKEY set for {zone}"
            self.say(f"  {_cap(why)}: nothing to check the DS against -> bogus.")
            return Verdict(State.BOGUS, zone, Problem.NO_DNSKEY, why)
        for k in list(keys)[:LAB_CHAIN_MAX_KEYS]:
            role = "KSK/CSK (SEP)" if k.flags & 0x0001 else "ZSK"
            self.say(
                f"  DNSKEY tag {dns.dnssec.key_id(k)}, "
                f"{dns.dnssec.algorithm_to_text(k.algorithm)}, {role}"
            )
        pairs = match_ds(zone, ds, keys)
        if not pairs:
            listed = ", ".join(f"tag {d.key_tag} alg {d.algorithm}" for d in ds)
            why = (
                f"the DS in {where} ({listed}) matches no DNSKEY of {zone}: "
                "the parent points at a key the zone does not publish"
            )
            self.say(f"  {_cap(why)} -> bogus.")
            return Verdict(State.BOGUS, zone, Problem.DS_MATCHES_NO_KEY, why)
        for d, k in pairs:
            self.say(
                f"  DS tag {d.key_tag} (digest type {d.digest_type}) is the digest of "
                f"DNSKEY tag {dns.dnssec.key_id(k)}: {where} vouches for that key."
            )
        trusted = dns.rrset.RRset(zone, keys.rdclass, RdataType.DNSKEY)
        for _, k in pairs:
            trusted.add(k)
        problem, how = check_signature(keys, sigs, trusted, self.now)
        if problem is not None:
            self.say(f"  {_cap(how)} -> bogus.")
            return Verdict(State.BOGUS, zone, problem, how)
        self.say(f"  {_cap(how)}: every key of {zone} is now trusted.")
        self.keys[zone] = keys
        return None

    def root(self, address: str) -> Verdict | None:
        """Start at the trust anchor: None when the root's keys are trusted."""
        if self.anchor is None:
            why = "no trust anchor: this lab is not signed (the basic template)"
            self.say(f"Chain of trust: {why}, so nothing can be validated -> insecure.")
            return Verdict(State.INSECURE, dns.name.root, None, why)
        self.say(
            "Chain of trust: it starts at the trust anchor, the root's DS that a "
            "validating resolver is configured with (root.anchor)."
        )
        return self.zone_keys(dns.name.root, address, self.anchor, "the trust anchor")

    def link(
        self,
        parent: Name,
        child: Name,
        source: dns.message.Message | None,
        parent_address: str,
        child_address: str,
    ) -> Verdict | None:
        """The link from *parent* (keys trusted) to *child*: the DS in *source*
        (the referral, or asked for at *parent_address*), then the child's keys.
        None when the child's keys are trusted."""
        pkeys = self.keys[parent]
        self.say(f"Next link: does {_zone_text(parent)} vouch for {child}? Look for its DS there.")
        sections = [*source.authority, *source.answer] if source is not None else []
        ds, sigs = rrset_of(sections, child, RdataType.DS)
        if ds is None and not any(r.rdtype == RdataType.NSEC for r in sections):
            self.say(f"  The referral holds no DS: ask {parent_address} for {child} DS.")
            source = self._query(parent_address, child, RdataType.DS)
            sections = [*source.answer, *source.authority] if source is not None else []
            ds, sigs = rrset_of(sections, child, RdataType.DS)
        if ds is None:
            return self._no_ds(parent, child, sections, pkeys)
        for d in ds:
            self.say(f"  {child} DS {d.to_text()}")
        problem, how = check_signature(ds, sigs, pkeys, self.now)
        if problem is not None:
            self.say(f"  {_cap(how)} -> bogus.")
            return Verdict(State.BOGUS, child, problem, how)
        self.say(f"  {_cap(how)}: the DS is {_zone_text(parent)}'s word.")
        return self.zone_keys(child, child_address, ds, _zone_text(parent))

    def _no_ds(
        self, parent: Name, child: Name, sections: list[dns.rrset.RRset], pkeys: dns.rrset.RRset
    ) -> Verdict:
        for nsec in sections:
            if nsec.rdtype != RdataType.NSEC or nsec.name != child:
                continue
            types = _types(nsec)
            if RdataType.DS in types or RdataType.NS not in types:
                continue
            _, sigs = rrset_of(sections, child, RdataType.NSEC)
            problem, how = check_signature(nsec, sigs, pkeys, self.now)
            if problem is not None:
                self.say(f"  The NSEC saying {child} has no DS: {how} -> bogus.")
                return Verdict(State.BOGUS, child, problem, how)
            why = f"{parent} proves {child} has no DS (a signed NSEC: NS, no DS)"
            self.say(
                f"  No DS, and {how}: {why}. The chain of trust ends here: {child} "
                "and below are insecure (resolvers answer without validating)."
            )
            return Verdict(State.INSECURE, child, None, why)
        why = f"{parent} gives no DS for {child} and no signed proof that there is none"
        self.say(f"  {_cap(why)} -> bogus (an attacker could have stripped the DS).")
        return Verdict(State.BOGUS, child, Problem.NO_DS_PROOF, why)

    def answer(
        self, zone: Name, reply: dns.message.Message, qname: Name, rdtype: RdataType
    ) -> Verdict:
        """The final reply from *zone* (keys trusted): its answer or its denial."""
        keys = self.keys[zone]
        data = [r for r in reply.answer if r.rdtype != RdataType.RRSIG]
        if data:
            self.say(f"Last: the answer itself, signed by {zone}'s keys?")
            for rrset in data:
                _, sigs = rrset_of(reply.answer, rrset.name, rrset.rdtype)
                problem, how = check_signature(rrset, sigs, keys, self.now)
                if problem is not None:
                    self.say(f"  {_cap(how)} -> bogus.")
                    return Verdict(State.BOGUS, zone, problem, how)
                self.say(f"  {_cap(how)}.")
            return Verdict(State.SECURE, zone, None, f"every link from the anchor to {zone} holds")
        return self._denial(zone, reply, qname, rdtype, keys)

    def _denial(
        self,
        zone: Name,
        reply: dns.message.Message,
        qname: Name,
        rdtype: RdataType,
        keys: dns.rrset.RRset,
    ) -> Verdict:
        nxdomain = reply.rcode() == dns.rcode.NXDOMAIN
        kind = "does not exist (NXDOMAIN)" if nxdomain else f"has no {_type(rdtype)} (NODATA)"
        self.say(f"Last: the denial. {zone} says {qname} {kind}: where is the signed NSEC proof?")
        nsecs = [r for r in reply.authority if r.rdtype == RdataType.NSEC][:LAB_CHAIN_MAX_KEYS]
        if any(r.rdtype == RdataType.NSEC3 for r in reply.authority):
            why = "the proof is NSEC3, which this tracer does not check (the lab signs with NSEC)"
            self.say(f"  {_cap(why)} -> insecure as far as the tracer can tell.")
            return Verdict(State.INSECURE, zone, None, why)
        for nsec in nsecs:
            _, sigs = rrset_of(reply.authority, nsec.name, RdataType.NSEC)
            problem, how = check_signature(nsec, sigs, keys, self.now)
            if problem is not None:
                self.say(f"  NSEC at {nsec.name}: {how} -> bogus.")
                return Verdict(State.BOGUS, zone, problem, how)
        if not nxdomain:
            at = next((n for n in nsecs if n.name == qname), None)
            if at is not None and not ({rdtype, RdataType.CNAME} & _types(at)):
                types = " ".join(sorted(_type(t) for t in _types(at)))
                self.say(
                    f"  NSEC at {qname} lists the types that exist there ({types}): "
                    f"no {_type(rdtype)}, and it is signed. The NODATA is proved."
                )
                return Verdict(State.SECURE, zone, None, "the NODATA is proved by a signed NSEC")
        else:
            covering = next((n for n in nsecs if _covers(n, qname)), None)
            if covering is not None:
                # RFC 4035 s5.4: the closest encloser, then no wildcard below it.
                ce = _closest_encloser(qname, covering)
                wildcard = dns.name.from_text("*", ce)
                nowild = next((n for n in nsecs if _covers(n, wildcard)), None)
                self.say(
                    f"  NSEC {covering.name} -> {covering[0].next}: no name between "
                    f"the two, so {qname} does not exist; it is signed."
                )
                if nowild is not None:
                    self.say(
                        f"  NSEC {nowild.name} -> {nowild[0].next}: no wildcard {wildcard} "
                        "either. The NXDOMAIN is proved."
                    )
                    return Verdict(
                        State.SECURE, zone, None, "the NXDOMAIN is proved by signed NSECs"
                    )
        why = f"{zone} denies {qname} {_type(rdtype)} with no signed NSEC that proves it"
        self.say(f"  {_cap(why)} -> bogus.")
        return Verdict(State.BOGUS, zone, Problem.NO_DENIAL_PROOF, why)


def _closest_encloser(qname: Name, nsec: dns.rrset.RRset) -> Name:
    """The longest ancestor of *qname* that exists: the longer of what it shares
    with the covering NSEC's owner and with its next name (RFC 4035 s5.4)."""
    best = dns.name.root
    for other in (nsec.name, nsec[0].next):
        common = qname.fullcompare(other)[2]
        if common > len(best):
            best = dns.name.Name(qname.labels[-common:])
    return best


def anchor_from_text(text: str) -> dns.rrset.RRset | None:
    """The root's DS records of a ``root.anchor`` file (zone file lines); None: none."""
    rdatas = []
    ttl = 0
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        owner, ttl_text, rdclass, rdtype, rest = line.split(None, 4)
        if dns.name.from_text(owner) != dns.name.root or rdtype.upper() != "DS":
            raise ValueError(f"not a DS of the root: {line!r}")
        ttl = int(ttl_text)
        rdatas.append(rest)
    if not rdatas:
        return None
    return dns.rrset.from_text_list(dns.name.root, ttl, "IN", "DS", rdatas)


def follow(
    trace: Trace, ask: Ask, anchor: dns.rrset.RRset | None, now: float
) -> tuple[list[str], Verdict | None]:
    """Follow the chain of trust along *trace*'s walk (asked with DO); its
    steps, and the verdict (the worst over a CNAME's names; None: no answer
    came back to validate)."""
    chain = Chain(ask, now, anchor)
    verdict: Verdict | None = None
    secure: list[Name] = []
    for segment in trace.segments:
        if len(trace.segments) > 1:
            chain.say(f"The chain of trust for {segment.qname}:")
        got = _segment(chain, segment)
        if got is None:
            continue
        if got.state is State.SECURE and got.zone not in secure:
            secure.append(got.zone)
        verdict = got if verdict is None else verdict.worse(got)
    if verdict is not None and verdict.state is State.SECURE and len(secure) > 1:
        zones = " and ".join(z.to_text() for z in secure)
        verdict = Verdict(State.SECURE, verdict.zone, None, f"every link to {zones} holds")
    return chain.steps, verdict


def _segment(chain: Chain, segment: Segment) -> Verdict | None:
    hops = segment.hops
    if not hops:
        return None
    if dns.name.root not in chain.keys:
        broken = chain.root(hops[0].address)
        if broken is not None:
            return broken
    for prev, hop in zip(hops, hops[1:], strict=False):
        if hop.zone in chain.keys:
            continue
        parent = _through(chain, prev.zone, hop.zone, prev.reply, prev.address)
        if isinstance(parent, Verdict):
            return parent
        broken = chain.link(parent, hop.zone, prev.reply, prev.address, hop.address)
        if broken is not None:
            return broken
    last = hops[-1]
    if not last.reply.flags & dns.flags.AA:
        chain.say(f"No answer from {last.zone} came back: nothing more to validate.")
        return None
    zone = _through(chain, last.zone, segment.qname, last.reply, last.address)
    if isinstance(zone, Verdict):
        return zone
    return chain.answer(zone, last.reply, segment.qname, segment.rdtype)


def _through(
    chain: Chain, zone: Name, below: Name, reply: dns.message.Message, address: str
) -> Name | Verdict:
    """The zone that really signed *reply*: a server of *zone* may serve a zone
    between *zone* and *below* too (the lab's root server serves ``arpa.``) and
    answer from it; then the chain passes through that zone first."""
    signer: Name | None = next(
        (
            rd.signer
            for r in (*reply.answer, *reply.authority)
            if r.rdtype == RdataType.RRSIG
            for rd in r
        ),
        None,
    )
    if (
        signer is None
        or signer == zone
        or not signer.is_subdomain(zone)
        or not below.is_subdomain(signer)
    ):
        return zone
    if signer in chain.keys:
        return signer
    chain.say(
        f"The reply is signed by {signer}, not {zone}: {address} serves {signer} too, "
        "so the chain of trust passes through it."
    )
    broken = chain.link(zone, signer, None, address, address)
    return broken if broken is not None else signer


def summary(verdict: Verdict | None) -> str:
    """The closing line of ``trace --dnssec``."""
    if verdict is None:
        return "DNSSEC: no answer to validate"
    if verdict.state is State.SECURE:
        return f"DNSSEC: secure ({verdict.why})"
    if verdict.state is State.INSECURE:
        return f"DNSSEC: insecure from {verdict.zone} ({verdict.why})"
    return f"DNSSEC: bogus at {verdict.zone}: {verdict.why}"
