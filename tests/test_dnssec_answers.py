"""DNSSEC answers (RFC 4033-4035, 5155, 6840): what a DO=1 question gets from a signed zone.

One zone, signed in the fixture by ``dnssec-signzone`` three ways (NSEC, NSEC3
without salt or iterations, NSEC3 Opt-Out), is asked a table of questions in
memory, section by section: every RRset in the answer and authority sections
carries its RRSIGs, each RRSIG validates against the zone's DNSKEY with
``dns.dnssec``, and the NSEC/NSEC3 proofs are the ones RFC 4035 3.1.3 and
RFC 5155 7.2 require.  Then the same files are served by authd and NSD on
loopback and every DO=1 question the differential derives is compared over
UDP 1232, UDP 4096 and TCP.  Regression tests: RRSIGs of different covered
types kept apart with their own TTLs (they were merged, TTLs rewritten to
the smallest, and transferred so), NSEC3 owner names not names of the zone.
"""

from __future__ import annotations

import base64
import dataclasses
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from dnsdiff import Outcome, Question, ask, differences, questions_for_zone, read_zone, report
from hypothesis import given, settings
from hypothesis import strategies as st
from zonekit import exchange, make_query

from authd.config import Options
from authd.denial import Kind
from authd.rrsig import is_sig_key
from authd.snapshot import Snapshot, View
from authd.zone import load_zone
from harness import peers

ORIGIN = "example."
ZONE = """$ORIGIN example.
$TTL 3600
@ SOA ns hostmaster 1 7200 3600 1209600 300
@ NS ns
@ MX 10 mx
ns A 192.0.2.1
www 300 A 192.0.2.2
www TXT "hello"
mail MX 10 mx
mx A 192.0.2.3
mx AAAA 2001:db8::3
*.wild A 192.0.2.4
*.wild TXT "w"
towild CNAME x.wild
*.wc CNAME www
*.ent TXT "empty non-terminal wildcard parent"
a.b.c TXT "deep"
alias CNAME www
chain CNAME alias
sec NS ns.sec
ns.sec A 192.0.2.5
sec DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
insec NS ns.insec
ns.insec A 192.0.2.6
deep.ent.insec2 NS ns.other.net.
dn DNAME example.net.
"""
# NSEC; NSEC3 as RFC 9276 asks (no salt, no extra iterations); NSEC3 Opt-Out;
# and NSEC3 with a salt and iterations, as older signers still make.
VARIANTS = {
    "nsec": [],
    "nsec3": ["-3", "-"],
    "optout": ["-3", "-", "-A"],
    "nsec3salt": ["-3", "aabbccdd", "-H", "5"],
}


@dataclass(frozen=True)
class Signed:
    kind: str
    file: Path
    dnskey: dns.rrset.RRset


def _sign(
    workdir: Path, text: str = ZONE, keys: tuple[str, str] | None = None, suffix: str = ""
) -> dict[str, Signed]:
    """*text* signed three ways in *workdir* (new keys unless *keys* names
    the KSK and ZSK files made by an earlier call)."""
    keygen = peers.require_binary("dnssec-keygen")
    signzone = peers.require_binary("dnssec-signzone")

    def run(*argv: str) -> str:
        done = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout.strip()

    if keys is None:
        ksk = run(keygen, "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", ORIGIN)
        zsk = run(keygen, "-q", "-a", "ECDSAP256SHA256", ORIGIN)
        (workdir / "keys").write_text(f"{ksk} {zsk}")
    else:
        ksk, zsk = keys
    dnskeys = (workdir / f"{ksk}.key").read_text() + (workdir / f"{zsk}.key").read_text()
    (workdir / f"example{suffix}.zone").write_text(text + dnskeys)
    out = {}
    for kind, flags in VARIANTS.items():
        target = workdir / f"example{suffix}.{kind}"
        run(
            signzone,
            "-q",
            *flags,
            "-o",
            ORIGIN,
            "-f",
            str(target),
            f"example{suffix}.zone",
            ksk,
            zsk,
        )
        zone = dns.zone.from_file(str(target), ORIGIN, relativize=False)
        dnskey = zone.find_rrset(ORIGIN, "DNSKEY")
        out[kind] = Signed(kind, target, dnskey)
    return out


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Signed]:
    return _sign(tmp_path_factory.mktemp("dnssec"))


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, signed: dict[str, Signed]) -> Signed:
    return signed[request.param]


_SNAPSHOTS: dict[Path, Snapshot] = {}


