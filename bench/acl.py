"""ACL benchmark: compiled client matching against a plain first-match scan.

Owns: ``benchmark()``, which builds an ACL of random IPv4 prefixes (10%
negated), times ``authd.acl`` lookups with the address as text and as an
``ipaddress`` object, and checks a sample against a linear scan.

Usage: PYTHONPATH=$PWD python bench/acl.py [PREFIXES]   (default 10000)
"""

from __future__ import annotations

import ipaddress
import random
import sys
import time
from dataclasses import dataclass

from authd.acl import IPAddress, compile_acl, parse_acl_list


@dataclass(frozen=True, slots=True)
class BenchResult:
    prefixes: int
    compile_seconds: float
    compiled_us: float  # per lookup, the address given as text
    compiled_object_us: float  # per lookup, the address given as an ipaddress object
    linear_us: float  # per lookup, a first-match scan over the same prefixes

    def __str__(self) -> str:
        return (
            f"{self.prefixes} prefixes: compile {self.compile_seconds:.3f} s; "
            f"per lookup: compiled {self.compiled_us:.2f} us (text), "
            f"{self.compiled_object_us:.2f} us (ipaddress object); "
            f"linear scan {self.linear_us:.1f} us "
            f"({self.linear_us / self.compiled_us:.0f}x slower)"
        )


def benchmark(prefixes: int = 10_000, lookups: int = 50_000, seed: int = 1) -> BenchResult:
    """Time lookups in an ACL of *prefixes* random IPv4 prefixes (10% negated)
    against a plain first-match scan."""
    rng = random.Random(seed)
    texts: list[str] = []
    nets: list[tuple[int, int, bool]] = []
    for _ in range(prefixes):
        # Lengths like a country or customer list: few short prefixes, so most
        # clients outside them make the scan run to the end.
        plen = rng.choice((16, 18, 20, 22, 24, 24, 24, 24, 28, 32))
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        base = rng.getrandbits(32) & mask
        negated = rng.random() < 0.1
        texts.append(("!" if negated else "") + f"{ipaddress.IPv4Address(base)}/{plen}")
        nets.append((base, mask, not negated))
    # Half the clients fall inside a listed prefix, half anywhere.
    addresses = []
    for i in range(lookups):
        if i % 2:
            base, mask, _ = nets[rng.randrange(prefixes)]
            n = base | (rng.getrandbits(32) & ~mask & 0xFFFFFFFF)
        else:
            n = rng.getrandbits(32)
        addresses.append(str(ipaddress.IPv4Address(n)))
    objects = [ipaddress.ip_address(a) for a in addresses]

    t0 = time.perf_counter()
    acl = compile_acl(parse_acl_list(texts, "bench", {}), {})
    compile_seconds = time.perf_counter() - t0

    def per_lookup(clients: list[str] | list[IPAddress]) -> float:
        best = float("inf")
        for _ in range(3):  # best of three: other load only ever adds time
            t0 = time.perf_counter()
            for c in clients:
                acl.match(c)
            best = min(best, time.perf_counter() - t0)
        return best / len(clients) * 1e6

    compiled_us = per_lookup(addresses)
    compiled_object_us = per_lookup(objects)

    def linear(address: str) -> bool:
        n = int(ipaddress.ip_address(address))
        for base, mask, allow in nets:
            if n & mask == base:
                return allow
        return False

    sample = addresses[: max(1, lookups // 50)]  # the scan is slow; time a sample
    t0 = time.perf_counter()
    for a in sample:
        linear(a)
    linear_us = (time.perf_counter() - t0) / len(sample) * 1e6
    for a in sample:
        if linear(a) != acl.allows(a):
            raise AssertionError(f"compiled and linear disagree on {a}")
    return BenchResult(prefixes, compile_seconds, compiled_us, compiled_object_us, linear_us)


if __name__ == "__main__":
    print(benchmark(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
