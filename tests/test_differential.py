"""authd answers as NSD and Knot DNS do, question for question.

Every bundled zone (``zones/*.zone``) and every test zone (``tests/zones/*.zone``)
is loaded into NSD, Knot DNS, BIND and authd at once, on loopback.  The
questions come from the zones themselves (``dnsdiff.questions_for_zone``) plus
a short table below.  For each question the expected reply is taken from the
peers, and authd's reply must be the same: rcode, every header flag, EDNS,
the question as sent, and the three sections as sets of RRsets with TTLs
(owner names compared without regard to case).

Where NSD 4.6 and Knot 3.2 disagree, ``RULES`` names the disagreement, says
which side the RFCs (or authd's stated design) back, and takes the expected
reply from that side.  ``test_peers_disagree_only_as_documented`` keeps that
list honest: a new disagreement fails until it is understood and written down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.name
import pytest
from dnsdiff import Outcome, Question, ask, questions_for_zone, read_zone, report

from harness.peers import HOST, Server, start_authd, start_bind, start_knot, start_nsd

REPO = Path(__file__).resolve().parent.parent
ZONE_DIRS = (REPO / "zones", REPO / "tests" / "zones")

# What authd is configured with.  NSD and Knot run with their defaults; BIND
# (consulted only for ANY over TCP) gets "minimal-responses no-auth" so that
# the RD bit does not change its authority section.
AUTHD_OPTIONS = {"udp_payload_max": 1232, "minimal_responses": False}

# Knot 3.2 stops following a CNAME chain after this many links (and NSD 4.6
# does not stop before 12 of them).
KNOT_CNAME_LIMIT = 5

FIELDS = ("error", "rcode", "opcode", "flags", "question", "edns")
SECTIONS = ("answer", "authority", "additional")
ALL = FIELDS + SECTIONS
ALL_BUT_EDNS = tuple(field for field in ALL if field != "edns")


def zone_files() -> dict[str, Path]:
    """Zone name -> file for every ``*.zone`` in the zone folders."""
    zones: dict[str, Path] = {}
    for folder in ZONE_DIRS:
        for path in sorted(folder.glob("*.zone")):
            zones[path.name.removesuffix(".zone")] = path
    return zones


ZONES = zone_files()
APEXES = [dns.name.from_text(zone) for zone in ZONES]

# Questions the generator does not think of.
OUTSIDE = "(outside our zones)"
EXTRA_QUESTIONS: dict[str, list[Question]] = {
    OUTSIDE: [
        Question(name, qtype, why="outside our zones: REFUSED")
        for name, qtype in (
            ("example.org.", "A"),
            ("com.", "NS"),
            (".", "SOA"),
            ("test.", "SOA"),
            ("arpa.", "NS"),
            ("in-addr.arpa.", "NS"),
            ("example.comm.", "A"),
            ("xexample.com.", "A"),
        )
    ]
    + [
        # Odd messages: RFC 6891 section 6.1.3 (unknown EDNS version: BADVERS),
        # section 6.2.5 (payload below 512 is taken as 512), RFC 1035 section
        # 4.1.1 (opcodes not implemented: NOTIMP), other classes.
        Question("example.com.", "SOA", edns_version=1, why="EDNS version 1: BADVERS"),
        Question("example.com.", "SOA", payload=256, why="payload below 512"),
        # A question nothing else asks, first with payload 256 and then without
        # EDNS: a reply cache that keys "no EDNS" and "payload below 512" alike
        # hands the second an OPT record, which RFC 6891 section 7 forbids.
        Question("www.example.com.", "SRV", payload=256, why="payload 256, fresh question"),
        Question("www.example.com.", "SRV", edns=False, why="no EDNS after payload 256"),
        Question("big.big.test.", "TXT", payload=256, why="payload below 512, large RRset"),
        Question("example.com.", "SOA", opcode="STATUS", why="opcode STATUS: NOTIMP"),
        Question("example.com.", "SOA", qclass="CH", why="class CH for an IN zone"),
        Question("www.example.com.", "A", tcp=True, why="plain question over TCP"),
        Question("big.big.test.", "TXT", tcp=True, why="large RRset over TCP"),
    ],
    # RFC 6672 section 2.2: a DNAME substitution that would exceed 255
    # octets is answered with YXDOMAIN.
    "cname.test": [
        Question(
            f"{'a' * 60}.{'b' * 60}.long.cname.test.", qtype, why="DNAME makes a name too long"
        )
        for qtype in ("A", "TXT")
    ]
    + [Question("x.loop.wild.test.", "A", why="wildcard CNAME loop")],
    # The questions RFC 4592 section 2.2.1 discusses, by name.
    "example": [
        Question(name, qtype, why="RFC 4592 section 2.2.1")
        for name, qtype in (
            ("host3.example.", "MX"),
            ("host3.example.", "A"),
            ("foo.bar.example.", "TXT"),
            ("host1.example.", "MX"),
            ("sub.*.example.", "MX"),
            ("_telnet._tcp.host1.example.", "SRV"),
            ("host.subdel.example.", "A"),
            ("ghost.*.example.", "MX"),
            ("_ssh._tcp.host3.example.", "SRV"),
            ("_ssh._tcp.host1.example.", "SRV"),
        )
    ],
}


def zone_questions() -> dict[str, list[Question]]:
    """Zone name -> its questions, without repeats, in a stable order."""
    table: dict[str, list[Question]] = {}
    for zone, path in ZONES.items():
        questions = questions_for_zone(read_zone(zone, path))
        table[zone] = list(dict.fromkeys(questions + EXTRA_QUESTIONS.get(zone, [])))
    table[OUTSIDE] = EXTRA_QUESTIONS[OUTSIDE]
    return table


QUESTIONS = zone_questions()


def zone_of(qname: str) -> dns.name.Name | None:
    """The loaded zone that answers for *qname* (longest suffix), if any."""
    name = dns.name.from_text(qname)
    best = None
    for apex in APEXES:
        if name.is_subdomain(apex) and (best is None or len(apex) > len(best)):
            best = apex
    return best


# --- Reducing a peer's reply before comparison -------------------------------


def _targets(outcome: Outcome) -> set[str]:
    """Names the answer's NS, MX and SRV records point to (additional candidates)."""
    found: set[str] = set()
    for _name, _class, rdtype, _ttl, rdatas in outcome.answer:
        if rdtype in ("NS", "MX", "SRV"):
            found.update(rd.split()[-1].lower() for rd in rdatas)
    return found


