"""A zone's keys over time: who is published, who signs what, which CDS to show,
and the times a ZSK pre-publication, a KSK double-DS or a CSK rollover (both
at once) sets.

Owns the arithmetic of RFC 6781 section 4.1 and RFC 7583 sections 3.2.1
(ZSK pre-publication) and 3.3.2 (KSK double-DS) on the key times that
``keys.json`` keeps: ``publish`` (the DNSKEY enters the DNSKEY RRset),
``activate`` (the key starts signing), ``retire`` (it stops), ``remove`` (the
DNSKEY leaves) and ``ds_seen`` (its DS was seen at the parent).  A KSK's DS
is asked for (CDS/CDNSKEY, RFC 7344 and RFC 8078) from its creation until its
DNSKEY has left every cache.

Invariants (``tests/test_keytimeline.py`` checks them at every instant of
generated rollovers): some published KSK/CSK whose DS has reached every cache
signs the DNSKEY RRset; some published ZSK/CSK signs the zone; a key that
starts signing after a zone's first keys has had its DNSKEY in every cache
first; a ZSK's DNSKEY stays until its signatures have left every cache.

Pure: times are integers (unix seconds) passed in; the timings are plain
numbers, so the policy that holds them is not imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class TimedKey(Protocol):
    """What the timeline reads of a key (``authd.keyfiles.ZoneKey`` has it)."""

    @property
    def tag(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def created(self) -> int: ...
    @property
    def publish(self) -> int | None: ...
    @property
    def activate(self) -> int | None: ...
    @property
    def retire(self) -> int | None: ...
    @property
    def remove(self) -> int | None: ...
    @property
    def ds_seen(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class KeyTimes:
    """A key's times alone: what the rollover planners return."""

    tag: int
    role: str
    created: int
    publish: int | None = None
    activate: int | None = None
    retire: int | None = None
    remove: int | None = None
    ds_seen: int | None = None


def times_of(key: TimedKey) -> KeyTimes:
    """*key*'s times as a ``KeyTimes``."""
    return KeyTimes(
        key.tag,
        key.role,
        key.created,
        key.publish,
        key.activate,
        key.retire,
        key.remove,
        key.ds_seen,
    )


@dataclass(frozen=True, slots=True)
class Timings:
    """The policy's durations, in seconds (RFC 7583 section 3.1's names in brackets)."""

    dnskey_ttl: int  # [TTLkey]
    max_zone_ttl: int  # the longest TTL of a signed RRset [TTLsig]
    propagation_delay: int  # primary to every secondary [Dprp]
    parent_ds_ttl: int  # [TTLds]
    parent_propagation_delay: int  # [DprpP]
    publish_safety: int = 0  # [Ipub]'s margin
    retire_safety: int = 0  # [Iret]'s margin
    zsk_lifetime: int = 0  # 0: never rolled
    ksk_lifetime: int = 0

    def dnskey_everywhere(self) -> int:
        """From a DNSKEY RRset change to every cache having it (RFC 7583 Ipub)."""
        return self.propagation_delay + self.dnskey_ttl + self.publish_safety

    def signatures_gone(self) -> int:
        """From a key's last signature to none left in any cache (RFC 7583 Iret)."""
        return self.propagation_delay + self.max_zone_ttl + self.retire_safety

    def ds_everywhere(self) -> int:
        """From the DS seen at the parent to every cache having it."""
        return self.parent_propagation_delay + self.parent_ds_ttl + self.publish_safety


def _between(start: int | None, end: int | None, now: int) -> bool:
    return start is not None and start <= now and (end is None or now < end)


def published(key: TimedKey, now: int) -> bool:
    """Whether *key*'s DNSKEY is in the zone's DNSKEY RRset at *now*."""
    return _between(key.publish, key.remove, now)


def signing(key: TimedKey, now: int) -> bool:
    """Whether *key* makes signatures at *now* (active, not retired, published)."""
    return _between(key.activate, key.retire, now) and published(key, now)


