"""TSIG keys (RFC 8945): parse the ``keys:`` config section into a keyring.

Owns: key names, the supported HMAC algorithms and their digest sizes, secret
decoding (inline base64, a file holding base64, or a file holding BIND's
``key "name" { algorithm ...; secret "..."; };`` statement), and the snippets
``authd keygen`` prints.

Invariants:
- ``parse_keys`` returns only valid keys or raises ``ConfigError`` whose path
  names the offending entry (``keys[2].secret_file``); key names are unique
  as DNS names (case-insensitively), so a keyring lookup is unambiguous;
- secrets never appear in ``repr`` or in error messages, because both end up
  in logs;
- the only I/O is reading a ``secret_file`` (through an injectable reader) and
  ``generate_key``'s call to ``secrets.token_bytes``; everything else is pure.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.tsig

from authd.errors import ConfigError, echo
from authd.limits import MAX_SECRET_FILE_BYTES

# The algorithms we sign and verify with, by the names BIND and authd's config
# use, mapped to the algorithm names that go on the wire (RFC 8945 section 6).
ALGORITHMS: Mapping[str, dns.name.Name] = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}
# HMAC output length in bytes; also the length of a generated secret, since a
# key shorter than the output weakens the MAC (RFC 2104 section 3).
DIGEST_SIZES: Mapping[str, int] = {
    "hmac-sha256": 32,
    "hmac-sha384": 48,
    "hmac-sha512": 64,
    "hmac-sha224": 28,
    "hmac-sha1": 20,
    "hmac-md5": 16,
}
# RFC 8945 section 6: HMAC-MD5 "MUST NOT" and HMAC-SHA1 "NOT RECOMMENDED" for
# use; they are accepted only to talk to old peers, with a warning.
LEGACY_ALGORITHMS = frozenset({"hmac-md5", "hmac-sha1"})
DEFAULT_ALGORITHM = "hmac-sha256"
# A secret file is a few hundred bytes; anything larger is the wrong file.

# Letters, digits, '-' and '_' in dot-separated labels: what tsig-keygen and
# BIND configs use in practice, and nothing that needs quoting in YAML,
# named.conf or a key path.
_KEY_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
_KEY_FIELDS = {"name", "algorithm", "secret", "secret_file"}
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]*")


@dataclass(frozen=True, slots=True)
class TsigKey:
    name: dns.name.Name
    algorithm: str  # a key of ALGORITHMS
    secret: bytes = field(repr=False)  # kept out of repr: reprs end up in logs
    path: str = ""  # where it was defined (``keys[1]``), for messages

    def to_dnspython(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, ALGORITHMS[self.algorithm])


@dataclass(frozen=True, slots=True)
class KeySet:
    """The configured keys, in config order, plus what the loader warned about."""

    keys: tuple[TsigKey, ...] = ()
    warnings: tuple[str, ...] = ()

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        """The keyring dnspython's ``Message.use_tsig``/``from_wire`` take."""
        return {k.name: k.to_dnspython() for k in self.keys}

    def names(self) -> frozenset[dns.name.Name]:
        return frozenset(k.name for k in self.keys)

    def get(self, name: dns.name.Name | str) -> TsigKey | None:
        if isinstance(name, str):
            name = dns.name.from_text(name)
        for k in self.keys:
            if k.name == name:
                return k
        return None


def parse_key_name(value: object, path: str) -> dns.name.Name:
    """A TSIG key name (a domain name, made absolute); ConfigError at *path* if bad."""
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a key name, got {type(value).__name__} {echo(value)}")
    if not _KEY_NAME.fullmatch(value):
        raise ConfigError(
            path,
            f"not a key name: {echo(value)} (letters, digits, '-', '_' in dot-separated labels)",
        )
    try:
        return dns.name.from_text(value)
    except dns.exception.DNSException as e:
        raise ConfigError(path, f"not a key name: {echo(value)} ({e})") from None


def parse_algorithm(value: object, path: str) -> str:
    """An algorithm as written in authd or BIND config (any case, optional final dot)."""
    if not isinstance(value, str):
        raise ConfigError(path, f"expected an algorithm name, got {type(value).__name__}")
    text = value.lower().rstrip(".")
    if text == "hmac-md5.sig-alg.reg.int":  # MD5's wire name (RFC 8945 section 6)
        text = "hmac-md5"
    if text not in ALGORITHMS:
        raise ConfigError(
            path, f"unsupported algorithm {echo(value)} (supported: {', '.join(ALGORITHMS)})"
        )
    return text


def decode_secret(value: object, path: str) -> bytes:
    """A base64 secret; whitespace inside is ignored, as BIND does."""
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a base64 string, got {type(value).__name__}")
    text = "".join(value.split())
    try:
        secret = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # The value itself is secret material: never echo it.
        raise ConfigError(path, "not valid base64") from None
    if not secret:
        raise ConfigError(path, "empty secret")
    return secret


@dataclass(frozen=True, slots=True)
class BindKey:
    """One ``key`` statement read from a BIND-style file."""

    name: dns.name.Name
    algorithm: str | None  # None when the statement does not say
    secret: bytes = field(repr=False)
    line: int = 0