def without_positive_ns(outcome: Outcome) -> Outcome:
    """*outcome* without the apex NS RRset NSD adds to positive answers.

    NSD 4.6 (``minimal-responses: no``, its default) puts the zone's NS RRset in
    the authority section of every positive answer, with its addresses in the
    additional section.  Knot 3.2 does not, and RFC 1034 section 4.3.2 step 3a
    puts only the matching RRs in the answer and nothing in authority; authd
    follows Knot.  This removes exactly that extra: NS RRsets in the authority
    of a non-empty NOERROR answer, and additional records for their targets
    that the answer itself does not call for.
    """
    if outcome.error or outcome.rcode != "NOERROR" or not outcome.answer:
        return outcome
    apexes = {apex.to_text().lower() for apex in APEXES}
    ns = {key for key in outcome.authority if key[2] == "NS" and key[0] in apexes}
    if not ns or len(ns) != len(outcome.authority):
        return outcome
    ns_targets = {rd.split()[-1].lower() for key in ns for rd in key[4]}
    needed = _targets(outcome)
    additional = frozenset(
        key for key in outcome.additional if key[0] not in ns_targets or key[0] in needed
    )
    return dataclasses.replace(outcome, authority=frozenset(), additional=additional)


def _owners(keys: frozenset[tuple[str, str, str, int, frozenset[str]]]) -> set[str]:
    return {key[0] for key in keys}


def bind_any_with_dnskey(
    question: Question, reply: Outcome, from_knot: dict[Question, Outcome]
) -> Outcome:
    """BIND's ANY answer plus the DNSKEY RRset at the name, if there is one.

    BIND 9.18 leaves DNSKEY out of ANY answers from an unsigned zone (with or
    without DO), but RFC 3225 section 3 includes security records that match an
    ANY query whatever DO says; the zones are unsigned so there is no RRSIG.
    """
    if not _any_over_tcp_question(question) or reply.rcode != "NOERROR":
        return reply
    dnskey = from_knot.get(Question(question.qname, "DNSKEY", why="owner"))
    if dnskey is None or dnskey.rcode != "NOERROR":
        return reply
    owner = question.qname.lower()
    extra = {key for key in dnskey.answer if key[2] == "DNSKEY" and key[0] == owner}
    return dataclasses.replace(reply, answer=reply.answer | extra)


# --- Disagreements between the peers, and whom authd follows -----------------


@dataclass(frozen=True, slots=True)
class Peers:
    """The peers' replies to one question (``nsd`` without its positive NS)."""

    question: Question
    nsd_raw: Outcome
    nsd: Outcome
    knot: Outcome
    bind: Outcome


@dataclass(frozen=True, slots=True)
class Rule:
    """A documented way NSD and Knot differ, and the reply authd must give."""

    name: str
    applies: Callable[[Peers], bool]
    expected: Callable[[Peers], Outcome]
    fields: tuple[str, ...]
    why: str


def _any_over_tcp_question(question: Question) -> bool:
    return question.qtype == "ANY" and question.tcp


