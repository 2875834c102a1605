"""Reload stall benchmark: what a hot reload of a 1,000,000-record zone costs queries.

Owns: generating the zone (``harness.zonegen``), starting authd on 127.0.0.1 with
the file watcher on (the default ``reload_delay`` of 0.3 s), editing the zone
the way an editor saves (write a temp file, rename it over the original:
serial + 1 and one changed record), and measuring, for each edit:

(a) ``server_stall_ms``: the longest reactor stall authd itself reports in
    its ``reload done: generation N, published in P ms, longest reactor stall X ms``
    line (P: the swap itself, on the reactor thread);
(b) ``client_worst_ms``: the worst latency a client sees that sends a query
    every 10 ms (on a fixed schedule, answers matched by ID, so one slow
    answer does not delay the next question) from the edit until the server
    has freed the old version (at least 3 s after the new serial is served),
    so taking the old version apart is measured too; unanswered queries are
    counted, not averaged in;
(c) ``edit_to_served_s``: seconds from the rename to the first answer with
    the new serial (includes the 0.3 s debounce);
(d) ``machine``: how late a separate process that only sleeps 1 ms at a
    time woke up in the same window: the machine's own hiccups (on the test
    VMs a kernel thread takes a CPU for ~5 ms every 0.5 s), which no server
    can get below;
(e) ``rss_after_freeing_mib``: the server's resident memory once it logs that
    the replaced version is freed (it takes old versions apart in a worker,
    starting 1 s after the swap), to show memory does not grow edit by edit.

The queries alternate between the apex SOA (answered from the answer cache
once warm; it shows the serial) and a random absent name (NXDOMAIN, never
cached: a full lookup each time).  The same client runs for 2 s before the
first edit to give an idle baseline.

Usage: python -m bench.reload_stall [--records 1000000] [--edits 2] [--json OUT]
Slow: generating and loading the zone takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype

from harness import zonegen
from harness.peers import HOST, Server, free_port, start_authd

ORIGIN = "bench.test"
SERIAL = 2024010101
SERIAL_LINE = f"\t\t{SERIAL} ; serial"
CHANGED_FROM = "www\tIN\tA\t192.0.2.80"

INTERVAL = 0.010  # seconds between two client queries
LOST_AFTER = 2.0  # seconds without an answer: the query counts as lost
BASELINE = 2.0  # seconds of idle measurement before the first edit
AFTER_SERVED = 3.0  # seconds measured after the new serial is served
START_TIMEOUT = 600.0  # seconds for authd to load the zone and say it is ready
SERVED_TIMEOUT = 120.0  # seconds from an edit to the new serial, at most
FREED_TIMEOUT = 120.0  # seconds for the server to free the version an edit replaced


@dataclass
class Sample:
    sent: float  # monotonic
    kind: str  # "soa" or "miss"
    latency: float | None = None  # seconds; None: no answer (yet)
    serial: int | None = None


@dataclass
class Prober:
    """Sends a query every INTERVAL seconds and matches answers by ID."""

    port: int
    samples: dict[int, Sample] = field(default_factory=dict)
    stop_at: float = float("inf")
    _sock: socket.socket = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.settimeout(0.1)
        self._sock.connect((HOST, self.port))

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self.stop_at = time.monotonic()
        time.sleep(LOST_AFTER)  # late answers still count
        self._done.set()
        for t in self._threads:
            t.join(timeout=5)
        self._sock.close()

    def _send(self) -> None:
        rng = random.Random(7)
        seq = 0
        next_at = time.monotonic()
        while not self._done.is_set() and time.monotonic() < self.stop_at:
            kind = "soa" if seq % 2 == 0 else "miss"
            name = ORIGIN if kind == "soa" else f"absent-{rng.randrange(10**9)}.{ORIGIN}"
            rdtype = dns.rdatatype.SOA if kind == "soa" else dns.rdatatype.A
            q = dns.message.make_query(name, rdtype)
            q.id = seq & 0xFFFF
            wire = q.to_wire()
            with self._lock:
                self.samples[q.id] = Sample(time.monotonic(), kind)
            try:
                self._sock.send(wire)
            except OSError:
                pass
            seq += 1
            next_at += INTERVAL
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self._sock.recv(65535)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            try:
                reply = dns.message.from_wire(data)
            except Exception:
                continue
            with self._lock:
                sample = self.samples.get(reply.id)
                if sample is None or sample.latency is not None:
                    continue
                sample.latency = now - sample.sent
                for rrset in reply.answer:
                    if rrset.rdtype == dns.rdatatype.SOA:
                        sample.serial = int(rrset[0].serial)

    def window(self, start: float, end: float) -> list[Sample]:
        """Samples sent in [start, end), oldest first.  IDs wrap after 65536 queries
        (11 minutes at 100 q/s), longer than any run here."""
        with self._lock:
            return sorted(
                (s for s in self.samples.values() if start <= s.sent < end), key=lambda s: s.sent
            )

    def first_serial_at(self, serial: int, after: float) -> float | None:
        """When the first answer showing *serial* arrived (monotonic)."""
        with self._lock:
            times = [
                s.sent + s.latency
                for s in self.samples.values()
                if s.serial == serial and s.latency is not None and s.sent >= after
            ]
        return min(times) if times else None


def summarize(samples: list[Sample]) -> dict[str, Any]:
    answered = sorted(s.latency for s in samples if s.latency is not None)
    lost = sum(1 for s in samples if s.latency is None)

    def pct(p: float) -> float | None:
        if not answered:
            return None
        return round(answered[min(len(answered) - 1, int(p * len(answered)))] * 1000, 2)

    worst = {
        kind: round(max((s.latency for s in samples if s.kind == kind and s.latency), default=0)
                    * 1000, 2)
        for kind in ("soa", "miss")
    }  # fmt: skip
    return {
        "queries": len(samples),
        "lost": lost,
        "median_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "worst_ms": round(answered[-1] * 1000, 2) if answered else None,
        "worst_ms_by_kind": worst,
        "over_50ms": sum(1 for x in answered if x > 0.05),
        "over_100ms": sum(1 for x in answered if x > 0.1),
        # When the slowest answers were asked, in seconds from the window's start.
        "slowest": [
            (round(s.sent - samples[0].sent, 2), round((s.latency or 0) * 1000, 1))
            for s in sorted(samples, key=lambda s: -(s.latency or 0))[:8]
        ],
    }


# A process that only sleeps 1 ms at a time and notes how late it wakes up:
# what the machine alone costs (other tenants, kernel threads such as a VM's
# kdamond), to tell apart from what authd's reload costs.
SLEEPER = r"""
import json, sys, threading, time
gaps = []
stop = threading.Event()
def watch():
    last = time.monotonic()
    while not stop.is_set():
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > 0.003:
            gaps.append((now, now - last))
        last = now
