"""UDP query-throughput benchmark: authd against NSD (and Knot) with dnsperf.

Owns: a generated 10,000-name zone whose every name is known here, a seeded
Zipf-weighted query mix built from those names (answers, NXDOMAIN, NODATA,
wildcard hits, referrals, CNAMEs), running each server in turn on a free
loopback port with that same zone and query file, driving it with dnsperf,
and reporting QPS, lost queries, server CPU and resident memory.  With
``--profile`` it instead measures ``authd.query.handle`` in-process, on a
cache hit and on a miss, with and without cProfile.

Invariants: every wait is bounded; every process this script starts runs in
its own process group and is killed (SIGTERM, then SIGKILL) before it exits,
on error and on SIGINT/SIGTERM too; sockets only on 127.0.0.1; the same seed
always gives the same zone and query file.

Usage:
    python bench/qps.py [--seconds 15] [--with-knot] [--json out.json]
                        [--clients 4] [--outstanding 100] [--max-qps N]
                        [--authd-nocache] [--no-pin] [--no-edns]
                        [--lines 50000] [--seed 1] [--keep DIR]
    python bench/qps.py --profile [--profile-n 20000]
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import itertools
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ORIGIN = "bench.test."
HOST = "127.0.0.1"
ZONE_NAMES = 10_000
STARTUP_TIMEOUT = 60.0  # seconds for a server to answer its SOA
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
PROBE_TIMEOUT = 0.5
DNSPERF_TIMEOUT = 5  # dnsperf -t: a query unanswered this long is lost
AUTHD_READY = "authd ready"
NOISY_CPU_PCT = 15.0  # other processes' CPU (% of a core) that makes a run suspect

_WORDS = (
    "api app auth backup blog cache cdn chat ci db dev docs edge files git gw "
    "help img intra lb ldap log media mon office portal proxy queue search shop "
    "sip sso stage static status store test vpn web wiki www"
).split()

# The query mix: category -> (percent, [(percent within category, pool name)]).
MIX: dict[str, tuple[float, list[tuple[float, str]]]] = {
    "answer": (60, [(55, "a"), (20, "aaaa"), (10, "mx"), (15, "txt")]),
    "nxdomain": (15, [(100, "nx")]),
    "nodata": (10, [(100, "nodata")]),
    "wildcard": (5, [(100, "wild")]),
    "referral": (5, [(100, "referral")]),
    "cname": (5, [(100, "cname")]),
}


# --------------------------------------------------------------------------
# Zone and query mix
# --------------------------------------------------------------------------


@dataclass
class Catalog:
    """What the generated zone holds, as question pools (name, qtype)."""

    pools: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # owner names by kind
    names: int = 0
    records: int = 0


def build_zone(n_names: int = ZONE_NAMES, seed: int = 1) -> tuple[str, Catalog]:
    """The text of zone ``bench.test.`` with exactly *n_names* owner names.

    Layout (relative names): the apex (SOA, NS, MX, TXT), ns1/ns2 and
    mx1/mx2 with A+AAAA, ``*.wild`` (A, TXT), 250 delegations ``subN`` with
    in-domain glue ``ns1.subN``/``ns2.subN``, 600 CNAMEs ``aliasN`` (50 to
    names outside the zone), 200 two-link chains ``chainN -> aliasM -> host``,
    400 TXT-only ``_dmarc.<host>``, and hosts ``<word>N`` for the rest: all
    with A, half with AAAA, 10 % with MX, 15 % with TXT.
    """
    rng = random.Random(seed)
    n_deleg, n_alias, n_chain, n_dmarc = 250, 600, 200, 400
    fixed = 1 + 2 + 2 + 1  # apex, ns1/ns2, mx1/mx2, *.wild
    n_hosts = n_names - fixed - 3 * n_deleg - n_alias - n_chain - n_dmarc
    if n_hosts < n_dmarc:
        raise ValueError(f"{n_names} names are too few for this layout")
    cat = Catalog()
    pools: dict[str, list[tuple[str, str]]] = {
        k: [] for k in ("a", "aaaa", "mx", "txt", "nx", "nodata", "wild", "referral", "cname")
    }
    lines = [
        f"; bench/qps.py: {n_names} names, seed {seed}",
        f"$ORIGIN {ORIGIN}",
        "$TTL 3600",
        "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300",
        "@ NS ns1",
        "@ NS ns2",
        "@ MX 10 mx1",
        "@ MX 20 mx2",
        '@ TXT "v=spf1 mx -all"',
    ]
    records = 6

    def addr4(i: int) -> str:
        return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

    def addr6(i: int) -> str:
        return f"2001:db8:{(i >> 16) & 0xFFFF:x}:{i & 0xFFFF:x}::1"

    for i, label in enumerate(("ns1", "ns2", "mx1", "mx2")):
        lines += [f"{label} A {addr4(i + 1)}", f"{label} AAAA {addr6(i + 1)}"]
        records += 2
        pools["a"].append((label, "A"))
        pools["aaaa"].append((label, "AAAA"))
        pools["nodata"].append((label, "TXT"))
    pools["mx"].append(("@", "MX"))
    pools["txt"].append(("@", "TXT"))
    pools["nodata"] += [("@", "AAAA"), ("wild", "A")]  # wild: an empty non-terminal
    lines += ["*.wild A 192.0.2.80", '*.wild TXT "wildcard"']
    records += 2

    hosts: list[str] = []
    v6: list[bool] = []
    for i in range(n_hosts):
        name = f"{_WORDS[i % len(_WORDS)]}{i}"
        hosts.append(name)
        base = 1000 + i
        lines.append(f"{name} A {addr4(base)}")
        records += 1
        if rng.random() < 0.2:  # some hosts have two addresses
            lines.append(f"{name} A {addr4(base + 500_000)}")
            records += 1
        pools["a"].append((name, "A"))
        has6 = rng.random() < 0.5
        v6.append(has6)
        if has6:
            lines.append(f"{name} AAAA {addr6(base)}")
            records += 1
            pools["aaaa"].append((name, "AAAA"))
        else:
            pools["nodata"].append((name, "AAAA"))
        if rng.random() < 0.10:
            lines += [f"{name} MX 10 mx1", f"{name} MX 20 mx2"]
            records += 2
            pools["mx"].append((name, "MX"))
        else:
            pools["nodata"].append((name, "MX"))
        if rng.random() < 0.15:
            lines.append(f'{name} TXT "site-verification={rng.getrandbits(64):016x}"')
            records += 1
            pools["txt"].append((name, "TXT"))
        elif rng.random() < 0.3:
            pools["nodata"].append((name, "TXT"))

    for host in rng.sample(hosts, n_dmarc):
        owner = f"_dmarc.{host}"
        lines.append(f'{owner} TXT "v=DMARC1; p=none; rua=mailto:dmarc@{host}.bench.test"')
        records += 1
        pools["txt"].append((owner, "TXT"))
        pools["nodata"].append((owner, "A"))

    aliases_in: list[str] = []
    for i in range(n_alias):
        owner = f"alias{i}"
        if i % 12 == 11:  # 50 of 600 point outside the zone
            lines.append(f"{owner} CNAME cdn{i}.example.net.")
            pools["cname"].append((owner, "A"))
        else:
            target = rng.randrange(n_hosts)
            lines.append(f"{owner} CNAME {hosts[target]}")
            aliases_in.append(owner)
            pools["cname"].append((owner, "A"))
            if v6[target]:
                pools["cname"].append((owner, "AAAA"))
        records += 1
    for i in range(n_chain):
        lines.append(f"chain{i} CNAME {rng.choice(aliases_in)}")
        records += 1
        pools["cname"].append((f"chain{i}", "A"))

    for i in range(n_deleg):
        sub = f"sub{i}"
        lines += [f"{sub} NS ns1.{sub}", f"{sub} NS ns2.{sub}"]
        lines += [f"ns1.{sub} A {addr4(900_000 + 2 * i)}", f"ns2.{sub} A {addr4(900_001 + 2 * i)}"]
        records += 4
        if i % 3 == 0:
            lines.append(f"ns1.{sub} AAAA {addr6(900_000 + i)}")
            records += 1
        pools["referral"] += [(f"www.{sub}", "A"), (f"www.{sub}", "AAAA"), (sub, "A")]
        pools["referral"] += [(f"mail.{sub}", "MX"), (sub, "NS")]

    # Names that do not exist: typos, retired hosts, names below hosts.
    nx_seen: set[str] = set()
    while len(nx_seen) < 6000:
        host = rng.choice(hosts)
        form = rng.randrange(4)
        if form == 0:
            name = f"{host}x"
        elif form == 1:
            name = f"old-{host}"
        elif form == 2:
            name = f"{rng.choice(_WORDS)}.{host}"
        else:
            name = f"{rng.choice(_WORDS)}-{rng.randrange(1_000_000)}"
        if name not in nx_seen:
            nx_seen.add(name)
            pools["nx"].append((name, rng.choice(("A", "A", "A", "AAAA", "MX", "TXT"))))
    for i in range(3000):
        pools["wild"].append((f"{rng.choice(_WORDS)}-{i}.wild", rng.choice(("A", "A", "A", "TXT"))))

    cat.pools = pools
    cat.counts = {
        "apex": 1,
        "ns/mx hosts": 4,
        "wildcard": 1,
        "hosts": n_hosts,
        "_dmarc TXT": n_dmarc,
        "CNAME aliases": n_alias,
        "CNAME chains": n_chain,
        "delegations": n_deleg,
        "glue names": 2 * n_deleg,
    }
    cat.names = sum(cat.counts.values())
    cat.records = records
    assert cat.names == n_names, cat.names
    return "\n".join(lines) + "\n", cat


def _fqdn(rel: str) -> str:
    return ORIGIN if rel == "@" else f"{rel}.{ORIGIN}"


def build_queries(
    cat: Catalog, lines: int, seed: int = 1, zipf_s: float = 1.0
) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """*lines* questions (fqdn, qtype, category) drawn by MIX with Zipf popularity.

    Each pool is shuffled (seeded) and its k-th entry gets weight 1/k**s, so a
    few names are very popular and a long tail is asked once or never, as in
    real traffic.
    """
    rng = random.Random(seed * 7919 + 17)
    cums: dict[str, list[float]] = {}
    order: dict[str, list[tuple[str, str]]] = {}
    for pool, items in cat.pools.items():
        shuffled = list(items)
        rng.shuffle(shuffled)
        order[pool] = shuffled
        cums[pool] = list(
            itertools.accumulate(1.0 / (k**zipf_s) for k in range(1, len(shuffled) + 1))
        )
    slots: list[tuple[str, str]] = []  # (category, pool)
    weights: list[float] = []
    for category, (pct, subs) in MIX.items():
        for sub_pct, pool in subs:
            slots.append((category, pool))
            weights.append(pct * sub_pct / 100.0)
    slot_cum = list(itertools.accumulate(weights))
    out: list[tuple[str, str, str]] = []
    for _ in range(lines):
        category, pool = slots[bisect.bisect(slot_cum, rng.random() * slot_cum[-1])]
        cum = cums[pool]
        name, qtype = order[pool][bisect.bisect(cum, rng.random() * cum[-1])]
        out.append((_fqdn(name), qtype, category))
    distinct = len({(n, t) for n, t, _ in out})
    by_cat: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for _, t, c in out:
        by_cat[c] = by_cat.get(c, 0) + 1
        by_type[t] = by_type.get(t, 0) + 1
    top = sum(
        sorted(
            (sum(1 for _ in g) for _, g in itertools.groupby(sorted((n, t) for n, t, _ in out))),
            reverse=True,
        )[:100]
    )
    stats = {
        "lines": lines,
        "distinct_questions": distinct,
        "top100_share": round(top / lines, 3),
        "by_category": {k: round(v / lines, 3) for k, v in by_cat.items()},
        "by_qtype": {k: round(v / lines, 3) for k, v in sorted(by_type.items())},
        "zipf_s": zipf_s,
    }
    return out, stats


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

_LIVE: list[subprocess.Popen[bytes]] = []


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM our child's own process group, then SIGKILL it; bounded."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    try:  # helpers forked by NSD live in the same group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"qps: process {proc.pid} survived SIGKILL", file=sys.stderr)
    if proc in _LIVE:
        _LIVE.remove(proc)


def _kill_all() -> None:
    for proc in list(_LIVE):
        _kill(proc)


def _on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _spawn(argv: list[str], log: Path, cpu: int | None, cwd: Path) -> subprocess.Popen[bytes]:
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    _LIVE.append(proc)
    return proc


def free_port() -> int:
    """A port on 127.0.0.1 free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")


