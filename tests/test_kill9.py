"""kill -9 at random points of reloads and of incoming transfers (issue 16).

Each loop kills authd with SIGKILL at a seeded random moment, 20 times, and
after every restart checks that what it serves is a complete published
version: its serial is one that was (or, for the file's new serial, may just
have been) published, the AXFR of it equals that version, every serial only
ever had one content, and an IXFR from the serial served before leads to the
same content.  Some runs corrupt the state folder first (a truncated copy, a
garbage journal): the restart must detect it and recover.

These are long (about a minute each): marked ``slow``; CI runs them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import dns.query
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest
from reloadkit import Lab, axfr_lines, running_lab, soa_serial

from harness.peers import HOST, free_port

RUNS = 20
SEED = 16
ZONE = "k.test"
pytestmark = pytest.mark.slow


def zone_text(serial: int, variant: int, hosts: int = 3000, changed: int = 500) -> str:
    """Serial *serial*, content *variant*: the first *changed* hosts' addresses depend on it."""
    lines = [
        f"$ORIGIN {ZONE}.\n$TTL 300\n",
        f"@ SOA ns hostmaster {serial} 2 1 1209600 300\n@ NS ns\nns A 192.0.2.53\n",
    ]
    lines += [
        f"h{i} A 10.{variant % 250 if i < changed else 255}.{i // 250}.{i % 250}\n"
        for i in range(hosts)
    ]
    return "".join(lines)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def ixfr_content(port: int, since: int, old: list[str]) -> list[str]:
    """The zone an IXFR from *since* gives, applied to *old* (its ``axfr_lines``)."""
    zone = dns.zone.from_text("\n".join(old), ZONE, relativize=False)
    query, _ = dns.xfr.make_query(zone, serial=since)
    dns.query.inbound_xfr(HOST, zone, query, port=port, timeout=10, lifetime=10)
    return sorted(
        f"{name} {ttl} IN {dns.rdatatype.to_text(rd.rdtype)} {rd.to_text()}"
        for name, ttl, rd in zone.iterate_rdatas()
    )