t = threading.Thread(target=watch)
t.start()
sys.stdin.read()
stop.set()
t.join()
print(json.dumps(gaps))
"""


def sleeper_gaps(gaps: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    inside = [g for t, g in gaps if start <= t < end]
    return {
        "worst_ms": round(max(inside, default=0) * 1000, 1),
        "over_3ms": len(inside),
    }


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def edit(path: Path, serial: int, www: str) -> float:
    """Save the zone with *serial* and www's address changed, as an editor does;
    the monotonic time of the rename."""
    text = path.read_text()
    text = re.sub(r"^\t\t\d+ ; serial$", f"\t\t{serial} ; serial", text, count=1, flags=re.M)
    text = re.sub(r"^www\tIN\tA\t\S+$", f"www\tIN\tA\t{www}", text, count=1, flags=re.M)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return time.monotonic()


def reload_lines(server: Server) -> list[str]:
    return [x for x in server.read_log().splitlines() if "reload done:" in x]


def freed_lines(server: Server) -> list[str]:
    return [x for x in server.read_log().splitlines() if "entries of old zone versions" in x]


def wait_freed(server: Server, before: int) -> str | None:
    """The server's line saying the replaced version is freed (None: not within FREED_TIMEOUT)."""
    deadline = time.monotonic() + FREED_TIMEOUT
    while time.monotonic() < deadline:
        lines = freed_lines(server)
        if len(lines) > before:
            return lines[-1]
        time.sleep(0.2)
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--edits", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="authd-reload-stall-"))
    zone = folder / f"{ORIGIN}.zone"
    t0 = time.perf_counter()
    zonegen.write_zone(str(zone), args.records, ORIGIN)
    generated_s = time.perf_counter() - t0
    size_mib = zone.stat().st_size / 2**20
    print(f"zone: {args.records} records, {size_mib:.1f} MiB, generated in {generated_s:.1f}s")
    if SERIAL_LINE not in zone.read_text() or CHANGED_FROM not in zone.read_text():
        raise SystemExit("zonegen output changed: no serial line or www record to edit")

    port = free_port()
    config = (
        f"listen:\n  - {{address: {HOST}, port: {port}}}\n"
        f"zones:\n  - {{name: {ORIGIN}, file: {zone}}}\n"
    )
    t0 = time.perf_counter()
    server = start_authd(config, port=port, timeout=START_TIMEOUT)
    load_s = time.perf_counter() - t0
    results: dict[str, Any] = {
        "records": args.records,
        "zone_mib": round(size_mib, 1),
        "start_to_ready_s": round(load_s, 1),
        "rss_after_load_mib": rss_mib(server.process.pid),
        "edits": [],
    }
    print(f"authd ready in {load_s:.1f}s, RSS {results['rss_after_load_mib']} MiB")
    prober = Prober(port)
    try:
        prober.start()
        sleeper = subprocess.Popen(
            [sys.executable, "-c", SLEEPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        windows = []
        began = time.monotonic()
        time.sleep(BASELINE)
        results["baseline"] = summarize(prober.window(began, time.monotonic()))
        print(f"idle baseline: {results['baseline']}")
        serial = SERIAL
        for n in range(1, args.edits + 1):
            serial += 1
            done_before = len(reload_lines(server))
            freed_before = len(freed_lines(server))
            edited = edit(zone, serial, f"192.0.2.{100 + n}")
            deadline = edited + SERVED_TIMEOUT
            served_at = None
            while time.monotonic() < deadline:
                served_at = prober.first_serial_at(serial, edited)
                if served_at is not None:
                    break
                if server.process.poll() is not None:
                    raise SystemExit(f"authd exited:\n{server.read_log()[-3000:]}")
                time.sleep(0.05)
            if served_at is None:
                raise SystemExit(f"serial {serial} not served:\n{server.read_log()[-3000:]}")
            time.sleep(AFTER_SERVED)
            lines = reload_lines(server)[done_before:]
            stall = publish = None
            if lines:
                found = re.search(r"longest reactor stall ([\d.]+) ms", lines[-1])
                stall = float(found.group(1)) if found else None
                found = re.search(r"published in ([\d.]+) ms", lines[-1])
                publish = float(found.group(1)) if found else None
            freed = wait_freed(server, freed_before)
            until = time.monotonic()
            time.sleep(LOST_AFTER)  # the queries sent until then are answered or lost
            window = summarize(prober.window(edited, until))
            entry = {
                "serial": serial,
                "server_stall_ms": stall,
                "publish_ms": publish,
                "client_worst_ms": window["worst_ms"],
                "edit_to_served_s": round(served_at - edited, 3),
                "client": window,
                "reload_done_lines": lines,
                "rss_mib": rss_mib(server.process.pid),
                "freed_line": freed,
                "rss_after_freeing_mib": rss_mib(server.process.pid) if freed else None,
            }
            results["edits"].append(entry)
            windows.append((edited, until))
            print(
                f"edit {n}: (a) server stall {stall} ms (publishing {publish} ms), "
                f"(b) client worst "
                f"{window['worst_ms']} ms (p99 {window['p99_ms']} ms, lost {window['lost']}, "
                f">50ms {window['over_50ms']}, >100ms {window['over_100ms']} of "
                f"{window['queries']}), (c) edit to served {entry['edit_to_served_s']} s, "
                f"RSS {entry['rss_mib']} MiB, {entry['rss_after_freeing_mib']} MiB once the "
                "old version is freed"
            )
        # The machine's own hiccups over each edit's window, for comparison.
        out, _ = sleeper.communicate("", timeout=10)
        gaps = [(t, g) for t, g in json.loads(out)]
        results["machine_baseline"] = sleeper_gaps(gaps, began, began + BASELINE)
        for entry, (start, end) in zip(results["edits"], windows, strict=True):
            entry["machine"] = sleeper_gaps(gaps, start, end)
            print(
                f"serial {entry['serial']}: a process that only sleeps was late by up to "
                f"{entry['machine']['worst_ms']} ms ({entry['machine']['over_3ms']} times "
                "over 3 ms) in the same window"
            )
    finally:
        prober.stop()
        log = server.read_log()
        server.stop()
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
    results["server_log_tail"] = log.splitlines()[-20:]
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
