"""Fencing of the ACD's Redis state (``acd.redis_store``, docs/failover.md): once a newer
leader has been elected, the old leader's writes and offer claims are refused and change
nothing. Needs Redis on 127.0.0.1:6379 (like ``test_acd_store``)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from acd.agent import AgentSnapshot, AgentState
from acd.calls import QueuedCall
from acd.redis_store import FencedOut, RedisStore
from hotline.lease import RedisLease
from tongdai.errors import StoreError

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisStore, RedisStore, str]]:
    prefix = f"tongdai-test:{secrets.token_hex(6)}"
    old, new = (RedisStore.from_url(REDIS_URL, prefix=prefix) for _ in range(2))
    try:
        await old.ping()
    except StoreError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is needed for these tests: {exc}")
    try:
        yield old, new, prefix
    finally:
        await old.clear()
        await old.close()
        await new.close()


async def _elect(store: RedisStore, node: str) -> int:
    """Take the lease the way ``hotline.lease`` does (its key beside the store's keys)."""
    lease = RedisLease(store.client, store.key("leader"), node, ttl_s=1.5)
    epoch = await lease.try_acquire()
    assert epoch, "the lease was free"
    await lease.release()  # free for the next election; the epoch number stays
    return epoch


def _call(uid: str, seq: int) -> QueuedCall:
    return QueuedCall(uid, "chung", 0, 1000.0 + seq, seq, "0900000000")


async def test_given_a_newer_leader_when_the_old_one_writes_then_it_is_refused_and_nothing_changes(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    old, new, _ = pair
    old.epoch = await _elect(old, "engine-a")
    await old.save_calls([_call("c1", 1)])
    new.epoch = await _elect(new, "engine-b")
    assert new.epoch > old.epoch
    await new.save_calls([_call("c2", 2)])

    with pytest.raises(FencedOut):
        await old.save_calls([_call("c3", 3)])
    with pytest.raises(FencedOut):
        await old.delete_calls(["c1", "c2"])
    with pytest.raises(FencedOut):
        await old.save_rr({"chung": "agent101"})
    with pytest.raises(FencedOut):
        await old.save_agents({"agent101": AgentSnapshot(AgentState.AVAILABLE.value, 1000.0)})
    with pytest.raises(FencedOut):
        await old.claim_offer("c2", "agent101", 15)

    assert [c.uniqueid for c in await new.load_calls()] == ["c1", "c2"]
    assert await new.load_rr() == {}
    assert await new.load_agents() == {}
    assert await new.claim_offer("c2", "agent101", 15)  # the offer was never taken


async def test_given_the_current_epoch_when_writing_then_it_is_stored(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    old, new, _ = pair
    old.epoch = await _elect(old, "engine-a")
    await old.save_calls([_call("c1", 1), _call("c2", 2)])
    await old.delete_calls(["c1"])
    await old.save_rr({"chung": "agent102"})
    assert [c.uniqueid for c in await new.load_calls()] == ["c2"]
    assert await new.load_rr() == {"chung": "agent102"}


async def test_an_unfenced_store_ignores_the_epoch(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    """One engine (no failover): ``epoch`` is None and writes go through whatever the key."""
    old, new, prefix = pair
    client: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.set("{" + prefix + "}:leader:epoch", 99)
    finally:
        await client.aclose()
    await old.save_calls([_call("c1", 1)])
    assert [c.uniqueid for c in await new.load_calls()] == ["c1"]
