"""One delegation judged across the zone cut: the parent's side against the child's.

Owns the cross-zone judgement both ``authd check`` (``authd.lint``, from zone
files) and ``authd lab check`` (``authd.labcheck``, from a running lab's
answers) make: do the parent's NS and the child's apex NS agree (RFC 1034
section 4.2.2), does every name server inside the child have glue, and does
that glue agree with the child's own addresses.  Each caller gathers the facts
its own way and words the result its own way (file:line, or the lab scenario);
the judgement is here once, so a fix to it reaches both commands.

Invariant: pure; names and (canonical) address strings in, a
``DelegationDiff`` out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.name

Name = dns.name.Name


@dataclass(frozen=True, slots=True)
class GlueMismatch:
    host: Name
    glue: frozenset[str]  # what the parent gives
    child: frozenset[str]  # what the child says (empty: nothing)


@dataclass(frozen=True, slots=True)
class DelegationDiff:
    """What disagrees across one cut; every field empty when it is healthy."""

    only_parent: tuple[Name, ...] = ()  # NS the parent lists and the child does not
    only_child: tuple[Name, ...] = ()
    missing_glue: tuple[Name, ...] = ()  # in-child name servers without glue
    glue_mismatch: tuple[GlueMismatch, ...] = ()

    @property
    def ns_differ(self) -> bool:
        return bool(self.only_parent or self.only_child)


def compare(
    cut: Name,
    parent_ns: Iterable[Name],
    glue: Mapping[Name, Iterable[str]],
    child_ns: Iterable[Name] | None,
    child_addresses: Mapping[Name, Iterable[str]],
) -> DelegationDiff:
    """Judge the delegation of *cut*.

    *glue* holds the parent's addresses per name server; *child_ns* is the
    child's apex NS set (None: unknown, no NS comparison); *child_addresses*
    the child's own addresses per name (a name absent: the child was not
    asked about it, so its glue is not compared).
    """
    parent = frozenset(parent_ns)
    missing = []
    mismatch = []
    for host in sorted(parent):
        if not host.is_subdomain(cut):
            continue  # glue is only needed (and only ours to judge) inside the child
        given = frozenset(glue.get(host, ()))
        if not given:
            missing.append(host)
            continue
        own = child_addresses.get(host)
        if own is None:
            continue
        own_set = frozenset(own)
        if given != own_set:  # dnspython canonicalises address text
            mismatch.append(GlueMismatch(host, given, own_set))
    only_parent: tuple[Name, ...] = ()
    only_child: tuple[Name, ...] = ()
    if child_ns is not None:
        child = frozenset(child_ns)
        only_parent = tuple(sorted(parent - child))
        only_child = tuple(sorted(child - parent))
    return DelegationDiff(only_parent, only_child, tuple(missing), tuple(mismatch))
