"""The engine's own call distribution (``acd.distribution = "engine"``) on the real Asterisk:
SIPp callers wait in the ACD's music loop, the engine rings agents' phones (a SIPp UAS) with
AMI Originate and bridges on answer. Assertions on tickets, our queue_log and SIP results."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import Stack, call, events_count, in_wait_loop, queue_log, ticket_of, tongdai, until

from lab.sipp_run import (
    AgentPhones,
    ExpectHangup,
    HangUp,
    Key,
    Wait,
)
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e

STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 5
"""
GAP = 1500
AGENTS = ["agent101", "agent102", "agent103", "agent104", "agent105"]


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=4000) as phones:
        yield phones


async def test_longest_idle_gives_each_new_call_to_the_agent_idle_longest(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    # five calls one after another (2 a second) while earlier ones still talk: five agents
    callers = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(60_000)], calls=5, rate=2)
    first = [await ticket_of(tickets, c) for c in callers]
    seen = [(t.caller, t.outcome, t.queue, t.agent, [st.node for st in t.ivr_path]) for t in first]
    assert all(t.outcome == Outcome.ANSWERED and t.queue == "chung" for t in first), seen
    assert sorted(t.agent or "" for t in first) == AGENTS
    # everyone is free again: the next call goes to whoever finished first
    done_first = min(first, key=lambda t: (t.ended_at, t.agent))
    (caller,) = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(60_000)])
    t = await ticket_of(tickets, caller)
    assert t.agent == done_first.agent
    lines = queue_log(stack)
    connects = [row for row in lines if row[4] == "CONNECT" and row[1] == t.uniqueid]
    assert len(connects) == 1 and connects[0][3] == t.agent
    # the agents' phones hang up first (they talk 4 s; the callers wait to be hung up on)
    ids = {f.uniqueid for f in first}
    ends = [row[4] for row in lines if row[1] in ids and row[4].startswith("COMPLETE")]
    assert ends == ["COMPLETEAGENT"] * 5, ends


async def test_skills_route_procedures_to_skilled_agents_only(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(stack, [Wait(GAP), Key("1"), Wait(GAP), Key("1"), ExpectHangup(60_000)])
    t = await ticket_of(tickets, caller)
    assert (t.queue, t.outcome) == ("thu_tuc", Outcome.ANSWERED)
    assert t.agent in ("agent101", "agent102")


async def test_paused_agents_are_not_rung(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS[:4]:
        tongdai(stack, "agent", "pause", a, "--reason", "meal")
    try:
        (caller,) = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(60_000)])
    finally:
        for a in AGENTS[:4]:
            tongdai(stack, "agent", "unpause", a)
    t = await ticket_of(tickets, caller)
    assert t.agent == "agent105"
    pauses = [row for row in queue_log(stack) if row[4] == "PAUSE" and row[3] == "agent101"]
    assert pauses and pauses[-1][5] == "meal"


async def test_a_caller_who_hangs_up_while_waiting_is_abandon_queue(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    try:
        (caller,) = await call(stack, [Wait(GAP), Key("0"), Wait(9000), HangUp()])
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.queue, t.agent) == (Outcome.ABANDONED_QUEUE, "chung", None)
    rows = [row for row in queue_log(stack) if row[1] == t.uniqueid]
    assert [r[4] for r in rows] == ["ENTERQUEUE", "ABANDON"], rows


async def test_past_capacity_callers_hear_busy_and_get_rejected_busy(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    try:
        enters = events_count(stack, "ENTERQUEUE")
        waiting = asyncio.create_task(
            call(stack, [Wait(GAP), Key("0"), Wait(20_000), HangUp()], calls=5, rate=5)
        )
        # the line is full (max_calls = 5) once all five have entered it
        await until(lambda: events_count(stack, "ENTERQUEUE") >= enters + 5, "5 in line", 15)
        (extra,) = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(30_000)])
        held = await waiting
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    t = await ticket_of(tickets, extra)
    assert t.outcome == Outcome.REJECTED_BUSY and t.queued_at is None
    assert [s.node for s in t.ivr_path][-2:] == ["main", "busy"] or "busy" in [
        s.node for s in t.ivr_path
    ]
    for c in held:
        assert (await ticket_of(tickets, c)).outcome == Outcome.ABANDONED_QUEUE


