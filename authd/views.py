"""Views: which view a client gets, why, and which views can never be chosen.

Owns: BIND's view order (the first view whose ``match_destinations`` and
``match_clients`` both match wins; none: REFUSED) with a record of every view
tried, the scope such a choice may claim in an EDNS Client Subnet answer, and
the config check for views shadowed by an earlier catch-all.  Pure: it works on
anything shaped like a view (``config.ViewConfig`` and ``snapshot.View`` both
are), so ``authd views explain`` and the server decide in one place.

Invariants:

- ``select`` returns the same view as ``Snapshot.select_view`` for the same
  client, local address and key (the fast path keeps its cheaper loop);
- ``Selection.scope`` is a prefix length such that every client address
  sharing that many leading bits with this one is given the same view: the
  largest ``Match.scope`` among the ``match_clients`` lists consulted, since
  any of them deciding otherwise would change the outcome.  Destination lists
  do not depend on the client and add nothing;
- ``shadowed_views`` only reports views that can truly never match (sound, not
  complete): an earlier view must accept every local address and every client
  of both families, whatever key it signs with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import dns.name

from authd.acl import CompiledAcl, ElementKind, Match
from authd.errors import echo


class ViewLike(Protocol):
    """What selection needs of a view (``ViewConfig`` and ``snapshot.View``)."""

    @property
    def name(self) -> str: ...

    @property
    def match_clients(self) -> CompiledAcl | None: ...

    @property
    def match_destinations(self) -> CompiledAcl | None: ...


V = TypeVar("V", bound=ViewLike)


@dataclass(frozen=True, slots=True)
class Tried:
    """One view consulted during selection, in order."""

    name: str
    index: int  # position in the view list
    destination: Match | None  # None: the view takes every local address
    clients: Match | None  # None: not consulted (destination refused) or every client
    matched: bool


@dataclass(frozen=True, slots=True)
class Selection(Generic[V]):
    view: V | None  # None: no view matches, REFUSED
    scope: int  # see the module invariants
    tried: tuple[Tried, ...]

    def explain(self) -> list[str]:
        """One line per view tried, then the verdict."""
        lines = []
        for t in self.tried:
            parts = []
            if t.destination is not None:
                parts.append(f"destination {t.destination.explain()}")
            if t.clients is not None:
                parts.append(f"clients {t.clients.explain()}")
            elif t.destination is None or t.destination.allowed:
                parts.append("clients: every client (no match_clients)")
            verdict = "matches" if t.matched else "does not match"
            lines.append(f"view {echo(t.name)} {verdict}: " + "; ".join(parts))
        if self.view is None:
            lines.append("no view matches: REFUSED")
        else:
            lines.append(f"view: {self.view.name}")
        return lines


def select(
    views: Sequence[V], client: str, local: str, key: dns.name.Name | None = None
) -> Selection[V]:
    """The first view that matches (BIND order), with how each view decided."""
    tried: list[Tried] = []
    scope = 0
    for index, view in enumerate(views):
        destination = None
        if view.match_destinations is not None:
            destination = view.match_destinations.match(local)
            if not destination.allowed:
                tried.append(Tried(view.name, index, destination, None, False))
                continue
        clients = None
        if view.match_clients is not None:
            clients = view.match_clients.match(client, key)
            scope = max(scope, clients.scope)
        matched = clients is None or clients.allowed
        tried.append(Tried(view.name, index, destination, clients, matched))
        if matched:
            return Selection(view, scope, tuple(tried))
    return Selection(None, scope, tuple(tried))


# Non-address elements that can turn an allow into a deny for some key:
# ``!key NAME`` denies that key, ``!list`` denies whatever the list allows.
_MAY_DENY_BY_KEY = frozenset({ElementKind.KEY, ElementKind.ACL, ElementKind.NESTED})


def allows_everyone(acl: CompiledAcl | None) -> bool:
    """True when *acl* allows every address of both families, signed or not.

    Sound, not complete: with no key the lowest address of each family must
    be allowed with scope 0 (so every address of that family is), and no
    top-level element may be a negated key or list, the only elements that
    can deny a signed request what an unsigned one gets.  Nested lists that
    only ever allow are fine; ones whose own scope is narrower (``[internal,
    any]``) are not recognised, which only costs a missed warning.
    """
    if acl is None:
        return True
    if any(e.negated and e.kind in _MAY_DENY_BY_KEY for e in acl.elements):
        return False
    for lowest in ("0.0.0.0", "::"):
        m = acl.match(lowest)
        if not m.allowed or m.scope != 0:
            return False
    return True


def shadowed_views(views: Sequence[ViewLike]) -> list[str]:
    """Warnings for views no query can reach: an earlier view takes every
    local address and every client (BIND's ``match-clients { any; }`` left
    in front of a more specific view)."""
    out = []
    catch_all: tuple[int, str] | None = None
    for index, view in enumerate(views):
        if catch_all is not None:
            earlier_index, earlier = catch_all
            out.append(
                f"views[{index}] {echo(view.name)} can never match: views[{earlier_index}] "
                f"{echo(earlier)} before it matches every client on every address"
            )
            continue
        if allows_everyone(view.match_destinations) and allows_everyone(view.match_clients):
            catch_all = (index, view.name)
    return out
