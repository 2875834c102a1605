"""Hot reload: zone files and the config are watched and reloaded without a signal.

A real ``python -m authd serve`` on 127.0.0.1 per test; files are edited the
way people and editors do, and the effect is checked on the wire and in the
log.  What is guarded:

- an edit (serial + 1, a changed record) is served within ``SERVED_WITHIN``
  seconds, with no signal;
- a syntax error keeps the old version and logs ``file:line``;
- changed content under an unchanged serial is refused with the exact reason;
- a change to an ``$INCLUDE``d file (in another folder) reloads its zone;
- an editor's save (temp file, rename over, append) is one reload, not three;
- with two zones only the edited one is reloaded;
- SIGHUP reloads zones and config; ``watch: false`` turns the watcher off;
- a config edit adds a zone, removes one (REFUSED afterwards), and a broken
  config is refused with its key path while the running zones keep answering;
  ``options.watch`` toggled by a config edit takes effect;
- a deleted file keeps the old version serving; a file moved in from another
  folder, an edit of a symlink's target elsewhere and a Kubernetes-ConfigMap
  style ``..data`` link swap are all seen.

Regressions guarded: an ``$INCLUDE ../inc/x`` was recorded as
``zones/../inc/x`` while the watcher reports normalised paths, so edits to it
were ignored (``test_a_change_to_an_included_file_reloads_its_zone``); the
files a refused or failed load read were not watched, so fixing a broken
$INCLUDE did nothing (the two ``test_fixing_...`` tests).

Every wait is bounded; a failure prints every server's log (``reloadkit.Lab``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import dns.rcode
import pytest
from reloadkit import (
    Lab,
    add_zone,
    addresses,
    config_path,
    edit_config,
    lines,
    log_length,
    rcode,
    remove_zone,
    running_lab,
    soa_serial,
    zone_text,
)

pytestmark = pytest.mark.timeout(120)

SERVED_WITHIN = 2.0  # seconds from an edit to the new serial on the wire
SETTLE = 1.5  # seconds to wait for something that must NOT happen (> reload_delay 0.3 s)
LOGGED_WITHIN = 5.0  # seconds for a log line that must appear

A, B = "a.test", "b.test"


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


def _reloads(server) -> int:  # type: ignore[no-untyped-def]
    return len(lines(server, r"authd\[info\] reloading "))


def test_edit_is_served_within_two_seconds_without_a_signal(lab: Lab) -> None:
    path = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(path)}])
    lab.check(soa_serial(server.port, A) == 1, "serial 1 at start")

    edited = time.monotonic()
    path.write_text(zone_text(A, 2, www="192.0.2.2"))
    lab.wait("serial 2", lambda: soa_serial(server.port, A) == 2, SERVED_WITHIN)
    elapsed = time.monotonic() - edited
    lab.check(addresses(server.port, f"www.{A}") == ["192.0.2.2"], "the changed record")
    lab.wait_log(server, r"zone a\.test\. loaded: serial 2, 4 records from " + str(path), 1.0)
    lab.wait_log(
        server,
        r"reload done: generation \d+, published in [\d.]+ ms, longest reactor stall [\d.]+ ms",
        1.0,
    )
    print(f"edit to serial served: {elapsed * 1000:.0f} ms")


def test_syntax_error_keeps_the_old_version_and_logs_file_and_line(lab: Lab) -> None:
    path = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(path)}])

    broken = zone_text(A, 2, www="192.0.2.2") + "bad  A    not-an-address\n"
    bad_line = broken.count("\n")  # the last line
    path.write_text(broken)
    line = lab.wait_log(server, r"zone a\.test\. not reloaded: ", LOGGED_WITHIN)
    lab.check(f"{path}:{bad_line}: " in line, f"file:line {path}:{bad_line} in {line!r}")
    lab.check(line.endswith("; serial 1 keeps serving"), line)
    lab.check(soa_serial(server.port, A) == 1, "the old serial keeps serving")
    lab.check(addresses(server.port, f"www.{A}") == ["192.0.2.1"], "the old record")

    # Fixing the file is picked up like any edit.
    path.write_text(zone_text(A, 2, www="192.0.2.2"))
    lab.wait_serial(server, A, 2, SERVED_WITHIN)


def test_changed_content_under_the_same_serial_is_refused(lab: Lab) -> None:
    path = lab.write("a.zone", zone_text(A, 7))
    server = lab.start("authd", [{"name": A, "file": str(path)}])

    path.write_text(zone_text(A, 7, www="192.0.2.99"))
    reason = f"{path}: serial 7 not increased, content changed; keeping serial 7"
    line = lab.wait_log(server, r"not reloaded", LOGGED_WITHIN)
    lab.check(
        # After the line's timestamp:
        line.split(" ", 1)[1]
        == f"authd[error] zone a.test. not reloaded: {reason}; serial 7 keeps serving",
        f"exact refusal line, got {line!r}",
    )
    lab.check(addresses(server.port, f"www.{A}") == ["192.0.2.1"], "the old record serves")

    # A decrease is refused with its own wording.
    path.write_text(zone_text(A, 6, www="192.0.2.99"))
    lab.wait_log(
        server,
        rf"{path}: serial 6 decreased from 7 \(RFC 1982\), content changed; keeping serial 7",
        LOGGED_WITHIN,
    )
    lab.check(soa_serial(server.port, A) == 7, "serial 7 keeps serving")


def test_a_change_to_an_included_file_reloads_its_zone(lab: Lab) -> None:
    # The included file (in another folder) holds the SOA, so raising its serial
    # there is a complete, acceptable edit of the zone.
    inc = lab.write("inc/soa-and-hosts.inc", "@ SOA ns hostmaster 1 7200 3600 1209600 300\n"
                                             "www A 192.0.2.1\n")  # fmt: skip
    main = lab.write(
        "zones/a.zone",
        f"$ORIGIN {A}.\n$TTL 300\n$INCLUDE ../inc/soa-and-hosts.inc\n@ NS ns\nns A 192.0.2.53\n",
    )
    server = lab.start("authd", [{"name": A, "file": str(main)}])
    lab.check(soa_serial(server.port, A) == 1, "serial 1 at start")

    inc.write_text("@ SOA ns hostmaster 2 7200 3600 1209600 300\nwww A 192.0.2.2\n")
    lab.wait_serial(server, A, 2, SERVED_WITHIN)
    lab.check(addresses(server.port, f"www.{A}") == ["192.0.2.2"], "the included record")
    lab.check(
        lines(server, r"reloading a\.test\. \(view default\)"), "the zone was reloaded by itself"
    )


def test_an_editor_save_burst_is_one_reload(lab: Lab) -> None:
    path = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(path)}])
    before = _reloads(server)

    # What vim and friends do: write a temp file, rename it over the original,
    # then write to it again (here: append a record), all within milliseconds.
    tmp = path.with_name(".a.zone.swp")
    tmp.write_text(zone_text(A, 2, www="192.0.2.2"))
    time.sleep(0.02)
    os.replace(tmp, path)
    time.sleep(0.02)
    with open(path, "a") as f:
        f.write("new  A    192.0.2.3\n")
    time.sleep(0.02)
    os.utime(path)  # a touch, as some editors do after saving

    lab.wait_serial(server, A, 2, SERVED_WITHIN)
    lab.wait("the appended record", lambda: addresses(server.port, f"new.{A}"), SERVED_WITHIN)
    time.sleep(SETTLE)  # any second reload would have started by now
    lab.check(
        _reloads(server) - before == 1,
        f"one reload for the burst, saw {_reloads(server) - before}",
    )
    lab.check(not lines(server, r"not reloaded"), "no half-written state was read")


def test_only_the_changed_zone_is_reloaded(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 10))
    server = lab.start("authd", [{"name": A, "file": str(a)}, {"name": B, "file": str(b)}])
    mark = log_length(server)

    b.write_text(zone_text(B, 11, www="192.0.2.11"))
    lab.wait_serial(server, B, 11, SERVED_WITHIN)
    lab.wait_log(server, r"reload done", LOGGED_WITHIN, after=mark)
    new = server.read_log().splitlines()[mark:]
    lab.check(
        [x.split(" ", 1)[1] for x in new if "reloading" in x]
        == ["authd[info] reloading b.test. (view default)"],
        f"one reload of b.test only: {new}",
    )
    lab.check(not [x for x in new if "a.test" in x], f"a.test untouched: {new}")
    lab.check(soa_serial(server.port, A) == 1, "a.test still serves serial 1")


def test_watch_false_disables_watching_and_sighup_still_reloads(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}], {"watch": False})

    a.write_text(zone_text(A, 2, www="192.0.2.2"))
    add_zone(server, B, b)
    time.sleep(SETTLE)
    lab.check(soa_serial(server.port, A) == 1, "no reload without the watcher")
    lab.check(rcode(server.port, B) == dns.rcode.REFUSED, "config not re-read either")
    lab.check(not lines(server, "reloading"), "no reload was started")

    server.reload()  # SIGHUP: the config and every zone
    lab.wait_serial(server, A, 2, SERVED_WITHIN)
    lab.wait_serial(server, B, 1, SERVED_WITHIN)
    lab.wait_log(server, r"reloading config and zones", 1.0)
    lab.wait_log(server, r"reload done: generation \d+", LOGGED_WITHIN)


def test_sighup_reloads_with_the_watcher_on_too(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    mark = log_length(server)
    server.reload()
    lab.wait_log(server, r"reloading config and zones", LOGGED_WITHIN, after=mark)
    lab.wait_log(server, r"zone a\.test\. unchanged: serial 1", LOGGED_WITHIN, after=mark)
    lab.wait_log(server, r"reload done", LOGGED_WITHIN, after=mark)
    lab.check(soa_serial(server.port, A) == 1, "still serving")


def test_config_edit_adds_a_zone_then_removes_one(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 5))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    conf = config_path(server)
    lab.check(rcode(server.port, B) == dns.rcode.REFUSED, "b.test not served yet")

    add_zone(server, B, b)
    lab.wait_serial(server, B, 5, SERVED_WITHIN)
    lab.wait_log(server, rf"config {conf} reloaded", LOGGED_WITHIN)
    lab.check(soa_serial(server.port, A) == 1, "a.test still served")

    # The added zone's file is watched from now on.
    b.write_text(zone_text(B, 6, www="192.0.2.6"))
    lab.wait_serial(server, B, 6, SERVED_WITHIN)

    # Remove a.test: REFUSED afterwards, b.test keeps serving.
    remove_zone(server, A)
    lab.wait("a.test REFUSED", lambda: rcode(server.port, A) == dns.rcode.REFUSED, SERVED_WITHIN)
    lab.check(soa_serial(server.port, B) == 6, "b.test still served at serial 6")

    # The removed zone's file is no longer watched: editing it reloads nothing.
    mark = _reloads(server)
    a.write_text(zone_text(A, 2))
    time.sleep(SETTLE)
    lab.check(_reloads(server) == mark, "no reload for a file of a removed zone")
    lab.check(rcode(server.port, A) == dns.rcode.REFUSED, "still REFUSED")


def test_a_broken_config_edit_is_refused_and_the_old_zones_keep_answering(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    conf = config_path(server)
    good = open(conf).read()

    # A zone file that does not exist: refused with the key path.
    add_zone(server, B, lab.dir / "missing.zone")
    line = lab.wait_log(server, r"config .* refused, the running one stays", LOGGED_WITHIN)
    lab.check(
        f"config {conf} refused, the running one stays: zones[1].file: no such file: "
        f"{lab.dir / 'missing.zone'}" in line,
        f"key path and reason in {line!r}",
    )
    lab.check(soa_serial(server.port, A) == 1, "a.test keeps answering")
    lab.check(rcode(server.port, B) == dns.rcode.REFUSED, "nothing of the bad config applied")

    # A wrong option type: its key path.
    mark = log_length(server)
    with open(conf, "w") as f:
        f.write(good + "options: {reload_delay: soon}\n")
    line = lab.wait_log(server, r"refused, the running one stays", LOGGED_WITHIN, after=mark)
    lab.check("options.reload_delay: expected a number of seconds" in line, line)

    # Not YAML at all: the file and line.
    mark = log_length(server)
    with open(conf, "w") as f:
        f.write(good + "zones: [unclosed\n")
    line = lab.wait_log(server, r"refused, the running one stays", LOGGED_WITHIN, after=mark)
    lab.check(f"{conf}:" in line and "not valid YAML" in line, line)
    lab.check(soa_serial(server.port, A) == 1, "a.test keeps answering")

    # The zone files are still watched while the config is broken ...
    a.write_text(zone_text(A, 2))
    lab.wait_serial(server, A, 2, SERVED_WITHIN)
    # ... and a fixed config takes effect.
    with open(conf, "w") as f:
        f.write(good)
    add_zone(server, B, b)
    lab.wait_serial(server, B, 1, SERVED_WITHIN)
    lab.check(server.process.poll() is None, "the server kept running throughout")


# -- files only a refused or failed load read ---------------------------------------------
#
# The watcher follows the files the served version was read from and those the
# last load read, the failing one included (ZoneLoadEvent.files).


def test_fixing_a_newly_included_file_that_broke_a_reload_reloads_the_zone(lab: Lab) -> None:
    main = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(main)}])
    inc = lab.write("hosts.inc", "www2 A not-an-address\n")
    main.write_text(zone_text(A, 2) + "$INCLUDE hosts.inc\n")
    lab.wait_log(server, rf"not reloaded: {inc}:1: ", LOGGED_WITHIN)
    inc.write_text("www2 A 192.0.2.2\n")
    lab.wait_serial(server, A, 2, SERVED_WITHIN)


def test_fixing_the_include_that_failed_the_first_load_serves_the_zone(lab: Lab) -> None:
    inc = lab.write("hosts.inc", "www2 A not-an-address\n")
    main = lab.write("a.zone", zone_text(A, 1) + "$INCLUDE hosts.inc\n")
    server = lab.start("authd", [{"name": A, "file": str(main)}])
    lab.wait_log(server, rf"failed to load: {inc}:1: ", LOGGED_WITHIN)
    inc.write_text("www2 A 192.0.2.2\n")
    lab.wait_serial(server, A, 1, SERVED_WITHIN)


# -- other ways files change ----------------------------------------------------------------


def test_a_deleted_zone_file_keeps_serving_and_its_return_is_loaded(lab: Lab) -> None:
    path = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(path)}])
    path.unlink()
    line = lab.wait_log(server, r"zone a\.test\. not reloaded: ", LOGGED_WITHIN)
    lab.check(str(path) in line and "serial 1 keeps serving" in line, line)
    lab.check(soa_serial(server.port, A) == 1, "the old version keeps serving")
    path.write_text(zone_text(A, 2))
    lab.wait_serial(server, A, 2, SERVED_WITHIN)


def test_a_file_moved_in_from_another_folder_is_loaded(lab: Lab) -> None:
    path = lab.write("zones/a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(path)}])
    staged = lab.write("staging/a.zone", zone_text(A, 2, www="192.0.2.2"))
    os.replace(staged, path)
    lab.wait_serial(server, A, 2, SERVED_WITHIN)
    lab.check(addresses(server.port, f"www.{A}") == ["192.0.2.2"], "the moved-in content")


def test_an_edit_through_a_symlink_target_in_another_folder_is_seen(lab: Lab) -> None:
    real = lab.write("real/a.zone", zone_text(A, 1))
    (lab.dir / "zones").mkdir()
    link = lab.dir / "zones" / "a.zone"
    link.symlink_to(real)
    server = lab.start("authd", [{"name": A, "file": str(link)}])
    real.write_text(zone_text(A, 2, www="192.0.2.2"))
    lab.wait_serial(server, A, 2, SERVED_WITHIN)


def test_a_kubernetes_configmap_style_symlink_swap_is_seen(lab: Lab) -> None:
    # A ConfigMap volume: zones/a.zone -> ..data/a.zone, ..data -> ..v1; an update
    # writes ..v2, points ..data_tmp at it and renames ..data_tmp over ..data.
    zones = lab.dir / "zones"
    lab.write("zones/..v1/a.zone", zone_text(A, 1))
    (zones / "..data").symlink_to("..v1")
    (zones / "a.zone").symlink_to("..data/a.zone")
    server = lab.start("authd", [{"name": A, "file": str(zones / "a.zone")}])

    lab.write("zones/..v2/a.zone", zone_text(A, 2, www="192.0.2.2"))
    (zones / "..data_tmp").symlink_to("..v2")
    os.replace(zones / "..data_tmp", zones / "..data")
    lab.wait_serial(server, A, 2, SERVED_WITHIN)

    # And the next swap too (the folders watched follow the link).
    lab.write("zones/..v3/a.zone", zone_text(A, 3, www="192.0.2.3"))
    (zones / "..data_tmp").symlink_to("..v3")
    os.replace(zones / "..data_tmp", zones / "..data")
    lab.wait_serial(server, A, 3, SERVED_WITHIN)


def test_watch_turned_off_and_on_by_a_config_edit(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    edit_config(server, lambda c: c.setdefault("options", {}).update(watch=False))
    lab.wait_log(server, r"file watching off", LOGGED_WITHIN)
    a.write_text(zone_text(A, 2))
    time.sleep(SETTLE)
    lab.check(soa_serial(server.port, A) == 1, "not watched any more")
    edit_config(server, lambda c: c["options"].update(watch=True, reload_delay=0.1))
    time.sleep(SETTLE)
    lab.check(soa_serial(server.port, A) == 1, "a config edit while unwatched needs a signal")
    server.reload()
    lab.wait_serial(server, A, 2, SERVED_WITHIN)
    lab.wait_log(server, r"file watching on, reload_delay 0\.1s", LOGGED_WITHIN)
    a.write_text(zone_text(A, 3))
    lab.wait_serial(server, A, 3, SERVED_WITHIN)
