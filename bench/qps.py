"""UDP query-throughput benchmark: authd against NSD (and Knot) with dnsperf.

Owns: a generated 10,000-name zone whose every name is known here, a seeded
Zipf-weighted query mix built from those names (answers, NXDOMAIN, NODATA,
wildcard hits, referrals, CNAMEs), running each server in turn on a free
loopback port with that same zone and query file, driving it with dnsperf,
and reporting QPS, lost queries, server CPU and resident memory; the named
mixes of issue 10 (``--mix``) beside the default one.  With
``--profile`` it instead measures ``authd.query.handle`` in-process, on a
cache hit and on a miss, with and without cProfile.

Invariants: every wait is bounded; every process this script starts runs in
its own process group and is killed (SIGTERM, then SIGKILL) before it exits,
on error and on SIGINT/SIGTERM too; sockets only on 127.0.0.1; the same seed
always gives the same zone and query file.

Usage:
    python -m bench.qps [--seconds 15] [--with-knot] [--json out.json]
                        [--clients 4] [--outstanding 100] [--max-qps N]
                        [--authd-nocache] [--authd-rrl] [--authd-metrics] [--no-pin] [--no-edns]
                        [--lines 50000] [--seed 1] [--keep DIR]
                        [--dnssec [nsec|nsec3]]
    python -m bench.qps --profile [--profile-n 20000] [--dnssec]
    python -m bench.qps --mix realistic|cold|flood|big|burst [--seconds 5]
                        [--records 1000000] [--repeat N] [--json out.json]

With ``--mix`` authd, NSD and Knot (``udp-workers: 1``) serve the mix's zone
at the same time and are measured in turn (interleaved rounds), each with
``dnsperf -c 10 -q 100`` (burst: ``-q 500``) for 5 s; the report gives the
queries each lost and the ratios authd/NSD and authd/Knot.

``--dnssec`` signs the zone with ``dnssec-keygen``/``dnssec-signzone`` (NSEC3
with no salt and no iterations unless ``nsec`` is given) and measures every
server twice, with DO clear and with DO set (dnsperf ``-D``), printing the
DO=1/DO=0 ratio of each and authd's ratios against NSD (and Knot) with DO set.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import querymix, zonegen
from harness.peers import HOST, PeerError, Server, start_authd, start_knot, start_nsd, stop_group

STARTUP_TIMEOUT = 300.0  # seconds for a server to answer its SOA (1M records: over a minute)
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL (dnsperf, py-spy)
DNSPERF_TIMEOUT = 5  # dnsperf -t: a query unanswered this long is lost
NOISY_CPU_PCT = 15.0  # other processes' CPU (% of a core) that makes a run suspect


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

# NSD is built with response rate limiting, 200 q/s per /24 by default:
# every query here comes from 127.0.0.1, so switch it off.
NSD_NO_RRL = "    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\n"
# authd-rrl: rate limiting on with limits no run reaches (its cost, not its effect).
RRL_NEVER = {
    k: 1_000_000 for k in ("responses_per_second", "errors_per_second", "nxdomains_per_second")
}

# What this process started and must stop before it exits (atexit, signals).
_LIVE: list[subprocess.Popen[bytes]] = []  # dnsperf and py-spy
_SERVERS: list[Server] = []


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop a dnsperf or py-spy we started (its own process group); bounded."""
    try:
        stop_group(proc, STOP_TIMEOUT)
    except PeerError as e:
        print(f"qps: {e}", file=sys.stderr)
    if proc in _LIVE:
        _LIVE.remove(proc)


def _kill_all() -> None:
    for proc in list(_LIVE):
        _kill(proc)
    for server in list(_SERVERS):
        stop_server(server, None)


def _on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            pids.append(int(entry))
    return pids


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _machine_ticks() -> list[int]:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal ..."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def wait_quiet(limit: float, idle_min: float = 80.0) -> float:
    """Wait (at most *limit* s) until the machine is *idle_min* % idle over 1 s."""
    deadline = time.monotonic() + limit
    while True:
        a = _machine_ticks()
        time.sleep(1.0)
        b = _machine_ticks()
        total = sum(b[:8]) - sum(a[:8])
        idle = 100.0 * (b[3] - a[3]) / total if total > 0 else 100.0
        if idle >= idle_min or time.monotonic() >= deadline:
            return round(idle, 1)


def _group_cpu(pgid: int) -> int:
    return sum(_cpu_ticks(p) for p in _group_pids(pgid))


def _group_rss_mib(pgid: int) -> float:
    # Excluding taskset/wrappers is unneeded: taskset execs the server.
    return round(sum(_rss_kib(p) for p in _group_pids(pgid)) / 1024, 1)


