"""Slowloris over TCP: authd and NSD while N connections send a query a byte a second.

Owns: one measurement per server, in the same run and on the same zone.  The
attacker holds ``--conns`` connections from 127.0.0.2-11 (all of 127/8 is the
loopback), sends each one byte of a framed query every second and reconnects
at once when the server closes one; meanwhile a legitimate client on
127.0.0.1 asks ``--legit`` TCP queries, one at a time with a 1 s timeout.
Prints, per server, the legitimate queries answered and how many attacker
connections the server closed.  Bounded: ``--seconds`` per server.

Usage: python -m bench.slowloris [--conns 1000] [--seconds 15] [--legit 50]
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import struct
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from harness.peers import HOST, Server, start_authd, start_nsd

ZONE = "slow.test."
ZONE_TEXT = (
    "$ORIGIN slow.test.\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n"
    "@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.80\n"
)
ATTACK_SOURCES = [f"127.0.0.{i}" for i in range(2, 12)]


def attack(port: int, conns: int, seconds: float, legit: int) -> dict[str, int]:
    query = dns.message.make_query(f"www.{ZONE}", "A").to_wire()
    framed = struct.pack("!H", len(query)) + query
    sel = selectors.DefaultSelector()
    sent: dict[socket.socket, int] = {}
    counts = {"opened": 0, "closed_by_server": 0, "answered": 0, "asked": 0}

    def open_one() -> None:
        s = socket.socket()
        s.setblocking(False)
        s.bind((ATTACK_SOURCES[counts["opened"] % len(ATTACK_SOURCES)], 0))
        s.connect_ex((HOST, port))
        sent[s] = 0
        counts["opened"] += 1
        sel.register(s, selectors.EVENT_READ)

    for _ in range(conns):
        open_one()
    start = time.monotonic()
    next_byte, next_legit = start + 1, start + 0.5
    try:
        while time.monotonic() - start < seconds:
            for key, _ in sel.select(timeout=0.05):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    del sent[s]
                    counts["closed_by_server"] += 1
                    open_one()  # the attacker comes straight back
            now = time.monotonic()
            if now >= next_byte:
                next_byte += 1
                for s, n in list(sent.items()):
                    try:
                        s.send(framed[n % len(framed) : n % len(framed) + 1])
                        sent[s] = n + 1
                    except OSError:
                        pass
            if now >= next_legit and counts["asked"] < legit:
                next_legit += (seconds - 1) / legit
                counts["asked"] += 1
                try:
                    q = dns.message.make_query(f"www.{ZONE}", "A")
                    dns.query.tcp(q, HOST, port=port, timeout=1, source=HOST)
                    counts["answered"] += 1
                except (OSError, dns.exception.DNSException):
                    pass
    finally:
        for s in sent:
            s.close()
    counts["open_at_end"] = len(sent)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--legit", type=int, default=50)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.conns + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.conns + 200), hard))
    zone_file = Path("/tmp") / "authd-bench-slowloris.zone"
    zone_file.write_text(ZONE_TEXT)
    for kind in ("authd", "nsd"):
        server: Server = (start_authd if kind == "authd" else start_nsd)({ZONE: zone_file})
        try:
            c = attack(server.port, args.conns, args.seconds, args.legit)
        finally:
            server.stop()
        print(
            f"{kind:6} legitimate TCP answered {c['answered']}/{c['asked']}; attacker "
            f"connections closed by the server {c['closed_by_server']} "
            f"(opened {c['opened']}, open at the end {c['open_at_end']})"
        )


if __name__ == "__main__":
    main()
