"""The HTML pages: what they show, stored XSS attempts escaped everywhere, forms that work,
recordings served safely (only logged-in users, no path traversal)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.web_rig import SimAcd, WebRig, login, web_rig
from tickets.model import Channel, Outcome

XSS_CALLER = '<script>alert("số")</script>'
XSS_NOTES = '"><img src=x onerror=alert(1)>'


@dataclass
class World:
    sim: SimAcd
    rig: WebRig
    messages: Path

    @contextlib.asynccontextmanager
    async def browser(self, who: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        transport = httpx.ASGITransport(app=self.rig.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c, await login(c, who, self.rig.accounts[who].password)


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    sim = SimAcd()
    await sim.start(login=["agent101", "agent102"])
    messages = tmp_path / "messages"
    messages.mkdir()
    async with web_rig(db_url, sim.control, messages_dir=messages) as rig:
        sim.use_tickets(rig.deps.tickets)
        sim.listen(rig.deps.hub.on_acd_event)
        try:
            yield World(sim, rig, messages)
        finally:
            await sim.stop()


async def _xss_ticket(w: World) -> str:
    t = await w.rig.deps.tickets.open(
        channel="voice", caller=XSS_CALLER, uniqueid="x1", started_at=datetime.now(UTC)
    )
    await w.rig.deps.tickets.update(
        t.code, notes=XSS_NOTES, outcome=Outcome.ABANDONED_QUEUE, queue="thu_tuc"
    )
    return t.code


async def test_given_stored_xss_in_caller_and_notes_then_every_page_escapes_it(
    world: World,
) -> None:
    code = await _xss_ticket(world)
    world.sim.arrive("c1", "thu_tuc", XSS_CALLER, code)  # a waiting call on the wallboard
    pages = {
        "giamsat": ["/wallboard", "/tickets", f"/tickets/{code}"],
        "tdv101": ["/console", f"/console?ticket={code}", "/tickets"],
    }
    for who, paths in pages.items():
        async with world.browser(who) as (c, _):
            for path in paths:
                html = (await c.get(path)).text
                assert "<script>alert" not in html, path
                assert "<img src=x" not in html, path
                assert "&lt;script&gt;alert(&#34;số&#34;)&lt;/script&gt;" in html, path
    await world.sim.answer("c1")


async def test_given_a_ticket_form_when_an_agent_resolves_then_the_ticket_and_page_show_it(
    world: World,
) -> None:
    t = await world.rig.deps.tickets.open(
        channel="voice", caller="0905", uniqueid="u", started_at=datetime.now(UTC)
    )
    async with world.browser("tdv101") as (c, csrf):
        data = {
            "csrf": csrf,
            "action": "resolve",
            "category": "thu_tuc",
            "notes": "Đã hướng dẫn",
            "back": "console",
        }
        r = await c.post(f"/tickets/{t.code}", data=data)
        assert r.status_code == 303
        assert r.headers["location"] == f"/console?ticket={t.code}&ok=saved"
        page = (await c.get(r.headers["location"])).text
        assert "Đã lưu." in page and "Đã hướng dẫn" in page
        detail = (await c.get(f"/tickets/{t.code}")).text
        assert "Đã giải quyết" in detail and "tdv101" in detail
        r = await c.post(f"/tickets/{t.code}", data={"csrf": csrf, "action": "reopen"})
        r = await c.post(f"/tickets/{t.code}", data={"csrf": csrf, "action": "close"})
        r = await c.post(f"/tickets/{t.code}", data={"csrf": csrf, "action": "reopen"})
        assert "err=illegal_status" in r.headers["location"]
    stored = await world.rig.deps.tickets.get(t.code)
    assert stored is not None and stored.status.value == "closed"
    assert stored.category == "thu_tuc" and stored.agent == "agent101"


async def test_given_a_supervisor_when_pausing_an_agent_on_the_wallboard_then_it_is_paused(
    world: World,
) -> None:
    async with world.browser("giamsat") as (c, csrf):
        data = {"csrf": csrf, "op": "pause", "reason": "training"}
        r = await c.post("/wallboard/agents/agent102", data=data)
        assert r.headers["location"] == "/wallboard?ok=state"
        html = (await c.get("/wallboard?ok=state")).text
        assert 'data-agent="agent102" data-state="paused"' in html
        assert "Đào tạo" in html and "Đã đổi trạng thái." in html
        r = await c.post("/wallboard/agents/agent104", data={"csrf": csrf, "op": "unpause"})
        assert r.headers["location"] == "/wallboard?err=illegal_transition"
        r = await c.post("/wallboard/announcement", data={"csrf": csrf, "text": "Bão số 5"})
        assert r.headers["location"] == "/wallboard?ok=announce_set"
        assert "Bão số 5" in (await c.get("/wallboard")).text


async def test_the_wallboard_shows_waiting_and_open_conversations_per_channel(
    world: World,
) -> None:
    world.sim.router.pause("agent102", "meal")
    for i, channel in enumerate(["zalo", "webchat", "zalo", "email", "zalo"]):
        t = await world.rig.deps.tickets.open(
            channel=channel, caller=f"u-{i}", uniqueid=None, started_at=datetime.now(UTC)
        )
        assert world.sim.messaging.enqueue(t.code, "chung", Channel(channel))
    world.sim.router.assign_now()  # agent101 takes 3 (the default capacity), 2 wait
    async with world.browser("giamsat") as (c, _csrf):
        html = (await c.get("/wallboard")).text
    row = html.split('data-queue="chung"')[1].split("</tr>")[0]
    assert '<td class="conv-waiting">2 <small>Email 1, Zalo 1</small></td>' in row
    assert '<td class="conv-open">3 <small>Chat trên cổng 1, Zalo 2</small></td>' in row
    assert '<span class="n" id="t-conv-waiting">2</span>' in html
    assert '<span class="n" id="t-conv-open">3</span>' in html
    agent = html.split('data-agent="agent101"')[1].split("</tr>")[0]
    assert '<td class="convs">3/3</td>' in agent
    assert '<select name="hand_to"' in agent  # pause or log out: hand the 3 to a colleague
    world.sim.router.unpause("agent102")
    async with world.browser("giamsat") as (c, csrf):
        data = {"csrf": csrf, "op": "logout", "hand_to": "agent102"}
        r = await c.post("/wallboard/agents/agent101", data=data)
        assert r.headers["location"] == "/wallboard?ok=state"
    assert world.sim.router.open_conversations("agent101") == []
    assert len(world.sim.router.open_conversations("agent102")) == 3  # its capacity


async def test_given_messages_when_fetching_recordings_then_only_files_inside_are_served(
    world: World, tmp_path: Path
) -> None:
    (world.messages / "1022-20260601-000001.wav").write_bytes(b"RIFF....WAVEfmt ")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"secret")
    (world.messages / "link.wav").symlink_to(secret)
    (world.messages / ".hidden.wav").write_bytes(b"x")
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.rig.app), base_url="http://t")
    async with anon:
        r = await anon.get("/recordings/1022-20260601-000001.wav")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    async with world.browser("tdv101") as (c, _):
        r = await c.get("/recordings/1022-20260601-000001.wav")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert r.content.startswith(b"RIFF")
        for bad in ("link.wav", ".hidden.wav", "..%2Fsecret.wav", "..%252Fsecret.wav",
                    "%2E%2E/secret.wav", "missing.wav", "secret.txt"):  # fmt: skip
            r = await c.get(f"/recordings/{bad}")
            assert r.status_code == 404, bad
            assert b"secret" not in r.content


async def test_given_a_message_left_when_opening_the_ticket_then_there_is_an_audio_player(
    world: World,
) -> None:
    t = await world.rig.deps.tickets.open(
        channel="voice", caller="0905", uniqueid="u", started_at=datetime.now(UTC)
    )
    path = world.messages / f"{t.code}.wav"
    await world.rig.deps.tickets.update(t.code, recording=str(path), outcome="message_left")
    async with world.browser("quanly") as (c, _):
        html = (await c.get(f"/tickets/{t.code}")).text
        assert f'<audio controls preload="none" src="/recordings/{t.code}.wav">' in html
        assert "Để lại lời nhắn" in html and "Xử lý" not in html  # managers only read


async def test_given_a_manager_when_opening_reports_then_the_html_report_renders(
    world: World,
) -> None:
    async with world.browser("quanly") as (c, _):
        assert 'name="from"' in (await c.get("/reports")).text
        r = await c.get("/reports/view?from=2026-01-01&to=2026-01-31")
        assert r.status_code == 200 and "<svg" not in r.text[:100]
        assert "style-src 'unsafe-inline'" in r.headers["content-security-policy"]
        assert "script-src" not in r.headers["content-security-policy"]
        r = await c.get("/reports/view?from=2026-02-01&to=2026-01-01")
        assert r.status_code == 422
        r = await c.get("/reports/view?from=2026-01-01&to=2026-01-31&format=xlsx")
        assert r.content[:2] == b"PK"


async def test_given_any_page_then_security_headers_are_set(world: World) -> None:
    async with world.browser("giamsat") as (c, _):
        r = await c.get("/wallboard")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
