"""authd answers DO=1 questions about signed zones as NSD and Knot DNS do.

Every bundled zone (``zones/*.zone``) and every test zone (``tests/zones/*.zone``)
is signed three ways in the test set-up (``signkit.signed_set``: NSEC, NSEC3
with no salt and 0 iterations, NSEC3 with opt-out; ``signkit.EXTRA_DS`` adds
DS records for two delegations first, so that there are secure referrals to
zones nobody here serves), and each set is served by
NSD, Knot and authd at once on loopback.  The questions (``dnssec_questions``)
cover what RFC 4035 section 3.1 and RFC 5155 section 7.2 make a signed
zone's server answer: positive answers, NXDOMAIN, NODATA, empty
non-terminals, wildcard answers and wildcard NODATA, secure and insecure
referrals, DS at a cut, DNSKEY, NSEC3PARAM, qtype RRSIG/NSEC/NSEC3, CNAME and
DNAME chains and ANY, each with DO=1 over UDP with payload 1232, UDP with
payload 4096 (every server accepts 4096), and TCP, and apex and delegation
questions also with payload 512.  Replies are compared as in ``test_differential``:
rcode, every header flag, EDNS, the question, and the three sections as sets
of RRsets with TTLs, RRSIGs (one RRset per covered type) and NSEC/NSEC3
records included.

Where NSD 4.6 and Knot 3.2 disagree, ``RULES`` names the disagreement and the
RFC text that allows both, and authd may give either reply (or BIND's, for
ANY).  ``test_peers_disagree_only_as_documented`` keeps that list honest.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdataclass
import dns.rdatatype
import pytest
import signkit
from dnsdiff import NX_LABEL, Outcome, Question, RRsetKey, ZoneData, ask, read_zone, report

from harness.peers import HOST, Server, start_authd, start_bind, start_knot, start_nsd
from harness.signing import Denial, SignedZone

# Every server accepts UDP answers up to 4096 octets, so that a client's payload
# decides: 1232 and 4096 give different answers for large RRsets and referrals.
MAX_UDP = 4096
AUTHD_OPTIONS = {"udp_payload_max": MAX_UDP, "minimal_responses": False}
NSD_EXTRA = f"    ipv4-edns-size: {MAX_UDP}\n"
KNOT_EXTRA = f"    udp-max-payload: {MAX_UDP}\n"
BIND_EXTRA = f"    minimal-responses no-auth;\n    max-udp-size {MAX_UDP};\n"
MAX_NSEC3_PROBES = 2  # NSEC3 owner names asked about, per zone
ZONES = signkit.zone_files()
APEXES = {dns.name.from_text(zone) for zone in ZONES}
DENIALS = tuple(Denial)

# (tcp, payload): UDP 1232 (DNS flag day 2020), UDP 4096 (what most
# resolvers still offer), TCP.
TRANSPORTS = ((False, 1232), (False, 4096), (True, 1232))
# Payload 512 (the smallest, RFC 6891 section 6.2.5) for the questions whose
# signed answers are the largest: apex data and referrals.
SMALL = (False, 512)
SMALL_FOR = ("apex", "delegation, secure or insecure")
DNSSEC_TYPES = ("DS", "RRSIG", "NSEC", "NSEC3")
APEX_TYPES = ("SOA", "NS", "DNSKEY", "NSEC3PARAM", "ANY")


def _child(label: str, parent: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((label.encode(),) + parent.labels)


def _nodata_type(types: set[str]) -> str:
    """A type the name does not have (for a NODATA question)."""
    return "TXT" if "TXT" not in types else "SRV"


def _kinds(zone: ZoneData) -> dict[dns.name.Name, tuple[tuple[str, ...], str]]:
    """Name -> (qtypes, why): every question kind issue 11 lists, each asked a few times."""
    origin = zone.origin
    owners = set(zone.nodes)
    ents: set[dns.name.Name] = set()
    for name in owners:
        parent = name.parent() if name != origin else origin
        while parent != origin and parent.is_subdomain(origin):
            if parent not in owners:
                ents.add(parent)
            parent = parent.parent()
    cuts = {n for n, types in zone.nodes.items() if "NS" in types and n != origin}
    below_cut = {n for n in owners if any(n != c and n.is_subdomain(c) for c in cuts)}
    table: dict[dns.name.Name, tuple[tuple[str, ...], str]] = {}
    for name in sorted(owners - below_cut):
        types = zone.nodes[name]
        own = sorted(types)
        if name == origin:
            more = [*APEX_TYPES, *DNSSEC_TYPES, _nodata_type(types)]
            table[name] = (tuple(dict.fromkeys([*own, *more])), "apex")
        elif name in cuts:
            table[name] = (("NS", "DS", "A", "RRSIG"), "delegation, secure or insecure")
        elif name.labels[0] == b"*":
            table[name] = ((*own, "RRSIG"), "wildcard owner, asked literally")
        else:
            table[name] = ((*own, _nodata_type(types)), "owner: positive, CNAME chain, NODATA")
    for name in sorted(below_cut)[:2]:
        table[name] = (("A",), "glue, below a delegation")
    for name in sorted(ents - below_cut):
        table[name] = (("A", "DS", "NSEC"), "empty non-terminal")
    probes: dict[dns.name.Name, tuple[tuple[str, ...], str]] = {}
    for name in sorted((owners | ents) - below_cut - {n for n in owners if n.labels[0] == b"*"}):
        probes.setdefault(_child(NX_LABEL, name), (("A",), "NXDOMAIN (or synthesis)"))
    for cut in cuts:
        probes[_child("below", cut)] = (("A", "DS"), "below a delegation")
    for name in owners:
        if name.labels and name.labels[0] == b"*" and name not in below_cut:
            types = zone.nodes[name]
            probes[_child("match", name.parent())] = (
                (*sorted(types), _nodata_type(types), "NSEC"),
                "wildcard answer and wildcard NODATA",
            )
        if "DNAME" in zone.nodes[name]:
            probes[_child("www", name)] = (("A",), "below a DNAME")
    for name, entry in probes.items():
        if name not in owners and name not in ents:
            table[name] = entry
    return table


def dnssec_questions(zone: ZoneData, signed: SignedZone) -> list[Question]:
    """The DO=1 questions for one signed zone, over every transport; deterministic."""
    kinds = _kinds(zone)
    if signed.denial is not Denial.NSEC:
        # RFC 5155 section 7.2.8: an NSEC3 owner is not a name in the zone.
        hashed = sorted(
            name
            for name, node in signed.zone().nodes.items()
            if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3) is not None
        )
        for name in hashed[:MAX_NSEC3_PROBES]:
            kinds[name] = (("NSEC3", "A"), "NSEC3 owner name")
    result = []
    for name, (qtypes, why) in kinds.items():
        for qtype in qtypes:
            for tcp, payload in TRANSPORTS + ((SMALL,) if why in SMALL_FOR else ()):
                result.append(
                    Question(
                        name.to_text(), qtype, tcp=tcp, payload=payload, dnssec_ok=True, why=why
                    )
                )
    return result


QUESTIONS_BY_ZONE: dict[Denial, dict[str, list[Question]]] = {}


def questions(denial: Denial) -> dict[str, list[Question]]:
    if denial not in QUESTIONS_BY_ZONE:
        signed = signkit.signed_set(denial)
        QUESTIONS_BY_ZONE[denial] = {
            zone: dnssec_questions(read_zone(zone, path), signed[zone])
            for zone, path in ZONES.items()
        }
    return QUESTIONS_BY_ZONE[denial]


# --- Reducing a peer's reply ---------------------------------------------------------


def without_positive_ns(outcome: Outcome) -> Outcome:
    """*outcome* without the apex NS RRset (and its RRSIG) NSD adds to positive answers.

    As in ``test_differential.without_positive_ns``: NSD 4.6 (``minimal-responses:
    no``) puts the zone's NS RRset in the authority section of every positive
    answer and its addresses in additional; with DO=1 their RRSIGs come along.
    Knot does not, and authd follows Knot.  Only that extra is removed: the
    proofs of a wildcard answer stay.
    """
    if outcome.error or outcome.rcode != "NOERROR" or not outcome.answer:
        return outcome
    apexes = {apex.to_text().lower() for apex in APEXES}
    ns = {k for k in outcome.authority if k[0] in apexes and k[2] in ("NS", "RRSIG(NS)")}
    if not any(k[2] == "NS" for k in ns):
        return outcome
    targets = {rd.split()[-1].lower() for k in ns if k[2] == "NS" for rd in k[4]}
    needed: set[str] = set()
    for _name, _class, rdtype, _ttl, rdatas in outcome.answer:
        if rdtype in ("NS", "MX", "SRV"):
            needed.update(rd.split()[-1].lower() for rd in rdatas)
    additional = frozenset(k for k in outcome.additional if k[0] not in targets or k[0] in needed)
    return dataclasses.replace(outcome, authority=outcome.authority - ns, additional=additional)


# --- Disagreements between the peers ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peers:
    """The peers' replies to one question (``nsd`` without its positive NS).

    ``bind`` is asked only ANY questions (None otherwise): see the ANY rule.
    """

    question: Question
    nsd: Outcome
    knot: Outcome
    bind: Outcome | None = None

    def accepted(self) -> tuple[Outcome, ...]:
        return tuple(o for o in (self.nsd, self.knot, self.bind) if o is not None)


@dataclass(frozen=True, slots=True)
class Rule:
    """A documented way NSD and Knot differ; authd may answer as either does.

    Only *fields* are compared (all of them unless the rule says why not).
    """

    name: str
    applies: Callable[[Peers], bool]
    why: str
    fields: tuple[str, ...] = ()


FIELDS = ("error", "rcode", "opcode", "flags", "question", "edns")
SECTIONS = ("answer", "authority", "additional")
ALL = FIELDS + SECTIONS
KNOT_CNAME_LIMIT = 5  # Knot 3.2 stops following a CNAME chain after this many links


def zone_of(owner: str) -> dns.name.Name | None:
    """The served zone that holds *owner* (longest suffix), if any."""
    name = dns.name.from_text(owner)
    found = [apex for apex in APEXES if name.is_subdomain(apex)]
    return max(found, key=len) if found else None


def _owners(keys: frozenset[RRsetKey]) -> set[str]:
    return {key[0] for key in keys}


def _types(keys: frozenset[RRsetKey]) -> set[str]:
    return {key[2] for key in keys}


def _same_but(peers: Peers, *fields: str) -> bool:
    """NSD and Knot agree on everything except *fields*."""
    return all(getattr(peers.nsd, f) == getattr(peers.knot, f) for f in ALL if f not in fields)


DENIAL_TYPES = {"NSEC", "NSEC3", "RRSIG(NSEC)", "RRSIG(NSEC3)"}


def _leaves_zone(peers: Peers) -> bool:
    zone = zone_of(peers.question.qname)
    extra = _owners(peers.nsd.answer - peers.knot.answer)
    extra |= _owners(peers.nsd.authority - peers.knot.authority)
    return any(zone_of(owner) != zone for owner in extra)


def _referral(outcome: Outcome) -> bool:
    apexes = {apex.to_text().lower() for apex in APEXES}
    return not outcome.answer and any(
        key[2] == "NS" and key[0] not in apexes for key in outcome.authority
    )


def _full_referral(peers: Peers) -> bool:
    squeezed = peers.question.payload == SMALL[1]
    if peers.question.tcp or not (_referral(peers.nsd) or _referral(peers.knot) or squeezed):
        return False
    if ("TC" in peers.nsd.flags) != ("TC" in peers.knot.flags):
        return True
    changed = (peers.nsd.authority ^ peers.knot.authority) | (
        peers.nsd.additional ^ peers.knot.additional
    )
    return (
        _same_but(peers, "authority", "additional")
        and _types(peers.nsd.authority ^ peers.knot.authority) <= DENIAL_TYPES | {"RRSIG(DS)", "DS"}
        and bool(changed)
    )


def _long_chain(peers: Peers) -> bool:
    cnames = [key for key in peers.knot.answer if key[2] == "CNAME"]
    return len(cnames) == KNOT_CNAME_LIMIT and (
        peers.knot.answer < peers.nsd.answer or "TC" in peers.nsd.flags
    )


def _crowded_additional(peers: Peers) -> bool:
    return not peers.question.tcp and _same_but(peers, "additional")


def _after_dname(peers: Peers) -> bool:
    return any(key[2] == "DNAME" for key in peers.knot.answer) and _same_but(peers, "authority")


def _without_rrsig_ttl(keys: frozenset[RRsetKey]) -> frozenset[RRsetKey]:
    return frozenset((n, c, t, 0 if t.startswith("RRSIG(") else ttl, r) for n, c, t, ttl, r in keys)


def _rrsig_ttl_capped(peers: Peers) -> bool:
    """Only RRSIG TTLs differ, and NSD's are the smaller (capped by the expiration)."""
    nsd, knot = peers.nsd, peers.knot
    if not _same_but(peers, *SECTIONS):
        return False
    return all(
        _without_rrsig_ttl(getattr(nsd, section)) == _without_rrsig_ttl(getattr(knot, section))
        for section in SECTIONS
    )


