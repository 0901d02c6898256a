"""The ACD's live state in Redis (``acd.state_store``) on the real Asterisk: the engine is
stopped and started while one caller waits in the music loop and another waits for a callback
(hung up, place kept: a call Asterisk alone no longer knows). After the restart the waiting
caller is answered and the citizen is called back; nobody is lost, the order is kept, and
paused agents are still paused."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from conftest import (
    Stack,
    call,
    clear_redis,
    engine_log,
    engine_log_count,
    events_count,
    in_wait_loop,
    queue_log,
    ticket_of,
    tongdai,
    until,
)

from lab import engine
from lab.sipp_run import (
    AgentPhones,
    ExpectHangup,
    Key,
    Wait,
)
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e

PREFIX = f"tongdai:e2e:{secrets.token_hex(4)}"
STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 5
state_store = "redis://127.0.0.1:6379/0"
state_prefix = "{PREFIX}"
"""
GAP = 1500
AGENTS = ["agent101", "agent102", "agent103", "agent104", "agent105"]


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=3000) as phones:
        yield phones


@pytest.fixture(scope="module", autouse=True)
def clean_redis() -> Iterator[None]:
    yield
    clear_redis(PREFIX)


async def test_after_a_restart_the_waiting_caller_and_the_pending_callback_are_both_served(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    enters = events_count(stack, "ENTERQUEUE")
    with AgentPhones(port=stack.citizens_port, answer_after_ms=300, talk_ms=60_000) as citizen:
        # first in line: asks for a callback and hangs up; second: stays in the music
        cb = asyncio.create_task(
            call(stack, [Wait(GAP), Key("0"), Wait(12_000), Key("1"), ExpectHangup(30_000)])
        )
        await until(lambda: events_count(stack, "ENTERQUEUE") > enters, "the first in line", 15)
        waiter = asyncio.create_task(call(stack, [Wait(GAP), Key("0"), ExpectHangup(120_000)]))
        (cb_caller,) = await cb  # the callback is registered, the citizen has hung up
        await until(lambda: in_wait_loop(stack) == 1, "the second in the music loop", 15)
        restored = engine_log_count(stack, "ACD state restored")
        engine.stop_engine(stack.settings)
        engine.start_engine(stack.settings, str(stack.config))
        # the new engine is on AMI (it hears `tongdai agent`) once its state is back from Redis
        await until(
            lambda: engine_log_count(stack, "ACD state restored") > restored, "restored", 30
        )
        tongdai(stack, "agent", "unpause", "agent101")
        await citizen.wait_answered(1, timeout_s=60)  # first in line: called back first
        # paused before the restart, paused after it: the state came back from Redis
        # (the lab logs in agents it finds logged out: none were, so no second AGENTLOGIN)
        logins = (stack.config.parent / "queue_log").read_text(encoding="utf-8")
        assert logins.count("|AGENTLOGIN|") == len(AGENTS), engine_log(stack)
        (w_caller,) = await waiter
        t_cb = await ticket_of(tickets, cb_caller, timeout_s=60)
        t_w = await ticket_of(tickets, w_caller, timeout_s=60)
    for a in AGENTS:
        tongdai(stack, "agent", "unpause", a)
    assert (t_cb.outcome, t_cb.agent) == (Outcome.ANSWERED, "agent101"), t_cb
    assert (t_w.outcome, t_w.agent) == (Outcome.ANSWERED, "agent101"), t_w
    rows = queue_log(stack)
    connects = [r[1] for r in rows if r[4] == "CONNECT"]
    assert connects.index(t_cb.uniqueid) < connects.index(t_w.uniqueid)
    # restored, not re-entered: one ENTERQUEUE per call across the restart
    for t in (t_cb, t_w):
        assert [r[4] for r in rows if r[1] == t.uniqueid].count("ENTERQUEUE") == 1
