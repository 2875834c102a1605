"""Response rate limiting (``authd.ratelimit``), as tables with an injected clock.

The limiter alone (buckets, refill, window, slip, prefixes, the bounded
table), the response classes the query path gives it (qname and qtype; the
zone for NXDOMAIN; the wildcard; the cut), and ``handle`` with a limiter: UDP
limited on the answer-cache, front-cache and full paths, TCP never, exempt
clients never, the slip's wire format.  The end-to-end tests on real sockets
are in ``test_ratelimit_e2e.py``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest
from zonekit import make_query, snapshot_from_texts

from authd import acl, ratelimit
from authd.config import config_from_dict
from authd.errors import ConfigError
from authd.limits import (
    DEFAULT_RRL_IPV4_PREFIX,
    DEFAULT_RRL_IPV6_PREFIX,
    DEFAULT_RRL_RESPONSES_PER_SECOND,
    DEFAULT_RRL_SLIP,
    DEFAULT_RRL_TABLE_ENTRIES,
    DEFAULT_RRL_WINDOW,
    MAX_RRL_PER_SECOND,
    MAX_RRL_SLIP,
    MAX_RRL_TABLE_ENTRIES,
    MAX_RRL_WINDOW,
    RRL_PREFIX_CACHE,
)
from authd.query import Reply, Request, Transport, handle
from authd.ratelimit import Kind, Limiter, Settings, Verdict
from authd.snapshot import Snapshot, with_fresh_caches

ZONE = """$ORIGIN rrl.test.
$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
www AAAA 2001:db8::2
* TXT "wild"
sub NS ns.sub
ns.sub A 192.0.2.3
"""
T = ("answer", b"\x03www\x03rrl\x04test\x00", 1)
TOKEN = (Kind.ANSWER, T[1], 1)


def _verdicts(limiter: Limiter, n: int, now: float, client: str = "192.0.2.7") -> Counter[str]:
    return Counter(limiter.check(client, TOKEN, now)[0].value for _ in range(n))


# -- the limiter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slip", "expected"),
    [
        (2, {"send": 10, "slip": 45, "drop": 45}),
        (3, {"send": 10, "slip": 30, "drop": 60}),
        (1, {"send": 10, "slip": 90}),
        (0, {"send": 10, "drop": 90}),
    ],
    ids=["slip2", "slip3", "slip1-always", "slip0-never"],
)
def test_a_burst_gets_the_rate_and_the_rest_slips_one_in_slip(slip: int, expected: dict) -> None:
    limiter = Limiter(Settings(responses_per_second=10, slip=slip))
    assert _verdicts(limiter, 100, 1000.0) == Counter(expected)
    assert (limiter.slipped, limiter.dropped) == (expected.get("slip", 0), expected.get("drop", 0))


def test_credit_comes_back_at_the_rate_and_a_flood_gets_about_the_rate() -> None:
    limiter = Limiter(Settings(responses_per_second=10, slip=0))
    sent = 0
    now = 1000.0
    for _ in range(50):  # 5 s of 200 queries a second, in 0.1 s steps
        sent += _verdicts(limiter, 20, now)["send"]
        now += 0.1
    # 10 banked at the start, then 10 a second: 10 + 49 steps x 1 credit.
    assert sent == 10 + 49


def test_the_window_is_the_credit_a_quiet_bucket_banks() -> None:
    limiter = Limiter(Settings(responses_per_second=10, window=5, slip=0))
    assert _verdicts(limiter, 100, 1000.0)["send"] == 50
    assert _verdicts(limiter, 100, 1001.0)["send"] == 10
    assert _verdicts(limiter, 100, 1100.0)["send"] == 50  # quiet long enough: full again


def test_limits_per_kind_and_zero_is_unlimited() -> None:
    limiter = Limiter(Settings(responses_per_second=0, errors_per_second=3, nxdomains_per_second=5))
    answer = Counter(limiter.check("192.0.2.1", TOKEN, 1.0)[0] for _ in range(1000))
    assert answer == {Verdict.SEND: 1000}
    errors = Counter(limiter.check("192.0.2.1", ratelimit.ERROR_TOKEN, 1.0)[0] for _ in range(10))
    assert errors[Verdict.SEND] == 3
    nx = (Kind.NXDOMAIN, b"\x03rrl\x04test\x00", 0)
    assert Counter(limiter.check("192.0.2.1", nx, 1.0)[0] for _ in range(10))[Verdict.SEND] == 5


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        ("192.0.2.1", "192.0.2.254", True),  # one /24
        ("192.0.2.1", "192.0.3.1", False),
        ("2001:db8:0:ff::1", "2001:db8:0:1::2", True),  # one /56
        ("2001:db8:0:100::1", "2001:db8:0:1::2", False),
        ("::ffff:192.0.2.9", "192.0.2.1", True),  # mapped IPv4 counts as IPv4
        ("0.0.0.1", "::1", False),  # the families never share
    ],
)
def test_clients_are_counted_per_prefix(a: str, b: str, shared: bool) -> None:
    assert DEFAULT_RRL_IPV4_PREFIX == 24 and DEFAULT_RRL_IPV6_PREFIX == 56
    limiter = Limiter(Settings(responses_per_second=5, slip=0))
    assert _verdicts(limiter, 5, 1.0, a)["send"] == 5
    assert _verdicts(limiter, 5, 1.0, b)["send"] == (0 if shared else 5)


def test_prefix_lengths_are_configurable() -> None:
    limiter = Limiter(Settings(responses_per_second=5, ipv4_prefix_length=32, slip=0))
    assert _verdicts(limiter, 5, 1.0, "192.0.2.1")["send"] == 5
    assert _verdicts(limiter, 5, 1.0, "192.0.2.2")["send"] == 5


def test_the_table_is_bounded_and_reuses_the_least_recently_used_bucket() -> None:
    limiter = Limiter(Settings(responses_per_second=1, slip=0, table_entries=3))

    def cls(name: str) -> ratelimit.Token:
        return (Kind.ANSWER, dns.name.from_text(name).to_wire(), 1)

    for i in range(1000):  # a spray of classes: memory stays at three buckets
        limiter.check("192.0.2.1", cls(f"n{i}"), 0.0)
        assert len(limiter) <= 3
    assert limiter.check("192.0.2.1", cls("hot"), 0.0)[0] is Verdict.SEND  # credit spent
    limiter.check("192.0.2.1", cls("a"), 0.0)
    # A second later the hot class is used again (one credit earned, spent)...
    assert limiter.check("192.0.2.1", cls("hot"), 1.0)[0] is Verdict.SEND
    limiter.check("192.0.2.1", cls("c"), 1.0)  # ...so these two evict the
    limiter.check("192.0.2.1", cls("d"), 1.0)  # spray's last bucket and "a" instead
    assert len(limiter) == 3
    # Still the same, empty bucket (a reused slot would come with fresh credit).
    assert limiter.check("192.0.2.1", cls("hot"), 1.0)[0] is Verdict.DROP
    assert limiter.check("192.0.2.1", cls("a"), 1.0)[0] is Verdict.SEND  # "a" was new again


def test_the_prefix_memo_is_bounded() -> None:
    limiter = Limiter(Settings(responses_per_second=5))
    for i in range(3 * RRL_PREFIX_CACHE):
        limiter.check(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", TOKEN, 1.0)
        assert len(limiter._prefixes) <= RRL_PREFIX_CACHE


def test_default_table_size_is_bind_s() -> None:
    assert Settings().table_entries == DEFAULT_RRL_TABLE_ENTRIES == 20_000


def test_limiting_start_is_reported_once_per_episode() -> None:
    limiter = Limiter(Settings(responses_per_second=1, slip=0))
    results = [limiter.check("192.0.2.77", TOKEN, 1.0)[1] for _ in range(5)]
    assert results[0] is None and results[2:] == [None, None, None]
    started = results[1]
    assert started == ratelimit.Started("192.0.2.0/24", "answer", "www.rrl.test.")
    limiter.check("192.0.2.77", TOKEN, 3.0)  # credit again: the episode ends
    assert limiter.check("192.0.2.77", TOKEN, 3.0)[1] is not None  # a new one begins


def test_exempt_list_and_reuse_across_reloads() -> None:
    acl_ = config_from_dict(
        {"zones": [], "options": {"rate_limit": {"exempt": ["10.0.0.0/8"]}}}, None, "."
    ).options.rate_limit
    assert acl_ is not None
    limiter = Limiter(acl_)
    assert limiter.exempt("10.1.2.3") and not limiter.exempt("192.0.2.1")
    assert ratelimit.reuse(limiter, dataclasses.replace(acl_, exempt=None)) is limiter
    other = ratelimit.reuse(limiter, dataclasses.replace(acl_, slip=3))
    assert other is not limiter and other is not None
    assert ratelimit.reuse(limiter, None) is None


# -- the response classes --------------------------------------------------------------


def _token(snapshot: Snapshot, qname: str, qtype: str) -> ratelimit.Token:
    """The class the query path gives (qname, qtype), read from the answer cache."""
    snap = with_fresh_caches(snapshot)
    handle(
        Request(make_query(qname, qtype).to_wire(), "192.0.2.1", "127.0.0.1", Transport.UDP), snap
    )
    ((_, token),) = snap.cache.values()
    return token


@pytest.fixture(scope="module")
def zone_snapshot() -> Snapshot:
    return snapshot_from_texts({"rrl.test.": ZONE})


@pytest.mark.parametrize(
    ("a", "b", "same", "kind"),
    [
        (("www.rrl.test.", "A"), ("WWW.rrl.test.", "A"), True, Kind.ANSWER),
        (("www.rrl.test.", "A"), ("ns.rrl.test.", "A"), False, Kind.ANSWER),
        (("www.rrl.test.", "A"), ("www.rrl.test.", "AAAA"), False, Kind.ANSWER),
        (("a.b.rrl.test.", "TXT"), ("x.rrl.test.", "TXT"), True, Kind.ANSWER),  # one wildcard
        (("www.rrl.test.", "MX"), ("www.rrl.test.", "TXT"), True, Kind.NODATA),
        (("a.www.rrl.test.", "A"), ("b.www.rrl.test.", "MX"), True, Kind.NXDOMAIN),  # one zone
        (("a.sub.rrl.test.", "A"), ("b.sub.rrl.test.", "AAAA"), True, Kind.REFERRAL),
        (("www.other.test.", "A"), ("ns.else.test.", "MX"), True, Kind.ERROR),  # REFUSED
    ],
)
def test_response_classes(zone_snapshot: Snapshot, a: tuple, b: tuple, same: bool, kind) -> None:
    ta, tb = _token(zone_snapshot, *a), _token(zone_snapshot, *b)
    assert ta[0] == tb[0] == kind
    assert (ta == tb) is same


# -- the query path --------------------------------------------------------------------


def _limited(zone_snapshot: Snapshot, front: bool, **settings: object) -> Snapshot:
    snap = dataclasses.replace(zone_snapshot, limiter=Limiter(Settings(**settings)))  # type: ignore[arg-type]
    snap = with_fresh_caches(snap)
    if not front:
        snap = dataclasses.replace(snap, front=None)
    return snap


def _send(snap: Snapshot, wire: bytes, client: str, tcp: bool = False, now: float = 1.0) -> Reply:
    transport = Transport.TCP if tcp else Transport.UDP
    return handle(Request(wire, client, "127.0.0.1", transport, now), snap)


def _outcomes(snap: Snapshot, wire: bytes, n: int, client: str, tcp: bool = False) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        reply = _send(snap, wire, client, tcp)
        if not reply.messages:
            seen["dropped"] += 1
            continue
        msg = dns.message.from_wire(reply.messages[0])
        seen["tc" if msg.flags & dns.flags.TC else "answered"] += 1
    return seen


@pytest.mark.parametrize("front", [True, False], ids=["front-cache", "answer-cache"])
@pytest.mark.parametrize("edns", [-1, 0], ids=["plain", "edns"])
def test_one_source_is_limited_another_is_not(
    zone_snapshot: Snapshot, front: bool, edns: int
) -> None:
    snap = _limited(zone_snapshot, front, responses_per_second=20, slip=2)
    wire = make_query("www.rrl.test.", "A", edns=edns).to_wire()
    assert _outcomes(snap, wire, 220, "192.0.2.10") == {"answered": 20, "tc": 100, "dropped": 100}
    assert _outcomes(snap, wire, 20, "198.51.100.1") == {"answered": 20}


def test_tcp_is_never_limited(zone_snapshot: Snapshot) -> None:
    snap = _limited(zone_snapshot, True, responses_per_second=1)
    wire = make_query("www.rrl.test.", "A").to_wire()
    assert _outcomes(snap, wire, 50, "192.0.2.10", tcp=True) == {"answered": 50}
    assert len(snap.limiter) == 0  # type: ignore[arg-type]


def test_exempt_clients_are_not_limited(zone_snapshot: Snapshot) -> None:
    exempt = acl.compile_acl(acl.parse_acl_list(["192.0.2.0/28"], "exempt", {}), {})
    snap = _limited(zone_snapshot, True, responses_per_second=1, exempt=exempt)
    wire = make_query("www.rrl.test.", "A").to_wire()
    assert _outcomes(snap, wire, 50, "192.0.2.10") == {"answered": 50}
    assert _outcomes(snap, wire, 50, "192.0.2.100")["answered"] == 1


def test_the_slow_path_and_errors_are_limited_too(zone_snapshot: Snapshot) -> None:
    snap = _limited(zone_snapshot, False, responses_per_second=5, errors_per_second=2, slip=2)
    # An uncacheable shape (two questions' worth of junk: FORMERR) is an error.
    formerr = make_query("www.rrl.test.", "A").to_wire()[:-2]
    seen = Counter(bool(_send(snap, formerr, "192.0.2.10").messages) for _ in range(10))
    # Two errors, then every second one leaks (errors are not slipped as TC).
    assert seen == {True: 2 + 4, False: 4}


def test_the_slip_is_a_short_truncated_reply(zone_snapshot: Snapshot) -> None:
    snap = _limited(zone_snapshot, True, nxdomains_per_second=1, slip=1)
    query = make_query("NoPe.www.rrl.test.", "TXT", edns=0, payload=4096, do=True, qid=77)
    wire = query.to_wire()
    _send(snap, wire, "192.0.2.10")
    out = _send(snap, wire, "192.0.2.10").messages[0]
    msg = dns.message.from_wire(out)
    assert msg.id == 77 and msg.flags & dns.flags.TC and msg.flags & dns.flags.QR
    assert msg.rcode() == dns.rcode.NXDOMAIN  # the class's rcode is kept
    assert str(msg.question[0].name) == "NoPe.www.rrl.test."
    assert not msg.answer and not msg.authority
    assert msg.edns == 0 and msg.ednsflags & dns.flags.DO and msg.payload == 1232
    assert len(out) < len(wire) + 12


def test_the_default_is_off_and_an_empty_mapping_is_nsds_200(zone_snapshot: Snapshot) -> None:
    assert config_from_dict({"zones": []}, None, ".").options.rate_limit is None
    on = config_from_dict({"zones": [], "options": {"rate_limit": {}}}, None, ".").options
    assert on.rate_limit == Settings()
    assert DEFAULT_RRL_RESPONSES_PER_SECOND == 200 and DEFAULT_RRL_SLIP == 2
    assert DEFAULT_RRL_WINDOW == 1


def test_errors_and_nxdomains_default_to_the_responses_limit() -> None:
    opts = config_from_dict(
        {
            "zones": [],
            "options": {"rate_limit": {"responses_per_second": 7, "errors_per_second": 3}},
        },
        None,
        ".",
    ).options
    assert opts.rate_limit is not None
    assert (opts.rate_limit.errors_per_second, opts.rate_limit.nxdomains_per_second) == (3, 7)


@pytest.mark.parametrize(
    ("rate_limit", "path"),
    [
        (
            {"responses_per_second": MAX_RRL_PER_SECOND + 1},
            "options.rate_limit.responses_per_second",
        ),
        ({"errors_per_second": -1}, "options.rate_limit.errors_per_second"),
        ({"window": 0}, "options.rate_limit.window"),
        ({"window": MAX_RRL_WINDOW + 1}, "options.rate_limit.window"),
        ({"slip": MAX_RRL_SLIP + 1}, "options.rate_limit.slip"),
        ({"ipv4_prefix_length": 33}, "options.rate_limit.ipv4_prefix_length"),
        ({"ipv6_prefix_length": 129}, "options.rate_limit.ipv6_prefix_length"),
        ({"table_entries": MAX_RRL_TABLE_ENTRIES + 1}, "options.rate_limit.table_entries"),
        ({"exempt": ["not-an-acl-name"]}, "options.rate_limit.exempt[0]"),
        ({"burst": 3}, "options.rate_limit.burst"),
        ([1], "options.rate_limit"),
    ],
)
def test_config_errors_name_the_key(rate_limit: object, path: str) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict({"zones": [], "options": {"rate_limit": rate_limit}}, None, ".")
    assert e.value.path == path


def test_a_reload_keeps_the_buckets(tmp_path) -> None:
    from authd.build import plan_snapshot

    zone = tmp_path / "rrl.test.zone"
    zone.write_text(ZONE)
    data = {
        "zones": [{"name": "rrl.test.", "file": str(zone)}],
        "options": {"rate_limit": {"responses_per_second": 3}},
    }
    config = config_from_dict(data, None, str(tmp_path))
    first = plan_snapshot(config, None, 0).snapshot
    again = plan_snapshot(config, first, 1).snapshot
    assert first.limiter is not None and again.limiter is first.limiter
    data["options"] = {"rate_limit": {"responses_per_second": 4}}
    changed = plan_snapshot(config_from_dict(data, None, str(tmp_path)), again, 2).snapshot
    assert changed.limiter is not None and changed.limiter is not first.limiter
    assert dns.name.from_text("rrl.test.") in changed.views[0].zones