def _nsec_at_wildcard(peers: Peers) -> bool:
    return peers.question.qtype == "NSEC" and "wildcard" in peers.question.why


def _rrsig_qtype(peers: Peers) -> bool:
    return peers.question.qtype == "RRSIG" and (
        peers.knot.answer <= peers.nsd.answer or "TC" in peers.nsd.flags
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "ANY",
        lambda peers: peers.question.qtype == "ANY",
        "RFC 8482 section 4.1 lets a server answer ANY with one RRset of its choice (and"
        " its RRSIGs, section 4.2): NSD 4.6 picks the SOA at an apex, Knot 3.2 the NS"
        " RRset with its glue; BIND 9.18 gives every RRset at the name.  Any of the three"
        " is accepted (authd's stated design answers ANY over TCP as BIND does).  BIND"
        " leaves the additional section of ANY answers empty (RFC 1034 section 4.3.2 step"
        " 6 makes it optional) and adds EDE options, so additional and EDNS are not"
        " compared.",
        FIELDS[:-1] + ("answer", "authority"),
    ),
    Rule(
        "qtype RRSIG",
        _rrsig_qtype,
        "No RFC says what a question for qtype RRSIG gets (RFC 4035 section 3.1 covers"
        " RRSIGs that come with the RRsets they sign).  NSD returns every RRSIG at the"
        " name (and sets TC at payload 512, where they do not fit), Knot 3.2 a subset of"
        " them; either is accepted.",
    ),
    Rule(
        "referral or proof that does not fit",
        _full_referral,
        "A signed referral with many in-domain name servers (big.test) exceeds the payload:"
        " Knot sets TC as RFC 9471 section 3 requires when glue does not fit, NSD fills"
        " what fits; with opt-out the two drop different NSEC3 or RRSIG records from the"
        " authority section (RFC 4035 section 3.1.1 lets the server omit what does not fit"
        " and set TC when it must).  At payload 512 the same happens to the NSEC3 proof"
        " of an opt-out DS NODATA.  Which records a truncated or crowded referral keeps"
        " is not specified (RFC 9471 section 3: the resolver retries over TCP), so only"
        " the header, rcode and answer are compared.",
        FIELDS + ("answer",),
    ),
    Rule(
        "chain leaves the zone",
        _leaves_zone,
        "As in test_differential: NSD follows a CNAME or a DNAME-synthesised CNAME into"
        " another zone it serves and answers with that zone's data and proofs; Knot stops"
        " at the zone boundary.  RFC 1034 section 4.3.2 allows both.",
    ),
    Rule(
        "long CNAME chain",
        _long_chain,
        f"Knot 3.2 stops after {KNOT_CNAME_LIMIT} CNAME links; NSD follows the 12-link"
        " chain of cname.test (each link with its RRSIG, RFC 4035 section 3.1.1), which"
        " over UDP no longer fits and is truncated (TC, RFC 2181 section 9).",
    ),
    Rule(
        "additional section filled differently",
        _crowded_additional,
        "Only the additional section differs (RFC 1034 section 4.3.2 step 6 makes it"
        " optional; RFC 4035 section 3.1.1 lets RRsets and RRSIGs there be dropped).",
    ),
    Rule(
        "proof after a DNAME",
        _after_dname,
        "After a DNAME substitution inside the zone ends in NXDOMAIN or NODATA (or in a"
        " wildcard NODATA), Knot and NSD prove the synthesised target name's denial with"
        " different NSEC records: Knot with every one RFC 4035 section 3.1.3.2 asks for,"
        " NSD 4.6 leaving out the one covering the target name, or choosing another"
        " covering NSEC for the wildcard case.  Either is accepted.",
    ),
    Rule(
        "RRSIG TTL capped at the expiration",
        _rrsig_ttl_capped,
        "A record with a TTL longer than its signature's remaining validity (max.ttl.test,"
        " 2147483647 s): NSD serves the RRSIG with the TTL cut to the time left before the"
        " expiration, as RFC 4035 section 5.3.3 asks validators to do; Knot serves the"
        " TTL as signed (RFC 4034 section 3: the RRSIG TTL equals the covered RRset's)."
        " Either is accepted.",
    ),
    Rule(
        "qtype NSEC at a wildcard match",
        _nsec_at_wildcard,
        "A question for qtype NSEC at a name a wildcard covers: NSD 4.6 synthesises from"
        " the wildcard (following its CNAME), Knot 3.2 answers NODATA with other proofs."
        " RFC 4035 section 3.1.3.3 covers wildcard answers for data types only, so either"
        " is accepted.",
    ),
)


