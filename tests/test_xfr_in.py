"""Reading incoming transfers (authd/xfr_in.py): AXFR and IXFR record streams.

The streams are made from real versions: ``authd.xfr`` renders the messages
authd itself sends for AXFR and IXFR, and their answer sections are read back
the way a secondary receives them.  The fleet tests do the same against BIND
and Knot over the wire; these cover the malformed cases too.
"""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.name
import pytest

from authd.changeset import RR, apply, diff, records
from authd.checks import Severity
from authd.xfr_in import TransferFormatError, read_transfer, zone_text
from authd.zone import ZoneVersion, compile_zone, load_zone
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("example.")
HEAD = """$ORIGIN example.
$TTL 300
@ SOA ns.other. hostmaster {serial} 7200 3600 1209600 300
@ NS ns.other.
"""


def zone(body: str, serial: int) -> ZoneVersion:
    result = compile_zone(ORIGIN, parse_zone_text(HEAD.format(serial=serial) + body, ORIGIN), "t")
    assert not [f for f in result.findings if f.severity is Severity.ERROR]
    assert result.version is not None
    return result.version


V1 = zone("www A 192.0.2.1\nmail MX 10 mx.other.\n", 1)
V2 = zone("www A 192.0.2.2\nmail MX 10 mx.other.\nnew TXT hello\n", 2)
V3 = zone("www A 192.0.2.2\nnew TXT hello\n", 3)


def soa(version: ZoneVersion) -> RR:
    return next(iter(records(version)))


def axfr_stream(version: ZoneVersion) -> list[RR]:
    return [*records(version), soa(version)]


def ixfr_stream(*versions: ZoneVersion) -> list[RR]:
    out = [soa(versions[-1])]
    for old, new in zip(versions, versions[1:], strict=False):
        cs = diff(old, new)
        out += [cs.old_soa, *cs.removed, cs.new_soa, *cs.added]
    return [*out, soa(versions[-1])]


def test_an_axfr_is_the_whole_zone() -> None:
    received = read_transfer(ORIGIN, axfr_stream(V2))
    assert received.full is not None and not received.changesets
    assert set(received.full) == set(records(V2))
    assert received.full[0] == soa(V2)


def test_an_ixfr_is_read_into_changesets_that_apply_to_the_new_version() -> None:
    received = read_transfer(ORIGIN, ixfr_stream(V1, V2, V3))
    assert received.full is None
    assert [cs.serial_to for cs in received.changesets] == [2, 3]
    version = V1
    for cs in received.changesets:
        result = apply(version, cs)
        assert result.version is not None
        version = result.version
    assert version.serial == 3 and version.same_content(V3)


def test_a_lone_soa_means_up_to_date() -> None:
    assert read_transfer(ORIGIN, [soa(V2)]).up_to_date


def test_an_ixfr_answered_with_the_full_zone_reads_as_full() -> None:
    # RFC 1995 section 4: the server may send the zone AXFR-style instead.
    received = read_transfer(ORIGIN, axfr_stream(V3))
    assert received.full is not None and set(received.full) == set(records(V3))


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (lambda: [], "start with its SOA"),
        (lambda: axfr_stream(V2)[1:], "start with its SOA"),
        (lambda: axfr_stream(V2)[:-1], "does not end with the SOA"),
        (lambda: [*records(V2), soa(V1)], "does not end with the SOA"),
        (lambda: [soa(V2), *list(records(V1))[1:2], soa(V1), soa(V2)], "an SOA record inside"),
        (lambda: [soa(V2), soa(V1), *diff(V1, V2).removed, soa(V2)], "without its new SOA"),
        (lambda: [soa(V3), *ixfr_stream(V1, V2)[1:-1], soa(V3)], "do not end at the serial"),
    ],
)
def test_malformed_transfers_are_refused(stream, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TransferFormatError, match=why):
        read_transfer(ORIGIN, stream())


def test_the_stored_copy_reads_back_as_the_same_zone(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parent.parent / "zones" / "example.com.zone"
    origin = dns.name.from_text("example.com.")
    original = load_zone(origin, str(source)).version
    assert original is not None
    copy = tmp_path / "copy.zone"
    copy.write_text("".join(zone_text(original)))
    again = load_zone(origin, str(copy)).version
    assert again is not None
    assert again.serial == original.serial and again.same_content(original)


def test_the_messages_authd_sends_read_back_as_what_was_sent() -> None:
    """End to end through wire form: authd's own AXFR messages, parsed by
    dnspython as a secondary receives them, read back as the zone."""
    from authd import xfr

    query = dns.message.make_query(ORIGIN, "AXFR")
    rrs: list[RR] = []
    for wire in xfr.axfr_messages(query, V2):
        message = dns.message.from_wire(wire, xfr=True, origin=None)
        for rrset in message.answer:
            rrs.extend(RR(rrset.name, rrset.ttl, rd) for rd in rrset)
    received = read_transfer(ORIGIN, rrs)
    assert received.full is not None and set(received.full) == set(records(V2))
