"""The dispatcher on fakes: order, strategies, ring-no-answer, capacity, callbacks, overflow."""

from __future__ import annotations

from typing import Any

import pytest

from acd.agent import AcdError, AgentState, Transition, UnknownAgent
from acd.calls import Admission, CallOutcome, CallState, CallTransition, UnknownCall
from acd.config import AcdConfig, AgentConfig, CallbackConfig, Overflow, QueueConfig, SkillReq
from acd.dispatch import Dispatcher

A, C = AgentState, CallState


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_cfg(
    agents: dict[str, dict[str, int]],
    queues: dict[str, dict[str, Any]] | None = None,
    **kw: Any,
) -> AcdConfig:
    queues = queues or {"thu_tuc": {}, "chung": {}}
    qs = {
        name: QueueConfig(
            name=name,
            category=name,
            skills=tuple(SkillReq(s, lvl) for s, lvl in opts.pop("skills", {name: 1}).items()),
            **opts,
        )
        for name, opts in queues.items()
    }
    skills = ("thu_tuc", "chung", "phan_anh")
    ags = {a: AgentConfig(a, a, f"PJSIP/{a}", s) for a, s in agents.items()}
    return AcdConfig("test", skills, ags, qs, **kw)


def make(
    agents: dict[str, dict[str, int]] | None = None, **kw: Any
) -> tuple[Dispatcher, FakeClock]:
    clock = FakeClock()
    agents = agents or {f"a{i}": {"thu_tuc": 3, "chung": 3} for i in range(1, 4)}
    d = Dispatcher(make_cfg(agents, **kw), clock=clock)
    return d, clock


def login_all(d: Dispatcher, clock: FakeClock) -> None:
    for aid in d.agents:
        d.agent_login(aid)
        clock.t += 1


def offers_of(d: Dispatcher) -> list[tuple[str, str]]:
    return [(o.call_id, o.agent_id) for o in d.assign()]


def names(events: list[Transition | CallTransition]) -> list[str]:
    return [e.event for e in events]


def test_given_five_agents_then_calls_go_to_the_longest_idle_first() -> None:
    d, clock = make({f"a{i}": {"chung": 1} for i in range(1, 6)})
    for aid in ("a3", "a1", "a5", "a2", "a4"):  # login order = idle order
        d.agent_login(aid)
        clock.t += 1
    got = []
    for i in range(5):
        d.call_arrived(f"c{i}", "chung")
        got += offers_of(d)
    assert [a for _, a in got] == ["a3", "a1", "a5", "a2", "a4"]
    # a1 finishes first, then a3: a1 becomes the longest idle
    for cid, _ in got:
        d.answered(cid)
    clock.t += 10
    d.call_completed("c1", "caller")
    clock.t += 10
    d.call_completed("c0", "agent")
    d.call_arrived("c5", "chung")
    assert offers_of(d) == [("c5", "a1")]


def test_given_priorities_then_higher_first_and_fifo_among_equals() -> None:
    d, clock = make(
        {"a1": {"thu_tuc": 1, "phan_anh": 1}},
        queues={"thu_tuc": {}, "phan_anh": {"priority": 5}},
    )
    for cid, q in [("t1", "thu_tuc"), ("p1", "phan_anh"), ("t2", "thu_tuc"), ("p2", "phan_anh")]:
        d.call_arrived(cid, q)
        clock.t += 1
    assert [c.uniqueid for c in d.line("phan_anh")] == ["p1", "p2"]
    d.agent_login("a1")
    order = []
    for _ in range(4):
        (cid, _a), *_ = offers_of(d)
        order.append(cid)
        d.answered(cid)
        d.call_completed(cid, "caller")
    assert order == ["p1", "p2", "t1", "t2"]


def test_given_ring_no_answer_then_the_call_keeps_its_place_and_goes_to_the_next_agent() -> None:
    d, clock = make()
    login_all(d, clock)
    for i in range(3):
        d.call_arrived(f"c{i}", "thu_tuc")
    d.agent_pause("a2", "break")
    d.agent_pause("a3", "meal")
    assert offers_of(d) == [("c0", "a1")]
    clock.t += 15
    d.call_arrived("late", "thu_tuc")
    tr = d.ring_no_answer("c0")
    assert (tr.event, tr.to_state, tr.position, tr.ring_s) == ("ring_no_answer", C.WAITING, 1, 15)
    assert [c.uniqueid for c in d.line("thu_tuc")] == ["c0", "c1", "c2", "late"]
    d.agent_unpause("a2")
    # a1 just let it ring out: someone else gets it if anyone else can
    assert offers_of(d) == [("c0", "a2"), ("c1", "a1")]