def _snapshot(s: Signed) -> Snapshot:
    found = _SNAPSHOTS.get(s.file)
    if found is None:
        origin = dns.name.from_text(ORIGIN)
        result = load_zone(origin, str(s.file))
        assert result.version is not None, result.findings
        found = _SNAPSHOTS[s.file] = Snapshot(
            (View("default", 0, {origin: result.version}),), Options(), 0
        )
    return found


def _exchange(snapshot: Snapshot, query: dns.message.Message) -> dns.message.Message:
    out = exchange(snapshot, query.to_wire())
    assert out is not None
    return dns.message.from_wire(out)


def _ask(
    snapshot: Snapshot, qname: str, qtype: str, *, do: bool = True, payload: int = 4096
) -> dns.message.Message:
    return _exchange(snapshot, make_query(qname, qtype, edns=0, do=do, payload=payload))


def _validate_all(msg: dns.message.Message, dnskey: dns.rrset.RRset) -> None:
    """Every RRset of answer and authority has RRSIGs and they validate
    (an RRset synthesized from a DNAME excepted: it is never signed)."""
    origin = dns.name.from_text(ORIGIN)
    for section in (msg.answer, msg.authority, msg.additional):
        sigs = {(r.name, r.covers): r for r in section if r.rdtype == dns.rdatatype.RRSIG}
        for rrset in section:
            if rrset.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.OPT):
                continue
            if rrset.rdtype == dns.rdatatype.CNAME and any(
                r.rdtype == dns.rdatatype.DNAME for r in msg.answer
            ):
                continue
            if rrset.rdtype == dns.rdatatype.NS and not rrset.name == origin:
                continue  # a referral's NS is not signed (RFC 4035 2.2)
            if section is msg.additional and not rrset.name.is_subdomain(origin):
                continue
            sig = sigs.get((rrset.name, rrset.rdtype))
            glue = section is msg.additional and rrset.name.labels[-3:-2] in [
                (b"sec",),
                (b"insec",),
            ]
            if glue:
                assert sig is None
                continue
            assert sig is not None, f"no RRSIG for {rrset.name} {rrset.rdtype!r}"
            assert sig.ttl == rrset.ttl, f"RRSIG TTL {sig.ttl} for {rrset}"
            dns.dnssec.validate(rrset, sig, {origin: dnskey})


def _types(section: list[dns.rrset.RRset]) -> list[str]:
    out = []
    for r in section:
        t = dns.rdatatype.to_text(r.rdtype)
        if r.rdtype == dns.rdatatype.RRSIG:
            t += "(" + dns.rdatatype.to_text(r.covers) + ")"
        out.append(f"{r.name.relativize(dns.name.from_text(ORIGIN))} {t}")
    return sorted(out)


# (qname, qtype) -> rcode, AA, answer types, authority types for NSEC (NSEC3
# replaces the NSEC owners by hashes: checked by count and validation).
TABLE = [
    ("www", "A", "NOERROR", ["www A", "www RRSIG(A)"], []),
    ("www", "TXT", "NOERROR", ["www RRSIG(TXT)", "www TXT"], []),
    ("@", "DNSKEY", "NOERROR", ["@ DNSKEY", "@ RRSIG(DNSKEY)"], []),
    ("@", "SOA", "NOERROR", ["@ RRSIG(SOA)", "@ SOA"], []),
    ("www", "AAAA", "NOERROR", [], ["@ RRSIG(SOA)", "@ SOA", "www NSEC", "www RRSIG(NSEC)"]),
    (
        "nope",
        "A",
        "NXDOMAIN",
        [],
        ["@ NSEC", "@ RRSIG(NSEC)", "@ RRSIG(SOA)", "@ SOA", "mx NSEC", "mx RRSIG(NSEC)"],
    ),
    ("b.c", "A", "NOERROR", [], ["@ RRSIG(SOA)", "@ SOA", "alias NSEC", "alias RRSIG(NSEC)"]),
    (
        "x.wild",
        "A",
        "NOERROR",
        ["x.wild A", "x.wild RRSIG(A)"],
        ["*.wild NSEC", "*.wild RRSIG(NSEC)"],
    ),
    (
        "x.wild",
        "MX",
        "NOERROR",
        [],
        ["*.wild NSEC", "*.wild RRSIG(NSEC)", "@ RRSIG(SOA)", "@ SOA"],
    ),
    (
        "chain",
        "A",
        "NOERROR",
        [
            "alias CNAME",
            "alias RRSIG(CNAME)",
            "chain CNAME",
            "chain RRSIG(CNAME)",
            "www A",
            "www RRSIG(A)",
        ],
        [],
    ),
    (
        "towild",
        "A",
        "NOERROR",
        ["towild CNAME", "towild RRSIG(CNAME)", "x.wild A", "x.wild RRSIG(A)"],
        ["*.wild NSEC", "*.wild RRSIG(NSEC)"],
    ),
    ("x.dn", "A", "NOERROR", ["dn DNAME", "dn RRSIG(DNAME)", "x.dn CNAME"], []),
    (
        "a.wc",
        "A",
        "NOERROR",
        ["a.wc CNAME", "a.wc RRSIG(CNAME)", "www A", "www RRSIG(A)"],
        ["*.wc NSEC", "*.wc RRSIG(NSEC)"],
    ),
    ("www.sec", "A", "NOERROR", [], ["sec DS", "sec NS", "sec RRSIG(DS)"]),
    ("sec", "DS", "NOERROR", ["sec DS", "sec RRSIG(DS)"], []),
    ("www.insec", "A", "NOERROR", [], ["insec NS", "insec NSEC", "insec RRSIG(NSEC)"]),
    ("insec", "DS", "NOERROR", [], ["@ RRSIG(SOA)", "@ SOA", "insec NSEC", "insec RRSIG(NSEC)"]),
    ("www", "RRSIG", "NOERROR", ["www RRSIG(A)", "www RRSIG(NSEC)", "www RRSIG(TXT)"], []),
    ("www", "NSEC", "NOERROR", ["www NSEC", "www RRSIG(NSEC)"], []),
]


