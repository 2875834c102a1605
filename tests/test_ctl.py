"""``authd ctl``: every command against a running server, over its control socket.

The control channel is a Unix socket (mode 0600, default
``<state_dir>/authd.ctl``) speaking one JSON object per line.  Each test runs
the real ``python -m authd ctl`` against a real server on 127.0.0.1:

- ``status`` as text and ``--json``: zones per view with role, serial,
  load time, last load result, journal span after a reload, and the last
  NOTIFY acknowledgement of a second authd acting as secondary;
- ``reload`` (config and every zone) and ``reload ZONE`` answer when the
  reload is done, and say so when it was refused;
- ``notify ZONE`` reaches a secondary authd; ``retransfer ZONE`` makes a
  secondary AXFR; ``stop`` makes the server exit 0;
- errors: an unknown zone exits 1 with a message, no server exits 2;
- the socket is mode 0600; a malformed request line gets ``{"ok": false}``
  and the connection stays usable; a second server does not take over a live
  socket (but does replace a stale one).

Every wait is bounded; failures print every server's log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.rcode
import pytest
from reloadkit import (
    Lab,
    add_zone,
    config_path,
    control_path,
    ctl,
    lines,
    log_length,
    rcode,
    running_lab,
    soa_serial,
    zone_text,
)

from harness.peers import HOST, free_port

pytestmark = pytest.mark.timeout(180)

A, B = "a.test", "b.test"
LOGGED_WITHIN = 10.0  # seconds for a log line caused by a command
TRANSFER_WITHIN = 15.0  # seconds for a secondary to hold the zone
STOP_WITHIN = 10.0  # seconds for the server to exit after ``ctl stop``
IO_TIMEOUT = 5.0  # seconds for one read on the raw control socket


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from running_lab()


FLEET_OPTIONS: dict[str, Any] = {
    "watch": False,  # only the commands under test reload anything
    "min_refresh": 60,
    "min_retry": 1,
    "notify_timeout": 1,
    "notify_retries": 3,
}


def _ok(lab: Lab, done: Any, what: str) -> None:
    lab.check(
        done.returncode == 0,
        f"{what}: exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}",
    )


def _status(lab: Lab, server: Any) -> dict[str, Any]:
    done = ctl("status", "--json", "-c", config_path(server))
    _ok(lab, done, "ctl status --json")
    reply = json.loads(done.stdout)
    assert isinstance(reply, dict)
    return reply


def _zone(reply: dict[str, Any], zone: str, view: str = "default") -> dict[str, Any]:
    found = [z for z in reply["zones"] if z["zone"] == zone + "." and z["view"] == view]
    assert len(found) == 1, f"{zone} in view {view}: {reply['zones']}"
    return found[0]


class Raw:
    """A raw connection to the control socket: lines out, lines in."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> dict[str, Any] | None:
        """The next reply line parsed, or None when the server closed the connection."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        value = json.loads(line)
        assert isinstance(value, dict)
        return value

    def ask(self, data: bytes) -> dict[str, Any] | None:
        self.send(data)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


# -- status ---------------------------------------------------------------------------


def test_status_text_and_json_per_view_with_journal_after_a_reload(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 30))
    config = {
        "options": {"watch": False},
        "views": [
            {
                "name": "inside",
                "match_clients": ["127.0.0.1"],
                "zones": [{"name": A, "file": str(a)}, {"name": B, "file": str(b)}],
            },
            {"name": "outside", "zones": [{"name": B, "in_view": "inside"}]},
        ],
    }
    started = time.time()
    server = lab.start_config("authd", config)

    reply = _status(lab, server)
    lab.check(reply["ok"] is True and reply["config"] == config_path(server), str(reply))
    keys = [(z["view"], z["zone"]) for z in reply["zones"]]
    lab.check(
        keys == [("inside", "a.test."), ("inside", "b.test."), ("outside", "b.test.")],
        f"zones per view in config order: {keys}",
    )
    for z in reply["zones"]:
        lab.check(z["role"] == "primary" and z["serving"] is True, str(z))
        lab.check(z["journal"] is None, f"no journal before any change: {z}")
        lab.check(
            z["loaded_at"] is not None and started - 1 <= z["loaded_at"] <= time.time() + 1,
            f"loaded_at: {z}",
        )
        lab.check(z["last_load"] and z["last_load"]["outcome"] == "loaded", f"last_load: {z}")
    lab.check(_zone(reply, A, "inside")["serial"] == 1, "a.test serial 1")
    lab.check(_zone(reply, B, "outside")["serial"] == 30, "the shared zone's serial")

    text = ctl("status", "-c", config_path(server))
    _ok(lab, text, "ctl status")
    out = text.stdout
    lab.check(f"config {config_path(server)}, generation 0," in out, out)
    lab.check("a.test. view inside: primary, serial 1, 4 records, serving" in out, out)
    lab.check("b.test. view outside: primary, serial 30, 4 records, serving" in out, out)
    lab.check("last load: loaded" in out and "journal: empty" in out, out)

    # An edit and a reload of that zone: new serial, new load time, a journal span.
    before = _zone(reply, A, "inside")["loaded_at"]
    time.sleep(0.05)
    a.write_text(zone_text(A, 2, www="192.0.2.2"))
    _ok(lab, ctl("reload", A, "-c", config_path(server)), "ctl reload a.test")
    reply = _status(lab, server)
    za = _zone(reply, A, "inside")
    lab.check(za["serial"] == 2 and za["loaded_at"] > before, f"reloaded: {za}")
    lab.check(
        za["journal"] is not None
        and (za["journal"]["from"], za["journal"]["to"], za["journal"]["entries"]) == (1, 2, 1)
        and za["journal"]["bytes"] > 0,
        f"journal span 1..2: {za}",
    )
    lab.check(reply["generation"] >= 1, f"generation moved: {reply['generation']}")
    lab.check(reply["last_reload_reactor_stall_ms"] is not None, "stall figure after a reload")
    out = ctl("status", "-c", config_path(server)).stdout
    lab.check("journal: serials 1..2, 1 changes" in out, out)

    # A refused edit shows as the last load result, while serial 2 keeps serving.
    a.write_text(zone_text(A, 2, www="192.0.2.9"))
    ctl("reload", A, "-c", config_path(server))
    za = _zone(_status(lab, server), A, "inside")
    lab.check(za["serial"] == 2, str(za))
    lab.check(
        za["last_load"]["outcome"] == "kept-old"
        and "serial 2 not increased, content changed" in za["last_load"]["reason"],
        f"last load refused: {za}",
    )
    out = ctl("status", "-c", config_path(server)).stdout
    lab.check("last load: kept-old (" in out, out)


# -- a primary and a secondary, both authd ------------------------------------------------


class Pair:
    def __init__(self, lab: Lab, primary: Any, secondary: Any) -> None:
        self.lab, self.primary, self.secondary = lab, primary, secondary


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """authd primary (also_notify -> the secondary) and authd secondary for a.test."""
    lab = Lab()
    try:
        zone = lab.write("a.zone", zone_text(A, 1))
        primary_port = free_port()
        secondary = lab.start(
            "secondary",
            [
                {
                    "name": A,
                    "type": "secondary",
                    "primaries": [{"address": HOST, "port": primary_port}],
                }
            ],
            FLEET_OPTIONS,
        )
        primary = lab.start(
            "primary",
            [
                {
                    "name": A,
                    "file": str(zone),
                    "allow_transfer": [HOST],
                    "also_notify": [{"address": HOST, "port": secondary.port}],
                }
            ],
            FLEET_OPTIONS,
            port=primary_port,
        )
        lab.wait_serial(secondary, A, 1, TRANSFER_WITHIN)
        yield Pair(lab, primary, secondary)
    finally:
        logs = lab.logs(tail=400)
        lab.close()
        print(logs)


def test_status_shows_the_secondaries_last_ack(pair: Pair) -> None:
    lab, primary, secondary = pair.lab, pair.primary, pair.secondary
    target = f"{HOST}#{secondary.port}"

    def acked() -> dict[str, Any] | None:
        z = _zone(_status(lab, primary), A)
        acks = z.get("secondaries_last_ack") or {}
        return z if "acknowledged" in acks.get(target, "") else None

    z = lab.wait(f"an acknowledgement from {target}", acked, LOGGED_WITHIN)
    lab.check(z["also_notify"] == [target], str(z))
    lab.check(z["secondaries_last_ack"][target].startswith("serial 1: acknowledged"), str(z))
    out = ctl("status", "-c", config_path(primary)).stdout
    lab.check(f"    notify {target}: serial 1: acknowledged" in out, out)

    s = _zone(_status(lab, secondary), A)
    lab.check(s["role"] == "secondary" and s["serial"] == 1, str(s))
    lab.check(s["primaries"] == [f"{HOST}#{primary.port}"], str(s))
    lab.check(s["refresh"] is not None and s["refresh"]["expired"] is False, str(s))
    out = ctl("status", "-c", config_path(secondary)).stdout
    lab.check("a.test. view default: secondary, serial 1" in out and "refresh: " in out, out)


def test_notify_reaches_the_secondary(pair: Pair) -> None:
    lab, primary, secondary = pair.lab, pair.primary, pair.secondary
    mark = log_length(secondary)
    done = ctl("notify", A, "-c", config_path(primary))
    _ok(lab, done, "ctl notify")
    lab.check(done.stdout.strip() == f"notify sent for {A}", done.stdout)
    lab.wait_log(secondary, rf"notify for a\.test\. from {HOST}: checking primaries",
                 LOGGED_WITHIN, after=mark)  # fmt: skip
    lab.wait_log(primary, rf"notify a\.test\. serial 1 to {HOST}#{secondary.port}: acknowledged",
                 LOGGED_WITHIN)  # fmt: skip


def test_retransfer_on_the_secondary_is_an_axfr(pair: Pair) -> None:
    lab, primary, secondary = pair.lab, pair.primary, pair.secondary
    mark, pmark = log_length(secondary), log_length(primary)
    done = ctl("retransfer", A, "-c", config_path(secondary))
    _ok(lab, done, "ctl retransfer")
    lab.check(done.stdout.strip() == "full transfer started: a.test. (view default)", done.stdout)
    lab.wait_log(
        secondary,
        rf"zone a\.test\. transferred: serial 1, 4 records, by AXFR from {HOST}#{primary.port}",
        TRANSFER_WITHIN,
        after=mark,
    )
    lab.wait_log(primary, r"transfer a\.test\. \(view default\) to 127\.0\.0\.1 key none: axfr",
                 LOGGED_WITHIN, after=pmark)  # fmt: skip

    # On the primary there is nothing to transfer in: exit 1 with the reason.
    done = ctl("retransfer", A, "-c", config_path(primary))
    lab.check(done.returncode == 1, f"exit {done.returncode}: {done.stderr}")
    lab.check(done.stderr.strip() == f"authd ctl: {A} is not a secondary zone", done.stderr)


def _transferred(lab: Lab, server: Any, serial: int, how: str) -> dict[str, Any]:
    """The secondary's zone once its status shows *serial* loaded by a transfer *how*."""

    def loaded() -> dict[str, Any] | None:
        z = _zone(_status(lab, server), A)
        last = z["last_load"] or {}
        ok = last.get("outcome") == "loaded" and last.get("serial") == serial
        return z if ok and str(last.get("reason", "")).startswith(f"transferred by {how}") else None

    return dict(lab.wait(f"a load event for the {how} of serial {serial}", loaded, LOGGED_WITHIN))


