"""The StateStore contract, run on the memory store and on Redis (127.0.0.1:6379).

Redis tests use a random key prefix each and delete it afterwards. They fail with a clear
message when Redis is down; deselect them with ``-m "not redis"`` (or ``-k "not redis"``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable

import pytest
from test_acd_dispatch import make

from acd.agent import AgentSnapshot
from acd.calls import CallState, QueuedCall
from acd.config import CallbackConfig
from acd.dispatch import Dispatcher
from acd.memory_store import MemoryStore
from acd.persistence import persist, rebuild
from acd.redis_store import RedisStore
from acd.store import StateStore
from tongdai.errors import StoreError

REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS = pytest.mark.redis

#: a store factory: each call gives another "node" on the same shared state
Nodes = Callable[[], StateStore]


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=REDIS), pytest.param("fenced", marks=REDIS)]
)
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
        return
    prefix = f"tongdai-test:{secrets.token_hex(6)}"
    opened: list[RedisStore] = []

    def node() -> StateStore:
        s = RedisStore.from_url(REDIS_URL, prefix=prefix, timeout_s=2.0)
        if request.param == "fenced":  # a leader's writes (failover): same contract
            s.epoch = 1
        opened.append(s)
        return s

    first = node()
    try:
        await first.ping()  # type: ignore[attr-defined]
    except StoreError as exc:
        await first.close()
        pytest.fail(f"Redis at {REDIS_URL} is needed for these tests (or -m 'not redis'): {exc}")
    try:
        yield node
    finally:
        await opened[0].clear()
        for s in opened:
            await s.close()


def call(uid: str, seq: int, **kw: object) -> QueuedCall:
    return QueuedCall(uid, "thu_tuc", 0, 1000.0 + seq, seq, caller="0905", **kw)  # type: ignore[arg-type]


async def test_calls_come_back_in_arrival_order_with_every_field(nodes: Nodes) -> None:
    store = nodes()
    calls = [call("c3", 3), call("c1", 1, state=CallState.CALLBACK_WAITING), call("c2", 2)]
    calls[1].callback_number, calls[1].on_line, calls[1].visited = "0905", False, ["a", "b"]
    await store.save_calls(calls)
    got = await store.load_calls()
    assert [c.uniqueid for c in got] == ["c1", "c2", "c3"]
    assert [c.to_dict() for c in got] == [c.to_dict() for c in sorted(calls, key=lambda c: c.seq)]
    calls[0].state = CallState.OFFERED
    await store.save_calls([calls[0]])
    await store.delete_calls(["c2", "nope"])
    got = await store.load_calls()
    assert [(c.uniqueid, c.state) for c in got] == [
        ("c1", CallState.CALLBACK_WAITING),
        ("c3", CallState.OFFERED),
    ]
    assert await nodes().load_calls() == got  # another node sees the same


async def test_agents_and_round_robin_memory_round_trip(nodes: Nodes) -> None:
    store = nodes()
    snaps = {
        "a1": AgentSnapshot("paused", 10.0, pause_reason="meal", time_in={"available": 3.5}),
        "a2": AgentSnapshot("on_call", 12.0, call_id="c1", calls_today=4, misses=1),
    }
    await store.save_agents(snaps)
    await store.save_agents({"a1": AgentSnapshot("available", 20.0)})
    assert await store.load_agents() == {"a1": AgentSnapshot("available", 20.0), "a2": snaps["a2"]}
    await store.save_rr({"thu_tuc": "a2", "chung": "a1"})
    await store.save_rr({"thu_tuc": "a1"})
    assert await store.load_rr() == {"thu_tuc": "a1"}
    assert await nodes().load_rr() == {"thu_tuc": "a1"}


async def test_an_offer_claim_holds_one_call_to_one_agent(nodes: Nodes) -> None:
    n1, n2 = nodes(), nodes()
    assert await n1.claim_offer("c1", "a1", 15)
    assert not await n2.claim_offer("c1", "a2", 15)  # the call is taken
    assert not await n2.claim_offer("c2", "a1", 15)  # the agent is taken
    assert await n1.claim_offer("c1", "a1", 15)  # same pair: renewed
    await n2.release_offer("c1", "a2")  # not theirs: nothing happens
    assert not await n2.claim_offer("c1", "a2", 15)
    await n1.release_offer("c1", "a1")
    assert await n2.claim_offer("c1", "a2", 15)
    assert await n1.claim_offer("c2", "a1", 15)


async def test_given_concurrent_claims_from_nodes_then_exactly_one_wins(nodes: Nodes) -> None:
    many = [nodes() for _ in range(4)]
    same_call = await asyncio.gather(
        *(many[i % 4].claim_offer("c1", f"a{i}", 15) for i in range(20))
    )
    assert sum(same_call) == 1
    same_agent = await asyncio.gather(
        *(many[i % 4].claim_offer(f"x{i}", "b1", 15) for i in range(20))
    )
    assert sum(same_agent) == 1


async def test_a_claim_expires_after_its_ttl(nodes: Nodes) -> None:
    store = nodes()
    assert await store.claim_offer("c1", "a1", 0.2)
    assert not await store.claim_offer("c1", "a2", 15)
    deadline = time.monotonic() + 3.0
    while not await store.claim_offer("c1", "a2", 15):
        assert time.monotonic() < deadline, "the claim never expired"
        await asyncio.sleep(0.05)


async def test_a_restarted_engine_rebuilds_its_view_from_the_store(nodes: Nodes) -> None:
    store = nodes()
    d, clock = make(callback=CallbackConfig(offer_after_s=0))
    for i in range(6):
        d.call_arrived(f"c{i}", "thu_tuc" if i % 2 else "chung", caller=f"090{i}")
        clock.t += 1
    d.call_arrived("vip", "thu_tuc", priority=9)
    d.agent_login("a1")
    d.agent_login("a2")
    d.agent_pause("a2", "break")
    d.assign()
    d.request_callback("c3")
    d.call_left("c4")
    await persist(store, d.take_dirty())
    d.agent_unpause("a2")
    d.assign()
    await persist(store, d.take_dirty())

    fresh = Dispatcher(d.cfg, clock=clock)
    assert await rebuild(nodes(), fresh) == len(d.calls)
    for q in d.cfg.queues:
        assert [c.to_dict() for c in fresh.line(q)] == [c.to_dict() for c in d.line(q)]
    touched = ("a1", "a2")  # a3 never logged in: nothing stored, logged out either way
    assert {a: fresh.agents[a].snapshot() for a in touched} == {
        a: d.agents[a].snapshot() for a in touched
    }
    assert fresh.agents["a3"].state is d.agents["a3"].state
    assert fresh.rr == d.rr
    assert fresh.position("c5") == d.position("c5")
    # the rebuilt engine carries on: new calls go after the old ones
    fresh.call_arrived("new", "thu_tuc")
    assert fresh.line("thu_tuc")[-1].uniqueid == "new"


async def test_given_redis_unreachable_then_a_store_error_not_a_hang() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", prefix="x", timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(StoreError, match="redis"):
        await store.load_calls()
    assert time.monotonic() - t0 < 3
    await store.close()