AGREE = Rule("", lambda peers: True, "NSD and Knot agree", ALL)


def rule_for(peers: Peers) -> Rule | None:
    """``AGREE`` when NSD and Knot agree, the rule that applies, or None (undocumented)."""
    if peers.nsd == peers.knot and peers.question.qtype != "ANY":
        return AGREE
    for rule in RULES:
        if rule.applies(peers):
            return rule
    return None


def project(outcome: Outcome, fields: tuple[str, ...]) -> Outcome:
    """*outcome* with every field not in *fields* reset, for a partial comparison."""
    blank = Outcome()
    return dataclasses.replace(outcome, **{f: getattr(blank, f) for f in ALL if f not in fields})


# --- Servers ----------------------------------------------------------------------------


def _files(denial: Denial) -> dict[str, Path]:
    return {zone: signed.path for zone, signed in signkit.signed_set(denial).items()}


def _all_questions(denial: Denial) -> list[Question]:
    return [q for qs in questions(denial).values() for q in qs]


PEER_REPLIES: dict[Denial, dict[Question, Peers]] = {}
ASK_THREADS = 4  # questions in flight at once per server: loopback round trips overlap
ASK_TRIES = 3  # a question that times out (a loaded machine) is asked again, this often


def _ask_patiently(question: Question, port: int) -> Outcome:
    outcome = ask(question, HOST, port)
    for _ in range(ASK_TRIES - 1):
        if outcome.error != "timeout":
            break
        outcome = ask(question, HOST, port)
    return outcome


