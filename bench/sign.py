"""Signing benchmark: authd's inline signer beside BIND's and Knot's signers.

Owns: ``authd_sign(path, origin, denial)``, which signs a generated zone in
this process by the server's own path (``authd.build.load_one``: load the
unsigned file, sign it with keys the key store would make, compile the signed
version) and reports wall and CPU seconds; ``bind_sign`` and ``knot_sign``,
which time ``dnssec-signzone`` and ``kzonesign`` on the same file, same
algorithm (13, one key signing everything, as authd's default CSK) and the
same denial (NSEC, or NSEC3 with no salt and 0 iterations, RFC 9276); and
``ixfr_size``: the IXFR a served, inline-signed zone sends after one record
of its unsigned file changed.

Each tool runs single-threaded (``dnssec-signzone -n 1``; Knot's default
``signing-threads: 1``) because authd signs in one thread: the ratios compare
cost per core.  BIND's post-signing verification is off (``-P``): authd does
not verify what it signed either.

Usage: python -m bench.sign [100k] [1M] [--denial nsec|nsec3]... [--resign]
    [--time-limit SECONDS] [--no-ixfr] [--json out.json]
(default: 100k, NSEC and NSEC3, a 900 s bound on each run of a tool; the
IXFR figure for zones up to 100k; ``--resign`` also times authd's reload of
the file with one record edited, in-process).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import yaml

from authd.adapters.gcpause import gc_paused
from authd.build import load_one
from authd.config import config_from_dict
from harness import zonegen
from harness.peers import (
    HOST,
    PeerError,
    free_port,
    require_binary,
    start_authd,
    start_knot,
)

DENIALS = ("nsec", "nsec3")
TIME_LIMIT = 900.0  # seconds each signing run may take before it is reported as over
IO_TIMEOUT = 30.0  # seconds for one query or transfer
RELOAD_TIMEOUT = 600.0  # seconds for authd to serve the edited zone's serial
START_TIMEOUT = 900.0  # seconds for authd to sign and serve a large zone at start
EDIT_OWNER = "www"  # a record every generated zone has (harness/zonegen.py's apex part)
SERIAL = 2024010101  # the serial harness/zonegen.py writes


def _cpu_children() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def _policy(denial: str) -> dict[str, Any]:
    return {"name": "bench", "denial": denial}


def authd_sign(path: str, origin: str, denial: str, resign: bool = False) -> dict[str, Any]:
    """Sign *path* as the server's reload build does, in this process: seconds
    (wall, CPU) of the whole load (parse, sign, compile) and the records served;
    with *resign*, also the reload of the file with one record edited."""
    state = tempfile.mkdtemp(prefix="authd-bench-sign-")
    try:
        config = config_from_dict(
            {
                "options": {"state_dir": state},
                "dnssec_policies": [_policy(denial)],
                "zones": [
                    {"name": origin, "file": path, "dnssec": {"policy": "bench"}, "serial": "keep"}
                ],
            },
            None,
            os.getcwd(),
        )
        # The keys the server would generate at first need (in memory here).
        from authd.adapters.state import signing_keys

        now = int(time.time())
        keys, problems = signing_keys(config, now, write=False)
        assert not problems, problems
        zc = config.views[0].zones[0]
        with gc_paused():  # as the service builds
            wall, cpu = time.perf_counter(), time.process_time()
            version, event = load_one(config.views[0].name, zc, None, now, keys=keys[zc.name])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert version is not None and version.inline is not None, event
        signed = version.inline.signed
        result = {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "records": version.record_count,
            "signatures": sum(len(s) for s in signed.sigs.values()),
        }
        if resign:
            # The reload after a one-record edit: the same call with the served
            # version as *old*, so the signer keeps every still-good signature.
            edited = os.path.join(state, "edited.zone")
            shutil.copy(path, edited)
            _edit(Path(edited), SERIAL + 1)
            zc = dataclasses.replace(zc, file=edited)
            with gc_paused():
                wall, cpu = time.perf_counter(), time.process_time()
                again, event = load_one(config.views[0].name, zc, version, now, keys=keys[zc.name])
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert again is not None and again.inline is not None, event
            result.update(
                resign_wall_s=round(wall, 2),
                resign_cpu_s=round(cpu, 2),
                resigned_rrsets=again.inline.signed.resigned,
            )
        return result
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _timed(argv: list[str], cwd: Path, limit: float) -> dict[str, Any]:
    cpu = _cpu_children()
    wall = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"over": limit}
    wall = time.perf_counter() - wall
    if done.returncode != 0:
        raise PeerError(f"{' '.join(argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return {"wall_s": round(wall, 2), "cpu_s": round(_cpu_children() - cpu, 2)}


def bind_sign(path: str, origin: str, denial: str, limit: float) -> dict[str, Any]:
    """``dnssec-signzone`` with one KSK-flagged key signing everything (``-z``)."""
    folder = Path(tempfile.mkdtemp(prefix="bind-bench-sign-"))
    try:
        keygen = [require_binary("dnssec-keygen"), "-q", "-a", "13", "-f", "KSK"]
        subprocess.run(
            [*keygen, "-K", str(folder), origin], cwd=folder, check=True, capture_output=True
        )
        argv = [require_binary("dnssec-signzone"), "-q", "-S", "-z", "-P", "-n", "1"]
        argv += ["-K", str(folder), "-o", origin, "-N", "keep", "-O", "full"]
        argv += ["-f", str(folder / "signed"), "-d", str(folder)]
        if denial == "nsec3":
            argv += ["-3", "-", "-H", "0"]
        result = _timed([*argv, path], folder, limit)
        if "wall_s" in result:
            result["records"] = _count_records(folder / "signed")
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def knot_sign(path: str, origin: str, denial: str, limit: float) -> dict[str, Any]:
    """``kzonesign`` under a policy of one key (``single-type-signing``), alg 13."""
    folder = Path(tempfile.mkdtemp(prefix="knot-bench-sign-"))
    try:
        (folder / "db").mkdir()
        (folder / "out").mkdir()
        shutil.copy(path, folder / "zone")
        nsec3 = "on" if denial == "nsec3" else "off"
        conf = (
            "database:\n"
            f'    storage: "{folder / "db"}"\n'
            "policy:\n"
            "  - id: bench\n"
            "    algorithm: ecdsap256sha256\n"
            "    single-type-signing: on\n"
            f"    nsec3: {nsec3}\n"
            "    nsec3-iterations: 0\n"
            "    nsec3-salt-length: 0\n"
            "    signing-threads: 1\n"
            "zone:\n"
            f'  - domain: "{origin}"\n'
            f'    file: "{folder / "zone"}"\n'
            "    dnssec-signing: on\n"
            "    dnssec-policy: bench\n"
        )
        (folder / "knot.conf").write_text(conf)
        argv = [require_binary("kzonesign"), "-c", str(folder / "knot.conf")]
        result = _timed([*argv, "-o", str(folder / "out"), origin], folder, limit)
        if "wall_s" in result:
            outputs = list((folder / "out").iterdir())
            result["records"] = _count_records(outputs[0]) if outputs else 0
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _count_records(path: Path) -> int:
    # Both tools write one record a line with full names; comments start with ';'.
    with open(path, encoding="ascii", errors="replace") as f:
        return sum(1 for line in f if line.strip() and not line.startswith(("$", ";")))


def _soa_serial(port: int, origin: str) -> int | None:
    query = dns.message.make_query(origin, dns.rdatatype.SOA)
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=2.0)
    except (OSError, dns.exception.DNSException):
        return None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def _edit(path: Path, serial: int) -> None:
    """Change one record (www's address) and raise the serial."""
    text = path.read_text()
    old = f"{EDIT_OWNER}\tIN\tA\t192.0.2.80"
    assert old in text, "the generated zone lost its www record"
    text = text.replace(old, f"{EDIT_OWNER}\tIN\tA\t192.0.2.180", 1)
    text = text.replace(f"{SERIAL} ; serial", f"{serial} ; serial", 1)
    path.write_text(text)


def ixfr_size(source: str, origin: str, denial: str) -> dict[str, Any]:
    """authd serving *source* inline-signed; one record edited, reloaded; the IXFR
    from the old serial: its messages, bytes and records."""
    folder = Path(tempfile.mkdtemp(prefix="authd-bench-ixfr-"))
    try:
        path = folder / "zone"
        shutil.copy(source, path)
        port = free_port()
        config = {
            "listen": [{"address": HOST, "port": port}],
            "options": {"state_dir": str(folder / "state")},
            "dnssec_policies": [_policy(denial)],
            "zones": [
                {
                    "name": origin,
                    "file": str(path),
                    "dnssec": {"policy": "bench"},
                    "serial": "keep",
                    "allow_transfer": [HOST],
                }
            ],
        }
        start = time.perf_counter()
        server = start_authd(
            yaml.safe_dump(config, sort_keys=False), port=port, timeout=START_TIMEOUT
        )
        try:
            started = time.perf_counter() - start
            assert _soa_serial(port, origin) == SERIAL
            _edit(path, SERIAL + 1)
            start = time.perf_counter()
            deadline = time.monotonic() + RELOAD_TIMEOUT
            while _soa_serial(port, origin) != SERIAL + 1:
                if time.monotonic() > deadline:
                    raise PeerError(
                        f"authd did not serve serial {SERIAL + 1}:\n{server.read_log()}"
                    )
                time.sleep(0.05)
            reloaded = time.perf_counter() - start
            figures = _ixfr(port, origin, SERIAL)
            figures.update(
                server="authd",
                start_to_serving_s=round(started, 2),
                edit_to_serving_s=round(reloaded, 2),
            )
            return figures
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ixfr(port: int, origin: str, serial: int) -> dict[str, Any]:
    """The IXFR from *serial*: messages, bytes, records and records by type."""
    messages = list(
        dns.query.xfr(
            HOST, origin, rdtype=dns.rdatatype.IXFR, serial=serial, port=port, timeout=IO_TIMEOUT
        )
    )
    answer = [rrset for m in messages for rrset in m.answer]
    # An incremental reply's second record is the old SOA (RFC 1995).
    assert answer[1].rdtype == dns.rdatatype.SOA and answer[1][0].serial == serial
    by_type: dict[str, int] = {}
    for rrset in answer:
        name = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.rdtype == dns.rdatatype.RRSIG:
            name += "/" + dns.rdatatype.to_text(rrset.covers)
        by_type[name] = by_type.get(name, 0) + len(rrset)
    return {
        "messages": len(messages),
        "bytes": sum(len(m.to_wire()) for m in messages),
        "records": sum(len(r) for r in answer),
        "by_type": by_type,
    }


def knot_ixfr_size(source: str, origin: str, denial: str) -> dict[str, Any]:
    """The same for knotd signing the zone (``dnssec-signing: on``, one key, alg
    13): the file edited, ``knotd`` reloaded (SIGHUP), the IXFR from the serial
    it served before."""
    nsec3 = "on" if denial == "nsec3" else "off"
    sections = (
        "policy:\n"
        "  - id: bench\n"
        "    algorithm: ecdsap256sha256\n"
        "    single-type-signing: on\n"
        f"    nsec3: {nsec3}\n"
        "    nsec3-iterations: 0\n"
        "    nsec3-salt-length: 0\n"
        "acl:\n"
        f"  - id: transfer\n    address: {HOST}\n    action: transfer\n"
    )
    # Knot applies a file edit as a change and picks the serial (increment);
    # journal-content: all keeps the change to serve as IXFR.
    template = (
        "    zonefile-sync: -1\n    zonefile-load: difference-no-serial\n    journal-content: all\n"
    )
    start = time.perf_counter()
    server = start_knot(
        {origin: source},
        sections=sections,
        template=template,
        zone_options={
            origin.rstrip("."): "    dnssec-signing: on\n    dnssec-policy: bench\n"
            "    acl: transfer\n"
        },
        timeout=START_TIMEOUT,
    )
    try:
        started = time.perf_counter() - start
        before = _soa_serial(server.port, origin)
        assert before is not None
        _edit(server.workdir / "zones" / Path(source).name, SERIAL + 1)
        start = time.perf_counter()
        server.reload()
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while (_soa_serial(server.port, origin) or before) == before:
            if time.monotonic() > deadline:
                raise PeerError(f"Knot did not sign the edit:\n{server.read_log()}")
            time.sleep(0.05)
        reloaded = time.perf_counter() - start
        figures = _ixfr(server.port, origin, before)
        figures.update(
            server="knot",
            start_to_serving_s=round(started, 2),
            edit_to_serving_s=round(reloaded, 2),
        )
        return figures
    finally:
        server.stop()


def _size(text: str) -> int:
    text = text.strip()
    mult = {"k": 1000, "K": 1000, "M": 1000000, "m": 1000000}.get(text[-1], 1)
    return int(text[:-1] if mult != 1 else text) * mult


def _cell(result: dict[str, Any], key: str) -> str:
    if "over" in result:
        return f">{result['over']:.0f}"
    return f"{result[key]:.2f}"


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> str:
    if "over" in a or "over" in b or not b[key]:
        return "-"
    return f"{a[key] / b[key]:.2f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sign")
    parser.add_argument("sizes", nargs="*", default=["100k"])
    parser.add_argument("--denial", choices=DENIALS, action="append")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT)
    parser.add_argument("--no-ixfr", action="store_true")
    parser.add_argument("--ixfr-only", action="store_true", help="only the IXFR figures")
    parser.add_argument(
        "--resign", action="store_true", help="also time authd's reload after a one-record edit"
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    denials = args.denial or list(DENIALS)
    origin = "bench.test."
    results: list[dict[str, Any]] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="authd-bench-zone-") as tmp:
        for size in args.sizes:
            n = _size(size)
            path = os.path.join(tmp, f"{n}.zone")
            with open(path, "w", encoding="ascii") as f:
                for line in zonegen.generate(n, origin):
                    f.write(line + "\n")
            for denial in denials if not args.ixfr_only else ():
                row: dict[str, Any] = {"records": n, "denial": denial}
                # authd in a fresh process per run: one run's memory does not slow the next.
                row["authd"] = _authd_subprocess(path, origin, denial, args.resign, args.time_limit)
                row["bind"] = bind_sign(path, origin, denial, args.time_limit)
                row["knot"] = knot_sign(path, origin, denial, args.time_limit)
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
            if not args.no_ixfr and n <= 100_000:
                for denial in denials:
                    for measure in (ixfr_size, knot_ixfr_size):
                        ixfr = measure(path, origin, denial)
                        ixfr.update(records_unsigned=n, denial=denial)
                        print(json.dumps(ixfr), file=sys.stderr, flush=True)
                        results.append(ixfr)
    print()
    print(
        "| zone | denial | authd wall / CPU s | BIND wall / CPU s | Knot wall / CPU s "
        "| authd/BIND CPU | authd/Knot CPU | authd reload after a 1-record edit, wall / CPU s |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        a, b, k = row["authd"], row["bind"], row["knot"]
        resign = "-"
        if "resign_cpu_s" in a or "over" in a:
            resign = f"{_cell(a, 'resign_wall_s')} / {_cell(a, 'resign_cpu_s')}"
        print(
            f"| {row['records']:,} | {row['denial']} "
            f"| {_cell(a, 'wall_s')} / {_cell(a, 'cpu_s')} "
            f"| {_cell(b, 'wall_s')} / {_cell(b, 'cpu_s')} "
            f"| {_cell(k, 'wall_s')} / {_cell(k, 'cpu_s')} "
            f"| {_ratio(a, b, 'cpu_s')} | {_ratio(a, k, 'cpu_s')} | {resign} |"
        )
    if results:
        print()
        print("| zone | denial | server | IXFR messages | bytes | records | edit to serving s |")
        print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
        for r in results:
            print(
                f"| {r['records_unsigned']:,} | {r['denial']} | {r['server']} | {r['messages']} "
                f"| {r['bytes']:,} "
                f"| {r['records']} | {r['edit_to_serving_s']} |"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"signing": rows, "ixfr": results}, f, indent=2)
    return 0


def _authd_subprocess(
    path: str, origin: str, denial: str, resign: bool, limit: float
) -> dict[str, Any]:
    code = (
        "import json, sys\nfrom bench.sign import authd_sign\n"
        "print(json.dumps(authd_sign(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == '1')))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, path, origin, denial, "1" if resign else "0"],
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"over": limit}
    if done.returncode != 0:
        raise PeerError(f"authd signing: exit {done.returncode}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