def _answers_soa(port: int) -> bool:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    q = dns.message.make_query(ORIGIN, "SOA")
    try:
        r = dns.query.udp(q, HOST, port=port, timeout=PROBE_TIMEOUT)
    except (OSError, dns.exception.DNSException):
        return False
    return r.rcode() == dns.rcode.NOERROR and bool(r.answer)


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


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log: Path

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _wait_ready(server: Server, needle: str | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.kind} exited with {server.proc.returncode}\n{server.tail()}"
            )
        ok = needle is None or needle in server.log.read_text(errors="replace")
        if ok and _answers_soa(server.port):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.kind} not ready after {timeout:.0f}s\n{server.tail()}")
        time.sleep(0.1)


def start_authd(zone: Path, base: Path, cpu: int | None, cache: bool = True) -> Server:
    port = free_port()
    workdir = base / ("authd" if cache else "authd-nocache")
    workdir.mkdir()
    options = "  udp_payload_max: 1232\n" + ("" if cache else "  answer_cache_entries: 0\n")
    conf = (
        f"listen:\n  - {{address: {HOST}, port: {port}}}\n"
        f"options:\n{options}"
        f"zones:\n  - {{name: bench.test, file: {zone}}}\n"
    )
    (workdir / "authd.yaml").write_text(conf)
    argv = [sys.executable, "-m", "authd", "serve", "-c", str(workdir / "authd.yaml")]
    log = workdir / "authd.log"
    server = Server(
        "authd" if cache else "authd-nocache", _spawn(argv, log, cpu, workdir), port, workdir, log
    )
    _wait_ready(server, AUTHD_READY, STARTUP_TIMEOUT)
    return server


