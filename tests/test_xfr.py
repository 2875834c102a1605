"""Outgoing transfers (authd/xfr.py): AXFR (RFC 5936), IXFR (RFC 1995), TSIG (RFC 8945).

Every transfer is checked the way a secondary would receive it: dnspython's
``dns.xfr.Inbound`` state machine applies the messages to a ``dns.zone.Zone``
(with its TSIG verification), and a few tests go through
``dns.query.inbound_xfr`` against a loopback TCP peer serving our messages.

``python tests/test_xfr.py [N]`` measures a zone of N records (default 100000):
the IXFR bytes for a one-record change against the AXFR bytes, and the time
to generate the AXFR.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone
import pytest
from hypothesis import HealthCheck, given, settings
from test_changeset import zone_bodies

from authd.changeset import diff, records
from authd.checks import Severity
from authd.journal import Journal
from authd.limits import MAX_MESSAGE
from authd.xfr import (
    IxfrKind,
    TsigSigner,
    axfr_messages,
    client_serial,
    iter_axfr_messages,
    ixfr_messages,
    ixfr_response,
    plan_ixfr,
)
from authd.zone import ZoneVersion, compile_zone
from authd.zonefile import parse_zone_text
from harness import zonegen

ORIGIN = dns.name.from_text("example.")
KEY = dns.tsig.Key("xfr-key.", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==", "hmac-sha256")
HEAD = """$ORIGIN example.
$TTL 300
@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300
@ NS ns1
@ NS ns.other.
ns1 A 192.0.2.53
"""
BODY = """www A 192.0.2.1
www AAAA 2001:db8::1
a.b.c TXT "below two empty non-terminals"
*.wild MX 10 mail.other.
sub NS ns.sub
sub NS ns.other.
ns.sub A 192.0.2.54
deep.sub A 192.0.2.55
"""


# -- helpers ------------------------------------------------------------------


def zone(body: str, serial: int = 1) -> ZoneVersion:
    text = HEAD.format(serial=serial) + body
    result = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN), "<test>")
    assert not [f for f in result.findings if f.severity is Severity.ERROR], result.findings
    assert result.version is not None
    return result.version


RRSet = set[tuple[dns.name.Name, int, dns.rdata.Rdata]]


def version_rrs(version: ZoneVersion) -> RRSet:
    return {(rr.name, rr.ttl, rr.rdata) for rr in records(version)}


def zone_rrs(z: dns.zone.Zone) -> RRSet:
    return {
        (name, rds.ttl, rd)
        for name, node in z.nodes.items()
        for rds in node.rdatasets
        for rd in rds
    }


def dns_zone(version: ZoneVersion) -> dns.zone.Zone:
    """The secondary's copy of *version*."""
    z = dns.zone.Zone(ORIGIN, relativize=False)
    with z.writer() as txn:
        for rr in records(version):
            txn.add(rr.name, rr.ttl, rr.rdata)
    return z


