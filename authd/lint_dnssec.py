"""DNSSEC checks of ``authd check``: signatures, keys and denial chains of a
signed zone, and the DS that links it to its parent.

Owns: the DNSSEC check ids (``DnssecCheck``), the per-zone checks
(``lint_signed``: RRSIG coverage, validity times, cryptographic verification,
DNSKEY self-signature, NSEC and NSEC3 chains and parameters) and the
cross-zone ones (``lint_delegation``: DS against the child's DNSKEYs,
islands, DS for an unsigned child).

A zone is *signed* when it holds an RRSIG.  A zone with a DNSKEY but no RRSIG
is reported once (``dnssec-unsigned``) and otherwise linted as unsigned.

Severities: an error is what makes validators fail on data the server serves
(BOGUS answers: ``dnssec-verify`` and ``kzonecheck`` reject such zones); the
server still loads the zone, so these errors are not refusals
(``authd.lint.ERROR_IDS`` stays the loader's) and ``--disable`` may silence
them (a deliberately bogus test zone).  A warning is what works today but is
fragile or against RFC 9276 and similar advice.

Invariants: pure (records, a grouping and the time *now* in; findings out;
no clock, no files).  RRSIGs are read per covered type, each with its own line
and TTL, from the parser's records, never from the grouped RRSIG "RRset" (RRSIGs
of different covered types are different RRsets, RFC 4034 section 3).
Cryptographic verification (``dns.dnssec.validate_rrsig``) is bounded by
``LintOptions.verify_limit``: every apex signature is verified, and of the
others an evenly spaced sample in file order, said in a note.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rdtypes.ANY.RRSIG
import dns.rrset

from authd.checks import CheckId, Finding, Origin, Severity
from authd.limits import LINT_MAX_NSEC3_ITERATIONS, LINT_MAX_VERIFIED_SIGNATURES
from authd.zone import Grouping
from authd.zonefile import Record

RdataType = dns.rdatatype.RdataType
Name = dns.name.Name
DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY
DS = dns.rdtypes.ANY.DS.DS
NSEC = dns.rdtypes.ANY.NSEC.NSEC
NSEC3 = dns.rdtypes.ANY.NSEC3.NSEC3
NSEC3PARAM = dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM
RRSIG = dns.rdtypes.ANY.RRSIG.RRSIG

#: Signatures expiring within this many days are warned about (``authd check
#: --dnssec-expiry-days``): a week leaves time to notice a stuck signer, as
#: monitoring of BIND and Knot setups usually allows (Knot re-signs 7 days ahead
#: by default: ``rrsig-refresh``).
EXPIRY_WARN_DAYS = 7

_E, _W = Severity.ERROR, Severity.WARNING


class DnssecCheck(CheckId):
    """The DNSSEC ids of ``authd check``; errors make validators fail."""

    DNSSEC_UNSIGNED = (
        "dnssec-unsigned",
        _W,
        "The zone publishes a DNSKEY but has no RRSIG: it is served unsigned.",
        "RFC 4035 section 2",
    )
    DNSKEY_MISSING = (
        "dnskey-missing",
        _E,
        "The zone has RRSIGs but no DNSKEY at its apex.",
        "RFC 4035 section 2.1",
    )
    RRSIG_MISSING = (
        "rrsig-missing",
        _E,
        "An authoritative RRset without an RRSIG of every algorithm of the apex DNSKEYs.",
        "RFC 4035 section 2.2, RFC 6840 section 5.11",
    )
    RRSIG_NOT_AUTHORITATIVE = (
        "rrsig-not-authoritative",
        _W,
        "An RRSIG over glue, over a delegation's NS, or over data below a cut.",
        "RFC 4035 section 2.2",
    )
    RRSIG_WITHOUT_RRSET = (
        "rrsig-without-rrset",
        _W,
        "An RRSIG covering a type its owner does not have.",
        "RFC 4034 section 3",
    )
    RRSIG_EXPIRED = ("rrsig-expired", _E, "A signature has expired.", "RFC 4035 section 5.3.1")
    RRSIG_NOT_YET_VALID = (
        "rrsig-not-yet-valid",
        _E,
        "A signature's inception is in the future.",
        "RFC 4035 section 5.3.1",
    )
    RRSIG_EXPIRING = (
        "rrsig-expiring",
        _W,
        "A signature expires within --dnssec-expiry-days (default 7).",
        "RFC 4641 section 4.4.2",
    )
    RRSIG_BOGUS = (
        "rrsig-bogus",
        _E,
        "A signature that does not verify with the zone's DNSKEY.",
        "RFC 4035 section 5.3",
    )
    RRSIG_KEY_MISSING = (
        "rrsig-key-missing",
        _E,
        "An RRSIG whose signer and key tag match no DNSKEY at the apex.",
        "RFC 4035 section 2.2",
    )
    RRSIG_ALGORITHM_NO_DNSKEY = (
        "rrsig-algorithm-no-dnskey",
        _E,
        "An RRSIG of an algorithm no apex DNSKEY has.",
        "RFC 6840 section 5.11",
    )
    RRSIG_ORIGINAL_TTL = (
        "rrsig-original-ttl",
        _E,
        "An RRSIG whose Original TTL differs from the TTL of the RRset it covers.",
        "RFC 4034 section 3.1.4",
    )
    DNSKEY_NOT_SELF_SIGNED = (
        "dnskey-not-self-signed",
        _E,
        "The DNSKEY RRset is not signed by a key in it.",
        "RFC 4035 section 2.1",
    )
    DNSKEY_NO_SEP_SIGNATURE = (
        "dnskey-no-sep-signature",
        _E,
        "The DNSKEY RRset is signed only by keys without the SEP (KSK) flag.",
        "RFC 4034 section 2.1.1, RFC 6781 section 3.1",
    )
    DENIAL_MISSING = (
        "denial-missing",
        _E,
        "A signed zone with neither NSEC nor NSEC3: no denial of existence.",
        "RFC 4035 section 2.3",
    )
    NSEC_AND_NSEC3 = (
        "nsec-and-nsec3",
        _E,
        "A zone with both NSEC and NSEC3 records.",
        "RFC 5155 section 7.1",
    )
    NSEC_MISSING = (
        "nsec-missing",
        _E,
        "An authoritative name or delegation point without an NSEC.",
        "RFC 4035 section 2.3",
    )
    NSEC_NEXT_WRONG = (
        "nsec-next-wrong",
        _E,
        "An NSEC whose next name is not the next name of the zone.",
        "RFC 4034 section 4.1.1",
    )
    NSEC_BITMAP_MISMATCH = (
        "nsec-bitmap-mismatch",
        _E,
        "An NSEC type bitmap that differs from the types at its owner.",
        "RFC 4034 section 4.1.2",
    )
    NSEC_NOT_AUTHORITATIVE = (
        "nsec-not-authoritative",
        _E,
        "An NSEC at glue or below a delegation.",
        "RFC 4035 section 2.3",
    )
    NSEC3PARAM_MISMATCH = (
        "nsec3param-mismatch",
        _E,
        "No NSEC3PARAM for the NSEC3 chain, or NSEC3 records with other parameters.",
        "RFC 5155 sections 4 and 7.3",
    )
    NSEC3_MISSING = (
        "nsec3-missing",
        _E,
        "A name of the zone whose hash has no NSEC3 (opt-out spans aside).",
        "RFC 5155 section 7.1",
    )
    NSEC3_NEXT_WRONG = (
        "nsec3-next-wrong",
        _E,
        "An NSEC3 whose next hashed owner is not the next hash of the chain.",
        "RFC 5155 section 3.1.7",
    )
    NSEC3_BITMAP_MISMATCH = (
        "nsec3-bitmap-mismatch",
        _E,
        "An NSEC3 type bitmap that differs from the types of the name it hashes.",
        "RFC 5155 section 3.1.8",
    )
    NSEC3_ORPHAN = (
        "nsec3-orphan",
        _E,
        "An NSEC3 whose hash matches no name of the zone.",
        "RFC 5155 section 7.1",
    )
    NSEC3_OPTOUT_MIXED = (
        "nsec3-optout-mixed",
        _W,
        "NSEC3 records of one chain with and without the opt-out flag.",
        "RFC 5155 section 6",
    )
    NSEC3_ITERATIONS = (
        "nsec3-iterations",
        _W,
        "NSEC3 iterations above 0.",
        "RFC 9276 section 3.1",
    )
    NSEC3_SALT = ("nsec3-salt", _W, "An NSEC3 salt.", "RFC 9276 section 3.1")
    DS_NO_MATCHING_DNSKEY = (
        "ds-no-matching-dnskey",
        _E,
        "Across zones: no DS of the parent matches a DNSKEY that signs the child's DNSKEY RRset.",
        "RFC 4035 section 5.2",
    )
    DS_UNMATCHED = (
        "ds-unmatched",
        _W,
        "Across zones: a DS of the parent that matches no DNSKEY of the child (others do).",
        "RFC 4035 section 5.2",
    )
    DS_CHILD_UNSIGNED = (
        "ds-child-unsigned",
        _E,
        "Across zones: a DS in the parent for a child that is not signed.",
        "RFC 4035 section 5.2",
    )
    DS_PARENT_UNSIGNED = (
        "ds-parent-unsigned",
        _W,
        "Across zones: a DS in an unsigned parent that would break the child once the "
        "parent is signed (no match, or the child unsigned).",
        "RFC 4035 section 5.2",
    )
    DNSSEC_ISLAND = (
        "dnssec-island",
        _W,
        "Across zones: a signed child whose parent has no DS for it (an island of security).",
        "RFC 4035 section 4.3",
    )


@dataclass(frozen=True, slots=True)
class LintOptions:
    """How the DNSSEC checks run: *now* (seconds since the epoch; None skips
    the validity-time checks), the expiry warning horizon, and how many
    signatures at most are verified cryptographically (0: all)."""

    now: int | None = None
    expiry_days: int = EXPIRY_WARN_DAYS
    verify_limit: int = LINT_MAX_VERIFIED_SIGNATURES


@dataclass(frozen=True, slots=True)
class SignedZone:
    """What the cross-zone checks need of one zone's DNSSEC."""

    signed: bool  # holds an RRSIG
    keys: tuple[DNSKEY, ...]  # the apex DNSKEY RRset
    keys_where: Origin | None
    #: Key tags (with algorithm) of the keys whose signature over the DNSKEY
    #: RRset verifies; None when verification was impossible (unsupported).
    dnskey_signers: frozenset[tuple[int, int]] | None


