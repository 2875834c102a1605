"""Catalog zones (RFC 9432) end to end: authd, Knot DNS and BIND provisioning each other.

Every peer is a real process on 127.0.0.1 (``harness/peers.py``), every
transfer and NOTIFY is signed with TSIG (hmac-sha256, key ``xfr.``), and
every wait is a bounded poll (``ServerSet.wait``).  A failing test shows the
logs of every server it started.

1. authd generates a catalog; a Knot consumer (``catalog-role: interpret``)
   and a BIND consumer (``catalog-zones``) pick up its members, then pick up
   a zone added on authd (config rewritten, SIGHUP) and drop a removed one.
2. authd interprets a catalog Knot generates (``catalog-role: generate``) and
   one BIND serves from a file: it adds the members as secondaries, then
   drops a member removed on the producer and adds a new one; BIND's catalog
   also holds an invalid entry (ignored, logged) and moves a member to a new
   unique id (a reset: dropped and transferred anew, RFC 9432 section 5.3).
3. authd interprets authd's catalog across restarts: with the producer down
   a restarted consumer serves the members from its stored copies; a member
   removed while the consumer was down is dropped, its copy removed from the
   state folder, and it does not come back at the next restart.
4. A config edited under the file watcher (no SIGHUP) changes the catalog and
   raises its serial.
"""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.zone
import pytest
import yaml

from harness.peers import (
    HOST,
    KNOT_TEMPLATE,
    Server,
    ServerSet,
    free_port,
    start_authd,
    start_bind,
    start_knot,
)

KEY_NAME = "xfr"
SECRET = base64.b64encode(b"authd-catalog-test-key-32bytes!!").decode()
CAT = "catalog.invalid"
# A loaded 2-core machine: a catalog change reaches a consumer in about a second;
# allow far more (every wait polls, so a fast run stays fast).
WITHIN = 45.0

KNOT_KEY = f"key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"
BIND_KEY = f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n'


class Lab(ServerSet):
    """The servers of one test; failures carry all of their logs."""


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.stop_all()
        print(lab.logs(tail=300))


def zone_text(origin: str, serial: int = 1) -> str:
    return (
        f"$ORIGIN {origin}.\n$TTL 300\n"
        f"@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n"
        "@ NS ns1\nns1 A 192.0.2.53\n"
        f'www TXT "{origin}"\n'
    )


