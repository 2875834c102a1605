"""Address match lists (BIND ACLs): parse, compile, and match.

Owns: the ``acls:`` config section, element lists that refer to it (a view's
``match_clients``, a zone's ``allow_transfer``), BIND's first-match semantics,
and the compiled matcher the query path asks.

Semantics, as BIND (ARM "Address Match Lists"; ``dns_acl_match`` in
lib/dns/acl.c):

- elements are tried in order and the first that matches decides: a plain
  element allows, a negated one (``!``) denies; if nothing matches, deny;
- a nested list (a named ACL, an inline list, ``localhost``, ``localnets``)
  matches only when it would *allow*.  If it denies, or nothing in it matches,
  evaluation goes on after it.  So ``!internal`` denies exactly the clients
  ``internal`` allows, and a deny inside a negated list never becomes an allow
  through double negation;
- ``any`` is the prefix 0/0 of both families; ``none`` is ``!any``, so it
  denies everything that reaches it (and ``!none`` is ``any``);
- ``key NAME`` matches requests signed with that TSIG key (RFC 8945);
- IPv4-mapped IPv6 clients (``::ffff:10.1.2.3``) are matched as IPv4, and
  mapped prefixes (``::ffff:10.0.0.0/104``) are stored as IPv4 ones; a plain
  IPv6 prefix such as ``::/0`` therefore does not match a mapped client;
- ``localhost`` is loopback (127.0.0.0/8, ::1) plus the host's addresses and
  ``localnets`` is loopback plus the host's interface networks.  Both sets
  are passed in at compile time (``HostInfo``) so this module does no I/O.

Invariants:

- ``parse_acl_config`` / ``parse_acl_list`` return only valid definitions:
  every reference resolves, there are no cycles, nesting is at most
  ``MAX_ACL_DEPTH``; otherwise ``ConfigError`` names the element's key path
  (``acls.internal[2]``).  Prefixes with host bits set are masked, with a
  warning, as BIND does;
- a ``CompiledAcl`` is immutable and never scans its element list.  The
  address elements of each family are flattened at compile time into sorted,
  disjoint intervals, each labelled with the first (lowest-index) element that
  covers it; a lookup is one ``bisect``.  Only the non-address elements (keys
  and nested lists) that come *before* that winner are tried, in order;
- every ``Match`` names the element that decided and a ``scope``: a prefix
  length such that every address sharing that many leading bits gets the same
  verdict (for the same key).  This is what an EDNS Client Subnet answer may
  claim (RFC 7871 section 7.2.1); it is safe, though not always minimal.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from heapq import heappop, heappush

import dns.name

from authd.errors import ConfigError, echo
from authd.keys import parse_key_name
from authd.limits import MAX_ACL_DEPTH

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Levels of nested lists (named references and inline lists).  Matching
# recurses once per level, so the bound keeps a hostile or mistaken config
# far from Python's recursion limit.

BUILTIN_ACLS = frozenset({"any", "none", "localhost", "localnets"})
LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
)

# ACL names: no '.', '/', ':' or '!' so a name can never be read as an address
# or a negation, and ``acls.NAME[3]`` stays an unambiguous key path.
_ACL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# BIND's abbreviated IPv4 prefixes: "10/8", "172.16/12", "192.168.1/24".
_SHORT_V4 = re.compile(r"\d{1,3}(\.\d{1,3}){0,2}")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class ElementKind(enum.Enum):
    PREFIX = "prefix"  # an address or CIDR prefix
    KEY = "key"  # key NAME
    ACL = "acl"  # a reference to a named ACL
    NESTED = "nested"  # an inline list
    ANY = "any"
    NONE = "none"
    LOCALHOST = "localhost"
    LOCALNETS = "localnets"


@dataclass(frozen=True, slots=True)
class AclElement:
    path: str  # key path in the config: ``acls.internal[2]``
    text: str  # canonical text: ``!10.0.0.0/8``, ``key xfr``, ``internal``
    negated: bool
    kind: ElementKind
    network: IPNetwork | None = None  # PREFIX
    key: dns.name.Name | None = None  # KEY
    name: str | None = None  # ACL
    nested: tuple[AclElement, ...] = ()  # NESTED


@dataclass(frozen=True, slots=True)
class AclDef:
    """A parsed, validated, not yet compiled list; ``name`` is None for inline lists."""

    name: str | None
    path: str
    elements: tuple[AclElement, ...]
    warnings: tuple[str, ...] = ()
    depth: int = 1  # levels of nesting, this list included


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What ``localhost`` and ``localnets`` mean on this host; gathered by an adapter."""

    local_addresses: tuple[IPAddress, ...] = ()
    local_networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    allowed: bool
    # The element of this list that decided; None when no element matched.
    element: AclElement | None
    # Length of the prefix that matched the client (followed into nested lists);
    # None when the decision did not come from an address element (key, default).
    prefix_len: int | None
    # Every address sharing this many leading bits with the client gets the same
    # verdict; relative to the family matched (mapped clients count as IPv4).
    scope: int
    inner: Match | None = None  # how a nested list decided, when one did

    def chain(self) -> tuple[AclElement, ...]:
        """The deciding elements from this list down into nested lists."""
        out: list[AclElement] = []
        m: Match | None = self
        while m is not None and m.element is not None:
            out.append(m.element)
            m = m.inner
        return tuple(out)

    def explain(self) -> str:
        verdict = "allow" if self.allowed else "deny"
        if self.element is None:
            return f"{verdict}: no element matched (scope /{self.scope})"
        steps = " -> ".join(f"{e.path} {echo(e.text)}" for e in self.chain())
        plen = "" if self.prefix_len is None else f", prefix /{self.prefix_len}"
        return f"{verdict} by {steps}{plen}, scope /{self.scope}"


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """One address-family prefix of an element, as stored in a table."""

    order: int  # index of the element in its list: lower wins
    element: AclElement
    prefix_len: int
    allow: bool


