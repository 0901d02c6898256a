"""Conversations in the ACD's core (``acd.desk`` through ``acd.dispatch.Dispatcher``), on fakes:
capacity per medium, the same queues/strategies/skills as calls, hand-back on pause and logout
(or to a named colleague), escalation without an agent reply, transfer, finish."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from test_acd_dispatch import FakeClock, make_cfg

from acd.agent import AcdError, AgentState, UnknownAgent
from acd.config import Capacity
from acd.conversations import ConversationState, ConversationTransition
from acd.dispatch import Dispatcher
from tickets.model import Channel

W, ASSIGNED = ConversationState.WAITING, ConversationState.ASSIGNED
ZALO, CHAT = Channel.ZALO, Channel.WEBCHAT


def make(
    agents: dict[str, dict[str, int]] | None = None,
    *,
    capacity: Capacity | None = None,
    per_agent: dict[str, Capacity] | None = None,
    **kw: Any,
) -> tuple[Dispatcher, FakeClock]:
    cfg = make_cfg(agents or {"a1": {"chung": 1}, "a2": {"chung": 1}}, **kw)
    if capacity is not None:
        cfg = replace(cfg, capacity=capacity)
    if per_agent:
        ags = {a: replace(c, capacity=per_agent.get(a)) for a, c in cfg.agents.items()}
        cfg = replace(cfg, agents=ags)
    clock = FakeClock()
    return Dispatcher(cfg, clock=clock), clock


def login(d: Dispatcher, clock: FakeClock, *agents: str) -> None:
    for a in agents:
        d.agent_login(a)
        clock.t += 1


def given(d: Dispatcher) -> list[tuple[str, str]]:
    return [(o.code, o.agent) for o in d.assign_round().conversations]


def conv_events(d: Dispatcher) -> list[ConversationTransition]:
    return [e for e in d.drain_events() if isinstance(e, ConversationTransition)]


def holder(d: Dispatcher, code: str) -> str | None:
    return d.conversations.items[code].agent


def test_given_capacity_three_then_an_agent_holds_three_and_the_fourth_waits() -> None:
    d, clock = make({"a1": {"chung": 1}}, capacity=Capacity(conversations=3))
    login(d, clock, "a1")
    for i in range(4):
        assert d.conversations.enqueue(f"T{i}", "chung", ZALO)
    assert given(d) == [("T0", "a1"), ("T1", "a1"), ("T2", "a1")]
    assert d.conversations.position("T3") == 1 and given(d) == []
    d.conversations.finish("T1")  # resolved: the capacity frees up
    assert given(d) == [("T3", "a1")]
    assert d.conversations.open_of("a1") == ["T0", "T2", "T3"]


def test_conversations_spread_over_the_agents_with_the_fewest_open_first() -> None:
    d, clock = make()
    login(d, clock, "a1", "a2")
    for i in range(4):
        d.conversations.enqueue(f"T{i}", "chung", CHAT)
    got = given(d)
    assert sorted(a for _, a in got) == ["a1", "a1", "a2", "a2"]
    assert got[0] == ("T0", "a1")  # longest idle first, like calls


def test_conversations_wait_for_an_agent_with_the_queues_skills() -> None:
    d, clock = make(
        {"a1": {"chung": 1}, "a2": {"phan_anh": 3}},
        queues={"chung": {}, "phan_anh": {"skills": {"phan_anh": 2}}},
    )
    login(d, clock, "a1", "a2")
    d.conversations.enqueue("T1", "phan_anh", ZALO)
    d.conversations.enqueue("T2", "khong_co", ZALO)  # unknown queue: the general one
    assert sorted(given(d)) == [("T1", "a2"), ("T2", "a1")]
    assert d.conversations.items["T2"].queue == "chung"


def test_given_nobody_logged_in_who_could_serve_then_enqueue_refuses() -> None:
    d, clock = make({"a1": {"chung": 1}, "a2": {"phan_anh": 3}},
                    queues={"chung": {}, "phan_anh": {"skills": {"phan_anh": 2}}})  # fmt: skip
    assert d.conversations.enqueue("T1", "chung", ZALO) is False
    login(d, clock, "a2")
    assert d.conversations.enqueue("T1", "chung", ZALO) is False  # a2 lacks the skill
    d.agent_login("a1")
    d.agent_pause("a1", "meal")  # paused still counts as serving: it will come back
    assert d.conversations.enqueue("T1", "chung", ZALO) is True
    assert d.conversations.enqueue("T1", "chung", ZALO) is True  # idempotent
    assert len(d.conversations.items) == 1


def test_without_voice_with_conversations_an_agent_holding_one_gets_no_call() -> None:
    d, clock = make(
        {"a1": {"chung": 1}, "a2": {"chung": 1}},
        per_agent={"a1": Capacity(conversations=2, voice_with_conversations=False)},
    )
    login(d, clock, "a1", "a2")
    d.conversations.enqueue("T1", "chung", ZALO)
    assert given(d) == [("T1", "a1")]
    d.call_arrived("c1", "chung")
    assert [o.agent.id for o in d.assign_round().voice] == ["a2"]  # a1 longest idle, skipped
    d.conversations.finish("T1")
    d.call_arrived("c2", "chung")
    assert [o.agent.id for o in d.assign_round().voice] == ["a1"]


def test_without_conversations_during_call_an_agent_on_a_call_gets_none() -> None:
    no_chat_on_call = Capacity(conversations=3, conversations_during_call=False)
    d, clock = make({"a1": {"chung": 1}}, capacity=no_chat_on_call)
    login(d, clock, "a1")
    d.call_arrived("c1", "chung")
    [offer] = d.assign_round().voice
    d.answered("c1")
    d.conversations.enqueue("T1", "chung", CHAT)
    assert given(d) == []
    d.call_completed("c1", "caller")
    clock.t += 60  # wrap-up over
    assert given(d) == [("T1", "a1")]
    assert offer.agent.id == "a1"


def test_by_default_a_call_and_conversations_go_together_and_voice_stays_one_call() -> None:
    d, clock = make({"a1": {"chung": 1}})
    login(d, clock, "a1")
    d.conversations.enqueue("T1", "chung", CHAT)
    d.call_arrived("c1", "chung")
    d.call_arrived("c2", "chung")
    r = d.assign_round()
    assert [o.call.uniqueid for o in r.voice] == ["c1"]  # one call at a time
    assert [o.code for o in r.conversations] == ["T1"]
    assert d.agent("a1").state is AgentState.RINGING  # a conversation changes no voice state


def test_given_a_pause_then_the_conversations_go_back_to_the_front_of_their_line() -> None:
    d, clock = make({"a1": {"chung": 1}, "a2": {"chung": 1}},
                    per_agent={"a2": Capacity(conversations=1)})  # fmt: skip
    login(d, clock, "a1")
    d.conversations.enqueue("T1", "chung", ZALO)
    d.conversations.enqueue("T2", "chung", ZALO)
    given(d)
    clock.t += 5
    d.conversations.enqueue("T3", "chung", ZALO)  # arrived later, but a1 is full
    d.conversations.enqueue("T4", "chung", ZALO)
    d.conversations.enqueue("T5", "chung", ZALO)
    d.conversations.enqueue("T6", "chung", ZALO)
    assert given(d) == [("T3", "a1")]
    conv_events(d)
    d.agent_pause("a1", "meal")
    back = conv_events(d)
    assert [(e.code, e.event, e.detail, e.prev_agent) for e in back] == [
        ("T1", "hand_back", "pause", "a1"),
        ("T2", "hand_back", "pause", "a1"),
        ("T3", "hand_back", "pause", "a1"),
    ]
    assert [c.code for c in d.conversations.line("chung")] == ["T1", "T2", "T3", "T4", "T5", "T6"]
    assert d.conversations.open_of("a1") == []
    login(d, clock, "a2")
    assert given(d) == [("T1", "a2")]  # the oldest first


def test_given_a_logout_handing_to_a_colleague_then_they_get_them_up_to_their_capacity() -> None:
    d, clock = make({"a1": {"chung": 1}, "a2": {"chung": 1}},
                    per_agent={"a2": Capacity(conversations=2)})  # fmt: skip
    login(d, clock, "a1")
    for i in range(3):
        d.conversations.enqueue(f"T{i}", "chung", CHAT)
    given(d)
    with pytest.raises(UnknownAgent):
        d.agent_logout("a1", hand_to="a9")
    with pytest.raises(AcdError, match="logged_out"):
        d.agent_logout("a1", hand_to="a2")  # a2 is not working
    assert d.agent("a1").state is AgentState.AVAILABLE  # refused: nothing changed
    login(d, clock, "a2")
    conv_events(d)
    d.agent_logout("a1", hand_to="a2")
    assert [(e.code, e.event, e.agent) for e in conv_events(d)] == [
        ("T0", "hand_over", "a2"),
        ("T1", "hand_over", "a2"),
        ("T2", "hand_back", None),
    ]
    assert d.conversations.open_of("a2") == ["T0", "T1"]
    assert d.conversations.position("T2") == 1


def test_a_pause_after_the_call_in_progress_hands_the_conversations_back_at_once() -> None:
    d, clock = make({"a1": {"chung": 1}})
    login(d, clock, "a1")
    d.conversations.enqueue("T1", "chung", CHAT)
    d.call_arrived("c1", "chung")
    d.assign_round()
    d.answered("c1")
    d.agent_pause("a1", "meal")
    assert d.agent("a1").state is AgentState.ON_CALL  # the pause waits for the call
    assert holder(d, "T1") is None and d.conversations.position("T1") == 1
    assert given(d) == []  # nor does a1 get it back before the pause


def test_given_no_agent_reply_in_time_then_escalated_and_given_to_another_agent() -> None:
    d, clock = make({"a1": {"chung": 1}, "a2": {"chung": 1}},
                    queues={"chung": {"escalate_after_s": 120}})  # fmt: skip
    login(d, clock, "a1")
    d.conversations.enqueue("T1", "chung", ZALO)
    d.conversations.citizen_wrote("T1")
    assert given(d) == [("T1", "a1")]
    clock.t += 119
    assert given(d) == [] and not d.conversations.items["T1"].escalated
    clock.t += 1
    assert given(d) == []  # escalated, but nobody else can take it: a1 keeps it
    c = d.conversations.items["T1"]
    assert c.escalated and c.agent == "a1"
    login(d, clock, "a2")
    conv_events(d)
    assert given(d) == [("T1", "a2")]
    [e] = conv_events(d)
    assert (e.event, e.prev_agent, e.agent) == ("reassign", "a1", "a2")
    d.conversations.agent_replied("T1", "a2")
    assert not d.conversations.items["T1"].escalated
    clock.t += 1000  # answered: nothing to escalate until the citizen writes again
    assert given(d) == [] and holder(d, "T1") == "a2"


def test_an_agent_reply_in_time_stops_the_escalation_clock() -> None:
    d, clock = make(queues={"chung": {"escalate_after_s": 60}})
    login(d, clock, "a1", "a2")
    d.conversations.enqueue("T1", "chung", CHAT)
    d.conversations.citizen_wrote("T1")
    given(d)
    clock.t += 59
    d.conversations.agent_replied("T1", "a1")
    clock.t += 59
    d.conversations.citizen_wrote("T1")  # the clock starts again from here
    clock.t += 59
    assert given(d) == [] and holder(d, "T1") == "a1"
    clock.t += 1
    assert given(d) == [("T1", "a2")]


def test_transfer_to_a_queue_or_a_colleague() -> None:
    d, clock = make(
        {"a1": {"chung": 1}, "a2": {"phan_anh": 3}, "a3": {"chung": 1}},
        queues={"chung": {}, "phan_anh": {"skills": {"phan_anh": 1}}},
    )
    login(d, clock, "a1", "a2")
    d.conversations.enqueue("T1", "chung", ZALO)
    assert given(d) == [("T1", "a1")]
    d.conversations.transfer("T1", queue="phan_anh")
    assert holder(d, "T1") is None and d.conversations.items["T1"].queue == "phan_anh"
    assert given(d) == [("T1", "a2")]
    with pytest.raises(AcdError, match="cannot take"):
        d.conversations.transfer("T1", agent="a3")  # logged out
    with pytest.raises(AcdError, match="exactly one"):
        d.conversations.transfer("T1", queue="chung", agent="a1")
    with pytest.raises(AcdError, match="unknown queue"):
        d.conversations.transfer("T1", queue="khong_co")
    d.conversations.transfer("T1", agent="a1")
    assert holder(d, "T1") == "a1" and d.conversations.open_of("a2") == []


def test_the_desk_never_exceeds_any_capacity_under_a_random_day() -> None:
    import random

    rnd = random.Random(1022)
    agents = {f"a{i}": {"chung": 1} for i in range(5)}
    d, clock = make(agents, capacity=Capacity(conversations=2))
    login(d, clock, *agents)
    n = 0
    for _ in range(2000):
        clock.t += rnd.random() * 5
        r = rnd.random()
        if r < 0.35:
            d.conversations.enqueue(f"T{n}", "chung", CHAT)
            n += 1
        elif r < 0.55 and d.conversations.items:
            d.conversations.finish(rnd.choice(list(d.conversations.items)))
        elif r < 0.65:
            a = d.agent(rnd.choice(list(agents)))
            if a.state is AgentState.PAUSED:
                d.agent_unpause(a.id)
            elif a.state is AgentState.AVAILABLE:
                d.agent_pause(a.id, "meal")
        d.assign_round()
        d.drain_events()
        held = {a: d.conversations.open_of(a) for a in agents}
        assert all(len(v) <= 2 for v in held.values())
        owners = [c for v in held.values() for c in v]
        assert len(owners) == len(set(owners))  # at most one agent per conversation
        for code, c in d.conversations.items.items():
            assert (c.state is ASSIGNED) == (c.agent is not None)
            assert (code in owners) == (c.state is ASSIGNED)
            if c.state is ASSIGNED:
                assert d.agent(c.agent or "").state is not AgentState.PAUSED
        waiting = [c.code for q in d.cfg.queues for c in d.conversations.line(q)]
        assert sorted(waiting) == sorted(
            k for k, c in d.conversations.items.items() if c.state is W
        )


def test_the_recorder_never_writes_a_conversation_to_the_queue_log(tmp_path: Any) -> None:
    from acd.queue_log import QueueLogWriter
    from acd.recorder import Recorder
    from tickets.memory import MemoryTicketStore

    d, clock = make()
    path = tmp_path / "queue_log"
    rec = Recorder(MemoryTicketStore(), QueueLogWriter(path, d.cfg))
    login(d, clock, "a1")
    d.conversations.enqueue("T1", "chung", ZALO)
    given(d)
    d.agent_pause("a1", "meal")
    d.conversations.finish("T1")
    rec.record(d.drain_events())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and all("T1" not in x for x in lines)
    assert [x.split("|")[4] for x in lines] == ["AGENTLOGIN", "ADDMEMBER", "PAUSE"]  # a1 only
