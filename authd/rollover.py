"""Key rollovers in a running zone: when one starts, which key it replaces,
and what each step (a new key, its DS seen at the parent, a key gone) does
to the times ``keys.json`` keeps.

Owns the decisions around ``authd.keytimeline``'s arithmetic: a ZSK or KSK
whose lifetime is up (``keytimeline.rollover_due``) or that an operator
asks to roll (``authd ctl keys rollover``) gets a successor, unless one is
already on its way; a KSK successor waits for its DS at the parent
(``ds_seen``: told by the operator, or at once when this server serves the
parent and places the DS itself); a key whose DNSKEY and DS have left every
cache is dropped from the index.  Also how a key's state reads
(``state_of``, ``ds_of``) and the zone's next event with its name.

Pure: keys in, times out; the new key itself (randomness) and the files are
``authd.adapters.keystore``'s.  A CSK rolls like a KSK whose successor is
pre-published (``keytimeline.csk_rollover_begin``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from typing import TypeVar

from authd import keytimeline
from authd.errors import AuthdError
from authd.keytimeline import KeyTimes, TimedKey, Timings

K = TypeVar("K", bound=TimedKey)

#: The roles a rollover can be asked for.
ROLLABLE = ("zsk", "ksk", "csk")
#: The roles with a DS at the parent, whose successor waits for it.
WITH_DS = ("ksk", "csk")


class RolloverError(AuthdError):
    """A rollover or a ds-seen that cannot be done (with the reason)."""


def current(keys: Sequence[K], role: str) -> K | None:
    """The key of *role* that signs now or will until a successor takes over:
    activated and not retired (the latest activated, if several)."""
    live = [k for k in keys if k.role == role and k.activate is not None and k.retire is None]
    return max(live, key=lambda k: (k.activate or 0, k.tag), default=None)


def in_progress(keys: Sequence[TimedKey], role: str, now: int) -> bool:
    """Whether a successor of *role* is on its way: a key not yet signing
    (a pre-published ZSK, or a KSK waiting for its DS or its swap)."""
    return any(
        k.role == role
        and k.retire is None
        and k.remove is None
        and (k.activate is None or k.activate > now)
        for k in keys
    )


def due(
    keys: Sequence[TimedKey],
    t: Timings,
    now: int,
    roles: Iterable[str],
    asked: Collection[str] = (),
) -> list[str]:
    """The roles (of *roles*) that need a new key now: the lifetime of the
    current key is up, or the operator *asked*; never while one is on its way."""
    out = []
    for role in roles:
        if role not in ROLLABLE:
            continue
        key = current(keys, role)
        if key is None or in_progress(keys, role, now):
            continue
        at = keytimeline.rollover_due(key, t)
        if role in asked or (at is not None and at <= now):
            out.append(role)
    return out


def check_request(keys: Sequence[TimedKey], role: str, now: int) -> None:
    """Refuse a manual rollover of *role* that cannot start now, saying why."""
    if role not in ROLLABLE:
        raise RolloverError(f"cannot roll a {role}: one of {', '.join(ROLLABLE)}")
    if current(keys, role) is None:
        raise RolloverError(f"no active {role} to roll (is the policy's key layout ksk-zsk?)")
    if in_progress(keys, role, now):
        raise RolloverError(f"a {role} rollover is already in progress")


def begin(
    keys: Sequence[TimedKey], new: TimedKey, now: int, t: Timings, asked: bool
) -> list[KeyTimes]:
    """Start the rollover that *new* (a fresh key, no times yet) is the
    successor in: ZSK pre-publication or KSK double-DS step 1.  Returns the
    changed times (the old key's and the new one's).  An *asked* rollover
    takes over as soon as the caches allow, not at the end of the old
    key's lifetime."""
    old = current(keys, new.role)
    if old is None:
        raise RolloverError(f"no active {new.role} to roll")
    if new.role == "zsk":
        timing = dataclasses.replace(t, zsk_lifetime=0) if asked else t
        retired, fresh = keytimeline.zsk_rollover(old, new.tag, now, timing)
        return [retired, fresh]
    if new.role == "ksk":
        return [keytimeline.ksk_rollover_begin(old, new.tag, now)]
    return [keytimeline.csk_rollover_begin(old, new.tag, now)]


def adopt(keys: Sequence[TimedKey], now: int, t: Timings) -> list[KeyTimes]:
    """A ZSK published by hand (``authd keys generate`` beside an active one:
    published, not active) becomes the successor of the current ZSK, taking
    over once its DNSKEY is in every cache (pre-publication from its publish time)."""
    old = current(keys, "zsk")
    out: list[KeyTimes] = []
    for k in keys:
        if (
            old is None
            or k.role != "zsk"
            or k.publish is None
            or k.activate is not None
            or k.retire is not None
        ):
            continue
        start = min(k.publish, now)
        timing = dataclasses.replace(t, zsk_lifetime=0)
        retired, fresh = keytimeline.zsk_rollover(old, k.tag, start, timing)
        out.extend([retired, dataclasses.replace(fresh, created=k.created)])
        break  # one successor at a time; a second waits for the next step
    return out


def waiting_for_ds(keys: Sequence[K]) -> list[K]:
    """The new KSKs whose DS the parent has not been seen to have yet (made
    by a rollover, or published by hand with ``authd keys generate``)."""
    return [
        k
        for k in keys
        if k.role in WITH_DS and k.activate is None and k.ds_seen is None and k.remove is None
    ]


