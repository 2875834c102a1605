"""DNSSEC signing policies: the ``dnssec_policies:`` config section, as values.

Owns: the ``SigningPolicy`` a signed zone follows (algorithm, key layout,
denial of existence, signature timing, TTLs, key lifetimes and the delays a
rollover waits out), the built-in ``default`` policy, and parsing both the
policy list and a zone's ``dnssec: {policy: NAME}``.

Invariants: a parsed policy is complete and self-consistent (the refresh
period is shorter than the validity, the jitter fits inside the refresh
period, NSEC3 parameters follow RFC 9276); errors are ``ConfigError`` with
the key path (``dnssec_policies[1].algorithm``).  Pure: values in, values out.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authd.errors import ConfigError, echo
from authd.keytimeline import Timings
from authd.limits import MAX_NSEC3_SALT_BYTES, MAX_SIGNING_DURATION, MIN_SIGNATURE_VALIDITY

DEFAULT_POLICY = "default"

#: Algorithm names (as BIND's and Knot's configs write them) to RFC 8624 numbers.
ALGORITHMS: Mapping[str, int] = {"ecdsap256sha256": 13, "ed25519": 15}
ALGORITHM_NAMES: Mapping[int, str] = {v: k for k, v in ALGORITHMS.items()}


class KeyLayout(enum.Enum):
    CSK = "csk"  # one key signs everything (flags 257)
    KSK_ZSK = "ksk-zsk"  # a KSK signs the DNSKEY RRset, a ZSK the rest


class Denial(enum.Enum):
    NSEC = "nsec"
    NSEC3 = "nsec3"


@dataclass(frozen=True, slots=True)
class Nsec3Params:
    """RFC 5155 parameters; RFC 9276 section 3.1: 0 extra iterations and no salt."""

    iterations: int = 0
    salt: bytes = b""
    opt_out: bool = False


DAY = 86400
HOUR = 3600


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    """How a zone is signed; durations in seconds.

    The defaults are the built-in ``default`` policy (close to BIND 9.18's and
    Knot's: one ECDSA P-256 CSK, NSEC, two weeks of validity re-signed five
    days before expiry).
    """

    name: str = DEFAULT_POLICY
    algorithm: int = 13
    keys: KeyLayout = field(default_factory=lambda: KeyLayout.CSK)
    denial: Denial = field(default_factory=lambda: Denial.NSEC)
    nsec3: Nsec3Params = field(default_factory=Nsec3Params)
    signature_validity: int = 14 * DAY
    signature_refresh: int = 5 * DAY  # re-sign when this close to expiry
    signature_jitter: int = 12 * HOUR  # expirations spread over this much
    dnskey_ttl: int = HOUR
    zsk_lifetime: int = 0  # 0: unlimited (no scheduled rollover)
    ksk_lifetime: int = 0
    propagation_delay: int = HOUR
    parent_ds_ttl: int = DAY
    parent_propagation_delay: int = HOUR
    max_zone_ttl: int = DAY  # the longest TTL a signed RRset may have (RFC 7583 TTLsig)

    @property
    def roles(self) -> tuple[str, ...]:
        """The key roles this policy needs, as the key store names them."""
        return ("csk",) if self.keys is KeyLayout.CSK else ("ksk", "zsk")

    def timings(self) -> Timings:
        """The durations a rollover waits out (``authd.keytimeline``)."""
        return Timings(
            dnskey_ttl=self.dnskey_ttl,
            max_zone_ttl=self.max_zone_ttl,
            propagation_delay=self.propagation_delay,
            parent_ds_ttl=self.parent_ds_ttl,
            parent_propagation_delay=self.parent_propagation_delay,
            zsk_lifetime=self.zsk_lifetime,
            ksk_lifetime=self.ksk_lifetime,
        )


DEFAULT = SigningPolicy()

_DURATION_KEYS = (
    "signature_validity",
    "signature_refresh",
    "signature_jitter",
    "dnskey_ttl",
    "zsk_lifetime",
    "ksk_lifetime",
    "propagation_delay",
    "parent_ds_ttl",
    "parent_propagation_delay",
    "max_zone_ttl",
)
POLICY_KEYS = {"name", "algorithm", "keys", "denial", "nsec3", *_DURATION_KEYS}
NSEC3_KEYS = {"iterations", "salt", "opt_out"}
_UNITS = {"s": 1, "m": 60, "h": HOUR, "d": DAY}
_DURATION = re.compile(r"([0-9]{1,12})([smhd]?)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A DNSKEY TTL is a TTL (RFC 2181 section 8: 31 bits).
MAX_TTL = 2**31 - 1


def parse_duration(value: object, path: str) -> int:
    """Integer seconds, or a number with a unit: ``14d``, ``12h``, ``30m``, ``45s``."""
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a duration, got {echo(value)}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        m = _DURATION.fullmatch(value.strip())
        if m is None:
            raise ConfigError(
                path, f"expected a duration like 14d, 12h, 30m, 45s or seconds, got {echo(value)}"
            )
        seconds = int(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ConfigError(path, f"expected a duration, got {type(value).__name__} {echo(value)}")
    if not 0 <= seconds <= MAX_SIGNING_DURATION:
        raise ConfigError(path, f"{seconds} seconds is out of range 0..{MAX_SIGNING_DURATION}")
    return seconds


def _mapping(value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping, got {type(value).__name__} {echo(value)}")
    for key in value:
        if key not in allowed:
            raise ConfigError(
                f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
    return value


def _choice(value: object, path: str, kind: type[enum.Enum]) -> Any:
    allowed = ", ".join(str(x.value) for x in kind)
    if not isinstance(value, str):
        raise ConfigError(path, f"expected one of {allowed}, got {echo(value)}")
    try:
        return kind(value.lower())
    except ValueError:
        raise ConfigError(path, f"expected one of {allowed}, got {echo(value)}") from None


def _algorithm(value: object, path: str) -> int:
    names = ", ".join(f"{n} ({a})" for n, a in ALGORITHMS.items())
    if isinstance(value, int) and not isinstance(value, bool):
        if value in ALGORITHM_NAMES:
            return value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ALGORITHMS:
            return ALGORITHMS[text]
        if text.isdigit() and int(text) in ALGORITHM_NAMES:
            return int(text)
    raise ConfigError(path, f"unsupported algorithm {echo(value)} (supported: {names})")


def _nsec3(value: object, path: str) -> Nsec3Params:
    if value is None:
        return Nsec3Params()
    m = _mapping(value, path, NSEC3_KEYS)
    iterations = m.get("iterations", 0)
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise ConfigError(f"{path}.iterations", f"expected an integer, got {echo(iterations)}")
    if iterations != 0:
        # RFC 9276 section 3.1: extra iterations add cost for every resolver and
        # no protection; validators may treat > 0 as insecure (section 3.2).
        raise ConfigError(
            f"{path}.iterations", f"{iterations}: only 0 is allowed (RFC 9276 section 3.1)"
        )
    salt_text = m.get("salt", "")
    if salt_text is None:
        salt_text = ""
    if not isinstance(salt_text, str):
        raise ConfigError(f"{path}.salt", f'expected hex text or "", got {echo(salt_text)}')
    salt_text = salt_text.strip()
    if salt_text == "-":
        salt_text = ""
    try:
        salt = bytes.fromhex(salt_text)
    except ValueError:
        raise ConfigError(f"{path}.salt", f"not hex: {echo(salt_text)}") from None
    if len(salt) > MAX_NSEC3_SALT_BYTES:
        raise ConfigError(
            f"{path}.salt", f"{len(salt)} bytes; at most {MAX_NSEC3_SALT_BYTES} (RFC 5155 3.1.5)"
        )
    opt_out = m.get("opt_out", False)
    if not isinstance(opt_out, bool):
        raise ConfigError(f"{path}.opt_out", f"expected true or false, got {echo(opt_out)}")
    return Nsec3Params(iterations, salt, opt_out)


def parse_policy(value: object, path: str) -> SigningPolicy:
    """One entry of ``dnssec_policies:``; unset keys take the default policy's values."""
    m = _mapping(value, path, POLICY_KEYS)
    if "name" not in m:
        raise ConfigError(f"{path}.name", "missing")
    name = m["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"{path}.name", f"expected a policy name like 'fast-nsec3', got {echo(name)}"
        )
    durations = {
        key: parse_duration(m[key], f"{path}.{key}") if key in m else getattr(DEFAULT, key)
        for key in _DURATION_KEYS
    }
    if "nsec3" in m and m.get("denial", "nsec") != "nsec3":
        raise ConfigError(f"{path}.nsec3", "only with denial: nsec3")
    policy = SigningPolicy(
        name=name,
        algorithm=_algorithm(m["algorithm"], f"{path}.algorithm")
        if "algorithm" in m
        else DEFAULT.algorithm,
        keys=_choice(m["keys"], f"{path}.keys", KeyLayout) if "keys" in m else DEFAULT.keys,
        denial=_choice(m["denial"], f"{path}.denial", Denial) if "denial" in m else DEFAULT.denial,
        nsec3=_nsec3(m.get("nsec3"), f"{path}.nsec3"),
        **durations,
    )
    _check_timing(policy, path)
    return policy


