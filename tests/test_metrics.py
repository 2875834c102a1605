"""Metrics (``options.metrics``): the core's tallies, the counters, the Prometheus endpoint.

The end-to-end test drives a real authd with dnsperf, scrapes the endpoint
while and after it runs, and checks the counters against dnsperf's own
counts; ``promtool check metrics`` must accept what is served.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import pytest
from prometheus_client import generate_latest
from zonekit import make_query, snapshot_from_texts

from authd.adapters.metrics import (
    Metrics,
    MetricsCollector,
    registry_for,
)
from authd.adapters.transport import UdpServer
from authd.config import MetricsConfig
from authd.limits import METRICS_FOLD_AT, METRICS_TICK
from authd.query import Reply, Request, Tallied, TransferEvent, Transport, handle
from authd.snapshot import with_fresh_caches
from authd.tally import OTHER, Tally, as_cached, decode, key_of, qtype_label
from harness.peers import HOST, Server, require_binary, start_authd

ZONE = (
    "$ORIGIN m.test.\n$TTL 300\n@ SOA ns hm 7 7200 3600 1209600 300\n@ NS ns\n"
    "ns A 192.0.2.1\nwww A 192.0.2.2\n"
    + "".join(f'big TXT "{i:03d}{"x" * 200}"\n' for i in range(20))
)
SCRAPE_TIMEOUT = 10.0
DNSPERF_SECONDS = 2
DNSPERF_TIMEOUT = 60.0


def _snapshot(metrics: bool):
    snap = snapshot_from_texts({"m.test.": ZONE})
    opts = dataclasses.replace(snap.options, metrics=MetricsConfig(HOST, 0) if metrics else None)
    return with_fresh_caches(dataclasses.replace(snap, options=opts))


def _ask(snap, name: str, qtype: str, transport: Transport = Transport.UDP, qid: int = 1):
    wire = make_query(name, qtype, qid=qid).to_wire()
    return handle(Request(wire, "127.0.0.1", "127.0.0.1", transport, time.time()), snap)


# -- the core's tallies ------------------------------------------------------------------


def test_no_tally_when_metrics_are_off() -> None:
    snap = _snapshot(False)
    for qid in (1, 2, 3):
        assert _ask(snap, "www.m.test.", "A", qid=qid).tally is None


def _tally(reply) -> Tally:
    assert reply.tally is not None
    return decode(reply.tally)


def test_a_miss_is_tallied_uncached_and_its_hits_cached() -> None:
    snap = _snapshot(True)
    first = _ask(snap, "www.m.test.", "A", qid=1)
    size = len(first.messages[0])
    assert _tally(first) == Tally("default", "m.test.", "A", "NOERROR", False, False, size)
    # The second is a hit of the front cache (same bytes but the ID), the
    # third of the answer cache (another letter case).
    hit = _tally(first)._replace(cached=True)
    assert _tally(_ask(snap, "www.m.test.", "A", qid=2)) == hit
    assert _tally(_ask(snap, "WWW.m.test.", "A", qid=3)) == hit


def test_nxdomain_refused_and_truncated_are_told_apart() -> None:
    snap = _snapshot(True)
    nx = _tally(_ask(snap, "nope.m.test.", "A"))
    assert (nx.zone, nx.rcode) == ("m.test.", "NXDOMAIN")
    refused = _tally(_ask(snap, "www.elsewhere.test.", "A"))
    assert (refused.zone, refused.rcode) == ("-", "REFUSED")
    big = _tally(_ask(snap, "big.m.test.", "TXT"))  # 20 x 200 bytes over 512-byte UDP
    assert big.truncated and big.qtype == "TXT" and big.size <= 512


def test_a_tally_key_round_trips() -> None:
    response = make_query("x.", "A").to_wire()
    key = key_of("v", "z.", 28, response, False)
    assert decode(key) == Tally("v", "z.", "AAAA", "NOERROR", False, False, len(response))
    assert decode(as_cached(key)).cached


def test_tally_is_a_tallied_replys_tenth_field() -> None:
    """query.handle's front-cache path passes it by position (a keyword call costs more);
    a plain Reply has no such field (a server without metrics builds one field less)."""
    # A field added to Reply moves it: fix the Nones in query.handle's front-cache path.
    assert [f.name for f in dataclasses.fields(Tallied)].index("tally") == 9
    assert "tally" not in [f.name for f in dataclasses.fields(Reply)]
    assert Reply(()).tally is None and "tally" not in Reply.__slots__


def test_question_types_are_a_bounded_set() -> None:
    assert qtype_label(1) == "A" and qtype_label(65) == "HTTPS"
    assert qtype_label(65280) == OTHER and qtype_label(99) == OTHER


# -- counting and the scrape -----------------------------------------------------------------


def test_counts_and_scrape_agree() -> None:
    snap = _snapshot(True)
    m = Metrics()
    udp = m.transports["udp"]
    for qid in range(1, 11):
        udp.count(_ask(snap, "www.m.test.", "A", qid=qid))
    m.transports["tcp"].count(_ask(snap, "nope.m.test.", "A", Transport.TCP))
    # A reply the core does not tally (FORMERR from the header) is still counted.
    bad = handle(Request(b"\x00\x01" + b"\x00" * 10 + b"\xff", HOST, HOST, Transport.UDP), snap)
    udp.count(bad)
    m.transfer_out(TransferEvent("default", dns.name.from_text("m.test."), HOST, None, "axfr", 7))
    m.transfer_out(
        TransferEvent("default", dns.name.from_text("m.test."), HOST, None, "refused", None)
    )
    collector = MetricsCollector(
        m,
        lambda: [("default", "m.test.", 7, None, None, False)],
        lambda: 2,
        lambda: 0.004,
        lambda: {},
    )
    text = _generate(collector)
    assert _sample(text, "authd_queries_total", transport="udp", zone="m.test.", qtype="A") == 10
    assert _sample(text, "authd_queries_total", transport="tcp", rcode="NXDOMAIN") == 1
    assert _sample(text, "authd_queries_total", transport="udp", rcode="FORMERR") == 1
    assert _sample(text, "authd_answer_cache_hits_total", transport="udp") == 9
    assert _sample(text, "authd_response_size_bytes_count", transport="udp") == 11
    assert _sample(text, "authd_transfers_out_total", kind="axfr", result="full") == 1
    assert _sample(text, "authd_transfers_out_total", kind="refused", result="refused") == 1
    assert _sample(text, "authd_zone_serial", zone="m.test.") == 7
    assert _sample(text, "authd_tcp_connections") == 2
    assert _sample(text, "authd_reload_reactor_stall_seconds") == 0.004
    as_json = m.as_json()
    assert as_json["queries"] == 12 and as_json["answer_cache_hits"] == 9


def test_latency_is_timed_once_a_tick_and_tallies_fold() -> None:
    """Each tick times the next answer; the queue of tallies folds at METRICS_FOLD_AT."""
    assert 0 < METRICS_TICK <= 1
    snap = _snapshot(True)
    udp = UdpServer(lambda: snap, HOST, lambda reply: None)
    sent: list[bytes] = []

    class Socket:
        def sendto(self, data: bytes, addr: object) -> None:
            sent.append(data)

    udp.transport = type("T", (), {"socket": Socket()})()
    m = Metrics()
    counts = udp.counts = m.transports["udp"]
    query = make_query("www.m.test.", "A").to_wire()
    for _ in range(3):
        m.tick()
        for _ in range(5):
            udp.datagramReceived(query, (HOST, 5353))
    assert len(sent) == 15
    assert sum(counts.latency) == 3 and counts.latency_sum >= 0
    assert len(counts.pending) == 15  # not folded yet: far below METRICS_FOLD_AT
    assert m.as_json()["queries"] == 15 and not counts.pending  # a read folds
    counts.pending.extend([counts.pending[0] if counts.pending else None] * METRICS_FOLD_AT)
    m.tick()
    assert not counts.pending, "a tick folds a long queue"


def _generate(collector: MetricsCollector) -> str:
    return generate_latest(registry_for(collector)).decode()


def _sample(text: str, name: str, **labels: str) -> float:
    """The sum of *name*'s samples whose labels include *labels*."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if m is None or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
            found = True
    assert found, f"no sample {name} {labels} in:\n{text}"
    return total


