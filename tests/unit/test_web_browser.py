"""In a real browser (Debian's Chromium, driven by Playwright): a supervisor sees a call wait and
go to an agent within a second, sees an agent's pause, and an agent resolves the ticket of the
call that popped up. The engine's own ACD runs on a fake AMI (no Asterisk needed).

Screenshots go to tests/artifacts/ (and one wallboard to docs/wallboard.png for the README).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.web_rig import SimAcd, WebRig, web_rig
from tickets.model import IvrStep, Outcome
from tongdai.settings import PROJECT_HOME
from web.app import listen, serve

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.async_api")

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = PROJECT_HOME / "tests" / "artifacts"


@dataclass
class Site:
    sim: SimAcd
    rig: WebRig
    url: str
    browser: Any

    async def page_of(self, who: str) -> Any:
        """A new browser context logged in as ``who``, on its home page."""
        context = await self.browser.new_context(
            viewport={"width": 1400, "height": 1000}, locale="vi-VN"
        )
        page = await context.new_page()
        await page.goto(f"{self.url}/login")
        await page.fill("input[name=name]", who)
        await page.fill("input[name=password]", self.rig.accounts[who].password)
        await page.click("button[type=submit]")
        await page.wait_for_load_state("domcontentloaded")
        return page


async def _seed_today(rig: WebRig) -> None:
    """A morning of calls, so the wallboard's figures are not all zero."""
    store = rig.deps.tickets
    now = datetime.now(UTC)
    morning = [
        ("thu_tuc", Outcome.ANSWERED, 8, "agent101"),
        ("thu_tuc", Outcome.ANSWERED, 35, "agent102"),
        ("phan_anh", Outcome.ANSWERED, 12, "agent102"),
        ("thu_tuc", Outcome.ABANDONED_QUEUE, 50, None),
        ("chung", Outcome.ANSWERED, 5, "agent103"),
        ("phan_anh", Outcome.MESSAGE_LEFT, 0, None),
    ]
    for i, (queue, outcome, wait, agent) in enumerate(morning):
        start = now - timedelta(minutes=30 - i)
        t = await store.open(
            channel="voice", caller=f"09051000{i:02d}", uniqueid=None, started_at=start
        )
        changes: dict[str, Any] = {"queue": queue, "outcome": outcome, "queued_at": start}
        if agent:
            answered = start + timedelta(seconds=wait)
            changes |= {
                "agent": agent,
                "answered_at": answered,
                "ended_at": answered + timedelta(minutes=3),
            }
        await store.update(t.code, **changes)


@pytest.fixture
async def site(make_db_url: Callable[[str], str]) -> AsyncIterator[Site]:
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sim = SimAcd()
    await sim.start(login=["agent101", "agent102", "agent103", "agent104"])
    async with web_rig(make_db_url("sqlite"), sim.control, lifespan=False, stats_every=0.5) as rig:
        sim.use_tickets(rig.deps.tickets)
        sim.listen(rig.deps.hub.on_acd_event)
        await _seed_today(rig)
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        try:
            async with playwright.async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=ARGS, headless=True
                )
                try:
                    yield Site(sim, rig, f"http://127.0.0.1:{sock.getsockname()[1]}", browser)
                finally:
                    await browser.close()
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)
            await sim.stop()


async def _live(page: Any) -> None:
    await page.wait_for_selector("#live-status[data-state=open]", timeout=5000)


async def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path), full_page=True)
    return path


