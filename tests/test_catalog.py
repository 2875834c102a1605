"""Catalog zones (RFC 9432, version 2): the pure core in ``authd.catalog``.

Tables: catalog text -> the members read and the problems logged (section 5's
checks: version, one PTR per member, unique member names, invalid entries
ignored and never fatal); members -> the generated zone; a config and
catalogs -> the secondary zones added; config keys -> refusals by key path;
and the generated catalog's serial across reloads and restarts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import dns.name
import pytest
from zonekit import zone_from_text

import authd.catalog as catalog
from authd import limits
from authd.build import LoadOutcome, Stored, plan_snapshot
from authd.config import CatalogRole, ZoneType, config_from_dict
from authd.errors import ConfigError
from authd.serial import increased

CAT = "catalog.invalid."
N = dns.name.from_text


def cat_text(body: str, version: str = 'version TXT "2"\n') -> str:
    return (
        f"$ORIGIN {CAT}\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2419200 0\n@ NS invalid.\n"
        + version
        + body
    )


def read_text(body: str, version: str = 'version TXT "2"\n') -> catalog.Catalog:
    return catalog.read(zone_from_text(cat_text(body, version), CAT))


# -- reading: RFC 9432 section 5 ---------------------------------------------------------------

READ_CASES: list[tuple[str, str, str, list[tuple[str, str | None]], list[str]]] = [
    # (id, version lines, body, members (name, group) in unique-id order, problem fragments)
    ("one member", 'version TXT "2"\n', "m1.zones PTR a.example.\n", [("a.example.", None)], []),
    (
        "group",
        'version TXT "2"\n',
        'm1.zones PTR a.example.\ngroup.m1.zones TXT "blue"\n',
        [("a.example.", "blue")],
        [],
    ),
    ("no version", "", "m1.zones PTR a.example.\n", [], ["no version property"]),
    ("version 1", 'version TXT "1"\n', "m1.zones PTR a.example.\n", [], ["unsupported version"]),
    (
        "two versions",
        'version TXT "2"\nversion TXT "1"\n',
        "m1.zones PTR a.example.\n",
        [],
        ["unsupported version"],
    ),
    (
        "two strings in version",
        'version TXT "2" "2"\n',
        "m1.zones PTR a.example.\n",
        [],
        ["unsupported version"],
    ),
    (
        "two PTRs at one member",
        'version TXT "2"\n',
        "m1.zones PTR a.example.\nm1.zones PTR b.example.\nm2.zones PTR c.example.\n",
        [("c.example.", None)],
        ["member m1 has 2 PTRs: ignored"],
    ),
    (
        "one zone under two ids: the first id wins",
        'version TXT "2"\n',
        "m2.zones PTR a.example.\nm1.zones PTR a.example.\n",
        [("a.example.", None)],
        ["a.example. listed twice (m1 and m2): m2 ignored"],
    ),
    (
        "a member inside the catalog",
        'version TXT "2"\n',
        f"m1.zones PTR x.{CAT}\nm2.zones PTR b.example.\n",
        [("b.example.", None)],
        ["inside the catalog: ignored"],
    ),
    (
        "a group of two strings is ignored, the member kept",
        'version TXT "2"\n',
        'm1.zones PTR a.example.\ngroup.m1.zones TXT "a" "b"\n',
        [("a.example.", None)],
        ["group is not one TXT string"],
    ),
    (
        "two group records",
        'version TXT "2"\n',
        'm1.zones PTR a.example.\ngroup.m1.zones TXT "a"\ngroup.m1.zones TXT "b"\n',
        [("a.example.", None)],
        ["group is not one TXT string"],
    ),
    (
        "an empty group",
        'version TXT "2"\n',
        'm1.zones PTR a.example.\ngroup.m1.zones TXT ""\n',
        [("a.example.", None)],
        ["empty group"],
    ),
    (
        "coo, ext and unknown properties are not acted on",
        'version TXT "2"\n',
        "m1.zones PTR a.example.\ncoo.m1.zones PTR other.invalid.\n"
        'serial.ext.m1.zones TXT "x"\nfoo.m1.zones TXT "y"\nnote TXT "top"\n',
        [("a.example.", None)],
        [],
    ),
    (
        "a member node with no PTR is no member",
        'version TXT "2"\n',
        'm1.zones TXT "not a ptr"\nm2.zones PTR b.example.\n',
        [("b.example.", None)],
        [],
    ),
    (
        "unique ids compare without case",
        'version TXT "2"\n',
        'M1.zones PTR a.example.\ngroup.m1.zones TXT "g"\n',
        [("a.example.", "g")],
        [],
    ),
]


@pytest.mark.parametrize(
    ("version", "body", "members", "problems"),
    [c[1:] for c in READ_CASES],
    ids=[c[0] for c in READ_CASES],
)
def test_read(
    version: str, body: str, members: list[tuple[str, str | None]], problems: list[str]
) -> None:
    got = read_text(body, version)
    assert [(m.name.to_text(), m.group) for m in got.members] == members
    assert got.valid == (not any("version" in p for p in problems))
    assert len(got.problems) == len(problems)
    for fragment, line in zip(problems, got.problems, strict=True):
        assert fragment in line
        assert line.startswith(f"catalog {CAT}:")


def test_max_catalog_members_the_rest_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "MAX_CATALOG_MEMBERS", 3)
    body = "".join(f"m{i}.zones PTR z{i}.example.\n" for i in range(5))
    got = read_text(body)
    assert [m.name.to_text() for m in got.members] == [f"z{i}.example." for i in range(3)]
    assert got.problems == (f"catalog {CAT}: more than 3 members: the rest ignored",)
    assert limits.MAX_CATALOG_MEMBERS >= 10_000  # the real one fits a large fleet


def test_max_catalog_problems_counts_the_rest() -> None:
    many = limits.MAX_CATALOG_PROBLEMS + 7
    body = "".join(
        f"m{i}.zones PTR a{i}.example.\nm{i}.zones PTR b{i}.example.\n" for i in range(many)
    )
    got = read_text(body)
    assert got.valid and got.members == ()
    assert len(got.problems) == limits.MAX_CATALOG_PROBLEMS + 1
    assert got.problems[-1] == f"catalog {CAT}: and 7 more problems"


# -- producing ----------------------------------------------------------------------------------


def test_generate_the_zone_rfc9432_describes() -> None:
    version = catalog.generate(N(CAT), [(N("b.example."), "g1"), (N("a.example."), None)], 7)
    a, b = catalog.unique_id(N("a.example.")), catalog.unique_id(N("b.example."))
    texts = sorted(
        line
        for node in version.nodes.values()
        for rrset in node.values()
        for line in rrset.to_text().splitlines()
    )
    assert texts == sorted(
        [
            f"{CAT} 0 IN SOA invalid. invalid. 7 3600 600 2419200 0",
            f"{CAT} 0 IN NS invalid.",
            f'version.{CAT} 0 IN TXT "2"',
            f"{a}.zones.{CAT} 0 IN PTR a.example.",
            f"{b}.zones.{CAT} 0 IN PTR b.example.",
            f'group.{b}.zones.{CAT} 0 IN TXT "g1"',
        ]
    )


def test_unique_id_is_stable_and_ignores_case() -> None:
    # Pinned: a producer's ids must not change across versions of authd, or
    # every consumer would drop and re-add every member (RFC 9432 section 4.1).
    assert catalog.unique_id(N("a.example.")) == "af4181b9fc9791e7"
    assert catalog.unique_id(N("A.Example.")) == catalog.unique_id(N("a.example."))


def test_colliding_unique_ids_are_lengthened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "unique_id", lambda name, length=16: "ab" * (length // 2))
    ids = catalog.member_ids([N("x.example."), N("y.example."), N("z.example.")])
    assert sorted(len(v) for v in ids.values()) == [16, 18, 20]
    assert len(set(ids.values())) == 3


def test_generate_then_read_round_trips() -> None:
    members = [(N(f"z{i}.example."), f"g{i % 3}" if i % 2 else None) for i in range(50)]
    members.append((N("quote.example."), 'a "quoted" \\ group'))
    got = catalog.read(catalog.generate(N(CAT), members))
    assert got.valid and got.problems == ()
    assert sorted((m.name, m.group) for m in got.members) == sorted(members)


def test_digest_follows_members_not_their_order() -> None:
    a = [(N("a.example."), None), (N("b.example."), "g")]
    assert catalog.digest(a) == catalog.digest(list(reversed(a)))
    assert catalog.digest(a) != catalog.digest(a[:1])
    assert catalog.digest(a) != catalog.digest([(N("a.example."), None), (N("b.example."), None)])


# -- the config -----------------------------------------------------------------------------------


def _zone_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}zone"
    path.write_text(
        f"$ORIGIN {name}\n$TTL 300\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n"
    )
    return str(path)


def _config(tmp_path: Path, zones: list[dict[str, Any]]) -> Any:
    data = {
        "listen": [{"address": "127.0.0.1", "port": 5300}],
        "options": {"state_dir": str(tmp_path / "state")},
        "zones": zones,
    }
    return config_from_dict(data, None, str(tmp_path))


def producer_zones(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        {"name": CAT, "catalog_role": "generate", "allow_transfer": ["any"]},
        {"name": "a.example.", "file": _zone_file(tmp_path, "a.example."), "catalog_zone": CAT},
        {
            "name": "b.example.",
            "file": _zone_file(tmp_path, "b.example."),
            "catalog_zone": CAT,
            "catalog_group": "blue",
        },
        {"name": "c.example.", "file": _zone_file(tmp_path, "c.example.")},
    ]


def test_config_producer(tmp_path: Path) -> None:
    config = _config(tmp_path, producer_zones(tmp_path))
    zones = {z.name.to_text(): z for z in config.views[0].zones}
    assert zones[CAT].catalog_role is CatalogRole.GENERATE
    assert zones[CAT].type is ZoneType.PRIMARY
    assert zones[CAT].serial.value == "unixtime"
    assert zones["b.example."].catalog_zone == N(CAT)
    assert zones["b.example."].catalog_group == "blue"
    assert catalog.members_of(config.views[0], zones[CAT]) == [
        (N("a.example."), None),
        (N("b.example."), "blue"),
    ]


CONSUMER = {
    "name": CAT,
    "type": "secondary",
    "catalog_role": "interpret",
    "primaries": [{"address": "192.0.2.1", "port": 53}],
}

CONFIG_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("zones[0].file", {"name": CAT, "catalog_role": "generate", "file": "x"}, "has no file"),
    (
        "zones[0].catalog_role",
        {"name": CAT, "catalog_role": "generate", "type": "secondary", "primaries": ["192.0.2.1"]},
        "a generated catalog is a primary zone",
    ),
    (
        "zones[0].catalog_role",
        {"name": CAT, "catalog_role": "interpret", "file": "{file}"},
        "an interpreted catalog is a secondary zone",
    ),
    ("zones[0].catalog_role", {"name": CAT, "catalog_role": "mirror"}, "generate or interpret"),
    (
        "zones[0].serial",
        {"name": CAT, "catalog_role": "generate", "serial": "keep"},
        "no file serial to keep",
    ),
    (
        "zones[0].catalog_zone",
        {"name": "a.example.", "file": "{file}", "catalog_zone": "nope.invalid."},
        "no zone nope.invalid. with catalog_role: generate",
    ),
    (
        "zones[0].catalog_group",
        {"name": "a.example.", "file": "{file}", "catalog_group": "g"},
        "a group needs catalog_zone",
    ),
    (
        "zones[0].catalog_template",
        {"name": "a.example.", "file": "{file}", "catalog_template": {}},
        "only for a zone with catalog_role: interpret",
    ),
    (
        "zones[0].catalog_zone",
        {"name": CAT, "catalog_role": "generate", "catalog_zone": CAT},
        "no member of a catalog",
    ),
    (
        "zones[0].catalog_template.color",
        {**CONSUMER, "catalog_template": {"color": "red"}},
        "unknown key",
    ),
    (
        "zones[0].catalog_template.primaries",
        {**CONSUMER, "catalog_template": {"primaries": []}},
        "at least one primary",
    ),
    (
        "zones[0].catalog_groups",
        {**CONSUMER, "catalog_groups": {"x" * (limits.MAX_CATALOG_GROUP_BYTES + 1): {}}},
        "a group name is 1 to 255 bytes",
    ),
    (
        "zones[0].catalog_groups.blue.notify",
        {**CONSUMER, "catalog_groups": {"blue": {"notify": "loud"}}},
        "expected yes, explicit or no",
    ),
    (
        "zones[0].catalog_group",
        {
            "name": "a.example.",
            "file": "{file}",
            "catalog_zone": CAT,
            "catalog_group": "x" * (limits.MAX_CATALOG_GROUP_BYTES + 1),
        },
        "a group name is 1 to 255 bytes",
    ),
]


@pytest.mark.parametrize(
    ("path", "zone", "message"), CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS]
)
def test_config_refusals_name_the_key(
    tmp_path: Path, path: str, zone: dict[str, Any], message: str
) -> None:
    file = _zone_file(tmp_path, "a.example.")
    zone = {k: (v.replace("{file}", file) if isinstance(v, str) else v) for k, v in zone.items()}
    extra = (
        [{"name": CAT, "catalog_role": "generate"}]
        if zone.get("catalog_zone") == CAT and zone["name"] != CAT
        else []
    )
    with pytest.raises(ConfigError) as e:
        _config(tmp_path, [zone, *extra])
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)


# -- expanding a consumer's config ---------------------------------------------------------------


def consumer(tmp_path: Path, *extra: dict[str, Any]) -> Any:
    zones = [
        {
            **CONSUMER,
            "catalog_template": {"allow_transfer": ["127.0.0.1"]},
            "catalog_groups": {"blue": {"primaries": [{"address": "192.0.2.9", "port": 5353}]}},
        },
        *extra,
    ]
    return _config(tmp_path, zones)


def listed(*members: tuple[str, str | None]) -> catalog.Catalog:
    return catalog.Catalog(
        N(CAT), True, tuple(catalog.Member(N(n), catalog.unique_id(N(n)), g) for n, g in members)
    )


def test_expand_adds_members_as_secondaries_of_their_group(tmp_path: Path) -> None:
    config = consumer(tmp_path)
    out = catalog.expand(
        config,
        {
            ("default", N(CAT)): listed(
                ("a.example.", None), ("b.example.", "blue"), ("c.example.", "red")
            )
        },
    )
    assert out.problems == ()
    zones = {z.name.to_text(): z for z in out.config.views[0].zones}
    assert list(zones) == [CAT, "a.example.", "b.example.", "c.example."]
    a, b, c = zones["a.example."], zones["b.example."], zones["c.example."]
    assert a.type is ZoneType.SECONDARY and a.from_catalog == N(CAT)
    assert [(p.address, p.port) for p in a.primaries] == [("192.0.2.1", 53)]  # the catalog's
    assert a.allow_notify is not None and a.allow_notify.allows("192.0.2.1")
    assert a.allow_transfer is not None and a.allow_transfer.allows("127.0.0.1")
    assert [(p.address, p.port) for p in b.primaries] == [("192.0.2.9", 5353)]  # group blue
    assert b.allow_notify is not None and b.allow_notify.allows("192.0.2.9")
    assert not b.allow_notify.allows("192.0.2.1")
    assert [(p.address, p.port) for p in c.primaries] == [("192.0.2.1", 53)]  # unknown group
    assert a.file == str(tmp_path / "state" / "default" / "a.example.zone")
    assert catalog.member_set(out.config) == {
        ("default", N(CAT), N(name), group, catalog.unique_id(N(name)))
        for name, group in [("a.example.", None), ("b.example.", "blue"), ("c.example.", "red")]
    }


def test_resets_a_member_under_a_new_unique_id(tmp_path: Path) -> None:
    config = consumer(tmp_path)
    before = catalog.expand(
        config, {("default", N(CAT)): listed(("a.example.", None), ("b.example.", None))}
    )
    moved = catalog.Catalog(
        N(CAT),
        True,
        (
            catalog.Member(N("a.example."), catalog.unique_id(N("a.example.")), None),
            catalog.Member(N("b.example."), "new-id", None),
        ),
    )
    after = catalog.expand(config, {("default", N(CAT)): moved}, before.config)
    assert [(v, z.name, z.catalog_id) for v, z in catalog.resets(before.config, after.config)] == [
        ("default", N("b.example."), "new-id")
    ]
    assert catalog.resets(after.config, after.config) == []


def test_expand_a_zone_in_the_config_wins(tmp_path: Path) -> None:
    config = consumer(tmp_path, {"name": "a.example.", "file": _zone_file(tmp_path, "a.example.")})
    out = catalog.expand(
        config, {("default", N(CAT)): listed(("a.example.", None), ("b.example.", None))}
    )
    zones = {z.name.to_text(): z for z in out.config.views[0].zones}
    assert zones["a.example."].type is ZoneType.PRIMARY and zones["a.example."].from_catalog is None
    assert zones["b.example."].from_catalog == N(CAT)
    assert out.problems == (
        f"catalog {CAT} member a.example. (view default): also listed by the config, which wins",
    )


def test_expand_two_catalogs_listing_one_zone_the_first_wins(tmp_path: Path) -> None:
    other = {**CONSUMER, "name": "second.invalid."}
    config = consumer(tmp_path, other)
    second = dataclasses.replace(
        listed(("a.example.", None), ("z.example.", None)), zone=N("second.invalid.")
    )
    out = catalog.expand(
        config,
        {
            ("default", N(CAT)): listed(("a.example.", None)),
            ("default", N("second.invalid.")): second,
        },
    )
    owners = {z.name.to_text(): z.from_catalog for z in out.config.views[0].zones if z.from_catalog}
    assert owners == {"a.example.": N(CAT), "z.example.": N("second.invalid.")}
    assert out.problems == (
        f"catalog second.invalid. member a.example. (view default): "
        f"also listed by catalog {CAT}, which wins",
    )


def test_expand_an_invalid_or_missing_catalog_keeps_the_members_it_had(tmp_path: Path) -> None:
    config = consumer(tmp_path)
    before = catalog.expand(config, {("default", N(CAT)): listed(("a.example.", "blue"))}).config
    broken = catalog.Catalog(N(CAT), False, problems=(f"catalog {CAT}: no version property",))
    kept = catalog.expand(config, {("default", N(CAT)): broken}, before)
    assert catalog.member_set(kept.config) == catalog.member_set(before)
    assert kept.problems == (
        f"catalog {CAT}: no version property; keeping its members as they were",
    )
    # No copy at all (expired, or not transferred yet): the same.
    assert catalog.member_set(catalog.expand(config, {}, before).config) == catalog.member_set(
        before
    )
    # Without earlier members there is nothing to keep.
    assert catalog.member_set(catalog.expand(config, {("default", N(CAT)): broken}).config) == set()


def test_expand_is_idempotent_on_an_expanded_config(tmp_path: Path) -> None:
    config = consumer(tmp_path)
    cats = {("default", N(CAT)): listed(("a.example.", None))}
    once = catalog.expand(config, cats).config
    twice = catalog.expand(once, cats, once).config
    assert [z.name for z in twice.views[0].zones] == [z.name for z in once.views[0].zones]


def test_catalogs_of_reads_the_served_copy(tmp_path: Path) -> None:
    config = consumer(tmp_path)
    from authd.snapshot import Snapshot, View

    version = catalog.generate(N(CAT), [(N("a.example."), None)])
    snap = Snapshot((View("default", 0, {N(CAT): version}),), config.options)
    got = catalog.catalogs_of(config, snap)
    assert [m.name for m in got[("default", N(CAT))].members] == [N("a.example.")]
    empty = Snapshot((View("default", 0, {N(CAT): None}),), config.options)
    assert catalog.catalogs_of(config, empty) == {}


# -- the generated catalog's serial -------------------------------------------------------------


def _catalog_event(build: Any) -> Any:
    return next(e for e in build.events if e.zone == N(CAT))


def test_serial_follows_member_changes_and_survives_restarts(tmp_path: Path) -> None:
    zones = producer_zones(tmp_path)
    config = _config(tmp_path, zones)
    first = plan_snapshot(config, None, 1, now=1_700_000_000.0)
    event = _catalog_event(first)
    assert event.outcome is LoadOutcome.LOADED and event.serial == 1_700_000_000
    record = next(r for r in first.served if r.zone == N(CAT))
    # A reload with the same members: the same version, no new serial.
    again = plan_snapshot(config, first.snapshot, 2, now=1_700_000_100.0)
    assert _catalog_event(again).outcome is LoadOutcome.UNCHANGED
    assert again.snapshot.view_zone("default", N(CAT)) is first.snapshot.view_zone(
        "default", N(CAT)
    )
    # A member added: the serial goes up, the journal holds the change for IXFR.
    zones[3]["catalog_zone"] = CAT
    grown = _config(tmp_path, zones)
    third = plan_snapshot(grown, first.snapshot, 3, now=1_700_000_200.0)
    assert _catalog_event(third).serial == 1_700_000_200
    journal = third.snapshot.views[0].journals[N(CAT)]
    assert [(e.serial_from, e.serial_to) for e in journal.entries] == [
        (1_700_000_000, 1_700_000_200)
    ]
    # Only a group changes: that is a change too.
    zones[1]["catalog_group"] = "red"
    regrouped = plan_snapshot(_config(tmp_path, zones), third.snapshot, 4, now=1_700_000_300.0)
    assert _catalog_event(regrouped).serial == 1_700_000_300
    del zones[1]["catalog_group"]
    # A restart with the members as they were: the serial served before.
    stored = {("default", N(CAT)): Stored(served=(record.digest, record.serial))}
    restarted = plan_snapshot(config, None, 1, now=1_800_000_000.0, stored=stored)
    assert _catalog_event(restarted).serial == 1_700_000_000
    assert not [r for r in restarted.served if r.zone == N(CAT)]
    # A restart with other members: above what secondaries have, never below.
    moved = plan_snapshot(grown, None, 1, now=1_600_000_000.0, stored=stored)
    serial = _catalog_event(moved).serial
    assert serial is not None and increased(1_700_000_000, serial)


# -- builds that follow the catalogs (authd.adapters.catalogs) ---------------------------------


def test_a_start_loads_the_members_of_the_stored_catalog_and_a_drop_removes_their_state(
    tmp_path: Path,
) -> None:
    from authd.adapters import catalogs
    from authd.snapshot import with_zone

    c_file = _zone_file(tmp_path, "c.example.")
    base = consumer(tmp_path, {"name": "c.example.", "file": c_file})
    folder = tmp_path / "state" / "default"
    folder.mkdir(parents=True)
    body = "m1.zones PTR a.example.\nm2.zones PTR b.example.\nm3.zones PTR c.example.\n"
    (folder / "catalog.invalid.zone").write_text(cat_text(body))
    (folder / "a.example.zone").write_text(
        "$ORIGIN a.example.\n$TTL 300\n@ SOA ns hm 7 7200 3600 1209600 300\n"
        "@ NS ns\nns A 192.0.2.1\n"
    )
    config, snap, events, problems, _ = catalogs.build_expanded(base, None, None, 0, 1e9)
    assert [z.name.to_text() for z in config.views[0].zones] == [
        CAT,
        "c.example.",
        "a.example.",
        "b.example.",
    ]
    served = snap.views[0].zones
    assert served[N("a.example.")] is not None and served[N("a.example.")].serial == 7
    assert served[N("b.example.")] is None  # no copy yet: its first transfer fills it
    assert next(e for e in events if e.zone == N("b.example.")).awaiting_transfer
    assert problems == (
        f"catalog {CAT} member c.example. (view default): also listed by the config, which wins",
    )
    # The same members again, the config not read again: the very same config.
    same, _, _, _, unchanged = catalogs.build_expanded(
        base, config, snap, 1, 1e9, set(), keep_config=True
    )
    assert same is config
    assert unchanged == catalogs.MemberChanges()

    # A new copy of the catalog without a: a is dropped, and its state with it.
    smaller = zone_from_text(cat_text("m2.zones PTR b.example.\n"), CAT)
    snap = with_zone(snap, "default", N(CAT), smaller, None, 2)
    new, snap2, _, _, change = catalogs.build_expanded(
        base, config, snap, 3, 1e9, set(), keep_config=True
    )
    assert N("a.example.") not in snap2.views[0].zones
    gone = catalogs.dropped(config, new)
    assert gone == [("default", N("a.example."), str(folder / "a.example.zone"))]
    assert change == catalogs.MemberChanges((), tuple(gone), ())
    assert catalogs.clean_up(new, gone) == [str(folder / "a.example.zone")]
    assert not (folder / "a.example.zone").exists()
    assert (folder / "catalog.invalid.zone").exists()