@dataclass(frozen=True, slots=True)
class SignedLint:
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    zone: SignedZone


@dataclass(frozen=True, slots=True)
class _Sig:
    name: Name
    rd: RRSIG
    ttl: int
    where: Origin


def _finding(id: DnssecCheck, where: Origin, message: str) -> Finding:
    return Finding(id, id.severity, where.file, where.line, message)


def _key(name: Name) -> tuple[bytes, ...]:
    return tuple(map(bytes.lower, name.labels))


def _canonical(name: Name) -> tuple[bytes, ...]:
    """A sort key for the canonical order of names (RFC 4034 section 6.1):
    labels from the root, each in lower case, compared as octet strings (a
    C-level tuple compare; ``Name.__lt__`` is Python, and slow on big zones)."""
    return tuple(map(bytes.lower, reversed(name.labels)))


def _t(rdtype: int) -> str:
    return dns.rdatatype.to_text(cast(RdataType, rdtype))


def _date(ts: int) -> str:
    when = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def bitmap_types(windows: Iterable[tuple[int, bytes]]) -> frozenset[int]:
    """The types an NSEC or NSEC3 type bitmap lists (RFC 4034 section 4.1.2)."""
    types = set()
    for window, bitmap in windows:
        for i, octet in enumerate(bitmap):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    types.add(window * 256 + i * 8 + bit)
    return frozenset(types)


