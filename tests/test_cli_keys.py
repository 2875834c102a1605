"""``authd keys list|generate|import|ds``, run as the real command line.

The DS that ``authd keys ds`` prints is the one BIND's ``dnssec-dsfromkey``
computes from the same key file; a BIND migration keeps the keys (and so the
DS at the parent); bad input exits 1 or 2 with one clear line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dns.rdata
import pytest
from test_keyfiles import bind_keygen

from harness.peers import require_binary

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def authd(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authd", *argv], capture_output=True, text=True, env=ENV, timeout=60
    )


def ds_of(line: str) -> dns.rdata.Rdata:
    owner, _, ds_type, rdata = line.split(None, 3)
    assert ds_type == "DS", line
    return dns.rdata.from_text("IN", "DS", rdata)


def test_generate_list_and_ds_through_a_config(tmp_path: Path) -> None:
    (tmp_path / "a.zone").write_text(
        "$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
    )
    config = tmp_path / "authd.yaml"
    config.write_text("options:\n  state_dir: st\nzones:\n  - {name: a.test, file: a.zone}\n")
    done = authd("keys", "generate", "a.test", "-c", str(config))
    assert done.returncode == 0, done.stderr
    tag = int(done.stdout.split()[1])
    folder = tmp_path / "st" / "keys" / "a.test"
    key_file = folder / f"Ka.test.+013+{tag:05d}.key"
    assert key_file.is_file() and done.stderr == ""
    # A ZSK (no active ZSK to take over from) signs at once; a second CSK beside
    # the active one is only published.
    done = authd(
        "keys", "generate", "a.test", "--role", "zsk", "--algorithm", "15", "-c", str(config)
    )
    assert done.returncode == 0 and done.stderr == ""
    done = authd("keys", "generate", "a.test", "-c", str(config))
    assert done.returncode == 0 and "published, not active" in done.stderr
    second = int(done.stdout.split()[1])
    listed = authd("keys", "list", "a.test", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert f"a.test. {tag:>5} 13 (ECDSAP256SHA256) csk active" in listed.stdout
    assert f"a.test. {second:>5} 13 (ECDSAP256SHA256) csk published" in listed.stdout
    assert " 15 (ED25519) zsk active" in listed.stdout
    rows = json.loads(authd("keys", "list", "--json", "-c", str(config)).stdout)["keys"]
    assert sorted((r["role"], r["state"]) for r in rows) == [
        ("csk", "active"),
        ("csk", "published"),
        ("zsk", "active"),
    ]
    ds = authd("keys", "ds", "a.test", "-c", str(config))
    assert ds.returncode == 0, ds.stderr
    lines = ds.stdout.splitlines()  # both CSKs, not the ZSK
    assert sorted(int(line.split()[3]) for line in lines) == sorted([tag, second])
    (line,) = [line for line in lines if int(line.split()[3]) == tag]
    bind = subprocess.run(
        [require_binary("dnssec-dsfromkey"), "-2", str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert line.startswith("a.test. IN DS ") and ds_of(line) == ds_of(bind.stdout)


def test_a_zone_the_config_does_not_serve_gets_a_note(tmp_path: Path) -> None:
    config = tmp_path / "authd.yaml"
    config.write_text("options:\n  state_dir: st\nzones: []\n")
    done = authd("keys", "generate", "other.test", "-c", str(config))
    assert done.returncode == 0 and "note: the config does not serve other.test." in done.stderr


def test_a_bind_migration_keeps_the_keys_and_the_ds(tmp_path: Path) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    ksk = bind_keygen(bind, 13, "-f", "KSK", "-P", "20261201000000", "-A", "20261201000000")
    zsk = bind_keygen(bind, 13, "-P", "20261201000000", "-A", "20261201000000")
    state = str(tmp_path / "state")
    done = authd(
        "keys", "import", "example.com", str(ksk), str(zsk), "--ds-seen", "--state-dir", state
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2 and " ksk: imported" in done.stdout
    rows = json.loads(authd("keys", "list", "example.com", "--json", "--state-dir", state).stdout)[
        "keys"
    ]
    by_role = {r["role"]: r for r in rows}
    assert by_role["ksk"]["publish"] == 1_796_083_200 and by_role["ksk"]["ds_seen"] is not None
    assert by_role["zsk"]["ds_seen"] is None
    bind_ds = subprocess.run(
        [require_binary("dnssec-dsfromkey"), "-2", str(ksk)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    ours = authd("keys", "ds", "example.com", "--state-dir", state).stdout
    assert [ds_of(line) for line in ours.splitlines()] == [ds_of(bind_ds)]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["keys", "list", "a..b"], 2, "'a..b' is not a zone name"),
        (["keys", "generate", "x.test", "--algorithm", "8"], 2, "invalid choice: 8"),
        (["keys", "ds", "x.test"], 1, "x.test. has no KSK or CSK"),
        (["keys", "import", "x.test", "nothere.key"], 1, "nothere.key: no such file"),
    ],
)
def test_bad_input_gets_one_clear_line(
    tmp_path: Path, argv: list[str], code: int, message: str
) -> None:
    done = authd(*argv, "--state-dir", str(tmp_path))
    assert done.returncode == code and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_import_refuses_another_zones_key_and_a_missing_private_file(tmp_path: Path) -> None:
    key = bind_keygen(tmp_path, 13)
    state = str(tmp_path / "state")
    done = authd("keys", "import", "example.org", str(key), "--state-dir", state)
    assert done.returncode == 1 and "a key of example.com., not of example.org." in done.stderr
    key.with_suffix(".private").unlink()
    done = authd("keys", "import", "example.com", str(key), "--state-dir", state)
    assert done.returncode == 1 and ".private: the private key beside" in done.stderr
    listed = authd("keys", "list", "--state-dir", state)
    assert listed.returncode == 0 and listed.stdout.startswith("no keys in the store")


def test_ds_seen_and_the_ds_column_and_next_event_of_keys_list(tmp_path: Path) -> None:
    from authd.adapters.state import step_keys
    from authd.config import load_config

    (tmp_path / "c.zone").write_text(
        "$TTL 2\n@ SOA ns hm 1 7200 3600 1209600 2\n@ NS ns\nns A 192.0.2.1\n"
    )
    config = tmp_path / "authd.yaml"
    config.write_text(
        "options:\n  state_dir: st\n"
        "dnssec_policies:\n  - {name: fast, keys: ksk-zsk, dnskey_ttl: 2, max_zone_ttl: 2,"
        " propagation_delay: 1, parent_ds_ttl: 2, parent_propagation_delay: 1,"
        " zsk_lifetime: 3600}\n"
        "zones:\n  - {name: c.test, file: c.zone, dnssec: {policy: fast}}\n"
    )
    (zc,) = load_config(str(config)).views[0].zones
    assert zc.dnssec is not None
    state = str(tmp_path / "st")
    now = int(time.time())
    step_keys(state, zc.name, zc.dnssec, now)
    keys = step_keys(state, zc.name, zc.dnssec, now, asked=("ksk",))
    (new,) = [k for k in keys if k.role == "ksk" and k.activate is None]
    listed = authd("keys", "list", "c.test", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert f"c.test. {new.tag:>5} 13 (ECDSAP256SHA256) ksk generated ds=asked" in listed.stdout
    assert "c.test. next event: zsk " in listed.stdout and "rollover due at" in listed.stdout
    seen = authd("keys", "ds-seen", "c.test", "-c", str(config))
    assert seen.returncode == 0, seen.stderr
    assert f"c.test. {new.tag}: DS seen at the parent" in seen.stdout
    rows = json.loads(authd("keys", "list", "c.test", "--json", "-c", str(config)).stdout)
    (row,) = [r for r in rows["keys"] if r["tag"] == new.tag]
    assert row["ds"] == "seen" and row["activate"] is not None
    assert rows["next_events"]["c.test."]["what"].startswith("ksk ")
    wrong = authd("keys", "ds-seen", "c.test", "7", "-c", str(config))
    assert wrong.returncode == 1 and "no key 7" in wrong.stderr