def start_nsd(zone: Path, base: Path, cpu: int | None) -> Server:
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    port = free_port()
    workdir = base / "nsd"
    workdir.mkdir()
    conf = (
        "server:\n"
        f"    ip-address: {HOST}@{port}\n"
        f"    port: {port}\n"
        "    do-ip6: no\n"
        '    username: ""\n'
        '    chroot: ""\n'
        f'    zonesdir: "{zone.parent}"\n'
        f'    pidfile: "{workdir / "nsd.pid"}"\n'
        f'    xfrdfile: "{workdir / "xfrd.state"}"\n'
        f'    zonelistfile: "{workdir / "zone.list"}"\n'
        f'    xfrdir: "{workdir}"\n'
        f'    logfile: "{workdir / "nsd.log"}"\n'
        '    database: ""\n'
        "    server-count: 1\n"
        # NSD is built with response rate limiting, 200 q/s per /24 by default:
        # every query here comes from 127.0.0.1, so switch it off.
        "    rrl-ratelimit: 0\n"
        "    rrl-whitelist-ratelimit: 0\n"
        "    verbosity: 1\n"
        "remote-control:\n"
        "    control-enable: no\n"
        "zone:\n"
        '    name: "bench.test"\n'
        f'    zonefile: "{zone}"\n'
    )
    (workdir / "nsd.conf").write_text(conf)
    log = workdir / "nsd.out"
    argv = [nsd, "-d", "-c", str(workdir / "nsd.conf")]
    server = Server("nsd", _spawn(argv, log, cpu, workdir), port, workdir, workdir / "nsd.log")
    _wait_ready(server, None, STARTUP_TIMEOUT)
    return server


