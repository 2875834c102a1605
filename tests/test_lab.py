"""``authd lab``: init, up (one authd, a view per lab server), trace, status, down,
and the tracer's answers against a real unbound resolving through the lab.

End to end on the lab's own loopback addresses (127.0.0.10-42) and a port
from ``free_port()``; the lab runs detached, as a user would run it.  The
tracer's pure walk (``authd.labtrace``) is also driven from tables: a
timeout, a truncated answer retried over TCP, a lame server, a CNAME loop.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
import yaml

from authd import delegation, labcheck, labgraph, labscenarios, labtemplate, labtrace
from authd import lab as labmodel
from authd.adapters import keystore
from authd.cli.lab import hints, make_ask, read_lab
from authd.errors import ConfigError
from authd.keyfiles import ds_records
from authd.limits import (
    LAB_TRACE_MAX_DEPTH,
    LAB_TRACE_MAX_QUERIES,
    LAB_TRACE_TIMEOUT,
    LAB_UP_TIMEOUT,
    MAX_LAB_SERVERS,
    MAX_LAB_ZONES,
)
from harness.peers import free_port, require_binary

ROOT = Path(__file__).resolve().parent.parent


def authd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("lab") / "lab"
    done = authd("lab", "init", str(folder))
    assert done.returncode == 0, done.stderr
    port = free_port()
    done = authd("lab", "up", str(folder), "--port", str(port), "--detach")
    assert done.returncode == 0, done.stdout + done.stderr + (folder / "authd.log").read_text()
    try:
        yield folder, port
    finally:
        authd("lab", "down", str(folder))


def test_init_writes_a_valid_lab(tmp_path: Path) -> None:
    done = authd("lab", "init", str(tmp_path / "l"))
    assert done.returncode == 0, done.stderr
    lab = read_lab(str(tmp_path / "l"))
    zones = lab.zones()
    for z in (
        "com.",
        "net.",
        "org.",
        "arpa.",
        "in-addr.arpa.",
        "0.0.127.in-addr.arpa.",
        "example.com.",
        "eng.example.com.",
    ):
        assert dns.name.from_text(z) in zones
    # example.com has a secondary on another server
    assert [s.name for s in zones[dns.name.from_text("example.com.")]] == ["ns1", "ns2"]
    # a second init refuses to overwrite
    assert authd("lab", "init", str(tmp_path / "l")).returncode == 1


def test_signed_template_puts_each_ds_at_its_delegation(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    done = authd("lab", "init", str(folder), "--template", "signed")
    assert done.returncode == 0, done.stderr
    lab = read_lab(str(folder))
    assert lab.signed
    state = str(folder / labmodel.CONFIG_STATE_DIR)
    for zone, servers in lab.zones().items():
        keys = keystore.load_keys(state, zone)
        assert [k.role for k in keys] == ["csk"], zone
        for k in keys:
            path = Path(keystore.key_dir(state, zone)) / (k.file + ".private")
            assert path.stat().st_mode & 0o777 == 0o600
        want = {r.to_text() for r in ds_records(keys)}
        parent = labmodel.parent_zone(lab, zone)
        if parent is None:  # the root: its DS is the trust anchor
            text = (folder / labmodel.ANCHOR_FILE).read_text()
            origin = dns.name.root
        else:
            file = lab.zones()[parent][0].zone(parent).file
            assert file is not None
            text = (folder / file).read_text()
            origin = parent
        got = dns.zone.from_text(text, origin, relativize=False, check_origin=parent is not None)
        node = got.get_rdataset(zone, dns.rdatatype.DS)
        assert node is not None and {r.to_text() for r in node} == want, zone
        assert servers[0].zone(zone).file is not None
    config = labmodel.authd_config(lab, 53)
    for view in config["views"]:
        for z in view["zones"]:
            assert ("dnssec" in z) == ("file" in z), z  # every primary signed, no secondary
    assert "validator" not in labmodel.unbound_config(labtemplate.basic()[0], 53, "/x", 5353)
    # a second init with --force keeps the keys (the DS at the parents stays right)
    tags = {z: [k.tag for k in keystore.load_keys(state, z)] for z in lab.zones()}
    assert authd("lab", "init", str(folder), "--template", "signed", "--force").returncode == 0
    assert tags == {z: [k.tag for k in keystore.load_keys(state, z)] for z in lab.zones()}


def test_signed_lab_validates_in_unbound(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    done = authd("lab", "init", str(folder), "--template", "signed")
    assert done.returncode == 0, done.stderr
    port = free_port()
    done = authd("lab", "up", str(folder), "--port", str(port), "--detach")
    assert done.returncode == 0, done.stdout + done.stderr + (folder / "authd.log").read_text()
    try:
        deadline = time.monotonic() + 30  # the secondary fills (status answers)
        while authd("lab", "status", str(folder)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        process, listen = _unbound(folder, port)
        try:
            conf = (folder / "unbound" / "unbound.conf").read_text()
            assert "trust-anchor-file" in conf and "validator iterator" in conf
            for text, rcode in (
                ("www.example.com", dns.rcode.NOERROR),
                ("nothing.example.com", dns.rcode.NXDOMAIN),
                ("build.eng.example.com", dns.rcode.NOERROR),
                ("www.example.org", dns.rcode.NOERROR),
                ("no.such.example.net", dns.rcode.NXDOMAIN),
                ("40.0.0.127.in-addr.arpa", dns.rcode.NOERROR),
            ):
                rdtype = "PTR" if text.endswith("arpa") else "A"
                q = dns.message.make_query(text, rdtype, want_dnssec=True)
                reply = dns.query.udp(q, "127.0.0.1", port=listen, timeout=10)
                assert reply.rcode() == rcode, (text, reply)
                assert reply.flags & dns.flags.AD, (text, reply)
                if rcode == dns.rcode.NOERROR:
                    assert reply.answer, (text, reply)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        authd("lab", "down", str(folder))


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["servers"][0].update(address="10.0.0.1"), "servers[0].address"),
        (lambda d: d["servers"][1].update(address="127.0.0.10"), "servers[1].address"),
        (
            lambda d: d["servers"][5]["zones"][2].update(primary="nope"),
            "servers[5].zones[2].primary",
        ),
        (lambda d: d["servers"][0].update(colour="red"), "servers[0].colour"),
        (lambda d: d["servers"][2]["zones"][0].pop("file"), "servers[2].zones[0]"),
    ],
)
def test_bad_lab_yaml_names_the_key(edit: object, path: str) -> None:
    lab, _ = labtemplate.basic()
    data = labmodel.lab_to_dict(lab)
    edit(data)  # type: ignore[operator]
    with pytest.raises(ConfigError) as e:
        labmodel.parse_lab(data)
    assert e.value.path == path


def test_generated_config_is_one_view_per_server() -> None:
    lab, _ = labtemplate.basic()
    cfg = labmodel.authd_config(lab, 5399)
    assert [v["match_destinations"] for v in cfg["views"]] == [[s.address] for s in lab.servers]
    assert {(lc["address"], lc["port"]) for lc in cfg["listen"]} == {
        (s.address, 5399) for s in lab.servers
    }
    assert labmodel.parse_lab(yaml.safe_load(yaml.safe_dump(labmodel.lab_to_dict(lab)))) == lab


def test_status_and_every_zone_answers(running_lab: tuple[Path, int]) -> None:
    folder, port = running_lab
    deadline = time.monotonic() + 30
    while True:  # the secondary fills by its first transfer
        done = authd("lab", "status", str(folder))
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert done.returncode == 0, done.stdout
    assert f"port {port}" in done.stdout
    assert "secondary of ns1   answers" in done.stdout


def test_up_twice_is_refused(running_lab: tuple[Path, int]) -> None:
    folder, port = running_lab
    done = authd("lab", "up", str(folder), "--port", str(port), "--detach")
    assert done.returncode == 1 and "already running" in done.stderr


def test_trace_explains_the_walk(running_lab: tuple[Path, int]) -> None:
    folder, _ = running_lab
    done = authd("lab", "trace", "www.example.org", "--lab", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "1. Ask a.root-servers.net. (127.0.0.10), a root server" in out
    assert "Referral: org. is delegated" in out
    assert "NS ns.example.net.  no glue (its name is outside the zone" in out
    assert "a separate lookup of ns.example.net. A" in out
    assert "www.example.org. 3600 IN A 203.0.113.80" in out
    done = authd("lab", "trace", "wiki.example.org", "--lab", str(folder))
    assert "alias (CNAME) for www.example.com.: the walk starts again" in done.stdout


def test_trace_without_a_lab_is_an_error(tmp_path: Path) -> None:
    authd("lab", "init", str(tmp_path / "l"))
    done = authd("lab", "trace", "www.example.com", "--lab", str(tmp_path / "l"))
    assert done.returncode == 1 and "no lab running" in done.stderr


def _unbound(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], int]:
    binary = require_binary("unbound")
    listen = free_port()
    done = authd("lab", "resolver", str(folder), "--port", str(port), "--listen-port", str(listen))
    assert done.returncode == 0, done.stderr
    conf = folder / "unbound" / "unbound.conf"
    check = subprocess.run(
        [require_binary("unbound-checkconf"), str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr + conf.read_text()
    log = open(folder / "unbound" / "unbound.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    q = dns.message.make_query("localhost.", "A")
    while time.monotonic() < deadline:
        try:
            dns.query.udp(q, "127.0.0.1", port=listen, timeout=0.5)
            return process, listen
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(
        "unbound did not start: " + (folder / "unbound" / "unbound.log").read_text()
    )


def _rrsets(rrsets: list[dns.rrset.RRset]) -> set[tuple[str, str, str]]:
    """The records, TTLs aside (a caching resolver counts them down)."""
    return {
        (r.name.to_text(), dns.rdatatype.to_text(r.rdtype), rd.to_text())
        for r in rrsets
        for rd in r
    }


def test_trace_agrees_with_unbound_on_every_template_name(running_lab: tuple[Path, int]) -> None:
    folder, port = running_lab
    lab = read_lab(str(folder))
    # let the secondary fill first (status answers)
    deadline = time.monotonic() + 30
    while authd("lab", "status", str(folder)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    process, listen = _unbound(folder, port)
    try:
        assert lab.names
        for text, type_text in lab.names:
            name, rdtype = dns.name.from_text(text), dns.rdatatype.from_text(type_text)
            ours = labtrace.trace(make_ask(port), hints(lab), name, rdtype)
            q = dns.message.make_query(name, rdtype)  # RD set: unbound resolves it
            theirs = dns.query.udp(q, "127.0.0.1", port=listen, timeout=10)
            want = {
                dns.rcode.NOERROR: (labtrace.Outcome.ANSWER, labtrace.Outcome.NODATA),
                dns.rcode.NXDOMAIN: (labtrace.Outcome.NXDOMAIN,),
            }[theirs.rcode()]
            assert ours.outcome in want, (text, type_text, ours.outcome, theirs)
            assert _rrsets(ours.answer) == _rrsets(theirs.answer), (text, type_text)
    finally:
        process.terminate()
        process.wait(timeout=30)


# ------------------------------------------------------------ the pure walk


def _reply(
    q: str,
    *,
    aa: bool = True,
    answer: str = "",
    auth: str = "",
    add: str = "",
    tc: bool = False,
    rcode: int = dns.rcode.NOERROR,
) -> dns.message.Message:
    m = dns.message.make_response(dns.message.make_query(q, "A"))
    m.flags = dns.flags.QR | (dns.flags.AA if aa else 0) | (dns.flags.TC if tc else 0)
    m.set_rcode(rcode)
    for section, text in ((m.answer, answer), (m.authority, auth), (m.additional, add)):
        for line in filter(None, text.split(";")):
            owner, rdclass, rdtype, rdata = line.split(maxsplit=3)
            rrset = dns.rrset.from_text(owner, 300, rdclass, rdtype, rdata)
            same = [r for r in section if r.name == rrset.name and r.rdtype == rrset.rdtype]
            if same:
                same[0].union_update(rrset)
            else:
                section.append(rrset)
    return m


ROOT_HINTS = [labtrace.NameServer(dns.name.from_text("a.root."), ("192.0.2.1",))]


def _run(
    table: dict[tuple[str, bool], dns.message.Message | None], q: str = "www.example."
) -> labtrace.Trace:
    def ask(
        address: str, name: dns.name.Name, rdtype: object, tcp: bool
    ) -> dns.message.Message | None:
        return table.get((address, tcp))

    return labtrace.trace(ask, ROOT_HINTS, dns.name.from_text(q), dns.rdatatype.A)


def test_walk_referral_then_tc_retried_over_tcp() -> None:
    trace = _run(
        {
            ("192.0.2.1", False): _reply(
                "www.example.",
                aa=False,
                auth="example. IN NS ns.example.",
                add="ns.example. IN A 192.0.2.2",
            ),
            ("192.0.2.2", False): _reply("www.example.", tc=True),
            ("192.0.2.2", True): _reply("www.example.", answer="www.example. IN A 192.0.2.80"),
        }
    )
    assert trace.outcome is labtrace.Outcome.ANSWER
    text = "\n".join(s.text for s in trace.steps)
    assert "truncated (TC bit)" in text and "glue 192.0.2.2" in text


def test_walk_timeout_and_lame_give_servfail() -> None:
    trace = _run(
        {
            ("192.0.2.1", False): _reply(
                "www.example.",
                aa=False,
                auth="example. IN NS ns.example.;example. IN NS ns2.example.",
                add="ns.example. IN A 192.0.2.2;ns2.example. IN A 192.0.2.3",
            ),
            ("192.0.2.2", False): None,
            ("192.0.2.3", False): _reply("www.example.", rcode=dns.rcode.REFUSED, aa=False),
        }
    )
    assert trace.outcome is labtrace.Outcome.SERVFAIL
    text = "\n".join(s.text for s in trace.steps)
    assert "timeout" in text and "lame delegation" in text


def test_walk_cname_loop_stops() -> None:
    trace = _run(
        {
            ("192.0.2.1", False): _reply("a.example.", answer="a.example. IN CNAME b.example."),
        },
        "a.example.",
    )
    # b.example. is asked again and the root answers a.example.'s CNAME: not b's
    assert trace.queries <= LAB_TRACE_MAX_QUERIES


def test_walk_query_limit_bounds_a_referral_loop() -> None:
    trace = _run(
        {
            ("192.0.2.1", False): _reply(
                "www.example.",
                aa=False,
                auth="example. IN NS a.root.",
                add="a.root. IN A 192.0.2.1",
            ),
        }
    )
    assert trace.outcome is labtrace.Outcome.SERVFAIL
    assert trace.queries <= LAB_TRACE_MAX_QUERIES


def test_lab_limits_are_enforced() -> None:
    lab, _ = labtemplate.basic()
    data = labmodel.lab_to_dict(lab)
    one = data["servers"][0]
    data["servers"] = [
        {**one, "name": f"s{i}", "address": f"127.1.{i // 250}.{i % 250 + 2}"}
        for i in range(MAX_LAB_SERVERS + 1)
    ]
    with pytest.raises(ConfigError, match=f"more than {MAX_LAB_SERVERS} servers"):
        labmodel.parse_lab(data)
    data["servers"] = [
        {**one, "zones": [{"name": f"z{i}.", "file": "f"} for i in range(MAX_LAB_ZONES + 1)]}
    ]
    with pytest.raises(ConfigError, match=f"more than {MAX_LAB_ZONES} zones"):
        labmodel.parse_lab(data)


def test_walk_depth_limit_bounds_glue_lookups() -> None:
    # every referral names a server without glue, inside a zone that never answers
    def ask(address: str, name: dns.name.Name, rdtype: object, tcp: bool) -> dns.message.Message:
        child = dns.name.Name(name.labels[-2:])
        return _reply(name.to_text(), aa=False, auth=f"{child} IN NS ns.{name}")

    trace = labtrace.trace(ask, ROOT_HINTS, dns.name.from_text("www.example."), dns.rdatatype.A)
    assert trace.outcome is labtrace.Outcome.SERVFAIL
    assert max(s.depth for s in trace.steps) <= LAB_TRACE_MAX_DEPTH
    assert trace.queries <= LAB_TRACE_MAX_QUERIES


def test_trace_timeout_is_bounded() -> None:
    # nobody listens on this port: each query gives up after LAB_TRACE_TIMEOUT
    ask = make_ask(free_port(), timeout=LAB_TRACE_TIMEOUT / 10)
    start = time.monotonic()
    assert ask("127.0.0.10", dns.name.root, dns.rdatatype.SOA, False) is None
    assert time.monotonic() - start < LAB_TRACE_TIMEOUT * 10  # generous: no speed asserted


def test_up_timeout_named(running_lab: tuple[Path, int]) -> None:
    # `up --detach` waits at most LAB_UP_TIMEOUT; the module fixture came up within it
    assert LAB_UP_TIMEOUT > 0 and (running_lab[0] / "lab.run").is_file()


# ------------------------------------------------------------ scenarios

SCENARIO_SIGNS = {
    # scenario -> (outcome broken, a phrase of the trace)
    "lame": (labtrace.Outcome.SERVFAIL, "(a lame delegation)"),
    "missing-glue": (labtrace.Outcome.SERVFAIL, "(missing glue)"),
    "glue-mismatch": (labtrace.Outcome.SERVFAIL, "timeout"),
    "ns-differ": (labtrace.Outcome.ANSWER, "Authoritative answer"),
    "stale-secondary": (labtrace.Outcome.ANSWER, "Authoritative answer"),
    "cname-loop": (labtrace.Outcome.SERVFAIL, "CNAME loop"),
    "cname-apex": (labtrace.Outcome.ANSWER, "alias (CNAME)"),
    "udp-only": (labtrace.Outcome.SERVFAIL, "(TCP blocked?)"),
    "drop-edns": (labtrace.Outcome.SERVFAIL, "timeout"),
    "silent": (labtrace.Outcome.SERVFAIL, "timeout"),
}


def _trace_until(folder: Path, port: int, text: str, want: labtrace.Outcome) -> labtrace.Trace:
    """Trace until the outcome is *want* (the lab reloads in its own time), bounded."""
    lab = read_lab(str(folder))
    name, type_text = text.split()
    deadline = time.monotonic() + 30
    while True:
        result = labtrace.trace(
            make_ask(port, timeout=0.3),
            hints(lab),
            dns.name.from_text(name),
            dns.rdatatype.from_text(type_text),
        )
        if result.outcome is want or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_scenarios_list_every_scenario() -> None:
    done = authd("lab", "scenarios")
    assert done.returncode == 0
    for s in labscenarios.SCENARIOS:
        assert s.name in done.stdout
    # The chain-of-trust scenarios need the signed lab: tests/test_lab_dnssec.py.
    assert set(SCENARIO_SIGNS) == {s.name for s in labscenarios.SCENARIOS if not s.signed_only}


@pytest.mark.parametrize("scenario", sorted(SCENARIO_SIGNS))
def test_break_shows_in_trace_and_fix_restores(
    running_lab: tuple[Path, int], scenario: str
) -> None:
    folder, port = running_lab
    s = labscenarios.BY_NAME[scenario]
    clean = _trace_until(folder, port, s.try_name, labtrace.Outcome.ANSWER)
    done = authd("lab", "break", scenario, "--lab", str(folder))
    assert done.returncode == 0, done.stderr
    try:
        outcome, phrase = SCENARIO_SIGNS[scenario]
        if scenario == "ns-differ":  # silent to a resolver: the child's NS set grew
            broken = _trace_until(folder, port, s.try_name, outcome)
        else:
            broken = _trace_until(folder, port, s.try_name, outcome)
        assert broken.outcome is outcome, [x.text for x in broken.steps]
        assert phrase in "\n".join(x.text for x in broken.steps)
    finally:
        assert authd("lab", "fix", "--lab", str(folder)).returncode == 0
    assert not (folder / "broken.json").exists()
    deadline = time.monotonic() + 30
    while True:  # the lab reloads the restored files in its own time
        fixed = _trace_until(folder, port, s.try_name, clean.outcome)
        if _rrsets(fixed.answer) == _rrsets(clean.answer) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert fixed.outcome is clean.outcome
    assert _rrsets(fixed.answer) == _rrsets(clean.answer)


def test_unbound_shows_the_cname_loop_as_servfail(running_lab: tuple[Path, int]) -> None:
    # The delegation faults need unbound on port 53 to show (it follows referrals
    # only there): tests/test_lab_unbound.py runs every scenario so, in a network
    # namespace.  A CNAME loop shows on any port, through the stub zones.
    folder, port = running_lab
    _trace_until(folder, port, "www.example.com A", labtrace.Outcome.ANSWER)
    process, listen = _unbound(folder, port)
    try:
        assert authd("lab", "break", "cname-loop", "--lab", str(folder)).returncode == 0
        _trace_until(folder, port, "loop1.example.com A", labtrace.Outcome.SERVFAIL)
        q = dns.message.make_query("loop1.example.com.", "A")
        reply = dns.query.udp(q, "127.0.0.1", port=listen, timeout=20)
        assert reply.rcode() == dns.rcode.SERVFAIL
    finally:
        authd("lab", "fix", "--lab", str(folder))
        process.terminate()
        process.wait(timeout=30)


def test_break_twice_and_unknown_scenario(tmp_path: Path) -> None:
    folder = tmp_path / "l"
    authd("lab", "init", str(folder))
    assert authd("lab", "break", "nope", "--lab", str(folder)).returncode == 2
    assert authd("lab", "break", "lame", "com.", "--lab", str(folder)).returncode == 2
    assert authd("lab", "break", "silent", "com.", "--lab", str(folder)).returncode == 0
    assert authd("lab", "break", "lame", "--lab", str(folder)).returncode == 1
    assert authd("lab", "fix", "--lab", str(folder)).returncode == 0


def test_serial_goes_up_on_break_and_fix() -> None:
    text = labtemplate.EXAMPLE_COM
    broken = labscenarios.bump_serial(text)
    assert labscenarios.serial_of(broken) == labtemplate.SERIAL + 1
    assert labscenarios.serial_of(labscenarios.bump_serial(text, 2026010105)) == 2026010106


# ------------------------------------------------------------ lab-only settings


def _config(tmp_path: Path, lab_section: dict[str, object], lab_file: bool) -> Path:
    (tmp_path / "z.zone").write_text(labtemplate.EXAMPLE_NET)
    if lab_file:
        (tmp_path / "lab.yaml").write_text("servers: []\n")
    cfg = {"zones": [{"name": "example.net.", "file": "z.zone"}], "lab": lab_section}
    path = tmp_path / "authd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"waive": ["glue-missing"]}, "lab.waive"),
        ({"faults": [{"address": "127.0.0.42", "fault": "silent"}]}, "lab.faults"),
        ({"lab_file": "lab.yaml", "waive": ["glue-missing"]}, "lab.lab_file"),
    ],
)
def test_lab_only_settings_refused_outside_a_lab(
    tmp_path: Path, section: dict[str, object], path: str
) -> None:
    from authd.config import load_config

    with pytest.raises(ConfigError) as e:
        load_config(str(_config(tmp_path, section, lab_file=False)))
    assert e.value.path == path


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"waive": ["soa-missing"]}, "lab.waive[0]"),
        ({"faults": [{"address": "127.0.0.42", "fault": "slow"}]}, "lab.faults[0].fault"),
        ({"faults": [{"address": "nope", "fault": "silent"}]}, "lab.faults[0].address"),
    ],
)
def test_bad_lab_settings_in_a_lab(tmp_path: Path, section: dict[str, object], path: str) -> None:
    from authd.config import load_config

    with pytest.raises(ConfigError) as e:
        load_config(str(_config(tmp_path, {"lab_file": "lab.yaml", **section}, lab_file=True)))
    assert e.value.path == path


def test_a_lab_may_waive_glue_missing_a_normal_config_never(tmp_path: Path) -> None:
    from authd.build import LoadOutcome, build_snapshot
    from authd.config import load_config

    text = labtemplate.EXAMPLE_COM.replace("ns1.eng     A", "; ns1.eng A")
    (tmp_path / "z.zone").write_text(labtemplate.EXAMPLE_NET)
    path = _config(tmp_path, {"lab_file": "lab.yaml", "waive": ["glue-missing"]}, lab_file=True)
    (tmp_path / "z.zone").write_text(text)
    cfg = yaml.safe_load(path.read_text())
    cfg["zones"][0]["name"] = "example.com."
    path.write_text(yaml.safe_dump(cfg))
    _, events = build_snapshot(load_config(str(path)), None, 0)
    assert [e.outcome for e in events] != [LoadOutcome.FAILED]
    del cfg["lab"]
    path.write_text(yaml.safe_dump(cfg))
    _, events = build_snapshot(load_config(str(path)), None, 0)
    assert [e.outcome for e in events] == [LoadOutcome.FAILED]
    assert "glue-missing" in events[0].reason


def test_lab_fault_drops_only_its_server() -> None:
    from authd.query import Request, Transport, lab_fault

    plain = dns.message.make_query("a.example.", "A", use_edns=False).to_wire()
    edns = dns.message.make_query("a.example.", "A", use_edns=0).to_wire()
    faults = (("127.0.0.42", "drop-edns"), ("127.0.0.43", "udp-only"), ("127.0.0.44", "silent"))

    def dropped(wire: bytes, local: str, transport: Transport) -> bool:
        return lab_fault(Request(wire, "127.0.0.1", local, transport), faults)

    assert dropped(edns, "127.0.0.42", Transport.UDP)
    assert not dropped(plain, "127.0.0.42", Transport.UDP)
    assert dropped(plain, "127.0.0.43", Transport.TCP)
    assert not dropped(plain, "127.0.0.43", Transport.UDP)
    assert dropped(plain, "127.0.0.44", Transport.UDP)
    assert not dropped(edns, "127.0.0.45", Transport.UDP)


# ------------------------------------------------------------ check

CHECK_SIGNS = {
    "lame": "[scenario: lame]",
    "missing-glue": "[scenario: missing-glue]",
    "glue-mismatch": "[scenario: glue-mismatch]",
    "ns-differ": "[scenario: ns-differ]",
    "stale-secondary": "[scenario: stale-secondary]",
    "cname-apex": "[scenario: cname-apex]",
    "udp-only": "[scenario: udp-only]",
    "drop-edns": "[scenario: drop-edns]",
    "silent": "[scenario: silent]",
}


def _check_until(folder: Path, want: str, clean: bool = False) -> str:
    deadline = time.monotonic() + 30
    while True:
        done = authd("lab", "check", "--lab", str(folder))
        ok = done.returncode == 0 if clean else want in done.stdout
        if ok or time.monotonic() > deadline:
            return done.stdout
        time.sleep(0.3)


@pytest.mark.parametrize("scenario", sorted(CHECK_SIGNS))
def test_check_names_the_scenario_and_is_clean_after_fix(
    running_lab: tuple[Path, int], scenario: str
) -> None:
    folder, _ = running_lab
    assert "0 findings" in _check_until(folder, "", clean=True)
    assert authd("lab", "break", scenario, "--lab", str(folder)).returncode == 0
    try:
        out = _check_until(folder, CHECK_SIGNS[scenario])
        assert CHECK_SIGNS[scenario] in out, out
    finally:
        assert authd("lab", "fix", "--lab", str(folder)).returncode == 0
    assert "0 findings" in _check_until(folder, "", clean=True)


def test_judge_a_healthy_and_a_broken_delegation() -> None:
    n = dns.name.from_text
    good = labcheck.ServerProbe(n("ns.x."), "127.0.0.9", True, True, True, 5)
    d = labcheck.Delegation(
        n("x."),
        n("."),
        frozenset({n("ns.x.")}),
        {n("ns.x."): frozenset({"127.0.0.9"})},
        frozenset({n("ns.x.")}),
        {n("ns.x."): frozenset({"127.0.0.9"})},
        (good,),
    )
    assert labcheck.judge(d) == []
    stale = labcheck.ServerProbe(n("ns2.y."), "127.0.0.8", True, True, True, 4)
    import dataclasses

    bad = dataclasses.replace(d, probes=(good, stale))
    assert [f.scenario for f in labcheck.judge(bad)] == ["stale-secondary"]


# ------------------------------------------------------------ graph


def test_graph_svg_holds_every_zone_and_server(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    require_binary("dot")
    folder = tmp_path / "l"
    authd("lab", "init", str(folder))
    out = tmp_path / "lab.svg"
    done = authd("lab", "graph", "--lab", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    texts = {
        (t.text or "").strip()
        for t in ET.parse(out).iter()
        if t.tag.endswith("}text") or t.tag == "text"
    }
    lab = read_lab(str(folder))
    for zone in lab.zones():
        assert ("root ." if zone == dns.name.root else zone.to_text()) in texts
    for s in lab.servers:
        assert s.host.to_text() in texts and s.address in texts


def test_graph_marks_findings_red() -> None:
    lab, _ = labtemplate.basic()
    zone = dns.name.from_text("eng.example.com.")
    source = labgraph.dot_source(lab, [labcheck.Finding("missing-glue", zone, "no glue")])
    assert "BROKEN: missing-glue" in source and "color=red" in source
    assert "color=red" not in labgraph.dot_source(lab)


def test_up_in_the_foreground_until_interrupted(tmp_path: Path) -> None:
    import signal

    folder = tmp_path / "fg"
    authd("lab", "init", str(folder))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "authd", "lab", "up", str(folder), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if authd("lab", "status", str(folder)).returncode == 0:
                break
            time.sleep(0.2)
        done = authd("lab", "trace", "www.example.com", "--lab", str(folder), "-q")
        assert "192.0.2.10" in done.stdout, done.stdout + done.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert not (folder / "lab.run").exists()
    assert authd("lab", "down", str(folder)).returncode == 1


def test_glue_for_a_name_server_only_the_parent_lists_is_judged_by_both_checks(
    tmp_path: Path,
) -> None:
    # The regression the shared judgement (authd.delegation.compare) fixed for
    # `authd lab check`: the parent delegates eng. to a second in-zone server
    # the child does not list as NS but does hold, at another address.  `authd
    # lab check` used to compare glue only for the child's own NS set, so it
    # missed this; `authd check` saw it.  Both now report it, from one function.
    folder = tmp_path / "l"
    assert authd("lab", "init", str(folder)).returncode == 0
    com, eng = folder / "zones/example.com.zone", folder / "zones/eng.example.com.zone"
    com.write_text(com.read_text() + "eng         NS    ns2.eng\nns2.eng     A     127.0.0.45\n")
    eng.write_text(eng.read_text() + "ns2         A     127.0.0.46\n")
    linted = authd("check", str(com), str(eng))
    assert "delegation-glue-mismatch" in linted.stdout, linted.stdout + linted.stderr
    assert "ns2.eng.example.com." in linted.stdout
    port = free_port()
    done = authd("lab", "up", str(folder), "--port", str(port), "--detach")
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        out = authd("lab", "check", "--lab", str(folder)).stdout
    finally:
        authd("lab", "down", str(folder))
    line = next((x for x in out.splitlines() if "[scenario: glue-mismatch]" in x), "")
    assert "ns2.eng.example.com." in line and "127.0.0.45" in line and "127.0.0.46" in line, out


def test_lab_check_and_check_share_the_delegation_judgement() -> None:
    # One function judges NS agreement and glue for both commands.
    import authd.lint

    n = dns.name.from_text
    diff = delegation.compare(
        n("x."),
        [n("ns1.x."), n("ns.y.")],
        {n("ns1.x."): ["192.0.2.1"]},
        [n("ns1.x."), n("ns2.x.")],
        {n("ns1.x."): ["192.0.2.2"]},
    )
    assert diff.only_parent == (n("ns.y."),) and diff.only_child == (n("ns2.x."),)
    assert diff.missing_glue == ()
    assert [(m.host, m.child) for m in diff.glue_mismatch] == [
        (n("ns1.x."), frozenset({"192.0.2.2"}))
    ]
    assert authd.lint.delegation is delegation and labcheck.delegation is delegation


def test_a_lab_secondary_takes_the_waived_zone_its_primary_serves(
    running_lab: tuple[Path, int],
) -> None:
    # Regression: lab.waive reached zones loaded from files but not transferred
    # ones, so ns2 refused example.com without eng's glue and kept serving the
    # glue: unbound, asking ns2, still resolved build.eng.example.com.
    folder, port = running_lab

    def serial(address: str) -> int:
        q = dns.message.make_query("example.com.", "SOA")
        soa = dns.query.udp(q, address, port=port, timeout=LAB_TRACE_TIMEOUT)
        return int(soa.answer[0][0].serial) if soa.answer else 0

    before = serial("127.0.0.40")  # the primary, ns1
    assert authd("lab", "break", "missing-glue", "--lab", str(folder)).returncode == 0
    try:
        q = dns.message.make_query("eng.example.com.", "NS")
        q.flags &= ~dns.flags.RD
        deadline = time.monotonic() + 30
        while serial("127.0.0.41") <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert serial("127.0.0.41") > before, "the secondary never took the broken zone"
        reply = dns.query.udp(q, "127.0.0.41", port=port, timeout=LAB_TRACE_TIMEOUT)
        assert reply.authority and not reply.additional, reply  # the referral, no glue
    finally:
        assert authd("lab", "fix", "--lab", str(folder)).returncode == 0
    assert "0 findings" in _check_until(folder, "", clean=True)