def test_status_of_a_secondary_after_a_transfer_is_not_never_loaded(pair: Pair) -> None:
    """Regression: after successful transfers a secondary's status said
    ``loaded at never; last load: failed (no copy yet: awaiting transfer)``."""
    lab, primary, secondary = pair.lab, pair.primary, pair.secondary
    source = f"{HOST}#{primary.port}"
    before = time.time()
    done = ctl("retransfer", A, "-c", config_path(secondary))
    _ok(lab, done, "ctl retransfer")
    z = _transferred(lab, secondary, 1, "AXFR")
    lab.check(z["last_load"]["reason"] == f"transferred by AXFR from {source}", str(z))
    lab.check(z["loaded_at"] is not None and z["loaded_at"] >= before - 1, str(z))
    out = ctl("status", "-c", config_path(secondary)).stdout
    lab.check("loaded at never" not in out, out)
    lab.check(f"last load: loaded (transferred by AXFR from {source})" in out, out)

    # An incremental transfer is a load too, and says so.
    lab.write("a.zone", zone_text(A, 2, www="192.0.2.2"))
    _ok(lab, ctl("reload", A, "-c", config_path(primary)), "ctl reload on the primary")
    lab.wait_serial(secondary, A, 2, TRANSFER_WITHIN)
    z = _transferred(lab, secondary, 2, "IXFR")
    lab.check(z["last_load"]["reason"] == f"transferred by IXFR from {source}", str(z))
    lab.check(z["serial"] == 2 and z["loaded_at"] >= before - 1, str(z))


