"""Which free agent gets a call: skill requirements (with escalation) and the four strategies.

A queue's skills are required, all of them, at their minimum level. Overflow steps with
``add_skills`` widen that as the caller waits: after ``after_s`` in the queue, an agent with
any one of the added skills is accepted too (``Requirement.any_of``). Steps with ``queue`` move
the call; the dispatcher does that.

Every strategy has ``pick(agents, call, now, memory, need)``: ``call`` is what waits in line
(a call, or a conversation: ``acd.desk``), ``agents`` are free agents that already meet
``need``; it returns one of them or None. Ties always break on the configuration order, so the
choice is deterministic.

- longest_idle: the agent whose last call ended longest ago (login time if none); app_queue's
  ``leastrecent``.
- fewest_calls: fewest calls handled today, then longest idle.
- round_robin: the next agent id after the one last chosen for this queue (``memory``, kept
  in the state store so a restart does not start over).
- skills: highest sum of levels over the skills the call needs, then longest idle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from acd.agent import Agent
from acd.calls import InLine
from acd.config import QueueConfig, SkillReq

#: round-robin memory: queue name -> id of the agent chosen last
RoundRobinMemory = dict[str, str]


@dataclass(frozen=True)
class Requirement:
    """Eligible if the agent has every skill of ``all_of``, or any one skill of ``any_of``."""

    all_of: tuple[SkillReq, ...] = ()
    any_of: tuple[SkillReq, ...] = ()

    def matches(self, agent: Agent) -> bool:
        if all(agent.level(r.skill) >= r.min_level for r in self.all_of):
            return True
        return any(agent.level(r.skill) >= r.min_level for r in self.any_of)

    def level_sum(self, agent: Agent) -> int:
        skills = {r.skill for r in self.all_of} | {r.skill for r in self.any_of}
        return sum(agent.level(s) for s in skills)


def active_steps(queue: QueueConfig, waited_in_queue_s: float) -> int:
    """How many overflow steps of ``queue`` apply after that wait (they are in after_s order)."""
    n = 0
    for step in queue.overflow:
        if step.after_s > waited_in_queue_s:
            break
        n += 1
    return n


def requirement(queue: QueueConfig, steps: int) -> Requirement:
    """The skill requirement of ``queue`` once its first ``steps`` overflow steps apply."""
    extra: list[SkillReq] = []
    for step in queue.overflow[:steps]:
        extra.extend(r for r in step.add_skills if r not in extra)
    return Requirement(queue.skills, tuple(extra))


class Strategy(Protocol):
    def pick(
        self,
        agents: Sequence[Agent],
        call: InLine,
        now: float,
        memory: RoundRobinMemory,
        need: Requirement | None = None,
    ) -> Agent | None: ...


def _idle_key(a: Agent) -> tuple[float, int]:
    return (a.idle_since, a.order)


class LongestIdle:
    def pick(
        self,
        agents: Sequence[Agent],
        call: InLine,
        now: float,
        memory: RoundRobinMemory,
        need: Requirement | None = None,
    ) -> Agent | None:
        return min(agents, key=_idle_key, default=None)


class FewestCalls:
    def pick(
        self,
        agents: Sequence[Agent],
        call: InLine,
        now: float,
        memory: RoundRobinMemory,
        need: Requirement | None = None,
    ) -> Agent | None:
        return min(agents, key=lambda a: (a.calls_today, *_idle_key(a)), default=None)


class RoundRobin:
    def pick(
        self,
        agents: Sequence[Agent],
        call: InLine,
        now: float,
        memory: RoundRobinMemory,
        need: Requirement | None = None,
    ) -> Agent | None:
        if not agents:
            return None
        last = memory.get(call.queue, "")
        after = [a for a in agents if a.id > last]
        chosen = min(after or agents, key=lambda a: a.id)
        memory[call.queue] = chosen.id
        return chosen


class SkillsBased:
    def pick(
        self,
        agents: Sequence[Agent],
        call: InLine,
        now: float,
        memory: RoundRobinMemory,
        need: Requirement | None = None,
    ) -> Agent | None:
        req = need or Requirement()
        return min(agents, key=lambda a: (-req.level_sum(a), *_idle_key(a)), default=None)


STRATEGIES: dict[str, Strategy] = {
    "longest_idle": LongestIdle(),
    "fewest_calls": FewestCalls(),
    "round_robin": RoundRobin(),
    "skills": SkillsBased(),
}


def pick(
    strategy: str,
    agents: Sequence[Agent],
    call: InLine,
    now: float,
    memory: RoundRobinMemory,
    need: Requirement | None = None,
) -> Agent | None:
    """Choose among ``agents`` (free, meeting ``need``) with the named strategy."""
    return STRATEGIES[strategy].pick(agents, call, now, memory, need)
