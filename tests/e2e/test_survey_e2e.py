"""The satisfaction survey end to end: after the agent hangs up, the caller hears the question
(``[tongdai-survey]``, ``acd.agi.survey``) and the key they press lands on their ticket and in
the report's satisfaction figures; a caller who hangs up during the question leaves no score
and a ticket otherwise complete. Both ways an agent is reached: direct dial (an agent free as
the IVR hands the caller over) and a waiting caller bridged to an agent (Originate + Bridge)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Stack, call, queue_log, ticket_of, tongdai

from lab.sipp_run import AgentPhones, ExpectHangup, HangUp, Key, Wait
from reports.kpi import compute
from tickets.model import Outcome, Ticket
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
TALK_MS = 4000


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=TALK_MS) as phones:
        yield phones


def events_of(stack: Stack, t: Ticket) -> list[str]:
    return [row[4] for row in queue_log(stack) if row[1] == t.uniqueid]


async def satisfaction(tickets: SqlTicketStore, since: datetime) -> tuple[object, object]:
    """(scores given, mean score) of the manager report for the calls since ``since``."""
    report = await compute(tickets.engine, since, datetime.now(UTC) + timedelta(minutes=1))
    return report.figure("satisfaction_count"), report.figure("satisfaction_mean")


async def test_a_score_keyed_after_the_agent_hangs_up_lands_on_the_ticket_and_report(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    since = datetime.now(UTC)
    # direct dial: agents are free; the caller presses 4 every few seconds until Asterisk
    # hangs up (the keys before the question reach the agent's phone, not the survey)
    (caller,) = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(60_000, pressing="4")])
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.agent in AGENTS) == (Outcome.ANSWERED, True), t
    assert events_of(stack, t)[-1] == "COMPLETEAGENT", events_of(stack, t)
    assert t.satisfaction == 4, t
    assert await satisfaction(tickets, since) == (1, 4.0)


async def test_a_waiting_caller_bridged_to_an_agent_is_asked_too(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    since = datetime.now(UTC)
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    try:
        # waits in the ACD's loop until an agent comes back: the agent is rung (Originate)
        # and Bridge()s the caller; when the agent hangs up, Bridge's F() sends the caller on
        waiting = asyncio.create_task(
            call(stack, [Wait(GAP), Key("0"), ExpectHangup(90_000, pressing="2")])
        )
        async with asyncio.timeout(30):  # in line, no agent reserved for them
            while not [t for t in await tickets.list(since=since) if t.queued_at]:
                await asyncio.sleep(0.2)
        tongdai(stack, "agent", "unpause", AGENTS[2])
        (caller,) = await waiting
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.agent) == (Outcome.ANSWERED, AGENTS[2]), t
    assert events_of(stack, t)[-1] == "COMPLETEAGENT", events_of(stack, t)
    assert t.satisfaction == 2, t


async def test_a_caller_who_hangs_up_during_the_question_leaves_no_score(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    since = datetime.now(UTC)
    # answered about 7.5 s after the call starts, the agent hangs up 4 s later; the question
    # lasts 8.7 s: the caller hangs up in its middle (a BYE from Asterisk before that, e.g.
    # because the caller was hung up with the agent, fails the call)
    (caller,) = await call(stack, [Wait(GAP), Key("0"), Wait(14_000), HangUp()])
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.agent in AGENTS) == (Outcome.ANSWERED, True), t
    assert events_of(stack, t)[-1] == "COMPLETEAGENT", events_of(stack, t)
    assert t.satisfaction is None
    assert t.answered_at and t.ended_at and t.queued_at and t.category == "chung", t
    assert (await satisfaction(tickets, since))[0] == 0