async def test_given_a_supervisor_when_a_call_arrives_then_it_waits_then_goes_to_an_agent(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    page = await site.page_of("giamsat")
    assert page.url.endswith("/wallboard")
    await _live(page)
    t = await site.rig.deps.tickets.open(
        channel="voice", caller="0905123456", uniqueid="c1", started_at=datetime.now(UTC)
    )
    began = time.perf_counter()
    site.sim.arrive("c1", "thu_tuc", "0905123456", t.code)
    await page.wait_for_selector(
        '#calls tr[data-state=waiting]:has-text("0905123456")', timeout=1000
    )
    waiting_s = time.perf_counter() - began
    assert await page.inner_text("tr[data-queue=thu_tuc] .waiting") == "1"

    began = time.perf_counter()
    await site.sim.answer("c1")
    row = "tr[data-agent=agent101][data-state=on_call]"
    await page.wait_for_selector(f'{row} .caller:has-text("0905123456")', timeout=1000)
    connected_s = time.perf_counter() - began
    await page.wait_for_selector("#calls tr[data-state=connected]", timeout=1000)
    assert await page.inner_text("tr[data-queue=thu_tuc] .waiting") == "0"

    # a few more calls, for a wallboard that looks like a morning at the hotline
    for i, queue in enumerate(["phan_anh", "thu_tuc", "chung", "thu_tuc", "du_lich"]):
        site.sim.arrive(f"m{i}", queue, f"09351234{i:02d}")
    await site.sim.answer("m0")
    await page.wait_for_selector("tr[data-agent=agent102][data-state=on_call]", timeout=2000)
    await page.wait_for_function(
        "document.querySelector('#t-answered').textContent !== '0'", timeout=3000
    )
    shot = await _screenshot(page, "wallboard.png")
    docs = PROJECT_HOME / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(shot, docs / "wallboard.png")
    with capsys.disabled():
        print(f"\nbrowser: waiting call on screen {waiting_s * 1000:.0f} ms after the event, "
              f"moved to the agent {connected_s * 1000:.0f} ms after the answer")  # fmt: skip
    assert waiting_s < 1.0 and connected_s < 1.0


async def test_given_an_agent_when_it_pauses_then_the_wallboard_shows_it(site: Site) -> None:
    board = await site.page_of("giamsat")
    await _live(board)
    console = await site.page_of("tdv101")
    assert console.url.endswith("/console")
    await console.select_option(".act-pause select[name=reason]", "meal")
    began = time.perf_counter()
    await console.click("#btn-pause")
    await board.wait_for_selector(
        'tr[data-agent=agent101][data-state=paused]:has-text("Nghỉ ăn")', timeout=1000
    )
    assert time.perf_counter() - began < 1.0
    await console.wait_for_selector("text=Đã đổi trạng thái.")
    assert "Nghỉ ăn" in await console.inner_text("#my-state")
    # the page after the form's redirect: its stylesheet may still be loading at this instant
    await console.wait_for_selector("#btn-pause", state="hidden", timeout=2000)
    assert await console.is_visible("#btn-unpause")
    assert await console.get_attribute("#me", "data-state") == "paused"


async def test_given_a_call_popping_up_when_the_agent_resolves_it_then_the_ticket_is_resolved(
    site: Site,
) -> None:
    store = site.rig.deps.tickets
    earlier = await store.open(
        channel="voice",
        caller="0905777888",
        uniqueid=None,
        started_at=datetime.now(UTC) - timedelta(days=3),
    )
    t = await store.open(
        channel="voice", caller="0905777888", uniqueid="c9", started_at=datetime.now(UTC)
    )
    await store.append_steps(
        t.code,
        [IvrStep(datetime.now(UTC), "main", "1"), IvrStep(datetime.now(UTC), "thu_tuc", "0")],
    )
    console = await site.page_of("tdv101")
    await console.wait_for_function(
        "document.querySelector('#my-state').textContent.includes('Sẵn sàng')"
    )
    await asyncio.sleep(0.2)  # the stream is open once the first state has arrived
    site.sim.arrive("c9", "thu_tuc", "0905777888", t.code)
    await site.sim.answer("c9")
    await console.wait_for_selector(f'#c-code:has-text("{t.code}")', timeout=2000)
    assert await console.inner_text("#c-caller") == "0905777888"
    assert await console.inner_text("#c-path") == "main (1)\nthu_tuc (0)"
    assert earlier.code in await console.inner_text("#c-earlier")
    await console.select_option("#c-cat", "thu_tuc")
    await console.fill("#c-notes", "Hướng dẫn hồ sơ cấp giấy phép xây dựng <b>không</b> in đậm")
    await _screenshot(console, "console.png")
    await console.click("#btn-resolve")
    await console.wait_for_selector("text=Đã lưu.")
    resolved = await store.get(t.code)
    assert resolved is not None and resolved.status.value == "resolved"
    assert (
        resolved.category == "thu_tuc"
        and resolved.notes is not None
        and "<b>không</b>" in resolved.notes
    )
    assert resolved.history[-1].by == "tdv101"
    assert await console.locator("#call b").count() == 0  # the notes stayed text


async def test_given_a_caller_number_with_markup_then_the_live_table_shows_it_as_text(
    site: Site,
) -> None:
    page = await site.page_of("giamsat")
    await _live(page)
    evil = '<img src=x onerror="document.title=1">'
    site.sim.arrive("x1", "chung", evil)
    await page.wait_for_selector("#calls tr[data-state=waiting]", timeout=1000)
    assert evil in await page.inner_text("#calls")
    assert await page.locator("#calls img").count() == 0
    assert await page.title() != "1"
