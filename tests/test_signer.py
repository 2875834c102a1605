"""The signer (authd.signer): what it signs, how, and what a re-signing keeps.

Every signed zone it produces is written out and checked by BIND's
``dnssec-verify`` (NSEC, NSEC3, NSEC3 with opt-out; ECDSA P-256 and Ed25519;
one CSK or a KSK/ZSK pair), and every RRSIG is verified with
``dns.dnssec.validate`` against the zone's DNSKEY RRset.  Delegation NS and
glue carry no signature, a DS does; the expirations are jittered but fixed by
(owner, type); an edit re-signs only the changed RRset, the SOA and the NSEC
or NSEC3 records whose content moved, and the result still verifies.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rdtypes.util
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from authd.keyfiles import ZoneKey, make_zone_key
from authd.limits import SIGNING_INCEPTION_SKEW
from authd.signer import SignedZone, SigningError, expiration, sign_zone
from authd.signpolicy import Denial, KeyLayout, Nsec3Params, SigningPolicy
from authd.zone import Node, compile_zone
from authd.zonefile import parse_zone_file
from harness.peers import require_binary

RdataType = dns.rdatatype.RdataType
ORIGIN = dns.name.from_text("example.")
NOW = 1_800_000_000
VERIFY_TIMEOUT = 60.0

ZONE = """$TTL 300
@ IN SOA ns1 host 1 3600 600 86400 300
@ NS ns1
@ MX 10 mail
ns1 A 192.0.2.1
mail A 192.0.2.4
www A 192.0.2.2
www AAAA 2001:db8::2
*.wild TXT "wild"
a.b.c.ent A 192.0.2.3
sub NS ns.sub
ns.sub A 192.0.2.9
sec NS ns.other.net.
sec DS 4711 13 2 abababababababababababababababababababababababababababababababab
"""


def make_key(role: str, algorithm: int) -> ZoneKey:
    """A key published and active since the epoch, as the key store makes them."""
    private: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == 13
        else ed25519.Ed25519PrivateKey.generate()
    )
    return make_zone_key(ORIGIN, role, private, 0, publish=0, activate=0)


def nodes_of(path: Path) -> dict[dns.name.Name, Node]:
    result = compile_zone(ORIGIN, parse_zone_file(str(path), ORIGIN), str(path))
    assert result.version is not None, result.findings
    return dict(result.version.nodes)


def write_zone(signed: SignedZone, path: Path) -> None:
    with path.open("w") as f:
        for r in signed.records():
            rdtype = dns.rdatatype.to_text(r.rdata.rdtype)
            f.write(f"{r.name} {r.ttl} IN {rdtype} {r.rdata.to_text()}\n")


def dnssec_verify(path: Path, csk: bool) -> str:
    binary = require_binary("dnssec-verify")
    # -z: a CSK carries the SEP flag and signs everything (there is no ZSK).
    args = [binary, *(["-z"] if csk else []), "-o", str(ORIGIN), str(path)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def validate_all(signed: SignedZone) -> None:
    dnskey = signed.rrsets[(ORIGIN, RdataType.DNSKEY)]
    keys = {ORIGIN: dnskey}
    for key, sig in signed.sigs.items():
        dns.dnssec.validate(signed.rrsets[key], sig, keys, now=NOW)


POLICIES = [
    ("nsec", 13, "csk", False),
    ("nsec3", 13, "csk", False),
    ("nsec3", 13, "ksk-zsk", True),
    ("nsec", 15, "ksk-zsk", False),
    ("nsec3", 15, "csk", True),
]


def policy_of(denial: str, alg: int, layout: str, opt_out: bool) -> SigningPolicy:
    return SigningPolicy(
        algorithm=alg,
        denial=Denial(denial),
        keys=KeyLayout(layout),
        nsec3=Nsec3Params(opt_out=opt_out),
    )


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    path = tmp_path / "example.zone"
    path.write_text(ZONE)
    return path


@pytest.mark.parametrize(("denial", "alg", "layout", "opt_out"), POLICIES)
def test_signed_zone_passes_dnssec_verify(
    tmp_path: Path, zone_file: Path, denial: str, alg: int, layout: str, opt_out: bool
) -> None:
    policy = policy_of(denial, alg, layout, opt_out)
    keys = [make_key(r, alg) for r in policy.roles]
    # dnssec-verify checks against the real clock: sign as of now.
    now = int(time.time())
    signed = sign_zone(ORIGIN, nodes_of(zone_file), keys, policy, now)
    out = tmp_path / "signed.zone"
    write_zone(signed, out)
    report = dnssec_verify(out, layout == "csk")
    assert "Zone fully signed" in report


@pytest.mark.parametrize(("denial", "alg", "layout", "opt_out"), POLICIES)
def test_every_rrsig_validates_and_only_authoritative_data_is_signed(
    zone_file: Path, denial: str, alg: int, layout: str, opt_out: bool
) -> None:
    policy = policy_of(denial, alg, layout, opt_out)
    keys = [make_key(r, alg) for r in policy.roles]
    signed = sign_zone(ORIGIN, nodes_of(zone_file), keys, policy, NOW)
    validate_all(signed)
    name = dns.name.from_text
    signed_keys = set(signed.sigs)
    assert (name("sub.example."), RdataType.NS) not in signed_keys  # delegation NS
    assert (name("ns.sub.example."), RdataType.A) not in signed_keys  # glue
    assert (name("sec.example."), RdataType.DS) in signed_keys
    assert (ORIGIN, RdataType.NS) in signed_keys
    # DNSKEY by the KSK/CSK only; everything else by the ZSK/CSK only.
    by_role = {k.tag: k.role for k in keys}
    for (owner, rdtype), sig in signed.sigs.items():
        roles = {by_role[int(rd.key_tag)] for rd in sig}
        # DNSKEY, CDS and CDNSKEY by the KSK (RFC 7344 section 4.1).
        by_ksk = rdtype in (RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY)
        wanted = {"csk"} if layout == "csk" else {"ksk" if by_ksk else "zsk"}
        assert roles == wanted, (owner, rdtype)
    assert signed.rrsets[(ORIGIN, RdataType.DNSKEY)].ttl == policy.dnskey_ttl


def test_nsec3_chain_covers_empty_non_terminals_and_opt_out_skips_insecure_delegations(
    zone_file: Path,
) -> None:
    nodes = nodes_of(zone_file)
    for opt_out in (False, True):
        policy = policy_of("nsec3", 13, "csk", opt_out)
        signed = sign_zone(ORIGIN, nodes, [make_key("csk", 13)], policy, NOW)
        nsec3 = {
            owner.labels[0].decode(): rrset[0]
            for (owner, rdtype), rrset in signed.rrsets.items()
            if rdtype == RdataType.NSEC3
        }

        def hashed(text: str) -> str:
            return dns.dnssec.nsec3_hash(dns.name.from_text(text), b"", 0, 1).lower()

        for ent in ("c.ent.example.", "b.c.ent.example.", "ent.example."):
            rd = nsec3[hashed(ent)]
            assert rd.windows == (), ent  # an ENT's NSEC3 has an empty bitmap
        assert hashed("sec.example.") in nsec3  # secure delegation: always there
        assert (hashed("sub.example.") in nsec3) is not opt_out
        assert hashed("ns.sub.example.") not in nsec3  # glue never
        assert all(bool(rd.flags & 1) is opt_out for rd in nsec3.values())
        param = signed.rrsets[(ORIGIN, RdataType.NSEC3PARAM)][0]
        assert (param.flags, param.iterations, param.salt) == (0, 0, b"")


def test_nsec_chain_is_in_canonical_order_and_closes_at_the_apex(zone_file: Path) -> None:
    signed = sign_zone(ORIGIN, nodes_of(zone_file), [make_key("csk", 13)], SigningPolicy(), NOW)
    chain = {o: r[0] for (o, t), r in signed.rrsets.items() if t == RdataType.NSEC}
    owners = sorted(chain)
    assert owners[0] == ORIGIN
    for i, owner in enumerate(owners):
        assert chain[owner].next == owners[(i + 1) % len(owners)]
    assert dns.name.from_text("ns.sub.example.") not in chain  # glue
    assert dns.name.from_text("c.ent.example.") not in chain  # ENTs have no NSEC
    sub = chain[dns.name.from_text("sub.example.")]
    assert set(sub.windows) == set(
        dns.rdtypes.util.Bitmap.from_rdtypes(
            [RdataType.NS, RdataType.RRSIG, RdataType.NSEC]
        ).windows
    )


def test_timing_is_an_hour_back_to_validity_less_a_fixed_jitter(zone_file: Path) -> None:
    policy = SigningPolicy()
    key = make_key("csk", 13)
    nodes = nodes_of(zone_file)
    one = sign_zone(ORIGIN, nodes, [key], policy, NOW)
    two = sign_zone(ORIGIN, nodes, [key], policy, NOW)
    expirations = set()
    for k, sig in one.sigs.items():
        for rd in sig:
            assert rd.inception == NOW - SIGNING_INCEPTION_SKEW == NOW - 3600
            assert (
                NOW + policy.signature_validity - policy.signature_jitter
                < rd.expiration
                <= NOW + policy.signature_validity
            )
            assert rd.expiration == expiration(k[0], k[1], NOW, policy)
            expirations.add(rd.expiration)
        assert [rd.expiration for rd in two.sigs[k]] == [rd.expiration for rd in sig]
    assert len(expirations) > len(one.sigs) // 2  # spread, not one instant
    assert one.earliest_expiry() == min(expirations)
    assert not one.due_for_refresh(NOW, policy)
    due = min(expirations) - policy.signature_refresh
    assert not one.due_for_refresh(due - 1, policy)
    assert one.due_for_refresh(due, policy)


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_an_edit_resigns_only_the_changed_rrset_soa_and_neighbours(
    tmp_path: Path, zone_file: Path, denial: str
) -> None:
    policy = policy_of(denial, 13, "csk", False)
    key = make_key("csk", 13)
    first = sign_zone(ORIGIN, nodes_of(zone_file), [key], policy, NOW)
    assert first.kept == 0
    edited = tmp_path / "edited.zone"
    text = ZONE.replace("1 3600 600", "2 3600 600").replace("192.0.2.2", "192.0.2.22")
    edited.write_text(text + "new TXT hello\n")
    later = NOW + 600
    second = sign_zone(ORIGIN, nodes_of(edited), [key], policy, later, previous=first)
    # www A changed, SOA changed, new TXT added: its NSEC/NSEC3 and one neighbour's.
    assert second.resigned <= 6, second.resigned
    assert second.kept >= len(first.sigs) - 4
    www = (dns.name.from_text("www.example."), RdataType.A)
    assert second.sigs[www][0].inception == later - 3600
    mx = (ORIGIN, RdataType.MX)
    assert second.sigs[mx] is first.sigs[mx]
    validate_all(second)


def test_a_new_key_resigns_everything(zone_file: Path) -> None:
    policy = SigningPolicy()
    nodes = nodes_of(zone_file)
    first = sign_zone(ORIGIN, nodes, [make_key("csk", 13)], policy, NOW)
    second = sign_zone(ORIGIN, nodes, [make_key("csk", 13)], policy, NOW + 1, previous=first)
    assert second.kept == 0


def test_signatures_due_for_refresh_are_made_again(zone_file: Path) -> None:
    policy = SigningPolicy()
    key = make_key("csk", 13)
    nodes = nodes_of(zone_file)
    first = sign_zone(ORIGIN, nodes, [key], policy, NOW)
    soon = NOW + policy.signature_validity - policy.signature_refresh
    second = sign_zone(ORIGIN, nodes, [key], policy, soon, previous=first)
    assert second.kept == 0 and not second.due_for_refresh(soon, policy)


def test_without_an_active_key_signing_is_refused(zone_file: Path) -> None:
    nodes = nodes_of(zone_file)
    retired = dataclasses.replace(make_key("csk", 13), retire=NOW - 1)
    cases: list[tuple[list[ZoneKey], SigningPolicy]] = [
        ([], SigningPolicy()),
        ([make_key("csk", 15)], SigningPolicy()),  # algorithm 15; the policy wants 13
        ([make_key("zsk", 13)], SigningPolicy(keys=KeyLayout.KSK_ZSK)),  # no KSK
        ([retired], SigningPolicy()),
    ]
    for keys, policy in cases:
        with pytest.raises(SigningError, match="no active"):
            sign_zone(ORIGIN, nodes, keys, policy, NOW)


def test_a_published_key_not_yet_active_is_in_the_dnskey_rrset_but_signs_nothing(
    zone_file: Path,
) -> None:
    signing = make_key("csk", 13)
    waiting = dataclasses.replace(make_key("csk", 13), activate=None)
    hidden = dataclasses.replace(make_key("csk", 13), publish=None, activate=None)
    signed = sign_zone(
        ORIGIN, nodes_of(zone_file), [signing, waiting, hidden], SigningPolicy(), NOW
    )
    dnskey = signed.rrsets[(ORIGIN, RdataType.DNSKEY)]
    assert set(dnskey) == {signing.dnskey, waiting.dnskey}
    assert {int(rd.key_tag) for sig in signed.sigs.values() for rd in sig} == {signing.tag}
    validate_all(signed)
