"""``authd lab`` on port 53, seen through a real unbound walking it from the root hints.

unbound follows referrals to port 53 only, so the lab runs in a network
namespace the test makes (``ip netns add``; we run as root), where the lab
binds port 53 of its own 127.0.0.0/8 addresses and unbound iterates from
``authd lab resolver``'s root hints, with no stub zones.  Every command (the
lab, unbound, the questions) runs inside it through ``ip netns exec``; the
namespace is deleted at the end.

Both templates, each in its own namespace: ``trace`` agrees with unbound on
every name of the template; and each scenario (``authd lab scenarios``),
broken, shows through unbound the symptom it promises, and after ``fix``
unbound answers as before.  In the signed lab unbound validates (the lab's
trust anchor): every answer before and after carries AD, the chain-of-trust
scenarios give SERVFAIL, and ``trace --dnssec`` says why; in the basic lab
those two are refused with the reason.  The scenario test writes what trace,
check and unbound showed as a Markdown table to ``$AUTHD_LAB_TABLE`` when set
(``-signed`` before the suffix for the signed lab; docs/lab.md's tables come
from them).  Every wait is bounded; unbound is restarted between phases so no
cache carries over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from authd import labscenarios
from authd.cli.lab import read_lab, read_run
from harness.peers import require_binary

ROOT = Path(__file__).resolve().parent.parent
UNBOUND_PORT = 5353  # inside the namespace: nothing else listens there
ASK_TIMEOUT = 10.0  # seconds a question to unbound may take (timeouts are a symptom)
COMMAND_TIMEOUT = 120  # seconds any one command may take
SETTLE = 30.0  # seconds the lab has to reload a broken or fixed zone

# Asks unbound (inside the namespace) one question; prints the outcome as JSON.
ASK = """
import json, sys, time
import dns.exception, dns.flags, dns.message, dns.query, dns.rcode
name, rdtype, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
start = time.monotonic()
q = dns.message.make_query(name, rdtype)
q.flags |= dns.flags.AD  # RFC 6840 s5.7: tell us whether you validated it
try:
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    out = {"rcode": dns.rcode.to_text(r.rcode()),
           "answer": sorted(f"{x.name} {dns.rdatatype.to_text(x.rdtype)} {rd}"
                            for x in r.answer for rd in x),
           "ad": bool(r.flags & dns.flags.AD)}
except dns.exception.Timeout:
    out = {"rcode": "timeout", "answer": [], "ad": False}
