"""DNSSEC key pairs as values, and the text of the files that hold them.

Owns: ``ZoneKey`` (one key pair of a zone with its role and timing), BIND's
``K<zone>+<alg>+<tag>`` file formats (``.key``: one DNSKEY line; ``.private``:
``Private-key-format: v1.3``; ``.state``: BIND 9.16+'s key state, read only),
the key store's ``keys.json`` index, and the DS records a parent needs.

Invariants:
- only algorithms 13 (ECDSAP256SHA256) and 15 (ED25519) are read or made;
- a ``ZoneKey``'s DNSKEY is the public half of its private key, its tag is
  ``dns.dnssec.key_id`` of that DNSKEY, and its flags follow its role (257 with
  the SEP bit for a KSK or CSK, 256 for a ZSK; RFC 4034 section 2.1.1);
- private key material never appears in ``repr``, in errors or in logs;
- pure: the disk is ``authd.adapters.keystore``'s, randomness too (a new key's
  private half is passed in).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from authd.errors import AuthdError
from authd.limits import MAX_ZONE_KEYS

#: The algorithms authd signs with, by number, with BIND's mnemonic (RFC 8624).
ALGORITHMS: Mapping[int, str] = {13: "ECDSAP256SHA256", 15: "ED25519"}
#: csk: one key signs everything; ksk signs the DNSKEY RRset; zsk the rest.
ROLES = ("csk", "ksk", "zsk")
FLAGS_ZSK = 256  # ZONE
FLAGS_KSK = 257  # ZONE | SEP
#: The timing fields of a key, in keys.json and on ZoneKey (unix seconds or None).
TIMES = ("publish", "activate", "retire", "remove", "ds_seen")
# Both algorithms' private halves are 32 octets (RFC 6605 section 4, RFC 8080 section 3).
_PRIVATE_BYTES = 32

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class KeyFileError(AuthdError):
    """A key file or the key index is unreadable or inconsistent (``where: reason``)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ZoneKey:
    """One DNSSEC key pair of *zone*, with its role and timing (unix seconds)."""

    zone: dns.name.Name
    role: str
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY
    private: PrivateKey = field(repr=False, compare=False)
    tag: int
    algorithm: int
    created: int
    publish: int | None = None
    activate: int | None = None
    retire: int | None = None
    remove: int | None = None
    ds_seen: int | None = None

    @property
    def file(self) -> str:
        """The file name without suffix: ``Kexample.com.+013+01234``."""
        return key_file_base(self.zone, self.algorithm, self.tag)

    @property
    def signs_dnskey(self) -> bool:
        """A KSK or CSK: signs the DNSKEY RRset and has a DS at the parent."""
        return self.role in ("csk", "ksk")

    @property
    def signs_zone(self) -> bool:
        """A ZSK or CSK: signs every other RRset."""
        return self.role in ("csk", "zsk")


def make_zone_key(
    zone: dns.name.Name,
    role: str,
    private: PrivateKey,
    created: int,
    **times: int | None,
) -> ZoneKey:
    """The ``ZoneKey`` for *private* (its DNSKEY and tag computed here)."""
    if role not in ROLES:
        raise KeyFileError("", f"unknown key role {role!r} (one of {', '.join(ROLES)})")
    algorithm = _algorithm_of(private)
    flags = FLAGS_KSK if role in ("csk", "ksk") else FLAGS_ZSK
    dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags=flags)
    unknown = set(times) - set(TIMES)
    if unknown:
        raise KeyFileError("", f"unknown key times {sorted(unknown)}")
    return ZoneKey(
        zone=zone,
        role=role,
        dnskey=dnskey,
        private=private,
        tag=dns.dnssec.key_id(dnskey),
        algorithm=algorithm,
        created=created,
        **times,
    )


def _algorithm_of(private: object) -> int:
    if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
        return 13
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return 15
    raise KeyFileError("", "only ECDSA P-256 (13) and Ed25519 (15) keys are supported")


