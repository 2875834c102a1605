"""YAML configuration: parse, validate, and freeze into typed values.

Owns: the config schema and every default.  Invariant: ``load_config`` either
returns a fully valid ``Config`` or raises ``ConfigError`` whose ``path`` names
the offending key (``zones[2].file``) - nothing half-checked reaches the server.

Top-level ``zones:`` form one implicit view that matches every client, so the
rest of the server always deals in views.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.exception
import dns.name
import yaml

from authd import acl, checks, cookies, ratelimit
from authd.errors import ConfigError, echo, echo_key
from authd.keys import KeySet, parse_key_name, parse_keys
from authd.limits import (
    COOKIE_SECRET_LEN,
    DEFAULT_ANSWER_CACHE_ENTRIES,
    DEFAULT_JOURNAL_MAX_BYTES,
    DEFAULT_JOURNAL_MAX_ENTRIES,
    DEFAULT_MAX_RECORDS_PER_RRSET,
    DEFAULT_MAX_REFRESH,
    DEFAULT_MAX_RETRY,
    DEFAULT_MAX_ZONE_RECORDS,
    DEFAULT_MIN_REFRESH,
    DEFAULT_MIN_RETRY,
    DEFAULT_PORT,
    DEFAULT_RRL_IPV4_PREFIX,
    DEFAULT_RRL_IPV6_PREFIX,
    DEFAULT_RRL_RESPONSES_PER_SECOND,
    DEFAULT_RRL_SLIP,
    DEFAULT_RRL_TABLE_ENTRIES,
    DEFAULT_RRL_WINDOW,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_TCP_IDLE_TIMEOUT,
    DEFAULT_TCP_IO_TIMEOUT,
    DEFAULT_TCP_MAX_CONNECTIONS,
    DEFAULT_TCP_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_TSIG_FUDGE,
    DEFAULT_UDP_PAYLOAD_MAX,
    DEFAULT_UDP_RECEIVE_BUFFER,
    DEFAULT_UDP_SEND_BUFFER,
    MAX_CATALOG_GROUP_BYTES,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_NODES,
    MAX_LAB_SIGNING_BEHIND,
    MAX_MESSAGE,
    MAX_NSID_BYTES,
    MAX_PARENTAL_AGENTS,
    MAX_PORT,
    MAX_RRL_PER_SECOND,
    MAX_RRL_SLIP,
    MAX_RRL_TABLE_ENTRIES,
    MAX_RRL_WINDOW,
    MAX_UDP_SOCKET_BUFFER,
    MIN_EDNS_UDP_PAYLOAD,
    MIN_UDP_SOCKET_BUFFER,
)
from authd.signpolicy import SigningPolicy, parse_policies, parse_zone_dnssec

# Defaults and limits live in authd.limits, one place for all of them.
MAX_RECORDS_SETTING = 10**9  # the largest max_records/max_zone_records accepted
DEFAULT_VIEW = "default"
GENERATED_CATALOG = "<generated catalog>"  # the "file" of a catalog authd builds


@dataclass(frozen=True, slots=True)
class ListenConfig:
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where the Prometheus endpoint listens (``options.metrics``)."""

    address: str
    port: int


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Options:
    udp_payload_max: int = DEFAULT_UDP_PAYLOAD_MAX
    tcp_idle_timeout: float = DEFAULT_TCP_IDLE_TIMEOUT
    tcp_max_connections: int = DEFAULT_TCP_MAX_CONNECTIONS
    tcp_max_connections_per_client: int = DEFAULT_TCP_MAX_CONNECTIONS_PER_CLIENT
    tcp_io_timeout: float = DEFAULT_TCP_IO_TIMEOUT
    minimal_responses: bool = False
    minimal_any: bool = True
    nsid: str | None = None
    version: str | None = None  # CHAOS version.bind / version.server; REFUSED when None
    identity: str | None = None  # CHAOS id.server / hostname.bind; REFUSED when None
    query_log: bool = False
    answer_cache_entries: int = DEFAULT_ANSWER_CACHE_ENTRIES
    state_dir: str = "state"  # journals and secondary copies, relative to the config
    tsig_fudge: int = DEFAULT_TSIG_FUDGE
    journal_max_entries: int = DEFAULT_JOURNAL_MAX_ENTRIES
    journal_max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES
    min_refresh: float = DEFAULT_MIN_REFRESH
    max_refresh: float = DEFAULT_MAX_REFRESH
    min_retry: float = DEFAULT_MIN_RETRY
    max_retry: float = DEFAULT_MAX_RETRY
    transfer_timeout: float = 120.0
    notify_retries: int = 5
    notify_timeout: float = 2.0  # first wait for a NOTIFY answer; doubles on each retry
    control: str | None = None  # control socket; default <state_dir>/authd.ctl
    watch: bool = True  # reload zone files and the config when they change on disk
    reload_delay: float = 0.3  # seconds of quiet before a burst of edits is reloaded
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT  # SIGTERM: transfers in flight finish
    max_zone_records: int = DEFAULT_MAX_ZONE_RECORDS  # a zone's default max_records
    max_records_per_rrset: int = DEFAULT_MAX_RECORDS_PER_RRSET  # a zone's default, the same name
    metrics: MetricsConfig | None = None  # the Prometheus endpoint; None: off
    log_format: LogFormat = LogFormat.TEXT
    user: str | None = None  # drop to this user once the sockets are bound
    pidfile: str | None = None  # absolute once loaded (relative to the config)
    udp_receive_buffer: int = DEFAULT_UDP_RECEIVE_BUFFER  # bytes per UDP socket; 0: kernel's
    udp_send_buffer: int = DEFAULT_UDP_SEND_BUFFER
    rate_limit: ratelimit.Settings | None = None  # response rate limiting; None: off
    cookies: cookies.Settings = field(default_factory=cookies.Settings)  # RFC 7873: on
    include_root: str | None = None  # a zone's default include_root
    # LAB ONLY (top-level ``lab:``, accepted only in a config `authd lab up` wrote):
    # (local address, fault) pairs a lab server simulates: see query.lab_fault.
    lab_faults: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Remote:
    """A primary to transfer from, or a secondary to NOTIFY."""

    address: str
    port: int
    key: dns.name.Name | None  # TSIG key name, defined under keys:


@dataclass(frozen=True, slots=True, eq=False)
class ZoneConfig:
    name: dns.name.Name
    file: str  # absolute path; for a secondary, where its copy is kept
    key_path: str  # where it sits in the config, for messages
    type: ZoneType = field(default_factory=lambda: ZoneType.PRIMARY)
    primaries: tuple[Remote, ...] = ()
    allow_transfer: acl.CompiledAcl | None = None  # None: nobody
    allow_notify: acl.CompiledAcl | None = None  # None: nobody
    allow_query: acl.CompiledAcl | None = None  # None: everybody
    notify: NotifyMode = field(default_factory=lambda: NotifyMode.YES)
    also_notify: tuple[Remote, ...] = ()
    in_view: str | None = None  # shared with (loaded by) this earlier view
    serial: SerialPolicy = field(default_factory=lambda: SerialPolicy.KEEP)
    max_records: int = DEFAULT_MAX_ZONE_RECORDS  # a bigger file or transfer is refused
    max_records_per_rrset: int = DEFAULT_MAX_RECORDS_PER_RRSET  # and one with a bigger RRset
    include_root: str | None = None  # absolute; $INCLUDE must stay inside it (None: anywhere)
    # RFC 8976: a version whose apex ZONEMD (scheme 1, SHA-384/512) does not match is refused.
    zonemd_verify: bool = True
    # Catalog zones (RFC 9432), in Knot's terms: this zone is a catalog authd
    # generates or a catalog it interprets; a member names its catalog.
    catalog_role: CatalogRole | None = None
    catalog_zone: dns.name.Name | None = None  # the generated catalog listing this zone
    catalog_group: str | None = None  # its group property there
    # For an interpreted catalog: how its members are served (by group, or the default).
    catalog_template: MemberTemplate | None = None
    catalog_groups: Mapping[str, MemberTemplate] = field(default_factory=dict)
    from_catalog: dns.name.Name | None = None  # a member added by this interpreted catalog
    catalog_id: str | None = None  # and its unique id there (a new id resets the zone)
    lab_waive: frozenset[str] = frozenset()  # LAB ONLY: load errors served as warnings
    # LAB ONLY (expired-signatures scenario): the zone's signatures are dated
    # this many seconds in the past; key timing still follows the real clock.
    lab_signing_behind: int = 0
    # Inline signing (``dnssec: {policy: NAME}``): the file is unsigned, authd signs.
    dnssec: SigningPolicy | None = None
    # ``dnssec.parental_agents``: the parent's servers asked for a waiting KSK's DS.
    parental_agents: tuple[Remote, ...] = ()


class CatalogRole(enum.Enum):
    GENERATE = "generate"  # authd produces the catalog from the zones naming it
    INTERPRET = "interpret"  # a secondary catalog: its members become secondary zones


@dataclass(frozen=True, slots=True, eq=False)
class MemberTemplate:
    """How the members an interpreted catalog lists are served (Knot's catalog-template)."""

    primaries: tuple[Remote, ...]
    allow_notify: acl.CompiledAcl
    allow_transfer: acl.CompiledAcl | None = None
    allow_query: acl.CompiledAcl | None = None
    notify: NotifyMode = field(default_factory=lambda: NotifyMode.EXPLICIT)
    also_notify: tuple[Remote, ...] = ()
    max_records: int = DEFAULT_MAX_ZONE_RECORDS


@dataclass(frozen=True, slots=True, eq=False)
class ViewConfig:
    name: str
    zones: tuple[ZoneConfig, ...]
    match_clients: acl.CompiledAcl | None = None  # None: everybody
    match_destinations: acl.CompiledAcl | None = None  # None: any local address
    key_path: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Config:
    path: str | None
    listen: tuple[ListenConfig, ...]
    options: Options
    views: tuple[ViewConfig, ...]
    keys: KeySet = field(default_factory=KeySet)
    state_dir: str = "state"
    warnings: tuple[str, ...] = field(default=())
    # EDNS Client Subnet (RFC 7871): the sources whose ECS chooses the view; None: off.
    client_subnet: acl.CompiledAcl | None = None

    def zone_files(self) -> dict[tuple[str, dns.name.Name], ZoneConfig]:
        """Every zone keyed by (view name, zone name)."""
        return {(v.name, z.name): z for v in self.views for z in v.zones}


T = TypeVar("T")


def _expect(value: object, kind: type[T] | tuple[type, ...], path: str, what: str) -> T:
    # bool is an int in Python; a YAML `yes` must not pass as a port number.
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(path, f"expected {what}, got {echo(value)}")
    if not isinstance(value, kind):
        raise ConfigError(path, f"expected {what}, got {type(value).__name__} {echo(value)}")
    return value  # type: ignore[return-value]