def start_knot(zone: Path, base: Path, cpu: int | None) -> Server:
    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    port = free_port()
    workdir = base / "knot"
    for sub in ("run", "db"):
        (workdir / sub).mkdir(parents=True)
    conf = (
        "server:\n"
        f'    rundir: "{workdir / "run"}"\n'
        f"    listen: {HOST}@{port}\n"
        "    udp-workers: 1\n"
        "    tcp-workers: 1\n"
        "    background-workers: 1\n"
        "database:\n"
        f'    storage: "{workdir / "db"}"\n'
        "log:\n"
        "  - target: stderr\n"
        "    any: info\n"
        "template:\n"
        "  - id: default\n"
        f'    storage: "{zone.parent}"\n'
        "    zonefile-sync: -1\n"
        "    zonefile-load: whole\n"
        "    journal-content: none\n"
        "zone:\n"
        '  - domain: "bench.test."\n'
        f'    file: "{zone}"\n'
    )
    (workdir / "knot.conf").write_text(conf)
    log = workdir / "knot.log"
    argv = [knotd, "-c", str(workdir / "knot.conf")]
    server = Server("knot", _spawn(argv, log, cpu, workdir), port, workdir, log)
    _wait_ready(server, None, STARTUP_TIMEOUT)
    return server


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
    if args.max_qps:
        argv += ["-Q", str(args.max_qps)]
    if cpu is not None and shutil.which("taskset"):
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
) -> dict[str, Any]:
    """One measured dnsperf run, with the CPU the server and the rest of the box used."""
    result: dict[str, Any] = {}
    if args.wait_quiet > 0:
        result["idle_before_pct"] = wait_quiet(args.wait_quiet)
    sampler = start_py_spy(server, Path(args.py_spy), args.seconds) if spy else None
    hz = os.sysconf("SC_CLK_TCK")
    m0 = _machine_ticks()
    cpu0, t0 = _group_cpu(server.proc.pid), time.monotonic()
    perf = run_dnsperf(server.port, qfile, args, client_cpu, args.seconds)
    cpu1, t1 = _group_cpu(server.proc.pid), time.monotonic()
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
    result["rss_ready_mib"] = _group_rss_mib(server.proc.pid)
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
    result["rss_after_mib"] = _group_rss_mib(server.proc.pid)
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.kind} died during the run\n{server.tail()}")
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
    argv = [exe, "record", "-p", str(server.proc.pid), "-d", str(duration), "-r", "250"]
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

    def snapshot(cache_entries: int):  # noqa: ANN202
        cfg = config_from_dict(
            {
                "listen": [{"address": HOST, "port": 5300}],
                "options": {"udp_payload_max": 1232, "answer_cache_entries": cache_entries},
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
        q = dns.message.make_query(name, qtype, use_edns=None if args.no_edns else 0)
        q.id = i & 0xFFFF
        reqs.append(Request(q.to_wire(), "127.0.0.1", HOST, Transport.UDP))
    hit = snapshot(1_000_000)
    for r in reqs:
        handle(r, hit)  # warm: every question is now cached
    miss = snapshot(0)  # answer_cache_entries 0: every query takes the full path
    out: dict[str, Any] = {"requests": len(reqs)}
    for label, snap in (("hit", hit), ("miss", miss)):
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


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def _print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'server':<14}{'QPS':>11}{'lost %':>9}{'warm-up QPS':>13}{'srv CPU %':>11}"
        f"{'QPS/core':>11}{'dnsperf CPU %':>15}{'other CPU %':>13}{'avg lat ms':>12}{'RSS MiB':>9}"
    )
    print(head)
    print("-" * len(head))
    noisy = [str(r["server"]) for r in rows if float(r.get("other_cpu_pct", 0)) > NOISY_CPU_PCT]
    for r in rows:
        print(
            f"{r['server']:<14}{float(r['qps']):>11,.0f}{float(r['lost_pct']):>9.2f}"
            f"{float(r['warmup_qps']):>13,.0f}{float(r['server_cpu_pct']):>11.1f}"
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15.0, help="measured run per server (15)")
    p.add_argument("--with-knot", action="store_true", help="also benchmark Knot DNS")
    p.add_argument(
        "--authd-nocache",
        action="store_true",
        help="also run authd with answer_cache_entries: 0 (the miss path)",
    )
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--clients", type=int, default=4, help="dnsperf -c (4)")
    p.add_argument("--outstanding", type=int, default=100, help="dnsperf -q (100)")
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
    p.add_argument("--lines", type=int, default=50_000, help="query file lines (50000)")
    p.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent (1.0)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", metavar="DIR", help="write zone, queries and logs here and keep them")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile authd.query.handle in-process instead (hit vs miss)",
    )
    p.add_argument("--profile-n", type=int, default=20_000, help="requests per profile loop")
    p.add_argument("--profile-top", type=int, default=25)
    args = p.parse_args(argv)
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
        for sub in ("authd", "authd-nocache", "nsd", "knot"):
            shutil.rmtree(base / sub, ignore_errors=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="authd-qps-"))
    try:
        text, cat = build_zone(ZONE_NAMES, args.seed)
        zdir = base / "zones"
        zdir.mkdir(exist_ok=True)
        zone = zdir / "bench.test.zone"
        zone.write_text(text)
        questions, qstats = build_queries(cat, args.lines, args.seed, args.zipf)
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

        for tool in ("dnsperf", "nsd") + (("knotd",) if args.with_knot else ()):
            if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
                raise RuntimeError(f"{tool} is not installed")
        ncpu = os.cpu_count() or 1
        server_cpu, client_cpu = (1, 0) if ncpu >= 2 and not args.no_pin else (None, None)
        print(
            f"dnsperf: -c {args.clients} -T 1 -q {args.outstanding} -l {args.seconds:g}"
            f"{'' if args.no_edns else ' -e'}{f' -Q {args.max_qps}' if args.max_qps else ''}; "
            f"pinning: {'server CPU 1, dnsperf CPU 0' if server_cpu is not None else 'off'}"
        )

        starters = [("authd", lambda: start_authd(zone, base, server_cpu))]
        if args.authd_nocache:
            starters.append(
                ("authd-nocache", lambda: start_authd(zone, base, server_cpu, cache=False))
            )
        starters.append(("nsd", lambda: start_nsd(zone, base, server_cpu)))
        if args.with_knot:
            starters.append(("knot", lambda: start_knot(zone, base, server_cpu)))

        rows: list[dict[str, Any]] = []
        for kind, start in starters:
            print(f"\n[{kind}] starting ...", flush=True)
            t0 = time.monotonic()
            server = start()
            try:
                startup = round(time.monotonic() - t0, 2)
                print(
                    f"[{kind}] ready on port {server.port} in {startup}s; warm-up pass, "
                    f"then {args.seconds:g}s measured",
                    flush=True,
                )
                row = bench_server(server, qfile, questions, args, client_cpu)
                row["startup_s"] = startup
                if kind.startswith("authd"):
                    row["authd_vmrss_mib"] = round(_rss_kib(server.proc.pid) / 1024, 1)
                rows.append(row)
                print(
                    f"[{kind}] {float(row['qps']):,.0f} q/s, lost {row['lost_pct']}%, "
                    f"server CPU {row['server_cpu_pct']}%, RSS {row['rss_after_mib']} MiB",
                    flush=True,
                )
            finally:
                _kill(server.proc)

        print()
        _print_table(rows)
        by = {str(r["server"]): float(r["qps"]) for r in rows}
        per_core = {str(r["server"]): r["qps_per_core"] for r in rows}
        ratios = {}
        for other in ("nsd", "knot"):
            if other in by and by[other] > 0:
                for mine in ("authd", "authd-nocache"):
                    if mine not in by:
                        continue
                    ratios[f"{mine}/{other}"] = round(by[mine] / by[other], 4)
                    a_pc, o_pc = per_core.get(mine), per_core.get(other)
                    if a_pc and o_pc:
                        ratios[f"{mine}/{other} per core"] = round(float(a_pc) / float(o_pc), 4)
        print()
        for k, v in ratios.items():
            print(f"{k}: {v:.3f}  ({100 * v:.1f}%)")
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