# -- Names of things on disk ---------------------------------------------------------------


def zone_folder_name(zone: dns.name.Name) -> str:
    """The key folder's name for *zone*: its text without the final dot,
    lowercased; ``root`` for the root zone.  A name that would not be one
    path component (a label holding ``/``, NUL, or ``root`` itself) is refused."""
    if zone == dns.name.root:
        return "root"
    text = zone.to_text(omit_final_dot=True).lower()
    if "/" in text or "\x00" in text or text == "root" or text.startswith("."):
        raise KeyFileError(str(zone), "this zone name cannot name a key folder")
    return text


def key_file_base(zone: dns.name.Name, algorithm: int, tag: int) -> str:
    """BIND's name for a key pair's files: ``K<zone>+<alg:03d>+<tag:05d>``
    (the zone with its final dot: ``Kexample.com.+013+01234``, ``K.+013+01234``)."""
    return f"K{zone.to_text().lower()}+{algorithm:03d}+{tag:05d}"


_BASE = re.compile(r"^K(?P<zone>.+)\+(?P<alg>\d{3})\+(?P<tag>\d{5})$")


def parse_file_base(base: str) -> tuple[str, int, int]:
    """``Kexample.com.+013+01234`` -> (``example.com.``, 13, 1234)."""
    m = _BASE.match(base)
    if m is None:
        raise KeyFileError(base, "not a key file name (K<zone>+<alg>+<tag>)")
    return m.group("zone"), int(m.group("alg")), int(m.group("tag"))


# -- BIND's .key -------------------------------------------------------------------------


def parse_key_file(
    text: str, origin: dns.name.Name | None = None
) -> tuple[dns.name.Name, dns.rdtypes.ANY.DNSKEY.DNSKEY]:
    """The owner and DNSKEY of a BIND ``.key`` file: comment lines (``;``),
    then one ``OWNER [TTL] [IN] DNSKEY FLAGS 3 ALG KEY`` line."""
    records = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if line:
            records.append((number, line))
    if len(records) != 1:
        raise KeyFileError("", f"expected one DNSKEY line, found {len(records)} records")
    number, line = records[0]
    tokens = line.split()
    try:
        owner = dns.name.from_text(tokens[0], origin or dns.name.root)
        rest = tokens[1:]
        if rest and rest[0].isdigit():
            rest = rest[1:]  # a TTL
        if rest and rest[0].upper() == "IN":
            rest = rest[1:]
        if not rest or rest[0].upper() != "DNSKEY":
            raise KeyFileError(f"line {number}", "not a DNSKEY record")
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.DNSKEY, " ".join(rest[1:]), origin
        )
    except (dns.exception.DNSException, ValueError) as e:
        raise KeyFileError(f"line {number}", f"bad DNSKEY record: {e}") from None
    assert isinstance(rdata, dns.rdtypes.ANY.DNSKEY.DNSKEY)
    if rdata.protocol != 3:
        raise KeyFileError(f"line {number}", "DNSKEY protocol must be 3 (RFC 4034 2.1.2)")
    return owner, rdata


def render_key_file(key: ZoneKey) -> str:
    """BIND's ``.key`` text for *key* (comments, then the DNSKEY line)."""
    kind = "zone-signing" if key.role == "zsk" else "key-signing"
    times = "".join(
        f"; {name}: {_bind_time(when)} ({_human_time(when)})\n" for name, when in _bind_times(key)
    )
    return (
        f"; This is a {kind} key, keyid {key.tag}, for {key.zone}\n"
        f"{times}{key.zone} IN DNSKEY {key.dnskey.to_text()}\n"
    )


def _bind_times(key: ZoneKey) -> list[tuple[str, int]]:
    # BIND's tools (dnssec-signzone -S) read these to know which keys to use,
    # so they follow keys.json: the key store rewrites them when a time changes.
    times = [(bind, getattr(key, ours)) for bind, ours in _KEY_TIMES.items()]
    return [(name, when) for name, when in times if when is not None]