def ask_many(questions: list[Question], port: int) -> dict[Question, Outcome]:
    """Every question's outcome from the server on *port* (several in flight at once)."""
    with concurrent.futures.ThreadPoolExecutor(ASK_THREADS) as pool:
        outcomes = pool.map(lambda q: _ask_patiently(q, port), questions)
        return dict(zip(questions, outcomes, strict=True))


def peer_replies(denial: Denial) -> dict[Question, Peers]:
    """Question -> the peers' replies, for one signed set; the peers run only while asking."""
    if denial not in PEER_REPLIES:
        everything = _all_questions(denial)
        files = _files(denial)
        any_questions = [q for q in everything if q.qtype == "ANY"]
        with (
            start_nsd(files, extra=NSD_EXTRA) as nsd,
            start_knot(files, extra=KNOT_EXTRA) as knot,
            start_bind(files, extra=BIND_EXTRA) as bind,
        ):
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                jobs = [
                    pool.submit(ask_many, qs, server.port)
                    for qs, server in ((everything, nsd), (everything, knot), (any_questions, bind))
                ]
                from_nsd, from_knot, from_bind = (job.result() for job in jobs)
        PEER_REPLIES[denial] = {
            q: Peers(q, without_positive_ns(from_nsd[q]), from_knot[q], from_bind.get(q))
            for q in everything
        }
    return PEER_REPLIES[denial]


