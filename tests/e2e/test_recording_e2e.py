"""Agents' calls recorded on the real Asterisk (MixMonitor in ``[tongdai-record]``): a SIPp
caller answered by a SIPp agent leaves a non-empty WAV named by, and linked to, its ticket - on
our ACD's direct dial and on its Originate + Bridge path - and a queue with recording off
leaves none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import Stack, call, call_recording_seconds, in_wait_loop, ticket_of, tongdai, until

from lab.sipp_run import AgentPhones, HangUp, Key, Speak, Wait
from tickets.model import Outcome, Ticket
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME, home_path

pytestmark = pytest.mark.e2e

STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_record_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 5
"""
GAP = 1500
AGENTS = ("agent101", "agent102")


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    # the agents talk longer than the callers: the caller speaks, then hangs up
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=40_000) as phones:
        yield phones


async def _recorded(stack: Stack, tickets: SqlTicketStore, caller: str) -> Ticket:
    """The caller's ticket, answered in the general queue, its recording linked (the link
    arrives on AMI when the agent answers) and holding the talk (complete at the hang-up)."""
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.queue) == (Outcome.ANSWERED, "chung"), t
    assert t.recording == str(home_path(stack.settings.ivr.calls_dir) / f"{t.code}.wav"), t
    await until(lambda: (call_recording_seconds(stack, t) or 0) >= 3, "the talk recorded", 20)
    return t


async def test_a_direct_dial_to_an_agent_is_recorded_and_linked_to_its_ticket(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    # key 0: the general queue (record = true); an agent is free, so the caller's channel
    # dials them ([tongdai-acd-dial]); the caller speaks for about 7 s once connected
    (caller,) = await call(stack, [Wait(GAP), Key("0"), Wait(9000), Speak(), HangUp()])
    t = await _recorded(stack, tickets, caller)
    assert t.agent in AGENTS


async def test_a_caller_who_waited_is_recorded_on_the_originate_and_bridge_path(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    try:
        # the caller speaks only after 30 s: each `tongdai agent` command below starts a
        # Python process, several seconds on this loaded machine, and the talk must fall
        # after the agent answered
        waiting = asyncio.create_task(
            call(stack, [Wait(GAP), Key("0"), Wait(30_000), Speak(), HangUp()])
        )
        # in the music loop with nobody free: the agent is rung by AMI Originate when free
        await until(lambda: in_wait_loop(stack) >= 1, "the caller waits in the ACD loop", 20)
        tongdai(stack, "agent", "unpause", "agent101")
        (caller,) = await waiting
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    t = await _recorded(stack, tickets, caller)
    assert t.agent == "agent101"


async def test_a_queue_with_recording_off_leaves_no_recording(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    # key 4: investment (record = false)
    (caller,) = await call(stack, [Wait(GAP), Key("4"), Wait(6000), HangUp()])
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.queue, t.recording) == (Outcome.ANSWERED, "dau_tu", None), t
    assert call_recording_seconds(stack, t) is None
