"""A catalogued zone and a seeded, Zipf-weighted query mix drawn from it.

Owns: the text of zone ``bench.test.`` with exactly N owner names, built
together with a ``Catalog`` of the questions it can answer by kind (answers
for A/AAAA/MX/TXT, NXDOMAIN, NODATA, wildcard, referral, CNAME), and a query
list drawn from those pools by ``MIX`` with Zipf popularity.  The query mix
must know which names exist and what they hold, which is why this is not
``harness.zonegen`` (a zone of N records, no catalogue).

Invariants: the same (n_names, seed) always gives the same zone text and
catalogue; the same (catalogue, lines, seed, zipf_s) the same questions.
No I/O.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

ORIGIN = "bench.test."
ZONE_NAMES = 10_000

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


@dataclass
class Catalog:
    """What the generated zone holds, as question pools (name, qtype)."""

    pools: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # owner names by kind
    names: int = 0
    records: int = 0


def build_zone(
    n_names: int = ZONE_NAMES, seed: int = 1, nx_names: int = 6000, wild_names: int = 3000
) -> tuple[str, Catalog]:
    """The text of zone ``bench.test.`` with exactly *n_names* owner names.

    Layout (relative names): the apex (SOA, NS, MX, TXT), ns1/ns2 and
    mx1/mx2 with A+AAAA, ``*.wild`` (A, TXT), 250 delegations ``subN`` with
    in-domain glue ``ns1.subN``/``ns2.subN``, 600 CNAMEs ``aliasN`` (50 to
    names outside the zone), 200 two-link chains ``chainN -> aliasM -> host``,
    400 TXT-only ``_dmarc.<host>``, and hosts ``<word>N`` for the rest: all
    with A, half with AAAA, 10 % with MX, 15 % with TXT.  The NXDOMAIN and
    wildcard pools hold *nx_names* and *wild_names* questions (names that do
    not exist are unbounded: bigger pools, a longer tail).
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
        f"; harness/querymix.py: {n_names} names, seed {seed}",
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
    while len(nx_seen) < nx_names:
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
    for i in range(wild_names):
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
    cat: Catalog, lines: int, seed: int = 1, zipf_s: float = 1.0, uniform: float = 0.0
) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """*lines* questions (fqdn, qtype, category) drawn by MIX with Zipf popularity.

    Each pool is shuffled (seeded) and its k-th entry gets weight 1/k**s, so a
    few names are very popular and a long tail is asked once or never, as in
    real traffic.  A share *uniform* of the lines instead picks any entry of
    its pool alike: a longer tail (more distinct questions) with the same
    popular head.
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
        if uniform and rng.random() < uniform:
            name, qtype = rng.choice(order[pool])
        else:
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
        "uniform": uniform,
    }
    return out, stats