@pytest.fixture(scope="module", params=DENIALS, ids=[d.value for d in DENIALS])
def denial(request: pytest.FixtureRequest) -> Denial:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def authd(denial: Denial) -> Iterator[Server]:
    with start_authd(_files(denial), options=AUTHD_OPTIONS) as server:
        yield server


# --- Tests --------------------------------------------------------------------------------


def test_signing_covers_every_zone(denial: Denial) -> None:
    """Each signed zone has its DNSKEY RRset, a signed SOA and the chosen denial records."""
    for zone, signed in signkit.signed_set(denial).items():
        apex = signed.zone().find_node(signed.origin)
        assert apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY) is not None, zone
        assert apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.SOA)
        nsec3param = apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3PARAM)
        if denial is Denial.NSEC:
            assert apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC) is not None, zone
        else:
            assert nsec3param is not None and nsec3param[0].iterations == 0, zone
            assert nsec3param[0].salt == b"", zone
            flags = {
                rd.flags
                for node in signed.zone().nodes.values()
                for rd in node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3) or ()
            }
            assert flags == ({1} if denial is Denial.NSEC3_OPTOUT else {0}), (zone, flags)


def test_peers_disagree_only_as_documented(denial: Denial) -> None:
    undocumented = [
        (p.question, p.nsd, p.knot) for p in peer_replies(denial).values() if rule_for(p) is None
    ]
    assert not undocumented, report(
        f"undocumented NSD (-) vs Knot (+) disagreements, {denial.value}", undocumented
    )