# (winner or None, run start, run end, trailing zero bits of the run start,
# trailing one bits of the run end): the run is the stretch of neighbouring
# intervals that give the same verdict; see _scope.
_Segment = tuple[_Entry | None, int, int, int, int]


@dataclass(frozen=True, slots=True, eq=False)
class _Table:
    bits: int
    starts: tuple[int, ...]  # sorted; starts[0] == 0, so every address has a segment
    segments: tuple[_Segment, ...]


@dataclass(frozen=True, slots=True, eq=False)
class _Other:
    """A non-address element, tried in order before the address winner."""

    order: int
    element: AclElement
    acl: CompiledAcl | None  # nested lists
    key_text: str | None  # key elements: lower-case text for a cheap compare


@dataclass(frozen=True, slots=True, eq=False)
class CompiledAcl:
    name: str | None
    path: str
    elements: tuple[AclElement, ...]
    warnings: tuple[str, ...]  # the definition's warnings plus dead elements
    _v4: _Table
    _v6: _Table
    _others: tuple[_Other, ...]

    def match(self, address: str | IPAddress, key: str | dns.name.Name | None = None) -> Match:
        """How this list decides for a client at *address* whose request was
        signed with TSIG key *key* (None: unsigned).  ValueError for a bad address."""
        v4, n = _client_address(address)
        key_text: str | None = None
        if key is not None:
            if isinstance(key, str):
                key = dns.name.from_text(key)
            key_text = key.to_text().lower()
        return self._match(v4, n, key_text)

    def allows(self, address: str | IPAddress, key: str | dns.name.Name | None = None) -> bool:
        return self.match(address, key).allowed

    def _match(self, v4: bool, n: int, key_text: str | None) -> Match:
        table = self._v4 if v4 else self._v6
        entry, lo, hi, lo_zeros, hi_ones = table.segments[bisect_right(table.starts, n) - 1]
        scope = _scope(n, lo, hi, lo_zeros, hi_ones, table.bits)
        limit = entry.order if entry is not None else len(self.elements)
        for other in self._others:
            if other.order >= limit:
                break
            el = other.element
            if other.acl is None:
                if key_text is not None and key_text == other.key_text:
                    return Match(not el.negated, el, None, scope)
            else:
                inner = other.acl._match(v4, n, key_text)
                # The verdict leaned on this nested list, so its scope counts too.
                scope = max(scope, inner.scope)
                if inner.allowed:
                    return Match(not el.negated, el, inner.prefix_len, scope, inner)
        if entry is None:
            return Match(False, None, None, scope)
        return Match(entry.allow, entry.element, entry.prefix_len, scope)