def write_zones(folder: Path, names: list[str]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        path = folder / f"{name}.zone"
        path.write_text(zone_text(name))
        out[name] = path
    return out


def serial_of(port: int, zone: str) -> int | None:
    """The SOA serial the server on *port* answers for *zone*; None when it has no such zone."""
    query = dns.message.make_query(zone + ".", dns.rdatatype.SOA)
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return None
    if reply.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def www(port: int, zone: str) -> str | None:
    query = dns.message.make_query(f"www.{zone}.", dns.rdatatype.TXT)
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return None
    return next((rrset[0].to_text() for rrset in reply.answer), None)


def wait_served(lab: Lab, port: int, who: str, served: list[str], gone: list[str]) -> None:
    """Wait until *who* serves every zone of *served* (their www TXT) and none of *gone*."""

    def state() -> bool:
        return all(www(port, z) == f'"{z}"' for z in served) and all(
            serial_of(port, z) is None for z in gone
        )

    lab.wait(f"{who} to serve {served} and not {gone}", state, WITHIN, poll=0.2)


def remote(port: int) -> dict[str, Any]:
    return {"address": HOST, "port": port, "key": KEY_NAME}


def authd_yaml(port: int, state: Path, zones: list[dict[str, Any]]) -> str:
    config = {
        "listen": [{"address": HOST, "port": port}],
        "keys": [{"name": KEY_NAME, "algorithm": "hmac-sha256", "secret": SECRET}],
        "options": {
            "state_dir": str(state),
            "watch": False,
            "min_refresh": 5,
            "min_retry": 1,
            "notify_timeout": 1,
            "notify_retries": 5,
        },
        "zones": zones,
    }
    return yaml.safe_dump(config, sort_keys=False)


def producer_yaml(
    port: int,
    state: Path,
    files: dict[str, Path],
    members: list[str],
    consumers: list[int],
) -> str:
    """authd generating CAT over *members*; every zone of *files* is served, and
    the catalog and its members NOTIFY the *consumers*."""
    notify = [remote(p) for p in consumers]
    zones: list[dict[str, Any]] = [
        {
            "name": CAT,
            "catalog_role": "generate",
            "allow_transfer": [f"key {KEY_NAME}"],
            "also_notify": notify,
        }
    ]
    for name, path in files.items():
        zone: dict[str, Any] = {
            "name": name,
            "file": str(path),
            "allow_transfer": [f"key {KEY_NAME}"],
            "also_notify": notify,
        }
        if name in members:
            zone["catalog_zone"] = CAT
        zones.append(zone)
    return authd_yaml(port, state, zones)


def consumer_yaml(port: int, state: Path, primary: int) -> str:
    return authd_yaml(
        port,
        state,
        [
            {
                "name": CAT,
                "type": "secondary",
                "catalog_role": "interpret",
                "primaries": [remote(primary)],
                "allow_notify": [f"key {KEY_NAME}"],
                "catalog_template": {"allow_notify": [f"key {KEY_NAME}", HOST]},
            }
        ],
    )


def rewrite_authd(server: Server, text: str) -> None:
    (server.workdir / "authd.yaml").write_text(text)
    server.reload()


# -- consumers of authd's catalog ------------------------------------------------------------------


def knot_consumer(lab: Lab, port: int, primary: int) -> Server:
    sections = (
        KNOT_KEY + "remote:\n"
        f"  - id: primary\n    address: {HOST}@{primary}\n    key: {KEY_NAME}\n"
        "acl:\n"
        f"  - id: notify_from_primary\n    address: {HOST}\n    action: notify\n"
        f"    key: {KEY_NAME}\n"
    )
    templates = (
        '  - id: member\n    storage: "{storage}"\n    master: primary\n'
        "    acl: notify_from_primary\n" + KNOT_TEMPLATE
    )
    server = start_knot(
        {},
        port,
        sections=sections,
        templates=templates,
        secondaries=[CAT],
        wait_for=[],  # Knot answers no queries for a catalog it interprets
        zone_options={
            CAT: "    master: primary\n    acl: notify_from_primary\n"
            "    catalog-role: interpret\n    catalog-template: member\n"
        },
    )
    return lab.add("knot consumer", server)


def bind_consumer(lab: Lab, port: int, primary: int) -> Server:
    extra = (
        f'    catalog-zones {{ zone "{CAT}." default-primaries port {primary} '
        f'{{ {HOST} key "{KEY_NAME}"; }} in-memory yes; }};\n'
        f'    allow-notify {{ key "{KEY_NAME}"; }};\n'
    )
    options = (
        "type secondary; "
        f'primaries port {primary} {{ {HOST} key "{KEY_NAME}"; }}; '
        'file "catalog.copy";'
    )
    server = start_bind(
        {}, port, extra=extra, top=BIND_KEY, secondaries=[CAT], zone_options={CAT: options}
    )
    return lab.add("bind consumer", server)


@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_peer_consumer_follows_authd_catalog_as_zones_are_added_and_removed(
    lab: Lab, tmp_path: Path, peer: str
) -> None:
    files = write_zones(tmp_path / "zones", ["a.example", "b.example", "c.example"])
    primary_port, consumer_port = free_port(), free_port()
    primary = lab.add(
        "authd producer",
        start_authd(
            producer_yaml(
                primary_port, tmp_path / "state", files, ["a.example", "b.example"], [consumer_port]
            ),
            port=primary_port,
        ),
    )
    start = knot_consumer if peer == "knot" else bind_consumer
    start(lab, consumer_port, primary_port)
    wait_served(lab, consumer_port, peer, ["a.example", "b.example"], ["c.example"])

    # c joins the catalog, a leaves it (authd still serves a, but not as a member).
    before = serial_of(primary_port, CAT)
    rewrite_authd(
        primary,
        producer_yaml(
            primary_port, tmp_path / "state", files, ["b.example", "c.example"], [consumer_port]
        ),
    )
    lab.wait(
        "authd to raise the catalog's serial",
        lambda: serial_of(primary_port, CAT) not in (None, before),
        WITHIN,
        poll=0.1,
    )
    wait_served(lab, consumer_port, peer, ["b.example", "c.example"], ["a.example"])
    lab.check(www(primary_port, "a.example") == '"a.example"', "authd stopped serving a")


# -- authd consuming Knot's and BIND's catalogs --------------------------------------------------


def knot_producer(lab: Lab, files: dict[str, Path], members: list[str], notify: int) -> Server:
    sections = (
        KNOT_KEY + "remote:\n"
        f"  - id: authd\n    address: {HOST}@{notify}\n    key: {KEY_NAME}\n"
        "acl:\n"
        f"  - id: transfer\n    address: {HOST}\n    action: transfer\n    key: {KEY_NAME}\n"
    )
    common = "    acl: transfer\n    notify: authd\n"
    options = {CAT: "    catalog-role: generate\n" + common}
    for name in files:
        member = f"    catalog-role: member\n    catalog-zone: {CAT}.\n" if name in members else ""
        options[name] = member + common
    server = start_knot(
        files,
        sections=sections,
        zone_options=options,
        secondaries=[CAT],
        wait_for=list(files),  # Knot answers no queries for a catalog
    )
    return lab.add("knot producer", server)


def bind_catalog_text(members: list[str], serial: int, prefix: str = "m") -> str:
    lines = [
        f"$ORIGIN {CAT}.",
        "$TTL 0",
        f"@ SOA invalid. invalid. {serial} 3600 600 2419200 0",
        "@ NS invalid.",
        'version TXT "2"',
    ]
    lines += [f"{prefix}-{name.replace('.', '-')}.zones PTR {name}." for name in members]
    # RFC 9432 section 5: an invalid member entry is ignored, the rest still count.
    lines += ["bad.zones PTR x.example.", "bad.zones PTR y.example."]
    return "\n".join(lines) + "\n"


def bind_producer(lab: Lab, files: dict[str, Path], catalog: Path, notify: int) -> Server:
    options = (
        "notify explicit; "
        f'also-notify port {notify} {{ {HOST} key "{KEY_NAME}"; }}; '
        f'allow-transfer {{ key "{KEY_NAME}"; }}; notify-delay 0;'
    )
    zones = {CAT: catalog, **files}
    server = start_bind(zones, top=BIND_KEY, zone_options={name: options for name in zones})
    return lab.add("bind producer", server)


@pytest.mark.parametrize("peer", ["knot", "bind"])
def test_authd_consumer_follows_a_peer_catalog(lab: Lab, tmp_path: Path, peer: str) -> None:
    files = write_zones(tmp_path / "zones", ["a.example", "b.example", "c.example"])
    port = free_port()
    catalog_file = tmp_path / "catalog.zone"
    if peer == "knot":
        # Knot lists the zones of its config that name the catalog; a zone
        # joins or leaves the catalog as it joins or leaves the config.
        first = {name: files[name] for name in ("a.example", "b.example")}
        producer = knot_producer(lab, first, ["a.example", "b.example"], port)
    else:
        catalog_file.write_text(bind_catalog_text(["a.example", "b.example"], 1))
        producer = bind_producer(lab, files, catalog_file, port)
    started = time.monotonic()
    state = tmp_path / "state"
    consumer = lab.add(
        "authd consumer", start_authd(consumer_yaml(port, state, producer.port), port=port)
    )
    wait_served(lab, port, "authd", ["a.example", "b.example"], ["c.example"])

    if peer == "knot":
        conf = producer.workdir / "knot.conf"
        entry = (
            '  - domain: "a.example."\n    file: "a.example.zone"\n'
            f"    catalog-role: member\n    catalog-zone: {CAT}.\n"
        )
        text = conf.read_text()
        lab.check(entry in text, "the Knot config does not look as expected")
        shutil.copy(files["c.example"], producer.workdir / "zones" / "c.example.zone")
        conf.write_text(text.replace(entry, entry.replace("a.example", "c.example")))
    else:
        time.sleep(max(0.0, started + 1.1 - time.monotonic()))  # BIND compares mtimes
        (producer.workdir / "zones" / catalog_file.name).write_text(
            # New unique ids: b is reset (RFC 9432 section 5.3), c is new.
            bind_catalog_text(["b.example", "c.example"], 2, prefix="n")
        )
    producer.reload()
    wait_served(lab, port, "authd", ["b.example", "c.example"], ["a.example"])
    lab.check(not (state / "default" / "a.example.zone").exists(), "a's copy was not removed")
    log = consumer.read_log()
    lab.check("catalog member a.example. (view default) removed" in log, "no removal logged")
    lab.check("added from catalog catalog.invalid." in log, "no addition logged")
    if peer == "bind":
        lab.check(f"catalog {CAT}.: member bad has 2 PTRs: ignored" in log, "bad entry not logged")
        lab.check(serial_of(port, "x.example") is None, "a member of a bad entry is served")
        lab.check(
            "catalog member b.example. (view default) reset: new unique id n-b-example" in log,
            "b was not reset",
        )
        lab.check("catalog member c.example. (view default) added" in log, "c not added")


# -- authd to authd, across restarts ---------------------------------------------------------------


def test_authd_consumer_of_authd_keeps_members_across_restarts(lab: Lab, tmp_path: Path) -> None:
    files = write_zones(tmp_path / "zones", ["a.example", "b.example", "c.example"])
    primary_port, port = free_port(), free_port()
    pstate, cstate = tmp_path / "pstate", tmp_path / "cstate"
    primary = lab.add(
        "authd producer",
        start_authd(
            producer_yaml(primary_port, pstate, files, ["a.example", "b.example"], [port]),
            port=primary_port,
        ),
    )
    consumer = lab.add(
        "authd consumer", start_authd(consumer_yaml(port, cstate, primary_port), port=port)
    )
    wait_served(lab, port, "authd consumer", ["a.example", "b.example"], ["c.example"])
    catalog_serial = serial_of(primary_port, CAT)

    # Both down; the consumer comes back alone and serves its members from disk.
    consumer.stop()
    primary.stop()
    consumer = lab.add(
        "authd consumer, restarted",
        start_authd(consumer_yaml(port, cstate, primary_port), port=port),
    )
    wait_served(lab, port, "the restarted consumer", ["a.example", "b.example"], ["c.example"])
    lab.check(serial_of(port, CAT) == catalog_serial, "the catalog copy was not kept")

    # The producer returns with a out of the catalog and c in: its start NOTIFYs.
    primary = lab.add(
        "authd producer, restarted",
        start_authd(
            producer_yaml(primary_port, pstate, files, ["b.example", "c.example"], [port]),
            port=primary_port,
        ),
    )
    wait_served(lab, port, "the restarted consumer", ["b.example", "c.example"], ["a.example"])
    lab.check(not (cstate / "default" / "a.example.zone").exists(), "a's copy was not removed")
    lab.check((cstate / "default" / "c.example.zone").exists(), "c's copy was not stored")

    # A member dropped stays dropped after one more restart.
    consumer.stop()
    consumer = lab.add(
        "authd consumer, restarted again",
        start_authd(consumer_yaml(port, cstate, primary_port), port=port),
    )
    wait_served(
        lab, port, "the consumer restarted again", ["b.example", "c.example"], ["a.example"]
    )


def test_authd_catalog_follows_a_hot_reload_of_the_config(lab: Lab, tmp_path: Path) -> None:
    """The file watcher (no SIGHUP): an edited config changes the catalog and its serial."""
    files = write_zones(tmp_path / "zones", ["a.example", "b.example"])
    port = free_port()
    state = tmp_path / "state"

    def config(members: list[str]) -> str:
        data = yaml.safe_load(producer_yaml(port, state, files, members, []))
        data["options"].update(watch=True, reload_delay=0.2)
        return yaml.safe_dump(data, sort_keys=False)

    server = lab.add("authd producer", start_authd(config(["a.example"]), port=port))
    first = serial_of(port, CAT)
    lab.check(first is not None, "no catalog served")
    time.sleep(1.1)  # a new unixtime serial needs a new second
    (server.workdir / "authd.yaml").write_text(config(["a.example", "b.example"]))

    def listed() -> list[str]:
        key = dns.tsig.Key(KEY_NAME, SECRET, dns.tsig.HMAC_SHA256)
        try:
            zone = dns.zone.from_xfr(
                dns.query.xfr(HOST, CAT, port=port, keyring={key.name: key}, timeout=2)
            )
        except (OSError, dns.exception.DNSException):
            return []
        return sorted(rd.target.to_text() for _, _, rd in zone.iterate_rdatas("PTR"))

    lab.wait(
        "the catalog to list b.example",
        lambda: listed() == ["a.example.", "b.example."],
        WITHIN,
        poll=0.2,
    )
    second = serial_of(port, CAT)
    lab.check(second is not None and first is not None and second > first, f"{first} -> {second}")
