"""Zone transfer figures: IXFR against AXFR bytes, and AXFR time of authd and Knot.

Owns: ``measure(n, workdir)``, which generates an n-record zone
(``harness.zonegen``), serves it from authd and from Knot DNS on loopback ports,
and reports for each server:

* the AXFR's bytes on the wire (every message with its 2-byte TCP length) and
  its time, read raw (the server's speed: messages are counted, not parsed);
* the AXFR's time through ``dns.query.inbound_xfr`` into a ``dns.zone.Zone``
  (what a dnspython secondary sees, parsing included), checking the record count;
* after a one-record change (serial bumped, one address changed) and a reload
  (SIGHUP), the bytes of the IXFR from the old serial.

Used by ``python -m bench.xfr`` and by tests/test_fleet.py's figures test.

Both servers get the same file; transfers are unsigned (allowed by address)
so TSIG costs do not blur the comparison.  Sockets only on 127.0.0.1.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone

from harness import zonegen
from harness.peers import HOST, Server, free_port, start_authd, start_knot

ORIGIN = "xfr.test"
SERIAL_LINE = "\t\t2024010101 ; serial"
CHANGED_FROM = "www\tIN\tA\t192.0.2.80"
CHANGED_TO = "www\tIN\tA\t192.0.2.180"
TIMEOUT = 120.0  # seconds for any one transfer or wait
POLL = 0.05


def _recv(s: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def _frames(port: int, query: dns.message.Message) -> Any:
    """Yield each response message's wire form; the caller stops when done."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as s:
        wire = query.to_wire()
        s.sendall(struct.pack("!H", len(wire)) + wire)
        while True:
            (length,) = struct.unpack("!H", _recv(s, 2))
            yield _recv(s, length)


def raw_axfr(port: int, records: int) -> dict[str, Any]:
    """AXFR bytes and time without parsing: ends after records + 1 RRs (SOA twice)."""
    query = dns.message.make_query(ORIGIN, dns.rdatatype.AXFR)
    start = time.perf_counter()
    total, messages, rrs = 0, 0, 0
    for data in _frames(port, query):
        total += 2 + len(data)
        messages += 1
        if data[3] & 0x0F:
            raise RuntimeError(f"AXFR answered rcode {data[3] & 0x0F}")
        rrs += struct.unpack_from("!H", data, 6)[0]
        if rrs >= records + 1:
            break
    return {
        "axfr_bytes": total,
        "axfr_messages": messages,
        "axfr_records": rrs,
        "axfr_raw_seconds": round(time.perf_counter() - start, 3),
    }


def dnspython_axfr(port: int, records: int) -> float:
    """Seconds for ``dns.query.inbound_xfr`` to build the zone; checks its size."""
    zone = dns.zone.Zone(ORIGIN, relativize=False)
    start = time.perf_counter()
    dns.query.inbound_xfr(HOST, zone, port=port, timeout=TIMEOUT, lifetime=TIMEOUT)
    elapsed = time.perf_counter() - start
    got = sum(len(rds) for node in zone.nodes.values() for rds in node)
    if got != records:
        raise RuntimeError(f"AXFR from port {port} gave {got} records, not {records}")
    return round(elapsed, 3)


def raw_ixfr(port: int, serial: int) -> dict[str, Any]:
    """Bytes of the IXFR from *serial* and whether it was incremental.

    The messages are small here, so they are parsed: an incremental answer
    ends at the third copy of the new SOA (first record, start of the last
    changeset's additions, last record), an AXFR-style one at the second.
    """
    query = dns.message.make_query(ORIGIN, dns.rdatatype.IXFR)
    query.authority.append(
        dns.rrset.from_text(ORIGIN + ".", 0, "IN", "SOA", f". . {serial} 0 0 0 0")
    )
    total, messages, rrs = 0, 0, []
    for data in _frames(port, query):
        total += 2 + len(data)
        messages += 1
        msg = dns.message.from_wire(data, one_rr_per_rrset=True)
        rrs += [(rrset.rdtype, rd) for rrset in msg.answer for rd in rrset]
        soa_new = rrs[0][1].serial
        if len(rrs) == 1 and soa_new == serial:
            break  # up to date
        if len(rrs) < 2:
            continue
        incremental = rrs[1][0] == dns.rdatatype.SOA
        copies = sum(1 for t, rd in rrs if t == dns.rdatatype.SOA and rd.serial == soa_new)
        if copies >= (3 if incremental else 2):
            break
    return {
        "ixfr_bytes": total,
        "ixfr_messages": messages,
        "ixfr_records": len(rrs),
        "ixfr_incremental": len(rrs) > 1 and rrs[1][0] == dns.rdatatype.SOA,
    }