def request(
    rdtype: str, serial: int | None = None, *, signed: bool = False, edns: bool = False
) -> tuple[dns.message.Message, dns.message.Message]:
    """(the client's query, the query as the server parsed it from the wire)."""
    q = dns.message.make_query(ORIGIN, rdtype, use_edns=0 if edns else None)
    if serial is not None:
        q.authority.append(dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    if signed:
        q.use_tsig(KEY)
    wire = q.to_wire()
    return q, dns.message.from_wire(wire, keyring={KEY.name: KEY})


def signer() -> TsigSigner:
    return TsigSigner(KEY, int(time.time()))


def receive(
    q: dns.message.Message,
    messages: list[bytes],
    z: dns.zone.Zone,
    serial: int | None = None,
    udp: bool = False,
) -> bool:
    """Feed *messages* to dnspython's inbound transfer as ``dns.query`` does; done?"""
    rdtype = q.question[0].rdtype
    ixfr = rdtype == dns.rdatatype.IXFR
    done = False
    ctx = None
    with dns.xfr.Inbound(z, rdtype, serial, udp) as inbound:
        for i, wire in enumerate(messages):
            assert not done, "messages after the end of the transfer"
            r = dns.message.from_wire(
                wire,
                keyring=q.keyring,
                request_mac=q.mac,
                xfr=True,
                origin=None,
                tsig_ctx=ctx,
                multi=not udp,
                one_rr_per_rrset=ixfr,
            )
            assert q.is_response(r, xfr_continuation=i > 0)
            done = inbound.process_message(r)
            ctx = r.tsig_ctx
    return done


def parsed(messages: list[bytes]) -> list[dns.message.Message]:
    return [dns.message.from_wire(w, xfr=True, one_rr_per_rrset=True) for w in messages]


def answer_text(messages: list[bytes]) -> list[str]:
    """Every answer record across the messages, one per line, in order."""
    out = []
    for m in parsed(messages):
        for rrset in m.answer:
            out.extend(rrset.to_text().splitlines())
    return out


def serve_once(
    respond: Callable[[dns.message.Message], list[bytes]],
) -> tuple[int, threading.Thread]:
    """A loopback TCP peer that answers one transfer request with *respond*'s messages."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def run() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.settimeout(10)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                data += conn.recv(65535)
            query = dns.message.from_wire(data[2:], keyring={KEY.name: KEY})
            for wire in respond(query):
                conn.sendall(struct.pack("!H", len(wire)) + wire)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def zonegen_text(n: int, serial: int = 2024010101) -> str:
    """A realistic zone of *n* records from harness/zonegen.py."""
    text = "\n".join(zonegen.generate(n, "example.", seed=7)) + "\n"
    return text.replace("2024010101 ; serial", f"{serial} ; serial")


def big_zone(n: int, serial: int = 2024010101) -> ZoneVersion:
    result = compile_zone(ORIGIN, parse_zone_text(zonegen_text(n, serial), ORIGIN), "<gen>")
    assert result.version is not None
    return result.version


# -- AXFR ---------------------------------------------------------------------


def test_axfr_layout() -> None:
    v = zone(BODY)
    q = dns.message.make_query("ExAmple.", "AXFR")
    q.flags |= dns.flags.RD | dns.flags.CD | dns.flags.AD
    q.id = 4242
    messages = axfr_messages(dns.message.from_wire(q.to_wire()), v)
    assert len(messages) == 1
    (m,) = parsed(messages)
    assert m.id == 4242
    assert m.flags & dns.flags.QR and m.flags & dns.flags.AA and m.flags & dns.flags.RD
    assert not m.flags & (dns.flags.TC | dns.flags.CD | dns.flags.AD | dns.flags.RA)
    assert m.rcode() == 0 and m.opcode() == 0
    assert [str(q.name) for q in m.question] == ["ExAmple."]  # echoed as asked
    first, last = m.answer[0], m.answer[-1]
    assert first.rdtype == last.rdtype == dns.rdatatype.SOA
    assert sum(rrset.rdtype == dns.rdatatype.SOA for rrset in m.answer) == 2
    owners = {str(rrset.name) for rrset in m.answer}
    assert "b.c.example." not in owners and "c.example." not in owners  # ENTs: nothing
    assert {"ns.sub.example.", "deep.sub.example.", "*.wild.example."} <= owners  # glue too
    assert len(m.answer) - 1 == v.record_count  # every record once, the SOA twice
    assert not m.additional and m.edns < 0


def test_axfr_reassembles_to_the_zone() -> None:
    v = zone(BODY)
    q, sq = request("AXFR")
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, axfr_messages(sq, v), z)
    assert zone_rrs(z) == version_rrs(v)
    expected = dns.zone.from_text(HEAD.format(serial=1) + BODY, ORIGIN, relativize=False)
    assert zone_rrs(z) == zone_rrs(expected)


def test_axfr_of_a_large_zone_takes_several_full_messages() -> None:
    v = big_zone(20000)
    q, sq = request("AXFR")
    messages = axfr_messages(sq, v)
    assert len(messages) > 5
    assert all(len(m) <= MAX_MESSAGE for m in messages)
    assert all(len(m) > MAX_MESSAGE - 2000 for m in messages[:-1])  # packed, not sparse
    ms = parsed(messages)
    assert len(ms[0].question) == 1 and all(not m.question for m in ms[1:])
    assert all(m.id == sq.id for m in ms)
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, messages, z)
    assert zone_rrs(z) == version_rrs(v)


def test_axfr_respects_a_small_max_size() -> None:
    v = zone(BODY + "".join(f"h{i} A 10.0.0.{i}\n" for i in range(200)))
    q, sq = request("AXFR")
    messages = axfr_messages(sq, v, max_size=600)
    assert len(messages) > 5 and all(len(m) <= 600 for m in messages)
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, messages, z)
    assert zone_rrs(z) == version_rrs(v)


def test_rrset_too_large_for_one_message_travels_record_by_record() -> None:
    # ~12 kB: loadable (an RRset too big for any 64 KiB message is refused at
    # load, rrset-too-large), but larger than the 4 KiB messages asked for here.
    body = "".join(f'big TXT "{i:05d}{"x" * 200}"\n' for i in range(60))
    v = zone(body)
    q, sq = request("AXFR")
    messages = axfr_messages(sq, v, max_size=4096)
    assert len(messages) >= 3 and all(len(m) <= 4096 for m in messages)
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, messages, z)
    assert zone_rrs(z) == version_rrs(v)


def test_axfr_is_lazy() -> None:
    v = big_zone(20000)
    _, sq = request("AXFR")
    it = iter_axfr_messages(sq, v)
    first = next(it)
    assert dns.message.from_wire(first).question  # built without rendering the rest
    assert [first, *it] == axfr_messages(sq, v)


def test_edns_request_gets_an_opt_in_every_message() -> None:
    v = big_zone(5000)
    q, sq = request("AXFR", edns=True)
    messages = axfr_messages(sq, v, edns_payload=1232)
    assert len(messages) > 1
    for m in parsed(messages):
        assert m.edns == 0 and m.payload == 1232
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, messages, z)
    _, plain = request("AXFR")
    assert all(parsed([w])[0].edns < 0 for w in axfr_messages(plain, v, edns_payload=1232))


def test_wrong_question_is_refused() -> None:
    v = zone("")
    with pytest.raises(ValueError):
        axfr_messages(dns.message.make_query("example.net.", "AXFR"), v)
    with pytest.raises(ValueError):
        axfr_messages(dns.message.make_query(ORIGIN, "IXFR"), v)


# -- TSIG -----------------------------------------------------------------------


def test_signed_axfr_verifies_message_by_message() -> None:
    v = big_zone(8000)
    q, sq = request("AXFR", signed=True)
    messages = axfr_messages(sq, v, tsig=signer())
    assert len(messages) > 2
    assert all(len(m) <= MAX_MESSAGE for m in messages)
    assert all(parsed_tsig(q, messages))
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, messages, z)
    assert zone_rrs(z) == version_rrs(v)


def parsed_tsig(q: dns.message.Message, messages: list[bytes]) -> Iterator[bool]:
    ctx = None
    for wire in messages:
        r = dns.message.from_wire(
            wire, keyring=q.keyring, request_mac=q.mac, xfr=True, tsig_ctx=ctx, multi=True
        )
        yield r.had_tsig
        ctx = r.tsig_ctx


def test_signed_axfr_with_a_tampered_message_fails() -> None:
    v = big_zone(5000)
    q, sq = request("AXFR", signed=True)
    messages = axfr_messages(sq, v, tsig=signer())
    assert len(messages) >= 3
    bad = bytearray(messages[1])
    bad[200] ^= 0x01
    messages[1] = bytes(bad)
    with pytest.raises(dns.tsig.BadSignature):
        receive(q, messages, dns.zone.Zone(ORIGIN, relativize=False))


def test_messages_reordered_fail_verification() -> None:
    v = big_zone(5000)
    q, sq = request("AXFR", signed=True)
    messages = axfr_messages(sq, v, tsig=signer())
    messages[1], messages[2] = messages[2], messages[1]
    with pytest.raises((dns.tsig.BadSignature, dns.exception.FormError)):
        receive(q, messages, dns.zone.Zone(ORIGIN, relativize=False))


def test_signed_request_needs_a_signer_and_only_then() -> None:
    v = zone("")
    _, signed = request("AXFR", signed=True)
    _, plain = request("AXFR")
    with pytest.raises(ValueError, match="must be signed"):
        axfr_messages(signed, v)
    with pytest.raises(ValueError, match="unsigned"):
        axfr_messages(plain, v, tsig=signer())


def test_signed_axfr_through_dns_query() -> None:
    v = big_zone(6000)
    port, thread = serve_once(lambda query: axfr_messages(query, v, tsig=signer()))
    q = dns.message.make_query(ORIGIN, "AXFR")
    q.use_tsig(KEY)
    z = dns.zone.Zone(ORIGIN, relativize=False)
    dns.query.inbound_xfr("127.0.0.1", z, q, port=port, timeout=10, lifetime=30)
    thread.join(10)
    assert zone_rrs(z) == version_rrs(v)


# -- IXFR -------------------------------------------------------------------------

V1 = BODY
V2 = BODY.replace("www A 192.0.2.1", "www A 192.0.2.2").replace("deep.sub A 192.0.2.55\n", "")
V3 = V2.replace("www AAAA", "www 60 AAAA") + "new.name A 192.0.2.77\n"


def versions_and_journal() -> tuple[list[ZoneVersion], Journal]:
    vs = [zone(V1, 1), zone(V2, 2), zone(V3, 3)]
    j = Journal().append(diff(vs[0], vs[1])).append(diff(vs[1], vs[2]))
    return vs, j


@pytest.mark.parametrize("condensed", [True, False])
@pytest.mark.parametrize("start", [0, 1])
def test_ixfr_from_the_journal_brings_the_client_up_to_date(start: int, condensed: bool) -> None:
    vs, j = versions_and_journal()
    q, sq = request("IXFR", vs[start].serial)
    kind, messages = ixfr_response(sq, vs[2], j, condensed=condensed)
    assert kind is IxfrKind.INCREMENTAL
    z = dns_zone(vs[start])
    assert receive(q, messages, z, serial=vs[start].serial)
    assert zone_rrs(z) == version_rrs(vs[2])


def test_ixfr_wire_order() -> None:
    vs, j = versions_and_journal()
    _, sq = request("IXFR", 2)
    lines = answer_text(ixfr_messages(sq, vs[2], j))
    soa = [i for i, line in enumerate(lines) if " SOA " in line]
    assert len(soa) == 4  # current, old, new, current (RFC 1995 section 4)
    assert " 3 7200" in lines[0] and " 2 7200" in lines[soa[1]] and " 3 7200" in lines[soa[2]]
    assert lines[0] == lines[-1]
    removed, added = lines[soa[1] + 1 : soa[2]], lines[soa[2] + 1 : soa[3]]
    assert sorted(removed) == ["www.example. 300 IN AAAA 2001:db8::1"]
    assert sorted(added) == [
        "new.name.example. 300 IN A 192.0.2.77",
        "www.example. 60 IN AAAA 2001:db8::1",
    ]


def test_ixfr_chain_uncondensed_has_one_delta_per_changeset() -> None:
    vs, j = versions_and_journal()
    _, sq = request("IXFR", 1)
    lines = answer_text(ixfr_messages(sq, vs[2], j, condensed=False))
    assert sum(" SOA " in line for line in lines) == 6


def test_unknown_serial_gets_a_full_zone() -> None:
    vs, j = versions_and_journal()
    old = 4294967290  # before 3 in RFC 1982 order, and never in the journal
    q, sq = request("IXFR", old)
    kind, messages = ixfr_response(sq, vs[2], j)
    assert kind is IxfrKind.FULL
    z = dns_zone(zone("old A 192.0.2.9\n", old))
    assert receive(q, messages, z, serial=old)
    assert zone_rrs(z) == version_rrs(vs[2])


def test_journal_not_leading_to_the_served_serial_gets_a_full_zone() -> None:
    vs, j = versions_and_journal()
    v4 = zone(V3 + "x A 192.0.2.8\n", 4)
    assert plan_ixfr(1, v4, j) == (IxfrKind.FULL, [])


@pytest.mark.parametrize("serial", [3, 4, 2**31])  # current, newer, newer by RFC 1982
def test_current_or_newer_serial_gets_one_soa(serial: int) -> None:
    vs, j = versions_and_journal()
    q, sq = request("IXFR", serial)
    kind, messages = ixfr_response(sq, vs[2], j)
    assert kind is IxfrKind.UP_TO_DATE
    (m,) = parsed(messages)
    assert [rrset.to_text() for rrset in m.answer] == [vs[2].soa.to_text()]
    if serial == 3:
        assert receive(q, messages, dns_zone(vs[2]), serial=3)


def test_ixfr_over_udp_that_fits_is_one_message() -> None:
    vs, j = versions_and_journal()
    q, sq = request("IXFR", 2)
    kind, messages = ixfr_response(sq, vs[2], j, udp=True, max_size=512)
    assert kind is IxfrKind.INCREMENTAL and len(messages) == 1 and len(messages[0]) <= 512
    z = dns_zone(vs[1])
    assert receive(q, messages, z, serial=2, udp=True)
    assert zone_rrs(z) == version_rrs(vs[2])


def test_ixfr_over_udp_that_does_not_fit_is_the_soa_alone() -> None:
    v1 = zone(BODY, 1)
    v2 = zone(BODY + "".join(f"h{i} A 10.0.0.{i}\n" for i in range(100)), 2)
    j = Journal().append(diff(v1, v2))
    q, sq = request("IXFR", 1)
    kind, messages = ixfr_response(sq, v2, j, udp=True, max_size=512)
    assert kind is IxfrKind.RETRY_TCP
    (m,) = parsed(messages)
    assert [rrset.to_text() for rrset in m.answer] == [v2.soa.to_text()]
    with pytest.raises(dns.xfr.UseTCP):
        receive(q, messages, dns_zone(v1), serial=1, udp=True)
    # Over TCP the same request gets the changes.
    assert ixfr_response(sq, v2, j)[0] is IxfrKind.INCREMENTAL


def test_full_zone_over_udp_is_the_soa_alone() -> None:
    v = big_zone(20000)
    _, sq = request("IXFR", 5)
    kind, messages = ixfr_response(sq, v, Journal(), udp=True, max_size=1232)
    assert kind is IxfrKind.RETRY_TCP and len(messages) == 1


def test_ixfr_without_soa_is_bad_input() -> None:
    vs, j = versions_and_journal()
    _, sq = request("IXFR")
    assert client_serial(sq) is None
    with pytest.raises(ValueError, match="SOA"):
        ixfr_messages(sq, vs[2], j)


def test_ixfr_across_serial_wrap_around() -> None:
    a = zone(V1, 4294967295)
    b = zone(V2, 1)  # 4294967295 + 2 in serial arithmetic
    j = Journal().append(diff(a, b))
    q, sq = request("IXFR", 4294967295)
    kind, messages = ixfr_response(sq, b, j)
    assert kind is IxfrKind.INCREMENTAL
    z = dns_zone(a)
    assert receive(q, messages, z, serial=4294967295)
    assert zone_rrs(z) == version_rrs(b)
    _, sq1 = request("IXFR", 1)
    assert ixfr_response(sq1, b, j)[0] is IxfrKind.UP_TO_DATE


def test_signed_ixfr_through_dns_query() -> None:
    vs, j = versions_and_journal()
    port, thread = serve_once(lambda query: ixfr_messages(query, vs[2], j, tsig=signer()))
    z = dns_zone(vs[0])
    q, serial = dns.xfr.make_query(z, serial=1, keyring=KEY)
    assert serial == 1
    dns.query.inbound_xfr("127.0.0.1", z, q, port=port, timeout=10, lifetime=30)
    thread.join(10)
    assert zone_rrs(z) == version_rrs(vs[2])


def test_signed_ixfr_spanning_several_messages() -> None:
    a = big_zone(6000, serial=10)
    # Every A record re-pointed: an IXFR far larger than one message.
    text = zonegen_text(6000, serial=11).replace("IN\tA\t10.", "IN\tA\t11.")
    b = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN), "<gen>").version
    assert b is not None
    j = Journal().append(diff(a, b))
    q, sq = request("IXFR", 10, signed=True)
    messages = ixfr_messages(sq, b, j, tsig=signer())
    assert len(messages) > 1 and all(len(m) <= MAX_MESSAGE for m in messages)
    assert all(parsed_tsig(q, messages))
    z = dns_zone(a)
    assert receive(q, messages, z, serial=10)
    assert zone_rrs(z) == version_rrs(b)


# -- properties: any pair of zones, through dnspython -------------------------------


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(zone_bodies(), zone_bodies())
def test_any_ixfr_and_axfr_reassemble_to_the_new_zone(before: str, after: str) -> None:
    # zone_bodies (from test_changeset) draws records for a fixed set of names and types.
    a = zone(before, 100)
    b = zone(after, 101)
    j = Journal().append(diff(a, b))
    q, sq = request("IXFR", 100)
    z = dns_zone(a)
    assert receive(q, ixfr_messages(sq, b, j, max_size=700), z, serial=100)
    assert zone_rrs(z) == version_rrs(b)
    q, sq = request("AXFR")
    z = dns.zone.Zone(ORIGIN, relativize=False)
    assert receive(q, axfr_messages(sq, b, max_size=700), z)
    assert zone_rrs(z) == version_rrs(b)


# -- measurement ----------------------------------------------------------------------


def measure(n: int) -> None:
    t0 = time.perf_counter()
    text = zonegen_text(n, serial=2024010101)
    old = compile_zone(ORIGIN, parse_zone_text(text, ORIGIN), "<gen>").version
    assert old is not None
    t_load = time.perf_counter() - t0
    # One record changes (the first host's A), and the serial goes up.
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if "\tIN\tA\t10." in line)
    lines[k] = lines[k].split("\tIN\tA\t")[0] + "\tIN\tA\t192.0.2.222"
    new_text = "\n".join(lines).replace("2024010101 ; serial", "2024010102 ; serial") + "\n"
    new = compile_zone(ORIGIN, parse_zone_text(new_text, ORIGIN), "<gen>").version
    assert new is not None
    t0 = time.perf_counter()
    cs = diff(old, new)
    t_diff = time.perf_counter() - t0
    journal = Journal().append(cs)
    _, ixfr_q = request("IXFR", old.serial)
    ixfr = ixfr_messages(ixfr_q, new, journal)
    _, axfr_q = request("AXFR")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        axfr = axfr_messages(axfr_q, new)
        times.append(time.perf_counter() - t0)
    _, signed_q = request("AXFR", signed=True)
    t0 = time.perf_counter()
    signed = axfr_messages(signed_q, new, tsig=signer())
    t_signed = time.perf_counter() - t0
    print(f"zone: {new.record_count} records, {len(new.nodes)} names (load {t_load:.2f} s)")
    print(
        f"diff, one record changed: {t_diff * 1000:.0f} ms -> {len(cs.removed)} removed, "
        f"{len(cs.added)} added"
    )
    print(f"IXFR: {len(ixfr)} message, {sum(map(len, ixfr))} bytes")
    print(
        f"AXFR: {len(axfr)} messages, {sum(map(len, axfr))} bytes, "
        f"largest {max(map(len, axfr))}; generated in {min(times):.2f} s (best of 3)"
    )
    print(
        f"AXFR with TSIG: {len(signed)} messages, {sum(map(len, signed))} bytes, {t_signed:.2f} s"
    )


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100000)


def test_grouped_keeps_rrsigs_of_two_covered_types_apart() -> None:
    """An IXFR that replaces the RRSIGs of A and TXT at one owner sends two RRsets
    (one RRset of mixed covers made dnspython raise DifferingCovers)."""
    from authd.xfr import _grouped

    name = dns.name.from_text("www.example.")
    sig = "{} 13 2 300 20300101000000 20200101000000 1234 example. AAAA"
    rrs = [
        (name, 300, dns.rdata.from_text("IN", "RRSIG", sig.format("A"))),
        (name, 300, dns.rdata.from_text("IN", "RRSIG", sig.format("TXT"))),
    ]
    groups = list(_grouped(rrs))
    assert [g.covers for g in groups] == [dns.rdatatype.A, dns.rdatatype.TXT]
