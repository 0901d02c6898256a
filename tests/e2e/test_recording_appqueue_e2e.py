"""Agents' calls recorded when app_queue serves the queues (``distribution = "asterisk"``):
``Queue()``'s gosub runs ``[tongdai-record]`` on the member's leg, driven by the same
``record`` switch of the ACD file as our own ACD (see test_recording_e2e.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Stack, call, call_recording_seconds, ticket_of, until

from lab.sipp_run import AgentPhones, HangUp, Key, Speak, Wait
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME, home_path

pytestmark = pytest.mark.e2e

STACK_TOML = f"""
[acd]
distribution = "asterisk"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_record_e2e.toml"}"
"""
GAP = 1500


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=40_000) as phones:
        yield phones


async def test_app_queue_records_a_recording_queue_and_not_the_others(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    calls = home_path(stack.settings.ivr.calls_dir)
    (caller,) = await call(stack, [Wait(GAP), Key("0"), Wait(9000), Speak(), HangUp()])
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.queue) == (Outcome.ANSWERED, "chung"), t
    assert t.recording == str(calls / f"{t.code}.wav"), t
    await until(lambda: (call_recording_seconds(stack, t) or 0) >= 3, "the talk recorded", 20)
    (caller,) = await call(stack, [Wait(GAP), Key("4"), Wait(6000), HangUp()])
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.queue, t.recording) == (Outcome.ANSWERED, "dau_tu", None), t
    assert call_recording_seconds(stack, t) is None