def _types_text(types: Iterable[int]) -> str:
    return " ".join(sorted(_t(t) for t in types)) or "none"


_RRSIG, _NSEC, _NSEC3, _NSEC3PARAM = (
    RdataType.RRSIG,
    RdataType.NSEC,
    RdataType.NSEC3,
    RdataType.NSEC3PARAM,
)
_DNSKEY, _DS, _NS, _SOA = RdataType.DNSKEY, RdataType.DS, RdataType.NS, RdataType.SOA
# What is authoritative at a delegation point (RFC 4035 section 2.2).
_SIGNED_AT_CUT = frozenset({_DS, _NSEC})
# What an NSEC at a delegation point lists (RFC 4035 section 2.3).
_LISTED_AT_CUT = frozenset({_NS, _DS, _NSEC, _RRSIG})
_ZONE_FLAG, _SEP_FLAG, _REVOKE_FLAG = 0x0100, 0x0001, 0x0080


class _Zone:
    """One grouped zone, classified: authoritative names, cuts, glue, NSEC3 owners."""

    def __init__(self, g: Grouping, signed_names: set[tuple[bytes, ...]]) -> None:
        self.g = g
        self.signed_names = signed_names  # owners of an RRSIG
        self.origin = g.origin
        self.depth = len(g.origin.labels)
        cut_keys = {_key(c) for c in g.cuts}
        self.auth: dict[tuple[bytes, ...], Name] = {}  # names with authoritative data
        self.at_cut: dict[tuple[bytes, ...], Name] = {}  # delegation points
        self.glue: dict[tuple[bytes, ...], Name] = {}  # below a cut: glue, occluded data
        self.hashed: dict[str, Name] = {}  # NSEC3 owners, by their hash label
        for name, types in g.rrsets.items():
            key = _key(name)
            if len(key) == self.depth + 1 and _NSEC3 in types and types.keys() <= {_NSEC3, _RRSIG}:
                self.hashed[key[0].decode("ascii", "replace")] = name
                continue
            if any(key[i:] in cut_keys for i in range(1, len(key) - self.depth)):
                self.glue[key] = name
            elif key in cut_keys:
                self.at_cut[key] = name
            else:
                self.auth[key] = name

    def types(self, name: Name) -> Mapping[RdataType, tuple[list[object], Origin]]:
        return self.g.rrsets.get(name, {})

    def where(self, name: Name, rdtype: RdataType | None = None) -> Origin:
        types = self.types(name)
        if rdtype is not None and rdtype in types:
            return types[rdtype][1]
        wheres = [w for _, w in types.values()]
        if not wheres:
            return Origin(self.g.file, 0)
        return min(wheres, key=lambda w: (w.file, w.line))

    def signable(self, key: tuple[bytes, ...], name: Name) -> list[RdataType]:
        """The types at *name* that must be signed."""
        types = self.types(name)
        if key in self.at_cut:
            return [t for t in types if t in _SIGNED_AT_CUT]
        if key in self.glue:
            return []
        return [t for t in types if t != _RRSIG]


def lint_signed(g: Grouping, records: Sequence[Record], options: LintOptions) -> SignedLint:
    """Every DNSSEC finding of the zone grouped in *g*, whose parsed records
    are *records* (the RRSIGs are read from them, each with its own line)."""
    origin = g.origin
    sigs = [
        _Sig(r.name, cast(RRSIG, r.rdata), r.ttl, Origin(r.file, r.line))
        for r in records
        if r.rdata.rdtype == _RRSIG and r.name in g.rrsets
    ]
    apex = g.rrsets.get(origin, {})
    keys = tuple(cast(DNSKEY, rd) for rd in apex[_DNSKEY][0]) if _DNSKEY in apex else ()
    keys_where = apex[_DNSKEY][1] if _DNSKEY in apex else None
    findings: list[Finding] = []
    notes: list[str] = []
    if not sigs:
        if keys_where is not None:
            findings.append(
                _finding(
                    DnssecCheck.DNSSEC_UNSIGNED,
                    keys_where,
                    f"{origin} DNSKEY is published but the zone has no RRSIG: it is served "
                    "unsigned (a DS for it in a signed parent would make it bogus)",
                )
            )
        return SignedLint(tuple(findings), (), SignedZone(False, keys, keys_where, None))
    z = _Zone(g, {_key(s.name) for s in sigs})
    if not keys:
        first = min(sigs, key=lambda s: (s.where.file, s.where.line))
        findings.append(
            _finding(
                DnssecCheck.DNSKEY_MISSING,
                first.where,
                f"the zone has {len(sigs)} RRSIG record{'s' * (len(sigs) > 1)} but no DNSKEY "
                f"at its apex {origin}: no signature can be verified",
            )
        )
    findings.extend(_coverage(z, sigs, keys))
    if options.now is not None:
        findings.extend(_times(sigs, options.now, options.expiry_days))
    verified, signers, verify_notes = _verify(z, sigs, keys, options.verify_limit)
    findings.extend(verified)
    notes.extend(verify_notes)
    if keys:
        findings.extend(_dnskey(z, keys, keys_where, sigs, signers))
    findings.extend(_denial(z, notes))
    findings.sort(key=lambda f: (f.file, f.line))
    return SignedLint(tuple(findings), tuple(notes), SignedZone(True, keys, keys_where, signers))


