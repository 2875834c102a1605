"""Zone load benchmark: time and peak memory of parsing generated zones.

Owns: ``measure(path, origin)``, which loads one zone file in this process and
reports seconds and peak RSS, and a CLI that runs it in a fresh subprocess per
size so one size's memory does not hide another's.

Beside it, ``serve_load`` measures what issue 10 compares with NSD: from
exec of the server (``authd serve``, then NSD with the same file) until the
zone's last name answers, and the server's resident memory then (PSS summed
over its process group), with the ratios authd/NSD.

Usage: python -m bench.load [10k] [100k] [1M] [--dnspython] [--no-servers]
(default: 10k 100k).  ``--dnspython`` also times ``dns.zone.from_file`` for
comparison; ``--no-servers`` skips the authd/NSD comparison.  Sizes accept a
k or M suffix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import dns.name
import dns.zone

from authd.adapters.gcpause import gc_paused
from authd.zone import load_zone
from authd.zonefile import parse_zone_file
from harness import zonegen
from harness.peers import HOST, PeerError, Server, start_authd, start_nsd

SERVE_TIMEOUT = 600.0  # seconds for a server to answer the zone's last name
POLL = 0.05  # seconds between probes of the last name
START_ATTEMPTS = 3  # a port picked free can be taken before the server binds it

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _peak_rss_mib() -> float:
    # VmHWM is the peak resident set of this process alone (Linux).
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str, origin: str) -> dict[str, float | int | str]:
    """Parse the zone at *path*, then load it as the server does; return records,
    seconds (wall and CPU: the
    machine may be shared) and peak RSS (MiB)."""
    zone_origin = dns.name.from_text(origin)
    rss_before = _peak_rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    records = parse_zone_file(path, zone_origin)
    parse_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    count = len(records)
    parse_rss = _peak_rss_mib()
    del records
    # The server's whole load: parse, group, check, compile (``authd.zone.load_zone``),
    # with the cyclic GC paused as the service does; resident memory after it.
    with gc_paused():
        start, cpu_start = time.perf_counter(), time.process_time()
        result = load_zone(zone_origin, path)
        load_s, load_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    assert result.version is not None, result.findings[:3]
    return {
        "path": path,
        "records": count,
        "parse_s": round(parse_s, 3),
        "parse_cpu_s": round(cpu_s, 3),
        "rss_before_mib": round(rss_before, 1),
        "parse_peak_rss_mib": round(parse_rss, 1),
        "load_s": round(load_s, 3),
        "load_cpu_s": round(load_cpu_s, 3),
        "rss_after_load_mib": round(_rss_mib(), 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure_dnspython(path: str, origin: str) -> dict[str, float | int | str]:
    """The same for ``dns.zone.from_file``, the baseline we are beating."""
    start = time.perf_counter()
    zone = dns.zone.from_file(path, origin, relativize=False)
    seconds = time.perf_counter() - start
    count = sum(len(rds) for _, rds in zone.iterate_rdatasets())
    return {"records": count, "parse_s": round(seconds, 3), "peak_rss_mib": _peak_rss_mib()}


def _group_rss_mib(pgid: int) -> float:
    """Resident memory of process group *pgid*: each process's PSS, summed.

    NSD forks xfrd and a server process that share the zone's pages copy on
    write; summing their VmRSS would count those pages three times, PSS
    (``smaps_rollup``) splits each shared page among its sharers.
    """
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                stat = f.read()
            if int(stat[stat.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry}/smaps_rollup", encoding="ascii") as f:
                total += next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def _answers(port: int, qname: str, qtype: str) -> bool:
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode

    q = dns.message.make_query(qname, qtype)
    try:
        r = dns.query.udp(q, HOST, port=port, timeout=1.0)
    except (OSError, dns.exception.Timeout):
        return False
    return r.rcode() == dns.rcode.NOERROR and bool(r.answer) and bool(r.flags & dns.flags.AA)


def _start(kind: str, zones: dict[str, str]) -> Server:
    if kind == "authd":
        return start_authd(zones, options={"watch": False}, timeout=SERVE_TIMEOUT)
    return start_nsd(zones, timeout=SERVE_TIMEOUT)


def serve_load(kind: str, path: str, origin: str, last: tuple[str, str]) -> dict[str, float]:
    """Seconds from exec of *kind* (authd, nsd) until *last* answers; RSS (MiB) then."""
    zones = {origin: path}
    for attempt in range(START_ATTEMPTS):
        started = time.monotonic()
        try:
            server = _start(kind, zones)
            break
        except PeerError as e:
            # The free port was taken meanwhile (other jobs on the machine): again.
            if "Address already in use" not in str(e) or attempt + 1 == START_ATTEMPTS:
                raise
    try:
        deadline = started + SERVE_TIMEOUT
        while not _answers(server.port, *last):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer {last} in {SERVE_TIMEOUT:g} s")
            time.sleep(POLL)
        seconds = time.monotonic() - started
        return {"seconds": round(seconds, 2), "rss_mib": round(_group_rss_mib(server.pgid), 1)}
    finally:
        server.stop()


def compare_servers(path: str, origin: str) -> dict[str, dict[str, float]]:
    """authd and NSD loading the zone at *path*, with the ratios authd/NSD."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    last = zonegen.answerable(lines, origin)[-1]
    out = {kind: serve_load(kind, path, origin, last) for kind in ("authd", "nsd")}
    out["authd/nsd"] = {
        "seconds": round(out["authd"]["seconds"] / max(out["nsd"]["seconds"], 1e-3), 1),
        "rss_mib": round(out["authd"]["rss_mib"] / max(out["nsd"]["rss_mib"], 1e-3), 2),
    }
    return out


def _size(text: str) -> int:
    text = text.lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(text.rstrip("km")) * scale


def _child(mode: str, path: str, origin: str) -> dict[str, float | int | str]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", mode, path, origin],
        cwd=_REPO_ROOT,  # where `-m` finds the bench package
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float | int | str] = json.loads(out.stdout)
    return result


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("--child", "--child-dnspython"):
        fn = measure if argv[0] == "--child" else measure_dnspython
        print(json.dumps(fn(argv[1], argv[2])))
        return 0
    compare = "--dnspython" in argv
    servers = "--no-servers" not in argv
    sizes = [_size(a) for a in argv if not a.startswith("--")] or [10_000, 100_000]
    origin = "example.com."
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = os.path.join(tmp, f"zone-{n}.db")
            zonegen.write_zone(path, n, origin)
            r = _child("--child", path, origin)
            print(
                f"{n:>9} records  parse {r['parse_s']:7.3f} s (CPU {r['parse_cpu_s']:7.3f} s)  "
                f"full load {r['load_s']:7.3f} s (CPU {r['load_cpu_s']:7.3f} s)  "
                f"RSS after load {r['rss_after_load_mib']:7.1f} MiB "
                f"(process start {r['rss_before_mib']} MiB)",
                flush=True,
            )
            if compare:
                d = _child("--child-dnspython", path, origin)
                print(f"{'':>9} dns.zone.from_file {d['parse_s']:7.3f} s", flush=True)
            if servers:
                c = compare_servers(path, origin)
                a, ref, ratio = c["authd"], c["nsd"], c["authd/nsd"]
                print(
                    f"{'':>9} exec until the last name answers: authd {a['seconds']:.2f} s, "
                    f"RSS {a['rss_mib']:.0f} MiB; NSD {ref['seconds']:.2f} s, "
                    f"RSS {ref['rss_mib']:.0f} MiB; authd/NSD {ratio['seconds']:g}x time, "
                    f"{ratio['rss_mib']:g}x memory",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