def test_unknown_command_lists_the_known_ones(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    raw = Raw(control_path(server))
    try:
        reply = raw.ask(b'{"command": "dance"}\n')
    finally:
        raw.close()
    lab.check(
        reply
        == {
            "ok": False,
            "error": "unknown command 'dance' "
            "(known: keys, notify, reload, retransfer, status, stop)",
        },
        str(reply),
    )


def test_notify_and_retransfer_need_a_zone(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    for action in ("notify", "retransfer"):
        done = ctl(action, "-c", config_path(server))
        lab.check(done.returncode == 1, f"{action}: exit {done.returncode}")
        lab.check(done.stderr.strip() == f"authd ctl: {action} needs a zone", done.stderr)


def test_status_to_a_closed_pipe_exits_quietly(lab: Lab) -> None:
    # `authd ctl status | head -3` printed a BrokenPipeError traceback.
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "authd", "ctl", "status", "-c", config_path(server)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before ctl has its answer
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    lab.check("Traceback" not in err and "BrokenPipe" not in err, err)
    lab.check(code == 141, f"exit {code}: {err}")


# -- reload ---------------------------------------------------------------------------------


def test_reload_zone_is_done_when_ctl_returns(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 1))
    server = lab.start(
        "authd", [{"name": A, "file": str(a)}, {"name": B, "file": str(b)}], {"watch": False}
    )
    a.write_text(zone_text(A, 2, www="192.0.2.2"))
    b.write_text(zone_text(B, 2, www="192.0.2.2"))
    mark = log_length(server)
    done = ctl("reload", A, "-c", config_path(server))
    _ok(lab, done, "ctl reload a.test")
    lab.check(done.stdout.strip() == "reloaded", done.stdout)
    lab.check(soa_serial(server.port, A) == 2, "a.test reloaded before ctl returned")
    lab.check(soa_serial(server.port, B) == 1, "b.test was not reloaded")
    new = server.read_log().splitlines()[mark:]
    lab.check(
        any(x.endswith(" authd[info] reloading a.test. (view default)") for x in new), str(new)
    )


def test_reload_all_rereads_the_config_and_every_zone(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 7))
    server = lab.start("authd", [{"name": A, "file": str(a)}], {"watch": False})
    a.write_text(zone_text(A, 2, www="192.0.2.2"))
    add_zone(server, B, b)
    lab.check(rcode(server.port, B) == dns.rcode.REFUSED, "b.test not yet")
    done = ctl("reload", "-c", config_path(server))
    _ok(lab, done, "ctl reload")
    lab.check(soa_serial(server.port, A) == 2, "a.test reloaded")
    lab.check(soa_serial(server.port, B) == 7, "b.test added by the config")
    lab.check(lines(server, r"reloading config and zones"), "a config and zones reload")


