"""The primary/secondary fleet end to end: authd, Knot DNS and BIND transferring zones on loopback.

Every peer is a real process on 127.0.0.1 with its own port (``harness/peers.py``);
every wait is a polling loop with a bounded count; a failing test prints the
logs of every server it started (``Lab``: the teardown prints them and pytest
shows that output only for failures; assertion messages carry them too).

What is covered, with TSIG (hmac-sha256, key ``xfr.``) wherever a peer is
involved:

1. authd primary -> Knot and -> BIND secondaries: AXFR at start; an edit, a
   SIGHUP, a NOTIFY, and the peer fetches by IXFR (authd logs
   ``ixfr-incremental`` for it) and serves the new serial within seconds.
2. Transfer access: outside the ACL -> REFUSED, the right key name with the
   wrong secret -> NOTAUTH/BADSIG, an unknown key -> NOTAUTH/BADKEY, AXFR
   over UDP -> NOTIMP, the right key -> a signed AXFR.
3. BIND and Knot primaries -> authd secondary: AXFR, then NOTIFY + IXFR after
   an edit; with the primary gone, a restarted authd serves its stored copy.
   An IXFR answered with the whole zone is logged as such; a copy past its
   SOA expire answers SERVFAIL (also after a restart) and comes back when
   the primary does, even at the same serial.
4. A chain authd -> authd -> Knot: an edit on the first reaches Knot.
5. kill -9: a secondary killed while receiving a 50,000-record zone (first
   AXFR, later IXFR) restarts with a whole old or new copy, never a mix; a
   primary killed while reloading the big zone comes back serving the file,
   and an IXFR from an older serial is either the right delta (applied with
   ``dns.query.inbound_xfr`` to the old zone and compared with the file's
   zone) or a full zone, never a wrong delta.
6. Figures: IXFR bytes for a one-record change against AXFR bytes, and the
   AXFR time of authd and Knot, for a 100,000-record zone (``harness/xfrfigures.py``).

Figures (edit-to-served times, crash outcomes, transfer sizes and times) are
written to ``<pytest basetemp>/fleet-figures.json`` and printed at the end of
the session.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone
import pytest
import yaml

from harness import xfrfigures as xfr_bench
from harness import zonegen
from harness.peers import (
    HOST,
    Server,
    ServerSet,
    free_port,
    start_authd,
    start_bind,
    start_knot,
)

# -- keys and zones --------------------------------------------------------------------------------

KEY_NAME = "xfr"
SECRET = base64.b64encode(b"authd-fleet-test-key-32-bytes-!!").decode()
WRONG_SECRET = base64.b64encode(b"not-the-fleet-key-32-bytes-long!").decode()
OTHER_SECRET = base64.b64encode(b"another-known-key-not-in-the-acl").decode()
KEY = dns.tsig.Key(KEY_NAME, SECRET, dns.tsig.HMAC_SHA256)
KEYRING = {KEY.name: KEY}

# Polling: every loop below runs at most this many times before it fails.
SERVED_WITHIN = 10.0  # seconds from an edit to the new serial at a peer
TRANSFER_WITHIN = 60.0  # seconds for a first transfer of the 50k zone
BIG_RECORDS = 50_000  # the crash tests' zone
MEASURE_RECORDS = 100_000  # the figures' zone
IO_TIMEOUT = 2.0

# authd options shared by every test: fast retries, files reloaded on SIGHUP only
# (the watcher would reload on its own and blur what a SIGHUP does and when).
AUTHD_OPTIONS: dict[str, Any] = {
    "min_refresh": 5,
    "min_retry": 2,
    "notify_timeout": 1,
    "notify_retries": 3,
    "tsig_fudge": 300,
    "watch": False,
}


def small_zone(
    origin: str, serial: int, www: str = "192.0.2.1", timers: str = "7200 3600 1209600"
) -> str:
    """A ten-record zone; *timers* are the SOA's refresh, retry and expire."""
    return (
        f"$ORIGIN {origin}.\n"
        "$TTL 300\n"
        f"@ SOA ns1 hostmaster {serial} {timers} 300\n"
        "@ NS ns1\n"
        "@ NS ns2\n"
        "ns1 A 192.0.2.53\n"
        "ns2 A 192.0.2.54\n"
        f"www A {www}\n"
        "mail A 192.0.2.25\n"
        "@ MX 10 mail\n"
        'txt TXT "a fleet test zone"\n'
    )


S1, S2 = 2024060101, 2024060102
WWW1, WWW2 = "192.0.2.1", "192.0.2.99"


def authd_yaml(
    port: int,
    state_dir: Path,
    zones: list[dict[str, Any]],
    *,
    acls: dict[str, list[str]] | None = None,
    extra_keys: list[dict[str, str]] | None = None,
    options: dict[str, Any] | None = None,
) -> str:
    config: dict[str, Any] = {
        "listen": [{"address": HOST, "port": port}],
        "keys": [{"name": KEY_NAME, "algorithm": "hmac-sha256", "secret": SECRET}]
        + (extra_keys or []),
        "options": {"state_dir": str(state_dir), **AUTHD_OPTIONS, **(options or {})},
        "zones": zones,
    }
    if acls:
        config["acls"] = acls
    return yaml.safe_dump(config, sort_keys=False)


def remote(port: int) -> dict[str, Any]:
    return {"address": HOST, "port": port, "key": KEY_NAME}


# -- the lab: servers, logs, bounded waits ---------------------------------------------------------


class Lab(ServerSet):
    """The servers of one test; failures carry all of their logs (``harness.peers``)."""


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.stop_all()
        # Captured output: pytest shows it only when the test failed.
        print(lab.logs(tail=400))


FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield FIGURES
    if not FIGURES:
        return
    path = tmp_path_factory.getbasetemp() / "fleet-figures.json"
    path.write_text(json.dumps(FIGURES, indent=2, sort_keys=True))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    text = json.dumps(FIGURES, indent=2, sort_keys=True)
    if reporter is not None:
        reporter.write_line(f"\nfleet figures (also in {path}):\n{text}")
    else:
        print(text)


# -- DNS helpers -----------------------------------------------------------------------------------


def soa_serial(port: int, zone: str) -> int | None:
    """The serial a server answers for *zone* over UDP, None on error or no answer."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def rcode_of(port: int, name: str, rdtype: str) -> int | None:
    query = dns.message.make_query(name, rdtype)
    try:
        return int(dns.query.udp(query, HOST, port=port, timeout=0.5).rcode())
    except (OSError, dns.exception.DNSException):
        return None


def answer(port: int, name: str, rdtype: str) -> list[str]:
    """The rdata texts of *name*/*rdtype*, sorted (empty for NXDOMAIN/NODATA)."""
    query = dns.message.make_query(name, rdtype)
    reply = dns.query.udp(query, HOST, port=port, timeout=IO_TIMEOUT)
    want = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in reply.answer if rrset.rdtype == want for rd in rrset)


def wait_serial(lab: Lab, port: int, zone: str, serial: int, timeout: float, who: str) -> float:
    """Seconds until the server on *port* answers *serial* for *zone*."""
    start = time.monotonic()
    lab.wait(
        f"{who} to serve {zone} serial {serial}", lambda: soa_serial(port, zone) == serial, timeout
    )
    return time.monotonic() - start


def tcp_exchange(wire: bytes, port: int) -> dns.message.Message:
    """Send *wire* over TCP; the first reply, parsed without checking its TSIG."""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        head = _recv(s, 2)
        (length,) = struct.unpack("!H", head)
        data = _recv(s, length)
    return dns.message.from_wire(data, keyring=False)


def _recv(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def log_lines(server: Server, pattern: str) -> list[str]:
    return [line for line in server.read_log().splitlines() if re.search(pattern, line)]


def authd_transfer_line(zone: str, key: str, kind: str, serial: int) -> str:
    return (
        rf"transfer {re.escape(zone)}\. \(view default\) to 127\.0\.0\.1 key "
        rf"{re.escape(key)}\.: {kind}, serial {serial}"
    )


# -- peers configured for transfers ----------------------------------------------------------------

KNOT_KEY = f"key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"
BIND_KEY = f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n'
# A primary that journals the differences of each reload, so it can serve IXFR.
KNOT_PRIMARY_TEMPLATE = (
    "    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n"
)


def knot_secondary(lab: Lab, zone: str, primary_port: int, port: int | None = None) -> Server:
    sections = (
        KNOT_KEY + "remote:\n"
        f"  - id: primary\n    address: {HOST}@{primary_port}\n    key: {KEY_NAME}\n"
        "acl:\n"
        f"  - id: notify_from_primary\n    address: {HOST}\n    action: notify\n"
        f"    key: {KEY_NAME}\n"
    )
    server = start_knot(
        {},
        port,
        sections=sections,
        secondaries=[zone],
        zone_options={zone: "    master: primary\n    acl: notify_from_primary\n"},
    )
    return lab.add("knot secondary", server)


def bind_secondary(lab: Lab, zone: str, primary_port: int, port: int | None = None) -> Server:
    options = (
        "type secondary; "
        f'primaries port {primary_port} {{ {HOST} key "{KEY_NAME}"; }}; '
        f'file "{zone}.copy"; '
        f'allow-notify {{ key "{KEY_NAME}"; }}; '
        "request-ixfr yes;"
    )
    server = start_bind({}, port, top=BIND_KEY, secondaries=[zone], zone_options={zone: options})
    return lab.add("bind secondary", server)


def knot_primary(lab: Lab, zone: str, file: Path, notify_port: int) -> Server:
    sections = (
        KNOT_KEY + "remote:\n"
        f"  - id: authd\n    address: {HOST}@{notify_port}\n    key: {KEY_NAME}\n"
        "acl:\n"
        f"  - id: transfer\n    address: {HOST}\n    action: transfer\n    key: {KEY_NAME}\n"
    )
    server = start_knot(
        {zone: file},
        sections=sections,
        template=KNOT_PRIMARY_TEMPLATE,
        zone_options={zone: "    notify: authd\n    acl: transfer\n"},
    )
    return lab.add("knot primary", server)


def bind_primary(
    lab: Lab, zone: str, file: Path, notify_port: int, max_ixfr_ratio: str = "unlimited"
) -> Server:
    options = (
        "notify explicit; "
        f'also-notify port {notify_port} {{ {HOST} key "{KEY_NAME}"; }}; '
        f'allow-transfer {{ key "{KEY_NAME}"; }}; '
        # Journal each reload's differences; send IXFR however small the zone
        # is (BIND answers AXFR-style when a delta exceeds max-ixfr-ratio of
        # the zone, default 100%, which a one-record change in a ten-record
        # zone does); notify at once rather than after notify-delay.
        f"ixfr-from-differences yes; max-ixfr-ratio {max_ixfr_ratio}; notify-delay 0;"
    )
    server = start_bind({zone: file}, top=BIND_KEY, zone_options={zone: options})
    return lab.add("bind primary", server)


def edit_peer_zone(server: Server, file_name: str, text: str, started: float) -> None:
    """Rewrite a peer's zone file at least 1.1 s after its start (BIND compares mtimes)."""
    time.sleep(max(0.0, started + 1.1 - time.monotonic()))
    (server.workdir / "zones" / file_name).write_text(text)


# -- 1. authd primary -> Knot / BIND secondaries ---------------------------------------------------


@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_authd_primary_to_peer_secondary_axfr_then_notify_and_ixfr(
    lab: Lab, tmp_path: Path, peer: str, figures: dict[str, Any]
) -> None:
    zone = "example.net"
    zone_file = tmp_path / "example.net.zone"
    zone_file.write_text(small_zone(zone, S1, WWW1))
    port, peer_port = free_port(), free_port()
    config = authd_yaml(
        port,
        tmp_path / "state",
        [
            {
                "name": zone,
                "file": str(zone_file),
                "allow_transfer": [f"key {KEY_NAME}"],
                "notify": "explicit",
                "also_notify": [remote(peer_port)],
            }
        ],
    )
    authd = lab.add("authd primary", start_authd(config, port=port))
    start_secondary = knot_secondary if peer == "knot" else bind_secondary
    secondary = start_secondary(lab, zone, port, peer_port)  # returns once it serves S1

    lab.check(soa_serial(peer_port, zone) == S1, f"{peer} does not serve serial {S1}")
    lab.check(answer(peer_port, f"www.{zone}", "A") == [WWW1], f"{peer}: wrong www before")
    lab.check(
        log_lines(authd, authd_transfer_line(zone, KEY_NAME, "axfr", S1)),
        f"authd did not log a TSIG-signed AXFR of serial {S1} to {peer}",
    )

    # authd sent its start-up NOTIFY before the peer listened: it retries
    # until acknowledged.  Waiting for that keeps it apart from the next one.
    lab.wait(
        f"the start-up NOTIFY to {peer} to be acknowledged",
        lambda: log_lines(
            authd, rf"notify {re.escape(zone)}\. serial {S1} to 127\.0\.0\.1#{peer_port}: ackn"
        ),
        2 * SERVED_WITHIN,
    )

    zone_file.write_text(small_zone(zone, S2, WWW2))
    authd.reload()
    elapsed = wait_serial(lab, peer_port, zone, S2, SERVED_WITHIN, peer)
    lab.check(answer(peer_port, f"www.{zone}", "A") == [WWW2], f"{peer}: www not changed")
    lab.wait(
        f"authd's log line for the IXFR to {peer}",
        lambda: log_lines(authd, authd_transfer_line(zone, KEY_NAME, "ixfr-incremental", S2)),
        SERVED_WITHIN,
    )
    lab.check(
        log_lines(authd, rf"notify {re.escape(zone)}\. serial {S2} to 127\.0\.0\.1#{peer_port}: "),
        f"authd did not log the NOTIFY of serial {S2} to {peer}",
    )
    if peer == "knot":
        lab.check(log_lines(secondary, r"IXFR, incoming, .* finished"), "Knot: no IXFR in")
        lab.check(not log_lines(secondary, r"fallback to AXFR"), "Knot fell back to AXFR")
    else:
        lab.check(
            log_lines(secondary, rf"zone {zone}/IN: transferred serial {S2}: TSIG '{KEY_NAME}'"),
            "BIND: no signed transfer of the new serial",
        )
    FIGURES.setdefault("sighup_to_served_seconds", {})[f"authd->{peer}"] = round(elapsed, 3)
    print(f"authd primary -> {peer}: SIGHUP to serial {S2} served in {elapsed:.3f}s")


# -- 2. who may transfer ---------------------------------------------------------------------------


def test_transfer_access_refused_notauth_and_signed(lab: Lab, tmp_path: Path) -> None:
    zone, other = "example.net", "example.com"
    (tmp_path / "net.zone").write_text(small_zone(zone, S1))
    (tmp_path / "com.zone").write_text(small_zone(other, S1))
    port = free_port()
    config = authd_yaml(
        port,
        tmp_path / "state",
        [
            {"name": zone, "file": str(tmp_path / "net.zone"), "allow_transfer": ["key xfr"]},
            # A named ACL that holds another loopback address only.
            {"name": other, "file": str(tmp_path / "com.zone"), "allow_transfer": ["elsewhere"]},
        ],
        acls={"elsewhere": ["127.0.0.2"]},
        extra_keys=[{"name": "other", "algorithm": "hmac-sha256", "secret": OTHER_SECRET}],
        options={"notify_retries": 0},
    )
    lab.add("authd", start_authd(config, port=port))

    def ask(name: str, rdtype: str, key: dns.tsig.Key | None) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        if rdtype == "IXFR":
            soa = dns.rrset.from_text(
                f"{name}.", 0, "IN", "SOA", f"ns1.{name}. h. {S1 - 1} 1 1 1 1"
            )
            query.authority.append(soa)
        if key is not None:
            query.use_tsig({key.name: key}, keyname=key.name)
        return tcp_exchange(query.to_wire(), port)

    cases: list[tuple[str, str, str, dns.tsig.Key | None, int, int | None]] = [
        # zone, qtype, who, key, rcode, TSIG error in the reply (None: no TSIG)
        (zone, "AXFR", "no key", None, dns.rcode.REFUSED, None),
        (zone, "IXFR", "no key", None, dns.rcode.REFUSED, None),
        (
            zone,
            "AXFR",
            "known key not in the ACL",
            dns.tsig.Key("other", OTHER_SECRET, dns.tsig.HMAC_SHA256),
            dns.rcode.REFUSED,
            dns.rcode.NOERROR,
        ),
        (
            zone,
            "AXFR",
            "right name, wrong secret",
            dns.tsig.Key(KEY_NAME, WRONG_SECRET, dns.tsig.HMAC_SHA256),
            dns.rcode.NOTAUTH,
            dns.rcode.BADSIG,
        ),
        (
            zone,
            "AXFR",
            "unknown key name",
            dns.tsig.Key("nosuchkey", SECRET, dns.tsig.HMAC_SHA256),
            dns.rcode.NOTAUTH,
            dns.rcode.BADKEY,
        ),
        (other, "AXFR", "right key, address outside the named ACL", KEY, dns.rcode.REFUSED, 0),
    ]
    for name, rdtype, who, key, rcode, tsig_error in cases:
        reply = ask(name, rdtype, key)
        got = f"{dns.rcode.to_text(reply.rcode())}"
        lab.check(reply.rcode() == rcode, f"{rdtype} {name} ({who}): {got}, wanted {rcode!r}")
        if tsig_error is None:
            lab.check(not reply.had_tsig, f"{rdtype} {name} ({who}): unexpected TSIG")
        else:
            lab.check(reply.had_tsig, f"{rdtype} {name} ({who}): no TSIG in the reply")
            lab.check(
                reply.tsig_error == tsig_error,
                f"{rdtype} {name} ({who}): TSIG error {reply.tsig_error}, wanted {tsig_error}",
            )

    # A refusal to a known key is signed with it (RFC 8945 5.3): it verifies.
    other_key = dns.tsig.Key("other", OTHER_SECRET, dns.tsig.HMAC_SHA256)
    query = dns.message.make_query(zone, "AXFR")
    query.use_tsig({other_key.name: other_key}, keyname=other_key.name)
    reply = dns.query.tcp(query, HOST, port=port, timeout=IO_TIMEOUT)
    lab.check(reply.rcode() == dns.rcode.REFUSED, "signed refusal")

    # AXFR over UDP: NOTIMP, even with the right key.
    query = dns.message.make_query(zone, "AXFR")
    query.use_tsig(KEYRING, keyname=KEY.name)
    reply = dns.query.udp(query, HOST, port=port, timeout=IO_TIMEOUT)
    lab.check(reply.rcode() == dns.rcode.NOTIMP, f"AXFR over UDP: {reply.rcode()!r}")

    # The right key: a whole zone, every message's TSIG checked by dnspython.
    copy = dns.zone.Zone(zone + ".", relativize=False)
    query = dns.message.make_query(zone, "AXFR")
    query.use_tsig(KEYRING, keyname=KEY.name)
    dns.query.inbound_xfr(HOST, copy, query, port=port, timeout=IO_TIMEOUT, lifetime=10)
    expected = dns.zone.from_text(small_zone(zone, S1), zone + ".", relativize=False)
    lab.check(zone_lines(copy) == zone_lines(expected), "signed AXFR: wrong content")


# -- 3. Knot / BIND primary -> authd secondary -----------------------------------------------------


@pytest.mark.parametrize("peer", ["bind", "knot"])
def test_peer_primary_to_authd_secondary_ixfr_on_notify_and_copy_survives_restart(
    lab: Lab, tmp_path: Path, peer: str, figures: dict[str, Any]
) -> None:
    zone = "example.org"
    source = tmp_path / "example.org.zone"
    source.write_text(small_zone(zone, S1, WWW1))
    port = free_port()
    started = time.monotonic()
    primary = (bind_primary if peer == "bind" else knot_primary)(lab, zone, source, port)
    state = tmp_path / "state"
    config = authd_yaml(
        port,
        state,
        [
            {
                "name": zone,
                "type": "secondary",
                "primaries": [remote(primary.port)],
                "allow_notify": [f"key {KEY_NAME}"],
            }
        ],
    )
    authd = lab.add("authd secondary", start_authd(config, port=port))
    wait_serial(lab, port, zone, S1, TRANSFER_WITHIN, "authd")
    lab.check(
        log_lines(authd, rf"zone {zone}\. transferred: serial {S1}, 9 records, by AXFR from "),
        "authd: no AXFR of the first serial",
    )

    edit_peer_zone(primary, source.name, small_zone(zone, S2, WWW2), started)
    primary.reload()
    elapsed = wait_serial(lab, port, zone, S2, SERVED_WITHIN, "authd")
    lab.check(answer(port, f"www.{zone}", "A") == [WWW2], "authd: www not changed")
    lab.check(
        log_lines(authd, rf"notify for {zone}\. from 127\.0\.0\.1: checking primaries"),
        f"authd: no NOTIFY from {peer}",
    )
    lab.check(
        log_lines(
            authd,
            rf"zone {zone}\. transferred: serial {S2}, 9 records, by IXFR from "
            rf"127\.0\.0\.1#{primary.port}",
        ),
        "authd: the new serial did not come by IXFR",
    )
    # The primary's side: it really sent a delta, not an AXFR-style IXFR.
    if peer == "bind":
        lab.check(log_lines(primary, r"IXFR started: TSIG xfr"), "BIND: no IXFR out")
        lab.check(not log_lines(primary, r"AXFR-style IXFR"), "BIND sent a full zone")
    else:
        lab.check(
            log_lines(primary, rf"IXFR, outgoing, .* serial {S1} -> {S2}"), "Knot: no IXFR out"
        )
    # Regression: a second SOA check at start ran a second AXFR beside the
    # first and the two raced on the copy's temp file.
    lab.check(not log_lines(authd, r"transfer of .* failed"), "authd: a transfer failed")
    FIGURES.setdefault("sighup_to_served_seconds", {})[f"{peer}->authd"] = round(elapsed, 3)
    print(f"{peer} primary -> authd: SIGHUP to serial {S2} served in {elapsed:.3f}s")

    # The primary goes away; authd restarts from the copy in its state dir.
    primary.stop()
    authd.stop()
    copy = state / "default" / f"{zone}.zone"
    lab.check(copy.is_file(), f"no stored copy at {copy}")
    again = lab.add("authd secondary, restarted", start_authd(config, port=port))
    lab.check(soa_serial(port, zone) == S2, "restarted authd does not serve the stored copy")
    lab.check(answer(port, f"www.{zone}", "A") == [WWW2], "restarted authd: wrong www")
    lab.check(
        log_lines(
            again, rf"zone {zone}\. loaded: serial {S2}, 9 records from {re.escape(str(copy))}"
        ),
        "restarted authd did not load its copy",
    )


def test_ixfr_answered_with_the_full_zone_is_not_logged_as_a_delta(
    lab: Lab, tmp_path: Path
) -> None:
    # Regression: authd logged "by IXFR" for whatever answered its IXFR
    # request, also a full zone (RFC 1995 section 4), which BIND sends when
    # the delta is larger than max-ixfr-ratio of the zone (here 1%).
    zone = "example.org"
    source = tmp_path / "example.org.zone"
    source.write_text(small_zone(zone, S1, WWW1))
    port = free_port()
    started = time.monotonic()
    primary = bind_primary(lab, zone, source, port, max_ixfr_ratio="1%")
    config = authd_yaml(
        port,
        tmp_path / "state",
        [{"name": zone, "type": "secondary", "primaries": [remote(primary.port)]}],
    )
    authd = lab.add("authd secondary", start_authd(config, port=port))
    wait_serial(lab, port, zone, S1, TRANSFER_WITHIN, "authd")
    edit_peer_zone(primary, source.name, small_zone(zone, S2, WWW2), started)
    primary.reload()
    wait_serial(lab, port, zone, S2, SERVED_WITHIN, "authd")
    lab.check(answer(port, f"www.{zone}", "A") == [WWW2], "authd: www not changed")
    lab.check(log_lines(primary, r"AXFR-style IXFR ended"), "BIND sent a delta after all")
    lab.check(
        log_lines(authd, rf"serial {S2}, 9 records, by IXFR \(answered with the full zone\) from"),
        "authd did not say the IXFR came as a full zone",
    )


def test_secondary_expires_to_servfail_and_serves_again_when_the_primary_returns(
    lab: Lab, tmp_path: Path
) -> None:
    zone = "example.org"
    source = tmp_path / "example.org.zone"
    # refresh 1 s, retry 1 s, expire 4 s.
    source.write_text(small_zone(zone, S1, WWW1, timers="1 1 4"))
    first, port = free_port(), free_port()
    primary_config = authd_yaml(
        first,
        tmp_path / "state-primary",
        [
            {
                "name": zone,
                "file": str(source),
                "allow_transfer": [f"key {KEY_NAME}"],
                "also_notify": [remote(port)],
            }
        ],
    )
    primary = lab.add("authd primary", start_authd(primary_config, port=first))
    config = authd_yaml(
        port,
        tmp_path / "state",
        [
            {
                "name": zone,
                "type": "secondary",
                "primaries": [remote(first)],
                "allow_notify": [f"key {KEY_NAME}"],
            }
        ],
        options={"min_refresh": 1, "min_retry": 1},
    )
    secondary = lab.add("authd secondary", start_authd(config, port=port))
    wait_serial(lab, port, zone, S1, TRANSFER_WITHIN, "the secondary")
    # Refreshes keep the copy alive well past its expire time.
    time.sleep(5)
    lab.check(soa_serial(port, zone) == S1, "the copy expired while the primary answered")

    primary.stop()
    lab.wait(
        "SERVFAIL once the copy expired",
        lambda: rcode_of(port, f"www.{zone}", "A") == dns.rcode.SERVFAIL,
        4 + 3,
    )
    lab.check(log_lines(secondary, rf"zone {zone}\. expired"), "no expiry in the log")

    # A restart does not bring the expired copy back: it is older than expire.
    secondary.stop()
    secondary = lab.add("authd secondary, restarted", start_authd(config, port=port))
    lab.check(rcode_of(port, f"www.{zone}", "A") == dns.rcode.SERVFAIL, "expired copy served")

    # The primary returns with the same serial: the secondary serves again.
    lab.add("authd primary, restarted", start_authd(primary_config, port=first))
    wait_serial(lab, port, zone, S1, SERVED_WITHIN, "the secondary after the primary returned")


# -- 4. authd -> authd -> Knot ---------------------------------------------------------------------


def test_chain_authd_primary_authd_secondary_knot(
    lab: Lab, tmp_path: Path, figures: dict[str, Any]
) -> None:
    zone = "example.net"
    source = tmp_path / "example.net.zone"
    source.write_text(small_zone(zone, S1, WWW1))
    first, middle, knot_port = free_port(), free_port(), free_port()
    primary = lab.add(
        "authd primary",
        start_authd(
            authd_yaml(
                first,
                tmp_path / "state-primary",
                [
                    {
                        "name": zone,
                        "file": str(source),
                        "allow_transfer": [f"key {KEY_NAME}"],
                        "also_notify": [remote(middle)],
                    }
                ],
            ),
            port=first,
        ),
    )
    secondary = lab.add(
        "authd middle",
        start_authd(
            authd_yaml(
                middle,
                tmp_path / "state-middle",
                [
                    {
                        "name": zone,
                        "type": "secondary",
                        "primaries": [remote(first)],
                        "allow_notify": [f"key {KEY_NAME}"],
                        "allow_transfer": [f"key {KEY_NAME}"],
                        "also_notify": [remote(knot_port)],
                    }
                ],
            ),
            port=middle,
        ),
    )
    wait_serial(lab, middle, zone, S1, TRANSFER_WITHIN, "the middle authd")
    knot = knot_secondary(lab, zone, middle, knot_port)
    lab.check(soa_serial(knot_port, zone) == S1, "Knot does not serve the first serial")

    source.write_text(small_zone(zone, S2, WWW2))
    primary.reload()
    elapsed = wait_serial(lab, knot_port, zone, S2, 2 * SERVED_WITHIN, "Knot at the chain's end")
    lab.check(answer(knot_port, f"www.{zone}", "A") == [WWW2], "Knot: www not changed")
    lab.check(
        log_lines(secondary, rf"zone {zone}\. transferred: serial {S2}, 9 records, by IXFR"),
        "the middle authd did not take the change by IXFR",
    )
    lab.wait(
        "the middle authd's IXFR out to Knot",
        lambda: log_lines(secondary, authd_transfer_line(zone, KEY_NAME, "ixfr-incremental", S2)),
        SERVED_WITHIN,
    )
    lab.check(log_lines(knot, r"IXFR, incoming, .* finished"), "Knot: no IXFR in")
    # One changed A record: applied in place (no rebuild), the copy stored after serving.
    lab.check(
        log_lines(secondary, rf"zone {zone}\.: serial {S2} applied in place"),
        "the middle authd rebuilt the zone for a one-record IXFR",
    )
    copy = tmp_path / "state-middle" / "default" / f"{zone}.zone"
    lab.wait(
        "the middle authd's copy of the new serial",
        lambda: copy.is_file() and f"hostmaster.{zone}. {S2} " in copy.read_text(),
        SERVED_WITHIN,
    )
    lab.check(f"www.{zone}. 300 IN A {WWW2}" in copy.read_text(), "the copy lacks the new www")
    FIGURES.setdefault("sighup_to_served_seconds", {})["authd->authd->knot"] = round(elapsed, 3)
    print(f"authd -> authd -> knot: SIGHUP to serial {S2} at Knot in {elapsed:.3f}s")


# -- 5. kill -9 ------------------------------------------------------------------------------------


def zone_lines(zone: dns.zone.Zone) -> set[str]:
    """Every record as text with its TTL: two zones are equal when these sets are."""
    return {
        f"{name} {ttl} {dns.rdatatype.to_text(rd.rdtype)} {rd.to_text()}"
        for name, ttl, rd in zone.iterate_rdatas()
    }


def clone(zone: dns.zone.Zone) -> dns.zone.Zone:
    """A copy that a transfer can change without touching *zone*.

    dnspython's writer copies a node before changing it and swaps in a new
    node table on commit, so a shallow copy of the table is enough.
    """
    copy = dns.zone.Zone(zone.origin, zone.rdclass, relativize=False)
    copy.nodes = dict(zone.nodes)
    return copy


def record_count(zone: dns.zone.Zone) -> int:
    return sum(len(rdataset) for node in zone.nodes.values() for rdataset in node)


@dataclass
class Version:
    serial: int
    zone: dns.zone.Zone
    file: Path
    records: int
    added: list[str]  # names only this and later versions have
    changed: dict[str, str]  # name -> its A address in this version

    @functools.cached_property
    def lines(self) -> set[str]:
        return zone_lines(self.zone)


@dataclass
class BigZone:
    origin: str
    versions: list[Version]


BIG_ORIGIN = "big.test"
PLAIN_HOST = re.compile(r"^[a-z]+\d+$")


def _serial_of(zone: dns.zone.Zone) -> int:
    assert zone.origin is not None
    soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
    assert soa is not None
    return int(soa[0].serial)


def _next_version(
    prev: Version, k: int, hosts: list[dns.name.Name], folder: Path, origin: dns.name.Name
) -> Version:
    """*prev* with the serial bumped, 20 addresses changed, 5 hosts removed and 10 TXT added."""
    zone = clone(prev.zone)
    serial = prev.serial + 1
    changed: dict[str, str] = {}
    added: list[str] = []
    with zone.writer() as txn:
        soa = txn.get(origin, dns.rdatatype.SOA)
        txn.replace(origin, dns.rdataset.from_rdata(soa.ttl, soa[0].replace(serial=serial)))
        step = len(hosts) // 20
        for i in range(20):
            name = hosts[i * step + 1]
            address = f"198.18.{k}.{i + 1}"
            txn.replace(name, dns.rdataset.from_text("IN", "A", 3600, address))
            changed[name.to_text()] = address
        for i in range(5):
            txn.delete(hosts[i * step + 2 + k])
        for i in range(10):
            name = dns.name.from_text(f"crash-v{k}-{i}", origin)
            txn.add(name, dns.rdataset.from_text("IN", "TXT", 300, f'"version {k} record {i}"'))
            added.append(name.to_text())
    file = folder / f"big-v{k}.zone"
    zone.to_file(str(file), relativize=False)
    return Version(serial, zone, file, record_count(zone), added, changed)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigZone:
    """A generated 50,000-record zone and four later versions of it, as files and as zones."""
    folder = tmp_path_factory.mktemp("big")
    base_file = folder / "big-v1.zone"
    zonegen.write_zone(str(base_file), BIG_RECORDS, BIG_ORIGIN)
    origin = dns.name.from_text(BIG_ORIGIN)
    base = dns.zone.from_file(str(base_file), origin, relativize=False)
    assert record_count(base) == BIG_RECORDS
    # Hosts with a lone A record, in zone order; editing them breaks no check.
    hosts = [
        name
        for name, node in base.nodes.items()
        if len(name.labels) == len(origin.labels) + 1
        and PLAIN_HOST.match(name.labels[0].decode())
        and [rds.rdtype for rds in node] == [dns.rdatatype.A]
    ]
    first = Version(_serial_of(base), base, base_file, BIG_RECORDS, [], {})
    versions = [first]
    for k in range(2, 6):
        versions.append(_next_version(versions[-1], k, hosts, folder, origin))
    return BigZone(BIG_ORIGIN, versions)


def check_served_version(
    lab: Lab, server: Server, big: BigZone, allowed: list[Version], what: str
) -> Version | None:
    """Which of *allowed* the server serves (checked by its record count and spot
    checks at both ends of the zone), or None when it serves no copy."""
    serial = soa_serial(server.port, big.origin)
    if serial is None:
        return None
    version = next((v for v in allowed if v.serial == serial), None)
    if version is None:
        lab.fail(f"{what}: serial {serial}, not one of {[v.serial for v in allowed]}")
    assert version is not None
    loaded = log_lines(
        server,
        rf"zone {re.escape(big.origin)}\. (loaded|transferred): serial {serial}, \d+ records",
    )
    lab.check(loaded, f"{what}: no load line for serial {serial}")
    count = int(re.search(r"(\d+) records", loaded[-1]).group(1))  # type: ignore[union-attr]
    lab.check(
        count == version.records,
        f"{what}: serial {serial} with {count} records, the version has {version.records}",
    )
    # Spot checks: this version's edits are there, a later version's are not.
    for name in version.added[:3] + version.added[-2:]:
        lab.check(answer(server.port, name, "TXT"), f"{what}: {name} missing")
    for name, address in list(version.changed.items())[::4]:
        got = answer(server.port, name, "A")
        lab.check(got == [address], f"{what}: {name} A {got}, the version has {address}")
    later = [v for v in big.versions if v.serial > version.serial]
    if later:
        name = later[0].added[0]  # (the zone's wildcard A answers it: NODATA, not NXDOMAIN)
        lab.check(
            answer(server.port, name, "TXT") == [],
            f"{what}: {name} TXT of serial {later[0].serial} is there at serial {serial}",
        )
    return version


def test_secondary_killed_mid_transfer_restarts_with_a_whole_copy(
    lab: Lab, tmp_path: Path, big: BigZone, figures: dict[str, Any]
) -> None:
    v1, v2 = big.versions[0], big.versions[1]
    zone_file = tmp_path / "primary.zone"
    shutil.copyfile(v1.file, zone_file)
    primary_port = free_port()
    primary = lab.add(
        "authd primary",
        start_authd(
            authd_yaml(
                primary_port,
                tmp_path / "pstate",
                [
                    {
                        "name": big.origin,
                        "file": str(zone_file),
                        "allow_transfer": [f"key {KEY_NAME}"],
                        "notify": "no",
                    }
                ],
            ),
            port=primary_port,
        ),
    )
    shutil.copyfile(v2.file, zone_file)
    primary.reload()
    wait_serial(lab, primary_port, big.origin, v2.serial, TRANSFER_WITHIN, "the primary")

    state = tmp_path / "sstate"
    copy = state / "default" / f"{big.origin}.zone"
    port = free_port()

    def config(primaries: int) -> str:
        zone = {
            "name": big.origin,
            "type": "secondary",
            "primaries": [remote(primaries)],
            "allow_notify": [f"key {KEY_NAME}"],
        }
        return authd_yaml(port, state, [zone])

    live = config(primary_port)
    # The check restarts point at a port nobody listens on: the secondary
    # serves what it has on disk and cannot fetch anything newer meanwhile.
    offline = config(free_port())

    def prepare(phase: str) -> None:
        shutil.rmtree(state, ignore_errors=True)
        if phase == "ixfr":
            copy.parent.mkdir(parents=True)
            shutil.copyfile(v1.file, copy)

    def kill_when(server: Server, trigger: str) -> str:
        """Kill -9 on *trigger*: a delay after ready, or the temp copy appearing / renamed."""
        tmp = Path(f"{copy}.tmp")
        if trigger == "tmp-written":
            lab.wait(
                "the temp copy", lambda: tmp.exists() and tmp.stat().st_size > 0, TRANSFER_WITHIN
            )
        elif trigger == "renamed":
            lab.wait("the temp copy", tmp.exists, TRANSFER_WITHIN)
            lab.wait("the rename", lambda: not tmp.exists(), TRANSFER_WITHIN)
        else:
            time.sleep(float(trigger))
        mid = "before" if not log_lines(server, r"transferred: serial") else "after"
        server.kill()
        return f"{mid} publish, temp {'present' if tmp.exists() else 'absent'}"

    # Kill moments: while the first AXFR streams in (0.05 to 2 s) and while
    # its copy is being written; during the later one, while the SOA check,
    # the IXFR and the rebuild of the zone run (0.2 and 2 s), while the new
    # copy is written, and right after its rename.  ("tmp-written" and
    # "renamed" watch fleet._write_copy's temp file, <copy>.tmp.)
    rounds = [("axfr", t) for t in ("0.05", "0.5", "2.0", "tmp-written")]
    rounds += [("ixfr", t) for t in ("0.2", "2.0", "tmp-written", "renamed")]
    outcomes = []
    for phase, trigger in rounds:
        t0 = time.monotonic()
        prepare(phase)
        label = f"{phase} kill at {trigger}"
        victim = lab.add(f"secondary ({label})", start_authd(live, port=port))
        moment = kill_when(victim, trigger)
        victim.stop()
        checker = lab.add(f"secondary restarted after {label}", start_authd(offline, port=port))
        allowed = [v2] if phase == "axfr" else [v1, v2]
        served = check_served_version(lab, checker, big, allowed, label)
        if served is None:
            lab.check(phase == "axfr", f"{label}: the old copy was lost")
            lab.check(not copy.exists(), f"{label}: a copy on disk that is not served")
        checker.kill()  # nothing to wait for: a SIGTERM would wait out its SOA query
        checker.stop()
        outcome = served.serial if served is not None else "none"
        outcomes.append({"round": label, "killed": moment, "serves": outcome})
        print(f"{label} ({moment}): restarted serving {outcome} [{time.monotonic() - t0:.1f}s]")
    FIGURES["secondary_kill_rounds"] = outcomes
    # The rounds did reach the write: some restarts found the new copy.
    lab.check(any(o["serves"] == v2.serial for o in outcomes), "no round got as far as the copy")

    # And a secondary left alone takes the new version by IXFR.
    prepare("ixfr")
    secondary = lab.add("secondary, uninterrupted", start_authd(live, port=port))
    wait_serial(lab, port, big.origin, v2.serial, TRANSFER_WITHIN, "the secondary")
    check_served_version(lab, secondary, big, [v2], "uninterrupted")
    lab.check(log_lines(secondary, r"by IXFR from"), "uninterrupted: not by IXFR")


def test_primary_killed_mid_reload_serves_the_file_and_never_a_wrong_delta(
    lab: Lab, tmp_path: Path, big: BigZone, figures: dict[str, Any]
) -> None:
    zone_file = tmp_path / "primary.zone"
    shutil.copyfile(big.versions[0].file, zone_file)
    port = free_port()
    state = tmp_path / "pstate"
    config = authd_yaml(
        port,
        state,
        [
            {
                "name": big.origin,
                "file": str(zone_file),
                "allow_transfer": [f"key {KEY_NAME}"],
                "notify": "no",
            }
        ],
    )
    journal = state / "default" / f"{big.origin}.journal"
    server = lab.add("primary", start_authd(config, port=port))

    def ixfr_from(old: Version) -> tuple[dns.zone.Zone, str]:
        copy = clone(old.zone)
        query, _ = dns.xfr.make_query(copy, serial=old.serial, keyring=KEYRING, keyname=KEY.name)
        before = len(server.read_log())
        dns.query.inbound_xfr(HOST, copy, query, port=port, timeout=10, lifetime=60)
        kinds = re.findall(r": (ixfr-[a-z-]+), serial", server.read_log()[before:])
        return copy, kinds[-1] if kinds else "?"

    # Kill moments: early in the parse, later in it, just after the journal
    # append (before the new version is published), and after the reload.
    triggers = ["0.05", "1.0", "journal-grew", "reload-done"]

    def journal_grew(size: int) -> Callable[[], bool]:
        return lambda: journal.exists() and journal.stat().st_size > size

    def loaded(server: Server, serial: int) -> Callable[[], list[str]]:
        return lambda: log_lines(server, rf"loaded: serial {serial}")

    outcomes = []
    for k, trigger in enumerate(triggers, start=2):
        old, new = big.versions[k - 2], big.versions[k - 1]
        size = journal.stat().st_size if journal.exists() else 0
        shutil.copyfile(new.file, zone_file)
        server.reload()
        if trigger == "journal-grew":
            lab.wait("the journal to grow", journal_grew(size), TRANSFER_WITHIN)
        elif trigger == "reload-done":
            lab.wait("the reload", loaded(server, new.serial), TRANSFER_WITHIN)
        else:
            time.sleep(float(trigger))
        server.kill()
        server.stop()
        label = f"kill at {trigger} into the reload to serial {new.serial}"
        server = lab.add(f"primary restarted after {label}", start_authd(config, port=port))
        served = check_served_version(lab, server, big, [old, new], label)
        lab.check(served is new, f"{label}: the restarted primary does not serve its file")
        # An IXFR from the previous serial: the right delta or a full zone.
        applied, kind = ixfr_from(old)
        lab.check(
            kind in ("ixfr-incremental", "ixfr-full"),
            f"{label}: IXFR from {old.serial} answered {kind}",
        )
        got = zone_lines(applied)
        if got != new.lines:
            extra = sorted(got - new.lines)[:10]
            missing = sorted(new.lines - got)[:10]
            lab.fail(
                f"{label}: IXFR ({kind}) from {old.serial} gave a wrong zone: "
                f"extra {extra}, missing {missing}"
            )
        if trigger == "reload-done":
            # The journal was on disk before the new version was served.
            lab.check(kind == "ixfr-incremental", f"{label}: the journal entry was lost")
        outcomes.append({"round": label, "ixfr_from_previous": kind})
        print(f"{label}: serves {new.serial}, IXFR from {old.serial}: {kind}")

    # From the first serial: a chain of deltas across the crashes, or a full zone.
    first, last = big.versions[0], big.versions[len(triggers)]
    applied, kind = ixfr_from(first)
    lab.check(zone_lines(applied) == last.lines, f"IXFR ({kind}) from {first.serial}")
    outcomes.append({"round": f"ixfr from {first.serial} to {last.serial}", "kind": kind})
    FIGURES["primary_kill_rounds"] = outcomes


# -- 6. figures ------------------------------------------------------------------------------------


def test_figures_ixfr_vs_axfr_bytes_and_axfr_time_authd_vs_knot(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    result = xfr_bench.measure(MEASURE_RECORDS, tmp_path)
    FIGURES["transfer_figures"] = result
    print(json.dumps(result, indent=2))
    assert result["ixfr_bytes"] < result["axfr_bytes"] / 100
    assert result["authd"]["axfr_records"] == result["knot"]["axfr_records"] == MEASURE_RECORDS + 1
