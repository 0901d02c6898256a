"""Engine failover on the real Asterisk (``acd.failover``, docs/failover.md): two engines on
loopback, one Asterisk, one Redis. Callers wait in the ACD's music loop held by the leader
(engine A); A is killed with SIGKILL; engine B, the standby, takes the lease, rebuilds the
distribution from Redis and Asterisk, and serves every waiting caller: none lost, in the order
they arrived, each offered once, no agent rung twice. The takeover time is printed. Then A
comes back (as the supervisor would restart it): a standby now, but still first in the
dialplan, so the next caller's IVR runs on A, which hands them to the leader B through Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import (
    Stack,
    call,
    clear_redis,
    events_count,
    in_wait_loop,
    queue_log,
    ticket_of,
    until,
)

from lab import engine
from lab.instance import worker_instance
from lab.sipp_run import AgentPhones, ExpectHangup, Key, Wait
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME, Settings, instance_defaults, load_settings

pytestmark = pytest.mark.e2e

N = worker_instance(os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("TONGDAI_LAB_INSTANCE"))
_DEFAULTS = instance_defaults(N)
AGI_A = int(_DEFAULTS.get("fastagi", {}).get("port", 4573))
WEB_A = int(_DEFAULTS.get("web", {}).get("port", 8022))
AGI_B, WEB_B = AGI_A + 50, WEB_A + 50  # the second engine's own ports, inside this instance's
PREFIX = f"tongdai:e2e:{secrets.token_hex(4)}"
STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 3
state_store = "redis://127.0.0.1:6379/0"
state_prefix = "{PREFIX}"
failover = true
[fastagi]
port = {AGI_A}
backup = "127.0.0.1:{AGI_B}"
[web]
port = {WEB_A}
"""
GAP = 1500
CALLERS = 4  # acd_e2e.toml admits 5 at once
AGENTS = ["agent101", "agent102", "agent103", "agent104", "agent105"]


def second_engine(stack: Stack) -> tuple[Settings, Path]:
    """Engine B: the same deployment with its own FastAGI and web ports, state and logs."""
    tmp = stack.config.parent
    text = stack.config.read_text(encoding="utf-8")
    for a, b in [
        (f"port = {AGI_A}\n", f"port = {AGI_B}\n"),
        (f'backup = "127.0.0.1:{AGI_B}"', f'backup = "127.0.0.1:{AGI_A}"'),
        (f"port = {WEB_A}\n", f"port = {WEB_B}\n"),
        (f'state_dir = "{tmp}/state"', f'state_dir = "{tmp}/state-b"'),
        (f'var_dir = "{tmp}/var"', f'var_dir = "{tmp}/var-b"'),
    ]:
        assert a in text, a
        text = text.replace(a, b)
    path = tmp / "tongdai-b.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path), path


def log_of(settings: Settings) -> str:
    path = engine.log_file(settings)
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def agent_op(config: Path, op: str, agent: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", str(config), "agent", op, agent],
        check=True,
        capture_output=True,
        cwd=PROJECT_HOME,
        timeout=120,  # the process start alone is slow on the loaded machine
    )


@pytest.fixture(scope="module")
def engine_b(stack: Stack) -> Iterator[tuple[Settings, Path]]:
    settings, path = second_engine(stack)
    engine.start_engine(settings, str(path))
    try:
        yield settings, path
    finally:
        engine.stop_engine(settings)


@pytest.fixture(scope="module", autouse=True)
def clean_redis() -> Iterator[None]:
    yield
    clear_redis(PREFIX)


def stored_calls() -> int:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        return int(client.hlen("{" + PREFIX + "}:calls"))
    finally:
        client.close()


async def test_given_callers_waiting_when_the_leader_is_killed_then_the_standby_serves_all_in_order(
    stack: Stack, engine_b: tuple[Settings, Path], tickets: SqlTicketStore
) -> None:
    b_settings, b_config = engine_b
    await until(lambda: "is now the LEADER" in log_of(stack.settings), "engine A leads", 15)
    assert "is now the LEADER" not in log_of(b_settings), "two leaders"
    assert "stands by" in log_of(b_settings)
    pauses = events_count(stack, "PAUSE")
    for a in AGENTS:
        agent_op(stack.config, "pause", a)
    await until(lambda: events_count(stack, "PAUSE") >= pauses + len(AGENTS), "agents paused")

    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=2000) as phones:
        waiters = []
        for i in range(CALLERS):  # one after the other: their order is known
            enters = events_count(stack, "ENTERQUEUE")
            waiters.append(
                asyncio.create_task(call(stack, [Wait(GAP), Key("0"), ExpectHangup(150_000)]))
            )
            await until(
                lambda n=enters: events_count(stack, "ENTERQUEUE") > n, f"caller {i + 1} in line"
            )
        await until(lambda: in_wait_loop(stack) == CALLERS, "every caller in the music loop")
        await until(lambda: stored_calls() == CALLERS, "the waiting calls stored in Redis")

        pid_a = engine.running_pid(stack.settings)
        assert pid_a is not None
        killed = time.monotonic()
        os.kill(pid_a, signal.SIGKILL)
        await until(lambda: "is now the LEADER" in log_of(b_settings), "engine B leads", 10)
        leader_s = time.monotonic() - killed
        await until(lambda: "ACD state restored" in log_of(b_settings), "B restored", 10)
        restored_s = time.monotonic() - killed
        print(
            f"\nfailover: engine B took the lease {leader_s:.2f} s after the SIGKILL of A, "
            f"its distribution was restored at {restored_s:.2f} s"
        )
        assert f"ACD state restored: {CALLERS} calls" in log_of(b_settings)
        assert in_wait_loop(stack) == CALLERS, "a waiting caller was lost at the takeover"

        agent_op(b_config, "unpause", "agent101")  # one agent: strictly one call at a time
        counts = await phones.wait_answered(CALLERS, timeout_s=90)
        callers = [c for w in waiters for c in await w]
        found = [await ticket_of(tickets, c, timeout_s=60) for c in callers]

        # A restarted: it stands by, and hands its IVR's callers to B
        engine.start_engine(stack.settings, str(stack.config))
        await until(lambda: log_of(stack.settings).count("stands by") == 2, "A stands by", 15)
        (late,) = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(90_000)])
        late_ticket = await ticket_of(tickets, late, timeout_s=60)
        assert "handed over on a standby" in log_of(b_settings)
        assert log_of(stack.settings).count("is now the LEADER") == 1, "A led again"
    for a in AGENTS:
        agent_op(b_config, "unpause", a)

    assert [(t.outcome, t.agent) for t in found] == [(Outcome.ANSWERED, "agent101")] * CALLERS
    assert counts.ringing_uris == ["sip:agent101"] * CALLERS, "an agent was rung twice"
    rows = queue_log(stack)
    ours = {t.uniqueid for t in found}
    entered = [r[1] for r in rows if r[4] == "ENTERQUEUE" and r[1] in ours]
    connected = [r[1] for r in rows if r[4] == "CONNECT" and r[1] in ours]
    assert entered == [t.uniqueid for t in found], "arrival order"
    assert connected == entered, "served out of order, or offered twice"
    assert not [r for r in rows if r[4] == "RINGNOANSWER" and r[1] in ours]
    assert (late_ticket.outcome, late_ticket.agent) == (Outcome.ANSWERED, "agent101")
    assert [r[4] for r in queue_log(stack) if r[1] == late_ticket.uniqueid].count("CONNECT") == 1