# --- coverage: which RRsets carry which algorithms --------------------------------


def _zone_algorithms(keys: Sequence[DNSKEY]) -> set[int]:
    return {
        int(k.algorithm)
        for k in keys
        if k.flags & _ZONE_FLAG and not k.flags & _REVOKE_FLAG and k.protocol == 3
    }


def _sig_text(s: _Sig) -> str:
    return f"{s.name} RRSIG {_t(s.rd.type_covered)}"


def _sig_key_text(s: _Sig) -> str:
    return f"{_sig_text(s)} (key {s.rd.key_tag}, algorithm {s.rd.algorithm})"


def _coverage(z: _Zone, sigs: Sequence[_Sig], keys: Sequence[DNSKEY]) -> list[Finding]:
    findings: list[Finding] = []
    add = findings.append
    covered: dict[tuple[tuple[bytes, ...], int], set[int]] = {}
    for s in sigs:
        key = _key(s.name)
        covered.setdefault((key, int(s.rd.type_covered)), set()).add(int(s.rd.algorithm))
        types = z.types(s.name)
        if s.rd.type_covered not in types:
            add(
                _finding(
                    DnssecCheck.RRSIG_WITHOUT_RRSET,
                    s.where,
                    f"{_sig_text(s)}: {s.name} has no {_t(s.rd.type_covered)} RRset to cover",
                )
            )
        elif key in z.glue or (key in z.at_cut and s.rd.type_covered not in _SIGNED_AT_CUT):
            why = (
                "the NS of a delegation belong to the child"
                if s.rd.type_covered == _NS and key in z.at_cut
                else "the data is glue or below a delegation"
            )
            add(
                _finding(
                    DnssecCheck.RRSIG_NOT_AUTHORITATIVE,
                    s.where,
                    f"{_sig_text(s)}: not authoritative data ({why}), so it is never signed "
                    "(RFC 4035 section 2.2)",
                )
            )
        else:
            ttl = z.g.ttls.get(s.name, {}).get(s.rd.type_covered)
            if ttl is not None and int(s.rd.original_ttl) != ttl:
                add(
                    _finding(
                        DnssecCheck.RRSIG_ORIGINAL_TTL,
                        s.where,
                        f"{_sig_text(s)} has Original TTL {s.rd.original_ttl} but the RRset's "
                        f"TTL is {ttl}: edited after signing? (BIND and Knot find the "
                        "signature invalid)",
                    )
                )
    wanted = _zone_algorithms(keys)
    for table in (z.auth, z.at_cut, {_key(n): n for n in z.hashed.values()}):
        for key, name in table.items():
            for rdtype in z.signable(key, name):
                have = covered.get((key, int(rdtype)), set())
                if not have:
                    add(
                        _finding(
                            DnssecCheck.RRSIG_MISSING,
                            z.where(name, rdtype),
                            f"{name} {_t(rdtype)} has no RRSIG: validators find it bogus",
                        )
                    )
                elif not wanted <= have:
                    missing = ", ".join(
                        dns.dnssec.algorithm_to_text(a) for a in sorted(wanted - have)
                    )
                    add(
                        _finding(
                            DnssecCheck.RRSIG_MISSING,
                            z.where(name, rdtype),
                            f"{name} {_t(rdtype)} has no RRSIG of algorithm {missing}, which "
                            "the apex DNSKEY RRset has: every algorithm signs every RRset "
                            "(RFC 6840 section 5.11)",
                        )
                    )
    return findings


# --- validity times ----------------------------------------------------------------


def _times(sigs: Sequence[_Sig], now: int, days: int) -> list[Finding]:
    """One finding per kind (expired, not yet valid, expiring) at the signature
    that is worst, with the count of the others: a zone's signatures share
    their dates, and one line each would bury everything else."""
    horizon = now + days * 86400
    expired = sorted((s for s in sigs if s.rd.expiration < now), key=lambda s: s.rd.expiration)
    early = sorted((s for s in sigs if s.rd.inception > now), key=lambda s: -s.rd.inception)
    expiring = sorted(
        (s for s in sigs if now <= s.rd.expiration < horizon), key=lambda s: s.rd.expiration
    )
    findings = []

    def more(group: list[_Sig]) -> str:
        n = len(group) - 1
        return f"; so do {n} more signature{'s' * (n != 1)}" if n else ""

    if expired:
        s = expired[0]
        findings.append(
            _finding(
                DnssecCheck.RRSIG_EXPIRED,
                s.where,
                f"{s.name} RRSIG {_t(s.rd.type_covered)} (key {s.rd.key_tag}) expired on "
                f"{_date(s.rd.expiration)}{more(expired)}: validators find the data bogus",
            )
        )
    if early:
        s = early[0]
        findings.append(
            _finding(
                DnssecCheck.RRSIG_NOT_YET_VALID,
                s.where,
                f"{s.name} RRSIG {_t(s.rd.type_covered)} (key {s.rd.key_tag}) is valid only "
                f"from {_date(s.rd.inception)}{more(early)}: validators find the data bogus "
                "until then (a signer's clock ahead?)",
            )
        )
    if expiring:
        s = expiring[0]
        findings.append(
            _finding(
                DnssecCheck.RRSIG_EXPIRING,
                s.where,
                f"{s.name} RRSIG {_t(s.rd.type_covered)} (key {s.rd.key_tag}) expires on "
                f"{_date(s.rd.expiration)}, within {days} days{more(expiring)}: re-sign the "
                "zone",
            )
        )
    return findings