@pytest.mark.parametrize(("qname", "qtype", "rcode", "answer", "authority"), TABLE)
def test_signed_answer_table(variant: Signed, qname, qtype, rcode, answer, authority) -> None:
    snapshot = _snapshot(variant)
    name = ORIGIN if qname == "@" else f"{qname}.{ORIGIN}"
    msg = _ask(snapshot, name, qtype)
    assert dns.rcode.to_text(msg.rcode()) == rcode
    assert not msg.flags & dns.flags.AD  # never set (as NSD)
    assert msg.ednsflags & dns.flags.DO
    if variant.kind != "nsec":
        if qtype == "NSEC":  # no NSEC in an NSEC3 zone: NODATA
            answer, authority = [], ["@ RRSIG(SOA)", "@ SOA", "NSEC"]
        answer = [t for t in answer if "NSEC" not in t]
    assert _types(msg.answer) == answer
    if variant.kind == "nsec":
        assert _types(msg.authority) == authority
    else:
        plain = [t for t in authority if "NSEC" not in t]
        assert [t for t in _types(msg.authority) if "NSEC3" not in t] == plain
        if any("NSEC" in t for t in authority):
            assert any(r.rdtype == dns.rdatatype.NSEC3 for r in msg.authority)
    _validate_all(msg, variant.dnskey)


@pytest.mark.parametrize(("qname", "qtype"), [("www", "A"), ("nope", "A"), ("www.insec", "A")])
def test_do_clear_gets_no_dnssec_records(variant: Signed, qname: str, qtype: str) -> None:
    # RFC 4035 3.2.1 / RFC 3225: without DO, no RRSIG, NSEC or NSEC3 unasked.
    msg = _ask(_snapshot(variant), f"{qname}.{ORIGIN}", qtype, do=False)
    for section in (msg.answer, msg.authority, msg.additional):
        for r in section:
            assert r.rdtype not in (
                dns.rdatatype.RRSIG,
                dns.rdatatype.NSEC,
                dns.rdatatype.NSEC3,
                dns.rdatatype.DS,
            )


def test_cd_is_copied_and_ad_never_set(variant: Signed) -> None:
    query = make_query(f"www.{ORIGIN}", "A", edns=0, do=True)
    query.flags |= dns.flags.CD | dns.flags.AD
    msg = _exchange(_snapshot(variant), query)
    assert msg.flags & dns.flags.CD
    assert not msg.flags & dns.flags.AD


