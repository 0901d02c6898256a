"""The agents' conversations API and pages (``web.conversations``) on the real conversation
core: lists per agent and channel, a conversation's messages and the contact's history, a reply
through the outbox with its delivery status, the platform window refusing up front, canned
answers, merging contacts (supervisors only), attachments, long polling, escaping, and a clear
4xx for every bad request and role."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.chat_rig import ChatRig, api_client, chat_rig
from bench.web_rig import login
from conversations.model import Identity, IdentityKind, InboundMessage, IncomingAttachment
from tickets.messages import Delivery
from tickets.model import Channel


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[ChatRig]:
    # Zalo's window closed for everyone: a reply there is refused up front
    async with chat_rig(db_url, tmp_path, windows={Channel.ZALO: lambda last, now: False}) as r:
        yield r


api = api_client


async def _chat(rig: ChatRig, visitor: str, text: str, ext: str, **kw: Any) -> str:
    """A web chat message through the inbox (as the journal's processor hands it over)."""
    got = await rig.inbox.receive(
        InboundMessage(
            channel=kw.pop("channel", Channel.WEBCHAT),
            external_id=ext,
            sender=Identity(kw.pop("kind", IdentityKind.WEBCHAT), visitor),
            received_at=datetime.now(UTC),
            text=text,
            **kw,
        )
    )
    assert got.ticket_code is not None
    return got.ticket_code


async def _handed_over(rig: ChatRig, visitor: str = "visitor-0000001") -> str:
    code = await _chat(rig, visitor, "Gặp tổng đài viên", f"{visitor}:1")
    assert rig.routing.assigned_to(code) == "agent101"
    return code


async def test_given_conversations_when_agents_list_them_then_each_sees_its_own_and_the_waiting(
    rig: ChatRig,
) -> None:
    mine = await _handed_over(rig)
    rig.routing.agent = None  # nobody free: the next one waits (message left)
    other = await _chat(rig, "visitor-0000002", "Gặp tổng đài viên", "v2:1")
    await rig.web.deps.tickets.update(other, queued_at=datetime.now(UTC), queue="chung")
    async with api(rig, "tdv101") as c:
        d = (await c.get("/api/conversations")).json()
        assert [x["code"] for x in d["mine"]] == [mine]
        assert [x["code"] for x in d["waiting"]] == [other]
        assert d["mine"][0]["agent"] == "agent101" and d["mine"][0]["channel"] == "webchat"
        assert d["per_channel"]["webchat"] == {"mine": 1, "waiting": 1, "others": 0}
        assert d["mine"][0]["last"]["dir"] == "out"  # the bot's "you are in line"
    async with api(rig, "tdv102") as c:
        d = (await c.get("/api/conversations")).json()
        assert d["mine"] == [] and [x["code"] for x in d["waiting"]] == [other]
        assert d["others"] == []  # an agent does not see colleagues' conversations
    async with api(rig, "giamsat") as c:
        d = (await c.get("/api/conversations")).json()
        assert [x["code"] for x in d["others"]] == [mine]


async def test_given_a_conversation_when_the_agent_replies_then_it_goes_through_the_outbox(
    rig: ChatRig,
) -> None:
    code = await _handed_over(rig)
    async with api(rig, "tdv101") as c:
        d = (await c.get(f"/api/conversations/{code}/messages")).json()
        assert d["ticket"]["code"] == code and d["contact"]["identities"] == [
            {"kind": "webchat", "value": "visitor-0000001"}
        ]
        assert [m["author"] for m in d["messages"]][:2] == ["citizen", "system"]
        r = await c.post(f"/api/conversations/{code}/messages", json={"text": "Chào anh chị"})
        assert r.status_code == 201, r.text
        sent = r.json()
        assert (sent["dir"], sent["author"], sent["author_id"]) == ("out", "agent", "agent101")
        assert sent["delivery"] == "pending"
        assert ("agent_replied", code) in rig.routing.calls

        async def tried() -> dict[str, Any]:
            ms = (await c.get(f"/api/conversations/{code}/messages")).json()["messages"]
            return next(m for m in ms if m["id"] == sent["id"])

        async with asyncio.timeout(3):
            while not (m := await tried())["delivery_error"]:
                await asyncio.sleep(0.05)
        # the visitor has no page open: still pending, and the agent is told why
        assert m["delivery"] == "pending" and "rời trang" in m["delivery_error"]
        after = (await c.get(f"/api/conversations/{code}/messages?after={sent['id']}")).json()
        assert after["messages"] == []


async def test_given_the_platform_window_closed_then_the_reply_is_refused_up_front(
    rig: ChatRig,
) -> None:
    code = await _chat(rig, "zalo-user-1", "Gặp tổng đài viên", "z1", channel=Channel.ZALO,
                       kind=IdentityKind.ZALO)  # fmt: skip
    before = len(await rig.conv.messages(code))
    async with api(rig, "tdv101") as c:
        r = await c.post(f"/api/conversations/{code}/messages", json={"text": "Trả lời muộn"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["id"] == "reply_refused" and "thời hạn" in err["message"]
    assert len(await rig.conv.messages(code)) == before  # nothing stored


async def test_given_bad_requests_and_roles_then_clear_4xx(rig: ChatRig) -> None:
    code = await _handed_over(rig)
    url = f"/api/conversations/{code}/messages"
    async with api(rig, None) as c:
        assert (await c.get("/api/conversations")).status_code == 401
        assert (await c.post(url, json={"text": "x"})).status_code == 401
    async with api(rig, "quanly") as c:  # a manager has no console
        assert (await c.get("/api/conversations")).status_code == 403
    async with api(rig, "tdv102") as c:  # held by agent101
        r = await c.post(url, json={"text": "Tôi trả lời thay"})
        assert r.status_code == 403 and r.json()["error"]["id"] == "forbidden"
        assert (
            await c.post("/api/contacts/merge", json={"keep": 1, "merge": 2})
        ).status_code == 403
    async with api(rig, "tdv101") as c:
        for body, status in [
            (b"{oops", 400),
            (b"[]", 422),
            (b'{"text": 5}', 422),
            (b'{"text": "x", "html": "<b>"}', 422),
            (b'{"text": "   "}', 409),
            (('{"text": "' + "x" * 20_001 + '"}').encode(), 422),
        ]:
            r = await c.post(url, content=body, headers={"content-type": "application/json"})
            assert r.status_code == status, (body[:30], r.text)
            assert r.json()["error"]["message"]
        assert (await c.get("/api/conversations/1022-20990101-999999/messages")).status_code == 404
        assert (await c.get(f"{url}?wait=999")).status_code == 422
        assert (await c.get(f"{url}?after=-1")).status_code == 422


async def test_given_two_contacts_of_one_citizen_when_a_supervisor_merges_them_then_history_joins(
    rig: ChatRig,
) -> None:
    chat = await _handed_over(rig)
    mail = await _chat(rig, "dan@example.vn", "Hỏi qua thư", "<m1@example.vn>",
                       channel=Channel.EMAIL, kind=IdentityKind.EMAIL)  # fmt: skip
    a = (await rig.web.deps.tickets.get(chat)).contact_id  # type: ignore[union-attr]
    b = (await rig.web.deps.tickets.get(mail)).contact_id  # type: ignore[union-attr]
    assert a is not None and b is not None and a != b
    async with api(rig, "giamsat") as c:
        for body, status in [({"keep": a, "merge": a}, 422), ({"keep": a, "merge": 99999}, 404),
                             ({"keep": "1", "merge": b}, 422)]:  # fmt: skip
            assert (await c.post("/api/contacts/merge", json=body)).status_code == status
        r = await c.post("/api/contacts/merge", json={"keep": a, "merge": b})
        assert r.status_code == 200, r.text
        kinds = sorted(i["kind"] for i in r.json()["identities"])
        assert kinds == ["email", "webchat"]
        d = (await c.get(f"/api/conversations/{chat}/messages")).json()
        assert {t["code"]: t["channel"] for t in d["tickets"]} == {chat: "webchat", mail: "email"}
        # merged once: not again
        assert (
            await c.post("/api/contacts/merge", json={"keep": a, "merge": b})
        ).status_code == 404


async def test_given_a_waiting_page_when_the_citizen_writes_then_the_long_poll_answers_at_once(
    rig: ChatRig,
) -> None:
    code = await _handed_over(rig)
    async with api(rig, "tdv101") as c:
        d = (await c.get(f"/api/conversations/{code}/messages")).json()
        version = d["version"]
        last = d["messages"][-1]["id"]

        wrote: list[float] = []

        async def citizen() -> None:
            await asyncio.sleep(0.3)
            wrote.append(time.perf_counter())
            await _chat(rig, "visitor-0000001", "Tôi cần hỏi về hồ sơ", "visitor-0000001:2")

        writer = asyncio.create_task(citizen())
        polls = 0
        async with asyncio.timeout(5):
            while True:  # a delivery changing also answers a poll: ask again from there
                polls += 1
                url = f"/api/conversations/{code}/messages?since={version}&wait=10&after={last}"
                r = await c.get(url)
                version = r.json()["version"]
                if r.json()["messages"]:
                    break
        seen = time.perf_counter()
        await writer
        assert r.json()["messages"][0]["text"] == "Tôi cần hỏi về hồ sơ"
        print(f"\nconsole: citizen's message on the waiting page {(seen - wrote[0]) * 1000:.0f} ms")
        # the poll waits up to 10 s: answering well before that means the message woke it
        assert seen - wrote[0] < 5.0 and polls < 10
        lists = (await c.get(f"/api/conversations?since={r.json()['version']}&wait=1")).json()
        assert [x["code"] for x in lists["mine"]] == [code]


async def test_given_canned_answers_then_supervisors_edit_them_and_agents_read_them(
    rig: ChatRig,
) -> None:
    async with api(rig, "giamsat") as c:
        r = await c.post("/api/canned", json={"title": "Giờ", "body": "Từ 7 giờ."})
        assert r.status_code == 201
        cid = r.json()["id"]
        change = {"id": cid, "title": "Giờ làm việc", "body": "Tổng đài làm việc từ 7 giờ 30."}
        r = await c.post("/api/canned", json=change)
        assert r.status_code == 200
        gone = await c.post("/api/canned", json={"title": "Tạm", "body": "Xoá sau"})
        assert (await c.delete(f"/api/canned/{gone.json()['id']}")).status_code == 204
        for body in (
            {"title": "", "body": "x"},
            {"title": "x"},
            {"id": "1", "title": "x", "body": "y"},
        ):
            assert (await c.post("/api/canned", json=body)).status_code == 422
        assert (
            await c.post("/api/canned", json={"id": 999, "title": "x", "body": "y"})
        ).status_code == 404
    async with api(rig, "tdv101") as c:
        d = (await c.get("/api/canned")).json()
        assert (await c.post("/api/canned", json={"title": "a", "body": "b"})).status_code == 403
    assert [(x["title"], x["body"]) for x in d["canned"]] == [
        ("Giờ làm việc", "Tổng đài làm việc từ 7 giờ 30.")
    ]


async def test_the_pages_show_what_citizens_typed_as_text_and_serve_attachments(
    rig: ChatRig,
) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    code = await _handed_over(rig)
    pdf = IncomingAttachment("don.pdf", "application/pdf", b"%PDF-1.4 ...")
    await _chat(rig, "visitor-0000001", evil, "visitor-0000001:2", attachments=(pdf,))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t"
    ) as c:
        assert (await c.get("/console/conversations")).status_code == 303  # to /login
        await login(c, "tdv101", rig.web.accounts["tdv101"].password)
        page = await c.get(f"/console/conversations/{code}")
        assert page.status_code == 200
        assert (
            evil not in page.text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        )
        listing = await c.get("/console/conversations")
        assert code in listing.text and "<script>alert" not in listing.text
        d = (await c.get(f"/api/conversations/{code}/messages")).json()
        url = next(m for m in d["messages"] if m["attachments"])["attachments"][0]["url"]
        f = await c.get(url)
        assert f.status_code == 200 and f.content == b"%PDF-1.4 ..."
        assert f.headers["content-disposition"].startswith("attachment")
        assert (await c.get(url.rsplit("/", 1)[0] + "/7")).status_code == 404
        # a form post without the CSRF token is refused
        r = await c.post(f"/console/conversations/{code}/merge", data={"merge": "1"})
        assert r.status_code == 403


async def test_a_reply_to_a_visitor_on_the_page_is_sent_and_shown_sent(rig: ChatRig) -> None:
    code = await _handed_over(rig)
    visitor = "visitor-0000001"
    q = rig.chat.hub.attach(visitor)  # the visitor's page is open
    try:
        async with api(rig, "tdv101") as c:
            r = await c.post(f"/api/conversations/{code}/messages", json={"text": "Xin chào"})
            sent_id = r.json()["id"]
            async with asyncio.timeout(3):
                while True:
                    e = await q.get()
                    if e is not None and e.get("text") == "Xin chào":
                        break
            async with asyncio.timeout(3):
                while True:
                    ms = await rig.conv.messages(code)
                    if next(m for m in ms if m.id == sent_id).delivery is Delivery.SENT:
                        break
                    await asyncio.sleep(0.02)
    finally:
        rig.chat.hub.detach(visitor, q)
    assert timedelta(0) <= datetime.now(UTC) - ms[-1].at < timedelta(seconds=5)


async def test_the_merge_button_merges_for_a_supervisor(rig: ChatRig) -> None:
    chat = await _handed_over(rig)
    mail = await _chat(rig, "dan@example.vn", "Hỏi qua thư", "<m2@example.vn>",
                       channel=Channel.EMAIL, kind=IdentityKind.EMAIL)  # fmt: skip
    other = (await rig.web.deps.tickets.get(mail)).contact_id  # type: ignore[union-attr]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t"
    ) as c:
        csrf = await login(c, "giamsat", rig.web.accounts["giamsat"].password)
        page = await c.get(f"/console/conversations/{chat}")
        assert 'id="merge-form"' in page.text
        url = f"/console/conversations/{chat}/merge"
        r = await c.post(url, data={"csrf": csrf, "merge": "abc"})
        assert r.status_code == 303 and "err=invalid_input" in r.headers["location"]
        r = await c.post(url, data={"csrf": csrf, "merge": str(other)})
        assert r.status_code == 303 and r.headers["location"].endswith("ok=merged")
        done = await c.get(r.headers["location"])
        assert "Đã gộp người liên hệ." in done.text and mail in done.text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t"
    ) as c:
        await login(c, "tdv101", rig.web.accounts["tdv101"].password)
        assert 'id="merge-form"' not in (await c.get(f"/console/conversations/{chat}")).text