def start_server(kind: str, zone: Path, cpu: int | None, origin: str = querymix.ORIGIN) -> Server:
    """*kind* (authd, authd-nocache, nsd, knot) serving *zone* on a free port, pinned to *cpu*."""
    zones = {origin: zone}
    if kind.startswith("authd"):
        options: dict[str, object] = {"udp_payload_max": 1232}
        if kind == "authd-nocache":
            options["answer_cache_entries"] = 0
        if kind == "authd-rrl":
            options["rate_limit"] = RRL_NEVER
        if kind == "authd-metrics":
            # The endpoint on a port of its own choosing: counting is what is measured.
            options["metrics"] = {"address": HOST, "port": 0}
        server = start_authd(zones, options=options, timeout=STARTUP_TIMEOUT, cpu=cpu)
    elif kind == "nsd":
        server = start_nsd(zones, timeout=STARTUP_TIMEOUT, extra=NSD_NO_RRL, cpu=cpu)
    else:
        server = start_knot(zones, timeout=STARTUP_TIMEOUT, cpu=cpu)
    _SERVERS.append(server)
    server.kind = kind  # the row's label: "authd-nocache" is an authd too
    return server


def sign_zone(zone: Path, origin: str, denial: str) -> Path:
    """*zone* signed by dnssec-signzone (ECDSA P-256, a KSK and a ZSK): the new file."""
    workdir = zone.parent

    def run(*argv: str) -> str:
        done = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=600, check=True
        )
        return done.stdout.strip()

    ksk = run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", origin)
    zsk = run("dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", origin)
    keys = (workdir / f"{ksk}.key").read_text() + (workdir / f"{zsk}.key").read_text()
    unsigned = workdir / "unsigned.zone"
    unsigned.write_text(zone.read_text() + keys)
    signed = workdir / f"{zone.name}.signed"
    flags = ["-3", "-"] if denial == "nsec3" else []
    run("dnssec-signzone", "-q", *flags, "-o", origin, "-f", str(signed), str(unsigned), ksk, zsk)
    return signed


def stop_server(server: Server, keep: Path | None) -> None:
    """Stop *server*; with --keep, its log is saved as KEEP/<kind>.log."""
    server.stop()
    if server in _SERVERS:
        _SERVERS.remove(server)
    if keep is not None:
        (keep / f"{server.kind}.log").write_text(server.read_log())


def _tail(server: Server, n: int = 30) -> str:
    return "\n".join(server.read_log().splitlines()[-n:])


# --------------------------------------------------------------------------
# Checking the mix, running dnsperf
# --------------------------------------------------------------------------


def check_mix(
    port: int, questions: list[tuple[str, str, str]], per_category: int = 15
) -> list[str]:
    """Ask a few questions of each category; return those whose answer is off-category."""
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    wrong: list[str] = []
    seen: dict[str, int] = {}
    for name, qtype, category in questions:
        if seen.get(category, 0) >= per_category:
            continue
        seen[category] = seen.get(category, 0) + 1
        q = dns.message.make_query(name, qtype, use_edns=0)
        try:
            r = dns.query.udp(q, HOST, port=port, timeout=2.0)
        except Exception as e:  # noqa: BLE001 - a timeout is a finding, not a crash
            wrong.append(f"{name} {qtype} [{category}]: {e!r}")
            continue
        rc = r.rcode()
        first = r.answer[0].rdtype if r.answer else None
        aa = bool(r.flags & dns.flags.AA)
        ok = {
            "answer": rc == dns.rcode.NOERROR and first == dns.rdatatype.from_text(qtype) and aa,
            "nxdomain": rc == dns.rcode.NXDOMAIN,
            "nodata": rc == dns.rcode.NOERROR and not r.answer and aa,
            "wildcard": rc == dns.rcode.NOERROR and bool(r.answer) and aa,
            "referral": rc == dns.rcode.NOERROR
            and not r.answer
            and not aa
            and any(rr.rdtype == dns.rdatatype.NS for rr in r.authority),
            "cname": rc == dns.rcode.NOERROR and first == dns.rdatatype.CNAME,
        }[category]
        if not ok:
            wrong.append(f"{name} {qtype} [{category}]: rcode {dns.rcode.to_text(rc)}, aa={aa}")
    return wrong


_DNSPERF_FIELDS = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "qps": re.compile(r"Queries per second:\s+([\d.]+)"),
    "latency_avg_s": re.compile(r"Average Latency \(s\):\s+([\d.]+)"),
    "latency_max_s": re.compile(r"Average Latency \(s\):.*max ([\d.]+)"),
    "run_time_s": re.compile(r"Run time \(s\):\s+([\d.]+)"),
}


