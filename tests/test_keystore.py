"""authd.adapters.keystore: the key folder on disk, read by BIND's own tools.

A key authd generates gives the same DS in ``dnssec-dsfromkey`` as in
authd, and ``dnssec-signzone -S -K <folder>`` signs a zone with it that
``dnssec-verify`` accepts; files are 0600 in a 0700 folder and replaced
atomically; imports of BIND pairs keep their times and refuse what is wrong.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from test_keyfiles import NOW, ZONE, bind_keygen, signs_validly

from authd.adapters import keystore
from authd.keyfiles import KeyFileError, ds_records
from authd.limits import MAX_KEY_FILE_BYTES, MAX_KEY_TAG_TRIES, MAX_ZONE_KEYS
from harness.peers import require_binary

ZONE_TEXT = """\
$TTL 300
example.com. IN SOA ns.example.com. h.example.com. 1 7200 3600 1209600 300
example.com. IN NS ns.example.com.
ns.example.com. IN A 192.0.2.1
www.example.com. IN A 192.0.2.2
*.wild.example.com. IN TXT "w"
"""


def run(argv: list[str], cwd: Path) -> str:
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def sign_with_bind(folder: str, tmp_path: Path, csk: bool) -> Path:
    """example.com signed by dnssec-signzone with the keys in *folder* (smart
    signing: it picks them by their times), checked by dnssec-verify."""
    unsigned = tmp_path / "example.com.zone"
    unsigned.write_text(ZONE_TEXT)
    signed = tmp_path / "example.com.signed"
    one_key = ["-z"] if csk else []
    run(
        [require_binary("dnssec-signzone"), "-S", *one_key, "-K", folder, "-o", "example.com."]
        + ["-f", str(signed), str(unsigned)],
        tmp_path,
    )
    out = run(
        [require_binary("dnssec-verify"), *one_key, "-o", "example.com.", str(signed)], tmp_path
    )
    assert "Zone fully signed" in out
    return signed


@pytest.mark.parametrize("algorithm", [13, 15])
def test_a_generated_csk_gives_bind_the_same_ds_and_signs_a_zone_it_verifies(
    tmp_path: Path, algorithm: int
) -> None:
    state = str(tmp_path / "state")
    key = keystore.generate_key(state, ZONE, algorithm, "csk", NOW, publish=NOW, activate=NOW)
    folder = keystore.key_dir(state, ZONE)
    assert folder == os.path.join(state, "keys", "example.com")
    (ours,) = ds_records([key])
    line = run(
        [require_binary("dnssec-dsfromkey"), "-2", os.path.join(folder, key.file + ".key")],
        tmp_path,
    )
    name, _, ds_type, rdata = line.split(None, 3)
    assert (name, ds_type) == ("example.com.", "DS")
    assert dns.rdata.from_text("IN", "DS", rdata) == ours
    signed = sign_with_bind(folder, tmp_path, csk=True)
    assert f"DNSKEY\t257 3 {algorithm}" in signed.read_text() or key.dnskey.to_text()[:20] in (
        signed.read_text().replace("\t", " ")
    )


def test_a_generated_ksk_and_zsk_pair_signs_a_zone_bind_verifies(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    ksk = keystore.generate_key(state, ZONE, 13, "ksk", NOW, publish=NOW, activate=NOW)
    zsk = keystore.generate_key(state, ZONE, 13, "zsk", NOW, publish=NOW, activate=NOW)
    assert ksk.dnskey.flags == 257 and zsk.dnskey.flags == 256 and ksk.tag != zsk.tag
    sign_with_bind(keystore.key_dir(state, ZONE), tmp_path, csk=False)
    assert [ds.key_tag for ds in ds_records(keystore.load_keys(state, ZONE))] == [ksk.tag]


def test_keys_load_back_with_their_times_and_sign(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    assert keystore.load_keys(state, ZONE) == ()
    made = keystore.generate_key(state, ZONE, 15, "zsk", NOW, publish=NOW + 5)
    (loaded,) = keystore.load_keys(state, ZONE)
    assert loaded == made and loaded.publish == NOW + 5 and loaded.activate is None
    signs_validly(loaded.dnskey, loaded.private)
    # Timing changes are kept, in keys.json and in the BIND files' times.
    keystore.save_metadata(state, ZONE, [keystore.with_times(loaded, activate=NOW + 60)])
    (again,) = keystore.load_keys(state, ZONE)
    assert again.activate == NOW + 60
    private = Path(keystore.key_dir(state, ZONE), made.file + ".private").read_text()
    assert "Activate: 20261130005420" in private  # NOW + 60 in BIND's form


def test_files_are_0600_in_a_0700_folder_and_no_temp_file_stays(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    old = os.umask(0)  # the store must not rely on the umask
    try:
        keystore.generate_key(str(state), ZONE, 13, "csk", NOW)
        keystore.generate_key(str(state), dns.name.root, 13, "csk", NOW)
    finally:
        os.umask(old)
    for folder in (state / "keys", state / "keys" / "example.com", state / "keys" / "root"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(p.name for p in (state / "keys" / "root").iterdir())
    assert names[0] == ".lock" and names[-1] == "keys.json" and names[1].startswith("K.+013+")
    for path in (state / "keys").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert not path.name.endswith(".tmp")


def test_a_failed_write_names_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    key = keystore.generate_key(state, ZONE, 13, "csk", NOW)
    folder = Path(keystore.key_dir(state, ZONE))
    private = folder / (key.file + ".private")
    before = private.read_text()
    (folder / "keys.json").unlink()
    (folder / "keys.json").mkdir()  # a rename cannot replace a folder
    with pytest.raises(KeyFileError, match=r"keys\.json: cannot write"):
        keystore.save_metadata(state, ZONE, [keystore.with_times(key, publish=NOW)])
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    # The key's own files were written first, whole.
    assert private.read_text() != before and "Publish: " in private.read_text()


def test_generated_tags_are_unique_in_a_zone(tmp_path: Path, monkeypatch) -> None:
    state = str(tmp_path / "state")
    same = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setattr(keystore, "new_private_key", lambda algorithm: same)
    keystore.generate_key(state, ZONE, 13, "ksk", NOW)
    # The same key again would repeat the tag: after MAX_KEY_TAG_TRIES draws, a clear error.
    with pytest.raises(KeyFileError, match=f"no free key tag after {MAX_KEY_TAG_TRIES} keys"):
        keystore.generate_key(state, ZONE, 13, "ksk", NOW)
    assert len(keystore.load_keys(state, ZONE)) == 1


def test_a_zone_holds_at_most_max_zone_keys(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    (key,) = [keystore.generate_key(state, ZONE, 15, "zsk", NOW)]
    with pytest.raises(KeyFileError, match="MAX_ZONE_KEYS"):
        keystore.save_metadata(state, ZONE, [key] * (MAX_ZONE_KEYS + 1))


def test_a_corrupt_store_names_the_file(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    key = keystore.generate_key(state, ZONE, 13, "csk", NOW)
    folder = Path(keystore.key_dir(state, ZONE))
    (folder / (key.file + ".private")).write_text("Private-key-format: v1.3\n")
    with pytest.raises(KeyFileError, match=r"\+013\+\d{5}\.private: .*Algorithm"):
        keystore.load_keys(state, ZONE)
    (folder / (key.file + ".private")).write_text("x" * (MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(KeyFileError, match="MAX_KEY_FILE_BYTES"):
        keystore.load_keys(state, ZONE)
    (folder / (key.file + ".private")).unlink()
    with pytest.raises(KeyFileError, match=r"\.private: no such file"):
        keystore.load_keys(state, ZONE)


# -- importing BIND's keys -------------------------------------------------------------------


def test_bind_keys_import_with_their_times_and_roles(tmp_path: Path) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    ksk = bind_keygen(bind, 13, "-f", "KSK", "-P", "20261201000000", "-A", "20261202000000")
    zsk = bind_keygen(bind, 13)
    state = str(tmp_path / "state")
    imported = keystore.import_bind_keys(state, ZONE, [str(ksk), str(zsk)], NOW)
    assert [k.role for k in imported] == ["ksk", "zsk"]
    assert imported[0].publish == 1_796_083_200 and imported[0].activate == 1_796_169_600
    assert imported[0].ds_seen is None
    assert {k.tag for k in keystore.load_keys(state, ZONE)} == {k.tag for k in imported}
    # The same DS as BIND's, so the parent needs no change.
    line = run([require_binary("dnssec-dsfromkey"), "-2", str(ksk)], tmp_path)
    assert dns.rdata.from_text("IN", "DS", line.split(None, 3)[3]) == ds_records(imported)[0]
    with pytest.raises(KeyFileError, match="already in example.com.'s key store"):
        keystore.import_bind_keys(state, ZONE, [str(zsk)], NOW)


def test_a_lone_bind_ksk_imports_as_a_csk_and_ds_seen_is_kept(tmp_path: Path) -> None:
    ksk = bind_keygen(tmp_path, 15, "-f", "KSK")
    (key,) = keystore.import_bind_keys(str(tmp_path / "s"), ZONE, [str(ksk)], NOW, ds_seen=True)
    assert key.role == "csk" and key.ds_seen == NOW and key.algorithm == 15


def test_bind_imports_refuse_what_is_wrong_and_write_nothing(tmp_path: Path) -> None:
    good = bind_keygen(tmp_path, 13)
    state = str(tmp_path / "state")
    other = dns.name.from_text("example.net")
    with pytest.raises(KeyFileError, match="a key of example.com., not of example.net."):
        keystore.import_bind_keys(state, other, [str(good)], NOW)
    lonely = tmp_path / "Kexample.com.+013+00001.key"
    lonely.write_text(good.read_text())
    with pytest.raises(
        KeyFileError, match=r"00001\.private: the private key beside .*no such file"
    ):
        keystore.import_bind_keys(state, ZONE, [str(good), str(lonely)], NOW)
    other_private = bind_keygen(tmp_path, 13).with_suffix(".private").read_text()
    lonely.with_suffix(".private").write_text(other_private)
    with pytest.raises(KeyFileError, match="does not hold the .key file's private key"):
        keystore.import_bind_keys(state, ZONE, [str(good), str(lonely)], NOW)
    with pytest.raises(KeyFileError, match="expected a BIND .key file"):
        keystore.import_bind_keys(state, ZONE, [str(good.with_suffix(".private"))], NOW)
    assert keystore.load_keys(state, ZONE) == ()


def test_a_bind_dnssec_policy_key_imports_as_its_state_file_says(tmp_path: Path) -> None:
    # dnssec-keygen -k writes the .state file named keeps (KSK: yes, ZSK: yes: a CSK).
    out = run(
        [
            require_binary("dnssec-keygen"),
            "-q",
            "-k",
            "default",
            "-K",
            str(tmp_path),
            "example.com",
        ],
        tmp_path,
    )
    key_path = tmp_path / (out.strip() + ".key")
    assert key_path.with_suffix(".state").is_file()
    (key,) = keystore.import_bind_keys(str(tmp_path / "s"), ZONE, [str(key_path)], NOW)
    assert key.role == "csk" and key.dnskey.flags == 257
    assert key.publish is not None and key.publish != NOW and key.activate == key.publish


def test_writers_in_parallel_processes_lose_no_key(tmp_path: Path) -> None:
    # The flock on <folder>/.lock: four processes adding three keys each.
    state = str(tmp_path / "state")
    code = (
        "import sys, dns.name\n"
        "from authd.adapters import keystore\n"
        "for _ in range(3):\n"
        "    keystore.generate_key(sys.argv[1], dns.name.from_text('example.com'), 15, 'zsk', 1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, state], env=env, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    keys = keystore.load_keys(state, ZONE)
    assert len(keys) == 12 and len({k.tag for k in keys}) == 12


def test_imported_bind_keys_sign_a_zone_bind_verifies_under_the_parents_old_ds(
    tmp_path: Path,
) -> None:
    """A migration at the key level: BIND's keys, imported and loaded back, sign
    a zone (dnspython's signer) that dnssec-verify accepts, and its DNSKEY RRset
    validates with the DS computed by BIND before the move (the parent's)."""
    bind = tmp_path / "bind"
    bind.mkdir()
    ksk_path = bind_keygen(bind, 13, "-f", "KSK")
    zsk_path = bind_keygen(bind, 13)
    parent_ds = run([require_binary("dnssec-dsfromkey"), "-2", str(ksk_path)], tmp_path)
    state = str(tmp_path / "state")
    keystore.import_bind_keys(state, ZONE, [str(ksk_path), str(zsk_path)], NOW, ds_seen=True)
    keys = keystore.load_keys(state, ZONE)
    zone = dns.zone.from_text(ZONE_TEXT, ZONE, relativize=False)
    when = int(time.time())
    with zone.writer() as txn:
        dns.dnssec.sign_zone(
            zone,
            txn,
            keys=[(k.private, k.dnskey) for k in keys],
            inception=when - 3600,
            expiration=when + 86400,
        )
    signed = tmp_path / "migrated.zone"
    signed.write_text(zone.to_text())
    out = run([require_binary("dnssec-verify"), "-o", "example.com.", str(signed)], tmp_path)
    assert "Zone fully signed" in out
    ds = dns.rdata.from_text("IN", "DS", parent_ds.split(None, 3)[3])
    (ksk,) = [k for k in keys if dns.dnssec.make_ds(ZONE, k.dnskey, "SHA256") == ds]
    assert ksk.role == "ksk" and ksk.ds_seen == NOW
    dnskeys = zone.find_rrset(ZONE, "DNSKEY")
    sigs = zone.find_rrset(ZONE, "RRSIG", "DNSKEY")
    trusted = {ZONE: dns.rrset.from_rdata(ZONE, 3600, ksk.dnskey)}
    dns.dnssec.validate(dnskeys, sigs, trusted)  # raises if the old DS's key did not sign
