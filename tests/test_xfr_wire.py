"""AXFR out from the compiled form (authd/xfr_wire.py) against dnspython's renderer.

The reference is ``authd.xfr`` with ``compiled=False``: every RRset rendered by
``dns.renderer``, as authd sent transfers before zones were compiled.  For the
bundled and test zones, the same zones signed three ways (NSEC, NSEC3, NSEC3
with opt-out: NSEC3 owners are not compiled names) and a generated zone, both
paths must send the same records (as sets per RRset, and the same multiset of
records), SOA first and last, the question in the first message only, in
messages no larger than asked and no more of them (or bytes) than the
renderer's.  TSIG is verified message by message as a secondary does.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.tsig
import pytest

from authd import xfr
from authd.journal import Journal
from authd.limits import MAX_MESSAGE
from authd.zone import ZoneVersion, load_zone
from harness.signing import Denial
from harness.zonegen import generate
from tests import signkit
from tests.zonekit import zone_from_text

KEY = dns.tsig.Key("wire-key.", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==", "hmac-sha256")


def _load(origin: str, path: Path) -> ZoneVersion:
    result = load_zone(dns.name.from_text(origin), str(path))
    assert result.version is not None, result.errors
    assert result.version.wire is not None
    return result.version


@pytest.fixture(scope="module")
def versions() -> list[ZoneVersion]:
    out = [_load(origin, path) for origin, path in signkit.zone_files().items()]
    for denial in Denial:
        out += [_load(s.origin, s.path) for s in signkit.signed_set(denial).values()]
    text = "\n".join(generate(3000, "gen.test.", 4)) + "\n"
    out.append(zone_from_text(text, "gen.test."))
    return out


def _query(
    version: ZoneVersion, rdtype: str = "AXFR", *, edns: bool = False, signed: bool = False
) -> tuple[dns.message.Message, dns.message.Message]:
    """(the client's query, the query as the server parsed it)."""
    q = dns.message.make_query(version.origin, rdtype, use_edns=0 if edns else None)
    if rdtype == "IXFR":
        q.authority.append(
            dns.rrset.from_text(version.origin, 0, "IN", "SOA", ". . 0 0 0 0 0")  # serial 0
        )
    if signed:
        q.use_tsig(KEY)
    wire = q.to_wire()
    keyring = {KEY.name: KEY} if signed else None
    return q, dns.message.from_wire(wire, keyring=keyring)


def _parse(client: dns.message.Message, messages: list[bytes]) -> list[dns.message.Message]:
    out, ctx = [], None
    for wire in messages:
        msg = dns.message.from_wire(
            wire,
            keyring=client.keyring,
            request_mac=client.mac,
            xfr=True,
            tsig_ctx=ctx,
            multi=True,
            one_rr_per_rrset=True,  # the two SOAs stay apart
        )
        ctx = msg.tsig_ctx
        out.append(msg)
    return out


Record = tuple[str, int, int, int, str]


def _records(client: dns.message.Message, messages: list[bytes], max_size: int) -> list[Record]:
    out = []
    for i, msg in enumerate(_parse(client, messages)):
        assert len(messages[i]) <= max_size
        assert msg.flags & dns.flags.QR and msg.flags & dns.flags.AA
        assert not msg.flags & (dns.flags.TC | dns.flags.AD | dns.flags.CD | dns.flags.RA)
        assert msg.id == client.id and msg.rcode() == 0
        assert len(msg.question) == (1 if i == 0 else 0)
        assert (msg.edns >= 0) == (client.edns >= 0)
        assert msg.had_tsig == client.had_tsig
        for rrset in msg.answer:
            for rd in rrset:
                name = rrset.name.to_text()
                out.append((name, rrset.ttl, rrset.rdtype, rrset.covers, rd.to_text()))
    return out


def _per_rrset(records: list[Record]) -> dict[tuple[object, ...], set[str]]:
    """Records as sets per RRset, with the owner's letter case as sent."""
    out: dict[tuple[object, ...], set[str]] = collections.defaultdict(set)
    for name, ttl, rdtype, covers, rd in records:
        out[(name, ttl, rdtype, covers)].add(rd)
    return dict(out)


def _same(
    version: ZoneVersion, old: list[bytes], new: list[bytes], client: dns.message.Message, size: int
) -> None:
    a, b = _records(client, old, size), _records(client, new, size)
    soa = version.soa[0].to_text()
    assert b[0][2:] == b[-1][2:] == (dns.rdatatype.SOA, 0, soa)
    assert _per_rrset(a) == _per_rrset(b), version.origin
    assert collections.Counter(a) == collections.Counter(b), version.origin
    assert len(b) == version.record_count + 1  # the SOA twice
    # Compressed within each message as the renderer compresses.  The names
    # come in the compiled table's order, not the version's (the same for
    # these zones, one shard each), and order moves compression a little.
    assert len(new) <= len(old)
    assert sum(map(len, new)) <= sum(map(len, old)) * 1.002


@pytest.mark.parametrize(
    ("max_size", "edns", "signed"),
    [
        (MAX_MESSAGE, False, False),
        (MAX_MESSAGE, True, True),
        (512, False, True),
        (700, True, False),
    ],
)
def test_axfr_from_the_compiled_form_sends_what_the_renderer_sent(
    versions: list[ZoneVersion], max_size: int, edns: bool, signed: bool
) -> None:
    hashed = 0
    for version in versions:
        hashed += bool(version.hashed)
        client, parsed = _query(version, edns=edns, signed=signed)
        tsig = (
            xfr.TsigSigner(KEY, int(time.time())) if signed else None
        )  # the client checks the time
        payload = 1232 if edns else None
        kw = {"max_size": max_size, "tsig": tsig, "edns_payload": payload}
        old = xfr.axfr_messages(parsed, version, compiled=False, **kw)  # type: ignore[arg-type]
        new = xfr.axfr_messages(parsed, version, **kw)  # type: ignore[arg-type]
        _same(version, old, new, client, max_size)
    assert hashed >= 2  # NSEC3 zones were among them


def test_ixfr_answered_in_full_comes_from_the_compiled_form(versions: list[ZoneVersion]) -> None:
    for version in versions[-3:]:
        client, parsed = _query(version, "IXFR", signed=True)
        tsig = xfr.TsigSigner(KEY, int(time.time()))  # the client checks it against its clock
        kind, new = xfr.ixfr_response(parsed, version, Journal(()), tsig=tsig)
        assert kind is xfr.IxfrKind.FULL
        _, old_it = xfr.iter_ixfr_messages(parsed, version, Journal(()), tsig=tsig, compiled=False)
        old = list(old_it)
        _same(version, old, new, client, MAX_MESSAGE)
        assert _parse(client, new)[0].question[0].rdtype == dns.rdatatype.IXFR


BIG_RRSET = (
    """$ORIGIN big.test.
$TTL 300
@ SOA ns hostmaster 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.53
"""
    + "".join(f'txt TXT "{i:03d} {"x" * 90}"\n' for i in range(40))
    + "".join(f"mx MX {i} mail{i}.example.\n" for i in range(40))
)


@pytest.mark.parametrize("max_size", [512, 1400])
def test_an_rrset_larger_than_a_message_travels_record_by_record(max_size: int) -> None:
    version = zone_from_text(BIG_RRSET, "big.test.")
    client, parsed = _query(version)
    old = xfr.axfr_messages(parsed, version, max_size=max_size, compiled=False)
    new = xfr.axfr_messages(parsed, version, max_size=max_size)
    assert len(new) > 4
    _same(version, old, new, client, max_size)


def test_a_record_that_fits_no_message_is_an_error() -> None:
    text = BIG_RRSET.split("txt")[0] + f'huge TXT "{"y" * 250}" "{"z" * 250}"\n'
    version = zone_from_text(text, "big.test.")
    _, parsed = _query(version)
    with pytest.raises(ValueError, match="does not fit a"):
        xfr.axfr_messages(parsed, version, max_size=512)


def test_the_question_keeps_the_askers_case_and_the_zone_its_own() -> None:
    version = zone_from_text(BIG_RRSET + "MiXed A 192.0.2.9\n", "big.test.")
    q = dns.message.make_query("bIG.tEST.", "AXFR")
    messages = xfr.axfr_messages(dns.message.from_wire(q.to_wire()), version)
    first = dns.message.from_wire(messages[0])
    assert first.question[0].name.to_text() == "bIG.tEST."
    names = {rrset.name.to_text() for m in messages for rrset in dns.message.from_wire(m).answer}
    assert "MiXed.big.test." in names and not any("IG" in n for n in names)


ROOT = (
    """$ORIGIN .
$TTL 3600
. SOA a.root. hostmaster.root. 1 7200 3600 1209600 300
. NS a.root.
. NS b.root.
a.root A 192.0.2.201
b.root AAAA 2001:db8::202
"""
    + "".join(f'. TXT "root text {i:02d} {"r" * 60}"\n' for i in range(12))
    + "".join(f"tld{i} NS ns{i}.tld{i}.\nns{i}.tld{i} A 192.0.2.{i}\n" for i in range(30))
)


@pytest.mark.parametrize("max_size", [512, MAX_MESSAGE])
def test_the_root_zone_whose_apex_has_no_label_to_compress(max_size: int) -> None:
    version = zone_from_text(ROOT, ".")
    client, parsed = _query(version, signed=True)
    tsig = xfr.TsigSigner(KEY, int(time.time()))  # the client checks it against its clock
    kw = {"max_size": max_size, "tsig": tsig}
    old = xfr.axfr_messages(parsed, version, compiled=False, **kw)  # type: ignore[arg-type]
    new = xfr.axfr_messages(parsed, version, **kw)  # type: ignore[arg-type]
    _same(version, old, new, client, max_size)
