"""Callers handed over on a standby engine reach the ACD leader through Redis (failover,
docs/failover.md).

With two engines, the IVR of either may hand a caller to the ACD, but only the leader
distributes. A standby (``acd.handover.AcdHandover`` with ``leading`` false) ``forward``s the
caller instead: the writer task (``run``) stores an ``Arrival`` with a number from one global
counter (``INCR``) and publishes a wake-up; the leader's ``follow`` loop (woken by it, or every
``poll_s`` if a wake-up is missed) puts every arrival it does not hold yet in line, with the
time the caller entered (the order is global: ``entered_at``, then ``seq``). An arrival stays
in Redis until the leader's own state has the call, so a leader killed in between loses none:
the next one finds it again. The caller's wait loop, on a standby, reads the call's state from
Redis (``state``); the leader marks how a call left the line (``mark_done``: ``survey`` after
an agent, ``timeout``, ``fallback`` when the system was full) for the standby to act on.

Keys, beside ``acd.redis_store``'s (same hash tag):

    {prefix}:arrivals     hash    uniqueid -> Arrival JSON (until the leader stores the call)
    {prefix}:seq          string  the global arrival counter
    {prefix}:wake         channel a new arrival (PUBLISH)
    {prefix}:done:X       string  how call X left the line (expires after an hour)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.exceptions import RedisError

from acd.redis_store import RedisStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

#: KEYS: arrivals, seq, wake; ARGV: uniqueid, the arrival's JSON without its seq
_PUSH = """
local seq = redis.call('INCR', KEYS[2])
local a = cjson.decode(ARGV[2])
a['seq'] = seq
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(a))
redis.call('PUBLISH', KEYS[3], ARGV[1])
return seq
"""

#: KEYS: arrivals, calls: drop the arrivals the leader has stored, return the others
_PENDING = """
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if redis.call('HEXISTS', KEYS[2], all[i]) == 1 then
    redis.call('HDEL', KEYS[1], all[i])
  else
    table.insert(out, all[i + 1])
  end
end
return out
"""

DONE_TTL_S = 3600


@dataclass(frozen=True)
class Arrival:
    """A caller handed over on a standby: where they are and since when."""

    uniqueid: str
    channel: str
    queue: str
    caller: str | None
    ticket: str | None
    entered_at: float
    seq: int = 0

    @classmethod
    def from_json(cls, raw: str) -> Arrival:
        d = json.loads(raw)
        return cls(
            str(d["uniqueid"]),
            str(d["channel"]),
            str(d["queue"]),
            d.get("caller") or None,
            d.get("ticket") or None,
            float(d["entered_at"]),
            int(d.get("seq") or 0),
        )


class RedisArrivals:
    def __init__(self, store: RedisStore, *, poll_s: float = 1.0) -> None:
        self.store = store
        self.client = store.client
        self.poll_s = poll_s
        self._push = self.client.register_script(_PUSH)
        self._pending = self.client.register_script(_PENDING)
        self._outbox: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()

    # -- a standby: hand callers to the leader ------------------------------------------------

    async def push(self, a: Arrival) -> int:
        """Store ``a`` with the next global number and wake the leader; the number."""
        k = self.store.key
        body = {**asdict(a), "caller": a.caller or "", "ticket": a.ticket or ""}
        body.pop("seq")
        seq = await self.store._do(
            "push arrival",
            self._push(
                keys=[k("arrivals"), k("seq"), k("wake")], args=[a.uniqueid, json.dumps(body)]
            ),
        )
        return int(seq)

    def forward(self, a: Arrival) -> None:
        """``push`` soon, from the writer task (the IVR's hand-over is synchronous)."""
        self._outbox.put_nowait(lambda: self._retrying(self.push, a))

    async def state(self, uniqueid: str) -> str | None:
        """For a standby's wait loop: ``waiting`` (in line, or on its way to the leader),
        ``survey`` / ``timeout`` / ``fallback`` (how the leader let the call go), or None
        (nobody holds this caller)."""
        k = self.store.key
        pipe = self.client.pipeline(transaction=False)
        pipe.hexists(k("calls"), uniqueid)
        pipe.hexists(k("arrivals"), uniqueid)
        pipe.get(k(f"done:{uniqueid}"))
        in_line, arriving, done = await self.store._do("call state", pipe.execute())
        if in_line or arriving:
            return "waiting"
        return str(done) if done else None

    # -- the leader ---------------------------------------------------------------------------

    def drop(self, uniqueid: str) -> None:
        """Forget an arrival the leader will not take (the system was full), soon."""
        key = self.store.key("arrivals")

        async def write() -> None:
            await self.store._do("drop arrival", self.client.hdel(key, uniqueid))

        self._outbox.put_nowait(lambda: self._retrying(lambda _: write(), None))

    async def pending(self) -> list[Arrival]:
        """Arrivals the leader has not stored yet, oldest first (stored ones are dropped)."""
        k = self.store.key
        raw: list[str] = await self.store._do(
            "pending arrivals", self._pending(keys=[k("arrivals"), k("calls")])
        )
        found = [Arrival.from_json(r) for r in raw]
        return sorted(found, key=lambda a: (a.entered_at, a.seq))

    def mark_done(self, uniqueid: str, how: str) -> None:
        """How the call left the line (``survey``, ``timeout``, ``fallback``), soon."""
        key = self.store.key(f"done:{uniqueid}")

        async def write() -> None:
            await self.store._do("mark done", self.client.set(key, how, ex=DONE_TTL_S))

        self._outbox.put_nowait(lambda: self._retrying(lambda _: write(), None))

    async def follow(self, take: Callable[[Arrival], None]) -> None:
        """The leader: hand every pending arrival to ``take`` (in order) when woken, and at
        least every ``poll_s``; until cancelled."""
        pubsub = self.client.pubsub()
        subscribed = False
        try:
            try:
                async with asyncio.timeout(self.store.timeout_s):
                    await pubsub.subscribe(self.store.key("wake"))
                subscribed = True
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("arrivals: no wake-ups (%s), polling every %g s", exc, self.poll_s)
            while True:
                _still_wanted()  # redis-py may also answer a cancelled read with None
                try:
                    for a in await self.pending():
                        take(a)
                except StoreError as exc:
                    _still_wanted()
                    log.warning("arrivals not read: %s", exc)
                if not subscribed:
                    await asyncio.sleep(self.poll_s)
                    continue
                try:
                    async with asyncio.timeout(self.poll_s + self.store.timeout_s):
                        await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self.poll_s
                        )
                except (RedisError, OSError, TimeoutError) as exc:
                    _still_wanted()
                    log.debug("arrivals wake-up: %s", exc)
                    await asyncio.sleep(self.poll_s)
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.store.timeout_s):
                    await pubsub.aclose()

    # -- the writer -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out ``forward`` and ``mark_done`` in order, until cancelled."""
        while True:
            job = await self._outbox.get()
            await job()

    async def _retrying(self, write: Callable[[Any], Awaitable[Any]], arg: Any) -> None:
        """A write retried while Redis is away (a caller is never dropped for a blip)."""
        delay = 0.2
        while True:
            _still_wanted()
            try:
                await write(arg)
                return
            except StoreError as exc:
                _still_wanted()
                log.warning("arrivals: %s; retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _still_wanted() -> None:
    """Re-raise a cancellation that redis-py turned into another error (a cancelled command
    may end in ``ConnectionError``): a loop that swallowed it would never stop (the same
    lesson as ``hotline.lease``)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