# Tokens of named.conf: comments (three styles), quoted strings, punctuation
# and bare words.  Whitespace is skipped between tokens.
_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>//[^\n]*|\#[^\n]*|/\*.*?\*/)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<open>/\*|")
    | (?P<punct>[{};])
    | (?P<word>[^\s{};"]+)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str, where: str) -> list[tuple[str, str, int]]:
    """(kind, value, line) for each token; quoted strings lose their quotes."""
    out: list[tuple[str, str, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None  # every character starts some token
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "open":  # a comment or string that never closes
            raise ValueError(f"{where}:{line}: unterminated string or comment")
        if kind == "string":
            out.append(("string", re.sub(r"\\(.)", r"\1", value[1:-1]), line))
        elif kind in ("punct", "word"):
            out.append((kind, value, line))
        line += value.count("\n")
        pos = m.end()
    return out


def parse_bind_keys(text: str, where: str, path: str) -> tuple[BindKey, ...]:
    """Every ``key "name" { algorithm A; secret "S"; };`` statement in *text*.

    *where* names the file in messages (``xfr.key:3: ...``); errors are raised
    as ConfigError at *path*.
    """
    try:
        toks = _tokens(text, where)
    except ValueError as e:
        raise ConfigError(path, str(e)) from None
    keys: list[BindKey] = []
    i = 0

    def take(expected: str | None = None) -> tuple[str, str, int]:
        nonlocal i
        if i >= len(toks):
            want = f"{echo(expected)}" if expected else "more"
            last = toks[-1][2] if toks else 1
            raise ConfigError(path, f"{where}:{last}: expected {want}, got end of file")
        tok = toks[i]
        if expected is not None and tok[1] != expected:
            raise ConfigError(
                path, f"{where}:{tok[2]}: expected {echo(expected)}, got {echo(tok[1])}"
            )
        i += 1
        return tok

    while i < len(toks):
        kind, word, line = take()
        if kind != "word" or word.lower() != "key":
            raise ConfigError(path, f"{where}:{line}: expected a key statement, got {echo(word)}")
        kind, name_text, nline = take()
        if kind == "punct":
            raise ConfigError(path, f"{where}:{nline}: expected a key name, got {echo(name_text)}")
        try:
            name = parse_key_name(name_text, path)
        except ConfigError as e:
            raise ConfigError(path, f"{where}:{nline}: {e.reason}") from None
        take("{")
        algorithm: str | None = None
        secret: bytes | None = None
        while True:
            kind, field_name, fline = take()
            if field_name == "}":
                break
            kind, value, vline = take()
            if kind == "punct":
                raise ConfigError(path, f"{where}:{vline}: expected a value for {field_name}")
            if field_name.lower() == "algorithm":
                algorithm = parse_algorithm(value, path)
            elif field_name.lower() == "secret":
                try:
                    secret = decode_secret(value, path)
                except ConfigError as e:
                    raise ConfigError(path, f"{where}:{vline}: secret: {e.reason}") from None
            else:
                raise ConfigError(path, f"{where}:{fline}: unknown key option {echo(field_name)}")
            take(";")
        take(";")
        if secret is None:
            raise ConfigError(path, f"{where}:{line}: key {echo(name_text)} has no secret")
        keys.append(BindKey(name, algorithm, secret, line))
    return tuple(keys)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_SECRET_FILE_BYTES + 1)


def _secret_from_file(
    name: dns.name.Name,
    algorithm: str | None,
    file_text: str,
    path: str,
    base: str,
    read_file: Callable[[str], bytes],
) -> tuple[str | None, bytes]:
    """(algorithm, secret) from a secret file: bare base64 or BIND key statements."""
    file = os.path.normpath(os.path.join(base, file_text))
    try:
        data = read_file(file)
    except FileNotFoundError:
        raise ConfigError(path, f"no such file: {file_text}") from None
    except OSError as e:
        raise ConfigError(path, f"cannot read {file_text}: {e.strerror}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(path, f"{file_text}: larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, f"{file_text}: not UTF-8 text") from None
    # Only base64 letters and whitespace: a bare secret.  Anything else is read
    # as BIND's form, whose braces and quotes are never base64.
    if _BASE64_TEXT.fullmatch(text):
        try:
            return algorithm, decode_secret(text, path)
        except ConfigError as e:
            raise ConfigError(path, f"{file_text}: {e.reason}") from None
    found = parse_bind_keys(text, file_text, path)
    for k in found:
        if k.name == name:
            if algorithm is not None and k.algorithm is not None and k.algorithm != algorithm:
                raise ConfigError(
                    path,
                    f"{file_text}:{k.line}: key {name} is {k.algorithm}, "
                    f"but the config says {algorithm}",
                )
            return algorithm or k.algorithm, k.secret
    names = ", ".join(repr(k.name.to_text(omit_final_dot=True)) for k in found) or "no keys"
    raise ConfigError(
        path, f"{file_text}: defines {names}, not {name.to_text(omit_final_dot=True)!r}"
    )


def parse_keys(
    data: object,
    path: str = "keys",
    base: str = ".",
    *,
    read_file: Callable[[str], bytes] = _read_file,
) -> KeySet:
    """Validate the ``keys:`` list; ``secret_file`` paths are relative to *base*.

    Each entry is ``{name, algorithm?, secret}`` or ``{name, algorithm?,
    secret_file}``; the algorithm defaults to hmac-sha256, or to the one a
    BIND-style secret file names.
    """
    if data is None:
        return KeySet()
    if not isinstance(data, list):
        raise ConfigError(path, f"expected a list of keys, got {type(data).__name__}")
    keys: list[TsigKey] = []
    warnings: list[str] = []
    seen: dict[dns.name.Name, str] = {}
    for i, item in enumerate(data):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(p, f"expected a mapping, got {type(item).__name__}")
        for k in item:
            if k not in _KEY_FIELDS:
                allowed = ", ".join(sorted(_KEY_FIELDS))
                raise ConfigError(f"{p}.{k}", f"unknown key (allowed: {allowed})")
        if "name" not in item:
            raise ConfigError(f"{p}.name", "missing")
        name = parse_key_name(item["name"], f"{p}.name")
        if name in seen:
            raise ConfigError(
                f"{p}.name", f"duplicate key {echo(item['name'])} (also {seen[name]})"
            )
        seen[name] = p
        algorithm: str | None = None
        if "algorithm" in item:
            algorithm = parse_algorithm(item["algorithm"], f"{p}.algorithm")
        if "secret" in item and "secret_file" in item:
            raise ConfigError(p, "give either secret or secret_file, not both")
        if "secret" in item:
            secret = decode_secret(item["secret"], f"{p}.secret")
        elif "secret_file" in item:
            file_text = item["secret_file"]
            if not isinstance(file_text, str) or not file_text:
                raise ConfigError(f"{p}.secret_file", "expected a file path")
            algorithm, secret = _secret_from_file(
                name, algorithm, file_text, f"{p}.secret_file", base, read_file
            )
        else:
            raise ConfigError(p, "missing: secret or secret_file")
        algorithm = algorithm or DEFAULT_ALGORITHM
        if algorithm in LEGACY_ALGORITHMS:
            warnings.append(
                f"{p}.algorithm: {algorithm} is weak (RFC 8945 section 6); "
                "use it only for peers that cannot do hmac-sha256"
            )
        if len(secret) < DIGEST_SIZES[algorithm]:
            warnings.append(
                f"{p}: secret is {len(secret)} bytes, shorter than the "
                f"{DIGEST_SIZES[algorithm]}-byte {algorithm} output (RFC 2104 section 3)"
            )
        keys.append(TsigKey(name, algorithm, secret, p))
    return KeySet(tuple(keys), tuple(warnings))


def key_snippets(name: dns.name.Name | str, algorithm: str, secret: bytes) -> tuple[str, str]:
    """(YAML for authd's ``keys:``, BIND's ``key`` statement) for one key."""
    if isinstance(name, str):
        name = parse_key_name(name, "name")
    algorithm = parse_algorithm(algorithm, "algorithm")
    text = name.to_text(omit_final_dot=True)
    b64 = base64.b64encode(secret).decode("ascii")
    # Names are restricted to [A-Za-z0-9_.-] and base64 to [A-Za-z0-9+/=], so
    # neither needs escaping inside double quotes in YAML or named.conf.
    yaml_snippet = f'keys:\n  - name: "{text}"\n    algorithm: {algorithm}\n    secret: "{b64}"\n'
    bind_snippet = f'key "{text}" {{\n\talgorithm {algorithm};\n\tsecret "{b64}";\n}};\n'
    return yaml_snippet, bind_snippet


def peer_snippets(name: dns.name.Name | str, algorithm: str, secret: bytes) -> tuple[str, str]:
    """(Knot's ``key:`` section, NSD's ``key:`` clause) for one key."""
    if isinstance(name, str):
        name = parse_key_name(name, "name")
    algorithm = parse_algorithm(algorithm, "algorithm")
    text = name.to_text(omit_final_dot=True)
    b64 = base64.b64encode(secret).decode("ascii")
    knot = f"key:\n  - id: {text}\n    algorithm: {algorithm}\n    secret: {b64}\n"
    nsd = f'key:\n\tname: "{text}"\n\talgorithm: {algorithm}\n\tsecret: "{b64}"\n'
    return knot, nsd


def new_secret(algorithm: str) -> bytes:
    """A random secret as long as *algorithm*'s digest, from the OS's CSPRNG (impure)."""
    return secrets.token_bytes(DIGEST_SIZES[parse_algorithm(algorithm, "algorithm")])


def generate_key(name: str, algorithm: str = DEFAULT_ALGORITHM) -> tuple[str, str]:
    """A new random key as (YAML snippet, BIND snippet); the secret is digest-sized.

    The one impure function here: it draws from the OS's CSPRNG.
    """
    algorithm = parse_algorithm(algorithm, "algorithm")
    key_name = parse_key_name(name, "name")
    return key_snippets(key_name, algorithm, secrets.token_bytes(DIGEST_SIZES[algorithm]))