def cds_end(key: TimedKey, t: Timings) -> int | None:
    """When *key*'s DS stops being asked for: once its DNSKEY, removed, has
    left every cache (RFC 7583 3.3.2: the old DS goes last)."""
    return None if key.remove is None else key.remove + t.dnskey_everywhere()


def in_cds(key: TimedKey, t: Timings, now: int) -> bool:
    """Whether the CDS/CDNSKEY RRsets carry *key* at *now*."""
    return key.role in ("csk", "ksk") and _between(key.created, cds_end(key, t), now)


@dataclass(frozen=True, slots=True)
class KeyView:
    """The zone's keys at one instant, as tags."""

    published: tuple[int, ...]  # in the DNSKEY RRset
    sign_dnskey: tuple[int, ...]  # sign the DNSKEY (and CDS/CDNSKEY) RRsets
    sign_zone: tuple[int, ...]  # sign every other RRset
    cds: tuple[int, ...]  # carried in CDS and CDNSKEY
    next_event: int | None  # the next time any of this changes (or a rollover is due)


def view(keys: Sequence[TimedKey], t: Timings, now: int) -> KeyView:
    """Which of *keys* do what at *now*, and when that next changes."""
    return KeyView(
        published=tuple(k.tag for k in keys if published(k, now)),
        sign_dnskey=tuple(k.tag for k in keys if k.role in ("csk", "ksk") and signing(k, now)),
        sign_zone=tuple(k.tag for k in keys if k.role in ("csk", "zsk") and signing(k, now)),
        cds=tuple(k.tag for k in keys if in_cds(k, t, now)),
        next_event=next_event(keys, t, now),
    )


def _events(key: TimedKey, t: Timings) -> Iterable[int | None]:
    yield from (key.created, key.publish, key.activate, key.retire, key.remove)
    yield cds_end(key, t)
    yield rollover_due(key, t)


def next_event(keys: Iterable[TimedKey], t: Timings, now: int) -> int | None:
    """The first time after *now* at which a key changes state, its CDS
    changes, or a rollover is due."""
    ahead = [when for k in keys for when in _events(k, t) if when is not None and when > now]
    return min(ahead, default=None)


def rollover_due(key: TimedKey, t: Timings) -> int | None:
    """When a successor to *key* must be started so that it takes over at the
    end of *key*'s lifetime (None: no lifetime, or already retiring; a CSK
    lives ``ksk_lifetime``)."""
    if key.activate is None or key.retire is not None:
        return None
    if key.role == "zsk" and t.zsk_lifetime:
        return key.activate + t.zsk_lifetime - t.dnskey_everywhere()
    if key.role == "ksk" and t.ksk_lifetime:
        # The parent's own delay is not known: at least its DS TTL and propagation.
        return key.activate + t.ksk_lifetime - t.ds_everywhere()
    if key.role == "csk" and t.ksk_lifetime:
        # Its successor's DNSKEY and DS must both reach every cache first.
        return key.activate + t.ksk_lifetime - max(t.ds_everywhere(), t.dnskey_everywhere())
    return None


# -- rollovers ------------------------------------------------------------------------------


def zsk_rollover(old: TimedKey, new_tag: int, start: int, t: Timings) -> tuple[KeyTimes, KeyTimes]:
    """ZSK pre-publication (RFC 6781 4.1.1.1, RFC 7583 3.2.1): the new ZSK is
    published at *start* and signs once its DNSKEY is in every cache; the old
    one stops signing then, and leaves the DNSKEY RRset once its signatures
    have left every cache.  Returns (old, new) with their new times."""
    if old.role != "zsk":
        raise ValueError(f"key {old.tag} is a {old.role}, not a zsk")
    # Started early, the old key still lives its life; never before it began.
    lived = (start if old.activate is None else old.activate) + t.zsk_lifetime
    takeover = max(start + t.dnskey_everywhere(), lived)
    if old.retire is not None and old.retire < takeover:
        raise ValueError(f"key {old.tag} retires before its successor can take over")
    new = KeyTimes(new_tag, "zsk", start, publish=start, activate=takeover)
    retired = dataclasses.replace(
        times_of(old), retire=takeover, remove=takeover + t.signatures_gone()
    )
    return retired, new