def test_reload_says_when_the_config_was_refused(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}], {"watch": False})
    add_zone(server, B, lab.dir / "missing.zone")
    done = ctl("reload", "-c", config_path(server))
    lab.check(done.returncode == 1, f"exit {done.returncode}: {done.stdout} {done.stderr}")
    lab.check("zones[1].file: no such file" in done.stderr, done.stderr)
    lab.check(soa_serial(server.port, A) == 1, "the running zones keep answering")
    # ctl itself still finds the socket through the broken config, so status works.
    done = ctl("status", "-c", config_path(server))
    _ok(lab, done, "ctl status with a broken config file")
    lab.check("a.test. view default: primary, serial 1" in done.stdout, done.stdout)
    lab.check("authd ctl: note: the config does not load" in done.stderr, done.stderr)


def test_ctl_finds_the_socket_while_the_config_is_not_even_yaml(lab: Lab) -> None:
    """Regression: ``ctl_lost_its_socket_on_invalid_yaml`` (a half-saved edit)."""
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}], {"watch": False})
    with open(config_path(server), "a") as f:
        f.write("zones: [unclosed\n")
    done = ctl("status", "-c", config_path(server))
    _ok(lab, done, "ctl status with a config that is not YAML")
    lab.check("a.test. view default: primary, serial 1" in done.stdout, done.stdout)
    lab.check("authd ctl: note: the config does not load" in done.stderr, done.stderr)


def test_ctl_lost_a_custom_state_dir_while_the_config_is_not_yaml(lab: Lab) -> None:
    """Regression: a config that is not YAML gave the default socket place,
    so a server with its own ``state_dir`` was out of reach; the lines before
    the break are read instead."""
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start(
        "authd", [{"name": A, "file": str(a)}], {"watch": False, "state_dir": "elsewhere"}
    )
    with open(config_path(server), "a") as f:
        f.write("zones: [unclosed\n  - name: x\n")
    done = ctl("status", "-c", config_path(server))
    _ok(lab, done, "ctl status with a config that is not YAML")
    lab.check("a.test. view default: primary, serial 1" in done.stdout, done.stdout)
    socket = Path(config_path(server)).parent / "elsewhere" / "authd.ctl"
    lab.check(f"using {socket}" in done.stderr, done.stderr)