def _any_over_tcp(peers: Peers) -> bool:
    return _any_over_tcp_question(peers.question)


def _any_reference(peers: Peers) -> Outcome:
    qname = peers.question.qname.lower()
    if any(key[2] == "DNAME" and key[0] != qname for key in peers.bind.answer):
        return peers.knot  # the question was below a DNAME: see the rule's text
    return peers.bind


def _referral_glue_truncated(peers: Peers) -> bool:
    return (
        "TC" in peers.knot.flags
        and "TC" not in peers.nsd.flags
        and not peers.knot.answer
        and any(key[2] == "NS" for key in peers.knot.authority)
    )


def _extra_chain(peers: Peers) -> set[str]:
    """Owners NSD put in the answer beyond Knot's answer (which is a subset)."""
    if not peers.knot.answer < peers.nsd.answer:
        return set()
    return _owners(peers.nsd.answer - peers.knot.answer)


def _leaves_zone(peers: Peers) -> bool:
    if not peers.knot.answer <= peers.nsd.answer:
        return False
    extra = _owners(peers.nsd.answer - peers.knot.answer)
    extra |= _owners(peers.nsd.authority - peers.knot.authority)
    zone = zone_of(peers.question.qname)
    return any(zone_of(owner) != zone for owner in extra)


def _crowded_by_ns(peers: Peers) -> bool:
    return (
        peers.nsd_raw != peers.nsd
        and peers.nsd.additional < peers.knot.additional
        and project(peers.nsd, FIELDS + ("answer", "authority"))
        == project(peers.knot, FIELDS + ("answer", "authority"))
    )


def _ede_only(peers: Peers) -> bool:
    return peers.nsd.edns != peers.knot.edns and project(peers.nsd, ALL_BUT_EDNS) == project(
        peers.knot, ALL_BUT_EDNS
    )


def _notimp(peers: Peers) -> bool:
    return peers.nsd.rcode == peers.knot.rcode == "NOTIMP"


def _long_chain(peers: Peers) -> bool:
    cnames = [key for key in peers.knot.answer if key[2] == "CNAME"]
    return bool(_extra_chain(peers)) and len(cnames) == KNOT_CNAME_LIMIT


RULES: tuple[Rule, ...] = (
    Rule(
        "ANY over TCP",
        _any_over_tcp,
        _any_reference,
        ("error", "rcode", "opcode", "flags", "question", "answer", "authority"),
        "NSD 4.6 and Knot 3.2 answer ANY with a single RRset even over TCP (RFC 8482"
        " section 4.1 allows it on any transport); authd returns all RRsets at the name"
        " over TCP, as BIND does, so BIND is the reference.  BIND leaves the additional"
        " section of ANY answers empty (RFC 1034 section 4.3.2 step 6 makes it optional),"
        " and adds EDE options, so additional and EDNS are not compared.  Below a DNAME,"
        " BIND stops after the synthesised CNAME while NSD and Knot go on with the new"
        " name, as RFC 6672 section 3.2 step 3c says ('Go back to step 1'); there Knot is"
        " the reference.",
    ),
    Rule(
        "RFC 9471 referral glue",
        _referral_glue_truncated,
        lambda peers: peers.knot,
        FIELDS + ("answer", "authority"),
        "When the glue of in-domain name servers does not fit in a referral, Knot sets TC"
        " as RFC 9471 section 3 requires ('MUST set TC'); NSD 4.6 fills what fits and"
        " leaves TC clear.  Knot is the reference.  Which glue a truncated reply carries"
        " is not specified (the resolver retries over TCP), so additional is not compared.",
    ),
    Rule(
        "chain leaves the zone",
        _leaves_zone,
        lambda peers: peers.knot,
        ALL,
        "NSD follows a CNAME (or a DNAME-synthesised CNAME) into another zone the same"
        " server holds, and then answers with that zone's data, rcode and SOA; Knot stops"
        " at the zone boundary.  RFC 1034 section 4.3.2 allows both, RFC 2181 section"
        " 5.4.1 makes the extra data worthless to resolvers, and authd follows CNAMEs only"
        " inside the zone, so Knot is the reference.",
    ),
    Rule(
        "additional crowded out by NS",
        _crowded_by_ns,
        lambda peers: peers.knot,
        ALL,
        "The apex NS RRset NSD adds to positive answers (see without_positive_ns) takes"
        " room that Knot gives to additional records; with it gone, Knot's fuller"
        " additional section is the reference.",
    ),
    Rule(
        "extended error only",
        _ede_only,
        lambda peers: peers.nsd,
        ALL_BUT_EDNS,
        "One side adds an Extended DNS Error (RFC 8914) option the other does not: Knot"
        " EDE 0 'DNAME expansion became too large' with YXDOMAIN (RFC 6672 section 2.2),"
        " NSD EDE 21 'Not Supported' when refusing class CH.  EDE is optional, so the OPT"
        " record is not compared here (NSD is taken for the rest, which is identical).",
    ),
    Rule(
        "NOTIMP shape",
        _notimp,
        lambda peers: peers.bind,
        ALL,
        "For an opcode it does not implement NSD answers NOTIMP with an empty question"
        " section and no OPT record (and echoes every header flag); Knot echoes the"
        " question, RD and CD, and includes OPT; BIND echoes only the ID and opcode (no"
        " question, RD and CD clear: genreport's opcodeflg test) and includes OPT, as RFC"
        " 6891 section 7 requires of responders to a request that had one.  BIND is the"
        " reference.",
    ),
    Rule(
        "long CNAME chain",
        _long_chain,
        lambda peers: peers.nsd,
        ALL,
        f"Knot 3.2 stops after {KNOT_CNAME_LIMIT} CNAME links without saying so; NSD"
        " follows the 12-link chain of cname.test to its end, as RFC 1034 section 4.3.2"
        " step 3a asks.  NSD (without the NS it adds to positive answers) is the"
        " reference.",
    ),
)