def accepts(rule: Rule, peers: Peers, got: Outcome) -> bool:
    """Whether *got* is a reply *rule* allows.

    Where the peers disagree (a named rule) and both *got* and the peer it is
    compared with are truncated, only the header is compared: what a reply with
    TC carries besides is not specified (RFC 2181 section 9; the client asks
    again over TCP).  Where NSD and Knot agree, everything is compared.
    """
    fields = rule.fields or ALL
    for reply in peers.accepted():
        compare = FIELDS if rule.name and {"TC"} <= got.flags & reply.flags else fields
        if project(got, compare) == project(reply, compare):
            return True
    return False


@pytest.mark.parametrize("zone", list(ZONES))
def test_authd_answers_like_the_peers(denial: Denial, zone: str, authd: Server) -> None:
    replies = peer_replies(denial)
    mismatches = []
    from_authd = ask_many(questions(denial)[zone], authd.port)
    for question, got in from_authd.items():
        peers = replies[question]
        rule = rule_for(peers)
        if rule is None:
            continue  # reported by test_peers_disagree_only_as_documented
        if accepts(rule, peers, got):
            continue
        fields = rule.fields or ALL
        have = project(got, fields)
        accepted = [project(reply, fields) for reply in peers.accepted()]
        source = f"rule {rule.name!r}: NSD or Knot" if rule.name else "NSD and Knot agree"
        if peers.bind is not None:
            source += " or BIND, shown"
        labelled = dataclasses.replace(question, why=f"{question.why}; {source}")
        mismatches.append((labelled, accepted[-1], have))
    assert not mismatches, report(
        f"answers differ in {zone}, {denial.value} (- Knot, + authd)", mismatches
    )
