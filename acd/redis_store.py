"""The ``StateStore`` in Redis (``redis.asyncio``), for several engine nodes.

Keys (one hash tag, so they share a cluster slot; ``prefix`` separates deployments and tests):

    {prefix}:calls        hash   uniqueid -> call JSON
    {prefix}:order        zset   uniqueid scored by arrival number (seq): load order
    {prefix}:agents       hash   agent id -> agent snapshot JSON
    {prefix}:rr           hash   queue -> agent chosen last (round robin)
    {prefix}:offer:call:X string agent holding the offer of call X   (expires: ring timeout)
    {prefix}:offer:agent:Y string call offered to agent Y              (expires: ring timeout)

    {prefix}:leader:epoch string  the leader lease's term number (``hotline.lease``)

``claim_offer`` checks and sets both offer keys in one Lua script, so two nodes can never
offer one call to two agents, nor two calls to one agent. Every command has a timeout; Redis
failures surface as ``StoreError``.

Fencing (engine failover, docs/failover.md): once ``epoch`` is set (the leader's term), every
write and claim runs inside a Lua script that first compares it with ``{prefix}:leader:epoch``
and refuses it (``FencedOut``) when a newer leader has been elected: an old leader that was
paused (GC, a stopped VM) and wakes up after the takeover cannot overwrite the new leader's
state nor ring an agent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from acd.agent import AgentSnapshot
from acd.calls import QueuedCall
from tongdai.errors import StoreError


class FencedOut(StoreError):
    """A write or claim of an older leader's term, refused: another node leads now."""


#: KEYS[1] the epoch key; ARGV[1] the writer's epoch; ARGV[2] a JSON list of commands
_FENCED = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < current then return 0 end
for _, command in ipairs(cjson.decode(ARGV[2])) do redis.call(unpack(command)) end
return 1
"""

_CLAIM = """
if tonumber(ARGV[4]) < tonumber(redis.call('GET', KEYS[3]) or '0') then return -1 end
local a = redis.call('GET', KEYS[1])
local c = redis.call('GET', KEYS[2])
if (a and a ~= ARGV[1]) or (c and c ~= ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""


class RedisStore:
    def __init__(
        self, client: aioredis.Redis, *, prefix: str = "tongdai:acd", timeout_s: float = 2.0
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._p = "{" + prefix + "}"
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._fenced = client.register_script(_FENCED)
        #: the leader's term (fencing token); None: writes are not fenced (one engine)
        self.epoch: int | None = None

    @classmethod
    def from_url(
        cls,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "tongdai:acd",
        timeout_s: float = 2.0,
    ) -> RedisStore:
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        return cls(client, prefix=prefix, timeout_s=timeout_s)

    def key(self, name: str) -> str:
        return f"{self._p}:{name}"

    async def _do(self, what: str, aw: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await aw
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreError(f"redis {what}: {exc or type(exc).__name__}") from exc

    async def ping(self) -> bool:
        return bool(await self._do("ping", self.client.ping()))

    async def _write(self, what: str, commands: list[list[Any]]) -> None:
        """Run ``commands`` atomically: a MULTI pipeline, or (``epoch`` set) the fenced
        script, which refuses them all when a newer leader holds the lease."""
        if self.epoch is None:
            pipe = self.client.pipeline(transaction=True)
            for name, *args in commands:
                pipe.execute_command(name, *args)
            await self._do(what, pipe.execute())
            return
        done = await self._do(
            what,
            self._fenced(keys=[self.key("leader:epoch")], args=[self.epoch, json.dumps(commands)]),
        )
        if not done:
            raise FencedOut(f"redis {what}: refused, epoch {self.epoch} is no longer the leader's")

    async def save_calls(self, calls: Sequence[QueuedCall]) -> None:
        if not calls:
            return
        fields: list[Any] = []
        scores: list[Any] = []
        for c in calls:
            fields += [c.uniqueid, json.dumps(c.to_dict())]
            scores += [c.seq, c.uniqueid]
        await self._write(
            "save calls",
            [["HSET", self.key("calls"), *fields], ["ZADD", self.key("order"), *scores]],
        )

    async def delete_calls(self, call_ids: Sequence[str]) -> None:
        if not call_ids:
            return
        await self._write(
            "delete calls",
            [["HDEL", self.key("calls"), *call_ids], ["ZREM", self.key("order"), *call_ids]],
        )

    async def load_calls(self) -> list[QueuedCall]:
        ids: list[str] = await self._do("load order", self.client.zrange(self.key("order"), 0, -1))
        if not ids:
            return []
        raw: list[Any] = await self._do(
            "load calls",
            self.client.hmget(self.key("calls"), ids),
        )
        return [QueuedCall.from_dict(json.loads(v)) for v in raw if v is not None]

    async def save_agents(self, agents: Mapping[str, AgentSnapshot]) -> None:
        if agents:
            fields: list[Any] = []
            for a, snap in agents.items():
                fields += [a, json.dumps(snap.to_dict())]
            await self._write("save agents", [["HSET", self.key("agents"), *fields]])

    async def load_agents(self) -> dict[str, AgentSnapshot]:
        raw: dict[str, str] = await self._do(
            "load agents",
            self.client.hgetall(self.key("agents")),
        )
        return {a: AgentSnapshot.from_dict(json.loads(v)) for a, v in raw.items()}

    async def save_rr(self, memory: Mapping[str, str]) -> None:
        commands: list[list[Any]] = [["DEL", self.key("rr")]]
        if memory:
            fields: list[Any] = [x for pair in memory.items() for x in pair]
            commands.append(["HSET", self.key("rr"), *fields])
        await self._write("save round-robin memory", commands)

    async def load_rr(self) -> dict[str, str]:
        raw: dict[str, str] = await self._do(
            "load round-robin memory",
            self.client.hgetall(self.key("rr")),
        )
        return dict(raw)

    def _offer_keys(self, call_id: str, agent_id: str) -> list[str]:
        return [self.key(f"offer:call:{call_id}"), self.key(f"offer:agent:{agent_id}")]

    async def claim_offer(self, call_id: str, agent_id: str, ttl_s: float) -> bool:
        ttl_ms = max(1, round(ttl_s * 1000))
        keys = [*self._offer_keys(call_id, agent_id), self.key("leader:epoch")]
        epoch = self.epoch if self.epoch is not None else 0
        won = await self._do(
            "claim offer", self._claim(keys=keys, args=[agent_id, call_id, ttl_ms, epoch])
        )
        if won == -1:
            raise FencedOut(f"redis claim offer: refused, epoch {epoch} is no longer the leader's")
        return bool(won)

    async def release_offer(self, call_id: str, agent_id: str) -> None:
        keys = self._offer_keys(call_id, agent_id)
        await self._do("release offer", self._release(keys=keys, args=[agent_id, call_id]))

    async def clear(self) -> None:
        """Delete every key of this prefix (tests, or a deliberate reset)."""
        keys = [k async for k in self.client.scan_iter(match=f"{self._p}:*", count=500)]
        if keys:
            await self._do("clear", self.client.delete(*keys))

    async def close(self) -> None:
        await self.client.aclose()
