"""The leader lease (hotline/lease.py) on a real redis-server of its own: one holder at a
time, a term number that only grows, a dead leader replaced within ttl + poll (< 2 s), a leader
cut off from Redis stepping down before anyone else can take over (never two leaders)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from hotline.lease import RedisLease, run_as_leader
from lab.redis_server import PrivateRedis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
KEY = "{tongdai:test}:leader"


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: PrivateRedis) -> aioredis.Redis:
    return aioredis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)


async def test_one_holder_at_a_time_and_the_term_number_grows(redis: PrivateRedis) -> None:
    ca, cb = _client(redis), _client(redis)
    a = RedisLease(ca, KEY, "a", ttl_s=0.6, renew_every_s=0.2, margin_s=0.1)
    b = RedisLease(cb, KEY, "b", ttl_s=0.6, renew_every_s=0.2, margin_s=0.1)
    try:
        assert await a.try_acquire() == 1 and a.held
        assert await b.try_acquire() == 0 and not b.held
        assert await a.renew()
        assert await a.try_acquire() == 1  # already ours: same term
        await asyncio.sleep(0.7)  # a stopped renewing (crashed): the key expires
        assert await b.try_acquire() == 2
        assert not await a.renew() and not a.held  # the old leader learns it lost
        await b.release()
        assert await a.try_acquire() == 3  # a clean release: no wait for the expiry
    finally:
        await ca.aclose()
        await cb.aclose()


def test_bad_timings_are_refused() -> None:
    class NoRedis:
        def register_script(self, text: str) -> None:
            return None

    with pytest.raises(ValueError, match="renew_every_s"):
        RedisLease(NoRedis(), KEY, "a", ttl_s=1.0, renew_every_s=0.9, margin_s=0.2)


async def test_a_killed_leader_is_replaced_within_two_seconds(redis: PrivateRedis) -> None:
    events: list[tuple[str, bool, int, float]] = []
    working: dict[str, int] = {}

    leases: dict[str, RedisLease] = {}

    def runner(node: str) -> tuple[aioredis.Redis, asyncio.Task[None]]:
        client = _client(redis)
        lease = RedisLease(client, KEY, node, ttl_s=1.5, renew_every_s=0.5, margin_s=0.2)
        leases[node] = lease

        async def work(epoch: int) -> None:
            working[node] = epoch
            try:
                await asyncio.Event().wait()
            finally:
                working.pop(node, None)

        def changed(leader: bool, epoch: int) -> None:
            events.append((node, leader, epoch, time.monotonic()))

        return client, asyncio.create_task(run_as_leader(lease, work, on_change=changed))

    ca, ta = runner("a")
    async with asyncio.timeout(3):
        while "a" not in working:
            await asyncio.sleep(0.01)
    cb, tb = runner("b")
    try:
        await asyncio.sleep(1.0)
        assert list(working) == ["a"]  # the standby waits
        # SIGKILL of the leader: its tasks vanish without releasing the lease

        async def no_release() -> None:
            return None

        leases["a"].release = no_release  # type: ignore[method-assign]
        ta.cancel()
        await asyncio.gather(ta, return_exceptions=True)
        killed = time.monotonic()
        await ca.aclose()
        async with asyncio.timeout(3):
            while "b" not in working:
                await asyncio.sleep(0.01)
        takeover = time.monotonic() - killed
        assert working == {"b": 2}
        assert takeover < 2.0, takeover
    finally:
        tb.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tb
        await cb.aclose()


async def test_a_leader_cut_off_from_redis_steps_down_before_its_lease_ends(
    redis: PrivateRedis,
) -> None:
    client = _client(redis)
    lease = RedisLease(client, KEY, "a", ttl_s=1.5, renew_every_s=0.5, margin_s=0.2)
    stepped: list[float] = []

    async def work(epoch: int) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stepped.append(time.monotonic())

    task = asyncio.create_task(run_as_leader(lease, work, poll_s=0.1))
    try:
        async with asyncio.timeout(3):
            while not lease.held:
                await asyncio.sleep(0.01)
        renewed_by = lease.valid_until + lease.margin_s  # when Redis would expire it, at most
        redis.stop()
        async with asyncio.timeout(5):
            while not stepped:
                await asyncio.sleep(0.01)
        assert stepped[0] <= renewed_by  # stepped down before anyone could take over
        redis.start()
        async with asyncio.timeout(5):  # Redis back (empty): a leader again, a new term
            while not lease.held:
                await asyncio.sleep(0.02)
        assert lease.epoch == 1  # a fresh Redis: the term counter restarted
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_a_stepping_down_leader_stops_renewing_even_if_redis_swallows_the_cancel() -> None:
    """redis-py may answer a cancelled command with a value or another error; the keeper
    must still stop (seen: a zombie keeper renewing the lease of a cancelled leader)."""
    renewals: list[float] = []

    class SwallowingRedis:
        def register_script(self, text: str) -> object:
            async def script(keys: list[str], args: list[object]) -> int:
                if "INCR" in text:
                    return 1
                renewals.append(time.monotonic())
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    return 1  # the library swallows the cancellation
                return 1

            return script

    lease = RedisLease(SwallowingRedis(), KEY, "a", ttl_s=0.5, renew_every_s=0.01, margin_s=0.1)
    started = asyncio.Event()

    async def work(epoch: int) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(run_as_leader(lease, work))
    await asyncio.wait_for(started.wait(), 2)
    for _ in range(20):  # cancel while a renewal is in flight, whatever the timing
        if renewals and time.monotonic() - renewals[-1] < 0.04:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "the leader did not step down: its keeper swallowed the cancellation"
    n = len(renewals)
    await asyncio.sleep(0.2)
    assert len(renewals) == n  # nothing renews the lease any more
