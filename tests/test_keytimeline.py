"""authd.keytimeline: a ZSK pre-publication and a KSK double-DS rollover,
checked at every instant where anything changes (and either side of it).

The checks are written from RFC 7583's reasoning, not from the module's
helpers: a resolver must always find a DS-covered key signing the DNSKEY
RRset and a published key signing the zone, and never a signature by a key
missing from a DNSKEY RRset it may still have cached.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from authd.keytimeline import (
    KeyTimes,
    Timings,
    cds_end,
    ksk_rollover_begin,
    ksk_rollover_ds_seen,
    published,
    rollover_due,
    view,
    zsk_rollover,
)

LONG_AGO = -(10**7)  # the zone's first keys: published, active and DS-covered long before 0
HOUR = 3600


def first_keys() -> tuple[KeyTimes, KeyTimes]:
    ksk = KeyTimes(1, "ksk", LONG_AGO, LONG_AGO, LONG_AGO, ds_seen=LONG_AGO)
    zsk = KeyTimes(2, "zsk", LONG_AGO, LONG_AGO, LONG_AGO)
    return ksk, zsk


def ds_in_every_cache(key: KeyTimes, t: Timings, now: int, cds: tuple[int, ...]) -> bool:
    """The parent has the DS, every cache's DS RRset holds it, and the child's
    CDS still asks for it (the parent removes it no sooner)."""
    if key.ds_seen is None or key.ds_seen + t.parent_propagation_delay + t.parent_ds_ttl > now:
        return False
    return key.tag in cds


def check_instant(keys: list[KeyTimes], t: Timings, now: int) -> None:
    v = view(keys, t, now)
    by_tag = {k.tag: k for k in keys}
    # Some published KSK with its DS in every cache signs the DNSKEY RRset.
    assert any(ds_in_every_cache(by_tag[tag], t, now, v.cds) for tag in v.sign_dnskey), (now, keys)
    # Some published key signs the zone.
    assert v.sign_zone and set(v.sign_zone) <= set(v.published), (now, keys)
    # Every key signing the DNSKEY RRset is one whose DS the CDS asks for.
    assert set(v.sign_dnskey) <= set(v.cds), (now, keys)
    for tag in v.sign_zone:
        key = by_tag[tag]
        # A zone signature's key is in every DNSKEY RRset a cache may hold.
        assert key.publish is not None
        assert key.publish == LONG_AGO or key.publish + t.propagation_delay + t.dnskey_ttl <= now
    for key in keys:
        if key.remove is not None and key.role == "ksk":
            # A removed KSK's DS is asked for until no cache can hold its DNSKEY.
            last = key.remove + t.propagation_delay + t.dnskey_ttl - 1
            assert last < key.remove or key.tag in view(keys, t, last).cds
        if key.remove is not None and key.role == "zsk":
            # The DNSKEY leaves only once the key's signatures have left the caches.
            assert key.retire is not None
            assert key.retire + t.propagation_delay + t.max_zone_ttl <= key.remove
    # Nothing changes before the announced next event.
    if v.next_event is not None:
        later = view(keys, t, v.next_event - 1)
        assert dataclasses.replace(later, next_event=None) == dataclasses.replace(
            v, next_event=None
        )


def instants(keys: list[KeyTimes], t: Timings) -> list[int]:
    times = {0}
    for k in keys:
        for when in (k.created, k.publish, k.activate, k.retire, k.remove, cds_end(k, t)):
            if when is not None and when >= 0:
                times |= {when - 1, when, when + 1}
    return sorted(w for w in times if w >= 0)


timings = st.builds(
    Timings,
    dnskey_ttl=st.integers(0, 2 * 86400),
    max_zone_ttl=st.integers(0, 2 * 86400),
    propagation_delay=st.integers(0, 4 * HOUR),
    parent_ds_ttl=st.integers(0, 2 * 86400),
    parent_propagation_delay=st.integers(0, 4 * HOUR),
    publish_safety=st.integers(0, HOUR),
    retire_safety=st.integers(0, HOUR),
    zsk_lifetime=st.sampled_from([0, 30 * 86400]),
)


@settings(max_examples=200)
@given(
    t=timings,
    zsk_start=st.integers(0, 10**6),
    second_zsk_after=st.integers(0, 10**6),
    ksk_start=st.integers(0, 10**6),
    parent_delay=st.integers(0, 10 * 86400),
)
def test_rollovers_keep_the_zone_validating_at_every_instant(
    t: Timings, zsk_start: int, second_zsk_after: int, ksk_start: int, parent_delay: int
) -> None:
    ksk, zsk = first_keys()
    old_zsk, new_zsk = zsk_rollover(zsk, 3, zsk_start, t)
    # A second ZSK rollover, possibly begun before the first one is done.
    mid_zsk, last_zsk = zsk_rollover(new_zsk, 4, zsk_start + second_zsk_after, t)
    new_ksk = ksk_rollover_begin(ksk, 5, ksk_start)
    # Before the parent has the new DS, the old KSK alone signs; the CDS asks for both.
    before = [ksk, old_zsk, mid_zsk, last_zsk, new_ksk]
    for now in instants(before, t):
        if now < ksk_start + parent_delay:
            check_instant(before, t, now)
    assert set(view(before, t, ksk_start).cds) == {1, 5}
    old_ksk, new_ksk = ksk_rollover_ds_seen(ksk, new_ksk, ksk_start + parent_delay, t)
    keys = [old_ksk, old_zsk, mid_zsk, last_zsk, new_ksk]
    for now in instants(keys, t):
        check_instant(keys, t, now)
    # Double-DS: the DNSKEY RRset never holds both KSKs.
    for now in instants(keys, t):
        assert not (published(old_ksk, now) and published(new_ksk, now))
    # In the end only the new keys are left, and the old DS is no longer asked for.
    end = max(instants(keys, t)) + 1
    v = view(keys, t, end)
    assert (set(v.published), v.sign_dnskey, v.sign_zone, v.cds) == ({4, 5}, (5,), (4,), (5,))


def test_a_zsk_rollover_waits_out_the_ttls() -> None:
    t = Timings(
        dnskey_ttl=HOUR,
        max_zone_ttl=2 * HOUR,
        propagation_delay=300,
        parent_ds_ttl=86400,
        parent_propagation_delay=HOUR,
        publish_safety=60,
        retire_safety=60,
        zsk_lifetime=30 * 86400,
    )
    _, zsk = first_keys()
    zsk = dataclasses.replace(zsk, activate=0, publish=0, created=0)
    due = rollover_due(zsk, t)
    assert due == 30 * 86400 - (300 + HOUR + 60)
    old, new = zsk_rollover(zsk, 3, due, t)
    assert (new.publish, new.activate) == (due, 30 * 86400)
    assert (old.retire, old.remove) == (30 * 86400, 30 * 86400 + 300 + 2 * HOUR + 60)
    assert view([old, new], t, due).published == (2, 3)
    assert view([old, new], t, due).sign_zone == (2,)
    assert view([old, new], t, due).next_event == 30 * 86400


def test_the_ksk_swap_waits_for_the_ds_in_every_cache() -> None:
    t = Timings(HOUR, HOUR, 300, 86400, HOUR, publish_safety=60)
    ksk, _ = first_keys()
    new = ksk_rollover_begin(ksk, 5, 1000)
    old, new = ksk_rollover_ds_seen(ksk, new, 5000, t)
    swap = 5000 + HOUR + 86400 + 60
    assert (new.publish, new.activate, new.ds_seen) == (swap, swap, 5000)
    assert (old.retire, old.remove) == (swap, swap)
    assert cds_end(old, t) == swap + 300 + HOUR + 60
    assert view([old, new], t, swap - 1).sign_dnskey == (1,)
    assert view([old, new], t, swap).sign_dnskey == (5,)
    assert view([old, new], t, swap).cds == (1, 5)
