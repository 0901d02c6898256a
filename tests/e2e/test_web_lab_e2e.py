"""The wallboard in a real browser on the real stack: Debian's Chromium (Playwright) logged in
as a supervisor at the engine's web app (its lab instance's web port), a real SIPp call through the
lab's Asterisk into the engine's own ACD. The call appears as waiting within a second of the
ACD's ENTERQUEUE, then moves to the agent within a second of CONNECT. Screenshot in
tests/artifacts/wallboard_lab.png."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Stack, engine_log, ticket_of, tongdai

from lab.sipp_run import AgentPhones, ExpectHangup, Key, Wait, build_caller_scenario, run_callers
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e
playwright = pytest.importorskip("playwright.async_api")

STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 5
"""
CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
AGENTS = ["agent101", "agent102", "agent103", "agent104", "agent105"]
PASSWORD = "mat-khau-giam-sat-e2e"


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=4000) as phones:
        yield phones


def _has(path: Path, what: str) -> bool:
    return path.exists() and what in path.read_text(encoding="utf-8")


async def _line_seen(path: Path, what: str, timeout_s: float) -> float:
    """Poll our queue_log (every 10 ms) until a line with ``what``; the moment it was seen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _has(path, what):
            return time.perf_counter()
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {what} in {path} within {timeout_s} s")


async def test_a_supervisor_sees_a_real_call_wait_then_go_to_an_agent(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    if not HAVE_CHROMIUM:
        pytest.fail("Debian's chromium is missing: run scripts/install.sh")
    tongdai(stack, "users", "add", "giamsat", "--role", "supervisor", "--password-stdin",
            stdin=PASSWORD + "\n")  # fmt: skip
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    qlog = stack.config.parent / "queue_log"
    url = f"http://127.0.0.1:{stack.settings.web.port}"
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"{url}/login")
            await page.fill("input[name=name]", "giamsat")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/wallboard", timeout=10_000)
            await page.wait_for_selector("#live-status[data-state=open]", timeout=10_000)

            call = asyncio.create_task(
                run_callers(
                    build_caller_scenario([Wait(1500), Key("0"), ExpectHangup(90_000)]),
                    target=stack.target, calls=1, rate=1, timeout_s=120,
                )
            )  # fmt: skip
            entered = await _line_seen(qlog, "|ENTERQUEUE|", 30)
            await page.wait_for_selector("#calls tr[data-state=waiting]", timeout=1000)
            waiting_ms = (time.perf_counter() - entered) * 1000
            await page.screenshot(path=str(_artifact("wallboard_lab_waiting.png")))

            tongdai(stack, "agent", "unpause", "agent101")
            connected = await _line_seen(qlog, "|agent101|CONNECT|", 30)
            await page.wait_for_selector(
                "tr[data-agent=agent101][data-state=on_call]", timeout=1000
            )
            on_call_ms = (time.perf_counter() - connected) * 1000
            await page.wait_for_selector("#calls tr[data-state=connected]", timeout=1000)
            await page.screenshot(path=str(_artifact("wallboard_lab.png")), full_page=True)
            result = await call
        finally:
            await browser.close()
            for a in AGENTS:
                tongdai(stack, "agent", "unpause", a)
    assert result.ok, result.describe() + "\n--- engine log ---\n" + engine_log(stack)
    (caller,) = result.callers
    t = await ticket_of(tickets, caller, timeout_s=30)
    assert (t.outcome, t.agent) == (Outcome.ANSWERED, "agent101")
    print(f"\nwallboard (real call): waiting on screen {waiting_ms:.0f} ms after ENTERQUEUE "
          f"was seen, on the agent {on_call_ms:.0f} ms after CONNECT")  # fmt: skip


def _artifact(name: str) -> Path:
    path = PROJECT_HOME / "tests" / "artifacts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def test_a_supervisor_listens_to_a_real_call_on_their_own_phone(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    """``POST /api/v1/agents/agent101/spy`` rings the supervisor's phone (PJSIP/sup201, declared
    in the ACD file, answered by the SIPp UAS) into ChanSpy on the agent's live call."""
    import json
    import urllib.request

    from lab import asterisk
    from pbx.ami import AmiClient

    tongdai(stack, "users", "add", "giamsat2", "--role", "supervisor", "--phone", "PJSIP/sup201",
            "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    token = tongdai(stack, "users", "token", "giamsat2").strip().splitlines()[-1]
    s = stack.settings
    ami = AmiClient(s.ami.host, s.ami.port, s.ami.username, asterisk.ami_secret(s))
    spies = ami.subscribe(["ChanSpyStart"])
    await ami.start()
    try:
        for a in AGENTS[1:]:
            tongdai(stack, "agent", "pause", a)
        qlog = stack.config.parent / "queue_log"
        before = qlog.read_text(encoding="utf-8").count("|agent101|CONNECT|")
        call = asyncio.create_task(
            run_callers(
                build_caller_scenario([Wait(1500), Key("0"), ExpectHangup(90_000)]),
                target=stack.target, calls=1, rate=1, timeout_s=120,
            )
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while qlog.read_text(encoding="utf-8").count("|agent101|CONNECT|") == before:
            assert time.monotonic() < deadline, "the call never reached agent101"
            await asyncio.sleep(0.05)
        req = urllib.request.Request(
            f"http://127.0.0.1:{s.web.port}/api/v1/agents/agent101/spy",
            data=json.dumps({"mode": "listen"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: ASYNC210 (one short call)
            assert resp.status == 202
            assert json.loads(resp.read())["phone"] == "PJSIP/sup201"
        async with asyncio.timeout(10):
            async for ev in spies:
                if ev.name == "ChanSpyStart":
                    break
        assert "agent101" in (ev.get("SpyeeChannel") or ""), ev
        assert "sup201" in (ev.get("SpyerChannel") or ""), ev
        await agents.wait_for(lambda c: "sip:sup201" in " ".join(c.answered_uris), 10)
        result = await call
    finally:
        await ami.close()
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    assert result.ok, result.describe() + "\n--- engine log ---\n" + engine_log(stack)
    (caller,) = result.callers
    t = await ticket_of(tickets, caller, timeout_s=30)
    assert (t.outcome, t.agent) == (Outcome.ANSWERED, "agent101")
