"""Split-horizon views end to end: a real authd on loopback, real clients and secondaries.

1. The same question from 127.0.0.1, 127.0.0.2 and ::1 (the test binds the
   source address) gets each view's answer, over UDP and TCP; a view with
   ``match_destinations`` answers queries that arrive on 127.0.0.3 only.
2. EDNS Client Subnet over the wire: from the trusted 127.0.0.1 the ECS
   address chooses the view and the scope is echoed; from 127.0.0.2 it is
   ignored and echoed with scope 0; a malformed option gets FORMERR.  ``dig
   +subnet`` reads our answer the same way.
3. Transfers per view: Knot (signing with ``internal-xfr``, so its view is
   chosen by key) and BIND (transferring from 127.0.0.2, so its view is chosen
   by address) each receive their own view's version of example.com by AXFR,
   and after both views' files change and a SIGHUP, by IXFR from the view's
   own journal (``state/<view>/example.com.journal``).
4. Reload under query load: one thread asks alternately from two sources
   (two views) while both views' zone files are rewritten and SIGHUPed,
   several times.  Each answer carries tags in its answer and additional
   sections naming its view and generation; every answer must be whole (one
   view, one generation), belong to the asker's view, and generations never
   go backwards across both views, since a reload publishes all views at once.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.edns
import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml
from serverkit import dual_stack_port

from harness.peers import (
    HOST,
    Server,
    free_port,
    require_binary,
    start_authd,
    start_bind,
    start_knot,
)

V4, V4B, V4C, V6 = "127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"
ORIGIN = "example.com"
IO_TIMEOUT = 3.0
POLL = 0.05
WITHIN = 15.0  # seconds for a secondary to catch up or a reload to show

INTERNAL_SECRET = base64.b64encode(b"authd-views-internal-xfr-key-32b").decode()
EXTERNAL_SECRET = base64.b64encode(b"authd-views-external-xfr-key-32b").decode()
KEYS = [
    {"name": "internal-xfr", "algorithm": "hmac-sha256", "secret": INTERNAL_SECRET},
    {"name": "external-xfr", "algorithm": "hmac-sha256", "secret": EXTERNAL_SECRET},
]


def zone_text(tag: str, serial: int = 1, generation: int = 1) -> str:
    """example.com tagged with its view and generation in several sections.

    ``www TXT`` says the view; ``www MX`` points at ``mail-<view>-g<gen>``,
    whose address (additional section) encodes the generation again, so an
    answer assembled from two versions could not hide.
    """
    octet = {"one": 1, "six": 6, "three": 3, "other": 9, "internal": 1, "external": 2}[tag]
    return (
        f"$ORIGIN {ORIGIN}.\n$TTL 300\n"
        f"@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n"
        "@ NS ns1\nns1 A 192.0.2.53\n"
        f'www TXT "{tag}"\n'
        f"www MX {generation} mail-{tag}-g{generation}\n"
        f"mail-{tag}-g{generation} A 10.{octet}.{generation}.1\n"
    )


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_from(source: str, host: str, port: int, wire: bytes) -> bytes:
    with socket.socket(family(host), socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(IO_TIMEOUT)
        s.sendto(wire, (host, port))
        data, _ = s.recvfrom(65535)
        return data


def tcp_from(source: str, host: str, port: int, wire: bytes) -> bytes:
    with socket.create_connection((host, port), IO_TIMEOUT, source_address=(source, 0)) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        head = _recv(s, 2)
        return _recv(s, struct.unpack("!H", head)[0])


def _recv(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def ask(
    source: str,
    host: str,
    port: int,
    qtype: str = "TXT",
    *,
    tcp: bool = False,
    options: list[dns.edns.Option] | None = None,
) -> dns.message.Message:
    q = dns.message.make_query(f"www.{ORIGIN}", qtype, use_edns=0 if options else False)
    if options:
        q.use_edns(0, options=options)
    send = tcp_from if tcp else udp_from
    return dns.message.from_wire(send(source, host, port, q.to_wire()))


def tag_of(msg: dns.message.Message) -> str:
    if msg.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(msg.rcode())
    [rrset] = msg.answer
    return b"".join(rrset[0].strings).decode()


def ecs_of(msg: dns.message.Message) -> str | None:
    found = [o for o in msg.options if isinstance(o, dns.edns.ECSOption)]
    if not found:
        return None
    o = found[0]
    return f"{o.address}/{o.srclen}/{o.scopelen}"


def wait(what: str, probe: Callable[[], Any], timeout: float, logs: Callable[[], str]) -> Any:
    for _ in range(int(timeout / POLL) + 1):
        value = probe()
        if value:
            return value
        time.sleep(POLL)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs()}")


# -- 1 and 2: views by source and destination address; ECS -----------------------------


@pytest.fixture(scope="module")
def horizon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("views")
    for tag in ("one", "six", "three", "other"):
        (folder / f"{tag}.zone").write_text(zone_text(tag))
    port = dual_stack_port()

    def zones(tag: str) -> list[dict[str, str]]:
        return [{"name": ORIGIN, "file": str(folder / f"{tag}.zone")}]

    config = {
        "listen": [{"address": a, "port": port} for a in (V4, V6, V4C)],
        "options": {"state_dir": str(folder / "state"), "watch": False},
        "client_subnet": {"trusted": [V4]},
        "views": [
            {
                "name": "three",
                "match_destinations": [V4C],
                "match_clients": ["any"],
                "zones": zones("three"),
            },
            {"name": "one", "match_clients": [V4], "zones": zones("one")},
            {"name": "six", "match_clients": [V6], "zones": zones("six")},
            {"name": "other", "match_clients": ["any"], "zones": zones("other")},
        ],
    }
    server = start_authd(yaml.safe_dump(config, sort_keys=False), port=port)
    try:
        yield server
    finally:
        server.stop()


def test_start_up_log_warns_about_a_shadowed_view(tmp_path: Path) -> None:
    (tmp_path / "a.zone").write_text(zone_text("one"))
    zones = [{"name": ORIGIN, "file": str(tmp_path / "a.zone")}]
    config = {
        "listen": [{"address": HOST, "port": free_port()}],
        "options": {"state_dir": str(tmp_path / "state"), "watch": False},
        "views": [
            {"name": "everyone", "match_clients": ["any"], "zones": zones},
            {"name": "lab", "match_clients": ["10.0.0.0/8"], "zones": zones},
        ],
    }
    text = yaml.safe_dump(config, sort_keys=False)
    server = start_authd(text, port=config["listen"][0]["port"])  # type: ignore[index]
    try:
        log = server.read_log()
    finally:
        server.stop()
    assert "authd[warn] config: views[1] 'lab' can never match: views[0] 'everyone'" in log, log


SOURCE_CASES = [
    # (source, destination, view)
    (V4, V4, "one"),
    (V4B, V4, "other"),
    (V6, V6, "six"),
    (V4B, V4C, "three"),  # the destination view comes first
    (V4, V4C, "three"),
]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(("source", "destination", "expected"), SOURCE_CASES)
def test_each_source_gets_its_views_answer(
    horizon: Server, source: str, destination: str, expected: str, tcp: bool
) -> None:
    for _ in range(3):  # the second and third come from the answer cache
        msg = ask(source, destination, horizon.port, tcp=tcp)
        assert tag_of(msg) == expected, horizon.read_log()


def test_answers_interleaved_from_three_sources_never_mix(horizon: Server) -> None:
    expected = {V4: "one", V4B: "other", V6: "six"}
    for _ in range(30):
        for source, view in expected.items():
            host = V6 if source == V6 else V4
            assert tag_of(ask(source, host, horizon.port)) == view


ECS_CASES = [
    # (source, ECS address, source prefix, view, echoed option)
    (V4, "192.0.2.0", 24, "other", "192.0.2.0/24/1"),  # trusted: ADDRESS chooses
    (V4, "127.0.0.1", 32, "one", "127.0.0.1/32/32"),
    (V4, "::1", 128, "six", "::1/128/128"),
    (V4B, "127.0.0.1", 32, "other", "127.0.0.1/32/0"),  # untrusted: ignored
    (V4, "0.0.0.0", 0, "one", "0.0.0.0/0/0"),  # /0: no address to use
]


@pytest.mark.parametrize(("source", "address", "prefix", "view", "echo"), ECS_CASES)
def test_ecs_over_the_wire(
    horizon: Server, source: str, address: str, prefix: int, view: str, echo: str
) -> None:
    for tcp in (False, True):
        msg = ask(source, V4, horizon.port, tcp=tcp, options=[dns.edns.ECSOption(address, prefix)])
        assert tag_of(msg) == view
        assert ecs_of(msg) == echo


def test_malformed_ecs_over_the_wire_is_formerr(horizon: Server) -> None:
    q = dns.message.make_query(f"www.{ORIGIN}", "TXT", use_edns=0)
    q.use_edns(0, options=[dns.edns.GenericOption(8, b"\x00\x01\x18\x08\x0a\x01\x02")])
    reply = dns.message.from_wire(udp_from(V4, V4, horizon.port, q.to_wire()))
    assert reply.rcode() == dns.rcode.FORMERR
    assert ecs_of(reply) is None


def test_dig_reads_our_client_subnet_answer(horizon: Server) -> None:
    dig = require_binary("dig")
    argv = [dig, "-b", V4, f"@{V4}", "-p", str(horizon.port), f"www.{ORIGIN}", "TXT"]
    out = subprocess.run(
        [*argv, "+subnet=192.0.2.0/24"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert "CLIENT-SUBNET: 192.0.2.0/24/1" in out, out
    assert '"other"' in out, out
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout
    assert '"one"' in plain and "CLIENT-SUBNET" not in plain, plain


# -- 3: each secondary gets its view's version, by AXFR then IXFR -----------------------


def knot_secondary(primary_port: int, port: int) -> Server:
    sections = (
        "key:\n"
        f"  - id: internal-xfr\n    algorithm: hmac-sha256\n    secret: {INTERNAL_SECRET}\n"
        "remote:\n"
        f"  - id: primary\n    address: {HOST}@{primary_port}\n    key: internal-xfr\n"
        "acl:\n"
        f"  - id: notify_from_primary\n    address: {HOST}\n    action: notify\n"
        "    key: internal-xfr\n"
    )
    return start_knot(
        {},
        port,
        sections=sections,
        secondaries=[ORIGIN],
        zone_options={ORIGIN: "    master: primary\n    acl: notify_from_primary\n"},
    )


def bind_secondary(primary_port: int, port: int) -> Server:
    top = f'key "external-xfr" {{ algorithm hmac-sha256; secret "{EXTERNAL_SECRET}"; }};\n'
    options = (
        "type secondary; "
        f'primaries port {primary_port} {{ {HOST} key "external-xfr"; }}; '
        f'file "{ORIGIN}.copy"; '
        'allow-notify { key "external-xfr"; }; '
        "request-ixfr yes;"
    )
    # Transfers and SOA checks leave from 127.0.0.2: the address chooses the view.
    return start_bind(
        {},
        port,
        extra=f"    transfer-source {V4B};\n",
        top=top,
        secondaries=[ORIGIN],
        zone_options={ORIGIN: options},
    )


def soa_serial(port: int) -> int | None:
    try:
        reply = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), HOST, port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return None
    for rrset in reply.answer:
        return int(rrset[0].serial)
    return None


def txt_and_mx(port: int) -> tuple[str, str]:
    txt = dns.query.udp(dns.message.make_query(f"www.{ORIGIN}", "TXT"), HOST, port=port, timeout=2)
    mx = dns.query.udp(dns.message.make_query(f"www.{ORIGIN}", "MX"), HOST, port=port, timeout=2)
    return tag_of(txt), mx.answer[0][0].exchange.to_text()


def test_each_secondary_receives_its_views_version(tmp_path: Path) -> None:
    files = {tag: tmp_path / f"{tag}.zone" for tag in ("internal", "external")}
    for tag, path in files.items():
        path.write_text(zone_text(tag, serial=1, generation=1))
    port, knot_port, bind_port = free_port(), free_port(), free_port()
    state = tmp_path / "state"

    def zone(tag: str, key: str, notify_port: int) -> dict[str, Any]:
        return {
            "name": ORIGIN,
            "file": str(files[tag]),
            "allow_transfer": [f"key {key}"],
            "notify": "explicit",
            "also_notify": [{"address": HOST, "port": notify_port, "key": key}],
        }

    config = {
        "listen": [{"address": HOST, "port": port}],
        "keys": KEYS,
        "options": {
            "state_dir": str(state),
            "watch": False,
            "min_refresh": 5,
            "min_retry": 2,
            "notify_timeout": 1,
            "notify_retries": 3,
        },
        "views": [
            {
                "name": "internal",
                "match_clients": ["key internal-xfr"],
                "zones": [zone("internal", "internal-xfr", knot_port)],
            },
            {
                "name": "external",
                "match_clients": [V4B],
                "zones": [zone("external", "external-xfr", bind_port)],
            },
        ],
    }
    servers: list[Server] = []

    def logs() -> str:
        return "\n".join(f"--- {s.kind} ---\n{s.read_log()[-6000:]}" for s in servers)

    try:
        authd = start_authd(yaml.safe_dump(config, sort_keys=False), port=port)
        servers.append(authd)
        servers.append(knot_secondary(port, knot_port))  # returns once it serves serial 1
        servers.append(bind_secondary(port, bind_port))
        assert txt_and_mx(knot_port) == ("internal", f"mail-internal-g1.{ORIGIN}."), logs()
        assert txt_and_mx(bind_port) == ("external", f"mail-external-g1.{ORIGIN}."), logs()
        log = authd.read_log()
        assert re.search(r"\(view internal\) to 127\.0\.0\.1 key internal-xfr\.: axfr", log), logs()
        assert re.search(r"\(view external\) to 127\.0\.0\.2 key external-xfr\.: axfr", log), logs()

        for tag, path in files.items():
            path.write_text(zone_text(tag, serial=2, generation=2))
        authd.reload()
        for who, p, tag in [("knot", knot_port, "internal"), ("bind", bind_port, "external")]:
            wait(f"{who} serial 2", lambda p=p: soa_serial(p) == 2, WITHIN, logs)
            assert txt_and_mx(p) == (tag, f"mail-{tag}-g2.{ORIGIN}."), logs()
        for view, source, key in [
            ("internal", r"127\.0\.0\.1", "internal-xfr"),
            ("external", r"127\.0\.0\.2", "external-xfr"),
        ]:
            pattern = rf"\(view {view}\) to {source} key {key}\.: ixfr-incremental, serial 2"
            wait(
                f"an IXFR of view {view}",
                lambda p=pattern: re.search(p, authd.read_log()),
                WITHIN,
                logs,
            )
            journal = state / view / f"{ORIGIN}.journal"
            assert journal.is_file() and journal.stat().st_size > 0, logs()
        # The journals hold different histories: each view's own delta.
        internal = (state / "internal" / f"{ORIGIN}.journal").read_bytes()
        external = (state / "external" / f"{ORIGIN}.journal").read_bytes()
        assert internal != external
    finally:
        for s in reversed(servers):
            s.stop()


# -- 4: reload under query load ---------------------------------------------------------


GENERATIONS = 6


def test_reload_under_query_load_never_mixes_versions(tmp_path: Path) -> None:
    files = {tag: tmp_path / f"{tag}.zone" for tag in ("internal", "external")}
    for tag, path in files.items():
        path.write_text(zone_text(tag, serial=1, generation=1))
    port = free_port()
    config = {
        "listen": [{"address": HOST, "port": port}],
        "options": {"state_dir": str(tmp_path / "state"), "watch": False},
        "views": [
            {
                "name": "internal",
                "match_clients": [V4],
                "zones": [{"name": ORIGIN, "file": str(files["internal"])}],
            },
            {
                "name": "external",
                "match_clients": ["any"],
                "zones": [{"name": ORIGIN, "file": str(files["external"])}],
            },
        ],
    }
    authd = start_authd(yaml.safe_dump(config, sort_keys=False), port=port)
    expected_view = {V4: "internal", V4B: "external"}
    seen: list[tuple[str, str, int]] = []  # (source, view, generation) in order asked
    errors: list[str] = []
    stop = threading.Event()

    def one_answer(source: str) -> None:
        msg = ask(source, HOST, port, "MX", tcp=len(seen) % 5 == 0)
        [mx] = msg.answer
        exchange = mx[0].exchange.to_text()
        m = re.fullmatch(rf"mail-(\w+)-g(\d+)\.{ORIGIN}\.", exchange)
        if m is None or mx[0].preference != int(m.group(2)):
            errors.append(f"answer and MX preference disagree: {mx}")
            return
        view, gen = m.group(1), int(m.group(2))
        glue = [r for r in msg.additional if r.rdtype == dns.rdatatype.A]
        octet = {"internal": 1, "external": 2}[view]
        if [str(r[0]) for r in glue] != [f"10.{octet}.{gen}.1"]:
            errors.append(f"additional section from another version: {msg}")
        if view != expected_view[source]:
            errors.append(f"{source} got view {view}")
        seen.append((source, view, gen))

    def load() -> None:
        try:
            while not stop.is_set():
                for source in (V4, V4B):
                    one_answer(source)
        except Exception as e:  # reported by the main thread
            errors.append(f"{type(e).__name__}: {e}")

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        for gen in range(2, GENERATIONS + 1):
            time.sleep(0.3)
            for tag, path in files.items():
                write_atomically(path, zone_text(tag, serial=gen, generation=gen))
            authd.reload()
            wait(
                f"generation {gen} in both views",
                lambda gen=gen: (
                    {(v, g) for _, v, g in seen[-4:]} >= {("internal", gen), ("external", gen)}
                ),
                WITHIN,
                authd.read_log,
            )
    finally:
        stop.set()
        worker.join(timeout=10)
        authd.stop()
    assert not errors, errors[:5]
    # One thread asks, waits, asks again: a later question never sees an older
    # generation, in either view, because one swap publishes both views.
    generations = [g for _, _, g in seen]
    backwards = [
        (i, generations[i - 1], g)
        for i, g in enumerate(generations)
        if i and g < generations[i - 1]
    ]
    assert not backwards, backwards[:5]
    assert set(generations) == set(range(1, GENERATIONS + 1))
    print(f"reload under load: {len(seen)} answers over {GENERATIONS - 1} reloads, none mixed")
