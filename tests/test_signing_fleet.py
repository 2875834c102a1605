"""Knot and BIND secondaries of a zone authd signs inline follow it by IXFR.

authd is the primary of a zone it signs from an unsigned file (``dnssec:
{policy: ...}``, NSEC or NSEC3); a Knot or a BIND secondary takes the signed
zone by AXFR, then after an edit of the unsigned file (SIGHUP, NOTIFY) by IXFR;
in a second test, after a re-signing of the whole zone (the policy's signature
validity changed: every RRSIG is made anew), again by IXFR.  After each step
the secondary's copy, taken from it by AXFR, equals authd's zone (RRSIGs
included) and passes BIND's ``dnssec-verify``.

The re-signing test caught a bug, now fixed: the IXFR that replaces every
RRSIG made authd/xfr.py's ``_grouped`` put RRSIGs of two covered types at one
owner into one RRset, dnspython raised DifferingCovers, and the transfer ended
in an internal error (the secondaries fell back to AXFR).

A re-signing with the file's serial kept (``serial: keep``, the default) must
still raise the served serial, or the secondaries keep the old signatures
until they expire: that case is the last test.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest
import yaml
from reloadkit import Lab, edit_config, lines, running_lab, soa_serial

from harness.peers import (
    HOST,
    Server,
    free_port,
    require_binary,
    start_authd,
    start_bind,
    start_knot,
)

ZONE = "signed.example"
S1, S2 = 2024070101, 2024070102
WWW1, WWW2 = "192.0.2.80", "192.0.2.99"
SERVED_WITHIN = 30.0  # seconds from a SIGHUP at authd to the new serial at the secondary
LOG_WITHIN = 10.0  # seconds for a log line that follows an event already seen
IO_TIMEOUT = 10.0
VERIFY_TIMEOUT = 60.0

POLICIES: dict[str, dict[str, Any]] = {
    "nsec": {"name": "nsec"},
    "nsec3": {"name": "nsec3", "denial": "nsec3"},
}


def zone_text(serial: int, www: str) -> str:
    return (
        f"$ORIGIN {ZONE}.\n"
        "$TTL 300\n"
        f"@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n"
        "@ NS ns1\n"
        "ns1 A 192.0.2.53\n"
        f"www A {www}\n"
        "mail A 192.0.2.25\n"
        "@ MX 10 mail\n"
        "a.b A 192.0.2.90\n"  # b: an empty non-terminal
        '*.wild TXT "wildcard"\n'
        "alias CNAME www\n"
        "sub NS ns.sub\n"  # a delegation with glue: unsigned NS, no RRSIG on the glue
        "ns.sub A 192.0.2.9\n"
    )


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def start_primary(
    lab: Lab, tmp_path: Path, policy: str, peer_port: int, serial_policy: str
) -> tuple[Server, Path]:
    zone_file = tmp_path / f"{ZONE}.zone"
    zone_file.write_text(zone_text(S1, WWW1))
    port = free_port()
    config = {
        "listen": [{"address": HOST, "port": port}],
        "options": {
            "state_dir": str(tmp_path / "state"),
            "notify_timeout": 1,
            "notify_retries": 5,
            "watch": False,  # reloads on SIGHUP only: each step is one reload
        },
        "dnssec_policies": [POLICIES[policy]],
        "zones": [
            {
                "name": ZONE,
                "file": str(zone_file),
                "dnssec": {"policy": policy},
                "serial": serial_policy,
                "allow_transfer": [HOST],
                "notify": "explicit",
                "also_notify": [{"address": HOST, "port": peer_port}],
            }
        ],
    }
    server = start_authd(yaml.safe_dump(config, sort_keys=False), port=port)
    return lab.add("authd primary (inline signing)", server), zone_file


def start_secondary(lab: Lab, peer: str, primary_port: int, port: int) -> Server:
    """*peer* (knot, bind) on *port*, secondary of *primary_port*, transfer allowed
    to loopback (the test takes its copy by AXFR); returns once it serves the zone."""
    if peer == "knot":
        sections = (
            "remote:\n"
            f"  - id: primary\n    address: {HOST}@{primary_port}\n"
            "acl:\n"
            f"  - id: notify\n    address: {HOST}\n    action: notify\n"
            f"  - id: transfer\n    address: {HOST}\n    action: transfer\n"
        )
        server = start_knot(
            {},
            port,
            sections=sections,
            secondaries=[ZONE],
            zone_options={ZONE: "    master: primary\n    acl: [notify, transfer]\n"},
        )
        return lab.add("knot secondary", server)
    options = (
        "type secondary; "
        f"primaries port {primary_port} {{ {HOST}; }}; "
        f'file "{ZONE}.copy"; '
        f"allow-notify {{ {HOST}; }}; "
        f"allow-transfer {{ {HOST}; }}; "
        "request-ixfr yes;"
    )
    server = start_bind({}, port, secondaries=[ZONE], zone_options={ZONE: options})
    return lab.add("bind secondary", server)


def axfr(port: int) -> dns.zone.Zone:
    return dns.zone.from_xfr(dns.query.xfr(HOST, ZONE, port=port, timeout=IO_TIMEOUT))


def verified(lab: Lab, zone: dns.zone.Zone, path: Path, what: str) -> None:
    """*zone* passes ``dnssec-verify`` (-z: authd's default CSK signs everything)."""
    zone.to_file(str(path), relativize=False)
    argv = [require_binary("dnssec-verify"), "-z", "-o", ZONE, str(path)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
    lab.check(
        run.returncode == 0 and "Zone fully signed" in run.stdout + run.stderr,
        f"{what}: dnssec-verify: {run.stdout}{run.stderr}",
    )


def rrsig(zone: dns.zone.Zone, owner: str, covers: str) -> list[str]:
    name = dns.name.from_text(owner, dns.name.from_text(ZONE))
    found = zone.get_rdataset(name, "RRSIG", covers=covers)
    return sorted(rd.to_text() for rd in found) if found is not None else []


def in_step(
    lab: Lab, primary: Server, secondary: Server, peer: str, what: str, after: int | None = None
) -> dns.zone.Zone:
    """Wait until authd serves a serial other than *after* (the reload is done),
    then until the secondary serves it; its copy must equal authd's zone and
    pass dnssec-verify.  Returns the copy."""
    serial = lab.wait(
        f"{what}: authd to serve a serial other than {after}",
        lambda: (s := soa_serial(primary.port, ZONE)) is not None and s != after and s,
        SERVED_WITHIN,
    )
    lab.wait(
        f"{what}: the {peer} secondary to serve serial {serial}",
        lambda: soa_serial(secondary.port, ZONE) == serial,
        SERVED_WITHIN,
    )
    copy, source = axfr(secondary.port), axfr(primary.port)
    lab.check(copy == source, f"{what}: the {peer} copy differs from authd's zone")
    verified(lab, copy, secondary.workdir / f"verify-{serial}.zone", f"{what} ({peer} copy)")
    return copy


def transfer_lines(authd: Server, kind: str, serial: int) -> list[str]:
    return lines(authd, rf"transfer {re.escape(ZONE)}\. .*: {kind}, serial {serial}")


def peer_took_ixfr(
    lab: Lab, peer: str, secondary: Server, copy: dns.zone.Zone, what: str, small: bool
) -> None:
    """The secondary's log shows an incremental transfer to *copy*'s serial
    (*small*: of fewer records than the zone; a re-signing replaces them all)."""
    serial = serial_of(copy)
    if peer == "knot":
        lab.check(
            bool(lines(secondary, r"IXFR, incoming, .* finished"))
            and bool(lines(secondary, rf"serial \d+ -> {serial}"))
            and not lines(secondary, "fallback to AXFR"),
            f"{what}: Knot did not apply an IXFR to serial {serial}",
        )
        return
    # BIND logs no transfer type: an IXFR carries fewer records than the zone.
    done = lines(secondary, rf"Transfer completed: \d+ messages, \d+ records.*\(serial {serial}\)")
    lab.check(bool(done), f"{what}: BIND did not transfer serial {serial}")
    if not small:
        return
    found = re.search(r"messages, (\d+) records", done[-1])
    assert found is not None
    total = sum(len(rds) for node in copy.nodes.values() for rds in node)
    lab.check(int(found[1]) < total, f"{what}: BIND took {found[1]} of {total} records (AXFR)")


def started(
    lab: Lab, tmp_path: Path, peer: str, policy: str, serial_policy: str = "increment"
) -> tuple[Server, Path, Server, dns.zone.Zone]:
    """authd signing the zone and a *peer* secondary holding its first AXFR."""
    peer_port = free_port()
    authd, zone_file = start_primary(lab, tmp_path, policy, peer_port, serial_policy)
    secondary = start_secondary(lab, peer, authd.port, peer_port)
    first = in_step(lab, authd, secondary, peer, "after the first AXFR")
    serial = int(first.find_rdataset("@", "SOA")[0].serial)
    lab.check(bool(transfer_lines(authd, "axfr", serial)), f"authd logged no AXFR to {peer}")
    # The start-up NOTIFY went out before the peer listened: wait for its
    # acknowledged retry so it is not mistaken for the next one.
    lab.wait(
        f"the start-up NOTIFY to {peer} to be acknowledged",
        lambda: lines(authd, rf"notify {re.escape(ZONE)}\. serial {serial} .*#{peer_port}: ackn"),
        SERVED_WITHIN,
    )
    return authd, zone_file, secondary, first


def serial_of(zone: dns.zone.Zone) -> int:
    return int(zone.find_rdataset("@", "SOA")[0].serial)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_peer_secondary_follows_an_edit_by_ixfr_and_its_copy_verifies(
    lab: Lab, tmp_path: Path, peer: str, policy: str
) -> None:
    authd, zone_file, secondary, first = started(lab, tmp_path, peer, policy)
    zone_file.write_text(zone_text(S2, WWW2))
    authd.reload()
    second = in_step(lab, authd, secondary, peer, "after the edit", serial_of(first))
    serial = serial_of(second)
    www = second.find_rdataset("www", "A")
    lab.check([rd.to_text() for rd in www] == [WWW2], f"{peer}: www not changed: {www}")
    lab.check(rrsig(second, "www", "A") != rrsig(first, "www", "A"), "www's RRSIG not re-made")
    lab.check(rrsig(second, "ns1", "A") == rrsig(first, "ns1", "A"), "ns1's RRSIG was re-made")
    lab.wait(
        f"authd's log line for the IXFR of serial {serial} to {peer}",
        lambda: transfer_lines(authd, "ixfr-incremental", serial),
        LOG_WITHIN,
    )
    peer_took_ixfr(lab, peer, secondary, second, "after the edit", True)


@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_peer_secondary_follows_a_resigning_by_ixfr_and_its_copy_verifies(
    lab: Lab, tmp_path: Path, peer: str
) -> None:
    """A shorter signature validity re-signs every RRset: a new serial
    (``serial: increment``) and an IXFR that replaces every RRSIG."""
    authd, _zone_file, secondary, first = started(lab, tmp_path, peer, "nsec")

    def shorter_validity(config: dict[str, Any]) -> None:
        config["dnssec_policies"][0]["signature_validity"] = "10d"

    edit_config(authd, shorter_validity)
    authd.reload()
    second = in_step(lab, authd, secondary, peer, "after the re-signing", serial_of(first))
    serial = serial_of(second)
    lab.check(rrsig(second, "ns1", "A") != rrsig(first, "ns1", "A"), "ns1's RRSIG was kept")
    lab.check(not lines(authd, "internal error"), f"authd failed a transfer of serial {serial}")
    lab.wait(
        f"authd's log line for the IXFR of serial {serial} to {peer}",
        lambda: transfer_lines(authd, "ixfr-incremental", serial),
        LOG_WITHIN,
    )
    peer_took_ixfr(lab, peer, secondary, second, "after the re-signing", False)


def test_a_resigning_with_the_file_serial_kept_raises_the_served_serial(
    lab: Lab, tmp_path: Path
) -> None:
    """With ``serial: keep`` (the default) and an unchanged file, a re-signing
    (here: the policy's validity changed) replaces every RRSIG.  Served under
    the same serial, no secondary ever asks for it (RFC 1996: a NOTIFY's serial
    not newer is ignored; RFC 1034 refresh compares serials), so theirs expire:
    the signed serial goes up (as BIND's inline-signing and Knot do)."""
    peer_port = free_port()
    authd, _zone_file = start_primary(lab, tmp_path, "nsec", peer_port, "keep")
    before = axfr(authd.port)

    def shorter_validity(config: dict[str, Any]) -> None:
        config["dnssec_policies"][0]["signature_validity"] = "10d"

    edit_config(authd, shorter_validity)
    authd.reload()
    lab.wait(
        "the re-signed ns1 RRSIG to be served",
        lambda: rrsig(axfr(authd.port), "ns1", "A") != rrsig(before, "ns1", "A"),
        SERVED_WITHIN,
    )
    assert soa_serial(authd.port, ZONE) != S1
