"""Resolving and transferring a conversation from the console (``web.conversation_actions``)
on the real conversation core: the final answer goes out before the ticket is resolved (and
a refused one leaves it open), an agency's open forward blocks resolving while an answered one
goes back the back office's way, a transfer moves the conversation to the colleague (who then
sees and answers it) or back to a queue, and every bad request and role gets a clear 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.chat_rig import ChatRig, api_client, chat_rig
from bench.web_rig import login
from conversations.model import Identity, IdentityKind, InboundMessage
from tickets.messages import Author, Direction
from tickets.model import Channel, Status


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[ChatRig]:
    # Zalo's window closed for everyone: a final answer there is refused up front
    async with chat_rig(db_url, tmp_path, windows={Channel.ZALO: lambda last, now: False}) as r:
        yield r


api = api_client


async def _handed_over(
    rig: ChatRig, visitor: str = "visitor-0000001", channel: Channel = Channel.WEBCHAT
) -> str:
    kind = IdentityKind.ZALO if channel is Channel.ZALO else IdentityKind.WEBCHAT
    got = await rig.inbox.receive(
        InboundMessage(
            channel=channel, external_id=f"{visitor}:1", sender=Identity(kind, visitor),
            received_at=datetime.now(UTC), text="Gặp tổng đài viên",
        )
    )  # fmt: skip
    assert got.ticket_code is not None
    assert rig.routing.assigned_to(got.ticket_code) == "agent101"
    return got.ticket_code


async def test_given_a_final_answer_when_the_agent_resolves_then_it_is_sent_and_resolved(
    rig: ChatRig,
) -> None:
    code = await _handed_over(rig)
    async with api(rig, "tdv101") as c:
        r = await c.post(
            f"/api/conversations/{code}/resolve",
            json={"answer": "Hồ sơ của anh đã có kết quả.", "note": "đã trả lời"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"code": code, "status": "resolved"}
        # resolved: no second time, and no reply any more
        again = await c.post(f"/api/conversations/{code}/resolve", json={})
        assert again.status_code == 409 and again.json()["error"]["id"] == "ticket_done"
    last = (await rig.conv.messages(code))[-1]
    assert (last.direction, last.author, last.author_id, last.body) == (
        Direction.OUT, Author.AGENT, "agent101", "Hồ sơ của anh đã có kết quả."
    )  # fmt: skip
    t = await rig.web.deps.tickets.get(code)
    assert t is not None and t.status is Status.RESOLVED
    h = t.history[-1]
    assert (h.to_status, h.by, h.note) == ("resolved", "tdv101", "đã trả lời")
    assert rig.routing.assigned_to(code) is None  # the ACD freed the agent's capacity


async def test_given_the_platform_window_closed_then_resolving_with_an_answer_keeps_it_open(
    rig: ChatRig,
) -> None:
    code = await _handed_over(rig, "zalo-user-1", Channel.ZALO)
    before = len(await rig.conv.messages(code))
    async with api(rig, "tdv101") as c:
        r = await c.post(f"/api/conversations/{code}/resolve", json={"answer": "Trả lời muộn"})
        assert r.status_code == 409 and r.json()["error"]["id"] == "reply_refused"
        t = await rig.web.deps.tickets.get(code)
        assert t is not None and t.status in (Status.NEW, Status.IN_PROGRESS)
        assert len(await rig.conv.messages(code)) == before
        # without an answer it resolves (the citizen was answered some other way)
        r = await c.post(f"/api/conversations/{code}/resolve", json={})
        assert r.status_code == 200 and r.json()["status"] == "resolved"


async def test_given_an_agency_forward_then_open_blocks_resolving_and_answered_goes_back(
    rig: ChatRig,
) -> None:
    code = await _handed_over(rig)
    desk = rig.app.state.desk
    fwd = await desk.forward(code, "so_tu_phap", by="giamsat")
    async with api(rig, "tdv101") as c:
        r = await c.post(f"/api/conversations/{code}/resolve", json={"answer": "Xong"})
        assert r.status_code == 409
        err = r.json()["error"]
        assert err["id"] == "forward_open" and "Sở Tư pháp" in err["message"]
        page = (await c.get(f"/console/conversations/{code}")).text
        assert 'id="forward-open"' in page and 'id="resolve-form"' not in page
        await desk.answer("so_tu_phap", fwd.id, text="Hồ sơ hợp lệ.", public=False, by="stp")
        page = (await c.get(f"/console/conversations/{code}")).text
        assert 'id="forward-answer"' in page and "Hồ sơ hợp lệ." in page
        r = await c.post(f"/api/conversations/{code}/resolve", json={})
        assert r.status_code == 200, r.text
    last = (await rig.conv.messages(code))[-1]
    assert last.direction is Direction.OUT and last.body.startswith("Hồ sơ hợp lệ.")
    assert "Sở Tư pháp trả lời" in last.body
    done = await desk.current(code)
    assert done is not None and done.replied_at is not None and done.reply_via == "webchat"
    t = await rig.web.deps.tickets.get(code)
    assert t is not None and t.status is Status.RESOLVED
    assert rig.routing.assigned_to(code) is None


async def test_given_a_transfer_to_a_colleague_then_they_hold_it_and_the_first_agent_no_more(
    rig: ChatRig,
) -> None:
    code = await _handed_over(rig)
    async with api(rig, "tdv101") as c:
        r = await c.post(f"/api/conversations/{code}/transfer", json={"agent": "agent102"})
        assert r.status_code == 200, r.text
        assert r.json()["agent"] == "agent102"
        # not theirs any more: no reply, no second transfer
        r = await c.post(f"/api/conversations/{code}/messages", json={"text": "Tôi nữa"})
        assert r.status_code == 403
        r = await c.post(f"/api/conversations/{code}/transfer", json={"queue": "chung"})
        assert r.status_code == 403
    async with api(rig, "tdv102") as c:
        d = (await c.get("/api/conversations")).json()
        assert [x["code"] for x in d["mine"]] == [code]
        r = await c.post(f"/api/conversations/{code}/messages", json={"text": "Tôi tiếp nhận"})
        assert r.status_code == 201
        # back to a queue: nobody holds it
        r = await c.post(f"/api/conversations/{code}/transfer", json={"queue": "chung"})
        assert r.status_code == 200 and r.json()["agent"] is None
    t = await rig.web.deps.tickets.get(code)
    assert t is not None and t.notes is not None
    assert "Chuyển hội thoại cho tổng đài viên agent102." in t.notes
    assert "Chuyển hội thoại cho hàng chờ chung." in t.notes


async def test_given_bad_transfers_and_resolves_then_clear_4xx(rig: ChatRig) -> None:
    code = await _handed_over(rig)
    tr, rs = f"/api/conversations/{code}/transfer", f"/api/conversations/{code}/resolve"
    async with api(rig, None) as c:
        assert (await c.post(tr, json={"agent": "agent102"})).status_code == 401
        assert (await c.post(rs, json={})).status_code == 401
    async with api(rig, "quanly") as c:  # a manager has no console
        assert (await c.post(tr, json={"agent": "agent102"})).status_code == 403
        assert (await c.post(rs, json={})).status_code == 403
    async with api(rig, "tdv102") as c:  # held by agent101
        assert (await c.post(tr, json={"agent": "agent102"})).status_code == 403
        assert (await c.post(rs, json={})).status_code == 403
    rig.routing.refuse.add("agent102")
    async with api(rig, "tdv101") as c:
        for body, status, error in [
            ({}, 422, "invalid_input"),
            ({"agent": "agent102", "queue": "chung"}, 422, "invalid_input"),
            ({"agent": 5}, 422, "invalid_input"),
            ({"who": "agent102"}, 422, "invalid_input"),
            ({"agent": "agent101"}, 409, "transfer_refused"),  # already theirs
            ({"agent": "agent102"}, 409, "transfer_refused"),  # cannot take it now
        ]:
            r = await c.post(tr, json=body)
            assert (r.status_code, r.json()["error"]["id"]) == (status, error), (body, r.text)
        for body in ({"answer": 5}, {"answer": "x" * 8001}, {"why": "x"}):
            r = await c.post(rs, json=body)
            assert r.status_code == 422, (body, r.text)
        assert (await c.post(rs, content=b"{oops")).status_code == 400
        missing = "/api/conversations/1022-20990101-999999/transfer"
        assert (await c.post(missing, json={"agent": "agent102"})).status_code == 404
    assert rig.routing.assigned_to(code) == "agent101"  # nothing moved


async def test_the_page_forms_resolve_and_transfer_with_csrf(rig: ChatRig) -> None:
    code = await _handed_over(rig)
    other = await _handed_over(rig, "visitor-0000002")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t"
    ) as c:
        csrf = await login(c, "tdv101", rig.web.accounts["tdv101"].password)
        page = (await c.get(f"/console/conversations/{code}")).text
        assert 'id="resolve-form"' in page and 'value="agent:agent102"' in page
        assert 'value="agent:agent101"' not in page  # not to the holder
        url = f"/console/conversations/{code}/resolve"
        assert (await c.post(url, data={"answer": "x"})).status_code == 403  # no CSRF token
        r = await c.post(url, data={"csrf": csrf, "answer": "Đã xong.\r\nCảm ơn.", "note": ""})
        assert r.status_code == 303 and r.headers["location"].endswith("?ok=resolved")
        assert "Đã giải quyết hội thoại." in (await c.get(r.headers["location"])).text
        assert (await rig.conv.messages(code))[-1].body == "Đã xong.\nCảm ơn."
        move = f"/console/conversations/{other}/transfer"
        r = await c.post(move, data={"csrf": csrf, "to": "nowhere"})
        assert r.status_code == 303 and "err=invalid_input" in r.headers["location"]
        r = await c.post(move, data={"csrf": csrf, "to": "agent:agent102"})
        assert r.status_code == 303
        assert r.headers["location"] == "/console/conversations?ok=transferred"
    assert rig.routing.assigned_to(other) == "agent102"
