"""The whole stack for end-to-end tests: the lab's real Asterisk 22, the engine as its own
process (``tongdai serve``) on a fresh PostgreSQL database, and helpers to read tickets.

Side by side: each test process runs its labs on a lab instance of its own (``lab.instance``:
pytest-xdist worker gwK uses instance K + 1, a plain run instance 1, ``$TONGDAI_LAB_INSTANCE``
overrides), with its own ports, Asterisk folders and lab lock, so modules run in parallel
(``pytest -n 2 --dist loadfile``, as ``scripts/test.sh`` does). Tests marked ``alone``
(CPU-heavy: 100 calls at once) run while no other end-to-end test runs in any process
(``cpu_gate``).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_admin import pg_admin

from lab import asterisk, engine, lock
from lab.chroot import ensure_chroot
from lab.instance import LOCK_DIR, LabInstance, worker_instance
from lab.sipp_run import SipTarget, Step, build_caller_scenario, run_callers, sipp_available
from tickets.model import Ticket
from tickets.sql import SqlTicketStore, open_store
from tongdai.settings import PROJECT_HOME, Settings, home_path, load_settings

#: how long a stack waits for its lab instance while another process holds it
LOCK_WAIT_S = 900.0
#: shared by every end-to-end test (any process), exclusive for tests marked ``alone``
CPU_GATE = LOCK_DIR / "tongdai-e2e-cpu.lock"
CPU_TURNSTILE = LOCK_DIR / "tongdai-e2e-cpu-turnstile.lock"


@dataclass
class Stack:
    settings: Settings
    config: Path
    db_url: str
    target: SipTarget
    started: datetime

    @property
    def instance(self) -> LabInstance:
        return LabInstance.of(self.settings)

    @property
    def agents_port(self) -> int:
        """Where the agents' phones (a SIPp UAS) must listen for this lab."""
        return self.instance.agents_port

    @property
    def citizens_port(self) -> int:
        """Where the citizens' phone (callbacks, ``PJSIP/...@citizens``) must listen."""
        return self.instance.citizens_port


@pytest.fixture(scope="session")
def lab_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The settings of this test process's lab instance (its ports and folders)."""
    n = worker_instance(
        os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("TONGDAI_LAB_INSTANCE")
    )
    config = tmp_path_factory.mktemp("instance") / "tongdai.toml"
    config.write_text(f"[lab]\ninstance = {n}\n", encoding="utf-8")
    return load_settings(config)


@pytest.fixture(autouse=True)
def cpu_gate(request: pytest.FixtureRequest) -> Iterator[None]:
    """End-to-end tests share the machine; a test marked ``alone`` runs with no other
    end-to-end test running in any process. The turnstile keeps new tests from starving a
    waiting ``alone`` test."""
    if request.node.get_closest_marker("e2e") is None:
        yield
        return
    alone = request.node.get_closest_marker("alone") is not None
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    turnstile = os.open(CPU_TURNSTILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    gate = os.open(CPU_GATE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(turnstile, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield
    finally:
        os.close(gate)
        os.close(turnstile)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    lab_settings: Settings,
) -> Iterator[Stack]:
    """The stack for one test module, on this process's lab instance (its lab lock held for
    the module); a module's ``STACK_TOML`` adds settings (e.g. [acd]; not [database], [lab] or
    [ami], which the stack writes)."""
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (chroot, bind mount)")
    if (why := sipp_available()) is not None:
        pytest.fail(f"{why}: run scripts/install.sh")
    tmp = tmp_path_factory.mktemp("stack")
    name = f"tongdai_e2e_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    config = tmp / "tongdai.toml"
    extra = getattr(request.module, "STACK_TOML", "").replace("{tmp}", str(tmp))
    config.write_text(
        f'[database]\nurl = "{url}"\nstate_dir = "{tmp}/state"\n'
        f'[lab]\nvar_dir = "{tmp}/var"\ninstance = {lab_settings.lab.instance}\n'
        f'[ami]\nsecret_file = "{tmp}/var/ami.secret"\n' + extra,
        encoding="utf-8",
    )
    settings = load_settings(config)
    command = f"pytest {request.module.__name__} (e2e stack, pid {os.getpid()})"
    with lock.hold(settings, command=command, timeout_s=LOCK_WAIT_S):
        asterisk.check_ports_free(settings)  # something outside the lab lock has our ports
        ensure_chroot(settings.lab.chroot)
        engine.build_prompts(settings)
        pg_admin(f'CREATE DATABASE "{name}"')
        try:
            engine.seed_dossiers(settings)
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


def events_count(stack: Stack, event: str) -> int:
    """How many ``event`` lines (ENTERQUEUE, CONNECT, ...) our queue_log has so far."""
    path = stack.config.parent / "queue_log"
    if not path.exists():
        return 0
    return sum(1 for row in queue_log(stack) if len(row) > 4 and row[4] == event)


def in_wait_loop(stack: Stack) -> int:
    """How many callers wait in the ACD's music loop, per Asterisk: channels in
    ``[tongdai-acd-wait]`` and in no bridge (a caller an agent took is bridged)."""
    out = asterisk.rx(stack.settings, "core show channels concise")
    # Channel!Context!Exten!Priority!State!Application!Data!CallerID!Account!PeerAccount!
    # AMAFlags!Duration!BridgeID!Uniqueid
    rows = [line.split("!") for line in out.splitlines()]
    return sum(1 for r in rows if len(r) > 12 and r[1] == "tongdai-acd-wait" and not r[12])


def engine_log_count(stack: Stack, text: str) -> int:
    """How many times the engine's log says ``text`` (all its runs in this stack)."""
    path = Path(engine.log_file(stack.settings))
    return path.read_text(encoding="utf-8", errors="replace").count(text) if path.exists() else 0


def clear_redis(prefix: str) -> None:
    """Delete a test's ACD keys (``acd.state_prefix = prefix``) from the shared Redis."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def until(fact: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Poll ``fact`` (every 0.1 s) until it holds; fail the test naming ``what`` after
    ``timeout_s`` seconds."""
    try:
        async with asyncio.timeout(timeout_s):
            while not fact():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: not seen within {timeout_s:g} s") from None


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


def call_recording_seconds(stack: Stack, t: Ticket) -> float | None:
    """Seconds of audio in the ticket's call recording (``<calls dir>/<code>.wav``) written
    since its call started; None if there is none. Ticket codes restart with each test
    database, so an older file of the same name (an earlier run) does not count."""
    wav = home_path(stack.settings.ivr.calls_dir) / f"{t.code}.wav"
    try:
        if wav.stat().st_mtime < t.started_at.timestamp():
            return None
        with wave.open(str(wav), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth()) == (1, 2), wav
            return w.getnframes() / w.getframerate()
    except (FileNotFoundError, EOFError, wave.Error):
        return None
