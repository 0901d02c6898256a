"""The whole stack for end-to-end tests: the lab's real Asterisk 22, the engine as its own
process (``tongdai serve``) on a fresh PostgreSQL database, and helpers to read tickets."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_admin import pg_admin

from lab import asterisk, engine
from lab.chroot import ensure_chroot
from lab.sipp_run import SipTarget, Step, build_caller_scenario, run_callers, sipp_available
from tickets.model import Ticket
from tickets.sql import SqlTicketStore, open_store
from tongdai.settings import PROJECT_HOME, Settings, load_settings


@dataclass
class Stack:
    settings: Settings
    config: Path
    db_url: str
    target: SipTarget
    started: datetime


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack for one test module; a module's ``STACK_TOML`` adds settings (e.g. [acd])."""
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (chroot, bind mount)")
    if (why := sipp_available()) is not None:
        pytest.fail(f"{why}: run scripts/install.sh")
    tmp = tmp_path_factory.mktemp("stack")
    name = f"tongdai_e2e_{secrets.token_hex(4)}"
    pg_admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    config = tmp / "tongdai.toml"
    extra = getattr(request.module, "STACK_TOML", "").replace("{tmp}", str(tmp))
    config.write_text(
        f'[database]\nurl = "{url}"\nstate_dir = "{tmp}/state"\n[lab]\nvar_dir = "{tmp}/var"\n'
        + extra,
        encoding="utf-8",
    )
    settings = load_settings(config)
    asterisk.check_ports_free(settings)  # a running `tongdai lab up` would take our calls
    ensure_chroot(settings.lab.chroot)
    engine.build_prompts(settings)
    engine.seed_dossiers(settings)
    try:
        asterisk.start(settings)
        engine.start_engine(settings, str(config))
        yield Stack(
            settings,
            config,
            url,
            SipTarget("127.0.0.1", settings.lab.sip_port, "1022"),
            datetime.now(UTC),
        )
    finally:
        engine.stop_engine(settings)
        asterisk.stop(settings)
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def tickets(stack: Stack) -> AsyncIterator[SqlTicketStore]:
    store = await open_store(stack.db_url)
    try:
        yield store
    finally:
        await store.close()


async def ticket_of(
    store: SqlTicketStore, caller: str, *, done: bool = True, timeout_s: float = 20
) -> Ticket:
    """The newest ticket of ``caller``; with ``done``, wait until it has ended."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = [t for t in await store.list() if t.caller == caller]
            if found and (not done or found[-1].ended_at is not None):
                return found[-1]
            await asyncio.sleep(0.2)


def engine_log(stack: Stack) -> str:
    path = Path(engine.log_file(stack.settings))
    return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""


def tongdai(stack: Stack, *args: str, stdin: str | None = None) -> str:
    """Run ``tongdai <args>`` on the stack's settings (e.g. ``agent pause agent101``); its
    standard output. A failing command fails the test."""
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", str(stack.config), *args],
        check=True,
        capture_output=True,
        cwd=PROJECT_HOME,
        timeout=30,
        input=stdin,
        text=True,
    )
    return done.stdout


def queue_log(stack: Stack) -> list[list[str]]:
    """The engine's own queue_log (``[acd] queue_log = "{tmp}/queue_log"``), split in fields."""
    path = stack.config.parent / "queue_log"
    return [line.split("|") for line in path.read_text(encoding="utf-8").splitlines()]


async def call(
    stack: Stack,
    steps: list[Step],
    *,
    calls: int = 1,
    rate: float = 10,
    xml: str | None = None,
    timeout_s: float = 180,
) -> list[str]:
    """SIPp callers doing ``steps`` (or the scenario ``xml``) to 1022; their SIPp run must
    succeed. Returns the callers' numbers."""
    result = await run_callers(
        xml or build_caller_scenario(steps),
        target=stack.target,
        calls=calls,
        rate=rate,
        timeout_s=timeout_s,
    )
    assert result.ok, result.describe() + "\n--- engine log ---\n" + engine_log(stack)
    return result.callers