def test_given_max_misses_then_the_agent_is_auto_paused_and_never_rung_again() -> None:
    d, clock = make({"a1": {"thu_tuc": 1}}, queues={"thu_tuc": {"max_misses": 2}})
    login_all(d, clock)
    d.call_arrived("c0", "thu_tuc")
    for _ in range(2):
        assert offers_of(d) == [("c0", "a1")]
        d.ring_no_answer("c0")
    assert d.agents["a1"].state is A.PAUSED
    assert d.agents["a1"].pause_reason == "missed_calls"
    assert offers_of(d) == []
    ev = [e for e in d.drain_events() if isinstance(e, Transition)]
    assert (ev[-1].event, ev[-1].to_state, ev[-1].reason) == (
        "ring_no_answer",
        A.PAUSED,
        "missed_calls",
    )


def test_given_an_agent_whose_phone_is_busy_then_they_are_never_offered() -> None:
    d, clock = make()
    login_all(d, clock)
    d.agent_device("a1", in_use=True)  # a personal call: not one we gave
    d.agent_device("a2", in_use=True)
    d.call_arrived("c0", "thu_tuc")
    d.call_arrived("c1", "thu_tuc")
    assert offers_of(d) == [("c0", "a3")]
    d.agent_device("a1", in_use=False)
    assert offers_of(d) == [("c1", "a1")]


def test_given_max_calls_then_the_next_caller_is_rejected_busy() -> None:
    d, clock = make(max_calls=2, callback=CallbackConfig())
    assert d.call_arrived("c0", "thu_tuc", caller="0905") is Admission.QUEUED
    assert d.call_arrived("c1", "thu_tuc") is Admission.QUEUED
    assert d.call_arrived("c2", "thu_tuc") is Admission.REJECTED_BUSY
    assert "c2" not in d.calls
    clock.t += 100
    d.request_callback("c0")  # a callback waiting holds no line
    assert d.call_arrived("c2", "thu_tuc") is Admission.QUEUED


def test_given_the_caller_hangs_up_while_ringing_then_abandon_and_the_agent_is_not_blamed() -> None:
    d, clock = make()
    login_all(d, clock)
    d.call_arrived("c0", "thu_tuc")
    d.call_arrived("c1", "thu_tuc")
    d.agent_pause("a2", "break")
    d.agent_pause("a3", "break")
    offers_of(d)
    d.drain_events()
    clock.t += 4
    tr = d.call_left("c0")
    assert (tr.event, tr.outcome, tr.agent, tr.ring_s, tr.position) == (
        "abandon",
        CallOutcome.ABANDONED_QUEUE,
        "a1",
        4,
        1,
    )
    assert d.agents["a1"].state is A.AVAILABLE and d.agents["a1"].misses == 0
    assert d.position("c1") == 1 and "c0" not in d.calls
    assert offers_of(d) == [("c1", "a1")]


def test_given_wrap_up_then_the_agent_waits_before_the_next_call() -> None:
    d, clock = make({"a1": {"thu_tuc": 1}}, queues={"thu_tuc": {"wrapup_s": 10}})
    login_all(d, clock)
    d.call_arrived("c0", "thu_tuc")
    d.call_arrived("c1", "thu_tuc")
    offers_of(d)
    d.answered("c0")
    clock.t += 30
    d.call_completed("c0", "agent")
    assert d.agents["a1"].state is A.WRAP_UP
    clock.t += 9.9
    assert offers_of(d) == []
    clock.t += 0.1
    assert offers_of(d) == [("c1", "a1")]


def test_given_a_call_waiting_past_overflow_then_generalists_may_take_it() -> None:
    d, clock = make(
        {"expert": {"thu_tuc": 4}, "gen": {"chung": 3}},
        queues={
            "thu_tuc": {"overflow": (Overflow(60, add_skills=(SkillReq("chung", 2),)),)},
            "chung": {},
        },
    )
    login_all(d, clock)
    d.agent_pause("expert", "training")
    d.call_arrived("c0", "thu_tuc")
    clock.t += 59
    assert offers_of(d) == []
    clock.t += 1
    assert offers_of(d) == [("c0", "gen")]