def _wait_serial(server: Server, serial: int) -> None:
    query = dns.message.make_query(ORIGIN, dns.rdatatype.SOA)
    for _ in range(int(TIMEOUT / POLL)):
        try:
            reply = dns.query.udp(query, HOST, port=server.port, timeout=1)
            if reply.answer and reply.answer[0][0].serial == serial:
                return
        except OSError:
            pass
        time.sleep(POLL)
    raise RuntimeError(f"{server.kind} did not serve serial {serial}\n{server.read_log()[-3000:]}")


def measure(records: int, workdir: Path) -> dict[str, Any]:
    """Serve an n-record zone from authd and Knot; transfer figures for each."""
    zone_file = workdir / "xfr.zone"
    zonegen.write_zone(str(zone_file), records, ORIGIN)
    text = zone_file.read_text()
    if SERIAL_LINE not in text or CHANGED_FROM not in text:
        raise RuntimeError("zonegen's output no longer has the lines this edits")
    changed = text.replace(SERIAL_LINE, SERIAL_LINE.replace("01 ;", "02 ;"), 1).replace(
        CHANGED_FROM, CHANGED_TO, 1
    )
    authd_zone = workdir / "authd" / "xfr.zone"
    authd_zone.parent.mkdir()
    authd_zone.write_text(text)
    port = free_port()
    config = (
        f"listen: [{{address: {HOST}, port: {port}}}]\n"
        f"options: {{state_dir: {workdir / 'state'}, watch: false}}\n"
        "zones:\n"
        f"  - {{name: {ORIGIN}, file: {authd_zone}, allow_transfer: [{HOST}], notify: no}}\n"
    )
    knot_sections = f"acl:\n  - id: transfer\n    address: {HOST}\n    action: transfer\n"
    knot_template = (
        "    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n"
    )
    result: dict[str, Any] = {"records": records}
    started = time.perf_counter()
    authd = start_authd(config, port=port, timeout=TIMEOUT)
    result["authd_start_seconds"] = round(time.perf_counter() - started, 3)
    try:
        started = time.perf_counter()
        knot = start_knot(
            {ORIGIN: zone_file},
            timeout=TIMEOUT,
            # Knot drops a TCP client that does not read for 500 ms; dnspython
            # parsing 100k records falls behind by more than that now and then.
            extra="    tcp-io-timeout: 30000\n",
            sections=knot_sections,
            template=knot_template,
            zone_options={ORIGIN: "    acl: transfer\n"},
        )
        result["knot_start_seconds"] = round(time.perf_counter() - started, 3)
        try:
            for name, server in (("authd", authd), ("knot", knot)):
                try:
                    figures = raw_axfr(server.port, records)
                    figures["axfr_dnspython_seconds"] = dnspython_axfr(server.port, records)
                except Exception as e:
                    tail = "\n".join(server.read_log().splitlines()[-20:])
                    raise RuntimeError(
                        f"AXFR from {name}: {e!r}\n--- {name} log ---\n{tail}"
                    ) from e
                result[name] = figures
            # One record changed, serial bumped, reloaded by SIGHUP on both.
            authd_zone.write_text(changed)
            (knot.workdir / "zones" / zone_file.name).write_text(changed)
            authd.reload()
            knot.reload()
            for name, server in (("authd", authd), ("knot", knot)):
                _wait_serial(server, 2024010102)
                result[name].update(raw_ixfr(server.port, 2024010101))
        finally:
            knot.stop()
    finally:
        authd.stop()
    result["axfr_bytes"] = result["authd"]["axfr_bytes"]
    result["ixfr_bytes"] = result["authd"]["ixfr_bytes"]
    result["ixfr_to_axfr_ratio"] = round(result["ixfr_bytes"] / result["axfr_bytes"], 6)
    result["authd_to_knot_axfr_raw_time"] = round(
        result["authd"]["axfr_raw_seconds"] / max(result["knot"]["axfr_raw_seconds"], 1e-6), 1
    )
    return result
