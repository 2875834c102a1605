"""Sharded name tables: a dict's behaviour, without growing in one long step.

``authd.namedict.NameDict`` holds the node tables of big zones (and the
loader's scaffolding for them) so that no single hash table outgrows
``SHARD_SIZE`` entries: CPython rebuilds a growing table in one GIL-holding
step, and at a million names that step stalls the reactor thread for 50-130 ms.
These tests check the mapping behaves exactly as a dict with case-insensitive
DNS names as keys, that big zones really are kept in bounded tables, and that
a zone held in shards answers as the same zone held in one dict.
"""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from dnsdiff import questions_for_zone, read_zone
from hypothesis import given, settings
from hypothesis import strategies as st
from zonekit import exchange

import authd.namedict
import authd.zonefile
from authd.adapters.memory import dismantle
from authd.changeset import apply, diff
from authd.config import Options
from authd.namedict import NameDict, name_dict, replaced, shard_count
from authd.snapshot import Snapshot, View
from authd.zone import ZoneVersion, load_zone
from harness import zonegen

REPO = Path(__file__).resolve().parent.parent

N = dns.name.from_text


def test_shard_count_is_a_power_of_two_covering_the_entries() -> None:
    size = authd.namedict.SHARD_SIZE
    assert shard_count(0) == 1
    assert shard_count(size) == 1
    assert shard_count(size + 1) == 2
    assert shard_count(30 * size) == 32
    assert shard_count(1_000_000) * size >= 1_000_000


def test_small_tables_are_plain_dicts_and_big_ones_are_sharded() -> None:
    assert type(name_dict(100)) is dict
    big = name_dict(authd.namedict.SHARD_SIZE * 4)
    assert isinstance(big, NameDict)
    assert len(big._shards) == 4


def test_keys_are_case_insensitive_as_dns_names_are() -> None:
    d: NameDict[int] = NameDict(10**6)
    d[N("WWW.Example.COM.")] = 1
    assert d[N("www.example.com.")] == 1
    assert N("www.EXAMPLE.com.") in d
    assert d.get(N("mail.example.com.")) is None
    assert "www.example.com." not in d  # only names are keys
    d[N("www.example.com.")] = 2
    assert len(d) == 1 and d[N("WWW.EXAMPLE.COM.")] == 2


# Names over a small alphabet, so that case variants of one name collide.
_labels = st.text(alphabet="aAbB-", min_size=1, max_size=3)
_names = st.lists(_labels, min_size=1, max_size=3).map(lambda ls: N(".".join(ls) + ".test."))
_ops = st.lists(
    st.tuples(st.sampled_from(["set", "del", "get", "pop"]), _names, st.integers(0, 9)),
    max_size=60,
)


@given(_ops)
@settings(max_examples=200)
def test_behaves_exactly_as_a_dict(ops: list[tuple[str, dns.name.Name, int]]) -> None:
    sharded: NameDict[int] = NameDict(authd.namedict.SHARD_SIZE * 8)
    model: dict[dns.name.Name, int] = {}
    for op, name, value in ops:
        if op == "set":
            sharded[name] = model[name] = value
        elif op == "del":
            if name in model:
                del model[name]
                del sharded[name]
            else:
                with pytest.raises(KeyError):
                    del sharded[name]
        elif op == "get":
            assert sharded.get(name) == model.get(name)
            assert (name in sharded) == (name in model)
        elif model:
            key, val = sharded.popitem()
            assert model.pop(key) == val
        else:
            with pytest.raises(KeyError):
                sharded.popitem()
        assert len(sharded) == len(model)
        assert bool(sharded) == bool(model)
    assert dict(sharded.items()) == model
    assert set(sharded) == set(model) == set(sharded.keys())
    assert sorted(sharded.values()) == sorted(model.values())
    assert sharded == model