def parse_dnsperf(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, rx in _DNSPERF_FIELDS.items():
        m = rx.search(text)
        if m:
            out[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        out["rcodes"] = m.group(1).strip()
    if "qps" not in out:
        raise RuntimeError(f"dnsperf output not understood:\n{text[-2000:]}")
    sent = int(out.get("sent", 0))
    out["lost_pct"] = round(100.0 * int(out.get("lost", 0)) / sent, 3) if sent else 0.0
    return out


def run_dnsperf(
    port: int,
    qfile: Path,
    args: argparse.Namespace,
    cpu: int | None,
    seconds: float,
    passes: int | None = None,
) -> dict[str, Any]:
    argv = [
        "dnsperf", "-s", HOST, "-p", str(port), "-d", str(qfile),
        "-l", str(seconds), "-c", str(args.clients), "-T", "1",
        "-q", str(args.outstanding), "-t", str(DNSPERF_TIMEOUT),
    ]  # fmt: skip
    if passes is not None:
        argv += ["-n", str(passes)]
    if not args.no_edns:
        argv.append("-e")
    if getattr(args, "do_bit", False):
        argv.append("-D")  # DNSSEC OK (implies EDNS)
    if args.max_qps:
        argv += ["-Q", str(args.max_qps)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    _LIVE.append(proc)
    try:
        out, _ = proc.communicate(timeout=seconds + DNSPERF_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise RuntimeError("dnsperf did not finish in time") from None
    if proc in _LIVE:
        _LIVE.remove(proc)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - t0
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"dnsperf exited {proc.returncode}:\n{text[-2000:]}")
    result = parse_dnsperf(text)
    used = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    result["dnsperf_cpu_pct"] = round(100.0 * used / wall, 1)
    return result


def measure(
    server: Server,
    qfile: Path,
    args: argparse.Namespace,
    client_cpu: int | None,
    spy: bool = False,
    passes: int | None = None,
) -> dict[str, Any]:
    """One measured dnsperf run, with the CPU the server and the rest of the box used."""
    result: dict[str, Any] = {}
    if args.wait_quiet > 0:
        result["idle_before_pct"] = wait_quiet(args.wait_quiet)
    sampler = start_py_spy(server, Path(args.py_spy), args.seconds) if spy else None
    hz = os.sysconf("SC_CLK_TCK")
    m0 = _machine_ticks()
    cpu0, t0 = _group_cpu(server.pgid), time.monotonic()
    perf = run_dnsperf(server.port, qfile, args, client_cpu, args.seconds, passes)
    cpu1, t1 = _group_cpu(server.pgid), time.monotonic()
    m1 = _machine_ticks()
    if sampler is not None:
        result["py_spy"] = finish_py_spy(*sampler)
    result.update(perf)
    result["server_cpu_pct"] = round(100.0 * (cpu1 - cpu0) / hz / (t1 - t0), 1)
    # Queries per CPU-second of the server: fairer than QPS when dnsperf, not
    # the server, is what saturates (a C server rarely reaches 100 % here).
    busy = float(result["server_cpu_pct"]) / 100.0
    result["qps_per_core"] = round(float(perf["qps"]) / busy) if busy > 0.01 else None
    total = sum(m1[:8]) - sum(m0[:8])
    if total > 0:
        result["machine_idle_pct"] = round(100.0 * (m1[3] - m0[3]) / total, 1)
        # CPU used by anything but this server and dnsperf (other jobs on the
        # box, kernel threads), in % of one core: more than ~15 means noise.
        used = (total - (m1[3] - m0[3]) - (m1[4] - m0[4])) / hz / (t1 - t0) * 100.0
        other = used - float(result["server_cpu_pct"]) - float(perf["dnsperf_cpu_pct"])
        result["other_cpu_pct"] = round(other, 1)
    return result


def bench_server(
    server: Server,
    qfile: Path,
    questions: list[tuple[str, str, str]],
    args: argparse.Namespace,
    client_cpu: int | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {"server": server.kind}
    wrong = check_mix(server.port, questions)
    result["mix_mismatches"] = wrong
    for w in wrong[:5]:
        print(f"  {server.kind}: off-category answer: {w}", file=sys.stderr)
    result["rss_ready_mib"] = _group_rss_mib(server.pgid)
    # Warm-up: one pass through the file, at most args.seconds: fills caches.
    warm = run_dnsperf(server.port, qfile, args, client_cpu, args.seconds, passes=1)
    result["warmup_qps"] = warm["qps"]
    runs = []
    for i in range(args.repeat):
        spy = bool(args.py_spy) and server.kind.startswith("authd") and i == 0
        run = measure(server, qfile, args, client_cpu, spy)
        if "py_spy" in run:
            result["py_spy"] = run.pop("py_spy")
        runs.append(run)
    # Best of the runs: other jobs on the machine only ever slow a run down.
    result.update(max(runs, key=lambda r: float(r["qps"])))
    if len(runs) > 1:
        result["runs"] = runs
    result["rss_after_mib"] = _group_rss_mib(server.pgid)
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.kind} died during the run\n{_tail(server)}")
    return result


def start_py_spy(
    server: Server, outdir: Path, seconds: float
) -> tuple[subprocess.Popen[bytes], Path]:
    """Sample the live authd with py-spy (non-blocking) during the measured run."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("--py-spy needs py-spy (pip install py-spy)")
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / f"{server.kind}.raw.txt"
    duration = max(1, int(seconds) - 2)
    argv = [exe, "record", "-p", str(server.pgid), "-d", str(duration), "-r", "250"]
    argv += ["-f", "raw", "-o", str(out), "--nonblocking"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    _LIVE.append(proc)
    return proc, out


def finish_py_spy(proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    try:
        proc.wait(timeout=30)
    finally:
        _kill(proc)
    if not out.exists():
        return {"error": "py-spy wrote nothing (ptrace not permitted?)"}
    summary = summarize_stacks(out.read_text(errors="replace"))
    print(f"  py-spy samples: {summary['samples']} (raw stacks in {out})")
    for label in ("self", "inclusive"):
        print(f"  top {label}:")
        for pct, frame in summary[label][:15]:
            print(f"    {pct:5.1f}%  {frame}")
    return summary


def summarize_stacks(raw: str, top: int = 30) -> dict[str, Any]:
    """Self and inclusive shares of frames in py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short_frame(f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n

    def ranked(d: dict[str, int]) -> list[tuple[float, str]]:
        # Frames under (nearly) every sample, the reactor loop and main, tell nothing.
        items = sorted((kv for kv in d.items() if kv[1] < 0.99 * total), key=lambda kv: -kv[1])
        return [(round(100.0 * c / total, 1), f) for f, c in items[:top]]

    return {"samples": total, "self": ranked(own), "inclusive": ranked(incl)}


def _short_frame(frame: str) -> str:
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    func, path = m.groups()
    for marker in ("site-packages/", "/authd/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/authd/":
                path = "authd/" + path
            break
    return f"{func} ({path})"


# --------------------------------------------------------------------------
# Named traffic mixes (issue 10): --mix realistic|cold|flood|big|burst
# --------------------------------------------------------------------------

MIXES = ("realistic", "cold", "flood", "big", "burst")
MIX_KINDS = ("authd", "nsd", "knot")  # every mix compares against NSD and Knot
BIG_ORIGIN = "big.test."
BIG_RECORDS = 1_000_000  # --records: the 1M-record zone of issue 10 (100k for a quick run)
# The realistic mix: bigger NXDOMAIN and wildcard pools and a flatter, longer
# tail than the default mix, so about 40 % of 100,000 questions are distinct.
REALISTIC_POOLS = {"nx_names": 60_000, "wild_names": 30_000}
REALISTIC_ZIPF, REALISTIC_UNIFORM, REALISTIC_LINES = 0.9, 0.7, 100_000
FLOOD_QPS_GUESS = 150_000  # lines per second of run for one-pass files (flood, big)
MAX_ONE_PASS_LINES = 3_000_000
WARMUP_LIMIT = 300.0  # seconds for the warm-up pass through the whole file


@dataclass(frozen=True, slots=True)
class Mix:
    """A zone, a query file, and how to run it."""

    name: str
    origin: str
    zone: Path
    qfile: Path
    check: list[tuple[str, str, str]]  # questions check_mix asks first
    stats: dict[str, Any]
    warmup: bool  # one pass of the file before the measured runs
    first_pass: bool  # the measured run is the first pass itself (cold caches)
    one_pass: bool  # every question asked at most once (-n 1): never a repeat


def _one_pass_lines(args: argparse.Namespace) -> int:
    return int(args.lines or min(MAX_ONE_PASS_LINES, FLOOD_QPS_GUESS * args.seconds))


def flood_questions(n: int, seed: int, origin: str = querymix.ORIGIN) -> list[str]:
    """*n* distinct random names directly under *origin* (NXDOMAIN), as water torture sends."""
    rng = random.Random(seed * 104729 + 3)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        label = f"{rng.getrandbits(56):014x}"
        if label not in seen:
            seen.add(label)
            out.append(f"{label}.{origin} {rng.choice(('A', 'A', 'A', 'AAAA'))}")
    return out


def build_mix(name: str, base: Path, args: argparse.Namespace) -> Mix:
    zdir = base / "zones"
    zdir.mkdir(exist_ok=True)
    qfile = base / f"queries-{name}.txt"
    if name == "big":
        origin = BIG_ORIGIN
        zone = zdir / "big.test.zone"
        zone_lines = list(zonegen.generate(args.records, origin, args.seed))
        zone.write_text("\n".join(zone_lines) + "\n")
        pairs = zonegen.answerable(zone_lines, origin)
        rng = random.Random(args.seed)
        rng.shuffle(pairs)  # spread over the hosts; repeats only once all were asked
        n = _one_pass_lines(args)
        chosen = [pairs[i % len(pairs)] for i in range(n)]
        qfile.write_text("".join(f"{q} {t}\n" for q, t in chosen))
        hosts = len({q for q, _ in pairs})
        stats = {"lines": n, "distinct_questions": min(n, len(pairs)), "hosts": hosts}
        check = [(q, t, "answer") for q, t in pairs[:60]]
        return Mix(name, origin, zone, qfile, check, stats, False, False, True)
    if name == "flood":
        text, cat = querymix.build_zone(querymix.ZONE_NAMES, args.seed)
        zone = zdir / "bench.test.zone"
        zone.write_text(text)
        n = _one_pass_lines(args)
        lines = flood_questions(n, args.seed)
        qfile.write_text("\n".join(lines) + "\n")
        check = [(ln.split()[0], ln.split()[1], "nxdomain") for ln in lines[:15]]
        stats = {"lines": n, "distinct_questions": n}
        return Mix(name, querymix.ORIGIN, zone, qfile, check, stats, False, False, True)
    text, cat = querymix.build_zone(querymix.ZONE_NAMES, args.seed, **REALISTIC_POOLS)
    zone = zdir / "bench.test.zone"
    zone.write_text(text)
    questions, stats = querymix.build_queries(
        cat, args.lines or REALISTIC_LINES, args.seed, REALISTIC_ZIPF, REALISTIC_UNIFORM
    )
    qfile.write_text("".join(f"{n} {t}\n" for n, t, _ in questions))
    cold = name == "cold"
    return Mix(name, querymix.ORIGIN, zone, qfile, questions, stats, not cold, cold, False)


def run_mix(args: argparse.Namespace, mix: Mix, server_cpu: int | None, client_cpu: int | None):  # noqa: ANN201
    """Every server of MIX_KINDS up at once, runs interleaved; one row per server."""
    kinds = [*MIX_KINDS, *(["authd-nocache"] if args.authd_nocache else [])]
    servers: dict[str, Server] = {}
    rows: dict[str, dict[str, Any]] = {}
    try:
        for kind in kinds:
            print(f"[{kind}] starting ...", flush=True)
            t0 = time.monotonic()
            servers[kind] = start_server(kind, mix.zone, server_cpu, mix.origin)
            rows[kind] = {"server": kind, "startup_s": round(time.monotonic() - t0, 2)}
            print(f"[{kind}] ready in {rows[kind]['startup_s']} s", flush=True)
        for kind, server in servers.items():
            wrong = check_mix(server.port, mix.check)
            rows[kind]["mix_mismatches"] = wrong
            for w in wrong[:5]:
                print(f"  {kind}: off-category answer: {w}", file=sys.stderr)
            rows[kind]["rss_ready_mib"] = _group_rss_mib(server.pgid)
            if mix.warmup:
                # The whole file once, however long it takes: "after warm-up"
                # means every question of the mix has been asked.
                warm = run_dnsperf(server.port, mix.qfile, args, client_cpu, WARMUP_LIMIT, 1)
                rows[kind]["warmup_qps"] = warm["qps"]
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
        rounds = 1 if mix.first_pass else args.repeat
        for i in range(rounds):
            for kind, server in servers.items():  # interleaved: noise hits all alike
                passes = 1 if mix.first_pass or mix.one_pass else None
                run = measure(server, mix.qfile, args, client_cpu, passes=passes)
                runs[kind].append(run)
                print(
                    f"[{kind}] round {i + 1}: {float(run['qps']):,.0f} q/s, "
                    f"lost {run.get('lost', 0)}, server CPU {run['server_cpu_pct']}%",
                    flush=True,
                )
        for kind, server in servers.items():
            rows[kind].update(max(runs[kind], key=lambda r: float(r["qps"])))
            if len(runs[kind]) > 1:
                rows[kind]["runs"] = runs[kind]
            rows[kind]["rss_after_mib"] = _group_rss_mib(server.pgid)
            if server.process.poll() is not None:
                raise RuntimeError(f"{kind} died during the run\n{_tail(server)}")
    finally:
        for server in servers.values():
            stop_server(server, None)
    return list(rows.values())


# --------------------------------------------------------------------------
# In-process profile of authd.query.handle
# --------------------------------------------------------------------------


def profile(
    args: argparse.Namespace, zone: Path, questions: list[tuple[str, str, str]]
) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    import dns.message

    from authd.build import build_snapshot
    from authd.config import config_from_dict
    from authd.query import Request, Transport, handle

    def snapshot(cache_entries: int, rrl: bool = False):  # noqa: ANN202
        options: dict[str, object] = {
            "udp_payload_max": 1232,
            "answer_cache_entries": cache_entries,
        }
        if rrl:
            options["rate_limit"] = RRL_NEVER
        cfg = config_from_dict(
            {
                "listen": [{"address": HOST, "port": 5300}],
                "options": options,
                "zones": [{"name": "bench.test", "file": str(zone)}],
            },
            None,
            str(zone.parent),
        )
        snap, _ = build_snapshot(cfg, None, 0)
        return snap

    n = args.profile_n
    reqs = []
    for i, (name, qtype, _) in enumerate(questions[:n]):
        q = dns.message.make_query(
            name,
            qtype,
            use_edns=None if args.no_edns and not args.do_bit else 0,
            want_dnssec=args.do_bit,
        )
        q.id = i & 0xFFFF
        reqs.append(Request(q.to_wire(), "127.0.0.1", HOST, Transport.UDP))
    hit = snapshot(1_000_000)
    for r in reqs:
        handle(r, hit)  # warm: every question is now cached
    miss = snapshot(0)  # answer_cache_entries 0: every query takes the full path
    hit_rrl = snapshot(1_000_000, rrl=True)  # the hit path with rate limiting on
    for r in reqs:
        handle(r, hit_rrl)
    out: dict[str, Any] = {"requests": len(reqs)}
    if args.dnssec:
        out["dnssec_miss"] = _do_ratio(questions[:n], miss, handle, Request, Transport)
    for label, snap in (("hit", hit), ("miss", miss), ("hit_rrl", hit_rrl)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for r in reqs:
                handle(r, snap)
            best = min(best, time.perf_counter() - t0)
        out[f"{label}_us_per_query"] = round(1e6 * best / len(reqs), 2)
        out[f"{label}_qps_core_only"] = round(len(reqs) / best)
        prof = cProfile.Profile()
        prof.enable()
        for r in reqs:
            handle(r, snap)
        prof.disable()
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("tottime").print_stats(args.profile_top)
        st.sort_stats("cumulative").print_stats(args.profile_top)
        out[f"{label}_profile"] = buf.getvalue()
        print(
            f"\n===== {label}: {out[f'{label}_us_per_query']} us/query "
            f"({out[f'{label}_qps_core_only']} q/s, handle() only) ====="
        )
        print(buf.getvalue())
    return out


def _do_ratio(questions, snap, handle, request, transport) -> dict[str, float]:  # noqa: ANN001
    """The miss path with DO clear and set, measured turn about in one
    process (best of 5 each), so that machine noise hits both alike."""
    import dns.message

    reqs: dict[bool, list[Any]] = {}
    for do in (False, True):
        reqs[do] = []
        for i, (name, qtype, _) in enumerate(questions):
            q = dns.message.make_query(name, qtype, use_edns=0, want_dnssec=do)
            q.id = i & 0xFFFF
            reqs[do].append(request(q.to_wire(), "127.0.0.1", HOST, transport.UDP))
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for do in (False, True):
            t0 = time.perf_counter()
            for r in reqs[do]:
                handle(r, snap)
            best[do] = min(best[do], time.perf_counter() - t0)
    n = len(questions)
    out = {
        "do0_us_per_query": round(1e6 * best[False] / n, 2),
        "do1_us_per_query": round(1e6 * best[True] / n, 2),
        "do1_over_do0": round(best[True] / best[False], 3),
    }
    print(
        f"\n===== miss path, turn about: DO=0 {out['do0_us_per_query']} us, "
        f"DO=1 {out['do1_us_per_query']} us per query: DO=1/DO=0 = {out['do1_over_do0']} ====="
    )
    return out


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def _warmup(row: dict[str, Any]) -> str:
    qps = row.get("warmup_qps")
    return "-" if qps is None else f"{float(qps):,.0f}"


def _print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'server':<14}{'QPS':>11}{'lost':>8}{'lost %':>9}{'warm-up QPS':>13}{'srv CPU %':>11}"
        f"{'QPS/core':>11}{'dnsperf CPU %':>15}{'other CPU %':>13}{'avg lat ms':>12}{'RSS MiB':>9}"
    )
    print(head)
    print("-" * len(head))
    noisy = [str(r["server"]) for r in rows if float(r.get("other_cpu_pct", 0)) > NOISY_CPU_PCT]
    for r in rows:
        print(
            f"{r['server']:<14}{float(r['qps']):>11,.0f}{int(r.get('lost', 0)):>8}"
            f"{float(r['lost_pct']):>9.2f}"
            f"{_warmup(r):>13}{float(r['server_cpu_pct']):>11.1f}"
            f"{float(r['qps_per_core'] or 0):>11,.0f}{float(r['dnsperf_cpu_pct']):>15.1f}"
            f"{float(r.get('other_cpu_pct', 0)):>13.1f}"
            f"{1000 * float(r.get('latency_avg_s', 0)):>12.3f}{float(r['rss_after_mib']):>9.1f}"
        )
    if noisy:
        print(
            f"WARNING: other processes used more than {NOISY_CPU_PCT:g}% of a core during "
            f"the run of {', '.join(noisy)}: those figures are not comparable; "
            "rerun on a quiet machine"
        )


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """authd/NSD and authd/Knot, raw and per core; printed as they are computed."""
    by = {str(r["server"]): float(r["qps"]) for r in rows}
    per_core = {str(r["server"]): r["qps_per_core"] for r in rows}
    ratios = {}
    for other in ("nsd", "knot"):
        if other in by and by[other] > 0:
            for mine in ("authd", "authd-nocache", "authd-rrl", "authd-metrics"):
                if mine not in by:
                    continue
                ratios[f"{mine}/{other}"] = round(by[mine] / by[other], 4)
                a_pc, o_pc = per_core.get(mine), per_core.get(other)
                if a_pc and o_pc:
                    ratios[f"{mine}/{other} per core"] = round(float(a_pc) / float(o_pc), 4)
    if by.get("authd") and "authd-rrl" in by:
        ratios["authd-rrl/authd"] = round(by["authd-rrl"] / by["authd"], 4)
    if by.get("authd") and "authd-metrics" in by:
        ratios["authd-metrics/authd"] = round(by["authd-metrics"] / by["authd"], 4)
    # --dnssec: every server also ran with DO set, as "<server> DO".
    for srv in [k for k in by if f"{k} DO" in by and by[k]]:
        ratios[f"{srv} DO/{srv}"] = round(by[f"{srv} DO"] / by[srv], 4)
    for other in ("nsd", "knot"):
        if by.get(f"{other} DO"):
            for mine in ("authd", "authd-nocache"):
                if f"{mine} DO" in by:
                    ratios[f"{mine} DO/{other} DO"] = round(by[f"{mine} DO"] / by[f"{other} DO"], 4)
    print()
    for k, v in ratios.items():
        print(f"{k}: {v:.3f}  ({100 * v:.1f}%)")
    return ratios


def _pinning(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """(server CPU, dnsperf CPU): 0 and 1 as issue 10 measured, unless --no-pin."""
    for tool in ("dnsperf", "nsd") + (("knotd",) if args.with_knot or args.mix else ()):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            raise RuntimeError(f"{tool} is not installed")
    ncpu = os.cpu_count() or 1
    pin = ncpu >= 2 and not args.no_pin and shutil.which("taskset") is not None
    server_cpu, client_cpu = (0, 1) if pin else (None, None)
    print(
        f"dnsperf: -c {args.clients} -T 1 -q {args.outstanding} -l {args.seconds:g}"
        f"{'' if args.no_edns else ' -e'}{f' -Q {args.max_qps}' if args.max_qps else ''}; "
        f"pinning: {'server CPU 0, dnsperf CPU 1' if server_cpu is not None else 'off'}"
    )
    return server_cpu, client_cpu


def main_mix(args: argparse.Namespace, base: Path) -> int:
    """--mix NAME: build it, run authd, NSD and Knot on it, print the table and ratios."""
    t0 = time.monotonic()
    mix = build_mix(args.mix, base, args)
    print(f"mix {mix.name}: zone {mix.origin} ({mix.zone}), built in {time.monotonic() - t0:.1f} s")
    print(f"queries: {json.dumps(mix.stats)}")
    server_cpu, client_cpu = _pinning(args)
    rows = run_mix(args, mix, server_cpu, client_cpu)
    print()
    _print_table(rows)
    ratios = _ratios(rows)
    authd = next(r for r in rows if r["server"] == "authd")
    lost = {str(r["server"]): int(r.get("lost", 0)) for r in rows}
    print(f"queries lost: {lost}")
    if args.mix == "burst":
        verdict = "PASS" if lost["authd"] == 0 else "FAIL"
        print(
            f"burst (dnsperf -c {args.clients} -q {args.outstanding}): authd lost "
            f"{lost['authd']} of {authd.get('sent', 0)}: {verdict}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "mix": mix.name,
                    "queries": mix.stats,
                    "settings": {
                        "seconds": args.seconds,
                        "clients": args.clients,
                        "outstanding": args.outstanding,
                        "records": args.records if mix.name == "big" else None,
                        "pinned": server_cpu is not None,
                    },
                    "results": rows,
                    "ratios": ratios,
                    "lost": lost,
                },
                indent=2,
            )
        )
    return 1 if args.mix == "burst" and lost["authd"] else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--mix",
        choices=MIXES,
        help="a named traffic shape of issue 10 (authd, NSD and Knot, interleaved): "
        "realistic (10k-name zone, ~40%% distinct questions, after a warm-up pass), "
        "cold (the same, first pass), flood (every question a new random name), "
        "big (a --records zone, questions spread over its hosts), "
        "burst (realistic at dnsperf -c 10 -q 500: must lose nothing)",
    )
    p.add_argument(
        "--records", type=int, default=BIG_RECORDS, help="records of the big mix's zone (1000000)"
    )
    p.add_argument(
        "--seconds", type=float, default=None, help="measured run per server (15; mixes 5)"
    )
    p.add_argument("--with-knot", action="store_true", help="also benchmark Knot DNS")
    p.add_argument(
        "--authd-nocache",
        action="store_true",
        help="also run authd with answer_cache_entries: 0 (the miss path)",
    )
    p.add_argument(
        "--authd-rrl",
        action="store_true",
        help="also run authd with rate_limit on, at limits never reached (RRL's cost)",
    )
    p.add_argument(
        "--authd-metrics",
        action="store_true",
        help="also run authd with options.metrics on (the cost of counting)",
    )
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--clients", type=int, default=None, help="dnsperf -c (4; mixes 10)")
    p.add_argument("--outstanding", type=int, default=None, help="dnsperf -q (100; burst 500)")
    p.add_argument("--max-qps", type=int, default=0, help="dnsperf -Q (0: unlimited)")
    p.add_argument("--no-edns", action="store_true", help="queries without EDNS (dnsperf -e off)")
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin the server and dnsperf to separate CPUs"
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="S",
        help="before each measured run wait up to S seconds for an idle machine (60; 0: no)",
    )
    p.add_argument(
        "--py-spy",
        metavar="DIR",
        help="sample authd with py-spy during its measured run; raw stacks go to DIR",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="measured runs per server; the best is kept (1)"
    )
    p.add_argument(
        "--lines",
        type=int,
        default=None,
        help="query file lines (50000; realistic/cold 100000; flood/big 150000 per second)",
    )
    p.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent (1.0)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", metavar="DIR", help="write zone, queries and logs here and keep them")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile authd.query.handle in-process instead (hit vs miss)",
    )
    p.add_argument(
        "--dnssec",
        nargs="?",
        const="nsec3",
        choices=("nsec", "nsec3"),
        help="sign the zone (NSEC3 by default) and measure DO=0 and DO=1",
    )
    p.add_argument(
        "--do", dest="do_bit", action="store_true", help="with --profile: queries with DO set"
    )
    p.add_argument("--profile-n", type=int, default=20_000, help="requests per profile loop")
    p.add_argument("--profile-top", type=int, default=25)
    args = p.parse_args(argv)
    mixed = args.mix is not None
    if args.seconds is None:
        args.seconds = 5.0 if mixed else 15.0
    if args.clients is None:
        args.clients = 10 if mixed else 4
    if args.outstanding is None:
        args.outstanding = 500 if args.mix == "burst" else 100
    if args.records < zonegen.MIN_RECORDS:
        p.error(f"--records must be at least {zonegen.MIN_RECORDS}")
    if args.seconds <= 0 or args.seconds > 600:
        p.error("--seconds must be in (0, 600]")
    if not 1 <= args.repeat <= 20:
        p.error("--repeat must be in 1..20")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(_kill_all)

    if args.keep:
        base = Path(args.keep).resolve()
        base.mkdir(parents=True, exist_ok=True)
        for kind in ("authd", "authd-nocache", "authd-rrl", "authd-metrics", "nsd", "knot"):
            (base / f"{kind}.log").unlink(missing_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="authd-qps-"))
    try:
        if mixed:
            return main_mix(args, base)
        if args.lines is None:
            args.lines = 50_000
        text, cat = querymix.build_zone(querymix.ZONE_NAMES, args.seed)
        zdir = base / "zones"
        zdir.mkdir(exist_ok=True)
        zone = zdir / "bench.test.zone"
        zone.write_text(text)
        if args.dnssec:
            zone = sign_zone(zone, querymix.ORIGIN, args.dnssec)
            print(f"signed with {args.dnssec.upper()}: {zone}")
        questions, qstats = querymix.build_queries(cat, args.lines, args.seed, args.zipf)
        qfile = base / "queries.txt"
        qfile.write_text("".join(f"{n} {t}\n" for n, t, _ in questions))
        print(f"zone: {cat.names} names, {cat.records} records ({zone})")
        print(
            f"queries: {qstats['lines']} lines, {qstats['distinct_questions']} distinct, "
            f"top 100 questions = {float(qstats['top100_share']) * 100:.0f}% of traffic"
        )
        print(f"mix: {qstats['by_category']}")
        print(f"qtypes: {qstats['by_qtype']}")

        if args.profile:
            result = profile(args, zone, questions)
            if args.json:
                Path(args.json).write_text(json.dumps(result, indent=2))
            return 0

        server_cpu, client_cpu = _pinning(args)

        kinds = ["authd", *(["authd-nocache"] if args.authd_nocache else []), "nsd"]
        kinds[1:1] = ["authd-rrl"] if args.authd_rrl else []
        kinds[1:1] = ["authd-metrics"] if args.authd_metrics else []
        kinds += ["knot"] if args.with_knot else []

        rows: list[dict[str, Any]] = []
        runs = [(kind, do) for kind in kinds for do in ((False, True) if args.dnssec else (False,))]
        for kind, do in runs:
            args.do_bit = do
            kind_label = f"{kind} DO" if do else kind
            print(f"\n[{kind_label}] starting ...", flush=True)
            t0 = time.monotonic()
            server = start_server(kind, zone, server_cpu)
            try:
                startup = round(time.monotonic() - t0, 2)
                print(
                    f"[{kind}] ready on port {server.port} in {startup}s; warm-up pass, "
                    f"then {args.seconds:g}s measured",
                    flush=True,
                )
                row = bench_server(server, qfile, questions, args, client_cpu)
                row["server"] = kind_label
                row["startup_s"] = startup
                if kind.startswith("authd"):
                    row["authd_vmrss_mib"] = round(_rss_kib(server.pgid) / 1024, 1)
                rows.append(row)
                print(
                    f"[{kind_label}] {float(row['qps']):,.0f} q/s, lost {row['lost_pct']}%, "
                    f"server CPU {row['server_cpu_pct']}%, RSS {row['rss_after_mib']} MiB",
                    flush=True,
                )
            finally:
                stop_server(server, base if args.keep else None)

        print()
        _print_table(rows)
        ratios = _ratios(rows)
        a = next(r for r in rows if r["server"] == "authd")
        print(
            f"authd VmRSS after the run: {a['authd_vmrss_mib']} MiB "
            f"(after load, before queries: {a['rss_ready_mib']} MiB)"
        )
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "zone": asdict(cat) | {"pools": {k: len(v) for k, v in cat.pools.items()}},
                        "queries": qstats,
                        "settings": {
                            "seconds": args.seconds,
                            "clients": args.clients,
                            "outstanding": args.outstanding,
                            "max_qps": args.max_qps,
                            "edns": not args.no_edns,
                            "dnssec": args.dnssec,
                            "pinned": server_cpu is not None,
                        },
                        "results": rows,
                        "ratios": ratios,
                    },
                    indent=2,
                )
            )
        return 0
    except RuntimeError as e:
        print(f"qps: {e}", file=sys.stderr)
        return 1
    finally:
        _kill_all()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