def test_nsec3_proofs_match_rfc5155(signed: dict[str, Signed]) -> None:
    # NXDOMAIN: closest encloser (the apex) matched, next closer and wildcard
    # covered (RFC 5155 7.2.2); a wildcard answer: only the next closer
    # covered (7.2.6).
    s = signed["nsec3"]
    version = load_zone(dns.name.from_text(ORIGIN), str(s.file)).version
    assert version is not None and version.denial is not None
    denial = version.denial
    assert denial.kind is Kind.NSEC3 and denial.iterations == 0 and denial.salt == b""
    msg = _ask(_snapshot(s), f"a.nope.{ORIGIN}", "A")
    nsec3 = [r for r in msg.authority if r.rdtype == dns.rdatatype.NSEC3]
    origin = dns.name.from_text(ORIGIN)

    def covers(rrset: dns.rrset.RRset, name: str) -> bool:
        h = denial.hash(dns.name.from_text(name)).decode()
        owner = rrset.name.labels[0].decode().lower()
        nxt = base64.b32hexencode(rrset[0].next).decode().lower()
        return owner < h < nxt or (nxt < owner and (h > owner or h < nxt))

    apex_hash = denial.hash(origin).decode()
    assert any(r.name.labels[0].decode().lower() == apex_hash for r in nsec3)
    assert any(covers(r, f"nope.{ORIGIN}") for r in nsec3)
    assert any(covers(r, f"*.{ORIGIN}") for r in nsec3)
    msg = _ask(_snapshot(s), f"x.wild.{ORIGIN}", "A")
    nsec3 = [r for r in msg.authority if r.rdtype == dns.rdatatype.NSEC3]
    assert len(nsec3) == 1 and covers(nsec3[0], f"x.wild.{ORIGIN}")


def test_nsec3_owner_names_are_not_names_of_the_zone(signed: dict[str, Signed]) -> None:
    # RFC 5155 7.2.8: an NSEC3 owner name is answered NXDOMAIN, and it made no
    # node (an empty non-terminal) in the zone.
    s = signed["nsec3"]
    version = load_zone(dns.name.from_text(ORIGIN), str(s.file)).version
    assert version is not None and version.hashed
    owner = next(iter(version.hashed))
    assert owner not in version.nodes
    msg = _ask(_snapshot(s), owner.to_text(), "A")
    assert msg.rcode() == dns.rcode.NXDOMAIN
    assert any(r.rdtype == dns.rdatatype.NSEC3 for r in msg.authority)


def test_unsigned_zone_has_no_denial() -> None:
    version = load_zone(dns.name.from_text(ORIGIN), _write_unsigned()).version
    assert version is not None and version.denial is None and not version.signed


def _write_unsigned() -> str:
    f = tempfile.NamedTemporaryFile("w", suffix=".zone", delete=False)
    f.write(ZONE)
    f.close()
    return f.name


# -- RRSIG TTLs: stored per covered type ----------------------------------------------


def _sig_ttls(version) -> Iterator[tuple[dns.name.Name, int, int]]:
    """(owner, RRSIG TTL, covered RRset TTL) for every signature of the version."""
    for table in version.tables():
        for name, node in table.items():
            for key, rrset in node.items():
                if is_sig_key(key):
                    yield name, rrset.ttl, node[rrset.covers].ttl


def test_rrsig_ttl_is_the_covered_rrsets_ttl_regression(signed: dict[str, Signed]) -> None:
    # Regression (issue 11): RRSIGs at a name were merged into one RRset and
    # their TTLs rewritten to the smallest ("ttl-mismatch"); at an apex with a
    # TTL-0 NSEC3PARAM (dnssec-signzone's default), every apex RRSIG got TTL 0.
    s = signed["nsec3"]
    result = load_zone(dns.name.from_text(ORIGIN), str(s.file))
    assert not [f for f in result.findings if f.check.value == "ttl-mismatch"]
    version = result.version
    assert version is not None
    seen = list(_sig_ttls(version))
    assert len(seen) > 20
    assert all(sig == data for _, sig, data in seen), seen
    apex = version.nodes[version.origin]
    assert apex[dns.rdatatype.NSEC3PARAM].ttl == 0
    assert {r.ttl for k, r in apex.items() if is_sig_key(k) and r.covers != 51} == {3600}


def test_rrsig_ttls_survive_axfr_out(signed: dict[str, Signed]) -> None:
    # A secondary must get each RRSIG with the TTL it was signed with: AXFR
    # from a running authd, every RRSIG's TTL equal to its covered RRset's.
    s = signed["nsec3"]
    config = (
        "listen: [{address: 127.0.0.1, port: {port}}]\n"
        f"zones: [{{name: {ORIGIN}, file: '{s.file}', allow_transfer: [127.0.0.1]}}]\n"
    )
    with peers.start_authd(config) as server:
        zone = dns.zone.Zone(ORIGIN, relativize=False)
        dns.query.inbound_xfr("127.0.0.1", zone, port=server.port, timeout=10)
    checked = 0
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            if rds.rdtype == dns.rdatatype.RRSIG:
                for rd in rds:
                    covered = node.get_rdataset(dns.rdataclass.IN, rd.type_covered)
                    assert covered is not None
                    # dnspython's Zone keeps RRSIGs per covered type too.
                    assert rds.covers == rd.type_covered
                    assert rds.ttl == covered.ttl, (name, rd.type_covered)
                    checked += 1
    assert checked > 20
    nsec3param = zone.find_rdataset(ORIGIN, "NSEC3PARAM")
    assert nsec3param.ttl == 0