# -- end to end: dnsperf against the real server --------------------------------------------


def _promtool_accepts(text: str) -> None:
    promtool = require_binary("promtool")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _metrics_url(server: Server) -> str:
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    while time.monotonic() < deadline:
        m = re.search(r"metrics on (http://\S+/metrics)", server.read_log())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no metrics line in the log:\n{server.read_log()}")


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


@pytest.fixture()
def served(tmp_path: Path):
    zone = tmp_path / "m.test.zone"
    zone.write_text(ZONE)
    server = start_authd(
        {"m.test.": zone},
        options={"metrics": {"address": HOST, "port": 0}, "state_dir": str(tmp_path / "state")},
    )
    try:
        yield server, tmp_path
    finally:
        server.stop()


def test_scrape_during_dnsperf_matches_its_counts(served) -> None:
    server, tmp = served
    dnsperf = require_binary("dnsperf")
    url = _metrics_url(server)
    queries = tmp / "queries.txt"
    queries.write_text("www.m.test. A\nnope.m.test. A\nm.test. SOA\nns.m.test. AAAA\n")
    proc = subprocess.Popen(
        [dnsperf, "-s", HOST, "-p", str(server.port), "-d", str(queries)]
        + ["-l", str(DNSPERF_SECONDS), "-c", "2", "-q", "20", "-t", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(DNSPERF_SECONDS / 2)
        during = _scrape(url)  # the endpoint answers while the server is busy
        out, _ = proc.communicate(timeout=DNSPERF_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
    after = _scrape(url)
    assert _sample(during, "authd_queries_total", transport="udp") <= completed
    assert _sample(after, "authd_queries_total", transport="udp") == completed
    assert _sample(after, "authd_response_size_bytes_count", transport="udp") == completed
    # Four questions in turn: a quarter of each (dnsperf cycles the file).
    for qtype, rcode, name in (("A", "NOERROR", "www"), ("A", "NXDOMAIN", "nope")):
        n = _sample(after, "authd_queries_total", transport="udp", qtype=qtype, rcode=rcode)
        assert abs(n - completed / 4) <= 2 * 20 + 4, (name, n, completed)
    hits = _sample(after, "authd_answer_cache_hits_total", transport="udp")
    assert completed - 4 <= hits <= completed  # every repeat is a hit
    timed = _sample(after, "authd_answer_latency_seconds_count", transport="udp")
    assert 1 <= timed <= completed  # the first answer after each tick is timed
    assert _sample(after, "authd_zone_serial", zone="m.test.") == 7
    _promtool_accepts(after)
    # The same counters in authd ctl status --json.
    ctl = subprocess.run(
        [sys.executable, "-m", "authd", "ctl", "status", "--json"]
        + ["--socket", str(tmp / "state" / "authd.ctl")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ctl.returncode == 0, ctl.stderr
    status = json.loads(ctl.stdout)
    assert status["metrics"]["queries_by_transport"]["udp"] == completed
    assert status["metrics"]["answer_cache_hits"] == hits
    detail = status["metrics"]["queries_detail"]
    assert sum(d["count"] for d in detail if d["transport"] == "udp") == completed
    assert status["metrics"]["response_size_buckets"]["udp"]["+Inf"] == completed


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    zone = tmp_path / "m.test.zone"
    zone.write_text(ZONE)
    with start_authd({"m.test.": zone}, options={"state_dir": str(tmp_path / "s")}) as server:
        assert "metrics on" not in server.read_log()
        r = dns.message.from_wire(_udp(make_query("www.m.test.", "A").to_wire(), server.port))
        assert r.rcode() == dns.rcode.NOERROR


def _udp(wire: bytes, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(wire, (HOST, port))
        return s.recv(65535)


# -- end to end: a primary and a secondary ------------------------------------------------------

FLEET_WAIT = 60.0  # seconds for a transfer or a NOTIFY round (a loaded machine)


def _wait_sample(url: str, name: str, at_least: float, **labels: str) -> str:
    """Scrape until *name* (with *labels*) reaches *at_least*; the last scrape."""
    deadline = time.monotonic() + FLEET_WAIT
    text = ""
    while time.monotonic() < deadline:
        text = _scrape(url)
        try:
            if _sample(text, name, **labels) >= at_least:
                return text
        except AssertionError:
            pass  # not there yet
        time.sleep(0.2)
    raise AssertionError(f"{name} {labels} never reached {at_least}:\n{text}")


def test_transfers_notify_refresh_and_reload_are_counted(tmp_path: Path) -> None:
    zone = tmp_path / "m.test.zone"
    zone.write_text(ZONE)
    metrics = {"address": HOST, "port": 0}
    from harness.peers import free_port

    secondary_port = free_port()
    primary = start_authd(
        "listen: [{address: 127.0.0.1, port: {port}}]\n"
        f"options: {{state_dir: {tmp_path / 'p'}, metrics: {json.dumps(metrics)}}}\n"
        f"zones:\n  - name: m.test.\n    file: {zone}\n    allow_transfer: [127.0.0.1]\n"
        f"    also_notify: [{{address: 127.0.0.1, port: {secondary_port}}}]\n"
    )
    try:
        secondary = start_authd(
            "listen: [{address: 127.0.0.1, port: {port}}]\n"
            f"options: {{state_dir: {tmp_path / 's'}, metrics: {json.dumps(metrics)}}}\n"
            "zones:\n  - name: m.test.\n    type: secondary\n"
            f"    primaries: [{{address: 127.0.0.1, port: {primary.port}}}]\n",
            secondary_port,
        )
        try:
            p_url, s_url = _metrics_url(primary), _metrics_url(secondary)
            s_text = _wait_sample(s_url, "authd_transfers_in_total", 1, kind="axfr")
            assert _sample(s_text, "authd_transfers_in_total", result="success") >= 1
            assert _sample(s_text, "authd_secondary_expired", zone="m.test.") == 0
            assert _sample(s_text, "authd_secondary_refresh_state", zone="m.test.") == 1
            assert _sample(s_text, "authd_secondary_seconds_since_refresh", zone="m.test.") < 600
            _wait_sample(s_url, "authd_zone_serial", 7, zone="m.test.")
            p_text = _scrape(p_url)
            assert _sample(p_text, "authd_transfers_out_total", kind="axfr", result="full") >= 1
            # An edit and SIGHUP: a reload, a NOTIFY acknowledged, an IXFR in and out.
            zone.write_text(ZONE.replace(" 7 7200", " 8 7200") + "new A 192.0.2.9\n")
            primary.reload()
            p_text = _wait_sample(p_url, "authd_notify_acked_total", 1)
            assert _sample(p_text, "authd_notify_sent_total") >= 1
            _wait_sample(s_url, "authd_zone_serial", 8, zone="m.test.")
            s_text = _wait_sample(s_url, "authd_transfers_in_total", 1, kind="ixfr")
            p_text = _wait_sample(p_url, "authd_reloads_total", 1, result="ok")
            assert _sample(p_text, "authd_transfers_out_total", kind="ixfr") >= 1
            assert _sample(p_text, "authd_zone_serial", zone="m.test.") == 8
            assert _sample(p_text, "authd_reload_reactor_stall_seconds") >= 0
            _promtool_accepts(p_text)
            _promtool_accepts(s_text)
        finally:
            secondary.stop()
    finally:
        primary.stop()


def test_rate_limited_answers_keep_their_tally_and_slips_count_by_rcode() -> None:
    """With RRL on, what is sent as it was keeps its zone labels; a slip (TC) is its own."""
    from authd.ratelimit import Limiter, Settings

    snap = dataclasses.replace(
        _snapshot(True), limiter=Limiter(Settings(responses_per_second=1, slip=1))
    )
    tallies = [_ask(snap, "www.m.test.", "A", qid=q) for q in range(1, 6)]
    first = _tally(tallies[0])
    assert (first.zone, first.rcode, first.truncated) == ("m.test.", "NOERROR", False)
    later = [_tally(r) for r in tallies[1:] if r.messages]
    assert later and any(t.truncated for t in later), later  # slipped as TC


def test_security_events_were_logged_but_not_counted(tmp_path: Path) -> None:
    """Regression: refused NOTIFYs, TSIG refusals and connections closed at the
    TCP limit were logged (rate-limited) and counted nowhere."""
    import dns.opcode
    import dns.query
    import dns.tsig

    zone = tmp_path / "m.test.zone"
    zone.write_text(ZONE)
    server = start_authd(
        {"m.test.": zone},
        options={
            "metrics": {"address": HOST, "port": 0},
            "state_dir": str(tmp_path / "state"),
            "tcp_max_connections": 2,
        },
    )
    try:
        url = _metrics_url(server)
        notify = dns.message.make_query("m.test.", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        for _ in range(3):  # m.test. is a primary zone here: refused
            dns.query.udp(notify, HOST, port=server.port, timeout=5)
        signed = dns.message.make_query("www.m.test.", "A")
        signed.use_tsig(dns.tsig.Key("nokey.", "c2VjcmV0c2VjcmV0", "hmac-sha256"))
        for _ in range(2):
            with pytest.raises(dns.tsig.PeerBadKey):  # BADKEY, as dnspython reads it
                dns.query.udp(signed, HOST, port=server.port, timeout=5)
        # Two idle connections fill the limit; each new one closes the longest idle.
        held = []
        try:
            for _ in range(4):
                s = socket.create_connection((HOST, server.port), timeout=5)
                held.append(s)
                time.sleep(0.2)
            text = _wait_sample(url, "authd_tcp_connections_evicted_total", 2)
        finally:
            for s in held:
                s.close()
        assert _sample(text, "authd_notify_refused_total") == 3
        assert _sample(text, "authd_tsig_rejected_total", error="BADKEY") == 2
        _promtool_accepts(text)
    finally:
        server.stop()