# --- cryptographic verification --------------------------------------------------


def _verify(
    z: _Zone, sigs: Sequence[_Sig], keys: Sequence[DNSKEY], limit: int
) -> tuple[list[Finding], frozenset[tuple[int, int]] | None, list[str]]:
    """Verify signatures with the apex DNSKEYs: findings, the (key tag,
    algorithm) of the keys that validly sign the DNSKEY RRset (None if that
    could not be verified), notes."""
    origin = z.origin
    findings: list[Finding] = []
    notes: list[str] = []
    by_tag: dict[tuple[int, int], list[DNSKEY]] = {}
    algorithms = {int(k.algorithm) for k in keys}
    for k in keys:
        by_tag.setdefault((dns.dnssec.key_id(k), int(k.algorithm)), []).append(k)
    rdataset = dns.rdataset.from_rdata_list(0, list(keys)) if keys else None
    keyring: dict[Name, dns.rdataset.Rdataset] = {origin: rdataset} if rdataset else {}
    okey = _key(origin)
    apex = [s for s in sigs if _key(s.name) == okey]
    rest = [s for s in sigs if _key(s.name) != okey]
    if limit and len(apex) + len(rest) > limit:
        step = -(-len(rest) // max(1, limit - len(apex)))
        chosen = apex + rest[::step]
        notes.append(
            f"{origin}: verified {len(chosen)} of {len(sigs)} signatures (every apex one, "
            f"then one in {step} in file order); --dnssec-verify-limit 0 verifies all"
        )
    else:
        chosen = apex + rest
    signers: set[tuple[int, int]] = set()
    dnskey_unverifiable = False  # a DNSKEY signature of an algorithm we cannot verify
    unsupported: set[int] = set()
    rrsets: dict[tuple[tuple[bytes, ...], int], dns.rrset.RRset | None] = {}
    # Signers, key tags and algorithms are checked on every signature; only
    # the cryptography is sampled.
    sampled = {id(s) for s in chosen}
    for s in sigs:
        rd = s.rd
        if _key(rd.signer) != okey:
            findings.append(
                _finding(
                    DnssecCheck.RRSIG_KEY_MISSING,
                    s.where,
                    f"{_sig_key_text(s)}: the signer {rd.signer} is not the zone apex {origin}",
                )
            )
            continue
        if not keys:
            continue  # dnskey-missing says so once
        if int(rd.algorithm) not in algorithms:
            findings.append(
                _finding(
                    DnssecCheck.RRSIG_ALGORITHM_NO_DNSKEY,
                    s.where,
                    f"{_sig_key_text(s)}: no DNSKEY of algorithm "
                    f"{dns.dnssec.algorithm_to_text(rd.algorithm)} at the apex",
                )
            )
            continue
        if (int(rd.key_tag), int(rd.algorithm)) not in by_tag:
            findings.append(
                _finding(
                    DnssecCheck.RRSIG_KEY_MISSING,
                    s.where,
                    f"{_sig_key_text(s)}: no DNSKEY with key tag {rd.key_tag} at the apex (a key "
                    "removed before its signatures?)",
                )
            )
            continue
        if id(s) not in sampled:
            continue
        rkey = (_key(s.name), int(rd.type_covered))
        if rkey not in rrsets:
            types = z.types(s.name)
            entry = types.get(rd.type_covered)
            rrsets[rkey] = (
                dns.rrset.from_rdata_list(
                    s.name,
                    z.g.ttls[s.name][rd.type_covered],
                    cast(list[dns.rdata.Rdata], entry[0]),
                )
                if entry is not None
                else None
            )
        rrset = rrsets[rkey]
        if rrset is None:
            continue  # rrsig-without-rrset
        try:
            dns.dnssec.validate_rrsig(
                rrset,
                rd,
                keyring,  # type: ignore[arg-type]
                origin,
                now=float(rd.inception),  # the times are _times's
                policy=dns.dnssec.allow_all_policy,
            )
        except dns.exception.UnsupportedAlgorithm:
            unsupported.add(int(rd.algorithm))
            dnskey_unverifiable = dnskey_unverifiable or rd.type_covered == _DNSKEY
            continue
        except (dns.exception.DNSException, ValueError, TypeError, IndexError) as e:
            # ValidationFailure, or a key dnspython or cryptography cannot read.
            findings.append(
                _finding(
                    DnssecCheck.RRSIG_BOGUS,
                    s.where,
                    f"{_sig_key_text(s)} does not verify with the DNSKEY ({e}): the data or the "
                    "signature changed after signing; validators find it bogus",
                )
            )
            continue
        if rd.type_covered == _DNSKEY and _key(s.name) == okey:
            signers.add((int(rd.key_tag), int(rd.algorithm)))
    if unsupported:
        shown = ", ".join(dns.dnssec.algorithm_to_text(a) for a in sorted(unsupported))
        notes.append(f"{origin}: signatures of algorithm {shown} not verified (unsupported)")
    dnskey_signers = None if dnskey_unverifiable and not signers else frozenset(signers)
    return findings, dnskey_signers, notes


def _dnskey(
    z: _Zone,
    keys: Sequence[DNSKEY],
    where: Origin | None,
    sigs: Sequence[_Sig],
    signers: frozenset[tuple[int, int]] | None,
) -> list[Finding]:
    assert where is not None
    origin = z.origin
    okey = _key(origin)
    over = [s for s in sigs if s.rd.type_covered == _DNSKEY and _key(s.name) == okey]
    if signers is None and over:
        return []  # could not verify (an unsupported algorithm)
    if not signers:
        tags = ", ".join(str(s.rd.key_tag) for s in over) or "none"
        return [
            _finding(
                DnssecCheck.DNSKEY_NOT_SELF_SIGNED,
                where,
                f"{origin} DNSKEY is not signed by a key in it (RRSIG key tags: {tags}): "
                "validators cannot trust any key of the zone",
            )
        ]
    sep = {(dns.dnssec.key_id(k), int(k.algorithm)) for k in keys if k.flags & _SEP_FLAG}
    if not signers & sep:
        return [
            _finding(
                DnssecCheck.DNSKEY_NO_SEP_SIGNATURE,
                where,
                f"{origin} DNSKEY is signed only by keys without the SEP flag (flags 256): "
                "the parent's DS points at a KSK (flags 257), and dnssec-verify and "
                "kzonecheck reject such a zone",
            )
        ]
    return []


# --- denial of existence ---------------------------------------------------------


def _denial(z: _Zone, notes: list[str]) -> list[Finding]:
    nsec_at = [
        (key, name)
        for table in (z.auth, z.at_cut, z.glue)
        for key, name in table.items()
        if _NSEC in z.types(name)
    ]
    apex = z.types(z.origin)
    if not nsec_at and not z.hashed and _NSEC3PARAM not in apex:
        return [
            _finding(
                DnssecCheck.DENIAL_MISSING,
                z.where(z.origin, _SOA),
                f"{z.origin} is signed but has neither NSEC nor NSEC3 records: no "
                "negative answer can be proven, validators find them bogus",
            )
        ]
    findings: list[Finding] = []
    if nsec_at and (z.hashed or _NSEC3PARAM in apex):
        findings.append(
            _finding(
                DnssecCheck.NSEC_AND_NSEC3,
                z.where(nsec_at[0][1], _NSEC),
                f"{z.origin} has both NSEC and NSEC3 records: a zone uses one kind of "
                "denial of existence",
            )
        )
    if nsec_at:
        findings.extend(_nsec_chain(z))
    if z.hashed or _NSEC3PARAM in apex:
        findings.extend(_nsec3_chain(z, notes))
    return findings


def _expected_types(z: _Zone, key: tuple[bytes, ...], name: Name) -> frozenset[int]:
    """The types a denial record at *name* lists: its own, or at a cut only
    NS, DS and the DNSSEC types (RFC 4035 section 2.3)."""
    types = set(z.types(name))
    types.discard(_RRSIG)  # from the signatures themselves: they are per covered type
    if key in z.signed_names:
        types.add(_RRSIG)
    if key in z.at_cut:
        types &= _LISTED_AT_CUT
    types.discard(_NSEC3)
    return frozenset(int(t) for t in types)


def _nsec_chain(z: _Zone) -> list[Finding]:
    findings: list[Finding] = []
    add = findings.append
    names = sorted([*z.auth.values(), *z.at_cut.values()], key=_canonical)
    index = {_key(n): i for i, n in enumerate(names)}
    for name in z.glue.values():
        if _NSEC in z.types(name):
            add(
                _finding(
                    DnssecCheck.NSEC_NOT_AUTHORITATIVE,
                    z.where(name, _NSEC),
                    f"{name} NSEC: {name} is glue or below a delegation, not part of the "
                    "chain (a denial that is never served)",
                )
            )
    for i, name in enumerate(names):
        types = z.types(name)
        if _NSEC not in types:
            add(
                _finding(
                    DnssecCheck.NSEC_MISSING,
                    z.where(name),
                    f"{name} has no NSEC: the chain has a gap, denials around it are bogus",
                )
            )
            continue
        rdatas, where = types[_NSEC]
        rd = cast(NSEC, rdatas[0])
        want = names[(i + 1) % len(names)]
        if _key(rd.next) != _key(want):
            where_next = (
                "is not a name of the zone"
                if _key(rd.next) not in index
                else "is not the next name"
            )
            add(
                _finding(
                    DnssecCheck.NSEC_NEXT_WRONG,
                    where,
                    f"{name} NSEC next name {rd.next} {where_next}; the next name in "
                    f"canonical order is {want}",
                )
            )
        listed = bitmap_types(rd.windows)
        expected = _expected_types(z, _key(name), name)
        if listed != expected:
            add(
                _finding(
                    DnssecCheck.NSEC_BITMAP_MISMATCH,
                    where,
                    f"{name} NSEC lists {_types_text(listed)} but {name} has "
                    f"{_types_text(expected)} (only in the bitmap: "
                    f"{_types_text(listed - expected)}; missing: {_types_text(expected - listed)})",
                )
            )
    return findings


def _nsec3_chain(z: _Zone, notes: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    add = findings.append
    apex = z.types(z.origin)
    params: dict[tuple[int, int, bytes], list[tuple[str, Name, NSEC3, Origin]]] = {}
    for label, owner in z.hashed.items():
        rdatas, where = z.types(owner)[_NSEC3]
        for rd in rdatas:
            n3 = cast(NSEC3, rd)
            params.setdefault((int(n3.algorithm), int(n3.iterations), n3.salt), []).append(
                (label, owner, n3, where)
            )
    param_where = apex[_NSEC3PARAM][1] if _NSEC3PARAM in apex else z.where(z.origin, _SOA)
    chosen: tuple[int, int, bytes] | None = None
    if _NSEC3PARAM in apex:
        for rd in apex[_NSEC3PARAM][0]:
            p = cast(NSEC3PARAM, rd)
            wanted = (int(p.algorithm), int(p.iterations), p.salt)
            if wanted in params and chosen is None:
                chosen = wanted
        if chosen is None:
            p = cast(NSEC3PARAM, apex[_NSEC3PARAM][0][0])
            add(
                _finding(
                    DnssecCheck.NSEC3PARAM_MISMATCH,
                    param_where,
                    f"{z.origin} NSEC3PARAM {p.algorithm} {p.flags} {p.iterations} "
                    f"{p.salt.hex() or '-'} names no NSEC3 chain of the zone "
                    f"({len(params)} parameter set{'s' * (len(params) != 1)} in its NSEC3 "
                    "records): servers cannot prove any denial",
                )
            )
            if not params:
                return findings
    elif params:
        chosen = max(params, key=lambda k: len(params[k]))
        add(
            _finding(
                DnssecCheck.NSEC3PARAM_MISMATCH,
                param_where,
                f"{z.origin} has NSEC3 records but no NSEC3PARAM at the apex: servers do not "
                "know which chain to answer from (RFC 5155 section 7.3)",
            )
        )
    if chosen is None:
        chosen = max(params, key=lambda k: len(params[k]))
    others = sum(len(v) for k, v in params.items() if k != chosen)
    if others:
        first = min(
            (m[3] for k, v in params.items() if k != chosen for m in v),
            key=lambda w: (w.file, w.line),
        )
        add(
            _finding(
                DnssecCheck.NSEC3PARAM_MISMATCH,
                first,
                f"{others} NSEC3 record{'s' * (others != 1)} with parameters other than "
                f"the chain's ({chosen[0]} {chosen[1]} {chosen[2].hex() or '-'}): a "
                "leftover chain",
            )
        )
    algorithm, iterations, salt = chosen
    if iterations > 0:
        add(
            _finding(
                DnssecCheck.NSEC3_ITERATIONS,
                param_where,
                f"{z.origin} NSEC3 uses {iterations} additional iterations: RFC 9276 asks "
                "for 0 (validators may treat more as insecure or answer SERVFAIL)",
            )
        )
    if salt:
        add(
            _finding(
                DnssecCheck.NSEC3_SALT,
                param_where,
                f"{z.origin} NSEC3 uses the salt {salt.hex()}: RFC 9276 asks for none ('-')",
            )
        )
    if algorithm != 1:
        add(
            _finding(
                DnssecCheck.NSEC3PARAM_MISMATCH,
                param_where,
                f"{z.origin} NSEC3 hash algorithm {algorithm} is unknown (RFC 5155 defines "
                "only 1, SHA-1): the chain cannot be checked",
            )
        )
        return findings
    members = params.get(chosen, [])
    optout = {bool(m[2].flags & 1) for m in members}
    if len(optout) > 1:
        first = min((m[3] for m in members if not m[2].flags & 1), key=lambda w: (w.file, w.line))
        add(
            _finding(
                DnssecCheck.NSEC3_OPTOUT_MIXED,
                first,
                f"{z.origin} NSEC3 chain mixes records with and without the opt-out flag",
            )
        )
    opt_out = True in optout
    if iterations > LINT_MAX_NSEC3_ITERATIONS:
        # Hashing every name would cost names x iterations SHA-1 rounds
        # (65,535 allowed on the wire); validators give up above 150 anyway.
        notes.append(
            f"{z.origin}: NSEC3 chain not followed: {iterations} iterations is more than "
            f"{LINT_MAX_NSEC3_ITERATIONS}, which validators treat as insecure (RFC 9276 "
            "section 3.2)"
        )
        return findings
    required, optional = _nsec3_names(z, opt_out)
    hashes: dict[str, tuple[tuple[bytes, ...], Name]] = {}
    for key, name in [*required.items(), *optional.items()]:
        h = dns.dnssec.nsec3_hash(name, salt, iterations, algorithm).lower()
        hashes[h] = (key, name)
    by_label = {m[0]: m for m in members}
    for h, (key, name) in sorted(hashes.items(), key=lambda kv: kv[1][0][::-1]):
        member = by_label.get(h)
        if member is None:
            if key in required:
                add(
                    _finding(
                        DnssecCheck.NSEC3_MISSING,
                        z.where(name) if name in z.g.rrsets else param_where,
                        f"{name} has no NSEC3 (its hash {h}.{z.origin} is missing): "
                        "denials around it are bogus",
                    )
                )
            continue
        listed = bitmap_types(member[2].windows)
        expected = _expected_types(z, key, name) if name in z.g.rrsets else frozenset()
        if listed != expected:
            add(
                _finding(
                    DnssecCheck.NSEC3_BITMAP_MISMATCH,
                    member[3],
                    f"{member[1]} NSEC3 (for {name}) lists {_types_text(listed)} but {name} "
                    f"has {_types_text(expected)}",
                )
            )
    ordered = sorted(by_label)
    for i, label in enumerate(ordered):
        _, owner, n3, where = by_label[label]
        if label not in hashes:
            add(
                _finding(
                    DnssecCheck.NSEC3_ORPHAN,
                    where,
                    f"{owner} NSEC3 hashes no name of the zone (glue, or a name removed "
                    "after signing?): it proves a name exists that does not",
                )
            )
        want = ordered[(i + 1) % len(ordered)]
        nxt = base64.b32hexencode(n3.next).decode("ascii").lower()
        if nxt != want:
            add(
                _finding(
                    DnssecCheck.NSEC3_NEXT_WRONG,
                    where,
                    f"{owner} NSEC3 next hashed owner {nxt} is not the next hash of the "
                    f"chain ({want}): a gap or a stale record",
                )
            )
    return findings


def _nsec3_names(
    z: _Zone, opt_out: bool
) -> tuple[dict[tuple[bytes, ...], Name], dict[tuple[bytes, ...], Name]]:
    """The names an NSEC3 chain must hash, and those it may (opt-out: insecure
    delegations, and empty non-terminals above only those; RFC 5155 section 7.1)."""
    required: dict[tuple[bytes, ...], Name] = dict(z.auth)
    optional: dict[tuple[bytes, ...], Name] = {}
    for key, name in z.at_cut.items():
        insecure = _DS not in z.types(name)
        (optional if opt_out and insecure else required)[key] = name
    depth = z.depth
    ents_required: set[tuple[bytes, ...]] = set()
    ents: dict[tuple[bytes, ...], Name] = {}
    for table, needed in ((required, True), (dict(optional), False)):
        for key, name in table.items():
            parent = name
            for i in range(1, len(key) - depth):
                pkey = key[i:]
                parent = parent.parent()
                if pkey in z.auth or pkey in z.at_cut:
                    break
                ents[pkey] = parent
                if needed:
                    ents_required.add(pkey)
    for pkey, ent in ents.items():
        (required if pkey in ents_required else optional)[pkey] = ent
    return required, optional


# --- across zones: the DS at the parent against the child -------------------------


def lint_delegation(
    parent_origin: Name,
    parent: Grouping,
    parent_signed: SignedZone,
    child: Grouping,
    child_signed: SignedZone,
    child_file: str,
) -> list[Finding]:
    """The parent's DS for *child* (a cut of *parent*) against the child's keys."""
    cut = child.origin
    types = parent.rrsets.get(cut, {})
    in_child = f"{cut} ({child_file})"
    if _DS not in types:
        if not child_signed.signed or child_signed.keys_where is None:
            return []
        unsigned = "" if parent_signed.signed else " (the parent is not signed either)"
        return [
            _finding(
                DnssecCheck.DNSSEC_ISLAND,
                child_signed.keys_where,
                f"{cut} is signed but its parent {parent_origin} has no DS for it{unsigned}: "
                "validators treat it as insecure (an island of security)",
            )
        ]
    found = _ds_verdict(cut, types[_DS], child_signed, in_child)
    if parent_signed.signed:
        return found
    # Nothing is validated below an unsigned parent (and servers leave its DS
    # out of referrals): what would break once it is signed is a warning.
    return [
        _finding(
            DnssecCheck.DS_PARENT_UNSIGNED,
            Origin(f.file, f.line),
            f"{f.message.removesuffix(VALIDATORS_BOGUS)}, once {parent_origin} is signed "
            f"(unsigned, it is validated by no one)",
        )
        for f in found
        if f.severity is _E
    ]


#: How the DS errors end: a warning for an unsigned parent says "once".
VALIDATORS_BOGUS = ": validators find the child bogus"


def _ds_verdict(
    cut: Name,
    ds_entry: tuple[list[object], Origin],
    child_signed: SignedZone,
    in_child: str,
) -> list[Finding]:
    rdatas, where = ds_entry
    if not child_signed.signed:
        return [
            _finding(
                DnssecCheck.DS_CHILD_UNSIGNED,
                where,
                f"{cut} DS: the child zone {in_child} is not signed{VALIDATORS_BOGUS}",
            )
        ]
    matched: list[tuple[DS, DNSKEY]] = []
    unmatched: list[DS] = []
    unknown = 0
    for rd in rdatas:
        ds = cast(DS, rd)
        match: DNSKEY | None = None
        undecided = False
        for key in child_signed.keys:
            if dns.dnssec.key_id(key) != ds.key_tag or int(key.algorithm) != ds.algorithm:
                continue
            try:
                made = dns.dnssec.make_ds(
                    cut, key, ds.digest_type, policy=dns.dnssec.allow_all_policy
                )
            except (dns.exception.UnsupportedAlgorithm, ValueError, dns.exception.DNSException):
                undecided = True  # a digest type we cannot compute: no verdict
                break
            if made.digest == ds.digest:
                match = key
                break
        if undecided:
            unknown += 1
        elif match is None:
            unmatched.append(ds)
        else:
            matched.append((ds, match))
    signers = child_signed.dnskey_signers
    good = [
        (ds, key)
        for ds, key in matched
        if signers is None or (dns.dnssec.key_id(key), int(key.algorithm)) in signers
    ]
    if not good and not unknown:
        if matched:
            tags = ", ".join(str(ds.key_tag) for ds, _ in matched)
            why = f"the DS match key {tags}, which does not sign the child's DNSKEY RRset"
        else:
            tags = ", ".join(f"{ds.key_tag}/{ds.algorithm}" for ds in unmatched)
            why = f"no DS ({tags}) matches a DNSKEY of the child"
        return [
            _finding(
                DnssecCheck.DS_NO_MATCHING_DNSKEY,
                where,
                f"{cut} DS: {why} in {in_child}; the chain of trust is broken{VALIDATORS_BOGUS}",
            )
        ]
    return [
        _finding(
            DnssecCheck.DS_UNMATCHED,
            where,
            f"{cut} DS {ds.key_tag} {ds.algorithm} {ds.digest_type} matches no DNSKEY of "
            f"{in_child} (a key rolled away?)",
        )
        for ds in unmatched
    ]


__all__ = [
    "EXPIRY_WARN_DAYS",
    "DnssecCheck",
    "LintOptions",
    "SignedLint",
    "SignedZone",
    "bitmap_types",
    "lint_delegation",
    "lint_signed",
]
