"""Where the distribution's live state lives, so a restarted engine rebuilds its view.

``StateStore`` is the small interface the distributor talks to; ``memory_store.MemoryStore`` is
the embedded one-node default, ``redis_store.RedisStore`` serves several engine nodes. Both pass
the same contract tests (tests/unit/test_acd_store.py).

What is kept: the calls in line, in arrival order (their place is their order key, so the
order survives), every agent's state, and the round-robin memory. ``claim_offer`` is the guard
across nodes: a call is offered to at most one agent and an agent holds at most one offer, for
``ttl_s`` (the ring timeout) or until released.

``acd.persistence`` writes what changed after each batch of events and, at start, rebuilds the
dispatcher from the store before the voice adapter reconciles with AMI's channels and device
states. ``Dirty`` lives here, below the dispatcher, which produces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from acd.agent import AgentSnapshot
from acd.calls import QueuedCall


@dataclass
class Dirty:
    """What changed in a dispatcher since its last ``take_dirty``: save these, delete ``ended``."""

    calls: list[QueuedCall] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    agents: dict[str, AgentSnapshot] = field(default_factory=dict)
    rr: dict[str, str] | None = None


class StateStore(Protocol):
    async def save_calls(self, calls: Sequence[QueuedCall]) -> None:
        """Insert or replace these calls (their ``seq`` is their arrival order)."""

    async def delete_calls(self, call_ids: Sequence[str]) -> None: ...

    async def load_calls(self) -> list[QueuedCall]:
        """Every stored call, in arrival order (``seq``)."""
        ...

    async def save_agents(self, agents: Mapping[str, AgentSnapshot]) -> None: ...

    async def load_agents(self) -> dict[str, AgentSnapshot]: ...

    async def save_rr(self, memory: Mapping[str, str]) -> None:
        """Replace the round-robin memory (queue -> last agent chosen)."""

    async def load_rr(self) -> dict[str, str]: ...

    async def claim_offer(self, call_id: str, agent_id: str, ttl_s: float) -> bool:
        """Atomically take (call, agent) for ``ttl_s``; False if either is held by another.

        Claiming the same pair again succeeds and renews the time."""
        ...

    async def release_offer(self, call_id: str, agent_id: str) -> None:
        """Drop the claim on (call, agent), if it is still theirs."""

    async def close(self) -> None: ...