# -- against NSD ----------------------------------------------------------------------

TRANSPORTS = [(False, 512), (False, 1232), (False, 4096), (True, 4096)]


def _questions(path: Path) -> list[Question]:
    base = questions_for_zone(read_zone(ORIGIN, path))
    out = []
    seen = set()
    for q in base:
        # ANY: NSD and Knot answer one RRset (RFC 8482), authd as BIND (all of
        # them): the rule and its comparison are test_differential's.
        if not q.edns or q.qtype == "ANY":
            continue
        for tcp, payload in TRANSPORTS:
            key = (q.qname.lower(), q.qtype, tcp, payload)
            if key in seen:
                continue
            seen.add(key)
            out.append(
                Question(q.qname, q.qtype, tcp=tcp, payload=payload, dnssec_ok=True, why=q.why)
            )
    return out


def _sections_unless_truncated(outcome: Outcome) -> Outcome:
    """A truncated reply reduced to its header: what fits of it differs among
    the references (Knot puts a section's RRSIGs after its RRsets, NSD and
    authd each RRSIG after its RRset, kept or dropped together), and a
    resolver asks again over TCP (RFC 4035 3.1.1, RFC 7766 section 5)."""
    if "TC" not in outcome.flags:
        return outcome
    empty: frozenset = frozenset()
    return dataclasses.replace(outcome, answer=empty, authority=empty, additional=empty)


def _without_positive_ns(outcome: Outcome) -> Outcome:
    """NSD's reply without the apex NS (and its RRSIGs and addresses) it adds
    to positive answers; authd follows Knot there (see test_differential)."""
    if outcome.error or outcome.rcode != "NOERROR" or not outcome.answer:
        return outcome
    ns = {k for k in outcome.authority if k[0] == ORIGIN and k[2] in ("NS", "RRSIG(NS)")}
    if not ns or ns != set(outcome.authority):
        return outcome
    targets = {rd.split()[-1].lower() for k in ns if k[2] == "NS" for rd in k[4]}
    needed = {
        rd.split()[-1].lower() for k in outcome.answer if k[2] in ("MX", "NS", "SRV") for rd in k[4]
    }
    additional = frozenset(k for k in outcome.additional if k[0] not in targets or k[0] in needed)
    return dataclasses.replace(outcome, authority=frozenset(), additional=additional)


@pytest.mark.parametrize("kind", list(VARIANTS))
def test_do_answers_equal_knot_or_nsd(signed: dict[str, Signed], kind: str) -> None:
    # Each DO=1 answer must equal Knot's or NSD's (NSD's positive NS aside);
    # the full three-way differential with its rules is test_dnssec_differential.
    s = signed[kind]
    zones = {ORIGIN: str(s.file)}
    options = {"udp_payload_max": 1232, "minimal_responses": False}
    with (
        peers.start_nsd(zones) as nsd,
        peers.start_knot(zones) as knot,
        peers.start_authd(zones, options=options) as authd,
    ):
        mismatches = []
        for q in _questions(s.file):
            got = _sections_unless_truncated(ask(q, "127.0.0.1", authd.port))
            want = _sections_unless_truncated(ask(q, "127.0.0.1", knot.port))
            if not differences(want, got):
                continue
            other = _without_positive_ns(ask(q, "127.0.0.1", nsd.port))
            if not differences(_sections_unless_truncated(other), got):
                continue
            mismatches.append((q, want, got))
    assert not mismatches, report(f"DO=1 answers differ from Knot and NSD ({kind})", mismatches)


# -- a secondary --------------------------------------------------------------------------


