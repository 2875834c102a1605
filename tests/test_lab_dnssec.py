"""The lab's DNSSEC half: ``authd lab trace --dnssec``, the chain-of-trust
scenarios (ds-mismatch, expired-signatures), ``check``'s "is the chain whole"
and the graph's secure and bogus links.

The judgement (``authd.labchain``) is driven from tables of records signed
here with ``dns.dnssec.sign``: a good, an expired, a not yet valid, a changed
and a missing signature, a DS of another key, NSEC proofs.  End to end, a
signed lab runs on the lab's loopback addresses and a free port; each
scenario is broken and fixed and seen through trace, check and the SVG.
(Through a real validating unbound on port 53: tests/test_lab_unbound.py.)
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.util
import dns.rrset
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from authd import lab as labmodel
from authd import labchain, labcheck, labgraph, labscenarios, labtemplate, labtrace
from authd.cli.lab import hints, make_ask, read_anchor, read_lab
from authd.errors import ConfigError
from authd.limits import MAX_LAB_SIGNING_BEHIND
from authd.signpolicy import DEFAULT as DEFAULT_POLICY
from harness.peers import free_port, require_binary

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000
DAY = 86400
n = dns.name.from_text


def authd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


# ------------------------------------------------------------ the judgement, from tables


class Zone:
    """A zone's key, and signing at chosen times."""

    def __init__(self, name: str) -> None:
        self.name = n(name)
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.dnskey = dns.dnssec.make_dnskey(self.private.public_key(), 13, flags=257)
        self.keys = dns.rrset.RRset(self.name, 1, dns.rdatatype.DNSKEY)
        self.keys.add(self.dnskey)

    def sign(
        self, rrset: dns.rrset.RRset, inception: int = NOW - DAY, expiration: int = NOW + DAY
    ) -> dns.rrset.RRset:
        sig = dns.rrset.RRset(rrset.name, 1, dns.rdatatype.RRSIG, covers=rrset.rdtype)
        sig.add(
            dns.dnssec.sign(
                rrset,
                self.private,
                self.name,
                self.dnskey,
                inception=inception,
                expiration=expiration,
            )
        )
        return sig

    def ds(self) -> dns.rrset.RRset:
        out = dns.rrset.RRset(self.name, 1, dns.rdatatype.DS)
        out.add(dns.dnssec.make_ds(self.name, self.dnskey, "SHA256"))
        return out


def _a(name: str, address: str = "192.0.2.1") -> dns.rrset.RRset:
    return dns.rrset.from_text(name, 300, "IN", "A", address)


def test_check_signature_says_why_it_fails() -> None:
    z = Zone("example.")
    a = _a("www.example.")
    assert labchain.check_signature(a, z.sign(a), z.keys, NOW)[0] is None
    expired = z.sign(a, NOW - 20 * DAY, NOW - 2 * DAY)
    problem, why = labchain.check_signature(a, expired, z.keys, NOW)
    assert problem is labchain.Problem.EXPIRED and "expired on" in why
    early = z.sign(a, NOW + DAY, NOW + 20 * DAY)
    assert labchain.check_signature(a, early, z.keys, NOW)[0] is labchain.Problem.NOT_YET_VALID
    changed = _a("www.example.", "192.0.2.99")
    problem, why = labchain.check_signature(changed, z.sign(a), z.keys, NOW)
    assert problem is labchain.Problem.BAD_SIGNATURE and "bad signature" in why
    assert labchain.check_signature(a, None, z.keys, NOW)[0] is labchain.Problem.MISSING_RRSIG
    other = Zone("example.")
    problem, why = labchain.check_signature(a, other.sign(a), z.keys, NOW)
    assert problem is labchain.Problem.UNKNOWN_KEY and "not in the DNSKEY set" in why


def test_a_ds_matches_its_own_key_only() -> None:
    z, other = Zone("example."), Zone("example.")
    assert [k for _, k in labchain.match_ds(z.name, z.ds(), z.keys)] == [z.dnskey]
    assert labchain.match_ds(z.name, other.ds(), z.keys) == []


def _message(
    answer: list[dns.rrset.RRset],
    authority: list[dns.rrset.RRset] = (),  # type: ignore[assignment]
    rcode: int = 0,
    aa: bool = True,
) -> dns.message.Message:
    m = dns.message.Message()
    m.flags = dns.flags.QR | (dns.flags.AA if aa else 0)
    m.set_rcode(dns.rcode.Rcode.make(rcode))
    m.answer = list(answer)
    m.authority = list(authority)
    return m