# -- BIND's .private ---------------------------------------------------------------------


def _private_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise KeyFileError("", "a line is not 'Name: value'")
        fields.setdefault(name.strip(), value.strip())
    return fields


def parse_private_file(text: str) -> PrivateKey:
    """The private key of a BIND ``.private`` file (format v1.2 or v1.3,
    algorithm 13 or 15).  Errors never quote the key material."""
    fields = _private_fields(text)
    version = fields.get("Private-key-format", "")
    if not re.fullmatch(r"v1\.[23]", version):
        raise KeyFileError("", f"unsupported Private-key-format {version[:20]!r} (v1.2, v1.3)")
    algorithm_text = fields.get("Algorithm", "").split(" ", 1)[0]
    if not algorithm_text.isdigit() or int(algorithm_text) not in ALGORITHMS:
        raise KeyFileError(
            "", f"Algorithm {algorithm_text[:10]!r}: only 13 (ECDSAP256SHA256) and 15 (ED25519)"
        )
    algorithm = int(algorithm_text)
    try:
        secret = base64.b64decode(fields.get("PrivateKey", ""), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError("", "PrivateKey is not base64") from None
    # BIND writes the ECDSA scalar as a big number without its leading zero
    # octets (one key in 256 has 31 octets); Ed25519's seed is always 32.
    short_ok = algorithm == 13 and 0 < len(secret) < _PRIVATE_BYTES
    if len(secret) != _PRIVATE_BYTES and not short_ok:
        raise KeyFileError("", f"PrivateKey is {len(secret)} octets, not {_PRIVATE_BYTES}")
    try:
        if algorithm == 13:
            return ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())
        return ed25519.Ed25519PrivateKey.from_private_bytes(secret)
    except ValueError:
        raise KeyFileError("", "PrivateKey is not a valid key for its algorithm") from None


def render_private_file(key: ZoneKey) -> str:
    """BIND's ``.private`` text (v1.3) for *key*."""
    private = key.private
    if isinstance(private, ec.EllipticCurvePrivateKey):
        secret = private.private_numbers().private_value.to_bytes(_PRIVATE_BYTES, "big")
    else:
        secret = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    return (
        "Private-key-format: v1.3\n"
        f"Algorithm: {key.algorithm} ({ALGORITHMS[key.algorithm]})\n"
        f"PrivateKey: {base64.b64encode(secret).decode()}\n"
        + "".join(f"{name}: {_bind_time(when)}\n" for name, when in _bind_times(key))
    )


def check_pair(
    owner: dns.name.Name, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY, private: PrivateKey
) -> None:
    """Refuse a ``.key`` and ``.private`` that are not two halves of one key."""
    if dnskey.algorithm != _algorithm_of(private):
        raise KeyFileError("", "the .key and .private files have different algorithms")
    public = dns.dnssec.make_dnskey(private.public_key(), dnskey.algorithm, flags=dnskey.flags)
    if public.key != dnskey.key:
        raise KeyFileError("", "the .private file does not hold the .key file's private key")


# -- Timing metadata from BIND's files ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindTiming:
    """What BIND's files say about a key's times (unix seconds) and role."""

    created: int | None = None
    publish: int | None = None
    activate: int | None = None
    retire: int | None = None
    remove: int | None = None
    ds_seen: int | None = None
    role: str | None = None  # from a .state file's KSK:/ZSK: lines


# BIND's names for each time: .key comments and .private fields, then .state.
_KEY_TIMES = {
    "Created": "created",
    "Publish": "publish",
    "Activate": "activate",
    "Inactive": "retire",
    "Delete": "remove",
}
_STATE_TIMES = {
    "Generated": "created",
    "Published": "publish",
    "Active": "activate",
    "Retired": "retire",
    "Removed": "remove",
    "DSPublish": "ds_seen",
}