def _client_address(address: str | IPAddress) -> tuple[bool, int]:
    """(is IPv4, address as an integer), with IPv4-mapped IPv6 turned into IPv4."""
    if isinstance(address, str):
        # inet_pton is a pure text-to-bytes conversion (no I/O) and ten times
        # faster than ipaddress, which matters on the per-query path; ipaddress
        # handles what it refuses (zone indexes) and gives the error message.
        try:
            if ":" not in address:
                return True, int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
            n = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
        except OSError:
            n = int(ipaddress.ip_address(address))
            if n < 1 << 32 and ":" not in address:
                return True, n
    elif address.version == 4:
        return True, int(address)
    else:
        n = int(address)
    if n >> 32 == 0xFFFF:  # ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2)
        return True, n & 0xFFFFFFFF
    return False, n


def _scope(n: int, lo: int, hi: int, lo_zeros: int, hi_ones: int, bits: int) -> int:
    """The shortest prefix length whose aligned block around *n* fits in [lo, hi].

    Clearing the low k bits of n stays >= lo iff k is below the highest bit
    where n and lo differ, or lo's low k bits are zero anyway; symmetrically
    for setting them and hi.
    """
    k_lo = max((n ^ lo).bit_length() - 1, lo_zeros)
    k_hi = max((n ^ hi).bit_length() - 1, hi_ones)
    return bits - min(k_lo, k_hi, bits)


def _trailing_zeros(x: int, bits: int) -> int:
    return bits if x == 0 else (x & -x).bit_length() - 1


# ---------------------------------------------------------------- parsing


