"""``authd.status`` (typed status values) and their JSON at the control channel's edge.

Pure tests: a config and a snapshot built in memory, load records updated by
load events and by a transfer, and the JSON ``authd ctl status --json``
prints built from them; the control command table; the log rate limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.name

from authd import status
from authd.adapters import control
from authd.adapters.logs import LogLimit
from authd.build import build_snapshot
from authd.config import config_from_dict

A, B = dns.name.from_text("a.test"), dns.name.from_text("b.test")
ZONE = "$TTL 300\n@ SOA ns h 7 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
ZONE_KEYS = {"view", "zone", "role", "file", "serial", "records", "serving", "loaded_at"}
ZONE_KEYS |= {"last_load", "journal", "primaries", "also_notify"}


def _setup(tmp_path: Path) -> tuple[Any, Any, list[Any]]:
    (tmp_path / "a.zone").write_text(ZONE)
    data = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "options": {"state_dir": str(tmp_path / "state")},
        "zones": [
            {"name": "a.test", "file": "a.zone", "also_notify": [{"address": "127.0.0.2"}]},
            {
                "name": "b.test",
                "type": "secondary",
                "primaries": [{"address": "127.0.0.3", "port": 5301}],
            },
        ],
    }
    config = config_from_dict(data, str(tmp_path / "authd.yaml"), str(tmp_path))
    snap, events = build_snapshot(config, None, 3)
    return config, snap, events


def test_status_json_has_the_keys_ctl_prints(tmp_path: Path) -> None:
    config, snap, events = _setup(tmp_path)
    records = status.recorded({}, events, 100.0)
    s = status.build(config, snap, records, lambda v, z: status.NO_FLEET, 150.0, 90.0, None)
    out = control.status_json(s)
    assert set(out) == {"ok", "generation", "uptime", "config", "last_reload_reactor_stall_ms"} | {
        "zones"
    }
    assert out["ok"] is True and out["generation"] == 3 and out["uptime"] == 60.0
    assert out["last_reload_reactor_stall_ms"] is None
    a, b = out["zones"]
    assert set(a) == ZONE_KEYS == set(b)
    assert (a["zone"], a["role"], a["serial"], a["serving"], a["loaded_at"]) == (
        "a.test.",
        "primary",
        7,
        True,
        100.0,
    )
    assert a["last_load"] == {"at": 100.0, "outcome": "loaded", "reason": None, "serial": 7}
    assert a["also_notify"] == ["127.0.0.2#53"] and a["journal"] is None
    assert (b["role"], b["serial"], b["serving"], b["loaded_at"]) == (
        "secondary",
        None,
        False,
        None,
    )
    assert b["primaries"] == ["127.0.0.3#5301"]
    assert b["last_load"]["outcome"] == "failed"


def test_a_transfer_is_recorded_as_a_load(tmp_path: Path) -> None:
    """Regression: a secondary's status kept ``loaded at never; last load: failed``."""
    config, snap, events = _setup(tmp_path)
    records = status.recorded({}, events, 100.0)
    key = ("default", B)
    records[key] = status.transferred(records[key], 9, "AXFR from 127.0.0.3#5301", 120.0)
    s = status.build(config, snap, records, lambda v, z: status.NO_FLEET, 150.0, 90.0, 0.0123)
    b = control.status_json(s)["zones"][1]
    assert b["loaded_at"] == 120.0
    assert b["last_load"] == {
        "at": 120.0,
        "outcome": "loaded",
        "reason": "transferred by AXFR from 127.0.0.3#5301",
        "serial": 9,
    }
    assert control.status_json(s)["last_reload_reactor_stall_ms"] == 12.3
    # A later failed file load keeps the time the serving version was loaded.
    again = status.recorded(records, [e for e in events if e.zone == B], 130.0)
    assert again[key].loaded_at == 120.0 and again[key].last_load.outcome == "failed"  # type: ignore[union-attr]


