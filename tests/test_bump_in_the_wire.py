"""Bump-in-the-wire signing: authd signs a zone it transfers from an unsigned primary.

A hidden Knot primary serves ``signed.example`` unsigned; authd is its
secondary with ``dnssec: {policy: ...}``: it transfers the zone (AXFR, then
IXFR after an edit on the primary), signs it with its own keys and serves the
signed version to a Knot or BIND secondary downstream (NOTIFY, AXFR, then
IXFR).  After each step the downstream copy equals authd's zone and passes
``dnssec-verify``; a validating unbound trusting the DS of authd's key
validates the edited answer.  A transfer that cannot be signed (the key store
broken) keeps the previous signed version serving, logged as an error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest
import yaml
from reloadkit import Lab, lines, running_lab, soa_serial
from test_signing_fleet import (
    POLICIES,
    S1,
    S2,
    SERVED_WITHIN,
    WWW1,
    WWW2,
    ZONE,
    axfr,
    in_step,
    peer_took_ixfr,
    serial_of,
    start_secondary,
    transfer_lines,
    zone_text,
)

from authd.adapters import keystore
from authd.keyfiles import ds_records
from harness.peers import HOST, Server, free_port, start_authd, start_knot, start_unbound

# Knot journals each reload's differences, so it answers IXFR after an edit.
KNOT_PRIMARY_TEMPLATE = (
    "    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n"
)
QUERY_TIMEOUT = 10.0


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def hidden_primary(lab: Lab, tmp_path: Path, notify_port: int) -> Server:
    """Knot serving the zone unsigned, notifying authd on *notify_port*."""
    source = tmp_path / f"{ZONE}.zone"
    source.write_text(zone_text(S1, WWW1))
    sections = (
        "remote:\n"
        f"  - id: authd\n    address: {HOST}@{notify_port}\n"
        "acl:\n"
        f"  - id: transfer\n    address: {HOST}\n    action: transfer\n"
    )
    server = start_knot(
        {ZONE: source},
        sections=sections,
        template=KNOT_PRIMARY_TEMPLATE,
        zone_options={ZONE: "    notify: authd\n    acl: transfer\n"},
    )
    return lab.add("knot hidden primary (unsigned)", server)


def signing_secondary(
    lab: Lab, tmp_path: Path, port: int, primary: Server, policy: str, downstream: int
) -> Server:
    config = {
        "listen": [{"address": HOST, "port": port}],
        "options": {"state_dir": str(tmp_path / "state"), "notify_timeout": 1, "notify_retries": 5},
        "dnssec_policies": [POLICIES[policy]],
        "zones": [
            {
                "name": ZONE,
                "type": "secondary",
                "file": str(tmp_path / f"{ZONE}.copy"),
                "primaries": [{"address": HOST, "port": primary.port}],
                "allow_notify": [HOST],
                "dnssec": {"policy": policy},
                "allow_transfer": [HOST],
                "notify": "explicit",
                "also_notify": [{"address": HOST, "port": downstream}],
            }
        ],
    }
    server = start_authd(yaml.safe_dump(config, sort_keys=False), port=port)
    return lab.add("authd signing secondary", server)


def edit_primary(primary: Server, text: str) -> None:
    path = next((primary.workdir / "zones").glob(f"{ZONE}*"))
    # Knot compares the file's mtime with the one it loaded: a second later at least.
    time.sleep(max(0.0, path.stat().st_mtime + 1.1 - time.time()))
    path.write_text(text)
    primary.reload()


def signed_answer(port: int, qname: str) -> dns.message.Message:
    query = dns.message.make_query(qname, "A", want_dnssec=True)
    query.flags |= dns.flags.AD
    return dns.query.udp(query, HOST, port=port, timeout=QUERY_TIMEOUT)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_authd_signs_a_zone_from_an_unsigned_primary_and_passes_edits_on_by_ixfr(
    lab: Lab, tmp_path: Path, peer: str, policy: str
) -> None:
    port, downstream_port = free_port(), free_port()
    primary = hidden_primary(lab, tmp_path, port)
    unsigned = axfr(primary.port)
    assert not any(rds.rdtype == 46 for node in unsigned.nodes.values() for rds in node)
    authd = signing_secondary(lab, tmp_path, port, primary, policy, downstream_port)
    downstream = start_secondary(lab, peer, authd.port, downstream_port)
    first = in_step(lab, authd, downstream, peer, "after the first transfer")
    # The signed serial follows the primary's while no re-signing moved it on.
    lab.check(serial_of(first) == S1, f"signed serial {serial_of(first)}, primary {S1}")
    lab.check(first.get_rdataset("@", "DNSKEY") is not None, "no DNSKEY in authd's zone")
    lab.check(bool(lines(authd, r"transferred: serial .* by AXFR from")), "no AXFR in")
    lab.wait(
        "the NOTIFY to the downstream secondary to be acknowledged",
        lambda: lines(authd, rf"notify {re.escape(ZONE)}\. serial {S1} .*: ackn"),
        SERVED_WITHIN,
    )

    edit_primary(primary, zone_text(S2, WWW2))
    second = in_step(lab, authd, downstream, peer, "after the edit on the primary", S1)
    lab.check(serial_of(second) == S2, f"signed serial {serial_of(second)}, primary {S2}")
    www = [rd.to_text() for rd in second.find_rdataset("www", "A")]
    lab.check(www == [WWW2], f"www not changed downstream: {www}")
    lab.check(
        bool(lines(authd, rf"transferred: serial {S2}, .* by IXFR from")),
        "authd did not take the edit by IXFR from the primary",
    )
    lab.wait(
        f"authd's log line for the IXFR of serial {S2} downstream",
        lambda: transfer_lines(authd, "ixfr-incremental", S2),
        SERVED_WITHIN,
    )
    peer_took_ixfr(lab, peer, downstream, second, "after the edit on the primary", True)

    (ds,) = ds_records(keystore.load_keys(str(tmp_path / "state"), dns.name.from_text(ZONE)))
    anchor = f"{ZONE}. 3600 IN DS {ds.to_text()}"
    resolver = lab.add(
        "unbound",
        start_unbound(authd.port, [anchor], stubs={f"{ZONE}.": f"{HOST}@{authd.port}"}),
    )
    reply = signed_answer(resolver.port, f"www.{ZONE}.")
    got = [rd.to_text() for rrset in reply.answer if rrset.rdtype == 1 for rd in rrset]
    lab.check(
        reply.rcode() == dns.rcode.NOERROR and bool(reply.flags & dns.flags.AD) and got == [WWW2],
        f"unbound did not validate www: {reply}",
    )


def test_a_transfer_that_cannot_be_signed_keeps_the_signed_version_serving(
    lab: Lab, tmp_path: Path
) -> None:
    port = free_port()
    primary = hidden_primary(lab, tmp_path, port)
    authd = signing_secondary(lab, tmp_path, port, primary, "nsec", free_port())
    lab.wait("authd to serve the signed zone", lambda: soa_serial(port, ZONE) == S1, SERVED_WITHIN)
    (tmp_path / "state" / "keys" / ZONE / "keys.json").write_text("{not json")
    edit_primary(primary, zone_text(S2, WWW2))
    line = lab.wait_log(
        authd, r"the transferred zone cannot be signed, signed serial \d+ keeps serving", 30.0
    )
    assert "key store" in line, line
    lab.check(soa_serial(port, ZONE) == S1, "authd serves an unsigned or new version")
    zone = axfr(port)
    www = [rd.to_text() for rd in zone.find_rdataset("www", "A")]
    lab.check(www == [WWW1] and zone.get_rdataset("www", "RRSIG", "A") is not None, f"{www}")
