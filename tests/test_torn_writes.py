"""A zone file written in place is never published half written.

Regression ``torn_in_place_write_is_published_and_sticks``: a program that
rewrote a watched zone file in place and paused longer than ``reload_delay``
halfway got the half file published under the new serial; once the file was
complete the serial gate refused it ("serial not increased, content changed"),
so the truncated zone served until someone bumped the serial again.  Now a
file with a write seen and no close yet is held (authd.adapters.watch), and
loads ``reload_delay`` after its writer closes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from reloadkit import Lab, addresses, lines, running_lab, soa_serial, zone_text

pytestmark = pytest.mark.timeout(90)

ZONE = "torn.test"
DELAY = 0.3  # the server's reload_delay
HOSTS = 400


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def _full(serial: int) -> str:
    hosts = "".join(f"h{i} A 192.0.2.{i % 250 + 1}\n" for i in range(HOSTS))
    return zone_text(ZONE, serial, www=f"192.0.2.{serial}", extra=hosts)


def test_torn_in_place_write_is_published_and_sticks(lab: Lab) -> None:
    path = lab.write("torn.zone", _full(1))
    server = lab.start("authd", [{"name": ZONE, "file": str(path)}], {"reload_delay": DELAY})
    lab.check(soa_serial(server.port, ZONE) == 1, "serial 1 at start")
    text = _full(2)
    half = text.rindex("\n", 0, len(text) // 2) + 1  # cut at a line end: it parses
    with open(path, "w") as f:  # truncates in place, as `cat new > zone` does
        f.write(text[:half])
        f.flush()
        time.sleep(DELAY * 8)  # the writer pauses far longer than reload_delay
        lab.check(soa_serial(server.port, ZONE) == 1, "half a file must not be published")
        lab.check(
            addresses(server.port, f"h{HOSTS - 1}.{ZONE}") == [f"192.0.2.{(HOSTS - 1) % 250 + 1}"],
            "the old version keeps serving every name",
        )
        f.write(text[half:])
    lab.wait("serial 2", lambda: soa_serial(server.port, ZONE) == 2, 15)
    lab.check(addresses(server.port, f"www.{ZONE}") == ["192.0.2.2"], "the edit")
    lab.check(
        addresses(server.port, f"h{HOSTS - 1}.{ZONE}") == [f"192.0.2.{(HOSTS - 1) % 250 + 1}"],
        "the complete file is what serves",
    )
    lab.check(not lines(server, r"not increased"), "no serial refusal: one load, complete")


def test_a_rename_over_the_file_is_published_after_the_delay(lab: Lab) -> None:
    """Editors and `mv` publish complete files: those are not held."""
    path = lab.write("torn.zone", _full(1))
    server = lab.start("authd", [{"name": ZONE, "file": str(path)}], {"reload_delay": DELAY})
    new = lab.write("torn.zone.new", _full(2))
    start = time.monotonic()
    new.rename(path)
    lab.wait("serial 2", lambda: soa_serial(server.port, ZONE) == 2, 15)
    print(f"rename served after {time.monotonic() - start:.2f} s")