def test_signed_zone_from_knot_primary_is_served_as_from_the_file(
    signed: dict[str, Signed], tmp_path: Path
) -> None:
    # The transfer builds the zone the way a file does (RRSIGs per covered
    # type, NSEC3 owners apart, the proofs): every DO=1 answer of the
    # secondary equals that of authd loading the very file.
    s = signed["optout"]
    zones = {ORIGIN: str(s.file)}
    acl = "acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer\n"
    with peers.start_knot(zones, sections=acl, zone_options={ORIGIN: "    acl: xfr\n"}) as knot:
        config = (
            "listen: [{address: 127.0.0.1, port: {port}}]\n"
            f"options: {{state_dir: '{tmp_path}'}}\n"
            f"zones: [{{name: {ORIGIN}, type: secondary, "
            f"primaries: [{{address: 127.0.0.1, port: {knot.port}}}]}}]\n"
        )
        with peers.start_authd(config) as secondary, peers.start_authd(zones) as primary:
            soa = Question(ORIGIN, "SOA", dnssec_ok=True)
            for _ in range(200):  # bounded: 20 s
                if ask(soa, "127.0.0.1", secondary.port).rcode == "NOERROR":
                    break
                time.sleep(0.1)
            mismatches = []
            for q in _questions(s.file):
                if q.payload != 1232:
                    continue
                want = ask(q, "127.0.0.1", primary.port)
                got = ask(q, "127.0.0.1", secondary.port)
                if differences(want, got):
                    mismatches.append((q, want, got))
    assert not mismatches, report("secondary answers differ from the file's", mismatches)


@pytest.mark.parametrize("kind", list(VARIANTS))
def test_ixfr_of_a_resigning_rebuilds_the_signed_zone(signed: dict[str, Signed], kind: str) -> None:
    # A re-signing touches most records: the changeset between the two
    # signed versions, applied to the old one, gives the new one exactly
    # (signatures per covered type, the NSEC3 owners, the proofs).
    from authd.changeset import apply, diff

    workdir = signed[kind].file.parent
    keys = tuple((workdir / "keys").read_text().split())
    edited = ZONE.replace(" 1 7200 3600", " 2 7200 3600") + "new TXT added\n"
    again = _sign(workdir, edited, keys, suffix="-2")[kind]  # type: ignore[arg-type]
    origin = dns.name.from_text(ORIGIN)
    old = load_zone(origin, str(signed[kind].file)).version
    new = load_zone(origin, str(again.file)).version
    assert old is not None and new is not None
    changeset = diff(old, new)
    assert len(changeset.removed) > 20 and len(changeset.added) > 20
    applied = apply(old, changeset).version
    assert applied is not None and applied.same_content(new) and applied.serial == 2
    assert applied.denial is not None and applied.denial.keys == new.denial.keys
    snapshot = Snapshot((View("default", 0, {origin: applied}),), Options(), 0)
    msg = _ask(snapshot, f"new.{ORIGIN}", "TXT")
    _validate_all(msg, again.dnskey)
    assert _types(msg.answer) == ["new RRSIG(TXT)", "new TXT"]


# -- sizes, the cache -------------------------------------------------------------------


def _pairs_whole(msg: dns.message.Message) -> None:
    """No RRset of the zone's authoritative data without its RRSIGs, and no
    RRSIG without its RRset (glue and DNAME-synthesized CNAMEs have none)."""
    for section in (msg.answer, msg.authority, msg.additional):
        data = {(r.name, r.rdtype) for r in section if r.rdtype != dns.rdatatype.RRSIG}
        sigs = {(r.name, r.covers) for r in section if r.rdtype == dns.rdatatype.RRSIG}
        assert sigs <= data, sigs - data
        for name, rdtype in data - sigs:
            assert rdtype in (dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.OPT) or (
                section is msg.additional and name.labels[1:2] in [(b"sec",), (b"insec",)]
            ), (name, rdtype)


@pytest.mark.parametrize(
    ("qname", "qtype"),
    [("nope", "A"), ("mail", "MX"), ("@", "MX"), ("@", "DNSKEY"), ("chain", "A"), ("x.wild", "MX")],
)
def test_rrsets_and_their_signatures_fit_or_go_together(
    variant: Signed, qname: str, qtype: str
) -> None:
    # RFC 4035 3.1.1: at every payload from 512 up, an RRset and its RRSIGs
    # are in the response together or not at all; TC whenever the answer or
    # the authority section lost something (compared with TCP's whole reply).
    snapshot = _snapshot(variant)
    name = ORIGIN if qname == "@" else f"{qname}.{ORIGIN}"
    whole = dns.message.from_wire(
        exchange(snapshot, make_query(name, qtype, edns=0, do=True).to_wire(), tcp=True)
    )
    for payload in range(512, 1500, 24):
        msg = _ask(snapshot, name, qtype, payload=payload)
        _pairs_whole(msg)
        lost = len(msg.answer) < len(whole.answer) or len(msg.authority) < len(whole.authority)
        assert bool(msg.flags & dns.flags.TC) == lost, payload


