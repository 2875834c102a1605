"""Signing policies: ``dnssec_policies:`` and a zone's ``dnssec: {policy: NAME}``.

A table of accepted policies (with the values they parse to) and of refusals,
each naming the key path; the built-in ``default`` policy's values; and the
config wiring (unknown policy, a secondary, a catalog).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authd.config import config_from_dict
from authd.errors import ConfigError
from authd.limits import MAX_NSEC3_SALT_BYTES, MAX_SIGNING_DURATION, MIN_SIGNATURE_VALIDITY
from authd.signpolicy import (
    DEFAULT,
    Denial,
    KeyLayout,
    Nsec3Params,
    parse_duration,
    parse_policies,
)

ZONE = """$TTL 300
@ SOA ns hm 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.1
"""


def test_default_policy_is_one_ecdsa_csk_with_nsec_and_two_weeks_of_validity() -> None:
    assert DEFAULT.algorithm == 13
    assert DEFAULT.keys is KeyLayout.CSK
    assert DEFAULT.denial is Denial.NSEC
    assert DEFAULT.signature_validity == 14 * 86400
    assert DEFAULT.signature_refresh == 5 * 86400
    assert DEFAULT.signature_jitter == 12 * 3600
    assert DEFAULT.dnskey_ttl == 3600
    assert DEFAULT.roles == ("csk",)
    assert parse_policies(None) == {"default": DEFAULT}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(0, 0), (45, 45), ("45s", 45), ("30m", 1800), ("12h", 43200), ("14d", 1209600), ("90", 90)],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["14w", "-1", "1.5h", "", True, 1.5, [], "99999d"])
def test_bad_durations_name_the_key(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^p\.signature_validity: "):
        parse_duration(text, "p.signature_validity")


ACCEPTED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"name": "x"}, {"algorithm": 13, "keys": KeyLayout.CSK}),
    ({"name": "x", "algorithm": "ed25519"}, {"algorithm": 15}),
    ({"name": "x", "algorithm": 15}, {"algorithm": 15}),
    ({"name": "x", "algorithm": "ECDSAP256SHA256"}, {"algorithm": 13}),
    ({"name": "x", "keys": "ksk-zsk"}, {"keys": KeyLayout.KSK_ZSK, "roles": ("ksk", "zsk")}),
    ({"name": "x", "denial": "nsec3"}, {"denial": Denial.NSEC3, "nsec3": Nsec3Params()}),
    (
        {"name": "x", "denial": "nsec3", "nsec3": {"salt": "ABcd", "opt_out": True}},
        {"nsec3": Nsec3Params(0, b"\xab\xcd", True)},
    ),
    (
        {
            "name": "x",
            "signature_validity": "3h",
            "signature_refresh": "1h",
            "signature_jitter": "10m",
        },
        {"signature_validity": 10800, "signature_refresh": 3600, "signature_jitter": 600},
    ),
]


@pytest.mark.parametrize(("entry", "expected"), ACCEPTED)
def test_accepted_policies(entry: dict[str, Any], expected: dict[str, Any]) -> None:
    policy = parse_policies([entry])["x"]
    for attr, value in expected.items():
        assert getattr(policy, attr) == value, attr


REFUSED: list[tuple[Any, str]] = [
    ({"algorithm": 13}, r"dnssec_policies\[0\]\.name: missing"),
    ({"name": "x", "algorithm": 8}, r"dnssec_policies\[0\]\.algorithm: unsupported algorithm 8"),
    ({"name": "x", "algorithm": "rsasha256"}, r"dnssec_policies\[0\]\.algorithm: unsupported"),
    ({"name": "x", "keys": "two"}, r"dnssec_policies\[0\]\.keys: expected one of csk, ksk-zsk"),
    ({"name": "x", "denial": "nsec5"}, r"dnssec_policies\[0\]\.denial: expected one of"),
    (
        {"name": "x", "denial": "nsec3", "nsec3": {"iterations": 10}},
        r"dnssec_policies\[0\]\.nsec3\.iterations: 10: only 0 is allowed \(RFC 9276",
    ),
    (
        {"name": "x", "denial": "nsec3", "nsec3": {"salt": "xyz"}},
        r"dnssec_policies\[0\]\.nsec3\.salt: not hex",
    ),
    ({"name": "x", "nsec3": {}}, r"dnssec_policies\[0\]\.nsec3: only with denial: nsec3"),
    (
        {"name": "x", "denial": "nsec3", "nsec3": {"opt_out": "yes"}},
        r"dnssec_policies\[0\]\.nsec3\.opt_out: expected true or false",
    ),
    ({"name": "x", "colour": 1}, r"dnssec_policies\[0\]\.colour: unknown key"),
    (
        {
            "name": "x",
            "signature_validity": MIN_SIGNATURE_VALIDITY - 1,
            "signature_refresh": "5s",
            "signature_jitter": 0,
        },
        rf"dnssec_policies\[0\]\.signature_validity: must be at least {MIN_SIGNATURE_VALIDITY}s",
    ),
    (
        {"name": "x", "signature_validity": "3d", "signature_refresh": "3d"},
        r"dnssec_policies\[0\]\.signature_refresh: must be above 0 and below",
    ),
    (
        {"name": "x", "signature_refresh": "1d", "signature_jitter": "1d"},
        r"dnssec_policies\[0\]\.signature_jitter: must be below signature_refresh",
    ),
    ({"name": "x", "dnskey_ttl": 0}, r"dnssec_policies\[0\]\.dnskey_ttl: must be 1\.\."),
    ({"name": "bad name"}, r"dnssec_policies\[0\]\.name: expected a policy name"),
    ("x", r"dnssec_policies\[0\]: expected a mapping"),
]


@pytest.mark.parametrize(("entry", "message"), REFUSED)
def test_refused_policies_name_the_key(entry: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message):
        parse_policies([entry])


def test_duplicate_policy_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^dnssec_policies\[1\]\.name: duplicate policy 'a'"):
        parse_policies([{"name": "a"}, {"name": "a"}])


def test_a_policy_named_default_replaces_the_built_in_one() -> None:
    policies = parse_policies([{"name": "default", "denial": "nsec3"}])
    assert policies["default"].denial is Denial.NSEC3


def _config(tmp_path: Path, zone: dict[str, Any], **top: Any) -> Any:
    (tmp_path / "a.zone").write_text(ZONE)
    data = {"zones": [{"name": "a.test", "file": "a.zone", **zone}], **top}
    return config_from_dict(data, None, str(tmp_path))


def test_a_zone_names_its_policy(tmp_path: Path) -> None:
    policies = [{"name": "fast", "denial": "nsec3", "algorithm": "ed25519"}]
    cfg = _config(tmp_path, {"dnssec": {"policy": "fast"}}, dnssec_policies=policies)
    policy = cfg.views[0].zones[0].dnssec
    assert policy is not None and policy.name == "fast" and policy.algorithm == 15


def test_a_zone_without_a_policy_name_gets_the_default(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"dnssec": {}})
    assert cfg.views[0].zones[0].dnssec == DEFAULT
    assert _config(tmp_path, {}).views[0].zones[0].dnssec is None


def test_a_secondary_zone_may_be_signed_bump_in_the_wire(tmp_path: Path) -> None:
    zone = {"dnssec": {}, "type": "secondary", "primaries": ["192.0.2.1"], "file": "a.zone"}
    assert _config(tmp_path, zone).views[0].zones[0].dnssec == DEFAULT


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ({"dnssec": {"policy": "x"}}, r"zones\[0\]\.dnssec\.policy: unknown policy 'x'"),
        ({"dnssec": {"policy": 13}}, r"zones\[0\]\.dnssec\.policy: expected a policy name"),
        ({"dnssec": {"polcy": "x"}}, r"zones\[0\]\.dnssec\.polcy: unknown key"),
        ({"dnssec": "default"}, r"zones\[0\]\.dnssec: expected a mapping"),
    ],
)
def test_zone_dnssec_refusals_name_the_key(
    tmp_path: Path, zone: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match="^" + message):
        _config(tmp_path, zone)


def test_limits_of_durations_and_salts() -> None:
    assert parse_duration(MAX_SIGNING_DURATION, "x") == MAX_SIGNING_DURATION
    with pytest.raises(ConfigError, match=r"^x: .* out of range"):
        parse_duration(MAX_SIGNING_DURATION + 1, "x")
    longest = "ab" * MAX_NSEC3_SALT_BYTES
    entry = {"name": "x", "denial": "nsec3", "nsec3": {"salt": longest}}
    assert len(parse_policies([entry])["x"].nsec3.salt) == MAX_NSEC3_SALT_BYTES
    entry["nsec3"] = {"salt": longest + "ab"}
    with pytest.raises(ConfigError, match=r"^dnssec_policies\[0\]\.nsec3\.salt: 256 bytes"):
        parse_policies([entry])
