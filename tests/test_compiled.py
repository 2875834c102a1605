"""The compiled answer path (authd.compiled + authd.assemble) answers as the engine does.

The engine (``authd.engine`` + ``authd.render``) is the oracle: every
question of the differential corpus (the bundled zones and the test zones,
all served at once as tests/test_differential.py serves them, with the
questions ``dnsdiff.questions_for_zone`` makes and more transports and
sizes), and random names under generated zones, go through both paths; the
compiled response must parse, equal the engine's section by section (TTLs
and record order inside an RRset aside from the latter), carry the same
flags and EDNS, be no larger, and truncate where the engine does.  Table
tests pin the compiler's and the assembler's own pieces.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import pytest
from dnsdiff import ZoneData, questions_for_zone
from hypothesis import given, settings
from hypothesis import strategies as st

from authd import assemble, compiled, query, wire
from authd.config import Options
from authd.query import Request, Transport
from authd.snapshot import Snapshot, View
from authd.zone import ZoneVersion, load_zone
from harness.zonegen import generate
from tests.zonekit import zone_from_text

REPO = Path(__file__).resolve().parent.parent
ZONE_DIRS = (REPO / "zones", REPO / "tests" / "zones")


def _zone_files() -> dict[dns.name.Name, Path]:
    out = {}
    for folder in ZONE_DIRS:
        for path in sorted(folder.glob("*.zone")):
            out[dns.name.from_text(path.name.removesuffix(".zone"))] = path
    return out


def _load(origin: dns.name.Name, path: Path) -> ZoneVersion:
    result = load_zone(origin, str(path))
    assert result.version is not None, result.errors
    assert result.version.wire is not None
    return result.version


def _snapshot(zones: dict[dns.name.Name, ZoneVersion | None], **options: object) -> Snapshot:
    opts = Options(**{"udp_payload_max": 1232, "minimal_responses": False, **options})  # type: ignore[arg-type]
    return Snapshot((View("default", 0, zones),), opts)


def _zone_data(version: ZoneVersion) -> ZoneData:
    data = ZoneData(version.origin)
    for name, node in version.nodes.items():
        if node:
            data.nodes[name] = {dns.rdatatype.to_text(t) for t in node}
    return data


@dataclasses.dataclass(frozen=True)
class Ask:
    qname: str
    qtype: str
    tcp: bool = False
    edns: bool = True
    payload: int = 1232
    rd: bool = True
    nsid: bool = False


def _wire(ask: Ask) -> bytes:
    options = [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")] if ask.nsid else None
    q = dns.message.make_query(
        ask.qname,
        ask.qtype,
        use_edns=0 if ask.edns else False,
        payload=ask.payload,
        options=options,
        id=0x4242,
    )
    if not ask.rd:
        q.flags &= ~dns.flags.RD
    return q.to_wire()


def _section(rrsets: list[dns.rrset.RRset]) -> list[tuple[object, ...]]:
    return [
        (r.name.to_text().lower(), r.ttl, r.rdclass, r.rdtype, sorted(rd.to_text() for rd in r))
        for r in rrsets
    ]


def _outcome(out: bytes) -> tuple[object, ...]:
    m = dns.message.from_wire(out)
    edns = (m.edns, m.payload, m.ednsflags, [o.to_text() for o in m.options])
    return (
        m.id,
        m.flags,
        m.rcode(),
        [(q.name.to_text(), q.rdtype, q.rdclass) for q in m.question],
        edns,
        _section(m.answer),
        _section(m.authority),
        _section(m.additional),
    )


def both_tokens(
    snapshot: Snapshot, data: bytes, tcp: bool = False
) -> tuple[bytes, object, bytes | None, object]:
    """The engine's response and RRL class, and the compiled path's (None: it declined)."""
    transport = Transport.TCP if tcp else Transport.UDP
    request = Request(data, "192.0.2.1", "127.0.0.1", transport)
    answered = query._answer(request, snapshot)
    (engine_out,) = answered.reply.messages
    key = wire.question_key(data)
    assert key is not None
    limit = query._limit(transport, key.payload, snapshot.options.udp_payload_max)
    got = query._compiled(data, key, snapshot.views[0], snapshot, limit)
    if got is None:
        return engine_out, answered.token, None, None
    return engine_out, answered.token, got[0], got[1]


def both(snapshot: Snapshot, data: bytes, tcp: bool = False) -> tuple[bytes, bytes | None]:
    """The engine's response and the compiled path's (None: it declined)."""
    engine_out, _, out, _ = both_tokens(snapshot, data, tcp)
    return engine_out, out


def check_same(snapshot: Snapshot, data: bytes, tcp: bool = False) -> bool:
    """Assert the compiled path equals the engine on *data*; True when it answered."""
    engine_out, engine_token, out, token = both_tokens(snapshot, data, tcp)
    if out is None:
        return False
    question = dns.message.from_wire(data).question
    assert _outcome(out) == _outcome(engine_out), question
    assert len(out) <= len(engine_out), (len(out), len(engine_out))
    # The same response class for rate limiting (authd.ratelimit.classify).
    assert token == engine_token, (question, token, engine_token)
    return True


@pytest.fixture(scope="module")
def corpus() -> Snapshot:
    return _snapshot({origin: _load(origin, path) for origin, path in _zone_files().items()})


def _asks(version: ZoneVersion) -> list[Ask]:
    asks = []
    for q in questions_for_zone(_zone_data(version)):
        asks.append(Ask(q.qname, q.qtype, q.tcp, q.edns, q.payload, q.rd))
        if q.tcp or not q.edns:
            continue
        # Smaller sizes (truncation), no EDNS, TCP, NSID, for every question.
        asks.append(Ask(q.qname, q.qtype, edns=False))
        asks.append(Ask(q.qname, q.qtype, payload=512))
        asks.append(Ask(q.qname, q.qtype, tcp=True))
        asks.append(Ask(q.qname, q.qtype, nsid=True))
    return asks


def test_corpus_answers_like_the_engine(corpus: Snapshot) -> None:
    random.seed(1)  # dnspython shuffles records in RRsets
    nsid = dataclasses.replace(corpus, options=dataclasses.replace(corpus.options, nsid="authd-1"))
    answered = declined = 0
    for version in corpus.views[0].zones.values():
        assert version is not None
        for ask in _asks(version):
            snap = nsid if ask.nsid else corpus
            if check_same(snap, _wire(ask), ask.tcp):
                answered += 1
            else:
                declined += 1
    # The compiled path must carry the bulk of the corpus, not decline it.
    assert answered > 4 * declined, (answered, declined)


def test_corpus_with_minimal_responses(corpus: Snapshot) -> None:
    snap = dataclasses.replace(
        corpus, options=dataclasses.replace(corpus.options, minimal_responses=True)
    )
    answered = 0
    for version in corpus.views[0].zones.values():
        assert version is not None
        for ask in _asks(version)[::3]:
            answered += check_same(snap, _wire(ask), ask.tcp)
    assert answered > 100


# -- generated zones, random names ---------------------------------------------------

_GENERATED: dict[int, Snapshot] = {}


def _generated(seed: int) -> Snapshot:
    snap = _GENERATED.get(seed)
    if snap is None:
        text = "\n".join(generate(400, "gen.test.", seed)) + "\n"
        snap = _GENERATED[seed] = _snapshot(
            {dns.name.from_text("gen.test."): zone_from_text(text, "gen.test.")}
        )
    return snap


_LABEL = st.sampled_from(["www", "mail", "ns1", "*", "a", "deep", "_sip", "_tcp", "x1", "Www"])


@settings(max_examples=300)
@given(
    seed=st.integers(1, 3),
    labels=st.lists(_LABEL, min_size=0, max_size=3),
    pick=st.integers(0, 10_000),
    qtype=st.sampled_from(["A", "AAAA", "MX", "TXT", "NS", "SRV", "CNAME", "SOA", "PTR", "TYPE65"]),
    payload=st.sampled_from([0, 512, 1232, 4096]),
    tcp=st.booleans(),
)
def test_generated_zones_answer_like_the_engine(
    seed: int, labels: list[str], pick: int, qtype: str, payload: int, tcp: bool
) -> None:
    snap = _generated(seed)
    version = snap.views[0].zones[dns.name.from_text("gen.test.")]
    assert version is not None
    names = sorted(version.nodes)
    base = names[pick % len(names)]
    name = dns.name.Name(tuple(label.encode() for label in labels) + base.labels)
    if len(name.to_wire() or b"") > 255:
        return
    ask = Ask(name.to_text(), qtype, tcp=tcp, edns=payload > 0, payload=max(payload, 512))
    assert check_same(snap, _wire(ask), tcp)


# -- tables: the compiler and the assembler ---------------------------------------------

ZONE = """\
$TTL 300
@       IN SOA ns1 hostmaster 1 7200 3600 1209600 60
        IN NS ns1
        IN NS ns2.other.test.
        IN MX 10 mail