async def test_wrap_up_is_respected_before_the_next_call(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    # du_lich: only agent105, 6 s of wrap-up after each call
    talked = agents.counts.answered_uris.count("sip:agent105")
    first = asyncio.create_task(call(stack, [Wait(GAP), Key("5"), ExpectHangup(60_000)]))
    # the second caller arrives while agent105 talks to the first
    await agents.wait_for(lambda c: c.answered_uris.count("sip:agent105") > talked, 20)
    (second,) = await call(stack, [Wait(GAP), Key("5"), ExpectHangup(60_000)])
    (one,) = await first
    a, b = await ticket_of(tickets, one), await ticket_of(tickets, second)
    assert a.agent == b.agent == "agent105"
    # the conversation's end is COMPLETE* in queue_log (the caller may stay for the survey)
    rows = queue_log(stack)
    done_a = [int(r[0]) for r in rows if r[1] == a.uniqueid and r[4].startswith("COMPLETE")]
    connect_b = [int(r[0]) for r in rows if r[1] == b.uniqueid and r[4] == "CONNECT"]
    assert len(done_a) == 1 and len(connect_b) == 1, rows
    assert connect_b[0] - done_a[0] >= 5  # 6 s of wrap-up, whole seconds in queue_log


async def test_a_callback_keeps_the_place_and_the_engine_calls_the_citizen_back(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    try:
        with AgentPhones(port=stack.citizens_port, answer_after_ms=300, talk_ms=60_000) as citizen:
            # waits, hears the offer, presses 1, hears the confirmation and is hung up on
            (caller,) = await call(
                stack, [Wait(GAP), Key("0"), Wait(12_000), Key("1"), ExpectHangup(30_000)]
            )
            tongdai(stack, "agent", "unpause", "agent101")
            await citizen.wait_answered(1, timeout_s=30)  # the engine called them back
            t = await ticket_of(tickets, caller, timeout_s=90)
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    assert (t.outcome, t.agent, t.queue) == (Outcome.ANSWERED, "agent101", "chung")
    events = [r[4] for r in queue_log(stack) if r[1] == t.uniqueid]
    assert events[0] == "ENTERQUEUE" and "CONNECT" in events, events
    assert events[-1] == "COMPLETEAGENT", events  # the agent talks 4 s, the citizen 60 s


async def test_when_the_engine_restarts_while_calls_wait_none_is_lost_and_order_is_kept(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    from lab import engine

    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    waiting = []
    enters = events_count(stack, "ENTERQUEUE")
    for i in range(1, 4):  # one after another: each enters the line before the next calls
        waiting.append(
            asyncio.create_task(call(stack, [Wait(GAP), Key("0"), ExpectHangup(120_000)]))
        )
        entered = enters + i
        await until(lambda n=entered: events_count(stack, "ENTERQUEUE") >= n, f"caller {i}", 15)
    await until(lambda: in_wait_loop(stack) == 3, "all three in the music loop", 15)
    engine.stop_engine(stack.settings)
    engine.start_engine(stack.settings, str(stack.config))  # agents log in again (lab)
    callers = [c for t in waiting for c in await t]
    for a in AGENTS:
        tongdai(stack, "agent", "unpause", a)
    done = [await ticket_of(tickets, c, timeout_s=60) for c in callers]
    assert all(t.outcome == Outcome.ANSWERED for t in done), done
    # the restarted engine took the callers back from Asterisk in the order they had arrived
    ids = [t.uniqueid for t in done]
    enters = [r[1] for r in queue_log(stack) if r[4] == "ENTERQUEUE" and r[1] in ids]
    assert enters == ids + ids, enters