def _check_timing(p: SigningPolicy, path: str) -> None:
    if p.signature_validity < MIN_SIGNATURE_VALIDITY:
        raise ConfigError(
            f"{path}.signature_validity", f"must be at least {MIN_SIGNATURE_VALIDITY}s"
        )
    if not 0 < p.signature_refresh < p.signature_validity:
        raise ConfigError(
            f"{path}.signature_refresh",
            f"must be above 0 and below signature_validity ({p.signature_validity}s)",
        )
    if p.signature_jitter >= p.signature_refresh:
        raise ConfigError(
            f"{path}.signature_jitter",
            f"must be below signature_refresh ({p.signature_refresh}s), or signatures "
            "could be due for refresh as soon as they are made",
        )
    if p.dnskey_ttl > MAX_TTL or p.dnskey_ttl < 1:
        raise ConfigError(f"{path}.dnskey_ttl", f"must be 1..{MAX_TTL}")
    t = p.timings()
    if p.keys is KeyLayout.CSK and p.zsk_lifetime:
        raise ConfigError(
            f"{path}.zsk_lifetime", "a CSK lives ksk_lifetime (it has a DS, as a KSK does)"
        )
    # A successor must be able to take over before its predecessor's life ends
    # (RFC 7583 section 3.2.1: Ipub then Iret; 3.3.2: the parent's DS delay).
    zsk_least = t.dnskey_everywhere() + t.signatures_gone()
    if p.zsk_lifetime and p.zsk_lifetime <= zsk_least:
        raise ConfigError(
            f"{path}.zsk_lifetime",
            f"must be above the DNSKEY and signature propagation ({zsk_least}s: "
            "propagation_delay + dnskey_ttl + propagation_delay + max_zone_ttl)",
        )
    ksk_least = t.ds_everywhere() + t.dnskey_everywhere()
    if p.ksk_lifetime and p.ksk_lifetime <= ksk_least:
        raise ConfigError(
            f"{path}.ksk_lifetime",
            f"must be above the DS and DNSKEY propagation ({ksk_least}s: parent_propagation_delay"
            " + parent_ds_ttl + propagation_delay + dnskey_ttl)",
        )