ns1     IN A 192.0.2.1
mail    IN A 192.0.2.25
        IN AAAA 2001:db8::25
www     IN CNAME web
web     IN A 192.0.2.80
        IN A 192.0.2.81
*.wild  IN TXT "wild"
sub     IN NS ns.sub
ns.sub  IN A 192.0.2.53
a.b.c   IN A 192.0.2.9
red     IN DNAME blue.example.test.
blue    IN A 192.0.2.7
x.blue  IN A 192.0.2.8
"""


@pytest.fixture(scope="module")
def table_zone() -> Snapshot:
    return _snapshot({dns.name.from_text("example.test."): zone_from_text(ZONE, "example.test.")})


def test_compiler_notes_compressible_names_only_where_dnspython_compresses() -> None:
    version = zone_from_text(ZONE, "example.test.")
    cz = version.wire
    assert cz is not None
    apex = cz.node(compiled.key_of(version.origin))
    assert apex is not None
    mx = apex.rrsets[dns.rdatatype.MX]
    # MX: preference, then the exchange as a compressible name (RFC 1035 3.3.9).
    ((head, pieces, last),) = mx.parts
    assert head[:2] == b"\x00\x0f" and last == b""
    ((literal, (name, sfx)),) = pieces
    assert literal == b"\x00\x0a" and name == b"\x04mail\x07example\x04test\x00"
    assert [off for _, off in sfx] == [0, 5, 13]
    # A: no names, so the records are final bytes joined by the owner's pointer.
    web = cz.node(b"\x03web\x07example\x04test\x00")
    assert web is not None and web.rrsets[dns.rdatatype.A].tails is not None
    # DNAME's target is never compressed (RFC 6672 section 2.5): final bytes too.
    red = cz.node(b"\x03red\x07example\x04test\x00")
    assert red is not None and red.dname is not None and red.dname.tails is not None


def test_compiler_precomputes_stops_referrals_and_additional() -> None:
    version = zone_from_text(ZONE, "example.test.")
    cz = version.wire
    assert cz is not None
    glue = cz.node(b"\x02ns\x03sub\x07example\x04test\x00")
    assert glue is not None and glue.stop == b"\x03sub\x07example\x04test\x00"
    sub = cz.node(glue.stop)
    assert sub is not None and sub.referral is not None
    assert [r.owner[0] for r in sub.referral.required] == [b"\x02ns\x03sub\x07example\x04test\x00"]
    ent = cz.node(b"\x01b\x01c\x07example\x04test\x00")
    assert ent is not None and not ent.rrsets and ent.stop is None
    apex = cz.node(cz.origin)
    assert apex is not None
    # MX additional: A then AAAA of the exchange; NS additional: in-zone ns1 only.
    assert [r.rdtype for r in apex.extra[dns.rdatatype.MX]] == [1, 28]
    assert [r.owner[0][:4] for r in apex.extra[dns.rdatatype.NS]] == [b"\x03ns1"]


def test_with_serial_recompiles_the_soa_pieces() -> None:
    version = zone_from_text(ZONE, "example.test.").with_serial(77)
    snap = _snapshot({version.origin: version})
    out = check_answer(snap, "nothere.example.test.", "A")
    assert out.authority[0][0].serial == 77
    assert check_answer(snap, "example.test.", "SOA").answer[0][0].serial == 77


def check_answer(snap: Snapshot, qname: str, qtype: str, **kw: object) -> dns.message.Message:
    data = _wire(Ask(qname, qtype, **kw))  # type: ignore[arg-type]
    assert check_same(snap, data, bool(kw.get("tcp")))
    _, out = both(snap, data, bool(kw.get("tcp")))
    assert out is not None
    return dns.message.from_wire(out)


@pytest.mark.parametrize(
    ("qname", "qtype", "rcode", "answer", "authority", "additional"),
    [
        ("example.test.", "MX", 0, 1, 0, 3),  # MX, then mail's A and AAAA, OPT
        ("WWW.Example.TEST.", "A", 0, 2, 0, 1),  # CNAME then the target's two A
        ("nope.example.test.", "A", 3, 0, 1, 1),  # NXDOMAIN, the shared SOA
        ("web.example.test.", "MX", 0, 0, 1, 1),  # NODATA
        ("b.c.example.test.", "A", 0, 0, 1, 1),  # empty non-terminal: NODATA
        ("host.sub.example.test.", "A", 0, 0, 1, 2),  # referral with glue
        ("any.wild.example.test.", "TXT", 0, 1, 0, 1),  # wildcard, owner as asked
        ("www.red.example.test.", "A", 3, 2, 1, 1),  # DNAME, CNAME, its target NXDOMAIN
        ("x.red.example.test.", "A", 0, 3, 0, 1),  # DNAME, CNAME, the target's A
        # RFC 6672 2.2: the substituted name is too long: YXDOMAIN, the DNAME alone,
        # owned by the DNAME's owner (regression: once written as the qname).
        (f"{'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * 44}.red.example.test.", "A", 6, 1, 0, 1),
    ],
)
def test_assembler_table(
    table_zone: Snapshot,
    qname: str,
    qtype: str,
    rcode: int,
    answer: int,
    authority: int,
    additional: int,
) -> None:
    m = check_answer(table_zone, qname, qtype)
    got = (m.rcode(), len(m.answer), len(m.authority), len(m.additional) + (m.edns >= 0))
    assert got == (rcode, answer, authority, additional)


def test_assembler_compresses_owners_to_the_question(table_zone: Snapshot) -> None:
    _, out = both(table_zone, _wire(Ask("web.example.test.", "A")))
    assert out is not None
    # Both answer owners are pointers to the question name at offset 12.
    assert out.count(b"\xc0\x0c\x00\x01\x00\x01") == 2


def test_assembler_declines_what_the_engine_must_answer(table_zone: Snapshot) -> None:
    for qname, qtype in (
        ("example.test.", "ANY"),
        ("sub.example.test.", "DS"),
        ("example.test.", "RRSIG"),
        ("example.org.", "A"),  # not ours: REFUSED with EDE comes from the engine
    ):
        data = _wire(Ask(qname, qtype))
        key = wire.question_key(data)
        assert key is not None
        table = assemble.zone_table(table_zone.views[0].zones)
        assert assemble.respond(data, key, table, 1232, 1232, None, False) is None
    do = dns.message.make_query("example.test.", "SOA", want_dnssec=True).to_wire()
    key = wire.question_key(do)
    assert key is not None
    assert (
        assemble.respond(
            do, key, assemble.zone_table(table_zone.views[0].zones), 1232, 1232, None, False
        )
        is None
    )


def test_truncation_drops_whole_rrsets_as_the_engine_does() -> None:
    lines = ["$TTL 60", "@ IN SOA ns hm 1 1 1 1 1", "@ IN NS ns", "ns IN A 192.0.2.1"]
    lines += [f'big IN TXT "{"x" * 200}{i}"' for i in range(6)]
    lines += [f"many IN NS ns{i}.many" for i in range(12)]
    lines += [f"ns{i}.many IN A 192.0.2.{i}" for i in range(12)]
    lines += [f"ns{i}.many IN AAAA 2001:db8::{i}" for i in range(12)]
    v = zone_from_text("\n".join(lines) + "\n", "t.test.")
    snap = _snapshot({v.origin: v})
    for ask in (
        Ask("big.t.test.", "TXT", edns=False),
        Ask("big.t.test.", "TXT", payload=512),
        Ask("x.many.t.test.", "A", edns=False),
        Ask("x.many.t.test.", "A", payload=600),
        Ask("big.t.test.", "TXT", tcp=True),
    ):
        assert check_same(snap, _wire(ask), ask.tcp)
    engine_out, out = both(snap, _wire(Ask("big.t.test.", "TXT", edns=False)))
    assert out is not None and dns.message.from_wire(out).flags & dns.flags.TC


def test_failed_zone_hides_its_parent_and_is_left_to_the_engine() -> None:
    parent = zone_from_text(ZONE, "example.test.")
    snap = _snapshot({parent.origin: parent, dns.name.from_text("sub.example.test."): None})
    engine_out, out = both(snap, _wire(Ask("www.sub.example.test.", "A")))
    assert out is None and dns.message.from_wire(engine_out).rcode() == 2


# AXFR from the compiled form: tests/test_xfr_wire.py.


def test_quick_renders_the_walks_bytes(corpus: Snapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    """assemble.quick (NXDOMAIN/NODATA one label below an apex, one RRset
    without names) gives byte for byte what respond's walk gives, and carries
    a good share of such queries."""
    random.seed(1)
    datas = []
    for version in corpus.views[0].zones.values():
        assert version is not None
        for ask in _asks(version):
            if not ask.nsid:
                datas.append((_wire(ask), ask.tcp))
    # Random names one label below each apex: the flood's shape.
    flood = len(datas)
    for origin in corpus.views[0].zones:
        for i in range(20):
            datas.append((_wire(Ask(f"r{i}x.{origin}", "A")), False))
            datas.append((_wire(Ask(f"r{i}x.{origin}", "AAAA", edns=False)), False))
    table = assemble.zone_table(corpus.views[0].zones)
    quicks = assemble.quick_table(table)
    udp_max = corpus.options.udp_payload_max

    def limit(data: bytes, tcp: bool) -> tuple[wire.QuestionKey, int]:
        key = wire.question_key(data)
        assert key is not None
        return key, query._limit(Transport.TCP if tcp else Transport.UDP, key.payload, udp_max)

    # The walk alone first: it also fills the negative memos that quick reads.
    walked = []
    for data, tcp in datas:
        key, size = limit(data, tcp)
        walked.append(assemble.respond(data, key, table, size, udp_max, None, False))
    quick = quick_flood = 0
    for i, ((data, tcp), expected) in enumerate(zip(datas, walked, strict=True)):
        key, size = limit(data, tcp)
        got = assemble.quick(data, key, table, quicks, size, udp_max, False)
        if got is not None:
            assert got == expected, dns.message.from_wire(data).question
            quick += 1
            quick_flood += i >= flood
    assert quick > len(datas) // 8, (quick, len(datas))
    # Zones with a wildcard or a DNAME at the apex leave theirs to the walk.
    assert quick_flood > (len(datas) - flood) // 2, (quick_flood, len(datas) - flood)


TARGETS_ZONE = """\
$TTL 300
@        SOA   ns1 host 1 7200 900 1209600 300
@        NS    ns1
@        NS    NS1.Example.Test.
@        NS    ns.elsewhere.test.
@        MX    10 mail
@        MX    20 mail
@        MX    30 b.mail
@        MX    40 ns.sub
@        MX    50 .
srv      SRV   0 0 53 b.mail
srv      SRV   1 0 53 mail
srv      SRV   2 0 53 nowhere
ns1      A     192.0.2.1
mail     AAAA  2001:db8::25
mail     A     192.0.2.25
b.mail   A     192.0.2.26
sub      NS    ns.sub
ns.sub   A     192.0.2.53
"""


@pytest.mark.parametrize(
    ("qname", "qtype", "extra"),
    [
        # Deduplicated (case-insensitively: the NS), in record order; A of every target
        # before any AAAA; the root, out-of-zone, absent and below-cut targets
        # add nothing.
        ("example.test.", "MX", [("mail", 1), ("b.mail", 1), ("mail", 28)]),
        ("example.test.", "NS", [("ns1", 1)]),
        ("srv.example.test.", "SRV", [("b.mail", 1), ("mail", 1), ("mail", 28)]),
    ],
)
def test_additional_targets_follow_the_engine(
    qname: str, qtype: str, extra: list[tuple[str, int]]
) -> None:
    version = zone_from_text(TARGETS_ZONE, "example.test.")
    snap = _snapshot({version.origin: version})
    out = check_answer(snap, qname, qtype)
    got = [(r.name.relativize(version.origin).to_text(), r.rdtype) for r in out.additional]
    assert got == extra


_LABELS = st.sampled_from(["a", "Mail", "x-1", "_tcp", "\\.dot", "\\000", "ns1", "LONG" * 15])


@settings(max_examples=200)
@given(
    st.lists(_LABELS, min_size=0, max_size=3),
    st.sampled_from(["NS", "CNAME", "PTR", "DNAME", "MX", "SRV"]),
    st.integers(0, 65535),
)
def test_fast_rdata_wire_is_dnspythons(labels: list[str], rdtype: str, number: int) -> None:
    target = ".".join(labels) + "." if labels else "."
    text = {
        "MX": f"{number} {target}",
        "SRV": f"{number % 7} {number} {65535 - number} {target}",
    }.get(rdtype, target)
    rd = dns.rdata.from_text("IN", rdtype, text)
    assert compiled._FAST_WIRE[type(rd)](rd) == rd.to_wire()
    # The names found in it are where dnspython's own rendering puts them.
    assert compiled._rdata_wire(rd) == compiled._learn(rd)
