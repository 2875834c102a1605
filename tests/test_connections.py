"""TCP admission policy (``authd.connections``): tables without a reactor.

Who is admitted, who gives way (the longest idle, then the longest-pending
message), who is refused (a client at its own limit; everyone sending).
"""

from __future__ import annotations

import pytest

from authd.connections import ConnectionTable, Verdict, client_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


def test_admits_until_full_then_the_longest_idle_gives_way() -> None:
    table = ConnectionTable(limit=3, per_client=10)
    for conn in "abc":
        assert table.admit(conn, "192.0.2.1").verdict is Verdict.ADMITTED
    table.sending("a")
    table.receiving("b")
    table.idle("b")  # b became idle after c: c is the longest idle now
    got = table.admit("d", "192.0.2.2")
    assert got.verdict is Verdict.ADMITTED and got.evicted == "c"
    assert not table.holds("c") and len(table) == 3


def test_with_none_idle_the_longest_pending_message_gives_way() -> None:
    table = ConnectionTable(limit=3, per_client=10)
    for conn in "abc":
        table.admit(conn, "192.0.2.1")
    table.receiving("b")
    table.receiving("a")
    table.receiving("b")  # the same message: b keeps its place
    table.sending("c")  # a transfer never gives way
    assert table.admit("d", "192.0.2.2").evicted == "b"
    table.sending("d")
    assert table.admit("e", "192.0.2.2").evicted == "a"


def test_refuses_when_every_connection_is_sending() -> None:
    table = ConnectionTable(limit=2, per_client=10)
    for conn in "ab":
        table.admit(conn, "192.0.2.1")
        table.sending(conn)
    assert table.admit("c", "192.0.2.2").verdict is Verdict.FULL
    table.release("a")
    assert table.admit("c", "192.0.2.2").verdict is Verdict.ADMITTED


def test_per_client_limit_counts_an_ipv6_slash_64_as_one_client() -> None:
    table = ConnectionTable(limit=100, per_client=2)
    assert table.admit(1, "2001:db8::1").verdict is Verdict.ADMITTED
    assert table.admit(2, "2001:db8::2").verdict is Verdict.ADMITTED
    assert table.admit(3, "2001:db8::3").verdict is Verdict.CLIENT_LIMIT
    assert table.admit(4, "2001:db8:0:1::3").verdict is Verdict.ADMITTED
    table.release(1)
    assert table.admit(3, "2001:db8::3").verdict is Verdict.ADMITTED


def test_release_is_idempotent_and_an_evicted_slot_is_not_freed_twice() -> None:
    table = ConnectionTable(limit=1, per_client=1)
    table.admit("a", "192.0.2.1")
    got = table.admit("b", "192.0.2.2")
    assert got.evicted == "a"
    table.release("a")  # the evicted connection's connectionLost comes later
    table.release("a")
    assert len(table) == 1 and table.holds("b")
    assert table.admit("c", "192.0.2.2").verdict is Verdict.CLIENT_LIMIT