def parse_bind_timing(key_text: str, private_text: str, state_text: str | None) -> BindTiming:
    """Times and role from a key's ``.key`` comments, ``.private`` fields and
    ``.state`` file (later ones win: the ``.state`` is what ``named`` acted on)."""
    found: dict[str, int | str | None] = {}
    for raw in key_text.splitlines():
        line = raw.strip()
        if line.startswith(";"):
            _take(line[1:], _KEY_TIMES, found)
    for raw in private_text.splitlines():
        _take(raw, _KEY_TIMES, found)
    if state_text is not None:
        state: dict[str, str] = {}
        for raw in state_text.splitlines():
            if raw.strip().startswith(";"):
                continue
            _take(raw, _STATE_TIMES, found)
            name, _, value = raw.partition(":")
            state[name.strip()] = value.strip().lower()
        ksk, zsk = state.get("KSK") == "yes", state.get("ZSK") == "yes"
        if ksk or zsk:
            found["role"] = "csk" if ksk and zsk else "ksk" if ksk else "zsk"
        # A DS that named saw become omnipresent was seen at the parent.
        if found.get("ds_seen") is None and state.get("DSState") == "omnipresent":
            found["ds_seen"] = _parse_bind_time(state.get("DSChange", "").split(" ", 1)[0])
    return BindTiming(**found)  # type: ignore[arg-type]


def _take(line: str, names: Mapping[str, str], found: dict[str, int | str | None]) -> None:
    name, sep, value = line.partition(":")
    target = names.get(name.strip())
    if sep and target is not None:
        when = _parse_bind_time(value.strip().split(" ", 1)[0])
        if when is not None:
            found[target] = when


def _parse_bind_time(text: str) -> int | None:
    # YYYYMMDDHHMMSS in UTC; 0 (or junk) means unset.
    if not re.fullmatch(r"\d{14}", text):
        return None
    try:
        when = datetime.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return int(when.timestamp())


def _bind_time(when: int) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y%m%d%H%M%S")


def _human_time(when: int) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%a %b %d %H:%M:%S %Y")


# -- keys.json -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of ``keys.json``: which files, what role, and its times."""

    tag: int
    algorithm: int
    role: str
    file: str
    created: int
    publish: int | None = None
    activate: int | None = None
    retire: int | None = None
    remove: int | None = None
    ds_seen: int | None = None


def entry_of(key: ZoneKey) -> KeyEntry:
    """*key*'s line in ``keys.json``."""
    return KeyEntry(
        tag=key.tag,
        algorithm=key.algorithm,
        role=key.role,
        file=key.file,
        created=key.created,
        publish=key.publish,
        activate=key.activate,
        retire=key.retire,
        remove=key.remove,
        ds_seen=key.ds_seen,
    )


def render_metadata(keys: Iterable[ZoneKey]) -> str:
    """``keys.json``'s text for *keys* (sorted by tag, so rewrites are stable)."""
    entries = []
    for key in sorted(keys, key=lambda k: (k.tag, k.algorithm)):
        e = entry_of(key)
        entries.append({name: getattr(e, name) for name in KeyEntry.__slots__})
    return json.dumps({"keys": entries}, indent=2) + "\n"