def _unmap_network(net: IPNetwork) -> IPNetwork:
    """``::ffff:a.b.c.d/96+n`` as ``a.b.c.d/n``: mapped clients are matched as IPv4."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        return ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    return net


def _looks_like_address(text: str) -> bool:
    return "/" in text or ":" in text or all(c.isdigit() or c == "." for c in text)


def _parse_prefix(text: str, path: str, warnings: list[str]) -> IPNetwork:
    address, slash, length = text.partition("/")
    bad = ConfigError(path, f"not an address or prefix: {echo(text)}")
    if slash:
        if not re.fullmatch(r"[0-9]{1,3}", length):
            raise bad
        if _SHORT_V4.fullmatch(address):
            address += ".0" * (3 - address.count("."))
    if "%" in address:  # a zone index is a property of a socket, not of a prefix
        raise bad
    try:
        iface = ipaddress.ip_interface(f"{address}/{length}" if slash else address)
    except ValueError:
        raise bad from None
    net = iface.network
    if iface.ip != net.network_address:
        # BIND masks silently; we mask too but say so, as it is usually a typo.
        warnings.append(f"{path}: {echo(text)} has host bits set; using {net}")
    return _unmap_network(net)


def _parse_element(
    value: object,
    path: str,
    names: Collection[str],
    known_keys: Collection[dns.name.Name] | None,
    warnings: list[str],
    level: int = 1,
) -> AclElement:
    if isinstance(value, list):
        # Checked while descending, so deep YAML cannot exhaust the stack here.
        _check_depth(level + 1, path)
        nested = tuple(
            _parse_element(v, f"{path}[{i}]", names, known_keys, warnings, level + 1)
            for i, v in enumerate(value)
        )
        text = "{ " + " ".join(f"{e.text};" for e in nested) + " }"
        return AclElement(path, text, False, ElementKind.NESTED, nested=nested)
    if not isinstance(value, str):
        raise ConfigError(
            path,
            f"expected an address match element (a string or a list), "
            f"got {type(value).__name__} {echo(value)}",
        )
    text = value.strip()
    negated = text.startswith("!")
    body = text[1:].strip() if negated else text
    bang = "!" if negated else ""
    if not body:
        raise ConfigError(path, f"empty element: {echo(value)}")
    if body.startswith("!"):
        raise ConfigError(path, f"double negation: {echo(value)}")
    word, *rest = body.split(None, 1)
    lower = body.lower()
    if word.lower() == "key":
        key_text = rest[0].strip() if rest else ""
        if len(key_text) >= 2 and key_text[0] == key_text[-1] == '"':
            key_text = key_text[1:-1]  # BIND writes key "name"
        if not key_text:
            raise ConfigError(path, f"'key' needs a key name: {echo(value)}")
        key = parse_key_name(key_text, path)
        if known_keys is not None and key not in known_keys:
            raise ConfigError(path, f"unknown key {echo(key_text)}")
        canonical = f"{bang}key {key.to_text(omit_final_dot=True)}"
        return AclElement(path, canonical, negated, ElementKind.KEY, key=key)
    if lower in BUILTIN_ACLS:
        return AclElement(path, f"{bang}{lower}", negated, ElementKind(lower))
    if _looks_like_address(body):
        net = _parse_prefix(body, path, warnings)
        host = "/" not in body and net.prefixlen == net.max_prefixlen
        shown = str(net.network_address) if host else str(net)
        return AclElement(path, f"{bang}{shown}", negated, ElementKind.PREFIX, network=net)
    if not _ACL_NAME.fullmatch(body):
        raise ConfigError(path, f"not an address, prefix, key or ACL name: {echo(value)}")
    if body not in names:
        some = sorted(names)
        known = ", ".join(some[:10]) + (", ..." if len(some) > 10 else "") or "none defined"
        raise ConfigError(path, f"unknown ACL {echo(body)} (known: {known})")
    return AclElement(path, f"{bang}{body}", negated, ElementKind.ACL, name=body)


def _parse_list(
    value: object,
    path: str,
    names: Collection[str],
    known_keys: Collection[dns.name.Name] | None,
    warnings: list[str],
) -> tuple[AclElement, ...]:
    if not isinstance(value, list):
        raise ConfigError(
            path, f"expected a list of address match elements, got {type(value).__name__}"
        )
    return tuple(
        _parse_element(v, f"{path}[{i}]", names, known_keys, warnings) for i, v in enumerate(value)
    )


def _depth(elements: tuple[AclElement, ...], depth_of: Callable[[AclElement], int]) -> int:
    depth = 1
    for el in elements:
        if el.kind is ElementKind.ACL:
            depth = max(depth, 1 + depth_of(el))
        elif el.kind is ElementKind.NESTED:
            depth = max(depth, 1 + _depth(el.nested, depth_of))
    return depth


def _check_depth(depth: int, path: str) -> None:
    if depth > MAX_ACL_DEPTH:
        raise ConfigError(path, f"nested {depth} levels deep; the limit is {MAX_ACL_DEPTH}")


def parse_acl_config(
    data: object,
    path: str = "acls",
    *,
    known_keys: Collection[dns.name.Name] | None = None,
) -> dict[str, AclDef]:
    """Validate ``acls: {NAME: [elements...]}``; definitions may refer to each
    other in any order.  With *known_keys*, ``key NAME`` must name one of them."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            path, f"expected a mapping of ACL names to lists, got {type(data).__name__}"
        )
    for name in data:
        where = f"{path}.{name}"
        if not isinstance(name, str) or not _ACL_NAME.fullmatch(name):
            raise ConfigError(
                where,
                f"not an ACL name: {echo(name)} (a letter or '_', then letters, digits, '_', '-')",
            )
        if name.lower() in BUILTIN_ACLS:
            raise ConfigError(where, f"{echo(name)} is built in and cannot be redefined")
        if name.lower() == "key":
            raise ConfigError(where, "'key' is reserved for key elements")
    names: set[str] = set(data)
    parsed: dict[str, tuple[tuple[AclElement, ...], tuple[str, ...]]] = {}
    for name, value in data.items():
        warnings: list[str] = []
        elements = _parse_list(value, f"{path}.{name}", names, known_keys, warnings)
        parsed[name] = (elements, tuple(warnings))

    depths: dict[str, int] = {}
    visiting: list[str] = []

    def depth_of(el: AclElement) -> int:
        name = el.name or ""
        if name in depths:
            return depths[name]
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise ConfigError(el.path, f"ACL cycle: {' -> '.join(cycle)}")
        # Refuse before recursing further: a long chain must not exhaust the stack.
        _check_depth(len(visiting) + 1, el.path)
        visiting.append(name)
        depth = _depth(parsed[name][0], depth_of)
        visiting.pop()
        _check_depth(depth, f"{path}.{name}")
        depths[name] = depth
        return depth

    out: dict[str, AclDef] = {}
    for name in data:
        start = AclElement(f"{path}.{name}", name, False, ElementKind.ACL, name=name)
        depth = depth_of(start)
        elements, warnings_ = parsed[name]
        out[name] = AclDef(name, f"{path}.{name}", elements, warnings_, depth)
    return out