def test_replaced_copies_one_shard_and_leaves_the_original_alone() -> None:
    d: NameDict[int] = NameDict(authd.namedict.SHARD_SIZE * 16)
    names = [N(f"h{i}.example.") for i in range(200)]
    for i, name in enumerate(names):
        d[name] = i
    e = replaced(d, names[7], 700)
    assert isinstance(e, NameDict)
    assert d[names[7]] == 7 and e[names[7]] == 700
    assert len(e) == len(d) == 200
    changed = [a is not b for a, b in zip(d._shards, e._shards, strict=True)]
    assert changed.count(True) == 1
    # A plain dict is copied whole, and the original is left alone too.
    p = {names[0]: 0}
    q = replaced(p, names[0], 5)
    assert p == {names[0]: 0} and q == {names[0]: 5}


@pytest.fixture
def tiny_shards(monkeypatch: pytest.MonkeyPatch) -> int:
    """Shards and parser caches of 64 entries: any zone of a few hundred names is 'big'."""
    monkeypatch.setattr(authd.namedict, "SHARD_SIZE", 64)
    monkeypatch.setattr(authd.zonefile, "_CACHE_LIMIT", 64)
    return 64


def _generated(tmp_path: Path, records: int) -> Path:
    path = tmp_path / "gen.test.zone"
    zonegen.write_zone(str(path), records, "gen.test")
    return path


def _load(path: Path, origin: str) -> ZoneVersion:
    version = load_zone(N(origin), str(path)).version
    assert version is not None
    return version


def test_a_big_zone_is_held_in_bounded_tables(tiny_shards: int, tmp_path: Path) -> None:
    path = _generated(tmp_path, 3000)
    version = _load(path, "gen.test.")
    nodes = version.nodes
    assert isinstance(nodes, NameDict)
    sizes = [len(shard) for shard in nodes._shards]
    assert len(sizes) == shard_count(len(nodes)) and len(sizes) >= 16
    # Hashing spreads names evenly: no shard far above its share.
    assert max(sizes) <= 2 * tiny_shards, sizes
    assert version.record_count == 3000


def test_sharded_versions_diff_apply_and_reserial_like_plain_ones(
    tiny_shards: int, tmp_path: Path
) -> None:
    path = _generated(tmp_path, 1000)
    old = _load(path, "gen.test.")
    text = path.read_text()
    assert "2024010101" in text and "www\tIN\tA\t192.0.2.80" in text
    path.write_text(
        text.replace("2024010101", "2024010102").replace(
            "www\tIN\tA\t192.0.2.80", 'www\tIN\tA\t192.0.2.81\nnew\tIN\tTXT\t"added"'
        )
    )
    new = _load(path, "gen.test.")
    assert isinstance(new.nodes, NameDict)
    cs = diff(old, new)
    assert {(rr.name.to_text(), str(rr.rdata)) for rr in cs.removed} == {
        ("www.gen.test.", "192.0.2.80")
    }
    assert {(rr.name.to_text(), str(rr.rdata)) for rr in cs.added} == {
        ("www.gen.test.", "192.0.2.81"),
        ("new.gen.test.", '"added"'),
    }
    applied = apply(old, cs).version
    assert applied is not None
    assert applied.serial == 2024010102 and applied.same_content(new)
    assert not applied.same_content(old)
    reserialed = new.with_serial(7)
    assert reserialed.serial == 7 and new.serial == 2024010102
    assert reserialed.same_content(new)
    # Taking a retired version apart empties it a node at a time.
    entries = len(old.nodes)
    assert dismantle([old.nodes]) == entries > 0
    assert len(old.nodes) == 0


