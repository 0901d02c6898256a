"""The engine killed with SIGKILL under load, on the real Asterisk (issue 12, ``bench faults``
row ``engine_kill``), and restarted as its supervisor would.

Six callers take the operator journey (key 0, the general queue) while two agents answer and
talk for 3 s, so at the kill some callers are in the menu, some wait in the music loop and some
talk to an agent; two more call while the engine is down. Every caller must reach an agent
(their SIPp run succeeds), every call ends with exactly one ticket with an outcome, and the
callers who called while the engine was down are answered after the restart. Before issue 12's
fix, the callers whose FastAGI session died were hung up by the dialplan (``AGISTATUS`` says
SUCCESS for a session that just ends) with their tickets left open."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    Stack,
    call,
    engine_log,
    engine_log_count,
    events_count,
    tongdai,
    until,
)

from lab import engine
from lab.sipp_run import AgentPhones, ExpectHangup, Key, Wait
from tickets.model import Outcome, Ticket
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e

PREFIX = f"tongdai:e2e:{secrets.token_hex(4)}"
# the e2e agents and queues, with room for all eight callers: past acd_e2e.toml's 5, a caller
# would go to app_queue's general queue (whose static members include the resting agents)
ACD_TOML = Path(tempfile.gettempdir()) / f"tongdai-acd-kill-{secrets.token_hex(4)}.toml"
ACD_TOML.write_text(
    (PROJECT_HOME / "tests/e2e/acd_e2e.toml")
    .read_text(encoding="utf-8")
    .replace("max_calls = 5\n", "max_calls = 20\n"),
    encoding="utf-8",
)
STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{ACD_TOML}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 5
state_store = "redis://127.0.0.1:6379/0"
state_prefix = "{PREFIX}"
"""
SERVING = ["agent101", "agent102"]
RESTING = ["agent103", "agent104", "agent105"]
OPERATOR = [Wait(1500), Key("0"), ExpectHangup(150_000)]


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=3000) as phones:
        yield phones


@pytest.fixture(scope="module", autouse=True)
def clean_redis() -> Iterator[None]:
    yield
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    keys = list(client.scan_iter(match="{" + PREFIX + "}*"))
    if keys:
        client.delete(*keys)
    client.close()
    ACD_TOML.unlink(missing_ok=True)


async def tickets_of(store: SqlTicketStore, callers: set[str], timeout_s: float) -> list[Ticket]:
    """Every ticket of ``callers``, once each caller has one that ended."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = [t for t in await store.list() if t.caller in callers]
            if {t.caller for t in found if t.ended_at is not None} >= callers:
                return found
            await asyncio.sleep(0.5)


def kill_engine(stack: Stack) -> None:
    pid = engine.running_pid(stack.settings)
    assert pid is not None, engine_log(stack)
    os.kill(pid, signal.SIGKILL)


async def test_given_calls_in_every_stage_when_the_engine_is_killed_then_none_is_lost(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in RESTING:
        tongdai(stack, "agent", "pause", a)
    connects = events_count(stack, "CONNECT")
    before = asyncio.create_task(call(stack, OPERATOR, calls=6, rate=2))
    # both agents talking, at least one caller more in the system: kill now
    await until(lambda: events_count(stack, "CONNECT") >= connects + 2, "two answered", 40)
    pid = engine.running_pid(stack.settings)
    kill_engine(stack)
    await until(lambda: not Path(f"/proc/{pid}").exists(), "the engine gone", 10)
    restarts = engine_log_count(stack, "ACD state restored")
    during = asyncio.create_task(call(stack, OPERATOR, calls=2, rate=2))
    await asyncio.to_thread(engine.start_engine, stack.settings, str(stack.config))
    await until(lambda: engine_log_count(stack, "ACD state restored") > restarts, "restored", 60)
    early, late = await before, await during  # every SIPp caller reached an agent
    found = await tickets_of(tickets, set(early) | set(late), 90)
    for a in RESTING:
        tongdai(stack, "agent", "unpause", a)
    by_caller: dict[str, list[Ticket]] = {}
    for t in found:
        by_caller.setdefault(t.caller or "", []).append(t)
    log = engine_log(stack)
    assert sorted(by_caller) == sorted(early + late), log
    assert all(len(ts) == 1 for ts in by_caller.values()), by_caller
    outcomes = {c: (ts[0].outcome, ts[0].agent) for c, ts in by_caller.items()}
    wrong = {c: f"{o} {a}" for c, (o, a) in outcomes.items() if o is not Outcome.ANSWERED}
    assert not wrong, f"{wrong}\n{log}"
    assert all(a in SERVING for _, a in outcomes.values()), f"{outcomes}\n{log}"
    # those who called while no engine listened were served by the restarted one
    for c in late:
        path = [step.node for step in by_caller[c][0].ivr_path]
        assert path == ["rejoin"], path
    assert engine_log_count(stack, "rejoin:") >= len(late), log