@dataclass(frozen=True, slots=True)
class Expected:
    """The reply authd must give to one question, and where it comes from."""

    outcome: Outcome
    rule: str  # "" when NSD and Knot agree
    fields: tuple[str, ...]


def expected_reply(peers: Peers) -> Expected | None:
    """What authd must answer, or None for an undocumented disagreement."""
    if peers.nsd == peers.knot and not _any_over_tcp(peers):
        return Expected(peers.knot, "", ALL)
    for rule in RULES:
        if rule.applies(peers):
            return Expected(rule.expected(peers), rule.name, rule.fields)
    return None


def project(outcome: Outcome, fields: tuple[str, ...]) -> Outcome:
    """*outcome* with every field not in *fields* reset, for a partial comparison."""
    blank = Outcome()
    changes = {f: getattr(blank, f) for f in ALL if f not in fields}
    return dataclasses.replace(outcome, **changes)


# --- Servers -------------------------------------------------------------------


def ask_all(server: Server, questions: list[Question]) -> dict[Question, Outcome]:
    return {question: ask(question, HOST, server.port) for question in questions}


@pytest.fixture(scope="module")
def peer_replies() -> dict[str, dict[Question, Peers]]:
    """Zone -> question -> the peers' replies; the peers run only while asking."""
    everything = [q for questions in QUESTIONS.values() for q in questions]
    bind_extra = "    minimal-responses no-auth;\n"
    with (
        start_nsd(ZONES) as nsd,
        start_knot(ZONES) as knot,
        start_bind(ZONES, extra=bind_extra) as bind,
    ):
        from_nsd = ask_all(nsd, everything)
        from_knot = ask_all(knot, everything)
        from_bind = ask_all(bind, everything)
    with_dnskey = {q: bind_any_with_dnskey(q, from_bind[q], from_knot) for q in everything}
    return {
        zone: {
            q: Peers(q, from_nsd[q], without_positive_ns(from_nsd[q]), from_knot[q], with_dnskey[q])
            for q in questions
        }
        for zone, questions in QUESTIONS.items()
    }


@pytest.fixture(scope="module")
def authd() -> Iterator[Server]:
    with start_authd(ZONES, options=AUTHD_OPTIONS) as server:
        yield server


# --- Tests -----------------------------------------------------------------------


def test_peers_disagree_only_as_documented(peer_replies: dict[str, dict[Question, Peers]]) -> None:
    undocumented = [
        (peers.question, peers.nsd, peers.knot)
        for replies in peer_replies.values()
        for peers in replies.values()
        if expected_reply(peers) is None
    ]
    assert not undocumented, report("undocumented NSD (-) vs Knot (+) disagreements", undocumented)


@pytest.mark.parametrize("zone", list(QUESTIONS))
def test_authd_answers_like_the_peers(
    zone: str, peer_replies: dict[str, dict[Question, Peers]], authd: Server
) -> None:
    mismatches = []
    for question, peers in peer_replies[zone].items():
        expected = expected_reply(peers)
        if expected is None:
            continue  # reported by test_peers_disagree_only_as_documented
        got = ask(question, HOST, authd.port)
        want = project(expected.outcome, expected.fields)
        have = project(got, expected.fields)
        if want != have:
            source = expected.rule or "NSD and Knot agree"
            labelled = dataclasses.replace(question, why=f"{question.why}; {source}")
            mismatches.append((labelled, want, have))
    assert not mismatches, report(f"answers differ in {zone} (- expected, + authd)", mismatches)