def test_reload_of_a_refused_zone_exits_1_with_the_reason(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    b = lab.write("b.zone", zone_text(B, 1))
    server = lab.start(
        "authd", [{"name": A, "file": str(a)}, {"name": B, "file": str(b)}], {"watch": False}
    )
    a.write_text(zone_text(A, 1, www="192.0.2.9"))  # serial not raised
    reason = f"{a}: serial 1 not increased, content changed; keeping serial 1"
    done = ctl("reload", A, "-c", config_path(server))
    lab.check(done.returncode == 1, f"exit {done.returncode}: {done.stdout} {done.stderr}")
    lab.check(
        done.stderr.strip() == f"authd ctl: zone a.test. (view default) not reloaded: {reason}",
        f"the refusal is reported: {done.stderr!r}",
    )
    # Reloading everything reports the refused zone too, and reloads the others.
    b.write_text(zone_text(B, 2))
    done = ctl("reload", "-c", config_path(server))
    lab.check(done.returncode == 1 and reason in done.stderr, done.stderr)
    lab.check(soa_serial(server.port, B) == 2, "b.test was reloaded all the same")
    lab.check(soa_serial(server.port, A) == 1, "a.test keeps serving serial 1")
    # Once fixed, reload answers ok.
    a.write_text(zone_text(A, 2, www="192.0.2.9"))
    _ok(lab, ctl("reload", A, "-c", config_path(server)), "ctl reload after the fix")


def test_concurrent_reloads_each_answer_after_their_reload(lab: Lab) -> None:
    # A reload asked for while another runs is merged into the next one; its
    # answer must still come only once that next reload is done.
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}], {"watch": False})
    path = control_path(server)
    first, second = Raw(path), Raw(path)
    try:
        first.send(b'{"command": "reload"}\n')
        a.write_text(zone_text(A, 2, www="192.0.2.2"))
        second.send(b'{"command": "reload", "zone": "a.test"}\n')
        r2 = second.reply()
        lab.check(r2 is not None and r2["ok"], f"second reply {r2}")
        lab.check(soa_serial(server.port, A) == 2, "the second reload was done when it answered")
        r1 = first.reply()
        lab.check(r1 is not None and r1["ok"], f"first reply {r1}")
    finally:
        first.close()
        second.close()


# -- stop -------------------------------------------------------------------------------------


