"""TSIG keys: the ``keys:`` section, secret files, the keyring, generated snippets.

Generated BIND snippets are checked by BIND's own ``named-checkconf`` and
``tsig-keygen`` output is read back, so both directions agree with BIND.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import dns.message
import dns.name
import dns.tsig
import pytest
import yaml

from authd.errors import ConfigError
from authd.keys import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DIGEST_SIZES,
    MAX_SECRET_FILE_BYTES,
    KeySet,
    generate_key,
    key_snippets,
    parse_bind_keys,
    parse_keys,
)

SECRET = base64.b64encode(bytes(range(32))).decode()
SECRET64 = base64.b64encode(bytes(range(64))).decode()

# Verbatim output of ``tsig-keygen -a hmac-sha512 xfr.example``.
TSIG_KEYGEN_OUTPUT = """key "xfr.example" {
\talgorithm hmac-sha512;
\tsecret "Pojz2HEUU7nmrYVS3Hf/UhDcUw7LyMPpEdk4I3l6rtxOXZxmLLpJtopRPTZFy/WCR7nMpSf/Up7yljLTvNdw0g==";
};
"""


def _tool(name: str) -> str:
    # A missing BIND tool is an error, never a skip (harness/peers.py).
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise AssertionError(f"missing tool: {name} (install bind9 / bind9-utils)")
    return path


# ------------------------------------------------------------- inline keys


def test_inline_key_defaults_to_hmac_sha256() -> None:
    ks = parse_keys([{"name": "xfr", "secret": SECRET}])
    (key,) = ks.keys
    assert key.name == dns.name.from_text("xfr.")
    assert (key.algorithm, key.secret, key.path) == ("hmac-sha256", bytes(range(32)), "keys[0]")
    assert DEFAULT_ALGORITHM == "hmac-sha256"
    assert ks.warnings == ()


@pytest.mark.parametrize(
    ("written", "algorithm"),
    [
        ("hmac-sha256", "hmac-sha256"),
        ("hmac-sha384", "hmac-sha384"),
        ("hmac-sha512", "hmac-sha512"),
        ("hmac-sha224", "hmac-sha224"),
        ("hmac-sha1", "hmac-sha1"),
        ("hmac-md5", "hmac-md5"),
        ("HMAC-SHA256", "hmac-sha256"),
        ("hmac-sha256.", "hmac-sha256"),
        ("HMAC-MD5.SIG-ALG.REG.INT.", "hmac-md5"),
    ],
)
def test_algorithms(written: str, algorithm: str) -> None:
    secret = base64.b64encode(bytes(DIGEST_SIZES[algorithm])).decode()
    (key,) = parse_keys([{"name": "k", "algorithm": written, "secret": secret}]).keys
    assert key.algorithm == algorithm
    assert key.to_dnspython().algorithm == ALGORITHMS[algorithm]


@pytest.mark.parametrize("algorithm", ["hmac-md5", "hmac-sha1"])
def test_legacy_algorithms_warn(algorithm: str) -> None:
    secret = base64.b64encode(bytes(64)).decode()
    ks = parse_keys([{"name": "old", "algorithm": algorithm, "secret": secret}])
    assert ks.warnings == (
        f"keys[0].algorithm: {algorithm} is weak (RFC 8945 section 6); "
        "use it only for peers that cannot do hmac-sha256",
    )


def test_short_secret_warns() -> None:
    short = base64.b64encode(b"0123456789").decode()
    ks = parse_keys([{"name": "k", "algorithm": "hmac-sha512", "secret": short}])
    assert ks.warnings == (
        "keys[0]: secret is 10 bytes, shorter than the 64-byte hmac-sha512 output "
        "(RFC 2104 section 3)",
    )


def test_whitespace_inside_secret_is_ignored() -> None:
    spaced = SECRET[:10] + " \n " + SECRET[10:]
    (key,) = parse_keys([{"name": "k", "secret": spaced}]).keys
    assert key.secret == bytes(range(32))


ERROR_CASES = [
    ({}, "keys: expected a list of keys, got dict"),
    ("notalist", "keys: expected a list of keys, got str"),
    (["x"], "keys[0]: expected a mapping, got str"),
    ([{"secret": SECRET}], "keys[0].name: missing"),
    ([{"name": "k", "secret": SECRET, "algo": "x"}], "keys[0].algo: unknown key (allowed:"),
    ([{"name": 5, "secret": SECRET}], "keys[0].name: expected a key name, got int 5"),
    ([{"name": "bad name", "secret": SECRET}], "keys[0].name: not a key name: 'bad name'"),
    ([{"name": "a..b", "secret": SECRET}], "keys[0].name: not a key name: 'a..b'"),
    ([{"name": ".", "secret": SECRET}], "keys[0].name: not a key name: '.'"),
    ([{"name": "", "secret": SECRET}], "keys[0].name: not a key name: ''"),
    ([{"name": "a" * 64, "secret": SECRET}], "keys[0].name: not a key name"),
    ([{"name": 'q"uote', "secret": SECRET}], "keys[0].name: not a key name"),
    (
        [{"name": "k", "algorithm": "hmac-sha3", "secret": SECRET}],
        "keys[0].algorithm: unsupported algorithm 'hmac-sha3' (supported: hmac-sha256,",
    ),
    (
        [{"name": "k", "algorithm": "gss-tsig", "secret": SECRET}],
        "keys[0].algorithm: unsupported algorithm 'gss-tsig'",
    ),
    ([{"name": "k", "secret": "not base64!"}], "keys[0].secret: not valid base64"),
    ([{"name": "k", "secret": "QUJD"[:3]}], "keys[0].secret: not valid base64"),
    ([{"name": "k", "secret": ""}], "keys[0].secret: empty secret"),
    ([{"name": "k", "secret": 12}], "keys[0].secret: expected a base64 string, got int"),
    ([{"name": "k"}], "keys[0]: missing: secret or secret_file"),
    (
        [{"name": "k", "secret": SECRET, "secret_file": "k.key"}],
        "keys[0]: give either secret or secret_file, not both",
    ),
    ([{"name": "k", "secret_file": ""}], "keys[0].secret_file: expected a file path"),
    (
        [
            {"name": "xfr", "secret": SECRET},
            {"name": "other", "secret": SECRET},
            {"name": "XFR.", "secret": SECRET},
        ],
        "keys[2].name: duplicate key 'XFR.' (also keys[0])",
    ),
]


@pytest.mark.parametrize(("data", "message"), ERROR_CASES)
def test_errors(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_keys(data)
    assert str(info.value).startswith(message)
    assert info.value.path == message.split(": ")[0]


def test_bad_secret_is_never_echoed() -> None:
    secret_looking = "c2VjcmV0c2VjcmV0!!"
    with pytest.raises(ConfigError) as info:
        parse_keys([{"name": "k", "secret": secret_looking}])
    assert secret_looking not in str(info.value)


def test_no_keys() -> None:
    assert parse_keys(None) == KeySet()
    assert parse_keys([]).keyring() == {}


def test_repr_hides_the_secret() -> None:
    (key,) = parse_keys([{"name": "k", "secret": SECRET}]).keys
    assert SECRET not in repr(key)
    assert repr(bytes(range(32))) not in repr(key)


# ------------------------------------------------------------- secret files


def test_secret_file_with_bare_base64(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "xfr.secret").write_text(SECRET + "\n")
    data = [{"name": "xfr", "algorithm": "hmac-sha256", "secret_file": "keys/xfr.secret"}]
    (key,) = parse_keys(data, "keys", str(tmp_path)).keys
    assert key.secret == bytes(range(32))


def test_secret_file_in_bind_form_from_tsig_keygen(tmp_path: Path) -> None:
    (tmp_path / "xfr.key").write_text(TSIG_KEYGEN_OUTPUT)
    (key,) = parse_keys(
        [{"name": "xfr.example", "secret_file": "xfr.key"}], base=str(tmp_path)
    ).keys
    assert key.algorithm == "hmac-sha512"  # taken from the file
    assert base64.b64encode(key.secret).decode() in TSIG_KEYGEN_OUTPUT


def test_secret_file_written_by_the_real_tsig_keygen(tmp_path: Path) -> None:
    out = subprocess.run(
        [_tool("tsig-keygen"), "-a", "hmac-sha384", "transfer.example."],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (tmp_path / "t.key").write_text(out)
    data = [{"name": "transfer.example", "algorithm": "hmac-sha384", "secret_file": "t.key"}]
    (key,) = parse_keys(data, base=str(tmp_path)).keys
    assert (key.algorithm, len(key.secret)) == ("hmac-sha384", 48)


def test_bind_file_with_comments_and_several_keys(tmp_path: Path) -> None:
    text = f"""