def _nsec(owner: str, nxt: str, types: list[str]) -> dns.rrset.RRset:
    bitmap = dns.rdtypes.util.Bitmap.from_rdtypes(
        sorted(dns.rdatatype.from_text(t) for t in types)
    ).windows
    rd = dns.rdtypes.ANY.NSEC.NSEC(1, dns.rdatatype.NSEC, n(nxt), bitmap)
    out = dns.rrset.RRset(n(owner), 1, dns.rdatatype.NSEC)
    out.add(rd, 300)
    return out


class Table:
    """A two-zone world (root -> example.) answering from dicts: the ask."""

    def __init__(self) -> None:
        self.root, self.child = Zone("."), Zone("example.")
        self.replies: dict[tuple[str, str, str], dns.message.Message] = {}
        for z in (self.root, self.child):
            self.put(z.name.to_text(), "DNSKEY", _message([z.keys, z.sign(z.keys)]))
        self.anchor = self.root.ds()

    def put(self, name: str, rdtype: str, m: dns.message.Message, at: str = "") -> None:
        address = at or ("127.0.0.10" if name in (".",) else "127.0.0.20")
        self.replies[(address, n(name).to_text(), rdtype)] = m

    def ask(
        self, address: str, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, tcp: bool
    ) -> dns.message.Message | None:
        return self.replies.get((address, name.to_text(), dns.rdatatype.to_text(rdtype)))

    def referral(self, ds: dns.rrset.RRset | None) -> dns.message.Message:
        ns = dns.rrset.from_text("example.", 300, "IN", "NS", "ns.example.")
        extra = [ds, self.root.sign(ds)] if ds is not None else []
        return _message([], [ns, *extra], aa=False)

    def walk(
        self, final: dns.message.Message, ds: dns.rrset.RRset | None, name: str = "www.example."
    ) -> labchain.Verdict | None:
        segment = labtrace.Segment(n(name), dns.rdatatype.A)
        segment.hops = [
            labtrace.Hop(dns.name.root, "127.0.0.10", self.referral(ds)),
            labtrace.Hop(n("example."), "127.0.0.20", final),
        ]
        trace = labtrace.Trace(segments=[segment])
        _, verdict = labchain.follow(trace, self.ask, self.anchor, NOW)
        return verdict


def test_chain_table_secure_bogus_and_insecure() -> None:
    t = Table()
    a = _a("www.example.")
    good = _message([a, t.child.sign(a)])
    v = t.walk(good, t.child.ds())
    assert v is not None and v.state is labchain.State.SECURE, v
    # The parent holds the DS of a key the child does not have.
    v = t.walk(good, Zone("example.").ds())
    assert v is not None and (v.state, v.problem) == (
        labchain.State.BOGUS,
        labchain.Problem.DS_MATCHES_NO_KEY,
    )
    # The answer's signature has expired.
    stale = _message([a, t.child.sign(a, NOW - 20 * DAY, NOW - DAY)])
    v = t.walk(stale, t.child.ds())
    assert v is not None and v.problem is labchain.Problem.EXPIRED and v.zone == n("example.")
    # No RRSIG at all over the answer.
    v = t.walk(_message([a]), t.child.ds())
    assert v is not None and v.problem is labchain.Problem.MISSING_RRSIG
    # No DS and no proof: bogus; a signed NSEC (NS, no DS): insecure.
    v = t.walk(good, None)
    assert v is not None and v.problem is labchain.Problem.NO_DS_PROOF
    nsec = _nsec("example.", ".", ["NS", "NSEC", "RRSIG"])
    t.put("example.", "DS", _message([], [nsec, t.root.sign(nsec)]), at="127.0.0.10")
    v = t.walk(good, None)
    assert v is not None and v.state is labchain.State.INSECURE and v.zone == n("example.")
    # The trust anchor names another root key: bogus at the root.
    t.anchor = Zone(".").ds()
    v = t.walk(good, t.child.ds())
    assert v is not None and v.problem is labchain.Problem.DS_MATCHES_NO_KEY
    assert v.zone == dns.name.root


