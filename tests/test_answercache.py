"""``authd.answercache``: the bounded response cache and its CLOCK eviction.

Tables of operations with the entries expected after them, then properties
(derandomized in CI) against a reference model of CLOCK written as plainly as
possible: the size bound, a hit right after an insert, and the eviction order.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authd.answercache import AnswerCache


def _run(ops: list[tuple[str, str]], capacity: int) -> AnswerCache:
    cache = AnswerCache()
    for op, key in ops:
        if op == "put":
            cache.put(key, key.encode(), capacity)
        else:
            cache.get(key)
    return cache


# (operations, capacity, keys held afterwards)
TABLE = [
    pytest.param([("put", "a"), ("put", "b")], 3, {"a", "b"}, id="below-capacity"),
    pytest.param(
        [("put", "a"), ("put", "b"), ("put", "c")], 2, {"b", "c"}, id="oldest-unused-goes"
    ),
    pytest.param(
        [("put", "a"), ("put", "b"), ("get", "a"), ("put", "c")], 2, {"a", "c"}, id="hit-survives"
    ),
    pytest.param(
        [("put", "a"), ("put", "b"), ("get", "a"), ("get", "b"), ("put", "c")],
        2,
        {"b", "c"},
        id="all-referenced-hand-takes-its-slot",
    ),
    pytest.param(
        [("put", "a"), ("put", "b"), ("get", "a"), ("put", "c"), ("put", "d")],
        2,
        {"c", "d"},
        id="second-chance-used-once",
    ),
    pytest.param(
        [("put", "a"), ("put", "b"), ("put", "c"), ("get", "a"), ("put", "d")],
        3,
        {"a", "c", "d"},
        id="miss-has-no-effect",
    ),
    pytest.param([("put", "a"), ("put", "a"), ("put", "b")], 2, {"a", "b"}, id="reinsert-no-dup"),
    pytest.param([("put", "a")], 0, set(), id="capacity-0-caches-nothing"),
    pytest.param([("put", "a"), ("put", "b"), ("put", "c")], 1, {"c"}, id="capacity-1"),
]


@pytest.mark.parametrize("ops,capacity,held", TABLE)
def test_table(ops: list[tuple[str, str]], capacity: int, held: set[str]) -> None:
    cache = _run(ops, capacity)
    assert set(cache) == held
    assert len(cache) == len(held)
    for key in held:
        assert cache.get(key) == key.encode()


def test_a_hit_returns_the_latest_value() -> None:
    cache = AnswerCache()
    cache.put("k", b"one", 2)
    cache.put("k", b"two", 2)
    assert cache.get("k") == b"two" and len(cache) == 1
    assert cache.get("missing") is None
    assert "k" in cache and "missing" not in cache


def test_popitem_empties_it_an_entry_at_a_time() -> None:
    cache = AnswerCache()
    for i in range(5):
        cache.put(i, bytes([i]), 5)
    popped = []
    while cache:
        popped.append(cache.popitem())
    assert sorted(popped) == [(i, bytes([i])) for i in range(5)]
    with pytest.raises(KeyError):
        cache.popitem()
    cache.put("again", b"x", 2)  # usable after being emptied
    assert cache.get("again") == b"x"


def test_a_full_sweep_is_not_a_python_loop_per_entry() -> None:
    """Every slot referenced: the insert still evicts exactly one (the hand's own)."""
    n = 50_000
    cache = AnswerCache()
    for i in range(n):
        cache.put(i, b"", n)
    for i in range(n):
        cache.get(i)
    cache.put("new", b"", n)
    assert len(cache) == n and "new" in cache and 0 not in cache
    cache.put("newer", b"", n)  # the ring was cleared by that sweep: the next slot goes
    assert 1 not in cache and 2 in cache


class _ModelClock:
    """CLOCK written out step by step: the reference the real one must match."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ring: list[list[object]] = []  # [key, value, referenced]
        self.hand = 0

    def get(self, key: object) -> object:
        for entry in self.ring:
            if entry[0] == key:
                entry[2] = True
                return entry[1]
        return None

    def put(self, key: object, value: object) -> None:
        for entry in self.ring:
            if entry[0] == key:
                entry[1] = value
                return
        if self.capacity <= 0:
            return
        if len(self.ring) < self.capacity:
            self.ring.append([key, value, False])
            return
        while self.ring[self.hand][2]:
            self.ring[self.hand][2] = False
            self.hand = (self.hand + 1) % len(self.ring)
        self.ring[self.hand] = [key, value, False]
        self.hand = (self.hand + 1) % len(self.ring)


_OPS = st.lists(
    st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 12), st.binary(max_size=3)),
    max_size=200,
)


@given(capacity=st.integers(0, 8), ops=_OPS)
def test_matches_the_model_and_stays_bounded(capacity: int, ops: list) -> None:
    cache, model = AnswerCache(), _ModelClock(capacity)
    for op, key, value in ops:
        if op == "put":
            cache.put(key, value, capacity)
            model.put(key, value)
        else:
            assert cache.get(key) == model.get(key)
        assert len(cache) <= max(capacity, 0)
        assert set(cache) == {e[0] for e in model.ring}


@given(capacity=st.integers(1, 8), ops=_OPS, key=st.integers(100, 110), value=st.binary())
def test_hit_right_after_insert(capacity: int, ops: list, key: int, value: bytes) -> None:
    cache = AnswerCache()
    for op, k, v in ops:
        if op == "put":
            cache.put(k, v, capacity)
        else:
            cache.get(k)
    cache.put(key, value, capacity)
    assert cache.get(key) == value


def test_an_old_cache_is_taken_apart_by_the_retirement_worker() -> None:
    from authd.adapters.memory import dismantle

    cache = AnswerCache()
    for i in range(100):
        cache.put(i, b"x", 100)
    assert dismantle([cache]) == 100 and len(cache) == 0


def test_values_in_ring_order() -> None:
    cache: AnswerCache[bytes] = AnswerCache()
    for key in ("a", "b", "c"):
        cache.put(key, key.encode(), 2)
    assert sorted(cache.values()) == [b"b", b"c"]