out["seconds"] = round(time.monotonic() - start, 1)
print(json.dumps(out))
"""


class Netns:
    """A network namespace with its loopback up, and the processes started in it."""

    def __init__(self) -> None:
        self.name = f"authd-lab-{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Netns:
        ip = require_binary("ip")
        subprocess.run([ip, "netns", "add", self.name], check=True, timeout=COMMAND_TIMEOUT)
        self.run([ip, "link", "set", "lo", "up"], check=True)
        return self

    def argv(self, argv: list[str]) -> list[str]:
        return [require_binary("ip"), "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(argv),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            cwd=ROOT,
            check=check,
        )

    def authd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "authd", *args])

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=30)
        subprocess.run(
            [require_binary("ip"), "netns", "delete", self.name], timeout=COMMAND_TIMEOUT
        )


@dataclass
class Lab:
    ns: Netns
    folder: Path
    template: str
    unbound: subprocess.Popen[bytes] | None = None

    @property
    def signed(self) -> bool:
        return self.template == "signed"

    def start_unbound(self) -> None:
        """A fresh unbound (no cache, no memory of bad servers), answering."""
        self.stop_unbound()
        conf = self.folder / "unbound" / "unbound.conf"
        log = open(self.folder / "unbound" / "unbound.log", "ab")  # noqa: SIM115
        # ip netns exec execs unbound itself, so this pid is unbound's.
        self.unbound = subprocess.Popen(
            self.ns.argv([require_binary("unbound"), "-d", "-c", str(conf)]),
            stdout=log,
            stderr=log,
        )
        self.ns.processes.append(self.unbound)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ask("localhost.", "A", 1.0)["rcode"] == "NOERROR":
                return
            time.sleep(0.2)
        raise AssertionError(
            "unbound did not start: " + (self.folder / "unbound" / "unbound.log").read_text()
        )

    def stop_unbound(self) -> None:
        if self.unbound is not None and self.unbound.poll() is None:
            self.unbound.terminate()
            self.unbound.wait(timeout=30)
        self.unbound = None

    def ask(self, name: str, rdtype: str, timeout: float = ASK_TIMEOUT) -> dict[str, object]:
        done = self.ns.run(
            [sys.executable, "-c", ASK, name, rdtype, str(UNBOUND_PORT), str(timeout)]
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    def trace(self, name: str, rdtype: str) -> subprocess.CompletedProcess[str]:
        dnssec = ["--dnssec"] if self.signed else []
        return self.ns.authd("lab", "trace", name, rdtype, *dnssec, "--lab", str(self.folder))

    def check(self) -> subprocess.CompletedProcess[str]:
        return self.ns.authd("lab", "check", "--lab", str(self.folder))


@pytest.fixture(scope="module", params=["basic", "signed"])
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    require_binary("unbound")
    template = str(request.param)
    folder = tmp_path_factory.mktemp("netnslab") / "lab"
    with Netns() as ns:
        done = ns.authd("lab", "init", str(folder), "--template", template)
        assert done.returncode == 0, done.stderr
        # No --port: in its own namespace the lab can bind 53, and so it does.
        done = ns.authd("lab", "up", str(folder), "--detach")
        log = folder / "authd.log"
        assert done.returncode == 0, (
            done.stdout + done.stderr + (log.read_text() if log.exists() else "")
        )
        run = read_run(str(folder))
        assert run is not None and run["port"] == 53, run
        try:
            deadline = time.monotonic() + SETTLE  # the secondary fills by its first transfer
            while ns.authd("lab", "status", str(folder)).returncode != 0:
                assert time.monotonic() < deadline, ns.authd("lab", "status", str(folder)).stdout
                time.sleep(0.3)
            done = ns.authd("lab", "resolver", str(folder), "--listen-port", str(UNBOUND_PORT))
            assert done.returncode == 0, done.stderr
            conf = (folder / "unbound" / "unbound.conf").read_text()
            assert "root-hints:" in conf and "stub-zone" not in conf  # a real walk from the root
            assert ("trust-anchor-file" in conf) == (template == "signed")
            checked = subprocess.run(
                [require_binary("unbound-checkconf"), str(folder / "unbound" / "unbound.conf")],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
            state = Lab(ns, folder, template)
            yield state
            state.stop_unbound()
        finally:
            ns.authd("lab", "down", str(folder))


def _result_line(trace: subprocess.CompletedProcess[str]) -> str:
    return next((x for x in trace.stdout.splitlines() if x.startswith("Result for ")), "")


# The steps of a trace that say what went wrong (or, healthy, what came back).
TELLTALES = (
    "-> bogus",
    "a lame delegation",
    "NO GLUE",
    "No answer over TCP",
    "truncated",
    "No answer in time",
    "Give up: CNAME loop",
    "alias (CNAME)",
    "Authoritative answer",
)


def _telltale(trace: subprocess.CompletedProcess[str]) -> str:
    """The first step of *trace* showing a fault, and its result line."""
    steps = [x.strip() for x in trace.stdout.splitlines()]
    for phrase in TELLTALES:
        step = next((x for x in steps if phrase in x), None)
        if step is not None:
            return f"{step} ... {_result_line(trace)}{_dnssec_line(trace)}"
    return _result_line(trace) + _dnssec_line(trace)


def _dnssec_line(trace: subprocess.CompletedProcess[str]) -> str:
    line = next((x for x in trace.stdout.splitlines() if x.startswith("DNSSEC: ")), "")
    return f" / {line}" if line else ""


def test_trace_agrees_with_unbound_on_every_template_name_on_port_53(lab: Lab) -> None:
    names = read_lab(str(lab.folder)).names
    assert names
    lab.start_unbound()
    for name, rdtype in names:
        theirs = lab.ask(name, rdtype)
        ours = lab.trace(name, rdtype)
        result = _result_line(ours)
        assert result, ours.stdout + ours.stderr
        outcome = result.split(": ", 1)[1]
        want = {"NOERROR": ("answer", "no data"), "NXDOMAIN": ("NXDOMAIN",)}[str(theirs["rcode"])]
        assert outcome.startswith(want), (name, rdtype, result, theirs)
        # The trace's answer records, TTLs aside, against unbound's.
        records = set()
        after = ours.stdout.split(result, 1)[1].splitlines()
        for line in after:
            parts = line.split(None, 4)
            if len(parts) == 5 and parts[2] == "IN":
                records.add(f"{parts[0]} {parts[3]} {parts[4]}")
        if lab.signed:  # unbound validated it, and the trace's chain of trust holds
            assert theirs["ad"], (name, rdtype, theirs)
            assert "DNSSEC: secure" in ours.stdout, ours.stdout
        assert records == set(theirs["answer"]), (name, rdtype, ours.stdout, theirs)  # type: ignore[arg-type]


# What unbound shows for each scenario, broken: the rcodes it may answer with
# ("timeout": no reply within ASK_TIMEOUT), and for the answering ones what the
# answer holds.  From each scenario's promised symptom (labscenarios.SCENARIOS).
SYMPTOMS: dict[str, tuple[frozenset[str], str | None]] = {
    "lame": (frozenset({"SERVFAIL"}), None),
    "missing-glue": (frozenset({"SERVFAIL"}), None),
    "glue-mismatch": (frozenset({"SERVFAIL", "timeout"}), None),
    "ns-differ": (frozenset({"NOERROR"}), "build.eng.example.com. A"),
    "stale-secondary": (frozenset({"NOERROR"}), None),  # old or new: see the test
    "cname-loop": (frozenset({"SERVFAIL"}), None),
    "cname-apex": (frozenset({"NOERROR"}), "example.org. CNAME www.example.com."),
    "udp-only": (frozenset({"SERVFAIL", "timeout"}), None),
    "drop-edns": (frozenset({"SERVFAIL", "timeout"}), None),
    "silent": (frozenset({"SERVFAIL", "timeout"}), None),
    # The signed lab's: a validating resolver refuses a bogus answer.
    "ds-mismatch": (frozenset({"SERVFAIL"}), None),
    "expired-signatures": (frozenset({"SERVFAIL"}), None),
}
# Where a validating resolver (the signed lab) shows another symptom: a CNAME
# at the apex hides the zone's DNSKEY set, so the chain of trust breaks there.
SIGNED_SYMPTOMS: dict[str, tuple[frozenset[str], str | None]] = {
    "cname-apex": (frozenset({"SERVFAIL"}), None),
}
# Scenarios that are no delegation fault, so `authd lab check` has nothing to say.
NOT_IN_CHECK = {"cname-loop"}


def _until(what: str, probe: object, deadline_s: float = SETTLE) -> str:
    """Run *probe* (-> (done, text)) until done, bounded; the last text."""
    deadline = time.monotonic() + deadline_s
    while True:
        done, text = probe()  # type: ignore[operator]
        if done:
            return str(text)
        assert time.monotonic() < deadline, f"{what}: {text}"
        time.sleep(0.3)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").strip() or "-"


def _scenario_row(lab: Lab, s: labscenarios.Scenario) -> str:
    """Break *s*, see it, fix it, see it fixed; its row of the table."""
    name, rdtype = s.try_name.split()
    lab.start_unbound()
    before = lab.ask(name, rdtype)
    assert before["rcode"] in ("NOERROR", "NXDOMAIN"), (s.name, before)
    done = lab.ns.authd("lab", "break", s.name, "--lab", str(lab.folder))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        tag = f"[scenario: {s.name}]"
        if s.name in NOT_IN_CHECK:
            _until(
                f"{s.name} never reached the lab",
                lambda: ("CNAME loop" in (t := lab.trace(name, rdtype).stdout), t),
            )
            check_text = lab.check().stdout
            assert "0 findings" in check_text, check_text
            finding = "no finding (not a delegation fault)"
        else:
            check_text = _until(
                f"check never named {s.name}", lambda: (tag in (c := lab.check().stdout), c)
            )
            finding = next(x for x in check_text.splitlines() if tag in x).strip()
        trace = lab.trace(name, rdtype)
        lab.start_unbound()
        broken = lab.ask(name, rdtype)
    finally:
        fixed_cmd = lab.ns.authd("lab", "fix", "--lab", str(lab.folder))
    assert fixed_cmd.returncode == 0, fixed_cmd.stderr
    rcodes, holds = (SIGNED_SYMPTOMS if lab.signed else {}).get(s.name, SYMPTOMS[s.name])
    assert broken["rcode"] in rcodes, (s.name, s.symptom, broken)
    if s.signed_only:  # trace --dnssec says why a validator refuses it
        assert "DNSSEC: bogus at " + s.zone in trace.stdout, trace.stdout
    if holds is not None:
        assert any(holds in x for x in broken["answer"]), (s.name, broken)  # type: ignore[attr-defined]
    if s.name == "stale-secondary":
        # unbound gets one server's answer: the secondary's old one or the primary's new one.
        assert broken["answer"] in (
            ["www.example.com. A 192.0.2.10"],
            ["www.example.com. A 192.0.2.11"],
        ), broken
    _until("check not clean after fix", lambda: ((c := lab.check()).returncode == 0, c.stdout))
    lab.start_unbound()
    after = lab.ask(name, rdtype)
    assert (after["rcode"], after["answer"]) == (before["rcode"], before["answer"]), (
        s.name,
        before,
        after,
    )
    if lab.signed:  # validated before the break and after the fix
        assert before["ad"] and after["ad"], (s.name, before, after)
    answer = "; ".join(broken["answer"]) if broken["answer"] else ""  # type: ignore[arg-type]
    return "| `{}` | `{}` | {} | {} | {} | {} |".format(
        s.name,
        s.try_name,
        _cell(_telltale(trace)),
        _cell(finding),
        _cell(
            f"{broken['rcode']} in {broken['seconds']} s"
            + (", AD" if broken["ad"] else "")
            + (f": {answer}" if answer else "")
        ),
        _cell(str(after["rcode"]) + (", AD" if after["ad"] else "")),
    )


def test_every_scenario_shows_its_symptom_through_unbound(lab: Lab) -> None:
    assert set(SYMPTOMS) == set(labscenarios.BY_NAME)
    rows = []
    for s in labscenarios.SCENARIOS:
        if s.signed_only and not lab.signed:
            done = lab.ns.authd("lab", "break", s.name, "--lab", str(lab.folder))
            assert done.returncode == 2 and "needs a signed lab" in done.stderr, done
            continue
        rows.append(_scenario_row(lab, s))
    lab.stop_unbound()
    table = [
        "| scenario | question | `authd lab trace` (broken) | `authd lab check` (broken) "
        "| unbound (broken) | unbound (fixed) |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    out = os.environ.get("AUTHD_LAB_TABLE")
    if out:
        path = Path(out)
        if lab.signed:
            path = path.with_name(f"{path.stem}-signed{path.suffix}")
        path.write_text("\n".join(table) + "\n")
    print("\n".join(table))
