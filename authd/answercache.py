"""A bounded cache of rendered responses, evicting by CLOCK (second chance).

Owns: the table behind ``Snapshot.cache`` and ``Snapshot.front``: key ->
response (with its rate-limiting class), at most *capacity* entries, where
capacity is the snapshot's ``options.answer_cache_entries`` (given on every
insert, so a snapshot built without a cache of its own still obeys its
options).

CLOCK approximates LRU without writing on a hit anything but one byte: each
slot of a ring has a "referenced" bit that a hit sets; an insert into a full
cache moves the hand over the ring, clearing set bits (a second chance), and
takes the first slot whose bit was clear.  A new entry starts unreferenced, so
a question asked once (a random-subdomain flood) is the first to go, while the
popular ones survive a flood of one-off questions.

Invariants: never more than *capacity* entries; an insert into a full cache
evicts exactly one entry; no operation is a whole-cache clear, and the hand's
sweep runs in C (``bytearray.find`` and a slice assignment), so an insert
costs microseconds even when every slot is referenced; ``popitem`` lets an old
cache be emptied an entry at a time off the reactor thread
(``authd.adapters.memory``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["AnswerCache"]

V = TypeVar("V")


class AnswerCache(Generic[V]):
    """key -> V (a response, with what goes along), bounded; CLOCK eviction.

    Not thread-safe: the reactor's alone.
    """

    __slots__ = ("_hand", "_keys", "_ref", "_slots", "_values")

    def __init__(self) -> None:
        self._slots: dict[Hashable, int] = {}  # key -> its slot in the ring
        self._keys: list[Hashable] = []  # slot -> key
        self._values: list[V] = []  # slot -> response
        self._ref = bytearray()  # slot -> 1 when hit since the hand last passed
        self._hand = 0  # the next slot the clock considers

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def __iter__(self) -> Iterator[Hashable]:
        """The keys, in ring order (not recency)."""
        return iter(list(self._keys))

    def values(self) -> list[V]:
        """The cached responses, in ring order."""
        return list(self._values)

    def get(self, key: Hashable) -> V | None:
        """The response cached for *key* (marking it recently used), or None."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        self._ref[slot] = 1
        return self._values[slot]

    def parts(self) -> tuple[dict[Hashable, int], list[V], bytearray]:
        """The key -> slot table, the slots' values and their referenced bits,
        for a hot loop that inlines ``get`` (authd.fastpath): each is changed
        in place and never replaced, so what this returns stays current."""
        return self._slots, self._values, self._ref

    def put(self, key: Hashable, value: V, capacity: int) -> None:
        """Cache *value* for *key*, evicting one entry if *capacity* is reached.

        A *capacity* of 0 (or less) caches nothing.  A key already present
        gets the new value and keeps its slot and its referenced bit.
        """
        slot = self._slots.get(key)
        if slot is not None:
            self._values[slot] = value
            return
        if capacity <= 0:
            return
        if len(self._keys) < capacity:
            self._slots[key] = len(self._keys)
            self._keys.append(key)
            self._values.append(value)
            self._ref.append(0)
            return
        slot = self._victim()
        del self._slots[self._keys[slot]]
        self._slots[key] = slot
        self._keys[slot] = key
        self._values[slot] = value
        self._ref[slot] = 0
        self._hand = slot + 1 if slot + 1 < len(self._keys) else 0

    def _victim(self) -> int:
        """The slot to reuse: the first unreferenced one from the hand on, wrapping.

        Every referenced slot passed on the way loses its bit.  When all are
        referenced the hand goes round once, clearing them all, and takes
        the slot it started from, as CLOCK does.
        """
        ref, hand = self._ref, self._hand
        n = len(ref)
        found = ref.find(0, hand)
        if found >= 0:
            ref[hand:found] = bytes(found - hand)
            return found
        ref[hand:] = bytes(n - hand)
        found = ref.find(0, 0, hand)
        if found >= 0:
            ref[:found] = bytes(found)
            return found
        ref[:hand] = bytes(hand)  # every slot was referenced: all are cleared now
        return hand

    def popitem(self) -> tuple[Hashable, V]:
        """Remove and return one entry (the last slot); KeyError when empty."""
        if not self._keys:
            raise KeyError("popitem(): the answer cache is empty")
        key = self._keys.pop()
        value = self._values.pop()
        self._ref.pop()
        del self._slots[key]
        if self._hand >= len(self._keys):
            self._hand = 0
        return key, value