def test_given_an_overflow_to_another_queue_then_the_call_moves_keeping_its_arrival() -> None:
    d, clock = make(
        {"gen": {"chung": 3}},
        queues={"thu_tuc": {"overflow": (Overflow(30, queue="chung"),)}, "chung": {}},
    )
    d.call_arrived("t0", "thu_tuc", caller="0905")
    clock.t += 10
    d.call_arrived("g0", "chung")
    d.drain_events()
    clock.t += 20
    d.tick()
    assert [c.uniqueid for c in d.line("chung")] == ["t0", "g0"]
    ev = d.drain_events()
    assert [(e.event, e.queue, e.position) for e in ev if isinstance(e, CallTransition)] == [
        ("overflow", "thu_tuc", 1),
        ("enter", "chung", 1),
    ]
    d.agent_login("gen")
    assert offers_of(d) == [("t0", "gen")]


def test_given_max_wait_then_the_call_times_out() -> None:
    d, clock = make(queues={"thu_tuc": {"max_wait_s": 60}, "chung": {}})
    d.call_arrived("c0", "thu_tuc")
    clock.t += 60
    d.assign()
    ev = [e for e in d.drain_events() if isinstance(e, CallTransition)]
    assert (ev[-1].event, ev[-1].outcome, ev[-1].wait_s) == (
        "timeout",
        CallOutcome.TIMEOUT_QUEUE,
        60,
    )
    assert "c0" not in d.calls


def test_given_a_skills_queue_then_the_expert_gets_the_call() -> None:
    d, clock = make(
        {"junior": {"thu_tuc": 2}, "senior": {"thu_tuc": 5}},
        queues={"thu_tuc": {"strategy": "skills"}},
    )
    d.agent_login("senior")
    clock.t += 100
    d.agent_login("junior")  # junior idle for less time, but senior is the expert anyway
    d.call_arrived("c0", "thu_tuc")
    assert offers_of(d) == [("c0", "senior")]


def test_errors_name_what_is_wrong() -> None:
    d, clock = make()
    login_all(d, clock)
    with pytest.raises(UnknownAgent):
        d.agent_login("nobody")
    with pytest.raises(UnknownCall):
        d.answered("nocall")
    d.call_arrived("c0", "thu_tuc")
    with pytest.raises(AcdError, match="already"):
        d.call_arrived("c0", "thu_tuc")
    with pytest.raises(AcdError, match="answered while waiting"):
        d.answered("c0")
    with pytest.raises(AcdError, match="unknown queue"):
        d.call_arrived("c9", "nowhere")
    with pytest.raises(AcdError, match="no number"):
        d.request_callback("c0")


def test_given_a_half_written_store_then_restore_repairs_agent_and_call_pairs() -> None:
    d, clock = make()
    login_all(d, clock)
    d.call_arrived("c0", "thu_tuc")
    d.call_arrived("c1", "thu_tuc")
    d.call_arrived("c2", "thu_tuc")
    d.agent_pause("a3", "break")
    d.assign()  # c0 -> a1, c1 -> a2
    stale_agents = {a: x.snapshot() for a, x in d.agents.items()}
    d.answered("c0")
    d.ring_no_answer("c1")  # the calls were saved after this, the agents were not
    calls = [type(c).from_dict(c.to_dict()) for c in d.calls.values()]
    assert calls[2].uniqueid == "c2"
    calls[2].queue = "gone"  # and a queue was removed from the configuration meanwhile

    fresh = Dispatcher(d.cfg, clock=clock)
    fresh.restore(calls, stale_agents, {})
    assert fresh.agents["a2"].state is A.AVAILABLE and fresh.agents["a2"].call_id is None
    assert fresh.agents["a2"].misses == 0
    assert fresh.calls["c2"].queue == "chung" and fresh.position("c2") == 1  # nobody lost
    assert fresh.calls["c1"].state is C.WAITING and fresh.position("c1") == 1
    # a1 is stored ringing for c0, which was saved connected: a1 answered it
    assert (fresh.agents["a1"].state, fresh.agents["a1"].call_id) == (A.ON_CALL, "c0")
    assert fresh.call_completed("c0", "caller").outcome is CallOutcome.ANSWERED
    assert fresh.agents["a1"].state is A.AVAILABLE


def test_a_call_still_in_the_ivr_keeps_its_place_but_is_not_offered() -> None:
    d, clock = make({"a1": {"chung": 3}})
    login_all(d, clock)
    assert d.call_arrived("a", "chung", in_ivr=True) is Admission.QUEUED
    clock.t += 1
    assert d.call_arrived("b", "chung") is Admission.QUEUED
    assert offers_of(d) == [("b", "a1")]  # a is still hearing the IVR
    assert d.position("a") == 1
    d.ivr_done("a")
    assert d.calls["a"].in_ivr is False
