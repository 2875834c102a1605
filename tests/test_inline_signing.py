"""Inline signing end to end: authd signs an unsigned zone file and serves it signed.

A running authd with ``dnssec: {policy: ...}`` on a zone generates its keys
in the key store (files mode 0600), signs the zone, and serves the signed
version: taken over AXFR, it passes BIND's ``dnssec-verify`` (NSEC, NSEC3
with opt-out, Ed25519 with a KSK/ZSK pair); an edit to the unsigned file
gives a new signed serial that still verifies, reached by IXFR too; the zone
file is never written, and no private key text reaches AXFR, the zone file
or the log.  A validating unbound, trusting the DS authd's key store gives,
returns secure (AD) answers: positive, NXDOMAIN, NODATA and wildcard.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest
import yaml
from reloadkit import Lab, ctl, running_lab, soa_serial

from authd.adapters import keystore
from authd.build import LoadOutcome, load_one
from authd.config import config_from_dict
from authd.keyfiles import ZoneKey, ds_records, make_zone_key
from harness.peers import HOST, require_binary, start_unbound

ZONE = dns.name.from_text("example.test.")
VERIFY_TIMEOUT = 60.0
QUERY_TIMEOUT = 10.0
RELOAD_TIMEOUT = 30.0

ZONE_TEXT = """$TTL 300
@ IN SOA ns1 host {serial} 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A {www}
*.wild TXT "wild"
a.b.ent A 192.0.2.3
sub NS ns.sub
ns.sub A 192.0.2.9
"""

POLICIES: dict[str, dict[str, Any]] = {
    "nsec": {"name": "nsec"},
    "nsec3": {"name": "nsec3", "denial": "nsec3", "nsec3": {"opt_out": True}},
    "nsec3-no-opt-out": {"name": "nsec3-no-opt-out", "denial": "nsec3"},
    # Short timers: the first refresh falls due 5 to 10 seconds after signing.
    "short": {
        "name": "short",
        "signature_validity": 70,
        "signature_refresh": 60,
        "signature_jitter": 5,
    },
    "ed25519": {"name": "ed25519", "algorithm": "ed25519", "keys": "ksk-zsk"},
}


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def start(
    lab: Lab,
    policy: str,
    serial: int = 1,
    port: int | None = None,
    www: str = "192.0.2.2",
    label: str = "authd",
) -> tuple[Any, Path, Path]:
    zone_file = lab.write("example.test.zone", ZONE_TEXT.format(serial=serial, www=www))
    state = lab.dir / "state"
    config = {
        "options": {"state_dir": str(state)},
        "dnssec_policies": [POLICIES[policy]],
        "zones": [
            {
                "name": str(ZONE),
                "file": str(zone_file),
                "dnssec": {"policy": policy},
                "allow_transfer": ["127.0.0.1"],
                "serial": "keep",
            }
        ],
    }
    server = lab.start_config(label, config, port)
    return server, zone_file, state


def axfr(port: int) -> dns.zone.Zone:
    return dns.zone.from_xfr(dns.query.xfr(HOST, ZONE, port=port, timeout=QUERY_TIMEOUT))


def verify(zone: dns.zone.Zone, path: Path, csk: bool) -> str:
    zone.to_file(str(path), relativize=False)
    # -z: a CSK has the SEP flag and signs everything (no separate ZSK).
    argv = [require_binary("dnssec-verify"), *(["-z"] if csk else []), "-o", str(ZONE), str(path)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def private_texts(state: Path) -> list[str]:
    """The base64 of every private key in the key store."""
    out = []
    for path in (state / "keys").rglob("*.private"):
        for line in path.read_text().splitlines():
            if line.startswith("PrivateKey:"):
                out.append(line.split(":", 1)[1].strip())
    assert out
    return out


@pytest.mark.parametrize("policy", sorted(set(POLICIES) - {"short"}))
def test_axfr_of_an_inline_signed_zone_passes_dnssec_verify(lab: Lab, policy: str) -> None:
    server, zone_file, state = start(lab, policy)
    before = zone_file.read_text()
    zone = axfr(server.port)
    report = verify(zone, lab.dir / "axfr.zone", policy != "ed25519")
    assert "Zone fully signed" in report
    if policy == "nsec3":
        assert zone.find_rdataset(ZONE, "NSEC3PARAM")
    # The key store: the policy's keys, private files 0600, folder 0700.
    keys = keystore.load_keys(str(state), ZONE)
    assert sorted(k.role for k in keys) == (["csk"] if policy != "ed25519" else ["ksk", "zsk"])
    folder = state / "keys" / "example.test"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.glob("*.private"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Private key text never leaves the key store.
    secrets = private_texts(state)
    axfr_text = zone.to_text()
    log = server.read_log()
    for secret in secrets:
        assert secret not in axfr_text and secret not in log
        assert secret.replace("\n", "")[:20] not in axfr_text.replace(" ", "")
    assert zone_file.read_text() == before  # the zone file is never written


def test_an_edit_gives_a_new_signed_serial_that_verifies_and_is_served_by_ixfr(
    lab: Lab,
) -> None:
    server, zone_file, _state = start(lab, "nsec3")
    first = axfr(server.port)
    old_sigs = {
        (name, rds.covers): rds
        for name, node in first.nodes.items()
        for rds in node
        if rds.rdtype == dns.rdatatype.RRSIG
    }
    zone_file.write_text(ZONE_TEXT.format(serial=2, www="192.0.2.22"))
    lab.wait_serial(server, str(ZONE), 2, RELOAD_TIMEOUT)
    second = axfr(server.port)
    verify(second, lab.dir / "axfr2.zone", True)
    www = second.find_rdataset("www", "A")
    assert [rd.to_text() for rd in www] == ["192.0.2.22"]
    # IXFR from serial 1: only what changed (RFC 1995), not the whole zone.
    messages = list(
        dns.query.xfr(
            HOST, ZONE, rdtype=dns.rdatatype.IXFR, serial=1, port=server.port, timeout=QUERY_TIMEOUT
        )
    )
    answer = [rrset for m in messages for rrset in m.answer]
    records = sum(len(r) for r in answer)
    total = sum(len(rds) for node in second.nodes.values() for rds in node)
    assert answer[0].rdtype == dns.rdatatype.SOA and answer[1].rdtype == dns.rdatatype.SOA
    assert int(answer[1][0].serial) == 1  # incremental, not an AXFR-style reply
    assert records < total // 2, (records, total)
    # The RRSIG over an untouched RRset is the same one (kept, not re-made).
    ns1 = dns.name.from_text("ns1", None)
    kept = second.find_rdataset(ns1, "RRSIG", covers="A")
    assert kept == old_sigs[(ns1, dns.rdatatype.A)]


def test_a_broken_edit_keeps_the_signed_version_serving(lab: Lab) -> None:
    server, zone_file, _state = start(lab, "nsec")
    after = len(server.read_log().splitlines())
    zone_file.write_text("@ IN SOA broken\n")
    lab.wait_log(server, r"zone example\.test\. not reloaded", RELOAD_TIMEOUT, after=after)
    zone = axfr(server.port)
    verify(zone, lab.dir / "kept.zone", True)


def test_a_failure_to_sign_is_logged_and_the_previous_signed_version_keeps_serving(
    lab: Lab,
) -> None:
    server, zone_file, state = start(lab, "nsec")
    (state / "keys" / "example.test" / "keys.json").write_text("{not json")
    after = len(server.read_log().splitlines())
    zone_file.write_text(ZONE_TEXT.format(serial=2, www="192.0.2.22"))
    line = lab.wait_log(
        server,
        r"zone example\.test\. not reloaded: .*signing failed: key store",
        RELOAD_TIMEOUT,
        after=after,
    )
    assert "serial 1 keeps serving" in line
    zone = axfr(server.port)
    assert int(zone.find_rdataset("@", "SOA")[0].serial) == 1
    verify(zone, lab.dir / "kept.zone", True)


def resolve(port: int, qname: str, qtype: str) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, want_dnssec=True)
    query.flags |= dns.flags.AD  # RFC 6840 section 5.7: AD only to those who ask
    return dns.query.udp(query, HOST, port=port, timeout=QUERY_TIMEOUT)


QUESTIONS = [
    ("www.example.test.", "A", "NOERROR", True),  # positive
    ("nope.example.test.", "A", "NXDOMAIN", False),  # NXDOMAIN
    ("www.example.test.", "TXT", "NOERROR", False),  # NODATA
    ("ent.example.test.", "A", "NOERROR", False),  # NODATA at an empty non-terminal
    ("x.wild.example.test.", "TXT", "NOERROR", True),  # wildcard
]


# Not opt-out: an opt-out NSEC3 over the next closer name proves no NXDOMAIN
# securely (RFC 5155 section 9.2), so unbound rightly leaves AD clear there.
@pytest.mark.parametrize("policy", ["nsec", "nsec3-no-opt-out", "ed25519"])
def test_unbound_validates_answers_from_an_inline_signed_zone(lab: Lab, policy: str) -> None:
    server, _zone_file, state = start(lab, policy)
    (ds,) = ds_records(keystore.load_keys(str(state), ZONE))
    anchor = f"{ZONE} 3600 IN DS {ds.to_text()}"
    stubs = {str(ZONE): f"{HOST}@{server.port}"}
    resolver = lab.add("unbound", start_unbound(server.port, [anchor], stubs=stubs))
    for qname, qtype, rcode, answered in QUESTIONS:
        reply = resolve(resolver.port, qname, qtype)
        got = dns.rcode.to_text(reply.rcode())
        lab.check(
            got == rcode and bool(reply.flags & dns.flags.AD) and bool(reply.answer) == answered,
            f"{policy}: {qname} {qtype} should be secure {rcode}: got {got}\n{reply}",
        )


def test_key_files_are_private(lab: Lab) -> None:
    _server, _zone_file, state = start(lab, "nsec")
    for path in (state / "keys").rglob("*"):
        if path.suffix == ".private":
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_check_config_signs_without_touching_the_key_store(tmp_path: Path) -> None:
    zone_file = tmp_path / "example.test.zone"
    zone_file.write_text(ZONE_TEXT.format(serial=1, www="192.0.2.2"))
    state = tmp_path / "state"
    config = tmp_path / "authd.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "options": {"state_dir": str(state)},
                "dnssec_policies": [POLICIES["nsec3"]],
                "zones": [
                    {"name": str(ZONE), "file": str(zone_file), "dnssec": {"policy": "nsec3"}}
                ],
            }
        )
    )
    argv = [sys.executable, "-m", "authd", "serve", "-c", str(config), "--check-config"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (state / "keys").exists()
    config.write_text(config.read_text().replace("policy: nsec3\n", "policy: nsec4\n"))
    run = subprocess.run(argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
    assert run.returncode != 0
    assert "zones[0].dnssec.policy: unknown policy 'nsec4'" in run.stdout + run.stderr


def earliest_expiration(zone: dns.zone.Zone) -> int:
    return min(
        int(rd.expiration)
        for node in zone.nodes.values()
        for rds in node
        if rds.rdtype == dns.rdatatype.RRSIG
        for rd in rds
    )


def test_signatures_are_refreshed_before_they_expire_with_a_new_serial(lab: Lab) -> None:
    server, zone_file, _state = start(lab, "short")
    before = zone_file.read_text()
    first = axfr(server.port)
    expiry = earliest_expiration(first)
    for serial in (2, 3):  # two refreshes, the file untouched (serial: keep)
        lab.wait_serial(server, str(ZONE), serial, RELOAD_TIMEOUT)
        zone = axfr(server.port)
        verify(zone, lab.dir / f"refreshed{serial}.zone", True)
        later = earliest_expiration(zone)
        assert later > expiry, (later, expiry)
        expiry = later
    assert lab.wait_log(server, r"re-signing example\.test\.: signatures due", 1.0)
    assert zone_file.read_text() == before


def test_a_failed_refresh_is_logged_retried_and_the_old_signatures_keep_serving(
    lab: Lab,
) -> None:
    # The retry comes after min(SIGNING_RETRY, signature_refresh / 4): 15 s here.
    server, _zone_file, state = start(lab, "short")
    index = state / "keys" / "example.test" / "keys.json"
    good = index.read_text()
    index.write_text("{not json")
    failed = lab.wait_log(server, r"not reloaded: .*signing failed: key store", RELOAD_TIMEOUT)
    assert "serial 1 keeps serving" in failed
    count = len(server.read_log().splitlines())
    lab.wait_log(server, r"re-signing example\.test\.", RELOAD_TIMEOUT, after=count)
    assert soa_serial(server.port, str(ZONE)) == 1
    verify(axfr(server.port), lab.dir / "kept.zone", True)
    index.write_text(good)
    lab.wait_serial(server, str(ZONE), 2, RELOAD_TIMEOUT)
    verify(axfr(server.port), lab.dir / "fixed.zone", True)


def test_ctl_status_shows_the_keys_the_earliest_expiry_and_the_next_signing(lab: Lab) -> None:
    server, _zone_file, state = start(lab, "ed25519")
    socket = str(state / "authd.ctl")
    run = ctl("status", "--json", "--socket", socket)
    assert run.returncode == 0, run.stderr
    (zone,) = json.loads(run.stdout)["zones"]
    signing = zone["signing"]
    keys = keystore.load_keys(str(state), ZONE)
    assert signing["policy"] == "ed25519" and signing["denial"] == "nsec"
    assert sorted((k["tag"], k["role"]) for k in signing["keys"]) == sorted(
        (k.tag, k.role) for k in keys
    )
    axfr_expiry = earliest_expiration(axfr(server.port))
    assert signing["earliest_expiry"] == axfr_expiry
    assert signing["next_signing"] == axfr_expiry - 5 * 86400  # the default refresh
    text = ctl("status", "--socket", socket)
    assert text.returncode == 0, text.stderr
    assert "signing: policy ed25519 (nsec), keys " in text.stdout
    assert "signatures: earliest expiry " in text.stdout and "next signing " in text.stdout


# -- the reload logic, in-process (authd.build.load_one with keys) ---------------------


def _zone_config(tmp_path: Path, policy: dict[str, Any], serial: str = "keep") -> Any:
    path = tmp_path / "example.test.zone"
    if not path.exists():
        path.write_text(ZONE_TEXT.format(serial=1, www="192.0.2.2"))
    data = {
        "dnssec_policies": [policy],
        "zones": [
            {
                "name": str(ZONE),
                "file": str(path),
                "dnssec": {"policy": policy["name"]},
                "serial": serial,
            }
        ],
    }
    return config_from_dict(data, None, str(tmp_path)).views[0].zones[0]


def _keys() -> list[ZoneKey]:
    private = keystore.new_private_key(13)
    return [make_zone_key(ZONE, "csk", private, 0, publish=0, activate=0)]


NOW = 1_800_000_000


def test_an_unchanged_file_keeps_the_signed_version_until_signatures_fall_due(
    tmp_path: Path,
) -> None:
    zc = _zone_config(tmp_path, POLICIES["nsec"])
    keys = _keys()
    first, event = load_one("v", zc, None, NOW, keys=keys)
    assert first is not None and first.inline is not None and event.serial == 1
    again, event = load_one("v", zc, first, NOW + 60, keys=keys)
    assert again is first and event.outcome is LoadOutcome.UNCHANGED
    # Due for refresh: re-signed, and under serial: keep one more than served.
    due = first.inline.signed.next_refresh(zc.dnssec)
    assert due is not None
    refreshed, event = load_one("v", zc, first, due, keys=keys)
    assert refreshed is not None and refreshed is not first
    assert event.outcome is LoadOutcome.LOADED and refreshed.serial == 2
    assert refreshed.inline is not None and refreshed.inline.unsigned.serial == 1
    # An edit that takes the file's serial to 2 is accepted (2 > the file's 1)
    # and served above the signed serial.
    zone_file = Path(zc.file)
    zone_file.write_text(ZONE_TEXT.format(serial=2, www="192.0.2.22"))
    edited, event = load_one("v", zc, refreshed, due + 60, keys=keys)
    assert event.outcome is LoadOutcome.LOADED and edited is not None and edited.serial == 3
    # A file edit that does not raise the file's serial is refused, signed version kept.
    zone_file.write_text(ZONE_TEXT.format(serial=2, www="192.0.2.23"))
    kept, event = load_one("v", zc, edited, due + 120, keys=keys)
    assert kept is edited and event.outcome is LoadOutcome.KEPT_OLD


def test_a_policy_change_resigns_an_unchanged_file(tmp_path: Path) -> None:
    keys = _keys()
    nsec = _zone_config(tmp_path, POLICIES["nsec"])
    first, _ = load_one("v", nsec, None, NOW, keys=keys)
    assert first is not None and not first.hashed
    nsec3 = _zone_config(tmp_path, {**POLICIES["nsec3"], "name": "nsec"})
    second, event = load_one("v", nsec3, first, NOW + 60, keys=keys)
    assert event.outcome is LoadOutcome.LOADED and second is not None
    assert second.hashed and second.serial == 2


def test_a_managed_serial_goes_up_with_each_signed_version(tmp_path: Path) -> None:
    zc = _zone_config(tmp_path, POLICIES["nsec"], serial="increment")
    keys = _keys()
    first, _ = load_one("v", zc, None, NOW, keys=keys)
    assert first is not None
    Path(zc.file).write_text(ZONE_TEXT.format(serial=1, www="192.0.2.22"))
    second, event = load_one("v", zc, first, NOW + 60, keys=keys)
    assert event.outcome is LoadOutcome.LOADED and second is not None
    assert second.serial == first.serial + 1
    assert second.inline is not None and second.inline.unsigned.serial == second.serial


def test_no_keys_refuses_the_load_with_the_reason(tmp_path: Path) -> None:
    zc = _zone_config(tmp_path, POLICIES["nsec"])
    version, event = load_one("v", zc, None, NOW, keys=[])
    assert version is None and event.outcome is LoadOutcome.FAILED
    assert event.reason is not None and "signing failed: " in event.reason
    assert "no active csk key of algorithm 13" in event.reason


def test_unbound_with_a_trust_anchor_that_matches_no_key_fails_to_validate(lab: Lab) -> None:
    """The control for the AD test above: the AD there comes from the keys."""
    server, _zone_file, state = start(lab, "nsec")
    (ds,) = ds_records(keystore.load_keys(str(state), ZONE))
    wrong = f"{ZONE} 3600 IN DS {ds.key_tag} {ds.algorithm} {ds.digest_type} {'00' * 32}"
    stubs = {str(ZONE): f"{HOST}@{server.port}"}
    resolver = lab.add("unbound", start_unbound(server.port, [wrong], stubs=stubs))
    reply = resolve(resolver.port, "www.example.test.", "A")
    assert reply.rcode() == dns.rcode.SERVFAIL, reply


def _signatures(zone: dns.zone.Zone) -> set[str]:
    return {
        f"{name} {rd.to_text()}"
        for name, node in zone.nodes.items()
        for rds in node
        if rds.rdtype == dns.rdatatype.RRSIG
        for rd in rds
    }


def test_a_restart_serves_the_signed_version_as_it_was_and_an_edit_meanwhile_resigns_only_it(
    lab: Lab,
) -> None:
    """A stop stores the signed version served (state_dir, checksummed); the
    next start serves it again: same serial, same signatures (not a whole new
    set, which the secondaries would never ask for under the same serial and
    whose old ones would expire there).  A file edited while stopped is signed
    from it: a new serial, every other signature kept, a small IXFR."""
    server, _zone_file, _state = start(lab, "nsec")
    before = axfr(server.port)
    port = server.port
    server.stop()
    again, _zone_file, _state = start(lab, "nsec", port=port, label="authd restarted")
    after = axfr(again.port)
    assert int(after.find_rdataset("@", "SOA")[0].serial) == 1
    assert _signatures(after) == _signatures(before)
    verify(after, lab.dir / "restarted.zone", True)
    again.stop()
    start(lab, "nsec", 2, port, "192.0.2.22", "authd restarted after an edit")
    edited = axfr(port)
    assert int(edited.find_rdataset("@", "SOA")[0].serial) == 2
    kept = _signatures(edited) & _signatures(before)
    assert len(kept) >= len(_signatures(before)) - 4, (len(kept), len(_signatures(before)))
    verify(edited, lab.dir / "edited.zone", True)
    messages = list(
        dns.query.xfr(HOST, ZONE, rdtype=dns.rdatatype.IXFR, serial=1, port=port, timeout=10)
    )
    records = sum(len(rrset) for m in messages for rrset in m.answer)
    assert 4 <= records <= 16, "\n".join(str(r) for m in messages for r in m.answer)