def test_chain_table_denials() -> None:
    t = Table()
    soa = dns.rrset.from_text(
        "example.", 300, "IN", "SOA", "ns.example. h.example. 1 3600 600 86400 300"
    )
    # NODATA: the NSEC at the name lists its types; no A among them.
    at = _nsec("www.example.", "example.", ["AAAA", "NSEC", "RRSIG"])
    nodata = _message([], [soa, t.child.sign(soa), at, t.child.sign(at)])
    v = t.walk(nodata, t.child.ds())
    assert v is not None and v.state is labchain.State.SECURE, v
    # ... an NSEC saying A exists there proves nothing.
    wrong = _nsec("www.example.", "example.", ["A", "NSEC", "RRSIG"])
    v = t.walk(_message([], [soa, t.child.sign(soa), wrong, t.child.sign(wrong)]), t.child.ds())
    assert v is not None and v.problem is labchain.Problem.NO_DENIAL_PROOF
    # NXDOMAIN: one NSEC covers the name, one (here the apex's) the wildcard.
    apex = _nsec("example.", "mail.example.", ["SOA", "NS", "NSEC", "RRSIG", "DNSKEY"])
    cover = _nsec("mail.example.", "www.example.", ["A", "NSEC", "RRSIG"])
    proof = [soa, t.child.sign(soa), apex, t.child.sign(apex), cover, t.child.sign(cover)]
    nx = _message([], proof, rcode=dns.rcode.NXDOMAIN)
    v = t.walk(nx, t.child.ds(), "nothing.example.")
    assert v is not None and v.state is labchain.State.SECURE, v
    # Without the wildcard's NSEC the NXDOMAIN is not proved.
    half = _message([], proof[:2] + proof[4:], rcode=dns.rcode.NXDOMAIN)
    v = t.walk(half, t.child.ds(), "nothing.example.")
    assert v is not None and v.problem is labchain.Problem.NO_DENIAL_PROOF
    # The last NSEC of a zone wraps round to the apex.
    last = _nsec("www.example.", "example.", ["A"])
    assert labchain._covers(last, n("zzz.example."))
    assert not labchain._covers(last, n("mail.example."))


def test_anchor_file_is_read_and_bad_lines_refused() -> None:
    z = Zone(".")
    text = "; the anchor\n" + "".join(f". 86400 IN DS {r.to_text()}\n" for r in z.ds())
    anchor = labchain.anchor_from_text(text)
    assert anchor is not None and set(anchor) == set(z.ds())
    assert labchain.anchor_from_text("; nothing\n") is None
    with pytest.raises(ValueError, match="not a DS of the root"):
        labchain.anchor_from_text("com. 86400 IN DS 1 13 2 00\n")


# ------------------------------------------------------------ the lab-only signing clock


def _config(tmp_path: Path, lab: dict[str, object] | None, signed: bool = True) -> Path:
    (tmp_path / "z.zone").write_text(labtemplate.EXAMPLE_NET)
    (tmp_path / "lab.yaml").write_text("servers: []\n")
    zone: dict[str, object] = {"name": "example.net.", "file": "z.zone"}
    if signed:
        zone["dnssec"] = {}
    cfg: dict[str, object] = {"zones": [zone], "options": {"state_dir": "state"}}
    if lab is not None:
        cfg["lab"] = lab
    path = tmp_path / "authd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    ("lab", "signed", "path"),
    [
        ({"signing_clock": [{"zone": "example.net.", "behind": 100}]}, True, "lab.signing_clock"),
        (
            {"lab_file": "lab.yaml", "signing_clock": [{"zone": "example.net.", "behind": 0}]},
            True,
            "lab.signing_clock[0].behind",
        ),
        (
            {
                "lab_file": "lab.yaml",
                "signing_clock": [{"zone": "example.net.", "behind": MAX_LAB_SIGNING_BEHIND + 1}],
            },
            True,
            "lab.signing_clock[0].behind",
        ),
        (
            {"lab_file": "lab.yaml", "signing_clock": [{"zone": "example.net.", "behind": "1d"}]},
            True,
            "lab.signing_clock[0].behind",
        ),
        (
            {"lab_file": "lab.yaml", "signing_clock": [{"zone": "example.net.", "behind": 100}]},
            False,
            "lab.signing_clock[0].zone",
        ),
        (
            {"lab_file": "lab.yaml", "signing_clock": [{"zone": "a..b", "behind": 100}]},
            True,
            "lab.signing_clock[0].zone",
        ),
        (
            {"lab_file": "lab.yaml", "signing_clock": [{"zone": "x.", "when": 1}]},
            True,
            "lab.signing_clock[0].when",
        ),
    ],
)
def test_signing_clock_is_lab_only_and_checked(
    tmp_path: Path, lab: dict[str, object], signed: bool, path: str
) -> None:
    from authd.config import load_config

    with pytest.raises(ConfigError) as e:
        load_config(str(_config(tmp_path, lab, signed)))
    assert e.value.path == path, e.value


