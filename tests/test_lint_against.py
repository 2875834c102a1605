"""``authd check --against``: the linter's reload verdict is the server's.

``lint.compare_with`` compiles both versions and compares them with
``ZoneVersion.same_content`` (the linter once had its own ``same_data``), and
says why a step is refused with ``authd.serial.step_problem``.  A table of
(old, new) zone texts -> whether the reload is refused and why, checked
against the server's rule applied to the compiled versions.
"""

from __future__ import annotations

import dns.name
import pytest

from authd import lint, serial
from authd.zone import compile_zone, group_records
from authd.zonefile import parse_zone_text

ORIGIN = dns.name.from_text("z.test.")


def zone(serial_: int, body: str = "www A 192.0.2.1\n") -> str:
    return (
        f"$ORIGIN z.test.\n$TTL 300\n@ SOA ns hm {serial_} 7200 3600 1209600 300\n"
        f"@ NS ns\nns A 192.0.2.1\n{body}"
    )


def grouping(text: str):  # type: ignore[no-untyped-def]
    return group_records(ORIGIN, parse_zone_text(text, ORIGIN, "z.zone"), "z.zone")


AGAINST = [
    # (label, old, new, None or the words the refusal says)
    ("unchanged", zone(1), zone(1), None),
    ("increased", zone(1), zone(2, "www A 192.0.2.2\n"), None),
    ("changed-same-serial", zone(1), zone(1, "www A 192.0.2.2\n"),
     "serial 1 not increased since HEAD, content changed"),
    ("decreased-unchanged", zone(2), zone(1),
     "serial 1 decreased from 2 (RFC 1982) since HEAD, content unchanged"),
    ("ttl-changed", zone(1), zone(1, "www 60 A 192.0.2.1\n"), "content changed"),
    # What same_content calls the same: duplicates, order, letter case of owners.
    ("duplicate-only", zone(1), zone(1, "www A 192.0.2.1\nwww A 192.0.2.1\n"), None),
    ("order-only", zone(1, "a A 192.0.2.1\na A 192.0.2.2\n"),
     zone(1, "a A 192.0.2.2\na A 192.0.2.1\n"), None),
    ("owner-case-only", zone(1), zone(1, "WWW A 192.0.2.1\n"), None),
    # The server never served an old version it refused: nothing to compare.
    ("old-refused", zone(5, "x CNAME ns\nx A 192.0.2.9\n"), zone(1), None),
    # A refused new version fails the check with its own errors.
    ("new-refused", zone(5), zone(1, "x CNAME ns\nx A 192.0.2.9\n"), None),
]  # fmt: skip


@pytest.mark.parametrize("old,new,refusal", [t[1:] for t in AGAINST], ids=[t[0] for t in AGAINST])
def test_against(old: str, new: str, refusal: str | None) -> None:
    found = lint.compare_with(grouping(old), grouping(new), "HEAD")
    if refusal is None:
        assert found is None
    else:
        assert found is not None and found.id == "serial-not-increased", found
        assert refusal in found.message, found.message
        assert found.line == 3


@pytest.mark.parametrize("old,new", [t[1:3] for t in AGAINST], ids=[t[0] for t in AGAINST])
def test_against_predicts_the_servers_reload(old: str, new: str) -> None:
    """The server's rule (authd.snapshot, serial policy ``keep``) on the same pair."""
    a = compile_zone(ORIGIN, parse_zone_text(old, ORIGIN, "z"), "z").version
    b = compile_zone(ORIGIN, parse_zone_text(new, ORIGIN, "z"), "z").version
    refused_by_linter = lint.compare_with(grouping(old), grouping(new), "HEAD") is not None
    if a is None or b is None:
        assert not refused_by_linter
        return
    unchanged = b.serial == a.serial and b.same_content(a)
    refused = not unchanged and not serial.increased(a.serial, b.serial)
    assert refused_by_linter == refused


def test_lint_has_no_same_data_of_its_own() -> None:
    """Regression: ``lint.same_data`` re-implemented ``ZoneVersion.same_content``."""
    assert not hasattr(lint, "same_data")
