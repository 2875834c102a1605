"""YAML configuration: parse, validate, and freeze into typed values.

Owns: the config schema and every default.  Invariant: ``load_config`` either
returns a fully valid ``Config`` or raises ``ConfigError`` whose ``path`` names
the offending key (``zones[2].file``) - nothing half-checked reaches the server.

Top-level ``zones:`` form one implicit view that matches every client, so the
rest of the server always deals in views.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.exception
import dns.name
import yaml

from authd.errors import ConfigError

# Limits with their defaults; each is a config value under ``options``.
DEFAULT_PORT = 5300
DEFAULT_UDP_PAYLOAD_MAX = 1232  # the DNS flag day 2020 value: no IP fragmentation
DEFAULT_TCP_IDLE_TIMEOUT = 10.0
DEFAULT_TCP_MAX_CONNECTIONS = 1000
DEFAULT_ANSWER_CACHE_ENTRIES = 100_000
MIN_UDP_PAYLOAD = 512  # RFC 6891 section 6.2.5: smaller values are treated as 512


@dataclass(frozen=True, slots=True)
class ListenConfig:
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Options:
    udp_payload_max: int = DEFAULT_UDP_PAYLOAD_MAX
    tcp_idle_timeout: float = DEFAULT_TCP_IDLE_TIMEOUT
    tcp_max_connections: int = DEFAULT_TCP_MAX_CONNECTIONS
    minimal_responses: bool = False
    minimal_any: bool = True
    nsid: str | None = None
    version: str | None = None  # CHAOS version.bind / version.server; REFUSED when None
    identity: str | None = None  # CHAOS id.server / hostname.bind; REFUSED when None
    query_log: bool = False
    answer_cache_entries: int = DEFAULT_ANSWER_CACHE_ENTRIES


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    name: dns.name.Name
    file: str  # absolute path
    key_path: str  # where it sits in the config, for messages


@dataclass(frozen=True, slots=True)
class ViewConfig:
    name: str
    zones: tuple[ZoneConfig, ...]


@dataclass(frozen=True, slots=True)
class Config:
    path: str | None
    listen: tuple[ListenConfig, ...]
    options: Options
    views: tuple[ViewConfig, ...]
    warnings: tuple[str, ...] = field(default=())

    def zone_files(self) -> dict[tuple[str, dns.name.Name], ZoneConfig]:
        """Every zone keyed by (view name, zone name)."""
        return {(v.name, z.name): z for v in self.views for z in v.zones}


T = TypeVar("T")


def _expect(value: object, kind: type[T] | tuple[type, ...], path: str, what: str) -> T:
    # bool is an int in Python; a YAML `yes` must not pass as a port number.
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(path, f"expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(path, f"expected {what}, got {type(value).__name__} {value!r}")
    return value  # type: ignore[return-value]


def _mapping(value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
    m = _expect(value, dict, path or "config", "a mapping")
    for key in m:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return m


def _int_in(value: object, path: str, lo: int, hi: int) -> int:
    n = _expect(value, int, path, "an integer")
    if not lo <= n <= hi:
        raise ConfigError(path, f"{n} is out of range {lo}..{hi}")
    return n


def _parse_address(value: object, path: str) -> str:
    text = _expect(value, str, path, "an IP address")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConfigError(path, f"not an IP address: {text!r}") from None


def _parse_listen(value: object, path: str) -> tuple[ListenConfig, ...]:
    items = _expect(value, list, path, "a list")
    out = []
    seen: set[tuple[str, int]] = set()
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        m = _mapping(item, p, {"address", "port"})
        if "address" not in m:
            raise ConfigError(f"{p}.address", "missing")
        address = _parse_address(m["address"], f"{p}.address")
        port = _int_in(m.get("port", DEFAULT_PORT), f"{p}.port", 0, 65535)
        if (address, port) in seen:
            raise ConfigError(p, f"duplicate listen address {address} port {port}")
        seen.add((address, port))
        out.append(ListenConfig(address, port))
    if not out:
        raise ConfigError(path, "at least one listen address is needed")
    return tuple(out)


def _seconds(value: object, path: str, hi: float) -> float:
    n = float(_expect(value, (int, float), path, "a number of seconds"))
    if not 0 < n <= hi:
        raise ConfigError(path, f"{n:g} is out of range (0, {hi:g}] seconds")
    return n


def _opt_str(value: object, path: str) -> str | None:
    if value is None:
        return None
    return _expect(value, str, path, "a string or null")


_OPTION_PARSERS: dict[str, Callable[[object, str], object]] = {
    "udp_payload_max": lambda v, p: _int_in(v, p, MIN_UDP_PAYLOAD, 65535),
    "tcp_idle_timeout": lambda v, p: _seconds(v, p, 3600.0),
    "tcp_max_connections": lambda v, p: _int_in(v, p, 1, 1_000_000),
    "minimal_responses": lambda v, p: _expect(v, bool, p, "true or false"),
    "minimal_any": lambda v, p: _expect(v, bool, p, "true or false"),
    "nsid": _opt_str,
    "version": _opt_str,
    "identity": _opt_str,
    "query_log": lambda v, p: _expect(v, bool, p, "true or false"),
    "answer_cache_entries": lambda v, p: _int_in(v, p, 0, 10_000_000),
}


def _parse_options(value: object) -> Options:
    m = _mapping(value, "options", set(_OPTION_PARSERS))
    values = {key: _OPTION_PARSERS[key](v, f"options.{key}") for key, v in m.items()}
    nsid = values.get("nsid")
    if isinstance(nsid, str) and len(nsid.encode()) > 512:
        raise ConfigError("options.nsid", "longer than 512 bytes")
    return Options(**values)  # type: ignore[arg-type]


def _parse_zones(value: object, path: str, base: str) -> tuple[ZoneConfig, ...]:
    items = _expect(value, list, path, "a list")
    out: list[ZoneConfig] = []
    seen: dict[dns.name.Name, str] = {}
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        m = _mapping(item, p, {"name", "file"})
        for key in ("name", "file"):
            if key not in m:
                raise ConfigError(f"{p}.{key}", "missing")
        text = _expect(m["name"], str, f"{p}.name", "a domain name")
        try:
            name = dns.name.from_text(text)
        except dns.exception.DNSException as e:
            raise ConfigError(f"{p}.name", f"not a domain name: {text!r} ({e})") from None
        if name in seen:
            raise ConfigError(f"{p}.name", f"duplicate zone {name} (also {seen[name]})")
        seen[name] = p
        file_text = _expect(m["file"], str, f"{p}.file", "a file path")
        file = os.path.normpath(os.path.join(base, file_text))
        if not os.path.isfile(file):
            raise ConfigError(f"{p}.file", f"no such file: {file_text}")
        if not os.access(file, os.R_OK):
            raise ConfigError(f"{p}.file", f"not readable: {file_text}")
        out.append(ZoneConfig(name, file, p))
    return tuple(out)


TOP_LEVEL_KEYS = {"listen", "options", "zones"}


def config_from_dict(data: object, path: str | None, base: str) -> Config:
    """Validate parsed YAML *data*; relative paths are resolved against *base*."""
    if data is None:
        data = {}
    m = _mapping(data, "", TOP_LEVEL_KEYS)
    listen = _parse_listen(
        m.get(
            "listen",
            [
                {"address": "127.0.0.1", "port": DEFAULT_PORT},
                {"address": "::1", "port": DEFAULT_PORT},
            ],
        ),
        "listen",
    )
    options = _parse_options(m.get("options", {}))
    if "zones" not in m:
        raise ConfigError("zones", "missing: list the zones to serve")
    zones = _parse_zones(m["zones"], "zones", base)
    return Config(path, listen, options, (ViewConfig("default", zones),))


def load_config(path: str) -> Config:
    """Read and validate the YAML config file at *path*."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError("", f"{path}: cannot read config: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ConfigError("", f"{where}: not valid YAML: {e}") from None
    return config_from_dict(data, os.path.abspath(path), os.path.dirname(os.path.abspath(path)))


def bundled_root() -> str:
    """The folder holding the bundled ``zones/`` and ``etc/`` (the source checkout)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_config() -> Config:
    """The bundled default: every example zone in ``zones/`` on loopback port 5300.

    ``etc/authd.yaml`` is looked for in the current folder, then in the source
    checkout the package was installed from (``pip install -e .``).
    """
    candidates = [
        os.path.join("etc", "authd.yaml"),
        os.path.join(bundled_root(), "etc", "authd.yaml"),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return load_config(path)
    raise ConfigError("", f"no bundled config at {' or '.join(candidates)}; pass -c CONFIG")
