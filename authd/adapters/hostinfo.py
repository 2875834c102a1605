"""The host's interface addresses and networks, for ``localhost`` and ``localnets``.

Owns: asking the kernel which addresses and networks this host has, and
turning the answer into ``acl.HostInfo`` for config loading.  Two sources,
both local (netlink or procfs; nothing goes on the network):

- ``ip -j addr show`` (iproute2's JSON): every address with its prefix length;
- without ``ip``: ``/proc/net/if_inet6`` (IPv6 addresses with prefix lengths)
  and ``/proc/net/fib_trie`` (IPv4: ``/32 host LOCAL`` leaves are our
  addresses, ``link UNICAST`` leaves of other lengths our connected networks).

Invariant: gathering never fails the caller; whatever cannot be read is left
out (the listen addresses and loopback are always in, see ``config`` and
``acl``), and the parsers are pure functions of the text, tested on samples.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterable

from authd.acl import HostInfo, IPAddress, IPNetwork

IP_TIMEOUT = 5.0  # seconds for ``ip -j addr``; it answers in milliseconds
IF_INET6 = "/proc/net/if_inet6"
FIB_TRIE = "/proc/net/fib_trie"

_FIB_LEAF = re.compile(r"^\s*\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$")
_FIB_INFO = re.compile(r"^\s*/(\d+)\s+(\w+)\s+(\w+)")


def _host_info(pairs: Iterable[tuple[IPAddress, int]]) -> HostInfo:
    addresses: list[IPAddress] = []
    networks: list[IPNetwork] = []
    for address, prefixlen in pairs:
        if address not in addresses:
            addresses.append(address)
        net = ipaddress.ip_interface(f"{address}/{prefixlen}").network
        if net not in networks:
            networks.append(net)
    return HostInfo(local_addresses=tuple(addresses), local_networks=tuple(networks))


def parse_ip_json(text: str) -> HostInfo:
    """``ip -j addr show`` output as HostInfo; ValueError when it is not that."""
    pairs: list[tuple[IPAddress, int]] = []
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of interfaces")
    for link in data:
        for info in link.get("addr_info", []) if isinstance(link, dict) else []:
            if info.get("family") not in ("inet", "inet6") or "local" not in info:
                continue
            address = ipaddress.ip_address(str(info["local"]).partition("%")[0])
            pairs.append((address, int(info.get("prefixlen", address.max_prefixlen))))
    return _host_info(pairs)


def parse_proc(if_inet6: str, fib_trie: str) -> HostInfo:
    """``/proc/net/if_inet6`` and ``/proc/net/fib_trie`` texts as HostInfo."""
    pairs: list[tuple[IPAddress, int]] = []
    for line in if_inet6.splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        v6 = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        pairs.append((v6, int(fields[2], 16)))
    # Both tables (Main, Local) are read; duplicates are dropped.
    local_v4: list[ipaddress.IPv4Address] = []
    links: list[ipaddress.IPv4Network] = []
    leaf: ipaddress.IPv4Address | None = None
    for line in fib_trie.splitlines():
        m = _FIB_LEAF.match(line)
        if m:
            leaf = ipaddress.IPv4Address(m.group(1))
            continue
        info = _FIB_INFO.match(line)
        if info is None or leaf is None:
            continue
        plen, scope, kind = int(info.group(1)), info.group(2), info.group(3)
        if kind == "LOCAL" and plen == 32 and scope == "host":
            if leaf not in local_v4:
                local_v4.append(leaf)
        elif (kind == "UNICAST" and scope == "link") or kind == "LOCAL":
            # A connected network, or a whole local block (127.0.0.0/8 host LOCAL).
            net = ipaddress.IPv4Network((leaf, plen), strict=False)
            if net not in links:
                links.append(net)
    for address in local_v4:
        # An address's prefix length is that of the connected network holding it.
        covering = [n for n in links if address in n]
        plen = max((n.prefixlen for n in covering), default=32)
        pairs.append((address, plen))
    host = _host_info(pairs)
    extra = tuple(n for n in links if n not in host.local_networks)
    return HostInfo(host.local_addresses, host.local_networks + extra)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def gather_host_info() -> HostInfo:
    """This host's addresses and networks now (``ip -j addr``, else procfs)."""
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if ip is not None:
        try:
            done = subprocess.run(
                [ip, "-j", "addr", "show"],
                capture_output=True,
                text=True,
                timeout=IP_TIMEOUT,
                check=True,
            )
            return parse_ip_json(done.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass  # an old iproute2 without -j, or no netlink: try procfs
    return parse_proc(_read(IF_INET6), _read(FIB_TRIE))
