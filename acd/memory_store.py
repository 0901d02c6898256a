"""The embedded, one-node ``StateStore``: the live state in this process's memory.

Values are copied through JSON on the way in and out, exactly like the Redis store, so the
dispatcher never shares a mutable object with the store and both stores behave the same.
Nothing survives the process; it is the default when a single engine runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from acd.agent import AgentSnapshot, Clock
from acd.calls import QueuedCall


class MemoryStore:
    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._calls: dict[str, str] = {}
        self._agents: dict[str, str] = {}
        self._rr: dict[str, str] = {}
        #: call -> (agent, expires), agent -> (call, expires)
        self._by_call: dict[str, tuple[str, float]] = {}
        self._by_agent: dict[str, tuple[str, float]] = {}

    async def save_calls(self, calls: Sequence[QueuedCall]) -> None:
        for c in calls:
            self._calls[c.uniqueid] = json.dumps(c.to_dict())

    async def delete_calls(self, call_ids: Sequence[str]) -> None:
        for cid in call_ids:
            self._calls.pop(cid, None)

    async def load_calls(self) -> list[QueuedCall]:
        calls = [QueuedCall.from_dict(json.loads(v)) for v in self._calls.values()]
        return sorted(calls, key=lambda c: c.seq)

    async def save_agents(self, agents: Mapping[str, AgentSnapshot]) -> None:
        for aid, snap in agents.items():
            self._agents[aid] = json.dumps(snap.to_dict())

    async def load_agents(self) -> dict[str, AgentSnapshot]:
        return {a: AgentSnapshot.from_dict(json.loads(v)) for a, v in self._agents.items()}

    async def save_rr(self, memory: Mapping[str, str]) -> None:
        self._rr = dict(memory)

    async def load_rr(self) -> dict[str, str]:
        return dict(self._rr)

    def _holder(self, table: dict[str, tuple[str, float]], key: str) -> str | None:
        held = table.get(key)
        if held is None:
            return None
        if held[1] <= self.clock():
            del table[key]
            return None
        return held[0]

    async def claim_offer(self, call_id: str, agent_id: str, ttl_s: float) -> bool:
        # no await between the checks and the writes: atomic for this event loop
        agent = self._holder(self._by_call, call_id)
        call = self._holder(self._by_agent, agent_id)
        if (agent is not None and agent != agent_id) or (call is not None and call != call_id):
            return False
        until = self.clock() + ttl_s
        self._by_call[call_id] = (agent_id, until)
        self._by_agent[agent_id] = (call_id, until)
        return True

    async def release_offer(self, call_id: str, agent_id: str) -> None:
        if self._holder(self._by_call, call_id) == agent_id:
            del self._by_call[call_id]
        if self._holder(self._by_agent, agent_id) == call_id:
            del self._by_agent[agent_id]

    async def close(self) -> None:
        return None