def test_answer_cache_keeps_do_apart(variant: Signed) -> None:
    # The same question with and without DO: two cached responses.
    snapshot = _snapshot(variant)
    for _ in range(2):
        plain = _ask(snapshot, f"www.{ORIGIN}", "A", do=False)
        signed_ = _ask(snapshot, f"www.{ORIGIN}", "A", do=True)
        assert [r.rdtype for r in plain.answer] == [dns.rdatatype.A]
        assert _types(signed_.answer) == ["www A", "www RRSIG(A)"]


ROOT_ZONE = """$ORIGIN .
$TTL 86400
. SOA a.root. nstld. 1 1800 900 604800 86400
. NS a.root.
a.root. A 192.0.2.53
tld. NS ns.tld.
ns.tld. A 192.0.2.54
tld. DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"""


@pytest.mark.parametrize("flags", [[], ["-3", "-"]], ids=["nsec", "nsec3"])
def test_signed_root_zone(tmp_path: Path, flags: list[str]) -> None:
    # The apex of the root has no parent: its NODATA and DS answers still
    # carry their proofs (a validator's hierarchy starts here).
    keygen = peers.require_binary("dnssec-keygen")
    signzone = peers.require_binary("dnssec-signzone")

    def run(*argv: str) -> str:
        done = subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout.strip()

    ksk = run(keygen, "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", ".")
    zsk = run(keygen, "-q", "-a", "ECDSAP256SHA256", ".")
    keys = (tmp_path / f"{ksk}.key").read_text() + (tmp_path / f"{zsk}.key").read_text()
    (tmp_path / "root.zone").write_text(ROOT_ZONE + keys)
    run(signzone, "-q", *flags, "-o", ".", "-f", "root.signed", "root.zone", ksk, zsk)
    version = load_zone(dns.name.root, str(tmp_path / "root.signed")).version
    assert version is not None and version.signed
    dnskey = dns.zone.from_file(str(tmp_path / "root.signed"), ".").find_rrset("@", "DNSKEY")
    snapshot = Snapshot((View("default", 0, {dns.name.root: version}),), Options(), 0)
    for qname, qtype, rcode in [
        (".", "DS", dns.rcode.NOERROR),
        (".", "A", dns.rcode.NOERROR),
        ("nope.", "A", dns.rcode.NXDOMAIN),
        ("tld.", "DS", dns.rcode.NOERROR),
        ("www.tld.", "A", dns.rcode.NOERROR),
    ]:
        msg = _ask(snapshot, qname, qtype)
        assert msg.rcode() == rcode, (qname, qtype)
        assert msg.answer or any(
            r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.DS)
            for r in msg.authority
        ), (qname, qtype)
        for section in (msg.answer, msg.authority):
            sigs = {(r.name, r.covers): r for r in section if r.rdtype == dns.rdatatype.RRSIG}
            for rrset in section:
                if rrset.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.NS):
                    continue
                dns.dnssec.validate(
                    rrset, sigs[(rrset.name, rrset.rdtype)], {dns.name.root: dnskey}
                )


def test_nsec3_hash_memo_is_bounded(signed: dict[str, Signed], monkeypatch) -> None:
    # MAX_NSEC3_HASH_CACHE bounds the per-version memo of query-name hashes:
    # a flood of random names starts it over rather than growing it.
    import authd.denial
    from authd.limits import MAX_NSEC3_HASH_CACHE

    assert authd.denial.MAX_NSEC3_HASH_CACHE == MAX_NSEC3_HASH_CACHE
    monkeypatch.setattr(authd.denial, "MAX_NSEC3_HASH_CACHE", 8)
    version = load_zone(dns.name.from_text(ORIGIN), str(signed["nsec3"].file)).version
    assert version is not None and version.denial is not None
    denial = version.denial
    for i in range(50):
        name = dns.name.from_text(f"n{i}.{ORIGIN}")
        expected = dns.dnssec.nsec3_hash(name, b"", 0, 1).lower().encode()
        assert denial.hash(name) == expected
        assert len(denial._hashes) <= 8