def test_signing_clock_dates_the_signatures_back_and_the_refresh_follows_real_time(
    tmp_path: Path,
) -> None:
    from authd.adapters.keystore import generate_key, load_keys
    from authd.build import load_one
    from authd.config import load_config

    behind = labscenarios.EXPIRED_BEHIND
    lab = {"lab_file": "lab.yaml", "signing_clock": [{"zone": "example.net.", "behind": behind}]}
    path = _config(tmp_path, lab)
    state = str(tmp_path / "state")
    generate_key(
        state, n("example.net."), 13, "csk", NOW - DAY, publish=NOW - DAY, activate=NOW - DAY
    )
    keys = load_keys(state, n("example.net."))
    config = load_config(str(path))
    zc = config.views[0].zones[0]
    assert zc.lab_signing_behind == behind
    version, event = load_one("default", zc, None, NOW, keys=keys)
    assert version is not None and version.inline is not None, event
    signed = version.inline.signed
    expiry = signed.earliest_expiry()
    assert expiry is not None and expiry < NOW - DAY  # every signature is past
    # Re-signing follows the real clock: not due now, so no loop of re-signings.
    assert not signed.due_for_refresh(NOW, DEFAULT_POLICY)
    # The clock put right (fix): every signature is made anew, valid now.
    fixed_zc = dataclasses.replace(zc, lab_signing_behind=0)
    again, _ = load_one("default", fixed_zc, version, NOW, keys=keys)
    assert again is not None and again.inline is not None
    assert again.serial != version.serial
    assert (
        min(int(rd.expiration) for s in again.inline.signed.sigs.values() for rd in s) > NOW + DAY
    )


# ------------------------------------------------------------ scenarios, as plans


def test_chain_scenarios_need_a_signed_lab_and_edit_the_parents_ds() -> None:
    lab, files = labtemplate.basic()
    for name in (labscenarios.DS_MISMATCH, labscenarios.EXPIRED_SIGNATURES):
        with pytest.raises(ValueError, match="needs a signed lab"):
            labscenarios.plan(name, None, lab, files)
    slab, sfiles = labtemplate.signed()
    zone = n("example.org.")
    z = Zone("example.org.")
    sfiles = labtemplate.with_ds(slab, sfiles, {zone: list(z.ds())})
    broken = labscenarios.plan(labscenarios.DS_MISMATCH, None, slab, sfiles)
    [(path, text)] = broken.files.items()
    assert path == "zones/org.zone"
    old = next(
        x.split() for x in sfiles[path].splitlines() if x.startswith("example.org. 86400 IN DS")
    )
    new = next(x.split() for x in text.splitlines() if x.startswith("example.org. 86400 IN DS"))
    # owner TTL IN DS tag alg digest-type digest: another tag, another digest
    assert new[:4] == old[:4] and new[5:7] == old[5:7]
    assert new[4] != old[4] and new[7] != old[7] and len(new[7]) == len(old[7])
    assert labscenarios.serial_of(text) == labscenarios.serial_of(sfiles[path]) + 1
    with pytest.raises(ValueError, match="trust anchor"):
        labscenarios.plan(labscenarios.DS_MISMATCH, ".", slab, sfiles)
    with pytest.raises(ValueError, match="keeps the DS of a child it serves"):
        labscenarios.plan(labscenarios.DS_MISMATCH, "arpa.", slab, sfiles)
    with pytest.raises(ValueError, match="holds no DS"):
        labscenarios.plan(labscenarios.DS_MISMATCH, "example.com.", slab, sfiles)
    broken = labscenarios.plan(labscenarios.EXPIRED_SIGNATURES, None, slab, sfiles)
    assert broken.signing_clock == (("eng.example.com.", labscenarios.EXPIRED_BEHIND),)
    config = labmodel.authd_config(slab, 53, signing_clock=broken.signing_clock)
    assert config["lab"]["signing_clock"] == [
        {"zone": "eng.example.com.", "behind": labscenarios.EXPIRED_BEHIND}
    ]


def test_judge_chain_names_the_scenario() -> None:
    zone = n("example.org.")
    bogus = labchain.Verdict(
        labchain.State.BOGUS, zone, labchain.Problem.DS_MATCHES_NO_KEY, "no key"
    )
    assert [f.scenario for f in labcheck.judge_chain(zone, bogus)] == ["ds-mismatch"]
    old = labchain.Verdict(labchain.State.BOGUS, zone, labchain.Problem.EXPIRED, "old")
    assert [f.scenario for f in labcheck.judge_chain(zone, old)] == ["expired-signatures"]
    assert labcheck.judge_chain(zone, labchain.Verdict(labchain.State.SECURE, zone)) == []
    assert labcheck.judge_chain(zone, None) == []