class Published:
    """serial -> content of every version seen served: one content per serial, ever."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.versions: dict[int, list[str]] = {}

    def saw(self, port: int, allowed: set[int], why: str) -> int:
        serial = soa_serial(port, ZONE)
        self.lab.check(serial in allowed, f"{why}: serial {serial} served, allowed {allowed}")
        assert serial is not None
        content = axfr_lines(port, ZONE)
        known = self.versions.setdefault(serial, content)
        self.lab.check(known == content, f"{why}: serial {serial} with another content")
        return serial


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


@pytest.mark.timeout(400)
def test_kill9_during_reloads_restarts_to_a_published_version(lab: Lab) -> None:
    rnd = random.Random(SEED)
    zone = lab.dir / "k.zone"
    serial, variant = 1, 0
    write_atomically(zone, zone_text(serial, variant))
    port = free_port()
    options = {"watch": False, "state_dir": str(lab.dir / "state")}
    zones = [{"name": ZONE, "file": str(zone), "allow_transfer": [HOST]}]
    published = Published(lab)
    server = lab.start("run 0", zones, options, port=port)
    served = published.saw(port, {serial}, "first start")
    deadline = time.monotonic() + 300
    mid_reload = 0  # kills before the reload's outcome was logged
    for run in range(1, RUNS + 1):
        lab.check(time.monotonic() < deadline, f"run {run}: out of time")
        # A new content; one time in three at the same serial (refused by the rule).
        variant += 1
        same = rnd.random() < 1 / 3
        serial = served if same else serial + 1
        write_atomically(zone, zone_text(serial, variant))
        journal = lab.dir / "state" / "default" / f"{ZONE}.journal"
        server.reload()
        time.sleep(rnd.uniform(0, 0.15))
        server.kill()
        finished = "reload done" in server.read_log().split("reloading ")[-1]
        mid_reload += not finished
        corrupt = rnd.random() < 0.2 and journal.exists()
        if corrupt:
            journal.write_bytes(b"garbage, not a journal" * 10)
        before = served
        server = lab.start(f"run {run}", zones, options, port=port)
        if corrupt:
            lab.wait_log(server, r"journal .*: .*moved to .*\.corrupt", 5)
        served = published.saw(port, {before, serial}, f"run {run}")
        if same:
            lab.check(served == before, f"run {run}: same serial, other content, was served")
        if served != before and not corrupt:
            got = ixfr_content(port, before, published.versions[before])
            lab.check(got == published.versions[served], f"run {run}: IXFR from {before} differs")
    lab.check(len(published.versions) >= RUNS // 3, "the loop published new versions")
    print(f"kill -9 during reloads: {RUNS} runs, {mid_reload} before the reload finished")


@pytest.mark.timeout(400)
def test_kill9_during_incoming_transfers_restarts_to_a_published_version(lab: Lab) -> None:
    rnd = random.Random(SEED + 1)
    zone = lab.dir / "k.zone"
    serial = 1
    write_atomically(zone, zone_text(serial, serial, hosts=6000))
    primary_port, secondary_port = free_port(), free_port()
    fast = {"watch": False, "min_refresh": 1, "min_retry": 1}
    primary = lab.start(
        "primary",
        [
            {
                "name": ZONE,
                "file": str(zone),
                "allow_transfer": [HOST],
                "also_notify": [{"address": HOST, "port": secondary_port}],
            }
        ],
        fast,
        port=primary_port,
    )
    copy = lab.dir / "copy" / f"{ZONE}.zone"
    secondary_zones = [
        {
            "name": ZONE,
            "type": "secondary",
            "file": str(copy),
            "primaries": [{"address": HOST, "port": primary_port}],
            "allow_notify": [HOST],
            "allow_transfer": [HOST],
        }
    ]
    options = {**fast, "state_dir": str(lab.dir / "state")}
    published = Published(lab)
    published.saw(primary_port, {serial}, "primary")
    secondary = lab.start("secondary 0", secondary_zones, options, port=secondary_port)
    lab.wait_serial(secondary, ZONE, serial, 30)
    deadline = time.monotonic() + 300
    corrupted = 0
    mid_transfer = 0  # kills before the transfer was published
    for run in range(1, RUNS + 1):
        lab.check(time.monotonic() < deadline, f"run {run}: out of time")
        serial += 1
        write_atomically(zone, zone_text(serial, serial, hosts=6000))
        primary.reload()
        lab.wait(f"primary at {serial}", lambda s=serial: soa_serial(primary_port, ZONE) == s, 10)
        published.saw(primary_port, {serial}, f"primary run {run}")
        # The NOTIFY starts the transfer now: kill the secondary somewhere in it.
        time.sleep(rnd.uniform(0, 0.8))
        secondary.kill()
        mid_transfer += f"transferred: serial {serial}," not in secondary.read_log()
        damage = rnd.choice(["none", "none", "none", "copy", "journal"])
        if damage == "copy" and copy.exists():
            data = copy.read_bytes()
            copy.write_bytes(data[: rnd.randrange(1, len(data))])
            corrupted += 1
        elif damage == "journal":
            journal = lab.dir / "state" / "default" / f"{ZONE}.journal"
            journal.parent.mkdir(parents=True, exist_ok=True)
            journal.write_bytes(bytes(rnd.randrange(256) for _ in range(300)))
            corrupted += 1
        secondary = lab.start(f"secondary {run}", secondary_zones, options, port=secondary_port)
        if damage == "copy":
            lab.wait_log(secondary, r"stored copy .*(checksum|no checksum line)", 5)
        if damage == "journal":
            lab.wait_log(secondary, r"journal .*(moved to .*\.corrupt|unreadable|bad)", 5)
        # Right after the restart: nothing, or a complete published version.
        if soa_serial(secondary_port, ZONE) is not None:
            published.saw(secondary_port, set(published.versions), f"secondary run {run}")
        # And it catches up with the primary, by a transfer that is whole.
        lab.wait_serial(secondary, ZONE, serial, 30)
        published.saw(secondary_port, {serial}, f"secondary run {run}, caught up")
    lab.check(corrupted >= 2, "the loop corrupted the state a few times")
    print(f"kill -9 during transfers: {RUNS} runs, {mid_transfer} before the transfer was in")
