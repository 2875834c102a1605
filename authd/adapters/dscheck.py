"""Asking a zone's parental agents for its DS: has the parent the new KSK's DS yet?

Owns the DS queries of ``dnssec.parental_agents`` (RFC 7583 section 3.3.2's
"wait until the new DS is at the parent", as BIND's ``parental-agents``
does): one UDP query per agent (TCP when the answer is truncated), RD off,
each bounded by ``DS_CHECK_TIMEOUT``.  Blocking: the service runs it in a
worker thread.  Which KSKs count as seen is ``authd.parentds.seen_at_parent``.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authd.config import Remote
from authd.limits import DS_CHECK_TIMEOUT


class AgentError(Exception):
    """An agent did not answer the DS query usably (``address#port: reason``)."""


def ask(
    zone: dns.name.Name, agent: Remote, timeout: float = DS_CHECK_TIMEOUT
) -> dns.rrset.RRset | None:
    """The DS RRset *agent* serves for *zone* (None: NOERROR without one)."""
    query = dns.message.make_query(zone, dns.rdatatype.DS)
    query.flags &= ~dns.flags.RD  # the parent's own data, not a resolver's
    where = f"{agent.address}#{agent.port}"
    try:
        reply = dns.query.udp(query, agent.address, port=agent.port, timeout=timeout)
        if reply.flags & dns.flags.TC:
            reply = dns.query.tcp(query, agent.address, port=agent.port, timeout=timeout)
    except (dns.exception.DNSException, OSError) as e:
        raise AgentError(f"{where}: {e}") from None
    if reply.rcode() != dns.rcode.NOERROR:
        raise AgentError(f"{where}: {dns.rcode.to_text(reply.rcode())}")
    return reply.get_rrset(reply.answer, zone, dns.rdataclass.IN, dns.rdatatype.DS)


def ask_all(zone: dns.name.Name, agents: Sequence[Remote]) -> list[dns.rrset.RRset | None]:
    """Every agent's DS RRset for *zone*; raises ``AgentError`` for the first that fails."""
    return [ask(zone, agent) for agent in agents]


__all__ = ["AgentError", "ask", "ask_all"]