def ksk_rollover_begin(old: TimedKey, new_tag: int, start: int) -> KeyTimes:
    """KSK double-DS, step 1 (RFC 7583 3.3.2): a new KSK whose DS is asked for
    from *start* (it joins the CDS/CDNSKEY RRsets) while its DNSKEY is not yet
    published.  The swap waits for its DS at the parent (``ksk_rollover_ds_seen``)."""
    if old.role != "ksk":
        raise ValueError(f"key {old.tag} is a {old.role}, not a ksk")
    return KeyTimes(new_tag, "ksk", start)


def ksk_rollover_ds_seen(
    old: TimedKey, new: TimedKey, seen: int, t: Timings
) -> tuple[KeyTimes, KeyTimes]:
    """KSK double-DS, step 2: the new DS was seen at the parent at *seen*; once
    it is in every cache, the DNSKEY RRset swaps the old KSK for the new one
    (a resolver with either DNSKEY RRset finds a DS for it); the old DS is asked
    to go once the old DNSKEY RRset has left every cache (``cds_end``)."""
    swap = max(seen + t.ds_everywhere(), new.created)
    if old.retire is not None and old.retire < swap:
        raise ValueError(f"key {old.tag} retires before its successor can take over")
    renewed = dataclasses.replace(times_of(new), ds_seen=seen, publish=swap, activate=swap)
    retired = dataclasses.replace(times_of(old), retire=swap, remove=swap)
    return retired, renewed


def csk_rollover_begin(old: TimedKey, new_tag: int, start: int) -> KeyTimes:
    """CSK rollover, step 1: pre-publication and double-DS at once (RFC 7583
    sections 3.2.1 and 3.3.2 for one key that does both jobs): the new CSK's
    DNSKEY is published at *start*, not signing, and its DS is asked for
    (CDS/CDNSKEY).  The takeover waits for its DS at the parent."""
    if old.role != "csk":
        raise ValueError(f"key {old.tag} is a {old.role}, not a csk")
    return KeyTimes(new_tag, "csk", start, publish=start)


def csk_rollover_ds_seen(
    old: TimedKey, new: TimedKey, seen: int, t: Timings
) -> tuple[KeyTimes, KeyTimes]:
    """CSK rollover, step 2: the new DS was seen at *seen*.  The new CSK signs
    everything once both its DS and its DNSKEY are in every cache; the old
    one stops then, and its DNSKEY stays until its signatures have left every
    cache (its DS is asked to go after that, ``cds_end``)."""
    published_at = new.publish if new.publish is not None else seen
    swap = max(seen + t.ds_everywhere(), published_at + t.dnskey_everywhere(), new.created)
    if old.retire is not None and old.retire < swap:
        raise ValueError(f"key {old.tag} retires before its successor can take over")
    renewed = dataclasses.replace(times_of(new), ds_seen=seen, publish=published_at, activate=swap)
    retired = dataclasses.replace(times_of(old), retire=swap, remove=swap + t.signatures_gone())
    return retired, renewed


__all__ = [
    "KeyTimes",
    "KeyView",
    "TimedKey",
    "Timings",
    "cds_end",
    "csk_rollover_begin",
    "csk_rollover_ds_seen",
    "in_cds",
    "ksk_rollover_begin",
    "ksk_rollover_ds_seen",
    "next_event",
    "published",
    "rollover_due",
    "signing",
    "times_of",
    "view",
    "zsk_rollover",
]