def parse_policies(value: object, path: str = "dnssec_policies") -> dict[str, SigningPolicy]:
    """The ``dnssec_policies:`` list, with the built-in ``default`` unless redefined."""
    policies: dict[str, SigningPolicy] = {DEFAULT_POLICY: DEFAULT}
    if value is None:
        return policies
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list, got {type(value).__name__} {echo(value)}")
    seen: dict[str, str] = {}
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        policy = parse_policy(item, p)
        if policy.name in seen:
            raise ConfigError(
                f"{p}.name", f"duplicate policy {echo(policy.name)} (also {seen[policy.name]})"
            )
        seen[policy.name] = p
        policies[policy.name] = policy
    return policies


ZONE_DNSSEC_KEYS = {"policy", "parental_agents"}  # the agents: authd.config


def parse_zone_dnssec(
    value: object, path: str, policies: Mapping[str, SigningPolicy], secondary: bool
) -> SigningPolicy | None:
    """A zone's ``dnssec: {policy: NAME}`` (None or absent: not signed by authd).

    On a secondary zone too: authd signs what it transfers in (bump in the wire)."""
    if value is None:
        return None
    m = _mapping(value, path, ZONE_DNSSEC_KEYS)
    name = m.get("policy", DEFAULT_POLICY)
    if not isinstance(name, str):
        raise ConfigError(f"{path}.policy", f"expected a policy name, got {echo(name)}")
    if name not in policies:
        known = ", ".join(sorted(policies))
        raise ConfigError(f"{path}.policy", f"unknown policy {echo(name)} (defined: {known})")
    # A secondary with a policy is signed by authd as it comes in (bump in the
    # wire): *secondary* changes nothing here, it is said for the docstring's sake.
    del secondary
    return policies[name]


__all__ = [
    "ALGORITHMS",
    "DEFAULT",
    "DEFAULT_POLICY",
    "Denial",
    "KeyLayout",
    "Nsec3Params",
    "SigningPolicy",
    "parse_duration",
    "parse_policies",
    "parse_policy",
    "parse_zone_dnssec",
]