def test_retiring_a_version_leaves_the_shards_its_successor_shares(
    tiny_shards: int, tmp_path: Path
) -> None:
    """An IXFR applied in place shares every shard it did not change with the
    version before; retiring that one (``memory.retire``) must take apart
    only the shards nobody else holds."""
    from twisted.internet.task import Clock

    from authd.adapters import memory
    from authd.changeset import RR, Changeset, apply_incremental

    old = _load(_generated(tmp_path, 3000), "gen.test.")
    www = N("www.gen.test.")
    a = old.nodes[www][dns.rdatatype.A]
    soa = old.soa
    cs = Changeset(
        RR(old.origin, soa.ttl, soa[0]),
        RR(old.origin, soa.ttl, soa[0].replace(serial=old.serial + 1)),
        (RR(www, a.ttl, a[0]),),
        (RR(www, a.ttl, dns.rdata.from_text("IN", "A", "192.0.2.99")),),
    )
    applied = apply_incremental(old, cs)
    assert applied is not None
    new = applied.version
    assert isinstance(new.nodes, NameDict) and isinstance(old.nodes, NameDict)
    shared = [s for s in new.nodes.shard_tables() if any(s is t for t in old.nodes.shard_tables())]
    assert len(shared) >= len(new.nodes.shard_tables()) - 2
    names = len(new.nodes)
    # The compiled forms share their untouched shards the same way.
    assert old.wire is not None and new.wire is not None
    compiled_new = [*new.wire.shards, *new.wire.referrers]
    compiled_old_only = [
        s for s in (*old.wire.shards, *old.wire.referrers) if not any(s is t for t in compiled_new)
    ]
    compiled_shared = [
        s for s in (*old.wire.shards, *old.wire.referrers) if any(s is t for t in compiled_new)
    ]
    assert compiled_old_only and compiled_shared
    opts = Options()
    snap_old = Snapshot((View("default", 0, {old.origin: old}),), opts)
    snap_new = Snapshot((View("default", 0, {new.origin: new}),), opts)
    taken: list[list[object]] = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(memory, "RETIRE_THRESHOLD", 1)
    monkey.setattr(
        memory.threads, "deferToThread", lambda f, tables: taken.append(tables) or _Done()
    )
    try:
        clock = Clock()
        memory.retire(clock, snap_old, snap_new)
        del snap_old, old, applied
        clock.advance(memory.RETIRE_DELAY + 1)
    finally:
        monkey.undo()
    assert taken, "the old version was not retired"
    doomed = taken[0]
    assert doomed and not any(t is s for t in doomed for s in shared)
    assert not any(t is s for t in doomed for s in compiled_shared)
    assert all(any(t is s for t in doomed) for s in compiled_old_only)
    dismantle(doomed)
    assert len(new.nodes) == names
    assert new.nodes[www][dns.rdatatype.A][0].to_text() == "192.0.2.99"
    node = new.wire.node(b"\x03www\x03gen\x04test\x00")
    assert node is not None and dns.rdatatype.A in node.rrsets


class _Done:
    def addCallback(self, *_: object) -> None:  # noqa: N802 (Twisted's name)
        return None


def _zone_files() -> list[tuple[str, Path]]:
    found = []
    for folder in (REPO / "zones", REPO / "tests" / "zones"):
        for path in sorted(folder.glob("*.zone")):
            found.append((path.name.removesuffix(".zone") + ".", path))
    return found


@pytest.mark.parametrize(("origin", "path"), _zone_files(), ids=lambda v: str(v))
def test_a_sharded_zone_answers_as_an_unsharded_one(
    origin: str, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _load(path, origin)
    monkeypatch.setattr(authd.namedict, "SHARD_SIZE", 2)
    sharded = _load(path, origin)
    assert type(plain.nodes) is dict and isinstance(sharded.nodes, NameDict)
    snapshots = [
        Snapshot((View("default", 0, {v.origin: v}),), Options(answer_cache_entries=0))
        for v in (plain, sharded)
    ]
    questions = questions_for_zone(read_zone(origin, path))
    assert len(questions) > 20
    for q in questions:
        query = dns.message.make_query(q.qname, q.qtype, use_edns=0 if q.edns else False)
        query.flags = 0
        wire = query.to_wire()
        plain_out, sharded_out = (exchange(s, wire, tcp=q.tcp) for s in snapshots)
        assert plain_out is not None and sharded_out is not None
        # The same bytes but for the order inside RRsets, which dnspython shuffles.
        assert len(plain_out) == len(sharded_out), q.label()
        assert dns.message.from_wire(plain_out) == dns.message.from_wire(sharded_out), q.label()
