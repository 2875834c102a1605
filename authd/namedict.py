"""Name-keyed mappings that never grow in one long step.

Owns: ``NameDict``, a dict of ``dns.name.Name`` keys split over shards of
bounded size, and ``name_dict``, which picks it or a plain dict by size.

Why: CPython grows a dict by rebuilding its whole table in one C call, with
the GIL held.  At a million names that call takes 50-130 ms, and a reload
building such a table in a worker thread stalls the reactor thread (every
query) for that long.  Spread over shards of at most ``SHARD_SIZE`` entries,
each rebuild takes about a millisecond.  A shard is picked from the
case-folded name, so names that compare equal (DNS names are case-insensitive)
land in the same shard.  The number of shards is fixed when the table is
made, from the number of entries expected.

Small tables stay plain dicts: on the query path a dict lookup is cheaper
than any wrapper, and below ``SHARD_SIZE`` entries their growth is harmless.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from typing import TypeAlias, TypeVar, overload

import dns.name

V = TypeVar("V")
T = TypeVar("T")

#: Entries per shard: a table this size is rebuilt in about a millisecond.
SHARD_SIZE = 1 << 13

Name = dns.name.Name


def shard_count(expected: int) -> int:
    """The number of shards (a power of two) for about *expected* entries."""
    count = 1
    while count * SHARD_SIZE < expected:
        count *= 2
    return count


class NameDict(MutableMapping[Name, V]):
    """A mapping from DNS names to values, kept in shards of bounded size."""

    __slots__ = ("_shards", "_mask", "_popping")

    def __init__(self, expected: int) -> None:
        count = shard_count(expected)
        self._shards: list[dict[Name, V]] = [{} for _ in range(count)]
        self._mask = count - 1
        self._popping = 0  # where popitem looks first: emptying is linear, not quadratic

    def _shard(self, name: Name) -> dict[Name, V]:
        # bytes hash in C: far cheaper than Name.__hash__, a Python loop.
        return self._shards[hash(b".".join(name.labels).lower()) & self._mask]

    def __getitem__(self, name: Name) -> V:
        return self._shard(name)[name]

    @overload
    def get(self, name: Name) -> V | None: ...
    @overload
    def get(self, name: Name, default: V | T) -> V | T: ...
    def get(self, name: Name, default: object = None) -> object:
        return self._shard(name).get(name, default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, Name) and name in self._shard(name)

    def __setitem__(self, name: Name, value: V) -> None:
        self._shard(name)[name] = value

    def __delitem__(self, name: Name) -> None:
        del self._shard(name)[name]

    def __iter__(self) -> Iterator[Name]:
        # Not ``yield from``: CPython does not hand the GIL to a waiting thread
        # while it delegates to a C iterator, so list(self) would hold the GIL
        # for a whole shard (5 ms); a plain loop yields it between items.
        for shard in self._shards:
            for name in shard:  # noqa: UP028
                yield name

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def __bool__(self) -> bool:
        return any(self._shards)

    def keys(self) -> KeysView[Name]:
        return KeysView(self)

    def items(self) -> ItemsView[Name, V]:
        return _Items(self)

    def values(self) -> ValuesView[V]:
        return _Values(self)

    def popitem(self) -> tuple[Name, V]:
        shards = self._shards
        count = len(shards)
        for step in range(count):
            index = (self._popping + step) % count
            if shards[index]:
                self._popping = index
                return shards[index].popitem()
        raise KeyError("popitem(): NameDict is empty")

    def __eq__(self, other: object) -> bool:
        # Mapping's default builds a dict of each side: one long step again.
        if not isinstance(other, (dict, NameDict)) or len(self) != len(other):
            return False
        missing = object()
        return all(other.get(k, missing) == v for k, v in self.items())

    __hash__ = None  # type: ignore[assignment]

    def replaced(self, name: Name, value: V) -> NameDict[V]:
        """A copy with *name* set to *value*; only *name*'s shard is copied."""
        copy: NameDict[V] = NameDict.__new__(NameDict)
        copy._shards = list(self._shards)
        copy._mask = self._mask
        copy._popping = 0
        index = hash(b".".join(name.labels).lower()) & self._mask
        shard = dict(copy._shards[index])
        shard[name] = value
        copy._shards[index] = shard
        return copy

    def updated(self, changes: Mapping[Name, V]) -> NameDict[V]:
        """A copy with every name of *changes* set; only their shards are copied.

        The shards left alone are shared with this table (``shared_shards``).
        """
        copy: NameDict[V] = NameDict.__new__(NameDict)
        copy._shards = list(self._shards)
        copy._mask = self._mask
        copy._popping = 0
        copied: set[int] = set()
        for name, value in changes.items():
            index = hash(b".".join(name.labels).lower()) & self._mask
            if index not in copied:
                copy._shards[index] = dict(copy._shards[index])
                copied.add(index)
            copy._shards[index][name] = value
        return copy

    def shard_tables(self) -> list[dict[Name, V]]:
        """The shards themselves: two tables made by ``replaced``/``updated``
        share the shards neither changed, so only the unshared ones may be
        taken apart (``authd.adapters.memory.retire``)."""
        return self._shards

    def __repr__(self) -> str:
        return f"<NameDict of {len(self)} names in {len(self._shards)} shards>"


class _Items(ItemsView[Name, V]):
    # Straight from the shards: the generic view would look every key up again.
    def __iter__(self) -> Iterator[tuple[Name, V]]:
        for shard in self._mapping._shards:  # type: ignore[attr-defined]
            for item in shard.items():  # noqa: UP028 (see NameDict.__iter__)
                yield item


class _Values(ValuesView[V]):
    def __iter__(self) -> Iterator[V]:
        for shard in self._mapping._shards:  # type: ignore[attr-defined]
            for value in shard.values():  # noqa: UP028 (see NameDict.__iter__)
                yield value


#: What zone tables are: a plain dict when small, a ``NameDict`` when big.
NameMap: TypeAlias = "dict[Name, V] | NameDict[V]"


def name_dict(expected: int) -> NameMap[V]:
    """An empty name-keyed table for about *expected* entries."""
    if expected <= SHARD_SIZE:
        return {}
    return NameDict(expected)


def updated(table: NameMap[V], changes: Mapping[Name, V]) -> NameMap[V]:
    """A copy of *table* with every name of *changes* set, copying as little as it can."""
    if isinstance(table, NameDict):
        return table.updated(changes)
    copy = dict(table)
    copy.update(changes)
    return copy


def replaced(table: NameMap[V], name: Name, value: V) -> NameMap[V]:
    """A copy of *table* with *name* set to *value*, copying as little as it can."""
    if isinstance(table, NameDict):
        return table.replaced(name, value)
    copy = dict(table)
    copy[name] = value
    return copy


__all__ = [
    "SHARD_SIZE",
    "NameDict",
    "NameMap",
    "name_dict",
    "replaced",
    "shard_count",
    "updated",
]