def parse_acl_list(
    value: object,
    path: str,
    named: Mapping[str, AclDef],
    *,
    known_keys: Collection[dns.name.Name] | None = None,
) -> AclDef:
    """Validate an element list outside ``acls:`` (``views[0].match_clients``)."""
    warnings: list[str] = []
    elements = _parse_list(value, path, named.keys(), known_keys, warnings)
    depth = _depth(elements, lambda el: named[el.name or ""].depth)
    _check_depth(depth, path)
    return AclDef(None, path, elements, tuple(warnings), depth)


# --------------------------------------------------------------- compiling


def _address_networks(el: AclElement, host: HostInfo) -> list[IPNetwork]:
    """The prefixes an address-type element stands for."""
    kind = el.kind
    if kind is ElementKind.PREFIX:
        assert el.network is not None
        return [el.network]
    if kind is ElementKind.ANY or kind is ElementKind.NONE:
        return [ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0")]
    if kind is ElementKind.LOCALHOST:
        hosts = [ipaddress.ip_network(a) for a in host.local_addresses]
        return [_unmap_network(n) for n in (*LOOPBACK_NETWORKS, *hosts)]
    if kind is ElementKind.LOCALNETS:
        return [_unmap_network(n) for n in (*LOOPBACK_NETWORKS, *host.local_networks)]
    return []


def _build_table(
    entries: list[tuple[int, int, _Entry]], bits: int, other_orders: list[int]
) -> _Table:
    """Flatten (start, end, entry) ranges into disjoint intervals, each labelled
    with its lowest-order covering entry (BIND's first match), then group
    neighbouring intervals with the same verdict class into runs for _scope."""
    top = (1 << bits) - 1
    points = sorted({0, *(s for s, _, _ in entries), *(e + 1 for _, e, _ in entries if e < top)})
    by_start = sorted(entries, key=lambda t: t[0])
    # Heap ordered by (element order, longest prefix first); ties of one element
    # (localhost's several prefixes) report the most specific prefix.
    heap: list[tuple[int, int, int, int, _Entry]] = []
    starts: list[int] = []
    winners: list[_Entry | None] = []
    j = 0
    for point in points:
        while j < len(by_start) and by_start[j][0] <= point:
            s, e, entry = by_start[j]
            heappush(heap, (entry.order, -entry.prefix_len, j, e, entry))
            j += 1
        while heap and heap[0][3] < point:  # ended before this point
            heappop(heap)
        winner = heap[0][4] if heap else None
        if winners and winners[-1] is winner:
            continue
        starts.append(point)
        winners.append(winner)

    # A verdict class: the address verdict plus how many non-address elements
    # are tried before it.  Two clients of one class meet the same nested lists
    # and keys in the same order and then the same address verdict, so a run of
    # one class is uniform (given the nested lists' own scopes).
    n_others = len(other_orders)

    def verdict_class(w: _Entry | None) -> tuple[bool, int]:
        if w is None:
            return (False, n_others)
        return (w.allow, bisect_left(other_orders, w.order))

    classes = [verdict_class(w) for w in winners]
    ends = [s - 1 for s in starts[1:]] + [top]
    run_lo = list(starts)
    for i in range(1, len(starts)):
        if classes[i] == classes[i - 1]:
            run_lo[i] = run_lo[i - 1]
    run_hi = list(ends)
    for i in range(len(starts) - 2, -1, -1):
        if classes[i] == classes[i + 1]:
            run_hi[i] = run_hi[i + 1]
    segments = tuple(
        (w, lo, hi, _trailing_zeros(lo, bits), _trailing_zeros(hi + 1, bits) if hi < top else bits)
        for w, lo, hi in zip(winners, run_lo, run_hi, strict=True)
    )
    return _Table(bits, tuple(starts), segments)


def compile_acl(
    acl: AclDef, named: Mapping[str, CompiledAcl], host: HostInfo = HostInfo()
) -> CompiledAcl:
    """Compile *acl*; its references are looked up in *named* (see compile_acls)."""
    v4: list[tuple[int, int, _Entry]] = []
    v6: list[tuple[int, int, _Entry]] = []
    others: list[_Other] = []
    warnings = list(acl.warnings)
    for order, el in enumerate(acl.elements):
        kind = el.kind
        if kind is ElementKind.KEY:
            assert el.key is not None
            others.append(_Other(order, el, None, el.key.to_text().lower()))
        elif kind is ElementKind.ACL:
            inner = named.get(el.name or "")
            if inner is None:
                raise ConfigError(el.path, f"unknown ACL {echo(el.name)}")
            others.append(_Other(order, el, inner, None))
        elif kind is ElementKind.NESTED:
            inner = compile_acl(AclDef(None, el.path, el.nested), named, host)
            warnings.extend(inner.warnings)
            others.append(_Other(order, el, inner, None))
        else:
            # none is !any: it denies what reaches it, and !none allows.
            allow = el.negated if kind is ElementKind.NONE else not el.negated
            for net in _address_networks(el, host):
                entry = _Entry(order, el, net.prefixlen, allow)
                start = int(net.network_address)
                end = int(net.broadcast_address)
                (v4 if net.version == 4 else v6).append((start, end, entry))
    other_orders = [o.order for o in others]
    t4 = _build_table(v4, 32, other_orders)
    t6 = _build_table(v6, 128, other_orders)

    # Dead elements: the classic BIND mistake is a narrower element after a
    # broader one (``10/8; !10.1/16``), which then never decides.
    winning = {seg[0].order for t in (t4, t6) for seg in t.segments if seg[0] is not None}
    everywhere = all(seg[0] is not None for t in (t4, t6) for seg in t.segments)
    reach = max(winning) if everywhere and winning else len(acl.elements)
    for order, el in enumerate(acl.elements):
        if el.kind in (ElementKind.KEY, ElementKind.ACL, ElementKind.NESTED):
            if order > reach:
                warnings.append(
                    f"{el.path}: {echo(el.text)} is never reached: "
                    "earlier elements decide for every address"
                )
        elif order not in winning:
            warnings.append(
                f"{el.path}: {echo(el.text)} never decides: "
                "earlier elements match every address it covers"
            )
    return CompiledAcl(acl.name, acl.path, acl.elements, tuple(warnings), t4, t6, tuple(others))


def _references(elements: tuple[AclElement, ...]) -> Iterator[AclElement]:
    for el in elements:
        if el.kind is ElementKind.ACL:
            yield el
        elif el.kind is ElementKind.NESTED:
            yield from _references(el.nested)


def compile_acls(defs: Mapping[str, AclDef], host: HostInfo = HostInfo()) -> dict[str, CompiledAcl]:
    """Compile every named ACL once; lists that refer to one share its matcher."""
    out: dict[str, CompiledAcl] = {}
    visiting: set[str] = set()

    def get(name: str, path: str) -> None:
        if name in out:
            return
        if name in visiting or name not in defs:  # only for defs not from parse_acl_config
            raise ConfigError(path, f"unknown or cyclic ACL {echo(name)}")
        visiting.add(name)
        for ref in _references(defs[name].elements):
            get(ref.name or "", ref.path)
        out[name] = compile_acl(defs[name], out, host)
        visiting.discard(name)

    for name, acl in defs.items():
        get(name, acl.path)
    return {name: out[name] for name in defs}


def parse_acl_elements(
    value: object,
    path: str,
    named: Mapping[str, AclDef],
    *,
    host: HostInfo = HostInfo(),
    known_keys: Collection[dns.name.Name] | None = None,
) -> CompiledAcl:
    """Parse and compile one list in a single step (tests, one-off checks).

    It compiles the named ACLs afresh each call; to share one matcher between
    many lists, use ``compile_acls`` once and ``compile_acl`` per list.
    """
    acl = parse_acl_list(value, path, named, known_keys=known_keys)
    needed = {ref.name or "" for ref in _references(acl.elements)}
    pending = list(needed)
    while pending:
        for ref in _references(named[pending.pop()].elements):
            if ref.name and ref.name not in needed:
                needed.add(ref.name)
                pending.append(ref.name)
    compiled = compile_acls({n: d for n, d in named.items() if n in needed}, host)
    return compile_acl(acl, compiled, host)
