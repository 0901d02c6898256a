"""Strategies on fake agents: longest idle, fewest calls, round robin, skills with escalation."""

from __future__ import annotations

from acd.agent import Agent
from acd.calls import QueuedCall
from acd.config import AgentConfig, Overflow, QueueConfig, SkillReq
from acd.strategies import Requirement, active_steps, pick, requirement


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def agent(aid: str, order: int, clock: FakeClock, **skills: int) -> Agent:
    a = Agent(AgentConfig(aid, aid, f"PJSIP/{aid}", skills), clock, order=order)
    a.login()
    return a


def call(queue: str = "thu_tuc") -> QueuedCall:
    return QueuedCall("c1", queue, 0, 1000.0, 0)


def idle_for(a: Agent, ended_at: float, calls: int = 0) -> Agent:
    a.last_call_ended_at, a.calls_today = ended_at, calls
    return a


def test_longest_idle_picks_the_agent_whose_last_call_ended_first() -> None:
    clock = FakeClock()
    agents = [
        idle_for(agent("a1", 0, clock), 500),
        idle_for(agent("a2", 1, clock), 300),
        idle_for(agent("a3", 2, clock), 400),
    ]
    assert pick("longest_idle", agents, call(), 1000, {}) is agents[1]


def test_longest_idle_counts_login_time_when_no_call_yet_and_ties_break_on_order() -> None:
    clock = FakeClock()
    fresh = agent("a1", 0, clock)  # logged in at 1000, no call
    worked = idle_for(agent("a2", 1, clock), 900)
    assert pick("longest_idle", [fresh, worked], call(), 1000, {}) is worked
    twin_a, twin_b = agent("b1", 5, clock), agent("b0", 4, clock)
    assert pick("longest_idle", [twin_a, twin_b], call(), 1000, {}) is twin_b


def test_fewest_calls_then_longest_idle() -> None:
    clock = FakeClock()
    agents = [
        idle_for(agent("a1", 0, clock), 100, calls=5),
        idle_for(agent("a2", 1, clock), 900, calls=2),
        idle_for(agent("a3", 2, clock), 800, calls=2),
    ]
    assert pick("fewest_calls", agents, call(), 1000, {}) is agents[2]


def test_round_robin_cycles_in_id_order_and_remembers_per_queue() -> None:
    clock = FakeClock()
    agents = [agent(a, i, clock) for i, a in enumerate(["a1", "a2", "a3"])]
    memory: dict[str, str] = {}
    got = [pick("round_robin", agents, call(), 1000, memory).id for _ in range(4)]  # type: ignore[union-attr]
    assert got == ["a1", "a2", "a3", "a1"]
    assert memory == {"thu_tuc": "a1"}
    # a2 is busy now: the next after a1 that is free is a3
    assert pick("round_robin", [agents[0], agents[2]], call(), 1000, memory) is agents[2]
    # another queue has its own memory
    assert pick("round_robin", agents, call("chung"), 1000, memory) is agents[0]


def test_skills_prefers_the_higher_level_sum_then_longest_idle() -> None:
    clock = FakeClock()
    need = Requirement((SkillReq("thu_tuc", 2), SkillReq("chung", 1)))
    junior = idle_for(agent("a1", 0, clock, thu_tuc=2, chung=1), 100)
    expert = idle_for(agent("a2", 1, clock, thu_tuc=5, chung=3), 900)
    expert2 = idle_for(agent("a3", 2, clock, thu_tuc=4, chung=4), 800)
    assert pick("skills", [junior, expert, expert2], call(), 1000, {}, need) is expert2


def test_requirement_needs_every_skill_at_its_minimum_level() -> None:
    clock = FakeClock()
    need = Requirement((SkillReq("thu_tuc", 3), SkillReq("chung", 1)))
    assert need.matches(agent("a1", 0, clock, thu_tuc=3, chung=1))
    assert not need.matches(agent("a2", 0, clock, thu_tuc=2, chung=5))
    assert not need.matches(agent("a3", 0, clock, thu_tuc=5))


def test_escalation_widens_the_requirement_as_the_call_waits() -> None:
    clock = FakeClock()
    q = QueueConfig(
        "thu_tuc",
        "thu_tuc",
        (SkillReq("thu_tuc", 3),),
        overflow=(
            Overflow(60, add_skills=(SkillReq("chung", 2),)),
            Overflow(120, queue="chung"),
            Overflow(180, add_skills=(SkillReq("phan_anh", 1),)),
        ),
    )
    generalist = agent("g", 0, clock, chung=4)
    assert [active_steps(q, w) for w in (0, 59.9, 60, 150, 500)] == [0, 0, 1, 2, 3]
    assert not requirement(q, 0).matches(generalist)
    assert requirement(q, 1).matches(generalist)
    assert requirement(q, 3).any_of == (SkillReq("chung", 2), SkillReq("phan_anh", 1))
    weak = agent("w", 1, clock, chung=1)
    assert not requirement(q, 3).matches(weak)


def test_no_candidates_means_no_pick() -> None:
    for s in ("longest_idle", "fewest_calls", "round_robin", "skills"):
        assert pick(s, [], call(), 1000, {}) is None
