"""Signing benchmark: authd's inline signer beside BIND's dnssec-signzone, and
the size of the change a one-record edit makes to a signed zone.

Owns: ``measure(n)``, which generates an *n*-record zone (``harness.zonegen``),
signs it in this process as the server does (``authd.build.sign_version``:
sign, then compile the signed records), signs the same file with
``dnssec-signzone`` (one thread, one CSK of the same algorithm, in the same
run), then edits one A record and re-signs with the previous output, and
reports the records re-signed and the IXFR changeset (records, and bytes as
the journal stores it: the IXFR carries the same records).

Usage: python -m bench.sign [10k] [100k] [--denial nsec|nsec3] (default: 10k).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import dns.name
import dns.rdatatype
import dns.rrset

from authd.adapters.gcpause import gc_paused
from authd.adapters.keystore import new_private_key
from authd.build import sign_version
from authd.changeset import diff
from authd.config import ZoneConfig
from authd.journal import encode_record
from authd.keyfiles import make_zone_key
from authd.signpolicy import Denial, SigningPolicy
from authd.zone import load_zone
from harness.peers import require_binary
from harness.zonegen import write_zone

ORIGIN = "bench.test."


def _size(text: str) -> int:
    text = text.lower()
    return (
        int(float(text[:-1]) * (1000 if text.endswith("k") else 1_000_000))
        if text[-1] in "km"
        else int(text)
    )


def _bind(path: str, folder: str, denial: Denial) -> float:
    keygen = require_binary("dnssec-keygen")
    signzone = require_binary("dnssec-signzone")
    subprocess.run(
        [keygen, "-q", "-K", folder, "-a", "ECDSAP256SHA256", "-f", "KSK", ORIGIN],
        check=True,
        capture_output=True,
    )
    args = [signzone, "-q", "-z", "-n", "1", "-S", "-K", folder, "-o", ORIGIN]
    if denial is Denial.NSEC3:
        args += ["-3", "-", "-H", "0"]
    args += ["-f", os.path.join(folder, "signed.zone"), path]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(n: int, denial: Denial) -> dict[str, object]:
    origin = dns.name.from_text(ORIGIN)
    policy = SigningPolicy(denial=denial)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "zone")
        write_zone(path, n, ORIGIN)
        zc = ZoneConfig(origin, path, "bench", dnssec=policy)
        now = int(time.time())
        key = make_zone_key(origin, "csk", new_private_key(13), now, publish=now, activate=now)
        with gc_paused():
            unsigned = load_zone(origin, path, 10 * n).version
            assert unsigned is not None
            start = time.perf_counter()
            signed = sign_version(zc, unsigned, None, [key], now)
            authd_seconds = time.perf_counter() - start
            # One edit: the first A record changes its address, the serial goes up.
            name, node = next(
                (nm, nd) for nm, nd in unsigned.nodes.items() if dns.rdatatype.A in nd
            )
            apex = dict(unsigned.nodes[origin])
            changed = dns.rrset.from_text(name, node[dns.rdatatype.A].ttl, "IN", "A", "192.0.2.254")
            nodes = dict(unsigned.nodes)
            nodes[name] = {**node, dns.rdatatype.A: changed}
            nodes[origin] = apex
            edited = dataclasses.replace(unsigned, nodes=nodes).with_serial(unsigned.serial + 1)
            start = time.perf_counter()
            resigned = sign_version(zc, edited, signed, [key], now + 60)
            resign_seconds = time.perf_counter() - start
            change = diff(signed, resigned)
        bind_seconds = _bind(path, folder, denial)
    assert resigned.inline is not None
    return {
        "records": n,
        "denial": denial.value,
        "signed_records": signed.record_count,
        "authd_sign_s": round(authd_seconds, 2),
        "dnssec_signzone_s": round(bind_seconds, 2),
        "authd_over_bind": round(authd_seconds / bind_seconds, 2),
        "edit_resign_s": round(resign_seconds, 2),
        "edit_rrsets_resigned": resigned.inline.signed.resigned,
        "edit_ixfr_records": len(change.removed) + len(change.added) + 2,
        "edit_ixfr_bytes": len(encode_record(change)),
    }


def main(argv: list[str]) -> int:
    denial = Denial.NSEC
    sizes = []
    args = iter(argv)
    for arg in args:
        if arg == "--denial":
            denial = Denial(next(args))
        else:
            sizes.append(_size(arg))
    for n in sizes or [10_000]:
        print(json.dumps(measure(n, denial)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
