"""Catalog zones at run time: builds that follow the catalogs a secondary interprets.

Owns: building a snapshot whose config includes the members of the
interpreted catalogs (``authd.catalog.expand``), for the first load and for
every reload, and the clean-up of a member's state once it is dropped.
Invariant: the config a build returns lists exactly the members of the
catalog copies its snapshot serves (a catalog loaded by the build itself,
at start say, is read and its members loaded in the same build), so a
restart brings the members back from the catalog's stored copy.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import dns.name

from authd import catalog
from authd.adapters.state import build_snapshot, remove_zone_state
from authd.build import ZoneLoadEvent
from authd.config import Config, ZoneConfig
from authd.snapshot import Snapshot

Gone = tuple[str, dns.name.Name, str]  # view, zone, its stored copy


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """How a build's catalog members differ from the config it replaces; worked
    out in the build's worker, so a catalog of 100,000 zones costs the
    reactor thread no set arithmetic."""

    added: tuple[catalog.MemberKey, ...] = ()
    gone: tuple[Gone, ...] = ()
    reset: tuple[tuple[str, ZoneConfig], ...] = ()


def changes(old: Config | None, new: Config) -> MemberChanges:
    if old is None or old is new:
        return MemberChanges()
    before, after = catalog.member_set(old), catalog.member_set(new)
    if before == after:
        return MemberChanges()
    known = {(view, zone) for view, _, zone, _, _ in before}
    added = sorted(
        (k for k in after - before if (k[0], k[2]) not in known), key=lambda k: (k[0], k[2])
    )
    return MemberChanges(tuple(added), tuple(dropped(old, new)), tuple(catalog.resets(old, new)))


# the config with members, its snapshot, the load events, the catalogs' problems,
# and how the members changed from the previous config
Built = tuple[Config, Snapshot, list[ZoneLoadEvent], tuple[str, ...], MemberChanges]


def build_expanded(
    base: Config,
    previous_config: Config | None,
    previous: Snapshot | None,
    generation: int,
    now: float,
    only: Collection[tuple[str, dns.name.Name]] | None = None,
    keep_config: bool = False,
) -> Built:
    """Build *base* plus its catalogs' members; the config, snapshot, events, problems.

    With *keep_config* (the config file was not read again) and the same
    members as *previous_config*, that very object is returned, so the caller
    sees no config change.
    """
    if not catalog.interpreted(base):
        snapshot, events = build_snapshot(base, previous, generation, now, only)
        return base, snapshot, events, (), changes(previous_config, base)
    problems: tuple[str, ...] = ()
    config = base
    if previous is not None:
        expansion = catalog.expand(base, catalog.catalogs_of(base, previous), previous_config)
        config, problems = expansion.config, expansion.problems
        if (
            keep_config
            and previous_config is not None
            and catalog.member_set(config) == catalog.member_set(previous_config)
        ):
            config = previous_config
    snapshot, events = build_snapshot(config, previous, generation, now, only)
    # A catalog this build loaded (at start, or new in the config) lists its
    # members only now: one more pass loads them.
    again = catalog.expand(base, catalog.catalogs_of(base, snapshot), config)
    if catalog.member_set(again.config) != catalog.member_set(config):
        config, problems = again.config, again.problems
        snapshot, more = build_snapshot(config, snapshot, generation, now, set())
        events = events + more
    return config, snapshot, events, problems, changes(previous_config, config)


def dropped(old: Config, new: Config) -> list[Gone]:
    """(view, zone, copy file) of the catalog members *old* served and *new* does not."""
    still = {(vc.name, zc.name) for vc in new.views for zc in vc.zones}
    return [
        (vc.name, zc.name, zc.file)
        for vc in old.views
        for zc in vc.zones
        if zc.from_catalog is not None and (vc.name, zc.name) not in still
    ]


def clean_up(config: Config, gone: Collection[Gone]) -> list[str]:
    """Remove the state of the dropped members; the files removed."""
    removed = []
    for view, zone, copy in gone:
        removed.extend(remove_zone_state(config, view, zone, copy))
    return removed