# ------------------------------------------------------------ a running signed lab


@pytest.fixture(scope="module")
def signed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("slab") / "lab"
    done = authd("lab", "init", str(folder), "--template", "signed")
    assert done.returncode == 0, done.stderr
    port = free_port()
    done = authd("lab", "up", str(folder), "--port", str(port), "--detach")
    assert done.returncode == 0, done.stdout + done.stderr + (folder / "authd.log").read_text()
    try:
        deadline = time.monotonic() + 30  # the secondary fills by its first transfer
        while authd("lab", "status", str(folder)).returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield folder, port
    finally:
        authd("lab", "down", str(folder))


def _dnssec_trace(
    folder: Path, port: int, text: str
) -> tuple[labtrace.Trace, labchain.Verdict | None, list[str]]:
    lab = read_lab(str(folder))
    name, rdtype = text.split()
    ask = make_ask(port, timeout=1.0, dnssec=True)
    result = labtrace.trace(ask, hints(lab), n(name), dns.rdatatype.from_text(rdtype))
    steps, verdict = labchain.follow(result, ask, read_anchor(str(folder)), time.time())
    return result, verdict, steps


def test_trace_dnssec_is_secure_on_every_template_name(signed_lab: tuple[Path, int]) -> None:
    folder, port = signed_lab
    names = read_lab(str(folder)).names
    assert names
    for name, rdtype in names:
        result, verdict, steps = _dnssec_trace(folder, port, f"{name} {rdtype}")
        assert result.outcome is not labtrace.Outcome.SERVFAIL, (name, result.why)
        assert verdict is not None and verdict.state is labchain.State.SECURE, (
            name,
            rdtype,
            verdict,
            steps,
        )
    done = authd("lab", "trace", "www.example.com", "--dnssec", "--lab", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for phrase in ("trust anchor", "is the digest of DNSKEY tag", "verifies", "DNSSEC: secure"):
        assert phrase in out, out
    nx = authd("lab", "trace", "nothing.example.com", "--dnssec", "--lab", str(folder))
    assert "The NXDOMAIN is proved" in nx.stdout and "DNSSEC: secure" in nx.stdout, nx.stdout


def test_trace_dnssec_on_a_basic_lab_is_insecure(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    assert authd("lab", "init", str(folder)).returncode == 0
    port = free_port()
    done = authd("lab", "up", str(folder), "--port", str(port), "--detach")
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        done = authd("lab", "trace", "www.example.com", "--dnssec", "--lab", str(folder))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "DNSSEC: insecure from ." in done.stdout and "no trust anchor" in done.stdout
    finally:
        authd("lab", "down", str(folder))


# What each chain-of-trust scenario shows: trace's bogus reason, check's tag.
CHAIN_SIGNS = {
    labscenarios.DS_MISMATCH: (labchain.Problem.DS_MATCHES_NO_KEY, "matches no DNSKEY"),
    labscenarios.EXPIRED_SIGNATURES: (labchain.Problem.EXPIRED, "expired on"),
}


def _until_verdict(
    folder: Path, port: int, text: str, state: labchain.State
) -> tuple[labchain.Verdict | None, list[str]]:
    deadline = time.monotonic() + 30
    while True:
        _, verdict, steps = _dnssec_trace(folder, port, text)
        if (verdict is not None and verdict.state is state) or time.monotonic() > deadline:
            return verdict, steps
        time.sleep(0.3)


def _svg_edges(path: Path) -> dict[str, tuple[str, str]]:
    """The SVG's edges: title ("a->b") -> (stroke colour, label text)."""
    svg = "{http://www.w3.org/2000/svg}"
    out = {}
    for g in ET.parse(path).iter(f"{svg}g"):
        if g.get("class") != "edge":
            continue
        title = (g.findtext(f"{svg}title") or "").replace("&#45;", "-")
        stroke = next((p.get("stroke", "") for p in g.iter(f"{svg}path")), "")
        label = " ".join((t.text or "").strip() for t in g.iter(f"{svg}text"))
        out[title] = (stroke, label)
    return out


@pytest.mark.parametrize("scenario", sorted(CHAIN_SIGNS))
def test_chain_scenario_is_bogus_in_trace_check_and_graph_until_fixed(
    signed_lab: tuple[Path, int], scenario: str, tmp_path: Path
) -> None:
    require_binary("dot")
    folder, port = signed_lab
    s = labscenarios.BY_NAME[scenario]
    verdict, _ = _until_verdict(folder, port, s.try_name, labchain.State.SECURE)
    assert verdict is not None and verdict.state is labchain.State.SECURE
    done = authd("lab", "break", scenario, "--lab", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    tag = f"[scenario: {scenario}]"
    try:
        problem, phrase = CHAIN_SIGNS[scenario]
        verdict, steps = _until_verdict(folder, port, s.try_name, labchain.State.BOGUS)
        assert verdict is not None and verdict.problem is problem, (verdict, steps)
        assert verdict.zone == n(s.zone)
        assert any(phrase in x and "-> bogus" in x for x in steps), steps
        name, rdtype = s.try_name.split()
        shown = authd("lab", "trace", name, rdtype, "--dnssec", "--lab", str(folder))
        assert shown.returncode == 1 and f"DNSSEC: bogus at {s.zone}" in shown.stdout
        check = authd("lab", "check", "--lab", str(folder))
        assert check.returncode == 1 and tag in check.stdout, check.stdout
        assert check.stdout.count("[scenario:") == 1, check.stdout  # nothing else to say
        svg = tmp_path / "lab.svg"
        drawn = authd("lab", "graph", "--check", "--lab", str(folder), "-o", str(svg))
        assert drawn.returncode == 0, drawn.stderr
        edges = _svg_edges(svg)
        parent = labmodel.parent_zone(read_lab(str(folder)), n(s.zone))
        assert parent is not None
        bad = edges[f"zone {parent}->zone {s.zone}"]
        assert bad[0] == "red" and "BOGUS" in bad[1], bad
        good = edges["zone .->zone com."]
        assert good[0] == "darkgreen" and "secure" in good[1], good
    finally:
        assert authd("lab", "fix", "--lab", str(folder)).returncode == 0
    verdict, steps = _until_verdict(folder, port, s.try_name, labchain.State.SECURE)
    assert verdict is not None and verdict.state is labchain.State.SECURE, steps
    deadline = time.monotonic() + 30
    while (check := authd("lab", "check", "--lab", str(folder))).returncode != 0:
        assert time.monotonic() < deadline, check.stdout
        time.sleep(0.3)
    assert "0 findings" in check.stdout


def test_graph_of_a_signed_lab_shows_the_ds_links() -> None:
    lab, _ = labtemplate.signed()
    source = labgraph.dot_source(lab)
    assert 'label="NS + DS"' in source and "(trust anchor)" in source
    zone = n("example.org.")
    chain = {
        zone: labchain.Verdict(labchain.State.BOGUS, zone, labchain.Problem.EXPIRED, "old"),
        n("org."): labchain.Verdict(labchain.State.SECURE, n("org.")),
    }
    source = labgraph.dot_source(lab, [], chain)
    assert "BOGUS: a signature has expired" in source and "color=red" in source
    assert "secure" in source and "darkgreen" in source


def test_trace_dnssec_with_a_broken_anchor_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    assert authd("lab", "init", str(folder)).returncode == 0
    (folder / labmodel.ANCHOR_FILE).write_text("com. 86400 IN DS 1 13 2 00\n")
    port = str(free_port())  # nothing listens: the anchor is read before any query
    done = authd(
        "lab", "trace", "www.example.com", "--dnssec", "--lab", str(folder), "--port", port
    )
    assert done.returncode == 1
    assert "root.anchor: unreadable trust anchor" in done.stderr, done.stderr


def test_chain_steps_look_at_no_more_than_the_key_limit() -> None:
    from authd.limits import LAB_CHAIN_MAX_KEYS

    z = Zone("example.")
    crowd = dns.rrset.RRset(z.name, 1, dns.rdatatype.DNSKEY)
    for _ in range(LAB_CHAIN_MAX_KEYS):
        crowd.add(Zone("example.").dnskey)
    assert labchain.match_ds(z.name, z.ds(), crowd) == []
    crowd.add(z.dnskey)  # past the limit: not looked at
    assert len(crowd) == LAB_CHAIN_MAX_KEYS + 1
    assert labchain.match_ds(z.name, z.ds(), crowd) == []
    first = dns.rrset.RRset(z.name, 1, dns.rdatatype.DNSKEY)
    first.add(z.dnskey)
    assert len(labchain.match_ds(z.name, z.ds(), first)) == 1
