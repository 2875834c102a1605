"""authd.keyfiles: BIND's key file formats, keys.json, DS records.

Keys made by BIND's ``dnssec-keygen`` (algorithms 13 and 15) parse into the
DNSKEY BIND wrote and a private key whose signatures ``dns.dnssec.validate``
accepts with that DNSKEY; what authd renders parses back to the same key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from authd.keyfiles import (
    KeyFileError,
    ZoneKey,
    check_pair,
    ds_records,
    entry_of,
    key_file_base,
    key_from_files,
    make_zone_key,
    parse_bind_timing,
    parse_file_base,
    parse_key_file,
    parse_metadata,
    parse_private_file,
    render_key_file,
    render_metadata,
    render_private_file,
    zone_folder_name,
)
from authd.limits import MAX_ZONE_KEYS
from harness.peers import require_binary

ZONE = dns.name.from_text("example.com")
NOW = 1_796_000_000  # 2026-11-30


def bind_keygen(tmp_path: Path, algorithm: int, *extra: str) -> Path:
    """A BIND key pair for example.com.; the path of its .key file."""
    out = subprocess.run(
        [require_binary("dnssec-keygen"), "-q", "-a", str(algorithm), "-K", str(tmp_path), *extra]
        + ["example.com"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return tmp_path / (out.stdout.strip() + ".key")


def signs_validly(dnskey, private) -> None:
    """*private* signs an A RRset so that dns.dnssec.validate accepts it with *dnskey*."""
    rrset = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.7")
    rrsig = dns.dnssec.sign(rrset, private, ZONE, dnskey, inception=NOW, expiration=NOW + 3600)
    sigs = dns.rrset.from_rdata(rrset.name, 300, rrsig)
    keys = {ZONE: dns.rrset.from_rdata(ZONE, 300, dnskey)}
    dns.dnssec.validate(rrset, sigs, keys, now=NOW + 60)  # raises if bogus
    other = dns.rrset.from_text("www.example.com.", 300, "IN", "A", "192.0.2.8")
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate(other, sigs, keys, now=NOW + 60)


@pytest.mark.parametrize("algorithm", [13, 15])
@pytest.mark.parametrize("ksk", [True, False])
def test_a_bind_key_parses_into_its_dnskey_and_a_private_key_that_signs(
    tmp_path: Path, algorithm: int, ksk: bool
) -> None:
    key_path = bind_keygen(tmp_path, algorithm, *(["-f", "KSK"] if ksk else []))
    owner, dnskey = parse_key_file(key_path.read_text())
    assert owner == ZONE
    assert dnskey.algorithm == algorithm and dnskey.flags == (257 if ksk else 256)
    # The DNSKEY is BIND's own line, and the tag in the file name is its key_id.
    bind_line = [ln for ln in key_path.read_text().splitlines() if not ln.startswith(";")][0]
    assert dnskey == dns.rdata.from_text("IN", "DNSKEY", bind_line.split("DNSKEY", 1)[1])
    _, alg, tag = parse_file_base(key_path.name.removesuffix(".key"))
    assert (alg, tag) == (algorithm, dns.dnssec.key_id(dnskey))
    private = parse_private_file(key_path.with_suffix(".private").read_text())
    check_pair(owner, dnskey, private)
    signs_validly(dnskey, private)
    # The same key, rendered by authd, reads back to the same DNSKEY and private half.
    key = make_zone_key(ZONE, "ksk" if ksk else "zsk", private, NOW, publish=NOW)
    assert key.dnskey == dnskey and key.tag == tag and key.file == key_path.name[:-4]
    assert parse_key_file(render_key_file(key)) == (ZONE, dnskey)
    again = parse_private_file(render_private_file(key))
    signs_validly(dnskey, again)
    assert render_private_file(make_zone_key(ZONE, "zsk", again, NOW, publish=NOW)) == (
        render_private_file(make_zone_key(ZONE, "zsk", private, NOW, publish=NOW))
    )


def test_bind_timing_comes_from_the_key_private_and_state_files(tmp_path: Path) -> None:
    key_path = bind_keygen(tmp_path, 13, "-P", "20261201000000", "-A", "20261202000000")
    timing = parse_bind_timing(
        key_path.read_text(), key_path.with_suffix(".private").read_text(), None
    )
    assert timing.publish == 1_796_083_200  # 2026-12-01T00:00:00Z
    assert timing.activate == 1_796_169_600
    assert timing.retire is None and timing.remove is None and timing.role is None
    state = (
        "; This is the state of key 1, for example.com.\n"
        "KSK: yes\nZSK: yes\n"
        "Published: 20261201000000 (Tue Dec  1 00:00:00 2026)\n"
        "Retired: 20270101000000 (Fri Jan  1 00:00:00 2027)\n"
        "DSState: omnipresent\nDSChange: 20261203000000 (Thu Dec  3 00:00:00 2026)\n"
    )
    timing = parse_bind_timing(key_path.read_text(), "", state)
    assert timing.role == "csk"
    assert timing.retire == 1_798_761_600
    assert timing.ds_seen == 1_796_256_000


def test_keys_json_round_trips_and_names_the_bad_field() -> None:
    a = make_zone_key(ZONE, "ksk", ec.generate_private_key(ec.SECP256R1()), NOW, publish=NOW)
    b = make_zone_key(ZONE, "zsk", ed25519.Ed25519PrivateKey.generate(), NOW, retire=NOW + 9)
    text = render_metadata([b, a])
    assert parse_metadata(text) == tuple(sorted((entry_of(a), entry_of(b)), key=lambda e: e.tag))
    for entry in parse_metadata(text):
        key = a if entry.tag == a.tag else b
        again = key_from_files(ZONE, entry, render_key_file(key), render_private_file(key), "K")
        assert again == key  # equal: the private half is left out of ==, not its DNSKEY
    data = json.loads(text)
    data["keys"][1]["role"] = "kzk"
    with pytest.raises(KeyFileError, match=r"keys\.json: keys\[1\]\.role: expected one of"):
        parse_metadata(json.dumps(data))
    data["keys"][1]["role"] = "zsk"
    data["keys"][0]["publish"] = "soon"
    with pytest.raises(KeyFileError, match=r"keys\[0\]\.publish: expected an integer or null"):
        parse_metadata(json.dumps(data))
    too_many = {"keys": [json.loads(text)["keys"][0]] * (MAX_ZONE_KEYS + 1)}
    with pytest.raises(KeyFileError, match="MAX_ZONE_KEYS"):
        parse_metadata(json.dumps(too_many))
    with pytest.raises(KeyFileError, match="not JSON"):
        parse_metadata("{")


def test_files_that_do_not_match_their_entry_are_refused() -> None:
    a = make_zone_key(ZONE, "ksk", ec.generate_private_key(ec.SECP256R1()), NOW)
    b = make_zone_key(ZONE, "ksk", ec.generate_private_key(ec.SECP256R1()), NOW)
    with pytest.raises(KeyFileError, match="does not hold the .key file's private key"):
        key_from_files(ZONE, entry_of(a), render_key_file(a), render_private_file(b), "K")
    with pytest.raises(KeyFileError, match="do not hold the key keys.json names"):
        key_from_files(ZONE, entry_of(a), render_key_file(b), render_private_file(b), "K")
    other = dns.name.from_text("example.net")
    with pytest.raises(KeyFileError, match="the key is for example.com., not example.net."):
        key_from_files(other, entry_of(a), render_key_file(a), render_private_file(a), "K")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Private-key-format: v2.0\nAlgorithm: 13\nPrivateKey: AA==\n", "Private-key-format"),
        ("Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\n", "only 13"),
        ("Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: !!\n", "not base64"),
        ("Private-key-format: v1.3\nAlgorithm: 15\nPrivateKey: AAAA\n", "3 octets, not 32"),
        (f"Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: {'A' * 44}\n", "33 octets"),
        (f"Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: {'A' * 43}=\n", "not a valid key"),
    ],
)
def test_bad_private_files_get_a_clear_answer_without_the_key(text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message) as caught:
        parse_private_file(text)
    assert "PrivateKey:" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("; only a comment\n", "found 0 records"),
        ("example.com. IN A 192.0.2.1\n", "not a DNSKEY record"),
        ("example.com. IN DNSKEY 257 3 13 !!!\n", "bad DNSKEY record"),
        ("example.com. IN DNSKEY 257 4 13 AAAA\n", "protocol must be 3"),
        ("a. DNSKEY 256 3 13 AAAA\nb. DNSKEY 256 3 13 AAAA\n", "found 2 records"),
    ],
)
def test_bad_key_files_get_a_clear_answer(text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        parse_key_file(text)


def test_private_key_material_is_not_in_repr() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = make_zone_key(ZONE, "csk", private, NOW)
    secret = render_private_file(key).split("PrivateKey: ")[1].split()[0]
    assert "private" not in repr(key) and secret not in repr(key)
    assert isinstance(key, ZoneKey) and key.signs_dnskey and key.signs_zone


def test_ds_records_are_the_ksks_and_csks_only() -> None:
    ksk = make_zone_key(ZONE, "ksk", ec.generate_private_key(ec.SECP256R1()), NOW)
    zsk = make_zone_key(ZONE, "zsk", ec.generate_private_key(ec.SECP256R1()), NOW)
    (ds,) = ds_records([zsk, ksk])
    assert ds == dns.dnssec.make_ds(ZONE, ksk.dnskey, "SHA256")
    assert ds.key_tag == ksk.tag and ds.digest_type == 2


def test_folder_and_file_names() -> None:
    assert zone_folder_name(dns.name.root) == "root"
    assert zone_folder_name(dns.name.from_text("Example.COM")) == "example.com"
    assert key_file_base(dns.name.root, 13, 42) == "K.+013+00042"
    assert key_file_base(ZONE, 15, 4242) == "Kexample.com.+015+04242"
    for bad in ("a/b.example", "root"):
        with pytest.raises(KeyFileError, match="cannot name a key folder"):
            zone_folder_name(dns.name.from_text(bad))
    with pytest.raises(KeyFileError, match="not a key file name"):
        parse_file_base("example.com.key")
    with pytest.raises(KeyFileError, match="unknown key role"):
        make_zone_key(ZONE, "kzk", ec.generate_private_key(ec.SECP256R1()), NOW)
    with pytest.raises(KeyFileError, match="only ECDSA P-256"):
        make_zone_key(ZONE, "csk", ec.generate_private_key(ec.SECP384R1()), NOW)


def test_an_ecdsa_scalar_without_its_leading_zero_octets_parses() -> None:
    """BIND writes the ECDSA private scalar as a number, so one key in 256 has a
    31-octet PrivateKey (seen in CI with dnssec-keygen -k default)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec

    scalar = 0x00AB << 240 | 12345  # leading octet zero: 31 significant octets
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    short = scalar.to_bytes(31, "big")
    text = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: {}\n"
    parsed = parse_private_file(text.format(base64.b64encode(short).decode()))
    assert isinstance(parsed, ec.EllipticCurvePrivateKey)
    assert parsed.private_numbers().private_value == key.private_numbers().private_value