def test_stop_exits_zero_and_removes_the_socket(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    path = control_path(server)
    lab.check(os.path.exists(path), "the socket exists while serving")
    done = ctl("stop", "-c", config_path(server))
    _ok(lab, done, "ctl stop")
    lab.check(done.stdout.strip() == "stopping", done.stdout)
    deadline = time.monotonic() + STOP_WITHIN
    while server.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    lab.check(server.process.returncode == 0, f"exit status {server.process.returncode}")
    lab.check(lines(server, r"stop requested on the control channel"), "logged")
    lab.check(not os.path.exists(path), "the socket is gone")
    # Now there is nobody to talk to.
    done = ctl("status", "-c", config_path(server))
    lab.check(done.returncode == 2, f"exit {done.returncode}")


# -- errors -------------------------------------------------------------------------------------


def test_unknown_zone_exits_1_with_a_message(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    for action in ("reload", "notify", "retransfer"):
        done = ctl(action, "nosuch.test", "-c", config_path(server))
        lab.check(done.returncode == 1, f"{action}: exit {done.returncode}")
        lab.check(done.stderr.strip() == "authd ctl: no such zone: nosuch.test.", done.stderr)
    done = ctl("reload", "nosuch.test", "--json", "-c", config_path(server))
    lab.check(done.returncode == 1, f"--json: exit {done.returncode}")
    lab.check(json.loads(done.stdout) == {"ok": False, "error": "no such zone: nosuch.test."},
              done.stdout)  # fmt: skip


def test_no_server_exits_2(lab: Lab) -> None:
    missing = str(lab.dir / "nobody.ctl")
    done = ctl("status", "--socket", missing)
    lab.check(done.returncode == 2, f"exit {done.returncode}")
    lab.check(
        done.stderr.startswith(f"authd ctl: cannot talk to the server at {missing}: "), done.stderr
    )
    # A file that is not a socket.
    plain = lab.write("plain.ctl", "")
    done = ctl("status", "--socket", str(plain))
    lab.check(done.returncode == 2, f"not a socket: exit {done.returncode}")
    # A config that cannot be read.
    done = ctl("status", "-c", str(lab.dir / "no-such-config.yaml"))
    lab.check(done.returncode == 2, f"no config: exit {done.returncode}")
    lab.check(done.stderr.startswith("authd ctl: "), done.stderr)


def test_socket_is_mode_0600(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    st = os.stat(control_path(server))
    lab.check(stat.S_ISSOCK(st.st_mode), "a Unix socket")
    lab.check(stat.S_IMODE(st.st_mode) == 0o600, f"mode {stat.S_IMODE(st.st_mode):o}")
    lab.check(st.st_uid == os.getuid(), "owned by the server's user")


def test_a_malformed_request_gets_ok_false_and_the_connection_stays_usable(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    server = lab.start("authd", [{"name": A, "file": str(a)}])
    raw = Raw(control_path(server))
    try:
        bad_requests = [
            b"this is not json\n",
            b"[1, 2, 3]\n",
            b'{"zone": "a.test"}\n',
            b'{"command": 5}\n',
            b'{"command": "dance"}\n',
            b'{"command": "reload", "zone": "a..test"}\n',
            b"\xff\xfe\n",
            b"\n",
        ]
        for request in bad_requests:
            reply = raw.ask(request)
            lab.check(reply is not None, f"no reply to {request!r}")
            assert reply is not None
            lab.check(
                reply.get("ok") is False and isinstance(reply.get("error"), str),
                f"{request!r} -> {reply}",
            )
        # Two requests in one write, then one split over two writes.
        raw.send(b'{"command": "status"}\n{"command": "status"}\n')
        lab.check((raw.reply() or {}).get("ok") is True, "first of two")
        lab.check((raw.reply() or {}).get("ok") is True, "second of two")
        raw.send(b'{"command": ')
        time.sleep(0.1)
        reply = raw.ask(b'"status"}\n')
        lab.check(reply is not None and reply["ok"] is True, f"split request: {reply}")
    finally:
        raw.close()

    # An over-long line is answered, then the connection is closed (documented).
    raw = Raw(control_path(server))
    try:
        reply = raw.ask(b'{"command": "status", "pad": "' + b"x" * 5000 + b'"}\n')
        lab.check(reply is not None and reply["ok"] is False, f"long line: {reply}")
        lab.check(raw.reply() is None, "closed after the over-long line")
    finally:
        raw.close()
    lab.check(server.process.poll() is None, "the server is still running")
    lab.check(soa_serial(server.port, A) == 1, "and answering")


def test_a_second_server_does_not_take_over_a_live_socket(lab: Lab) -> None:
    a = lab.write("a.zone", zone_text(A, 1))
    first = lab.start("first", [{"name": A, "file": str(a)}])
    path = control_path(first)
    second = lab.start("second", [{"name": A, "file": str(a)}], {"control": path})
    lab.wait_log(second, rf"{path}: another authd is listening on this control socket", 5.0)
    reply = _status(lab, first)
    lab.check(reply["config"] == config_path(first), f"the socket is still the first's: {reply}")

    # The second one stopping must not remove the first one's socket.
    second.stop()
    lab.check(os.path.exists(path), "the first server's socket survived")
    lab.check(_status(lab, first)["config"] == config_path(first), "still the first's")

    # A stale socket (its server killed with SIGKILL) is replaced.
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    lab.check(os.path.exists(path), "a killed server leaves its socket file behind")
    third = lab.start("third", [{"name": A, "file": str(a)}], {"control": path})
    reply = _status(lab, third)
    lab.check(reply["config"] == config_path(third), f"the third server took it: {reply}")
    lab.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "mode 0600 again")


def test_a_plain_file_at_the_control_path_is_never_removed(lab: Lab) -> None:
    # Connecting to a regular file is refused just like a stale socket; a
    # mistyped ``options.control`` must not delete the file it names.
    a = lab.write("a.zone", zone_text(A, 1))
    precious = lab.write("precious.txt", "keep me\n")
    server = lab.start("authd", [{"name": A, "file": str(a)}], {"control": str(precious)})
    lab.wait_log(server, rf"{precious}: exists and is not a socket; not replaced", 5.0)
    lab.check(precious.read_text() == "keep me\n", "the file is untouched")
    lab.check(soa_serial(server.port, A) == 1, "the server serves without a control socket")
