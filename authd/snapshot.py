"""Snapshots: everything a query needs, published as one immutable reference.

Owns: the views with their zone tables and IXFR journals, the options in
force, the answer cache that belongs to exactly that snapshot, and the pure
ways to derive one snapshot from another (``with_zone``, ``with_fresh_caches``).
Building one from a config lives in ``authd.build``; persisting what a build
decides lives in ``authd.adapters.state``.  Invariant: a query holds one
snapshot from start to end, so it never sees a mix of old and new zones; a
new snapshot starts with an empty cache, which is how the cache is invalidated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dns.name
import dns.tsig

from authd import cookies, fastpath, ratelimit
from authd.acl import CompiledAcl
from authd.answercache import AnswerCache
from authd.config import Options, ZoneConfig
from authd.journal import Journal
from authd.zone import ZoneVersion

if TYPE_CHECKING:
    from authd.assemble import QuickTable, WireTable

__all__ = [
    "CacheEntry",
    "Snapshot",
    "View",
    "allows_all",
    "with_fresh_caches",
    "with_zone",
]


# A cached response, its rate-limiting class, and what the metrics count its
# hits as (an authd.tally key; None with metrics off).
CacheEntry = tuple[bytes, ratelimit.Token, str | None]


@dataclass(frozen=True, slots=True, eq=False)
class View:
    name: str
    index: int  # position in the config, part of the answer-cache key
    zones: Mapping[dns.name.Name, ZoneVersion | None]  # None: failed to load -> SERVFAIL
    configs: Mapping[dns.name.Name, ZoneConfig] = field(default_factory=dict)
    journals: Mapping[dns.name.Name, Journal] = field(default_factory=dict)  # IXFR history
    match_clients: CompiledAcl | None = None  # None: every client
    match_destinations: CompiledAcl | None = None  # None: every local address
    # True when some zone limits allow_query: answers then depend on the client,
    # so the shared answer cache must not serve this view.
    restricted: bool = False

    def matches(self, client: str, local: str, key: dns.name.Name | None = None) -> bool:
        """Whether a query from *client* arriving on *local* belongs to this view."""
        if self.match_destinations is not None and not self.match_destinations.allows(local):
            return False
        return self.match_clients is None or self.match_clients.allows(client, key)


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    views: tuple[View, ...]
    options: Options
    generation: int = 0
    keyring: Mapping[dns.name.Name, dns.tsig.Key] = field(default_factory=dict)
    # Rendered responses keyed by question shape, with their rate-limiting
    # class; dropped with the snapshot.
    # At most options.answer_cache_entries entries each (CLOCK eviction).
    cache: AnswerCache[CacheEntry] = field(default_factory=AnswerCache)
    # Responses (less their ID) keyed by the exact query bytes (less the ID):
    # only when one view answers everybody alike and nothing is logged per query.
    front: AnswerCache[CacheEntry] | None = None
    # Sources whose EDNS Client Subnet chooses the view (RFC 7871); None: ECS off.
    client_subnet: CompiledAcl | None = None
    # Per view index: its zone table and that table's compiled zones by apex
    # key (authd.assemble), made on the first query; stale once the view's
    # zone table is another object.
    wire_tables: dict[
        int, tuple[Mapping[dns.name.Name, ZoneVersion | None], WireTable, QuickTable]
    ] = field(default_factory=dict)
    # The one view, when it answers every client alike (no ACL to evaluate).
    open_view: View | None = None
    # Response rate limiting: the buckets live across snapshots; None: off.
    limiter: ratelimit.Limiter | None = None
    # DNS cookie secrets (RFC 7873); None: cookies are off (or no secret yet).
    cookies: cookies.Secrets | None = None
    # The lean path for plain queries (authd.fastpath), bound to this snapshot's
    # caches and zones; None: every query takes authd.query.handle.
    fast: fastpath.FastAnswer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", fastpath.make(self))

    def view_zone(self, view: str, zone: dns.name.Name) -> ZoneVersion | None:
        """The version *view* serves for *zone*, if any."""
        for v in self.views:
            if v.name == view:
                return v.zones.get(zone)
        return None

    def select_view(self, client: str, local: str, key: dns.name.Name | None = None) -> View | None:
        """The first view that matches (BIND order); None: REFUSED."""
        for view in self.views:
            if view.matches(client, local, key):
                return view
        return None


def with_fresh_caches(snapshot: Snapshot) -> Snapshot:
    """*snapshot* with empty answer caches (a front cache only where it is safe)."""
    opts = snapshot.options
    only = snapshot.views[0] if len(snapshot.views) == 1 else None
    open_view = (
        only is not None
        and not only.restricted
        and only.match_destinations is None
        and (only.match_clients is None or allows_all(only.match_clients))
    )
    front: AnswerCache[CacheEntry] | None = None
    if open_view and not opts.query_log and opts.answer_cache_entries:
        front = AnswerCache()
    return dataclasses.replace(
        snapshot,
        cache=AnswerCache(),
        front=front,
        wire_tables={},
        open_view=only if open_view else None,
    )


def with_zone(
    snapshot: Snapshot,
    view: str,
    zone: dns.name.Name,
    version: ZoneVersion | None,
    journal: Journal | None,
    generation: int,
) -> Snapshot:
    """*snapshot* with one zone replaced in *view* and every view sharing it (in_view)."""
    views = []
    for v in snapshot.views:
        zc = v.configs.get(zone)
        if v.name == view or (zc is not None and zc.in_view == view):
            zones = dict(v.zones)
            zones[zone] = version
            journals = dict(v.journals)
            if journal is not None:
                journals[zone] = journal
            v = dataclasses.replace(v, zones=zones, journals=journals)
        views.append(v)
    return with_fresh_caches(
        dataclasses.replace(snapshot, views=tuple(views), generation=generation)
    )


def allows_all(acl: CompiledAcl) -> bool:
    """Whether *acl* is exactly ``any``: the client cannot change the answer."""
    return [e.text for e in acl.elements] == ["any"]