def test_a_proof_shared_by_two_steps_is_sent_once(variant: Signed) -> None:
    # Regression: a wildcard CNAME's proof and its target's NODATA proof can
    # be the same NSEC3 (the one matching www also covers the hash of the
    # query name); it was rendered twice, and set TC at 512.
    snapshot = _snapshot(variant)
    labels = ["a", "zz-nx-probe"]
    version = snapshot.views[0].zones[dns.name.from_text(ORIGIN)]
    denial = version.denial
    if variant.kind != "nsec":
        www = denial.matching(dns.name.from_text(f"www.{ORIGIN}"))
        shared = next(
            f"q{i}"
            for i in range(5000)
            if denial.covering(dns.name.from_text(f"q{i}.wc.{ORIGIN}")) is www
        )
        labels.append(shared)
    for label in labels:
        query = make_query(f"{label}.wc.{ORIGIN}", "AAAA", edns=0, do=True, payload=4096)
        wire = exchange(snapshot, query.to_wire())
        assert wire is not None
        # dnspython merges a repeated RRset when parsing: count on the wire.
        nscount = int.from_bytes(wire[8:10], "big")
        msg = dns.message.from_wire(wire)
        assert nscount == sum(len(r) for r in msg.authority), label


# -- the chain lookups, against a plain reading of the RFCs ------------------------------

_LABELS = st.text(alphabet="abcwxyz0-*", min_size=1, max_size=6).filter(
    lambda t: not t.startswith("-")
)


@given(labels=st.lists(_LABELS, min_size=1, max_size=3))
@settings(max_examples=300)
def test_covering_link_covers_the_name(signed: dict[str, Signed], labels: list[str]) -> None:
    # For any name below the apex that is not an owner: the NSEC chosen has
    # owner < name < next in canonical order (RFC 4034 6.1, dnspython's Name
    # order), or is the last link; the NSEC3 chosen has owner hash < hash <
    # next hash, or is the last link wrapping around (RFC 5155 section 7.2).
    origin = dns.name.from_text(ORIGIN)
    name = dns.name.Name(tuple(label.encode() for label in labels)).derelativize(origin)
    for kind in ("nsec", "nsec3salt"):
        denial = _snapshot(signed[kind]).views[0].zones[origin].denial
        link = denial.covering(name)
        assert link is not None
        rrset = link[0]
        if kind == "nsec":
            owner, nxt = rrset.name, rrset[0].next
            if denial.matching(name) is not None:
                assert owner == name
            elif nxt == origin:  # the last NSEC: everything after its owner
                assert owner < name
            else:
                assert owner < name < nxt
        else:
            h = denial.hash(name)
            owner = rrset.name.labels[0].lower()
            nxt = base64.b32hexencode(rrset[0].next).lower()
            if owner == h:
                assert denial.matching(name) is link
            elif owner < nxt:
                assert owner < h < nxt
            else:  # the last link wraps around
                assert h > owner or h < nxt


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_any_comes_with_signatures(variant: Signed, tcp: bool) -> None:
    # ANY (RFC 8482: one RRset over UDP, all over TCP): each RRset with its
    # RRSIGs, all valid, DO or not (RFC 3225 section 3: ANY matches them;
    # BIND answers so).
    snapshot = _snapshot(variant)
    for do in (True, False):
        query = make_query(f"www.{ORIGIN}", "ANY", edns=0, do=do, payload=4096)
        msg = dns.message.from_wire(exchange(snapshot, query.to_wire(), tcp=tcp))
        data = [r for r in msg.answer if r.rdtype != dns.rdatatype.RRSIG]
        sigs = [r for r in msg.answer if r.rdtype == dns.rdatatype.RRSIG]
        assert len(data) == (1 if not tcp else (3 if variant.kind == "nsec" else 2))
        assert sorted(s.covers for s in sigs) == sorted(r.rdtype for r in data)
        _validate_all(msg, variant.dnskey)


def test_secondary_copy_text_keeps_a_signed_zone_whole(variant: Signed) -> None:
    # A secondary's stored copy (xfr_in.zone_text) read back is the same
    # zone: RRSIGs with their TTLs, the NSEC3 owners, the same proofs.
    from authd.xfr_in import zone_text
    from authd.zone import compile_zone
    from authd.zonefile import parse_zone_text

    origin = dns.name.from_text(ORIGIN)
    version = _snapshot(variant).views[0].zones[origin]
    text = "".join(zone_text(version))
    again = compile_zone(origin, parse_zone_text(text, origin, "copy"), "copy").version
    assert again is not None and again.same_content(version)
    assert again.denial is not None and again.denial.keys == version.denial.keys
    assert len(again.hashed) == len(version.hashed)