def test_fleet_fields_appear_only_when_the_fleet_has_them(tmp_path: Path) -> None:
    config, snap, events = _setup(tmp_path)
    refresh = status.RefreshStatus("idle", "none", 0, False, 12.5)

    def fleet(view: str, zone: dns.name.Name) -> status.FleetStatus:
        if zone == B:
            return status.FleetStatus(refresh)
        return status.FleetStatus(None, (("127.0.0.2#53", "serial 7: acknowledged"),))

    s = status.build(config, snap, {}, fleet, 0.0, 0.0, None)
    a, b = control.status_json(s)["zones"]
    assert a["secondaries_last_ack"] == {"127.0.0.2#53": "serial 7: acknowledged"}
    assert "refresh" not in a and "secondaries_last_ack" not in b
    assert b["refresh"] == {
        "phase": "idle",
        "last_result": "none",
        "failures": 0,
        "expired": False,
        "next_check_in": 12.5,
    }
    assert status.summary(s.zones[1]) == (
        "zone b.test. (view default): secondary, serial none (SERVFAIL), journal empty, "
        "primaries 127.0.0.3#5301, last transfer: none"
    )


# -- the control command table ---------------------------------------------------------


def _table(calls: list[tuple[str, list[Any], str | None]]) -> dict[str, control.Command]:
    def handler(name: str) -> Any:
        def run(targets: list[Any], zone: str | None) -> dict[str, Any]:
            calls.append((name, targets, zone))
            return {"ok": True}

        return run

    return {
        "status": control.Command(handler("status")),
        "reload": control.Command(handler("reload"), control.ZoneArg.OPTIONAL),
        "notify": control.Command(handler("notify"), control.ZoneArg.REQUIRED),
    }


def _serving(zone: dns.name.Name) -> list[tuple[str, dns.name.Name]]:
    return [("default", zone)] if zone == A else []


def test_unknown_command_lists_the_known_ones() -> None:
    reply = control.dispatch(_table([]), {"command": "dance"}, _serving)
    assert reply == {
        "ok": False,
        "error": "unknown command 'dance' (known: notify, reload, status)",
    }


def test_zone_rules() -> None:
    calls: list[tuple[str, list[Any], str | None]] = []
    table = _table(calls)
    assert control.dispatch(table, {"command": "notify"}, _serving) == {
        "ok": False,
        "error": "notify needs a zone",
    }
    assert control.dispatch(table, {"command": "reload", "zone": "b.test"}, _serving) == {
        "ok": False,
        "error": "no such zone: b.test.",
    }
    bad = control.dispatch(table, {"command": "status", "zone": "a..test"}, _serving)
    assert bad["ok"] is False and bad["error"].startswith("bad zone name 'a..test'")
    control.dispatch(table, {"command": "reload"}, _serving)
    control.dispatch(table, {"command": "notify", "zone": "a.test"}, _serving)
    assert calls == [("reload", [], None), ("notify", [("default", A)], "a.test")]


# -- the log rate limit -----------------------------------------------------------------


def test_log_limit_counts_what_it_suppresses() -> None:
    clock = [0.0]
    later: list[tuple[float, Any, tuple[Any, ...]]] = []
    limit = LogLimit(3, lambda: clock[0], lambda delay, f, *args: later.append((delay, f, args)))
    allowed = [limit.allow("TSIG BADSIG") for _ in range(10)]
    assert allowed == [True] * 3 + [False] * 7
    assert limit.allow("TSIG BADKEY"), "each kind has its own budget"
    assert len(later) == 1 and later[0][0] == 1.0  # one summary, at the window's end
    clock[0] = 1.0
    assert not limit.allow("TSIG BADSIG"), "counted into the window until its summary is out"
    delay, flush, args = later[0]
    flush(*args)
    assert limit.allow("TSIG BADSIG"), "a new window after the summary"