def parse_metadata(text: str, where: str = "keys.json") -> tuple[KeyEntry, ...]:
    """The entries of a ``keys.json``; errors name the entry and field
    (``keys.json: keys[1].role: ...``)."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise KeyFileError(where, f"not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyFileError(where, 'expected {"keys": [...]}')
    items = data["keys"]
    if len(items) > MAX_ZONE_KEYS:
        raise KeyFileError(where, f"{len(items)} keys, more than MAX_ZONE_KEYS ({MAX_ZONE_KEYS})")
    out: list[KeyEntry] = []
    for i, item in enumerate(items):
        path = f"keys[{i}]"
        if not isinstance(item, dict):
            raise KeyFileError(where, f"{path}: expected an object")
        for name in ("tag", "algorithm", "created"):
            if not _is_int(item.get(name)):
                raise KeyFileError(where, f"{path}.{name}: expected an integer")
        for name in TIMES:
            if item.get(name) is not None and not _is_int(item[name]):
                raise KeyFileError(where, f"{path}.{name}: expected an integer or null")
        if item["algorithm"] not in ALGORITHMS:
            raise KeyFileError(where, f"{path}.algorithm: {item['algorithm']} is not 13 or 15")
        if not 0 <= item["tag"] <= 0xFFFF:
            raise KeyFileError(where, f"{path}.tag: {item['tag']} is not a key tag")
        if item.get("role") not in ROLES:
            raise KeyFileError(where, f"{path}.role: expected one of {', '.join(ROLES)}")
        file = item.get("file")
        if not isinstance(file, str) or "/" in file or not file.startswith("K"):
            raise KeyFileError(where, f"{path}.file: expected a K<zone>+<alg>+<tag> name")
        out.append(
            KeyEntry(
                tag=item["tag"],
                algorithm=item["algorithm"],
                role=item["role"],
                file=file,
                created=item["created"],
                **{name: item.get(name) for name in TIMES},
            )
        )
    return tuple(out)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def key_from_files(
    zone: dns.name.Name, entry: KeyEntry, key_text: str, private_text: str, where: str
) -> ZoneKey:
    """The ``ZoneKey`` that *entry* and its two files describe, each checked
    against the others (owner, algorithm, tag, flags, the pair itself)."""
    try:
        owner, dnskey = parse_key_file(key_text)
    except KeyFileError as e:
        raise KeyFileError(f"{where}.key", e.reason) from None
    try:
        private = parse_private_file(private_text)
    except KeyFileError as e:
        raise KeyFileError(f"{where}.private", e.reason) from None
    if owner != zone:
        raise KeyFileError(f"{where}.key", f"the key is for {owner}, not {zone}")
    try:
        check_pair(owner, dnskey, private)
    except KeyFileError as e:
        raise KeyFileError(where, e.reason) from None
    if dnskey.algorithm != entry.algorithm or dns.dnssec.key_id(dnskey) != entry.tag:
        raise KeyFileError(where, "the files do not hold the key keys.json names")
    key = make_zone_key(
        zone,
        entry.role,
        private,
        entry.created,
        **{name: getattr(entry, name) for name in TIMES},
    )
    if key.dnskey.flags != dnskey.flags:
        raise KeyFileError(where, f"DNSKEY flags {dnskey.flags} do not fit role {entry.role}")
    return key


# -- DS for the parent ---------------------------------------------------------------------


def ds_records(keys: Iterable[ZoneKey], digest: str = "SHA256") -> list[dns.rdtypes.ANY.DS.DS]:
    """The DS records (RFC 4034 section 5) of *keys*' KSKs and CSKs, by tag."""
    out = []
    for key in sorted(keys, key=lambda k: (k.tag, k.algorithm)):
        if key.signs_dnskey:
            out.append(dns.dnssec.make_ds(key.zone, key.dnskey, digest))
    return out


__all__ = [
    "ALGORITHMS",
    "FLAGS_KSK",
    "FLAGS_ZSK",
    "ROLES",
    "TIMES",
    "BindTiming",
    "KeyEntry",
    "KeyFileError",
    "PrivateKey",
    "ZoneKey",
    "check_pair",
    "ds_records",
    "entry_of",
    "key_file_base",
    "key_from_files",
    "make_zone_key",
    "parse_bind_timing",
    "parse_file_base",
    "parse_key_file",
    "parse_metadata",
    "parse_private_file",
    "render_key_file",
    "render_metadata",
    "render_private_file",
    "zone_folder_name",
]
