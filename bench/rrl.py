"""Amplification with and without response rate limiting: authd beside NSD, one run.

Owns: the issue's reflection scenario.  One source (127.0.0.1) sends
``--rate`` queries a second (20,000 by default) for ``--seconds`` to each
server in turn: ``big.amp.test. A`` (a 60-address RRset, EDNS payload 4096,
about 1,000-byte answers to 43-byte questions... plus the OPT record) and
``amp.test. ANY``.  Servers: authd with rate limiting off, authd with
``rate_limit: {}`` (200 a second, slip 2), and NSD with ``rrl-ratelimit: 200``
(and ``rrl-slip: 2``, Debian's setting).  For each it reports what reaches
the "victim" (our sender): bytes in / bytes out (the amplification factor),
full answers a second, TC slips a second, and authd's figures as ratios of
NSD's measured in the same run.

Invariants: loopback only; every server is stopped before the next starts
(and on error); the flood is paced and bounded in time (harness.flood).

Usage:
    python -m bench.rrl [--rate 20000] [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import dns.message

from harness.flood import Stream, flood
from harness.peers import HOST, Server, start_authd, start_nsd

ZONE = (
    "$ORIGIN amp.test.\n$TTL 300\n"
    "@ SOA ns hostmaster 1 7200 3600 1209600 300\n"
    "@ NS ns\n@ NS ns2\n@ MX 10 mail\n"
    '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"\n'
    '@ TXT "some-site-verification=0123456789abcdef0123456789abcdef"\n'
    "ns A 192.0.2.1\nns2 A 192.0.2.2\nmail A 192.0.2.3\n"
    + "".join(f"big A 198.51.100.{i}\n" for i in range(1, 61))
)
QUERIES = {"A-60": ("big.amp.test.", "A"), "ANY": ("amp.test.", "ANY")}
NSD_RRL = "    rrl-ratelimit: 200\n    rrl-slip: 2\n"


def _query(name: str, qtype: str) -> bytes:
    q = dns.message.make_query(name, qtype, use_edns=0, payload=4096)
    q.flags = 0  # an attacker's spoofed query need not ask for recursion
    return q.to_wire()


def _start(kind: str, zone: Path) -> Server:
    zones = {"amp.test.": zone}
    if kind == "authd":
        return start_authd(zones, options={"udp_payload_max": 4096})
    if kind == "authd-rrl":
        return start_authd(zones, options={"udp_payload_max": 4096, "rate_limit": {}})
    return start_nsd(zones, extra=NSD_RRL)


def run(args: argparse.Namespace, zone: Path) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for kind in ("authd", "authd-rrl", "nsd-rrl"):
        server = _start(kind, zone)
        try:
            for label, (name, qtype) in QUERIES.items():
                stream = Stream(HOST, _query(name, qtype), args.rate)
                result = flood(HOST, server.port, [stream], args.seconds, settle=1.0)
                secs = result.seconds
                rows[f"{kind} {label}"] = {
                    "sent_qps": round(stream.sent / secs),
                    "answered_qps": round(stream.answered / secs),
                    "tc_qps": round(stream.truncated / secs),
                    "bytes_out": stream.bytes_out,
                    "bytes_in": stream.bytes_in,
                    "amplification": round(stream.bytes_in / max(stream.bytes_out, 1), 2),
                    "largest_reply": max(stream.sizes, default=0),
                    "question_bytes": len(stream.wire),
                    "in_bytes_per_s": round(stream.bytes_in / secs),
                }
                print(f"{kind:>10} {label:<5} {rows[f'{kind} {label}']}", flush=True)
        finally:
            server.stop()
    ratios = {}
    for label in QUERIES:
        nsd = rows[f"nsd-rrl {label}"]
        for kind in ("authd", "authd-rrl"):
            mine = rows[f"{kind} {label}"]
            ratios[f"{kind}/nsd-rrl {label} amplification"] = round(
                mine["amplification"] / max(nsd["amplification"], 1e-9), 3
            )
            ratios[f"{kind}/nsd-rrl {label} answered"] = round(
                mine["answered_qps"] / max(nsd["answered_qps"], 1), 3
            )
    return {"rate": args.rate, "seconds": args.seconds, "rows": rows, "ratios": ratios}


def _print(result: dict[str, Any]) -> None:
    head = f"{'server query':<18}{'sent/s':>9}{'answered/s':>12}{'TC/s':>9}{'bytes in/out':>14}"
    print("\n" + head + "\n" + "-" * len(head))
    for key, r in result["rows"].items():
        print(
            f"{key:<18}{r['sent_qps']:>9,}{r['answered_qps']:>12,}{r['tc_qps']:>9,}"
            f"{r['amplification']:>13.2f}x"
        )
    print()
    for k, v in result["ratios"].items():
        print(f"{k}: {v}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=20_000.0, help="queries a second (20000)")
    p.add_argument("--seconds", type=float, default=5.0, help="flood per server and query (5)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = p.parse_args(argv)
    if not 0 < args.seconds <= 120 or not 0 < args.rate <= 200_000:
        p.error("--seconds must be in (0, 120] and --rate in (0, 200000]")
    base = Path(tempfile.mkdtemp(prefix="authd-rrl-"))
    try:
        zone = base / "amp.test.zone"
        zone.write_text(ZONE)
        result = run(args, zone)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
