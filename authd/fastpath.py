"""The lean answer path: plain queries answered with as few steps as possible.

Owns: ``make``, which binds, once per snapshot, everything a plain query
needs (the front cache, the answer cache, the compiled zones of the one open
view, the options read per query) into one closure: query bytes in, response
bytes out, or None when the query needs the full path (``authd.query.handle``).
It exists only when nothing is decided per query beyond the question itself:
one view open to every client, no rate limiting, metrics, query log, lab
faults; and a query with a DNS cookie, or one the compiled zones do not answer,
goes the full way.  The answers are the full path's own: the same caches with
the same keys, and ``authd.assemble.respond`` for the rest.

Caching a one-off answer costs more than assembling it once the cache is full
(an insert then evicts, and a random-subdomain flood asks every name once), so
while the answer cache has room every answer enters it, and once it is full an
answer enters the caches the second time its query is seen: a doorkeeper of
one byte per hash bucket remembers the first, and is zeroed (one memset, tens
of microseconds) after an eighth of its buckets are set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from authd import assemble, wire
from authd.limits import HEADER_LEN, MAX_MESSAGE, MIN_EDNS_UDP_PAYLOAD, NO_EDNS_UDP_LIMIT

if TYPE_CHECKING:
    from authd.snapshot import Snapshot

__all__ = ["DOORKEEPER_BUCKETS", "DOORKEEPER_MARKS", "FastAnswer", "make"]


class FastAnswer(Protocol):
    """Query bytes and whether they came over UDP -> the response, or None.
    *front_missed*: the caller already looked in the front cache, in vain."""

    def __call__(self, data: bytes, udp: bool, front_missed: bool = False) -> bytes | None: ...


CacheKey = tuple[int, bytes, int, int, int, int, bool, bool, bool, bool, bool]

DOORKEEPER_BUCKETS = 1 << 20  # 1 MiB
# Marks before it is zeroed: an eighth of the buckets, so that a question
# never asked before shares a bucket with an earlier one (and is cached) at
# most one time in eight, one in sixteen on average.
DOORKEEPER_MARKS = DOORKEEPER_BUCKETS // 8


def make(snapshot: Snapshot) -> FastAnswer | None:
    """The lean path for *snapshot*, or None when its queries need the full one."""
    opts = snapshot.options
    view = snapshot.open_view
    if (
        view is None
        or view.restricted
        or snapshot.limiter is not None
        or opts.metrics is not None
        or opts.query_log
        or opts.lab_faults
        or snapshot.client_subnet is not None
    ):
        return None
    table = assemble.zone_table(view.zones)
    quicks = assemble.quick_table(table)
    front = snapshot.front
    cache = snapshot.cache
    capacity = opts.answer_cache_entries
    udp_max = opts.udp_payload_max
    nsid = opts.nsid.encode() if opts.nsid is not None else None
    minimal = opts.minimal_responses
    index = view.index
    question_key = wire.question_key
    junk_reply = wire.junk_reply
    patch = wire.patch_response
    respond = assemble.respond
    quick = assemble.quick
    cache_get = cache.get
    cache_put = cache.put
    cache_slots = cache.parts()[0]
    front_slots, front_values, front_ref = (
        front.parts() if front is not None else (None, [], bytearray())
    )
    front_put = front.put if front is not None else None
    door = bytearray(DOORKEEPER_BUCKETS)
    mask = DOORKEEPER_BUCKETS - 1
    marks = 0

    def cache_key(key: wire.QuestionKey, limit: int, udp: bool) -> CacheKey:
        # The full path's key (authd.query.handle), so both share one cache.
        return (
            index,
            key.qname,
            key.qtype,
            key.qclass,
            key.flags,
            limit,
            key.payload is not None,
            key.do,
            key.nsid,
            udp,
            False,
        )

    def answer(data: bytes, udp: bool, front_missed: bool = False) -> bytes | None:
        nonlocal marks
        tail = data[2:]
        fkey = tail if udp else (tail, False)  # authd.query.front_key
        if front_slots is not None and not front_missed:
            # AnswerCache.get, inlined: this is the hottest line of the server.
            slot = front_slots.get(fkey)
            if slot is not None:
                front_ref[slot] = 1
                return data[:2] + front_values[slot][0]
        key = question_key(data)
        if key is None:
            # Junk, answered from its layout as the full path answers it (which
            # adds nothing here: no RRL, log or metrics), without going there.
            if len(data) >= HEADER_LEN and not data[2] & 0x80:
                return junk_reply(data)
            return None
        if key.cookie is not None:
            return None
        payload = key.payload
        if not udp:
            limit = MAX_MESSAGE
        elif payload is None:
            limit = NO_EDNS_UDP_LIMIT
        elif payload == udp_max:
            limit = udp_max
        else:
            limit = min(max(payload, MIN_EDNS_UDP_PAYLOAD), udp_max)
        # A query never seen before (since the doorkeeper was last zeroed) is
        # answered without looking in the caches, and cached only while the
        # answer cache has room.
        bucket = hash(tail) & mask
        seen = door[bucket]
        ckey: CacheKey | None = None
        if seen and capacity:
            ckey = cache_key(key, limit, udp)
            cached = cache_get(ckey)
            top = udp_max if udp else MAX_MESSAGE
            if cached is None and limit < top:
                # As the full path: the answer at the largest size serves every
                # size it fits (authd.query.handle), one entry for all of them.
                top_key: CacheKey = (*ckey[:5], top, *ckey[6:])
                full = cache_get(top_key)
                if full is None:
                    at_top = quick(data, key, table, quicks, top, udp_max, minimal) or respond(
                        data, key, table, top, udp_max, nsid if key.nsid else None, minimal
                    )
                    if at_top is None:
                        return None
                    cache_put(top_key, (at_top[0], at_top[1], None), capacity)
                    if len(at_top[0]) <= limit:
                        out = at_top[0]
                        if front_put is not None:
                            front_put(fkey, (out[2:], at_top[1], None), capacity)
                        return out
                elif len(full[0]) <= limit:
                    cached = full
            if cached is not None:
                out = patch(cached[0], data, len(key.qname))
                if front_put is not None:
                    front_put(fkey, (out[2:], cached[1], cached[2]), capacity)
                return out
        made = quick(data, key, table, quicks, limit, udp_max, minimal) or respond(
            data, key, table, limit, udp_max, nsid if key.nsid else None, minimal
        )
        if made is None:
            return None
        out = made[0]
        if ckey is not None:
            cache_put(ckey, (out, made[1], None), capacity)
            if front_put is not None:
                front_put(fkey, (out[2:], made[1], None), capacity)
        elif not seen:
            if (
                capacity
                and len(cache_slots) < capacity
                and limit == (udp_max if udp else MAX_MESSAGE)
            ):
                # Room to spare: cached at once, since nothing is evicted for it
                # (in the answer cache; the front takes it when asked again).
                # At a smaller size the second sighting caches the answer at the
                # largest, which serves every size it fits.
                cache_put(cache_key(key, limit, udp), (out, made[1], None), capacity)
            door[bucket] = 1
            marks += 1
            if marks >= DOORKEEPER_MARKS:
                door[:] = bytes(DOORKEEPER_BUCKETS)
                marks = 0
        return out

    return answer