// keys for the secondaries
# shell-style comment
/* a block
   comment */
key "first" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
key second {{
    secret "{SECRET64}";   // no algorithm: the config decides
}};
"""
    (tmp_path / "all.key").write_text(text)
    ks = parse_keys(
        [
            {"name": "second", "algorithm": "hmac-sha512", "secret_file": "all.key"},
            {"name": "FIRST", "secret_file": "all.key"},
        ],
        base=str(tmp_path),
    )
    assert [(k.name.to_text(), k.algorithm) for k in ks.keys] == [
        ("second.", "hmac-sha512"),
        ("FIRST.", "hmac-sha256"),
    ]
    assert ks.keys[0].secret == bytes(range(64))


BIND_FILE_ERRORS = [
    (TSIG_KEYGEN_OUTPUT, {"name": "other"}, "xfr.key: defines 'xfr.example', not 'other'"),
    (
        TSIG_KEYGEN_OUTPUT,
        {"name": "xfr.example", "algorithm": "hmac-sha256"},
        "xfr.key:1: key xfr.example. is hmac-sha512, but the config says hmac-sha256",
    ),
    (
        'key "xfr" { algorithm hmac-sha256; };',
        {"name": "xfr"},
        "xfr.key:1: key 'xfr' has no secret",
    ),
    ('key "xfr" {\n secret "!!!"; };', {"name": "xfr"}, "xfr.key:2: secret: not valid base64"),
    (
        'key "xfr" {\n  algorithm hmac-sha256\n};',
        {"name": "xfr"},
        "xfr.key:3: expected ';', got '}'",
    ),
    (f'key "xfr" {{ secret "{SECRET}"; }}', {"name": "xfr"}, "xfr.key:1: expected ';', got end"),
    (
        f'key "xfr" {{ secret "{SECRET}"; algorithm hmac-sha3; }};',
        {"name": "xfr"},
        "unsupported algorithm 'hmac-sha3'",
    ),
    (
        f'key "xfr" {{ secret "{SECRET}"; owner me; }};',
        {"name": "xfr"},
        "xfr.key:1: unknown key option 'owner'",
    ),
    ('options { directory "/tmp"; };', {"name": "xfr"}, "xfr.key:1: expected a key statement"),
    ('key { secret "x"; };', {"name": "xfr"}, "xfr.key:1: expected a key name, got '{'"),
    ('key "bad name" { secret "x"; };', {"name": "xfr"}, "xfr.key:1: not a key name: 'bad name'"),
    ('key "xfr" { secret "abc', {"name": "xfr"}, "xfr.key:1: unterminated string or comment"),
    ("/* never closed", {"name": "xfr"}, "xfr.key:1: unterminated string or comment"),
    ("not base64 at all", {"name": "xfr"}, "xfr.key: not valid base64"),
    ("", {"name": "xfr"}, "xfr.key: empty secret"),
]


@pytest.mark.parametrize(("text", "entry", "message"), BIND_FILE_ERRORS)
def test_secret_file_errors(tmp_path: Path, text: str, entry: dict[str, str], message: str) -> None:
    (tmp_path / "xfr.key").write_text(text)
    with pytest.raises(ConfigError) as info:
        parse_keys([entry | {"secret_file": "xfr.key"}], base=str(tmp_path))
    assert info.value.path == "keys[0].secret_file"
    assert message in info.value.reason


def test_secret_file_missing_large_or_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^keys\[0\].secret_file: no such file: nope.key$"):
        parse_keys([{"name": "k", "secret_file": "nope.key"}], base=str(tmp_path))
    (tmp_path / "big.key").write_text("A" * (MAX_SECRET_FILE_BYTES + 4))
    with pytest.raises(ConfigError, match=f"larger than {MAX_SECRET_FILE_BYTES} bytes"):
        parse_keys([{"name": "k", "secret_file": "big.key"}], base=str(tmp_path))
    (tmp_path / "bin.key").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        parse_keys([{"name": "k", "secret_file": "bin.key"}], base=str(tmp_path))
    (tmp_path / "dir.key").mkdir()
    with pytest.raises(ConfigError, match="cannot read dir.key"):
        parse_keys([{"name": "k", "secret_file": "dir.key"}], base=str(tmp_path))


def test_secret_file_reader_is_injectable() -> None:
    seen: list[str] = []

    def reader(path: str) -> bytes:
        seen.append(path)
        return SECRET.encode()

    (key,) = parse_keys(
        [{"name": "k", "secret_file": "sub/k.secret"}], base="/etc/authd", read_file=reader
    ).keys
    assert seen == [os.path.normpath("/etc/authd/sub/k.secret")]
    assert key.secret == bytes(range(32))


def test_parse_bind_keys_directly() -> None:
    (k,) = parse_bind_keys(TSIG_KEYGEN_OUTPUT, "f", "p")
    assert (k.name.to_text(), k.algorithm, k.line) == ("xfr.example.", "hmac-sha512", 1)
    assert parse_bind_keys("// nothing but a comment\n", "f", "p") == ()


# ---------------------------------------------------------------- keyring


def test_keyring_signs_and_verifies_with_dnspython() -> None:
    ks = parse_keys(
        [
            {"name": "xfr", "algorithm": "hmac-sha512", "secret": SECRET64},
            {"name": "notify.example", "secret": SECRET},
        ]
    )
    ring = ks.keyring()
    assert set(ring) == {dns.name.from_text("xfr"), dns.name.from_text("notify.example")}
    assert ring[dns.name.from_text("xfr")] == dns.tsig.Key("xfr.", SECRET64, "hmac-sha512")
    assert ks.names() == frozenset(ring)
    assert ks.get("XFR") is ks.keys[0] and ks.get("nope") is None

    query = dns.message.make_query("example.", "SOA")
    query.use_tsig(ring, keyname=dns.name.from_text("xfr"))
    received = dns.message.from_wire(query.to_wire(), keyring=ring)
    assert received.had_tsig and received.keyname == dns.name.from_text("xfr")

    wrong = {dns.name.from_text("xfr"): dns.tsig.Key("xfr.", SECRET, "hmac-sha512")}
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(query.to_wire(), keyring=wrong)


# ----------------------------------------------------------------- keygen


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_generate_key_round_trips(tmp_path: Path, algorithm: str) -> None:
    yaml_snippet, bind_snippet = generate_key("xfr.example", algorithm)
    (key,) = parse_keys(yaml.safe_load(yaml_snippet)["keys"]).keys
    assert (key.name, key.algorithm) == (dns.name.from_text("xfr.example"), algorithm)
    assert len(key.secret) == DIGEST_SIZES[algorithm]
    (tmp_path / "k.key").write_text(bind_snippet)
    (same,) = parse_keys([{"name": "xfr.example", "secret_file": "k.key"}], base=str(tmp_path)).keys
    assert (same.algorithm, same.secret) == (algorithm, key.secret)


def test_generated_secrets_differ() -> None:
    assert generate_key("a")[0] != generate_key("a")[0]


def test_key_snippets_exact_text() -> None:
    yaml_snippet, bind_snippet = key_snippets("xfr.example.", "HMAC-SHA256", bytes(range(32)))
    assert yaml_snippet == (
        f'keys:\n  - name: "xfr.example"\n    algorithm: hmac-sha256\n    secret: "{SECRET}"\n'
    )
    assert bind_snippet == (
        f'key "xfr.example" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n'
    )


def test_bind_accepts_the_generated_snippet(tmp_path: Path) -> None:
    _, bind_snippet = generate_key("xfr.example", "hmac-sha512")
    conf = tmp_path / "named.conf"
    conf.write_text(bind_snippet)
    result = subprocess.run(
        [_tool("named-checkconf"), str(conf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "algorithm", "message"),
    [
        ("bad name", "hmac-sha256", "name: not a key name"),
        ("ok", "hmac-sha3", "algorithm: unsupported algorithm"),
    ],
)
def test_generate_key_refuses_bad_input(name: str, algorithm: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_key(name, algorithm)


def test_keygen_command_prints_a_usable_key(tmp_path) -> None:
    """`authd keygen` output is a config snippet the config loader accepts."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "authd", "keygen", "xfr.example.com"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    yaml_part = out.split("# BIND")[0]
    zone = tmp_path / "z.zone"
    zone.write_text("@ 300 IN SOA ns hm 1 2 3 4 5\n@ 300 IN NS ns\nns 300 IN A 192.0.2.1\n")
    config = tmp_path / "c.yaml"
    config.write_text(yaml_part + f"zones:\n  - {{name: z.test, file: {zone}}}\n")
    from authd.config import load_config

    loaded = load_config(str(config))
    assert [k.name.to_text() for k in loaded.keys.keys] == ["xfr.example.com."]
    assert 'key "xfr.example.com" {' in out
    bad = subprocess.run(
        [sys.executable, "-m", "authd", "keygen", "x", "--algorithm", "foo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unsupported algorithm" in bad.stderr


def _keygen_sections(algorithm: str) -> dict[str, str]:
    """`authd keygen`'s output split at its ``# ...`` headings: heading word -> text."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "authd", "keygen", "xfr.example.com", "--algorithm", algorithm],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    sections: dict[str, str] = {}
    current = ""
    for line in out.splitlines(keepends=True):
        if line.startswith("# "):
            current = line[2:].split()[0]
            sections[current] = ""
        else:
            sections[current] = sections.get(current, "") + line
    return sections


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "hmac-sha512"])
def test_knot_accepts_the_generated_key(tmp_path: Path, algorithm: str) -> None:
    sections = _keygen_sections(algorithm)
    conf = tmp_path / "knot.conf"
    # The key, and an ACL that uses it: an unknown key id would be refused.
    acl = "acl:\n  - id: xfr\n    key: xfr.example.com\n    action: transfer\n"
    conf.write_text(sections["Knot"] + acl)
    result = subprocess.run(
        [_tool("knotc"), "-c", str(conf), "conf-check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    secret = next(line for line in sections["authd"].splitlines() if "secret" in line)
    assert secret.split('"')[1] in sections["Knot"]  # one key, printed four times


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "hmac-sha512"])
def test_nsd_accepts_the_generated_key(tmp_path: Path, algorithm: str) -> None:
    sections = _keygen_sections(algorithm)
    conf = tmp_path / "nsd.conf"
    uses = 'pattern:\n\tname: "p"\n\tprovide-xfr: 127.0.0.1 xfr.example.com\n'
    conf.write_text(f'server:\n\tzonesdir: "{tmp_path}"\n' + sections["NSD"] + uses)
    result = subprocess.run([_tool("nsd-checkconf"), str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # And the check would fail for a key it did not define.
    conf.write_text(f'server:\n\tzonesdir: "{tmp_path}"\n' + uses)
    refused = subprocess.run([_tool("nsd-checkconf"), str(conf)], capture_output=True, text=True)
    assert refused.returncode != 0
