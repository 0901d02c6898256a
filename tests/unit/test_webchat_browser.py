"""In a real browser (Debian's Chromium, driven by Playwright), two pages: a citizen on the
portal's chat (/chat) asks for an agent; the agent, logged into the console, sees the
conversation, answers with a canned answer; the citizen's page shows the reply, and the
citizen's next message shows on the agent's page. Times are measured and printed; what a
citizen types stays text on the agent's page. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bench.chat_rig import ChatRig, chat_rig
from channels.webchat.settings import WebchatSettings
from tickets.model import Status
from tongdai.settings import PROJECT_HOME
from web.app import listen, serve

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.async_api")

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = PROJECT_HOME / "tests" / "artifacts"
CANNED = "Tổng đài 1022 làm việc từ 7 giờ 30 đến 17 giờ, thứ Hai đến thứ Sáu."


@dataclass
class Site:
    rig: ChatRig
    url: str
    browser: Any

    async def page(self, width: int = 1300, height: int = 900) -> Any:
        context = await self.browser.new_context(
            viewport={"width": width, "height": height}, locale="vi-VN"
        )
        return await context.new_page()

    async def agent(self, who: str) -> Any:
        page = await self.page()
        await page.goto(f"{self.url}/login")
        await page.fill("input[name=name]", who)
        await page.fill("input[name=password]", self.rig.web.accounts[who].password)
        await page.click("button[type=submit]")
        await page.wait_for_load_state("domcontentloaded")
        return page


@contextlib.asynccontextmanager
async def _site(
    db_url: str, tmp_path: Path, cfg: WebchatSettings | None = None
) -> AsyncIterator[Site]:
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    async with chat_rig(db_url, tmp_path, cfg=cfg, lifespan=False) as rig:
        await rig.canned.save("Giờ làm việc", CANNED, by="giamsat")
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
                    yield Site(rig, f"http://127.0.0.1:{sock.getsockname()[1]}", browser)
                finally:
                    await browser.close()
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)


@pytest.fixture
async def site(make_db_url: Callable[[str], str], tmp_path: Path) -> AsyncIterator[Site]:
    async with _site(make_db_url("sqlite"), tmp_path) as s:
        yield s


async def _asks_for_an_agent(site: Site) -> tuple[Any, str]:
    """A citizen's page on the chat that asked for an agent, and their ticket code."""
    citizen = await site.page(400, 700)
    await citizen.goto(f"{site.url}/chat")
    await citizen.wait_for_selector("#status[data-state=open]", timeout=5000)
    await citizen.click("#btn-agent")
    ack = citizen.locator("#log li.out", has_text="1022-")
    await ack.wait_for(timeout=5000)
    code = next(w for w in (await ack.inner_text()).split() if w.startswith("1022-")).rstrip(".")
    return citizen, code


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_given_a_citizen_on_the_chat_when_an_agent_answers_canned_then_each_sees_it(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    citizen = await site.page(400, 700)
    await citizen.goto(f"{site.url}/chat")
    await citizen.wait_for_selector("#status[data-state=open]", timeout=5000)
    await citizen.fill("#text", "Cho tôi hỏi giờ làm việc của tổng đài")
    await citizen.press("#text", "Enter")
    # the acknowledgement with the ticket code, then the bot's help
    ack = citizen.locator("#log li.out", has_text="1022-")
    await ack.wait_for(timeout=5000)
    await citizen.click("#btn-agent")  # "Gặp tổng đài viên"
    await citizen.locator("#log li.out", has_text="chuyển đến tổng đài viên").wait_for(timeout=5000)
    code = next(w for w in (await ack.inner_text()).split() if w.startswith("1022-")).rstrip(".")

    agent = await site.agent("tdv101")
    await agent.goto(f"{site.url}/console/conversations")
    row = agent.locator(f'#conv-mine tr[data-code="{code}"]')
    await row.wait_for(timeout=5000)
    assert "Chat trên cổng" in await row.inner_text()
    await row.locator("a").click()
    await agent.wait_for_selector("#reply-form")
    assert "Cho tôi hỏi giờ làm việc" in await agent.inner_text("#messages")
    await asyncio.sleep(0.3)  # the page's long poll is in place (it only waits for changes)

    await agent.select_option("#canned", label="Giờ làm việc")
    await agent.click("#btn-canned")
    assert await agent.input_value("#reply") == CANNED
    began = time.perf_counter()
    await agent.click("#btn-reply")
    await citizen.locator("#log li.out", has_text=CANNED).wait_for(timeout=3000)
    to_citizen_s = time.perf_counter() - began
    sent = agent.locator("#messages li[data-dir=out][data-delivery=sent]", has_text=CANNED)
    await sent.wait_for(timeout=3000)
    assert "đã gửi" in await sent.inner_text()

    evil = "<img src=x onerror=\"document.title='pwned'\">Cảm ơn"
    began = time.perf_counter()
    await citizen.fill("#text", evil)
    await citizen.press("#text", "Enter")
    await agent.locator("#messages li[data-dir=in]", has_text="Cảm ơn").wait_for(timeout=3000)
    to_agent_s = time.perf_counter() - began
    assert evil in await agent.inner_text("#messages")
    assert await agent.locator("#messages img").count() == 0
    assert await citizen.locator("#log img").count() == 0
    assert await agent.title() != "pwned" and await citizen.title() != "pwned"
    await _shot(citizen, "webchat-citizen.png")
    await _shot(agent, "webchat-console.png")
    with capsys.disabled():
        print(f"\nbrowser: agent's reply on the citizen's page {to_citizen_s * 1000:.0f} ms, "
              f"citizen's message on the agent's page {to_agent_s * 1000:.0f} ms")  # fmt: skip
    # speed is a benchmark's business (bench/webchat_burst.py): the waits above bound it at 3 s


async def test_given_a_resolved_conversation_when_the_agent_replies_then_the_page_says_why(
    site: Site,
) -> None:
    """A reply the server refuses shows its reason next to the reply box; nothing is sent."""
    citizen, code = await _asks_for_an_agent(site)
    agent = await site.agent("tdv101")
    await agent.goto(f"{site.url}/console/conversations/{code}")
    await agent.wait_for_selector("#reply-form")
    # resolved by a supervisor meanwhile (the agent's page still has the reply box)
    await site.rig.web.deps.tickets.set_status(code, Status.RESOLVED, by="giamsat")
    before = len(await site.rig.conv.messages(code))
    await agent.fill("#reply", "Trả lời sau khi đã giải quyết")
    await agent.click("#btn-reply")
    status = agent.locator("#reply-status[data-state=refused]")
    await status.wait_for(timeout=3000)
    assert "đã giải quyết" in await status.inner_text()
    assert len(await site.rig.conv.messages(code)) == before


async def test_given_a_chat_when_the_agent_transfers_it_then_the_colleague_sees_it_and_resolves(
    site: Site,
) -> None:
    """tdv101 hands the chat to agent102 with the transfer form; tdv102's open list shows it
    without a reload; each side sees the other typing; tdv102 resolves it with a final
    answer, which reaches the citizen."""
    citizen, code = await _asks_for_an_agent(site)

    colleague = await site.agent("tdv102")
    await colleague.goto(f"{site.url}/console/conversations")
    await colleague.wait_for_selector("#conv-mine")
    assert await colleague.locator(f'#conv-mine tr[data-code="{code}"]').count() == 0
    await asyncio.sleep(0.3)  # the list's long poll is in place (it only waits for changes)

    agent = await site.agent("tdv101")
    await agent.goto(f"{site.url}/console/conversations/{code}")
    await agent.wait_for_selector("#transfer-form")
    await agent.select_option("#transfer-to", "agent:agent102")
    await agent.click("#btn-transfer")
    await agent.wait_for_url("**/console/conversations?ok=transferred", timeout=5000)
    assert "Đã chuyển hội thoại." in await agent.inner_text("body")

    row = colleague.locator(f'#conv-mine tr[data-code="{code}"]')
    await row.wait_for(timeout=5000)  # moved into "mine" by the long poll, no reload
    await row.locator("a").click()
    await colleague.wait_for_selector("#resolve-form")
    # typing, both ways: each page shows the other typing (never stored)
    await asyncio.sleep(0.3)  # the page's long poll is in place
    await citizen.fill("#text", "Tôi đang gõ")
    await colleague.wait_for_selector("#typing:not([hidden])", timeout=3000)
    assert "Người dân đang nhập" in await colleague.inner_text("#typing")
    await colleague.fill("#reply", "Chờ một chút")
    await citizen.wait_for_selector("#typing:not([hidden])", timeout=3000)
    assert "Tổng đài viên đang nhập" in await citizen.inner_text("#typing")
    await colleague.fill("#reply", "")
    await colleague.fill("#resolve-answer", "Hồ sơ của anh chị đã có kết quả, xin cảm ơn.")
    await colleague.click("#btn-resolve")
    await colleague.wait_for_url(f"**/console/conversations/{code}?ok=resolved", timeout=5000)
    assert "Đã giải quyết hội thoại." in await colleague.inner_text("body")
    assert await colleague.locator("#reply-form").count() == 0  # resolved: no more replies
    await citizen.locator("#log li.out", has_text="đã có kết quả").wait_for(timeout=3000)
    t = await site.rig.web.deps.tickets.get(code)
    assert t is not None and t.status is Status.RESOLVED and t.history[-1].by == "tdv102"
    assert t.notes is not None and "agent102" in t.notes
    await _shot(colleague, "webchat-console-resolved.png")


async def test_given_the_portal_on_another_origin_when_it_embeds_the_widget_then_the_chat_works(
    make_db_url: Callable[[str], str], tmp_path: Path
) -> None:
    """The portal's page (another origin) carries only the <script> tag; the frame opens /chat
    (allowed to be framed by that origin) and the conversation runs."""
    portal_sock = listen("127.0.0.1", 0)
    portal = f"http://127.0.0.1:{portal_sock.getsockname()[1]}"
    cfg = WebchatSettings(allowed_origins=(portal,))
    async with _site(make_db_url("sqlite"), tmp_path, cfg) as site:
        html = (
            "<!doctype html><html lang=vi><head><meta charset=utf-8><title>Cổng dịch vụ công"
            f'</title></head><body><h1>Cổng dịch vụ công</h1><script src="{site.url}'
            '/chat/widget.js" defer></script></body></html>'
        )

        async def home(request: object) -> HTMLResponse:
            return HTMLResponse(html)

        app = Starlette(routes=[Route("/", home)])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none")
        server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        task = asyncio.create_task(server.serve(sockets=[portal_sock]))
        try:
            async with asyncio.timeout(5):
                while not server.started:
                    await asyncio.sleep(0.02)
            page = await site.page(1000, 800)
            await page.goto(portal + "/")
            await page.click("text=Hỏi đáp 1022")
            frame = page.frame_locator("iframe[title='Trò chuyện với Tổng đài 1022']")
            await frame.locator("#status[data-state=open]").wait_for(timeout=5000)
            await frame.locator("#text").fill("Hỏi từ cổng dịch vụ công")
            await frame.locator("#text").press("Enter")
            await frame.locator("#log li.out", has_text="1022-").wait_for(timeout=5000)
            await _shot(page, "webchat-portal.png")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