def ds_seen(
    keys: Sequence[TimedKey], now: int, t: Timings, tag: int | None = None
) -> list[KeyTimes]:
    """The parent has the DS of the waiting KSK (or of *tag*): the swap is
    planned (``keytimeline.ksk_rollover_ds_seen``).  A KSK or CSK that signs
    already just records the time.  Returns the changed times (none: nothing
    to record)."""
    waiting = waiting_for_ds(keys)
    if tag is not None:
        named = [k for k in keys if k.tag == tag]
        if not named:
            raise RolloverError(f"no key {tag}")
        key = named[0]
        if key.role not in ("ksk", "csk"):
            raise RolloverError(f"key {tag} is a {key.role}: only a KSK or CSK has a DS")
        if key.remove is not None and key.remove <= now:
            raise RolloverError(f"key {tag} is removed")
        waiting = [k for k in waiting if k.tag == tag]
        if not waiting:
            if key.ds_seen is not None:
                return []
            return [dataclasses.replace(keytimeline.times_of(key), ds_seen=now)]
    out: list[KeyTimes] = []
    for new in waiting:
        old = current(keys, new.role)
        if old is None:
            out.append(
                dataclasses.replace(
                    keytimeline.times_of(new), ds_seen=now, publish=now, activate=now
                )
            )
            continue
        if new.role == "csk":
            out.extend(keytimeline.csk_rollover_ds_seen(old, new, now, t))
            continue
        retired, renewed = keytimeline.ksk_rollover_ds_seen(old, new, now, t)
        if new.publish is not None and renewed.publish is not None:
            # Published by hand already: it stays so until the swap.
            renewed = dataclasses.replace(renewed, publish=min(new.publish, renewed.publish))
        out.extend([retired, renewed])
    if not waiting and tag is None:
        # Nothing waits: record the DS of the signing KSKs/CSKs (what the parent has).
        for key in keys:
            if key.role in ("ksk", "csk") and key.ds_seen is None and keytimeline.signing(key, now):
                out.append(dataclasses.replace(keytimeline.times_of(key), ds_seen=now))
    return out


def gone(key: TimedKey, t: Timings, now: int) -> bool:
    """Whether *key* can leave the index: removed, and neither its DNSKEY nor
    its DS (asked for through CDS until ``keytimeline.cds_end``) is left anywhere."""
    end = keytimeline.cds_end(key, t)
    return end is not None and end <= now


def apply(keys: Sequence[K], changes: Iterable[KeyTimes]) -> list[K]:
    """*keys* with the times of *changes* (by tag) put in."""
    by_tag = {c.tag: c for c in changes}
    out = []
    for key in keys:
        c = by_tag.get(key.tag)
        if c is None:
            out.append(key)
            continue
        out.append(
            dataclasses.replace(  # type: ignore[type-var]
                key,
                publish=c.publish,
                activate=c.activate,
                retire=c.retire,
                remove=c.remove,
                ds_seen=c.ds_seen,
            )
        )
    return out


# -- how it reads --------------------------------------------------------------------------


def state_of(key: TimedKey, now: int) -> str:
    """generated, published, active, retired (no longer signing, still
    published) or removed, by *key*'s times at *now*."""
    if key.remove is not None and key.remove <= now:
        return "removed"
    if key.retire is not None and key.retire <= now:
        return "retired"
    if key.activate is not None and key.activate <= now and keytimeline.published(key, now):
        return "active"
    if key.publish is not None and key.publish <= now:
        return "published"
    return "generated"


def ds_of(key: TimedKey, t: Timings, now: int) -> str:
    """The DS side of a KSK/CSK: ``seen`` (at the parent), ``asked`` (in the
    CDS, not yet seen), ``withdrawn`` (no longer asked for), ``-`` (a ZSK)."""
    if key.role == "zsk":
        return "-"
    if not keytimeline.in_cds(key, t, now):
        return "withdrawn" if key.remove is not None else "-"
    return "seen" if key.ds_seen is not None else "asked"


KeyView = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def key_view(keys: Sequence[TimedKey], t: Timings, now: int) -> KeyView:
    """What the signed zone shows of *keys* at *now*: (published, signing the
    DNSKEY RRset, signing the zone, in CDS); a change needs a new signed version."""
    v = keytimeline.view(keys, t, now)
    return (v.published, v.sign_dnskey, v.sign_zone, v.cds)


def next_step(keys: Sequence[TimedKey], t: Timings, now: int) -> tuple[int, str] | None:
    """The zone's next key event after *now* and what it is
    (``zsk 1234 activate``, ``ksk 5678 rollover due``, ``ksk 5678 ds withdrawn``)."""
    found: list[tuple[int, str]] = []
    for k in keys:
        named = [(getattr(k, what), what) for what in ("publish", "activate", "retire", "remove")]
        named.append((keytimeline.cds_end(k, t) if k.role != "zsk" else None, "ds withdrawn"))
        named.append((keytimeline.rollover_due(k, t), "rollover due"))
        for when, what in named:
            if when is not None and when > now:
                found.append((when, f"{k.role} {k.tag} {what}"))
    # A key gone from every cache leaves the index then: an event too.
    for k in keys:
        end = keytimeline.cds_end(k, t)
        if end is not None and end > now and k.role == "zsk":
            found.append((end, f"{k.role} {k.tag} dropped"))
    return min(found, default=None)


__all__ = [
    "ROLLABLE",
    "WITH_DS",
    "RolloverError",
    "adopt",
    "apply",
    "begin",
    "check_request",
    "current",
    "due",
    "ds_of",
    "ds_seen",
    "gone",
    "in_progress",
    "key_view",
    "next_step",
    "state_of",
    "waiting_for_ds",
]
