"""A leader lease in Redis: at most one engine process distributes calls (docs/failover.md).

    lease = RedisLease(client, "{tongdai:acd}:leader", node_id="engine-a", ttl_s=1.5)
    await run_as_leader(lease, work)     # polls; runs work(epoch) while it holds the lease

The lease is one key holding the holder's node id with a time to live (``SET NX PX``); the
holder renews it (a compare-and-``PEXPIRE`` script) every ``renew_every_s``; whoever finds it
free takes it and increments ``<key>:epoch`` in the same script, so every term of leadership has
a number larger than all before it (a fencing token the distributor can write with its state).

Safety: the holder counts its own deadline from the *start* of its last successful renewal
(before Redis set the expiry), minus ``margin_s``, so it steps down (cancels ``work``) before
any other process can take the lease, even when Redis is unreachable or the renewal hangs:
never two leaders. Liveness: a holder that dies (SIGKILL) stops renewing and the lease expires
after at most ``ttl_s``; a standby polling every ``poll_s`` takes over within
``ttl_s + poll_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('INCR', KEYS[2])
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


class RedisLease:
    def __init__(
        self,
        client: Any,
        key: str,
        node_id: str,
        *,
        ttl_s: float = 1.5,
        renew_every_s: float = 0.5,
        margin_s: float = 0.2,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_every_s < ttl_s - margin_s:
            raise ValueError("renew_every_s must be above 0 and below ttl_s - margin_s")
        self.client = client
        self.key = key
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.margin_s = margin_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.epoch = 0
        #: until when this process may act as the leader (its own clock); 0: not the leader
        self.valid_until = 0.0
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def held(self) -> bool:
        return self.clock() < self.valid_until

    def _ms(self) -> int:
        return int(self.ttl_s * 1000)

    async def try_acquire(self) -> int:
        """Take the lease if free (or already ours); the epoch, or 0 if another holds it."""
        started = self.clock()
        async with asyncio.timeout(self.timeout_s):
            epoch = int(
                await self._acquire(
                    keys=[self.key, f"{self.key}:epoch"], args=[self.node_id, self._ms()]
                )
            )
        if epoch:
            self.epoch = epoch
            self.valid_until = started + self.ttl_s - self.margin_s
        return epoch

    async def renew(self) -> bool:
        """Extend the lease; False (and no longer held) if another process has it."""
        started = self.clock()
        async with asyncio.timeout(self.timeout_s):
            ok = bool(await self._renew(keys=[self.key], args=[self.node_id, self._ms()]))
        self.valid_until = started + self.ttl_s - self.margin_s if ok else 0.0
        return ok

    async def release(self) -> None:
        """Give the lease up now (a clean stop: the standby need not wait for the expiry)."""
        self.valid_until = 0.0
        async with asyncio.timeout(self.timeout_s):
            await self._release(keys=[self.key], args=[self.node_id])


async def _keep(lease: RedisLease) -> None:
    """Renew until the lease is lost or may have expired; returns then."""
    while True:
        _still_wanted()
        wait = min(lease.renew_every_s, lease.valid_until - lease.clock())
        if wait <= 0:
            log.error("leader lease %s may have expired: stepping down", lease.key)
            return
        await asyncio.sleep(wait)
        try:
            async with asyncio.timeout(max(0.01, lease.valid_until - lease.clock())):
                if not await lease.renew():
                    log.error("leader lease %s taken by another node: stepping down", lease.key)
                    return
        except Exception as exc:  # Redis away or slow: keep trying until the deadline
            _still_wanted()
            if not isinstance(exc, TimeoutError):
                log.warning("leader lease %s not renewed: %s", lease.key, exc)


def _still_wanted() -> None:
    """Re-raise a cancellation that a library turned into another error (redis-py may answer
    a cancelled command with ``ConnectionError``): a keeper that swallowed it would go on
    renewing the lease of a node that is stepping down."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def run_as_leader(
    lease: RedisLease,
    work: Callable[[int], Coroutine[Any, Any, None]],
    *,
    poll_s: float = 0.25,
    on_change: Callable[[bool, int], None] | None = None,
) -> None:
    """Forever: wait for the lease, run ``work(epoch)`` while holding it, cancel it when the
    lease is lost (then wait again). Cancel this to stop (the lease is released)."""
    try:
        while True:
            try:
                epoch = await lease.try_acquire()
            except Exception as exc:  # Redis away or slow: nobody can be the leader
                log.debug("leader lease %s: %s", lease.key, exc)
                epoch = 0
            if not epoch:
                await asyncio.sleep(poll_s)
                continue
            log.warning("%s is the leader (epoch %d)", lease.node_id, epoch)
            if on_change is not None:
                on_change(True, epoch)
            task = asyncio.create_task(work(epoch), name=f"leader work {epoch}")
            keeper = asyncio.create_task(_keep(lease), name=f"leader lease {epoch}")
            try:
                await asyncio.wait([task, keeper], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (task, keeper):
                    t.cancel()
                await asyncio.gather(task, keeper, return_exceptions=True)
                lease.valid_until = 0.0
                if on_change is not None:
                    on_change(False, epoch)
            if task.done() and not task.cancelled():
                task.result()  # the work ended on its own (or failed: raised here)
                return
    finally:
        with contextlib.suppress(Exception):
            await lease.release()
