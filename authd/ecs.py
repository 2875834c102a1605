"""EDNS Client Subnet (RFC 7871) at an authoritative server.

Owns: reading the ECS option of a parsed query, deciding whether it may steer
view selection (only from sources in ``client_subnet.trusted``), the address
a view is then chosen by, and the option echoed in the response.  Pure.

Semantics (RFC 7871 section 7.2.1 unless noted):

- ECS is off unless ``client_subnet`` is configured.  Off, the option is
  ignored and never echoed ("Such a server MUST NOT include an ECS option
  within replies");
- on, every response to a query with ECS carries ECS with FAMILY, SOURCE
  PREFIX-LENGTH and ADDRESS copied from the query;
- from a trusted source with SOURCE PREFIX-LENGTH > 0, the view is chosen as
  if the query came from ADDRESS (already zero beyond SOURCE PREFIX-LENGTH,
  section 6), and SCOPE PREFIX-LENGTH is the selection's scope: every client
  sharing that many leading bits gets the same view.  It may exceed SOURCE
  PREFIX-LENGTH, which tells the resolver that its prefix was too short to
  pick one answer; it never exceeds the family's address length;
- from an untrusted source the option is ignored for selection (a resolver
  that did not send it cannot be made to see another view by forging it, the
  trust the section 7.1.3 forwarders discussion and section 11.3 ask for), and
  echoed with SCOPE PREFIX-LENGTH 0: the answer does not depend on ADDRESS;
- SOURCE PREFIX-LENGTH 0 means the client asked that no address be used
  (section 7.1.2): the transport source chooses the view and the scope is 0;
- ECS chooses answers, never access: ``allow_query``, ``allow_transfer`` and
  NOTIFY checks use the transport source, and transfers and NOTIFY ignore ECS;
- a malformed option is FORMERR ("A query with a wrongly formatted option
  (e.g., an unknown FAMILY) MUST be rejected").  dnspython's parser already
  refuses an unknown FAMILY, a prefix longer than the family, too few or too
  many ADDRESS octets and non-zero bits beyond SOURCE PREFIX-LENGTH (section
  6); here a non-zero SCOPE PREFIX-LENGTH in a query (section 6: "In queries,
  it MUST be set to 0", refused as BIND does) and a second ECS option are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.edns
import dns.name

from authd.acl import CompiledAcl

FAMILY_BITS = {1: 32, 2: 128}  # IANA address family numbers: IPv4, IPv6
_MAPPED_PREFIX = 96  # ::ffff:0:0/96 (RFC 4291 section 2.5.5.2)


class Malformed(ValueError):
    """An ECS option the query must be refused for (FORMERR)."""


@dataclass(frozen=True, slots=True)
class ClientSubnet:
    """The ECS option of one query, as far as this server uses it."""

    option: dns.edns.ECSOption
    trusted: bool  # the transport source is in client_subnet.trusted

    @property
    def steers(self) -> bool:
        """Whether the view is chosen by ADDRESS rather than the transport source."""
        return self.trusted and self.option.srclen > 0

    @property
    def address(self) -> str:
        """ADDRESS as text: the client network's address, zero beyond the prefix."""
        return str(self.option.address)

    def reply(self, scope: int) -> dns.edns.ECSOption:
        """The option for the response: the query's prefix with SCOPE *scope*."""
        opt = self.option
        if not self.steers:
            scope = 0
        elif opt.family == 2 and _is_mapped(opt.address):
            # Mapped clients are matched as IPv4, so their scope counts IPv4 bits.
            scope += _MAPPED_PREFIX
        return dns.edns.ECSOption(opt.address, opt.srclen, min(scope, FAMILY_BITS[opt.family]))


def _is_mapped(address: str) -> bool:
    ip = ipaddress.IPv6Address(address)
    return ip.ipv4_mapped is not None


def find(
    options: Sequence[dns.edns.Option],
    client: str,
    key: dns.name.Name | None,
    trusted: CompiledAcl | None,
) -> ClientSubnet | None:
    """The query's ECS, or None when it has none or ECS is off (*trusted* None).

    Raises ``Malformed`` for what section 6 forbids and dnspython let through.
    """
    if trusted is None:
        return None
    found: dns.edns.ECSOption | None = None
    for option in options:
        if option.otype != dns.edns.OptionType.ECS:
            continue
        if found is not None:
            raise Malformed("more than one ECS option")
        if not isinstance(option, dns.edns.ECSOption):  # pragma: no cover - dnspython parses it
            raise Malformed("unreadable ECS option")
        found = option
    if found is None:
        return None
    if found.scopelen != 0:
        raise Malformed(f"SCOPE PREFIX-LENGTH {found.scopelen} in a query (must be 0)")
    # Mapped transport addresses are matched as IPv4 inside the ACL.
    return ClientSubnet(found, trusted.allows(client, key))


def parse_prefix(text: str) -> dns.edns.ECSOption:
    """``10.1.2.0/24`` as the option a resolver would send (host bits cleared,
    as ``dig +subnet`` does); ValueError for anything else."""
    address, slash, length = text.partition("/")
    net = ipaddress.ip_network(f"{address}/{length}" if slash else address, strict=False)
    return dns.edns.ECSOption(str(net.network_address), net.prefixlen)
