"""The knowledge base in the API: agents search it without diacritics, supervisors publish
and withdraw, everybody else is refused, bad input is a 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bench.web_rig import WebRig, login, web_rig
from tickets.kb import KbDraft


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[WebRig]:
    async with web_rig(db_url, lifespan=False) as r:
        yield r


def api(rig: WebRig, who: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {rig.tokens[who]}"} if who else {}
    transport = httpx.ASGITransport(app=rig.app)
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


async def test_a_supervisor_publishes_a_tickets_answer_and_an_agent_finds_it(rig: WebRig) -> None:
    t = await rig.deps.tickets.open(
        channel="email", caller=None, uniqueid=None, started_at=datetime.now(UTC)
    )
    async with api(rig, "giamsat") as c:
        r = await c.post(
            "/api/v1/kb",
            json={
                "question": "Thủ tục cấp lại căn cước?",
                "answer": "Nộp tại Công an cấp xã.",
                "category": "thu_tuc",
                "procedure": "Cấp lại thẻ căn cước",
                "ticket": t.code,
            },
        )
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["ticket"], made["updated_by"]) == (t.code, "giamsat")
    async with api(rig, "tdv101") as c:
        r = await c.get("/api/v1/kb", params={"q": "thu tuc cap lai can cuoc"})
        assert r.status_code == 200
        assert [(e["id"], e["score"]) for e in r.json()["entries"]] == [(made["id"], 1.0)]
        short = await c.get("/api/kb", params={"q": "can cuoc cap lai"})  # the console's path
        assert [e["id"] for e in short.json()["entries"]] == [made["id"]]
        r = await c.get("/api/v1/kb", params={"q": "cho hoi cap lai can cuoc the nao"})
        assert r.json()["entries"] == []
        r = await c.get("/api/v1/kb", params={"q": "cho hoi cap lai can cuoc", "loose": "1"})
        assert [e["id"] for e in r.json()["entries"]] == [made["id"]]
        # an agent may not publish nor withdraw
        assert (
            await c.post("/api/v1/kb", json={"question": "a", "answer": "b"})
        ).status_code == 403
        assert (await c.delete(f"/api/v1/kb/{made['id']}")).status_code == 403
    async with api(rig, "giamsat") as c:
        assert (await c.delete(f"/api/v1/kb/{made['id']}")).json() == {"withdrawn": made["id"]}
        assert (await c.delete(f"/api/v1/kb/{made['id']}")).status_code == 404
        assert (await c.get("/api/v1/kb", params={"q": "can cuoc"})).json()["entries"] == []


async def test_without_login_the_knowledge_base_is_closed(rig: WebRig) -> None:
    async with api(rig, None) as c:
        assert (await c.get("/api/v1/kb", params={"q": "can cuoc"})).status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": "", "answer": "x"}, 422),
        ({"question": "   ", "answer": "x"}, 422),
        ({"question": "q", "answer": "x", "category": "nowhere"}, 422),
        ({"question": "q", "answer": "x", "ticket": "1234"}, 422),
        ({"question": "q", "answer": "x", "ticket": "1022-20200101-000009"}, 404),
        ({"question": "q", "answer": "x", "extra": 1}, 422),
        ({"question": "q" * 2001, "answer": "x"}, 422),
    ],
)
async def test_bad_entries_are_refused(rig: WebRig, body: dict[str, object], status: int) -> None:
    async with api(rig, "giamsat") as c:
        r = await c.post("/api/v1/kb", json=body)
        assert r.status_code == status, r.text
        assert "error" in r.json()


async def test_bad_queries_are_refused(rig: WebRig) -> None:
    async with api(rig, "tdv101") as c:
        assert (await c.get("/api/v1/kb", params={"q": "x" * 301})).status_code == 422
        assert (await c.get("/api/v1/kb", params={"q": "a", "limit": "0"})).status_code == 422
        assert (await c.get("/api/v1/kb", params={"q": "a", "loose": "yes"})).status_code == 422
        assert (await c.get("/api/v1/kb", params={"q": "a\x00"})).status_code == 422


async def test_the_search_page_shows_answers_escaped_and_needs_a_login(rig: WebRig) -> None:
    await rig.app.state.kb.publish(
        KbDraft("Cấp lại căn cước <script>alert(1)</script>", "Nộp tại <b>Công an</b> xã."),
        by="giamsat",
    )
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/kb", params={"q": "can cuoc"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        await login(c, "tdv101", rig.accounts["tdv101"].password)
        html = (await c.get("/kb", params={"q": "cap lai can cuoc"})).text
        assert 'id="kb-count">1 kết quả.' in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
        assert "Nộp tại &lt;b&gt;Công an&lt;/b&gt; xã." in html
        assert 'href="/kb"' in html  # in the menu
        assert 'id="kb-count">0 kết quả.' in (await c.get("/kb", params={"q": "dat dai"})).text