def _mapping(value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
    m = _expect(value, dict, path or "config", "a mapping")
    for key in m:
        if key not in allowed:
            where = f"{path}.{echo_key(key)}" if path else echo_key(key)
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
        raise ConfigError(path, f"not an IP address: {echo(text)}") from None


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
        mapped = getattr(ipaddress.ip_address(address), "ipv4_mapped", None)
        if mapped is not None:
            # IPv6 sockets are IPV6_V6ONLY (so 0.0.0.0 and :: share a port):
            # a v4-mapped address would never see a packet.
            raise ConfigError(
                f"{p}.address", f"{address} is IPv4-mapped: listen on {mapped} instead"
            )
        port = _int_in(m.get("port", DEFAULT_PORT), f"{p}.port", 0, MAX_PORT)
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


def _socket_buffer(value: object, path: str) -> int:
    """Bytes of a UDP socket buffer: 0 (the kernel's default) or a sane size."""
    n = _int_in(value, path, 0, MAX_UDP_SOCKET_BUFFER)
    if 0 < n < MIN_UDP_SOCKET_BUFFER:
        raise ConfigError(path, f"0 (the kernel's default) or at least {MIN_UDP_SOCKET_BUFFER}")
    return n


def _opt_str(value: object, path: str) -> str | None:
    if value is None:
        return None
    return _expect(value, str, path, "a string or null")


def _parse_metrics(value: object, path: str) -> MetricsConfig | None:
    if value is None:
        return None
    m = _mapping(value, path, {"address", "port"})
    address = _parse_address(m.get("address", "127.0.0.1"), f"{path}.address")
    if "port" not in m:
        raise ConfigError(f"{path}.port", "missing")
    return MetricsConfig(address, _int_in(m["port"], f"{path}.port", 0, MAX_PORT))


def _parse_log_format(value: object, path: str) -> LogFormat:
    text = _expect(value, str, path, "text or json")
    try:
        return LogFormat(text)
    except ValueError:
        raise ConfigError(path, f"{echo(text)}: expected text or json") from None


_OPTION_PARSERS: dict[str, Callable[[object, str], object]] = {
    "udp_payload_max": lambda v, p: _int_in(v, p, MIN_EDNS_UDP_PAYLOAD, MAX_MESSAGE),
    "tcp_idle_timeout": lambda v, p: _seconds(v, p, 3600.0),
    "tcp_max_connections": lambda v, p: _int_in(v, p, 1, 1_000_000),
    "tcp_max_connections_per_client": lambda v, p: _int_in(v, p, 1, 1_000_000),
    "tcp_io_timeout": lambda v, p: _seconds(v, p, 60.0),
    "minimal_responses": lambda v, p: _expect(v, bool, p, "true or false"),
    "minimal_any": lambda v, p: _expect(v, bool, p, "true or false"),
    "nsid": _opt_str,
    "version": _opt_str,
    "identity": _opt_str,
    "query_log": lambda v, p: _expect(v, bool, p, "true or false"),
    "answer_cache_entries": lambda v, p: _int_in(v, p, 0, 10_000_000),
    "state_dir": lambda v, p: _expect(v, str, p, "a folder path"),
    "tsig_fudge": lambda v, p: _int_in(v, p, 0, 0xFFFF),  # a 16-bit field
    "journal_max_entries": lambda v, p: _int_in(v, p, 1, 1_000_000),
    "journal_max_bytes": lambda v, p: _int_in(v, p, 1024, 2**40),
    "min_refresh": lambda v, p: _seconds(v, p, 86400.0 * 28),
    "max_refresh": lambda v, p: _seconds(v, p, 86400.0 * 28),
    "min_retry": lambda v, p: _seconds(v, p, 86400.0 * 28),
    "max_retry": lambda v, p: _seconds(v, p, 86400.0 * 28),
    "transfer_timeout": lambda v, p: _seconds(v, p, 86400.0),
    "notify_retries": lambda v, p: _int_in(v, p, 0, 100),
    "notify_timeout": lambda v, p: _seconds(v, p, 600.0),
    "control": _opt_str,
    "watch": lambda v, p: _expect(v, bool, p, "true or false"),
    "reload_delay": lambda v, p: _seconds(v, p, 60.0),
    "shutdown_timeout": lambda v, p: _seconds(v, p, 3600.0),
    "max_zone_records": lambda v, p: _int_in(v, p, 1, MAX_RECORDS_SETTING),
    "max_records_per_rrset": lambda v, p: _int_in(v, p, 1, MAX_RECORDS_SETTING),
    "metrics": _parse_metrics,
    "log_format": _parse_log_format,
    "user": _opt_str,
    "pidfile": _opt_str,
    "udp_receive_buffer": _socket_buffer,
    "udp_send_buffer": _socket_buffer,
    # Parsed by _parse_rate_limit once the ACLs are known (``exempt`` is one).
    "rate_limit": lambda v, p: None,
    "cookies": lambda v, p: _parse_cookies(v, p),
    "include_root": _opt_str,
}

RATE_LIMIT_KEYS = {
    "responses_per_second",
    "errors_per_second",
    "nxdomains_per_second",
    "window",
    "slip",
    "ipv4_prefix_length",
    "ipv6_prefix_length",
    "exempt",
    "table_entries",
}


def _parse_rate_limit(value: object, ctx: _Context) -> ratelimit.Settings | None:
    """``options.rate_limit``: absent or null is off; a mapping (even ``{}``) is on."""
    if value is None:
        return None
    p = "options.rate_limit"
    m = _mapping(value, p, RATE_LIMIT_KEYS)
    per_second = {
        k: _int_in(m[k], f"{p}.{k}", 0, MAX_RRL_PER_SECOND)
        for k in ("responses_per_second", "errors_per_second", "nxdomains_per_second")
        if k in m
    }
    responses = per_second.get("responses_per_second", DEFAULT_RRL_RESPONSES_PER_SECOND)
    # As BIND: errors and NXDOMAIN are limited like other responses unless set.
    exempt = None
    if m.get("exempt") is not None:
        exempt = _acl(m["exempt"], f"{p}.exempt", ctx, [])
    return ratelimit.Settings(
        responses_per_second=responses,
        errors_per_second=per_second.get("errors_per_second", responses),
        nxdomains_per_second=per_second.get("nxdomains_per_second", responses),
        window=_int_in(m.get("window", DEFAULT_RRL_WINDOW), f"{p}.window", 1, MAX_RRL_WINDOW),
        slip=_int_in(m.get("slip", DEFAULT_RRL_SLIP), f"{p}.slip", 0, MAX_RRL_SLIP),
        ipv4_prefix_length=_int_in(
            m.get("ipv4_prefix_length", DEFAULT_RRL_IPV4_PREFIX),
            f"{p}.ipv4_prefix_length",
            8,
            32,
        ),
        ipv6_prefix_length=_int_in(
            m.get("ipv6_prefix_length", DEFAULT_RRL_IPV6_PREFIX),
            f"{p}.ipv6_prefix_length",
            16,
            128,
        ),
        exempt=exempt,
        table_entries=_int_in(
            m.get("table_entries", DEFAULT_RRL_TABLE_ENTRIES),
            f"{p}.table_entries",
            1,
            MAX_RRL_TABLE_ENTRIES,
        ),
    )


def _secret(value: object, path: str) -> bytes:
    text = _expect(value, str, path, f"{COOKIE_SECRET_LEN * 2} hex digits")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(path, "not hex digits") from None
    if len(raw) != COOKIE_SECRET_LEN:
        raise ConfigError(
            path,
            f"{len(raw)} bytes; a cookie secret is {COOKIE_SECRET_LEN} "
            f"({COOKIE_SECRET_LEN * 2} hex digits)",
        )
    return raw


def _parse_cookies(value: object, path: str) -> cookies.Settings:
    """``options.cookies``: true/false, or ``{secret, previous_secret}`` (on)."""
    if isinstance(value, bool):
        return cookies.Settings(enabled=value)
    m = _mapping(value, path, {"enabled", "secret", "previous_secret"})
    secret = _secret(m["secret"], f"{path}.secret") if m.get("secret") is not None else None
    previous = None
    if m.get("previous_secret") is not None:
        if secret is None:
            raise ConfigError(f"{path}.previous_secret", "needs a secret beside it")
        previous = _secret(m["previous_secret"], f"{path}.previous_secret")
    enabled = _expect(m.get("enabled", True), bool, f"{path}.enabled", "true or false")
    return cookies.Settings(enabled, secret, previous)


def _parse_options(value: object) -> Options:
    m = _mapping(value, "options", set(_OPTION_PARSERS))
    values = {key: _OPTION_PARSERS[key](v, f"options.{key}") for key, v in m.items()}
    nsid = values.get("nsid")
    if isinstance(nsid, str) and len(nsid.encode()) > MAX_NSID_BYTES:
        raise ConfigError("options.nsid", f"longer than {MAX_NSID_BYTES} bytes")
    return Options(**values)  # type: ignore[arg-type]


class ZoneType(enum.Enum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class SerialPolicy(enum.Enum):
    KEEP = "keep"  # the file's serial; a content change without an increase is refused
    INCREMENT = "increment"  # authd serves old + 1 on each content change
    UNIXTIME = "unixtime"  # seconds since the epoch (at least old + 1)
    DATESERIAL = "dateserial"  # YYYYMMDDnn (at least old + 1)


class NotifyMode(enum.Enum):
    YES = "yes"  # the zone's NS hosts and also_notify (BIND's notify yes)
    EXPLICIT = "explicit"  # only also_notify
    NO = "no"


def _parse_remote(value: object, path: str, keys: KeySet, default_port: int) -> Remote:
    if isinstance(value, str):
        value = {"address": value}
    m = _mapping(value, path, {"address", "port", "key"})
    if "address" not in m:
        raise ConfigError(f"{path}.address", "missing")
    address = _parse_address(m["address"], f"{path}.address")
    port = _int_in(m.get("port", default_port), f"{path}.port", 1, MAX_PORT)
    key = None
    if m.get("key") is not None:
        key = parse_key_name(m["key"], f"{path}.key")
        if keys.get(key) is None:
            raise ConfigError(f"{path}.key", f"no such key: {echo(m['key'])} (define it in keys:)")
    return Remote(address, port, key)


def _parse_remotes(value: object, path: str, keys: KeySet) -> tuple[Remote, ...]:
    items = _expect(value, list, path, "a list")
    return tuple(_parse_remote(v, f"{path}[{i}]", keys, 53) for i, v in enumerate(items))


ZONE_KEYS = {
    "name",
    "file",
    "type",
    "primaries",
    "allow_transfer",
    "allow_notify",
    "allow_query",
    "notify",
    "also_notify",
    "in_view",
    "serial",
    "max_records",
    "max_records_per_rrset",
    "include_root",
    "zonemd_verify",
    "catalog_role",
    "catalog_zone",
    "catalog_group",
    "catalog_template",
    "catalog_groups",
    "dnssec",
}
TEMPLATE_KEYS = {
    "primaries",
    "allow_transfer",
    "allow_notify",
    "allow_query",
    "notify",
    "also_notify",
    "max_records",
}


def _include_root(value: object, path: str, base: str) -> str | None:
    """The folder ``$INCLUDE`` is confined to, absolute and resolved; it must exist."""
    if value is None:
        return None
    text = _expect(value, str, path, "a folder path")
    folder = os.path.realpath(os.path.join(base, text))
    if not os.path.isdir(folder):
        raise ConfigError(path, f"not a folder: {echo(text)}")
    return folder


def _parse_zone_name(value: object, path: str) -> dns.name.Name:
    text = _expect(value, str, path, "a domain name")
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as e:
        raise ConfigError(path, f"not a domain name: {echo(text)} ({e})") from None


def _acl(value: object, path: str, ctx: _Context, default: list[str]) -> acl.CompiledAcl:
    defs = acl.parse_acl_list(
        default if value is None else value, path, ctx.acl_defs, known_keys=ctx.keys.names()
    )
    compiled = acl.compile_acl(defs, ctx.acls, ctx.host)
    # The definition's warnings plus the compiler's (elements that never decide);
    # not for our own defaults (two primaries on one address are no mistake).
    ctx.warnings.extend(compiled.warnings if value is not None else defs.warnings)
    return compiled


def _zone_limit(m: Mapping[str, Any], p: str, key: str, default: int) -> int:
    """A zone's record-count limit *key*, defaulting to the options' one."""
    return _int_in(m.get(key, default), f"{p}.{key}", 1, MAX_RECORDS_SETTING)


@dataclass(slots=True)
class _Context:
    base: str
    max_zone_records: int
    max_records_per_rrset: int
    include_root: str | None
    keys: KeySet
    acl_defs: dict[str, acl.AclDef]
    acls: dict[str, acl.CompiledAcl]
    host: acl.HostInfo
    state_dir: str
    warnings: list[str]
    views: dict[str, ViewConfig]
    policies: dict[str, SigningPolicy] = field(default_factory=dict)


_STATE_LABEL_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
VIEW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # also a folder name in state_dir


def state_file(state_dir: str, view: str, zone: dns.name.Name, suffix: str) -> str:
    """The file under *state_dir* for *view*'s *zone*: ``<view>/<zone><suffix>``.

    The zone part cannot contain a path separator or be ``.``/``..``: label
    bytes outside ``[a-z0-9-_]`` are written ``%XX`` (``a/b.example`` is
    ``a%2Fb.example``), labels are lowercased (names compare without case) and
    the root zone is ``@`` (a label ``@`` is ``%40``), so no two zones share a
    file.  View names are checked against VIEW_NAME by the config.
    """
    labels = [
        "".join(chr(b) if b in _STATE_LABEL_BYTES else f"%{b:02X}" for b in label.lower())
        for label in zone.labels
        if label
    ]
    return os.path.join(state_dir, view, (".".join(labels) or "@") + suffix)


def _parse_zones(value: object, path: str, ctx: _Context, view: str) -> tuple[ZoneConfig, ...]:
    items = _expect(value, list, path, "a list")
    out: list[ZoneConfig] = []
    seen: dict[dns.name.Name, str] = {}
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        m = _mapping(item, p, ZONE_KEYS)
        if "name" not in m:
            raise ConfigError(f"{p}.name", "missing")
        name = _parse_zone_name(m["name"], f"{p}.name")
        if name in seen:
            raise ConfigError(f"{p}.name", f"duplicate zone {name} (also {seen[name]})")
        seen[name] = p
        if "in_view" in m:
            out.append(_shared_zone(m, p, name, ctx))
            continue
        type_text = _expect(m.get("type", "primary"), str, f"{p}.type", "primary or secondary")
        try:
            ztype = ZoneType(type_text)
        except ValueError:
            raise ConfigError(
                f"{p}.type", f"expected primary or secondary, got {echo(type_text)}"
            ) from None
        keys = ctx.keys
        role = _catalog_role(m, p, ztype)
        primaries: tuple[Remote, ...] = ()
        if role is CatalogRole.GENERATE:
            for key in ("file", "primaries"):
                if key in m:
                    raise ConfigError(f"{p}.{key}", "a generated catalog has no " + key)
            file = GENERATED_CATALOG  # built in memory from its members, never read
        elif ztype is ZoneType.SECONDARY:
            if "primaries" not in m:
                raise ConfigError(f"{p}.primaries", "missing: a secondary zone needs primaries")
            primaries = _parse_remotes(m["primaries"], f"{p}.primaries", keys)
            if not primaries:
                raise ConfigError(f"{p}.primaries", "at least one primary is needed")
            if "file" in m:
                file_text = _expect(m["file"], str, f"{p}.file", "a file path")
                file = os.path.normpath(os.path.join(ctx.base, file_text))
            else:
                file = state_file(ctx.state_dir, view, name, ".zone")
        else:
            if "primaries" in m:
                raise ConfigError(f"{p}.primaries", "only a secondary zone has primaries")
            if "file" not in m:
                raise ConfigError(f"{p}.file", "missing")
            file_text = _expect(m["file"], str, f"{p}.file", "a file path")
            file = os.path.normpath(os.path.join(ctx.base, file_text))
            if not os.path.isfile(file):
                raise ConfigError(f"{p}.file", f"no such file: {file_text}")
            if not os.access(file, os.R_OK):
                raise ConfigError(f"{p}.file", f"not readable: {file_text}")
        notify_text = m.get("notify", "explicit")
        if isinstance(notify_text, bool):  # YAML reads a bare yes/no as a boolean
            notify_text = "yes" if notify_text else "no"
        try:
            notify = NotifyMode(_expect(notify_text, str, f"{p}.notify", "yes, explicit or no"))
        except ValueError:
            raise ConfigError(
                f"{p}.notify", f"expected yes, explicit or no, got {echo(notify_text)}"
            ) from None
        # A generated catalog's serial goes up whenever its member list changes.
        default_policy = "unixtime" if role is CatalogRole.GENERATE else "keep"
        policy_text = _expect(
            m.get("serial", default_policy), str, f"{p}.serial", "a serial policy"
        )
        try:
            policy = SerialPolicy(policy_text)
        except ValueError:
            allowed = ", ".join(x.value for x in SerialPolicy)
            raise ConfigError(
                f"{p}.serial", f"expected one of {allowed}, got {echo(policy_text)}"
            ) from None
        if policy is not SerialPolicy.KEEP and ztype is ZoneType.SECONDARY:
            raise ConfigError(f"{p}.serial", "a secondary serves its primary's serial")
        if policy is SerialPolicy.KEEP and role is CatalogRole.GENERATE:
            raise ConfigError(f"{p}.serial", "a generated catalog has no file serial to keep")
        out.append(
            ZoneConfig(
                **_catalog_fields(m, p, ctx, role, primaries),
                serial=policy,
                max_records=_zone_limit(m, p, "max_records", ctx.max_zone_records),
                max_records_per_rrset=_zone_limit(
                    m, p, "max_records_per_rrset", ctx.max_records_per_rrset
                ),
                include_root=(
                    _include_root(m["include_root"], f"{p}.include_root", ctx.base)
                    if "include_root" in m
                    else ctx.include_root
                ),
                zonemd_verify=_expect(
                    m.get("zonemd_verify", True), bool, f"{p}.zonemd_verify", "true or false"
                ),
                name=name,
                file=file,
                key_path=p,
                type=ztype,
                primaries=primaries,
                # RFC 5936 section 5: transfers only to those the operator names.
                allow_transfer=_acl(m.get("allow_transfer"), f"{p}.allow_transfer", ctx, ["none"]),
                # RFC 1996 section 3.10: NOTIFY only from the zone's primaries.
                allow_notify=_acl(
                    m.get("allow_notify"),
                    f"{p}.allow_notify",
                    ctx,
                    [r.address for r in primaries] or ["none"],
                ),
                allow_query=_acl(m.get("allow_query"), f"{p}.allow_query", ctx, ["any"]),
                notify=notify,
                also_notify=_parse_remotes(m.get("also_notify", []), f"{p}.also_notify", keys),
                dnssec=_zone_dnssec(m, p, ctx, ztype, role),
                parental_agents=_parental_agents(m, p, keys),
            )
        )
    _check_catalog_members(out)
    return tuple(out)


def _zone_dnssec(
    m: Mapping[str, Any], p: str, ctx: _Context, ztype: ZoneType, role: CatalogRole | None
) -> SigningPolicy | None:
    policy = parse_zone_dnssec(
        m.get("dnssec"), f"{p}.dnssec", ctx.policies, ztype is ZoneType.SECONDARY
    )
    if policy is not None and role is not None:
        raise ConfigError(f"{p}.dnssec", "catalog zones are not signed by authd")
    return policy


def _parental_agents(m: Mapping[str, Any], p: str, keys: KeySet) -> tuple[Remote, ...]:
    """``dnssec.parental_agents``: addresses (``{address, port}``) of the
    parent's servers, asked for the DS of a KSK that waits for it."""
    dnssec = m.get("dnssec")
    if not isinstance(dnssec, dict) or dnssec.get("parental_agents") is None:
        return ()
    path = f"{p}.dnssec.parental_agents"
    agents = _parse_remotes(dnssec["parental_agents"], path, keys)
    if len(agents) > MAX_PARENTAL_AGENTS:
        raise ConfigError(path, f"at most MAX_PARENTAL_AGENTS ({MAX_PARENTAL_AGENTS}) servers")
    for i, agent in enumerate(agents):
        if agent.key is not None:
            raise ConfigError(f"{path}[{i}].key", "DS queries are not signed (no TSIG here)")
    return agents


def _catalog_role(m: Mapping[str, Any], p: str, ztype: ZoneType) -> CatalogRole | None:
    if m.get("catalog_role") is None:
        for key in ("catalog_template", "catalog_groups"):
            if key in m:
                raise ConfigError(f"{p}.{key}", "only for a zone with catalog_role: interpret")
        return None
    text = _expect(m["catalog_role"], str, f"{p}.catalog_role", "generate or interpret")
    try:
        role = CatalogRole(text)
    except ValueError:
        raise ConfigError(
            f"{p}.catalog_role", f"expected generate or interpret, got {echo(text)}"
        ) from None
    if role is CatalogRole.GENERATE and ztype is not ZoneType.PRIMARY:
        raise ConfigError(f"{p}.catalog_role", "a generated catalog is a primary zone")
    if role is CatalogRole.INTERPRET and ztype is not ZoneType.SECONDARY:
        raise ConfigError(f"{p}.catalog_role", "an interpreted catalog is a secondary zone")
    if role is CatalogRole.GENERATE:
        for key in ("catalog_template", "catalog_groups"):
            if key in m:
                raise ConfigError(f"{p}.{key}", "only for a zone with catalog_role: interpret")
    for key in ("catalog_zone", "catalog_group"):
        if key in m:
            raise ConfigError(f"{p}.{key}", "a catalog zone is no member of a catalog")
    return role


def _group_name(value: object, path: str) -> str:
    text = _expect(value, str, path, "a group name")
    # RFC 9432 section 4.4.2: the group is one TXT string, at most 255 bytes.
    if not text or len(text.encode()) > MAX_CATALOG_GROUP_BYTES:
        raise ConfigError(path, f"a group name is 1 to {MAX_CATALOG_GROUP_BYTES} bytes")
    return text


def _template(
    value: object, p: str, ctx: _Context, primaries: tuple[Remote, ...]
) -> MemberTemplate:
    m = _mapping(value if value is not None else {}, p, TEMPLATE_KEYS)
    own = primaries
    if "primaries" in m:
        own = _parse_remotes(m["primaries"], f"{p}.primaries", ctx.keys)
        if not own:
            raise ConfigError(f"{p}.primaries", "at least one primary is needed")
    notify_text = m.get("notify", "explicit")
    if isinstance(notify_text, bool):
        notify_text = "yes" if notify_text else "no"
    try:
        notify = NotifyMode(_expect(notify_text, str, f"{p}.notify", "yes, explicit or no"))
    except ValueError:
        raise ConfigError(
            f"{p}.notify", f"expected yes, explicit or no, got {echo(notify_text)}"
        ) from None
    return MemberTemplate(
        primaries=own,
        allow_notify=_acl(
            m.get("allow_notify"), f"{p}.allow_notify", ctx, [r.address for r in own] or ["none"]
        ),
        allow_transfer=_acl(m.get("allow_transfer"), f"{p}.allow_transfer", ctx, ["none"]),
        allow_query=_acl(m.get("allow_query"), f"{p}.allow_query", ctx, ["any"]),
        notify=notify,
        also_notify=_parse_remotes(m.get("also_notify", []), f"{p}.also_notify", ctx.keys),
        max_records=_zone_limit(m, p, "max_records", ctx.max_zone_records),
    )


def _catalog_fields(
    m: Mapping[str, Any],
    p: str,
    ctx: _Context,
    role: CatalogRole | None,
    primaries: tuple[Remote, ...],
) -> dict[str, Any]:
    """The ZoneConfig fields of the catalog keys (catalog_role and friends)."""
    out: dict[str, Any] = {"catalog_role": role}
    if role is CatalogRole.INTERPRET:
        out["catalog_template"] = _template(
            m.get("catalog_template"), f"{p}.catalog_template", ctx, primaries
        )
        groups = _expect(m.get("catalog_groups", {}), dict, f"{p}.catalog_groups", "a mapping")
        out["catalog_groups"] = {
            _group_name(g, f"{p}.catalog_groups"): _template(
                t, f"{p}.catalog_groups.{g}", ctx, primaries
            )
            for g, t in groups.items()
        }
    if m.get("catalog_zone") is not None:
        out["catalog_zone"] = _parse_zone_name(m["catalog_zone"], f"{p}.catalog_zone")
    if m.get("catalog_group") is not None:
        if "catalog_zone" not in out:
            raise ConfigError(f"{p}.catalog_group", "a group needs catalog_zone")
        out["catalog_group"] = _group_name(m["catalog_group"], f"{p}.catalog_group")
    return out


def _check_catalog_members(zones: list[ZoneConfig]) -> None:
    """Each catalog_zone names a generated catalog of the same view (Knot's rule)."""
    generated = {z.name for z in zones if z.catalog_role is CatalogRole.GENERATE}
    for z in zones:
        if z.catalog_zone is not None and z.catalog_zone not in generated:
            raise ConfigError(
                f"{z.key_path}.catalog_zone",
                f"no zone {z.catalog_zone} with catalog_role: generate in this view",
            )


def _shared_zone(m: Mapping[str, Any], p: str, name: dns.name.Name, ctx: _Context) -> ZoneConfig:
    """A zone taken from an earlier view (BIND's in-view): compiled once, served by both."""
    extra = set(m) - {"name", "in_view"}
    if extra:
        raise ConfigError(f"{p}.{sorted(extra)[0]}", "a zone with in_view takes no other settings")
    other = _expect(m["in_view"], str, f"{p}.in_view", "a view name")
    view = ctx.views.get(other)
    if view is None:
        raise ConfigError(f"{p}.in_view", f"no earlier view named {echo(other)}")
    for zc in view.zones:
        if zc.name == name:
            return dataclasses.replace(zc, key_path=p, in_view=zc.in_view or other)
    raise ConfigError(f"{p}.in_view", f"view {echo(other)} has no zone {name}")


VIEW_KEYS = {"name", "match_clients", "match_destinations", "zones"}


def _parse_views(value: object, ctx: _Context) -> tuple[ViewConfig, ...]:
    items = _expect(value, list, "views", "a list")
    if not items:
        raise ConfigError("views", "at least one view is needed")
    for i, item in enumerate(items):
        p = f"views[{i}]"
        m = _mapping(item, p, VIEW_KEYS)
        for key in ("name", "zones"):
            if key not in m:
                raise ConfigError(f"{p}.{key}", "missing")
        name = _expect(m["name"], str, f"{p}.name", "a view name")
        if VIEW_NAME.fullmatch(name) is None:
            raise ConfigError(
                f"{p}.name",
                f"{echo(name)} is not a view name: 1 to 64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit (it names a folder under state_dir)",
            )
        if name in ctx.views:
            raise ConfigError(f"{p}.name", f"duplicate view {echo(name)}")
        match_clients = _acl(m.get("match_clients"), f"{p}.match_clients", ctx, ["any"])
        destinations = None
        if m.get("match_destinations") is not None:
            destinations = _acl(m["match_destinations"], f"{p}.match_destinations", ctx, [])
        zones = _parse_zones(m["zones"], f"{p}.zones", ctx, name)
        ctx.views[name] = ViewConfig(name, zones, match_clients, destinations, p)
    return tuple(ctx.views.values())


TOP_LEVEL_KEYS = {
    "listen",
    "options",
    "zones",
    "views",
    "keys",
    "acls",
    "client_subnet",
    "lab",
    "dnssec_policies",
}


# ------------------------------------------------- lab-only settings (authd lab)

#: Simulated server faults: no answer at all, no answer to a query with EDNS
#: (a DNS Flag Day middlebox), no answer over TCP (a UDP-only listener).
LAB_FAULTS = frozenset({"silent", "drop-edns", "udp-only"})
#: Load checks a lab may waive so a broken zone can be served; never others.
LAB_WAIVABLE = frozenset(
    {checks.LoaderCheck.GLUE_MISSING.value, checks.LoaderCheck.CNAME_AND_OTHER_DATA.value}
)


@dataclasses.dataclass(frozen=True, slots=True)
class _LabSettings:
    waive: frozenset[str] = frozenset()
    faults: tuple[tuple[str, str], ...] = ()
    signing_behind: Mapping[dns.name.Name, int] = field(default_factory=dict)


def _parse_lab(value: object, base: str) -> _LabSettings:
    """``lab: {lab_file, waive, faults, signing_clock}``: only in a config
    generated by ``authd lab up``, recognised by ``lab_file`` naming an existing
    lab.yaml beside it.  Anywhere else each lab-only key is refused with its path."""
    if value is None:
        return _LabSettings()
    m = _mapping(value, "lab", {"lab_file", "waive", "faults", "signing_clock"})
    lab_file = m.get("lab_file")
    is_lab = isinstance(lab_file, str) and os.path.isfile(os.path.join(base, lab_file))
    if lab_file is not None and not is_lab:
        raise ConfigError("lab.lab_file", f"no lab file {echo(lab_file)} beside the config")
    if not is_lab:
        for key in ("waive", "faults", "signing_clock"):
            if key in m:
                raise ConfigError(
                    f"lab.{key}",
                    "a lab-only setting: refused outside a lab config "
                    "(one `authd lab up` generated, whose lab.lab_file names its lab.yaml)",
                )
    waive = []
    for i, item in enumerate(_expect(m.get("waive", []), list, "lab.waive", "a list")):
        text = _expect(item, str, f"lab.waive[{i}]", "a check id")
        if text not in LAB_WAIVABLE:
            raise ConfigError(
                f"lab.waive[{i}]",
                f"{echo(text)} cannot be waived (only {', '.join(sorted(LAB_WAIVABLE))})",
            )
        waive.append(text)
    faults = []
    for i, item in enumerate(_expect(m.get("faults", []), list, "lab.faults", "a list")):
        p = f"lab.faults[{i}]"
        f = _mapping(item, p, {"address", "fault"})
        address = _parse_address(f.get("address"), f"{p}.address")
        fault = _expect(f.get("fault"), str, f"{p}.fault", "a fault name")
        if fault not in LAB_FAULTS:
            raise ConfigError(f"{p}.fault", f"expected one of {', '.join(sorted(LAB_FAULTS))}")
        faults.append((address, fault))
    behind: dict[dns.name.Name, int] = {}
    clocks = _expect(m.get("signing_clock", []), list, "lab.signing_clock", "a list")
    for i, item in enumerate(clocks):
        p = f"lab.signing_clock[{i}]"
        c = _mapping(item, p, {"zone", "behind"})
        zone_text = _expect(c.get("zone"), str, f"{p}.zone", "a zone name")
        try:
            zone = dns.name.from_text(zone_text)
        except dns.exception.DNSException as e:
            raise ConfigError(f"{p}.zone", f"not a domain name: {echo(zone_text)} ({e})") from None
        seconds = c.get("behind")
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ConfigError(f"{p}.behind", f"expected whole seconds, got {echo(seconds)}")
        if not 0 < seconds <= MAX_LAB_SIGNING_BEHIND:
            raise ConfigError(f"{p}.behind", f"expected 1 to {MAX_LAB_SIGNING_BEHIND} seconds")
        behind[zone] = seconds
    return _LabSettings(frozenset(waive), tuple(faults), behind)


# ----------------------------------------------- client_subnet and host facts


def _parse_client_subnet(value: object, ctx: _Context) -> acl.CompiledAcl | None:
    """``client_subnet: {trusted: [elements]}``; absent or null: ECS is off."""
    if value is None:
        return None
    m = _mapping(value, "client_subnet", {"trusted"})
    if "trusted" not in m:
        raise ConfigError("client_subnet.trusted", "missing: list the resolvers whose ECS is used")
    return _acl(m["trusted"], "client_subnet.trusted", ctx, [])


def _host_info(gathered: acl.HostInfo | None, listen: tuple[ListenConfig, ...]) -> acl.HostInfo:
    """What ``localhost``/``localnets`` mean: *gathered* from the host's interfaces
    by an adapter, plus the listen addresses; without it, the listen addresses."""
    listening = tuple(ipaddress.ip_address(lc.address) for lc in listen)
    if gathered is None:
        return acl.HostInfo(local_addresses=listening)
    extra = tuple(a for a in listening if a not in gathered.local_addresses)
    return dataclasses.replace(gathered, local_addresses=gathered.local_addresses + extra)


# ---------------------------------------------------------------- the whole


def config_from_dict(
    data: object, path: str | None, base: str, host: acl.HostInfo | None = None
) -> Config:
    """Validate parsed YAML *data*; relative paths are resolved against *base*.

    *host* is the host's interface addresses and networks (``localhost``,
    ``localnets``), gathered by the caller; None: the listen addresses only.
    """
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
    # An ``options:`` whose entries are all commented out reads as null: no options.
    options = _parse_options(m.get("options") or {})
    keys = parse_keys(m.get("keys"), "keys", base)
    acl_defs = acl.parse_acl_config(m.get("acls"), "acls", known_keys=keys.names())
    host = _host_info(host, listen)
    acls = acl.compile_acls(acl_defs, host)
    ctx = _Context(
        base=base,
        keys=keys,
        acl_defs=acl_defs,
        acls=acls,
        host=host,
        state_dir=os.path.normpath(os.path.join(base, options.state_dir)),
        max_zone_records=options.max_zone_records,
        max_records_per_rrset=options.max_records_per_rrset,
        include_root=_include_root(options.include_root, "options.include_root", base),
        # Compiled warnings: the definitions' plus elements that never decide.
        warnings=[*keys.warnings, *(w for c in acls.values() for w in c.warnings)],
        views={},
        policies=parse_policies(m.get("dnssec_policies")),
    )
    if "views" in m and "zones" in m:
        raise ConfigError(
            "zones", "top-level zones cannot be mixed with views; move them into a view"
        )
    if "views" in m:
        views = _parse_views(m["views"], ctx)
    elif "zones" in m:
        zones = _parse_zones(m["zones"], "zones", ctx, DEFAULT_VIEW)
        views = (ViewConfig(DEFAULT_VIEW, zones, _acl(None, "zones", ctx, ["any"]), None, ""),)
    else:
        raise ConfigError("zones", "missing: list the zones to serve (or define views)")
    client_subnet = _parse_client_subnet(m.get("client_subnet"), ctx)
    lab = _parse_lab(m.get("lab"), base)
    if lab.waive:  # lab only
        views = tuple(
            dataclasses.replace(
                v, zones=tuple(dataclasses.replace(z, lab_waive=lab.waive) for z in v.zones)
            )
            for v in views
        )
    for i, zone in enumerate(lab.signing_behind):  # lab only
        if not any(z.name == zone and z.dnssec is not None for v in views for z in v.zones):
            raise ConfigError(
                f"lab.signing_clock[{i}].zone", f"no zone {zone} signed by authd in the config"
            )
    if lab.signing_behind:
        views = tuple(
            dataclasses.replace(
                v,
                zones=tuple(
                    dataclasses.replace(z, lab_signing_behind=lab.signing_behind[z.name])
                    if z.name in lab.signing_behind and z.dnssec is not None
                    else z
                    for z in v.zones
                ),
            )
            for v in views
        )
    if lab.faults:  # lab only
        options = dataclasses.replace(options, lab_faults=lab.faults)
    raw_options = m.get("options") or {}
    if raw_options.get("rate_limit") is not None:
        rate_limit = _parse_rate_limit(raw_options["rate_limit"], ctx)
        options = dataclasses.replace(options, rate_limit=rate_limit)
    control = options.control or os.path.join(ctx.state_dir, "authd.ctl")
    options = dataclasses.replace(options, control=os.path.normpath(os.path.join(base, control)))
    if options.pidfile is not None:
        pidfile = os.path.normpath(os.path.join(base, options.pidfile))
        options = dataclasses.replace(options, pidfile=pidfile)
    return Config(
        path,
        listen,
        options,
        views,
        keys=keys,
        state_dir=ctx.state_dir,
        warnings=tuple(ctx.warnings),
        client_subnet=client_subnet,
    )


def load_config(path: str, host: acl.HostInfo | None = None) -> Config:
    """Read and validate the YAML config file at *path* (*host*: see config_from_dict)."""
    data = read_yaml(path)
    return config_from_dict(
        data, os.path.abspath(path), os.path.dirname(os.path.abspath(path)), host
    )


def read_yaml(path: str, *, before_error: bool = False) -> object:
    """The YAML document at *path*, within MAX_CONFIG_BYTES and MAX_CONFIG_NODES.

    A FIFO or device would block or never end, so only regular files are read.
    Aliases are allowed but counted as expanded: a "billion laughs" document is
    a few hundred bytes whose aliases expand to 10^9 nodes.

    *before_error*: a file that is not YAML gives the document of its lines
    before the error instead (a half-saved edit breaks at its end), when some
    do parse (``authd ctl`` finding the control socket of such a file).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO must not block
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError("", f"{path}: cannot read config: not a regular file")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError("", f"{path}: cannot read config: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError("", f"{path}: config larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("", f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        return _yaml_document(text, path)
    except _NotYaml as e:
        if not before_error:
            raise e.error from None
        lines, cut = text.split("\n"), e.line
        for _ in range(_PREFIX_TRIES):
            try:
                return _yaml_document("\n".join(lines[:cut]), path)
            except _NotYaml as again:
                cut = min(cut - 1, again.line)
            if cut <= 0:
                break
        raise e.error from None


_PREFIX_TRIES = 8  # shorter prefixes read_yaml(before_error=True) tries


class _NotYaml(Exception):
    def __init__(self, error: ConfigError, line: int) -> None:
        super().__init__(str(error))
        self.error, self.line = error, line


def _yaml_document(text: str, path: str) -> object:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_CONFIG_NODES:
            raise ConfigError(
                "",
                f"{path}: more than {MAX_CONFIG_NODES} YAML nodes once aliases are expanded "
                "(or an alias inside its own anchor)",
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        error = ConfigError("", f"{where}: not valid YAML: {e}")
        raise _NotYaml(error, mark.line if mark is not None else 0) from None
    except RecursionError:
        raise ConfigError("", f"{path}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in *root* with every alias expanded, counted without expanding them."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not counted yet
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done:
            if id(node) in open_nodes:
                return MAX_CONFIG_NODES + 1  # an alias inside its own anchor: endless
            open_nodes.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def bundled_root() -> str:
    """The folder holding the bundled ``zones/`` and ``etc/`` (the source checkout)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_config(host: acl.HostInfo | None = None) -> Config:
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
            return load_config(path, host)
    raise ConfigError("", f"no bundled config at {' or '.join(candidates)}; pass -c CONFIG")
