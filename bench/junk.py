"""Junk: what a malformed packet costs authd and NSD, beside a real answer's cost.

Owns: one measurement per server and packet kind, in the same run, on the same
zone.  A sender on CPU 1 sends ``--count`` packets of one kind at ``--rate``
per second (below both servers' capacity, so nothing queues and nothing is
lost) to a server pinned to CPU 0, and reads the server's CPU time (user +
system, all its processes and threads, from /proc) before and after.  The
figure is CPU microseconds per packet; junk should cost far less than an
answer, and the ratio to NSD says how far authd is from a C server.  The
CPU clock ticks in 10 ms: with --count 16000, one tick is 0.6 µs per packet.
Packets per second per core (1e6 / µs) is the ceiling a saturated server reaches.

Kinds: ``cached`` (one valid question again and again), ``fresh`` (a new
random name under the zone each time: NXDOMAIN, the random-subdomain flood),
and the malformed packets of tests/test_malformed.py's table plus random bytes.

Usage: python -m bench.junk [--count 8000] [--rate 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import dns.message

from harness.peers import HOST, Server, start_authd, start_nsd

ZONE = "junk.test."
ZONE_TEXT = (
    "$ORIGIN junk.test.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n"
    "@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.80\n"
)
A_IN = b"\x00\x01\x00\x01"
# NSD's Debian build limits responses to 200/s per /24 by default: off, so
# both servers do all the work of every packet (authd has no RRL of its own yet).
NSD_NO_RRL = "    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\n"
SERVER_CPU = 0
SENDER_CPU = 1
TICKS = os.sysconf("SC_CLK_TCK")


def _header(qid: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def _query(name: str) -> bytes:
    return dns.message.make_query(name, "A", use_edns=False).to_wire()


Packet = Callable[[random.Random], bytes]

KINDS: dict[str, Packet] = {
    "cached": lambda r: _query(f"www.{ZONE}"),
    "fresh": lambda r: _query(f"{r.getrandbits(48):x}.{ZONE}"),
    "random-bytes": lambda r: r.randbytes(r.randint(12, 120)),
    "header-only": lambda r: _header(r.getrandbits(16)),
    "qdcount-0": lambda r: _header(r.getrandbits(16), qd=0),
    "qdcount-2": lambda r: _header(r.getrandbits(16), qd=2) + (b"\x03www\x00" + A_IN) * 2,
    "pointer-loop": lambda r: _header(r.getrandbits(16)) + b"\xc0\x0c" + A_IN,
    "bad-pointer": lambda r: _header(r.getrandbits(16)) + b"\xc0\xff" + A_IN,
    "question-cut": lambda r: _header(r.getrandbits(16)) + b"\x03www\x04junk",
    "counts-promise-more": lambda r: _header(r.getrandbits(16), an=5, ar=3) + b"\x03www\x00" + A_IN,
    "trailing-junk": lambda r: _query(f"www.{ZONE}") + r.randbytes(8),
    "response-flag": lambda r: _header(r.getrandbits(16), flags=0x8000) + b"\x03www\x00" + A_IN,
    "opcode-5": lambda r: _header(r.getrandbits(16), flags=5 << 11) + b"\x03www\x00" + A_IN,
}


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every process in group *pgid*."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def measure(server: Server, kind: str, count: int, rate: float, seed: int) -> tuple[float, int]:
    """CPU µs per packet of *kind*, and how many replies came back."""
    rng = random.Random(seed)
    packets = [KINDS[kind](rng) for _ in range(count)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    replies = 0
    time.sleep(0.3)  # let the server go idle
    before = _group_cpu(server.pgid)
    start = time.monotonic()
    for i, packet in enumerate(packets):
        # Paced: packet i leaves at start + i/rate.
        while time.monotonic() - start < i / rate:
            try:
                while sock.recv(65535):
                    replies += 1
            except BlockingIOError:
                pass
        sock.sendto(packet, (HOST, server.port))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            while sock.recv(65535):
                replies += 1
        except BlockingIOError:
            time.sleep(0.01)
    used = _group_cpu(server.pgid) - before
    sock.close()
    return used * 1e6 / count, replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=8000, help="packets per kind and server")
    parser.add_argument("--rate", type=float, default=4000.0, help="packets per second")
    parser.add_argument("--kinds", nargs="*", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--rounds", type=int, default=3, help="the least CPU of this many is kept")
    args = parser.parse_args()
    os.sched_setaffinity(0, {SENDER_CPU})
    workdir = Path(f"/tmp/authd-junk-{os.getpid()}")
    workdir.mkdir()
    zone = workdir / "junk.zone"
    zone.write_text(ZONE_TEXT)
    results: dict[str, dict[str, tuple[float, int]]] = {}
    starts = {
        "authd": lambda: start_authd({ZONE: str(zone)}, cpu=SERVER_CPU),
        "nsd": lambda: start_nsd({ZONE: str(zone)}, cpu=SERVER_CPU, extra=NSD_NO_RRL),
    }
    for name, start in starts.items():
        with start() as server:
            # Rounds over every kind in turn, the least CPU of each kept: on a
            # shared machine the noise (other work on the server's core) only adds.
            rounds = [
                {
                    kind: measure(server, kind, args.count, args.rate, seed)
                    for seed, kind in enumerate(args.kinds)
                }
                for _ in range(args.rounds)
            ]
            results[name] = {kind: min(r[kind] for r in rounds) for kind in args.kinds}
    print(
        f"{args.count} packets per kind at {args.rate:.0f}/s, least of {args.rounds} rounds; "
        "CPU µs per packet (replies); "
        "k pkt/s: packets one core would handle at that cost (1e6 / µs), the server's ceiling"
    )
    head = f"{'kind':20} {'authd µs':>16} {'nsd µs':>16} {'authd/nsd':>9} {'vs cached':>9}"
    print(f"{head} {'authd k pkt/s':>13} {'nsd k pkt/s':>11}")
    cached = results["authd"].get("cached", (0.0, 0))[0]
    for kind in args.kinds:
        a, a_replies = results["authd"][kind]
        n, n_replies = results["nsd"][kind]
        ratio = f"{a / n:.1f}x" if n > 0 else "-"
        rel = f"{a / cached:.2f}" if cached > 0 else "-"
        a_rate = f"{1e3 / a:.0f}" if a > 0 else "-"
        n_rate = f"{1e3 / n:.0f}" if n > 0 else "-"
        print(
            f"{kind:20} {a:8.1f} ({a_replies:5}) {n:8.1f} ({n_replies:5}) {ratio:>9} {rel:>9} "
            f"{a_rate:>13} {n_rate:>11}"
        )
    workdir.joinpath("junk.zone").unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
