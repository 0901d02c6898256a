"""The web chat over a real socket (uvicorn on loopback, the ``websockets`` client): a visitor's
message becomes a ticket exactly once with the code acknowledged, the bot hands over, an
agent's reply reaches the open socket or waits for the visitor's return; hostile input
(oversize, garbage, forged token, foreign origin, floods) gets a clear refusal and stores
nothing. Also the HTTP fallback and the page's headers."""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from bench.chat_rig import ChatRig, OneAgentRouting, chat_rig
from channels.webchat.settings import WebchatSettings
from tickets.messages import Delivery, Direction
from tickets.model import Channel, Outcome
from tongdai.errors import StoreError
from web.app import listen, serve

PORTAL = "https://portal.example"


@dataclass
class Site:
    rig: ChatRig
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/chat/ws"

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    async def connect(self, origin: str | None = PORTAL) -> ClientConnection:
        return await websockets.connect(
            self.ws_url,
            origin=origin,
            open_timeout=5,  # type: ignore[arg-type]
        )


async def _site(
    db_url: str, tmp: Path, cfg: WebchatSettings | None = None, routing: Any = None
) -> AsyncIterator[Site]:
    async with chat_rig(db_url, tmp, cfg=cfg, routing=routing, lifespan=False) as rig:
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        try:
            yield Site(rig, sock.getsockname()[1])
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async for s in _site(db_url, tmp_path):
        yield s


@pytest.fixture
async def strict(make_db_url: Callable[[str], str], tmp_path: Path) -> AsyncIterator[Site]:
    """A site with a tight rate (3 at once, then 1 a minute) and small frames."""
    cfg = WebchatSettings(
        allowed_origins=(PORTAL,), rate_per_minute=1, burst=3, max_frame_bytes=4096,
        max_message_chars=500,
    )  # fmt: skip
    async for s in _site(make_db_url("sqlite"), tmp_path, cfg):
        yield s


_BACKLOG: weakref.WeakKeyDictionary[ClientConnection, list[dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


@pytest.fixture
async def nobody(make_db_url: Callable[[str], str], tmp_path: Path) -> AsyncIterator[Site]:
    """A site where no agent is logged in."""
    async for s in _site(make_db_url("sqlite"), tmp_path, routing=OneAgentRouting(None)):
        yield s


async def _recv(
    ws: ClientConnection, kind: str, timeout: float = 3.0, **match: Any
) -> dict[str, Any]:
    """The first frame of ``kind`` whose fields equal ``match``; frames passed over are kept
    for later calls (order of arrival kept)."""
    backlog = _BACKLOG.setdefault(ws, [])

    def fits(e: dict[str, Any]) -> bool:
        return e["type"] == kind and all(e.get(k) == v for k, v in match.items())

    for i, e in enumerate(backlog):
        if fits(e):
            return backlog.pop(i)
    async with asyncio.timeout(timeout):
        while True:
            e = dict(json.loads(await ws.recv()))
            if fits(e):
                return e
            backlog.append(e)


async def _hello(ws: ClientConnection, token: str | None = None) -> tuple[str, str, list[Any]]:
    await ws.send(json.dumps({"type": "hello", "token": token}))
    welcome = await _recv(ws, "welcome")
    history = await _recv(ws, "history")
    return welcome["token"], welcome["visitor"], history["messages"]


async def _until(cond: Callable[[], Any], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not await cond():
            await asyncio.sleep(0.02)


async def _code_of(rig: ChatRig, visitor: str) -> str:
    from channels.webchat.history import latest_code

    found: list[str] = []

    async def has() -> bool:
        code = await latest_code(rig.conv, visitor)
        if code:
            found.append(code)
        return code is not None

    await _until(has)
    return found[-1]


def _msg(cid: str, text: str, **extra: Any) -> str:
    return json.dumps({"type": "message", "cid": cid, "text": text, **extra})


async def test_given_a_visitor_when_they_write_then_a_ticket_acknowledges_and_the_bot_hands_over(
    site: Site,
) -> None:
    async with await site.connect() as ws:
        token, visitor, history = await _hello(ws)
        assert history == [] and token.startswith(visitor + ".")
        began = time.perf_counter()
        await ws.send(_msg("m1", "Cho tôi hỏi về thủ tục cấp phép xây dựng"))
        assert (await _recv(ws, "ack", cid="m1"))["duplicate"] is False
        ack = await _recv(ws, "message", dir="out")
        ack_s = time.perf_counter() - began
        code = await _code_of(site.rig, visitor)
        assert code in ack["text"]  # the acknowledgement carries the ticket code
        t = await site.rig.web.deps.tickets.get(code)
        assert t is not None and t.channel == "webchat" and t.caller == visitor
        help_ = await _recv(ws, "message", dir="out")
        assert "gặp tổng đài viên" in help_["text"]  # the bot could not help: says how
        await ws.send(_msg("m2", "Gặp tổng đài viên"))
        queued = await _recv(ws, "message", dir="out")
        assert "chuyển đến tổng đài viên" in queued["text"]
        assert site.rig.routing.assigned_to(code) == "agent101"
    msgs = await site.rig.conv.messages(code)
    citizen = [m.body for m in msgs if m.direction is Direction.IN]
    assert citizen == ["Cho tôi hỏi về thủ tục cấp phép xây dựng", "Gặp tổng đài viên"]
    print(f"\nwebchat: message to acknowledgement on the socket {ack_s * 1000:.0f} ms")


async def test_given_the_same_message_sent_twice_then_it_is_stored_once(site: Site) -> None:
    async with await site.connect() as ws:
        _, visitor, _ = await _hello(ws)
        await ws.send(_msg("same-1", "Xin chào"))
        assert (await _recv(ws, "ack", cid="same-1"))["duplicate"] is False
        await ws.send(_msg("same-1", "Xin chào"))  # a retry after a lost ack
        assert (await _recv(ws, "ack", cid="same-1"))["duplicate"] is True
        code = await _code_of(site.rig, visitor)
        await _recv(ws, "message", dir="out")  # the acknowledgement: processed
    ins = [m for m in await site.rig.conv.messages(code) if m.direction is Direction.IN]
    assert len(ins) == 1
    assert await site.rig.journal.count(Channel.WEBCHAT) == 1


async def test_given_a_visitor_away_when_an_agent_replies_then_they_get_it_on_return(
    site: Site,
) -> None:
    async with await site.connect() as ws:
        token, visitor, _ = await _hello(ws)
        await ws.send(_msg("a1", "Gặp tổng đài viên"))
        code = await _code_of(site.rig, visitor)
        await _recv(ws, "message", dir="out")
    # the visitor closed the page; the agent answers
    reply = await site.rig.outbox.reply(
        code, "Chào anh, tôi là tổng đài viên.", author_id="agent101"
    )

    async def waiting() -> bool:
        m = next(x for x in await site.rig.conv.messages(code) if x.id == reply.id)
        return m.delivery is Delivery.PENDING and m.attempts >= 1 and m.delivery_error is not None

    await _until(waiting)  # tried, nobody there: kept pending with the reason
    async with await site.connect() as ws:
        _, again, history = await _hello(ws, token)
        assert again == visitor  # the same conversation back
        assert any(h["dir"] == "in" and h["text"] == "Gặp tổng đài viên" for h in history)
        pushed = await _recv(ws, "message", text="Chào anh, tôi là tổng đài viên.")
        assert pushed["dir"] == "out" and pushed["author"] == "staff"

        async def sent() -> bool:
            m = next(x for x in await site.rig.conv.messages(code) if x.id == reply.id)
            return m.delivery is Delivery.SENT

        await _until(sent)
        # a reply while the visitor is here goes at once
        began = time.perf_counter()
        await site.rig.outbox.reply(code, "Anh cần hỏi gì ạ?", author_id="agent101")
        await _recv(ws, "message", text="Anh cần hỏi gì ạ?")
        live_s = time.perf_counter() - began
    print(f"\nwebchat: agent's reply on the visitor's socket {live_s * 1000:.0f} ms")


async def test_given_two_tabs_then_each_sees_the_others_messages(site: Site) -> None:
    async with await site.connect() as one:
        token, visitor, _ = await _hello(one)
        async with await site.connect() as two:
            await _hello(two, token)
            await one.send(_msg("t1", "Tin từ tab một"))
            echoed = await _recv(two, "message", dir="in")
            assert echoed["text"] == "Tin từ tab một" and echoed["key"] == "t1"


async def test_given_a_forged_token_then_the_socket_closes_and_nothing_is_stored(
    site: Site,
) -> None:
    async with await site.connect() as ws:
        token, visitor, _ = await _hello(ws)
    forged = [
        "A" * 16 + "." + "0" * 32,  # well-formed, wrong MAC
        token[:-1] + ("0" if token[-1] != "0" else "1"),  # one character changed
        visitor,  # the bare visitor id (what an agent sees)
        {"$ne": None},
        "x" * 5000,
    ]
    for bad in forged:
        async with await site.connect() as ws:
            await ws.send(json.dumps({"type": "hello", "token": bad}))
            err = json.loads(await ws.recv())
            assert err["type"] == "error" and err["code"] in ("bad_token", "bad_frame")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code in (4401, 1008)
    assert await site.rig.journal.count() == 0


async def test_given_garbage_frames_then_each_gets_an_error_and_the_socket_lives_on(
    site: Site,
) -> None:
    async with await site.connect() as ws:
        _, visitor, _ = await _hello(ws)
        for frame, code in [
            ("{not json", "bad_json"),
            ("[1, 2, 3]", "bad_frame"),
            ('"text"', "bad_frame"),
            (json.dumps({"type": "message", "cid": "../../etc", "text": "x"}), "bad_frame"),
            (json.dumps({"type": "message", "cid": "c1", "text": 42}), "bad_frame"),
            (json.dumps({"type": "message", "cid": "c1", "text": "   "}), "empty"),
            (json.dumps({"type": "message", "cid": "c1", "text": "x" * 2001}), "too_long"),
            (json.dumps({"type": "delete_everything"}), "bad_frame"),
            ("[" * 100_00, "bad_json"),
        ]:
            await ws.send(frame)
            err = await _recv(ws, "error")
            assert err["code"] == code, frame[:40]
            assert err["message"]  # said in words, for the visitor
        await ws.send(b"\x00\x01binary")
        assert (await _recv(ws, "error"))["code"] == "bad_frame"
        await ws.send(_msg("ok-1", "Vẫn nói chuyện được"))
        assert (await _recv(ws, "ack", cid="ok-1"))["duplicate"] is False
    assert await site.rig.journal.count() == 1


async def test_given_an_oversize_frame_then_the_socket_closes_1009_and_nothing_is_stored(
    site: Site,
) -> None:
    for size in (100_000, 1 << 20):  # over max_frame_bytes; over the server's frame limit
        async with await site.connect() as ws:
            await _hello(ws)
            await ws.send(_msg("big", "x" * size))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert await site.rig.journal.count() == 0


async def test_given_a_foreign_origin_then_the_handshake_is_refused(site: Site) -> None:
    for origin in ("https://evil.example", "null", "https://portal.example.evil.example"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await site.connect(origin)
        assert refused.value.response.status_code == 403
    # this site itself and the configured portal are allowed
    async with await site.connect(f"http://127.0.0.1:{site.port}") as ws:
        await _hello(ws)
    async with await site.connect(PORTAL) as ws:
        await _hello(ws)


async def test_given_a_flood_then_the_visitor_is_rate_limited(strict: Site) -> None:
    async with await strict.connect() as ws:
        _, visitor, _ = await _hello(ws)
        for i in range(3):
            await ws.send(_msg(f"f{i}", f"tin {i}"))
            assert (await _recv(ws, "ack", cid=f"f{i}"))["duplicate"] is False
        await ws.send(_msg("f3", "tin 3"))
        err = await _recv(ws, "error", cid="f3")
        assert err["code"] == "rate_limited" and err["retry_after"] > 0
        # a new visitor from the same address still may write (the address limit is wider)
        async with await strict.connect() as other:
            await _hello(other)
            await other.send(_msg("o1", "tin khác"))
            assert (await _recv(other, "ack", cid="o1"))["duplicate"] is False
    assert await strict.rig.journal.count() == 4


async def test_given_a_honeypot_filled_then_it_is_acknowledged_and_not_kept(site: Site) -> None:
    async with await site.connect() as ws:
        await _hello(ws)
        await ws.send(_msg("h1", "Mua thuốc giá rẻ", website="http://spam.example"))
        assert (await _recv(ws, "ack", cid="h1"))["duplicate"] is False
    assert await site.rig.journal.count() == 0


async def test_the_http_fallback_posts_and_reads_with_the_same_rules(site: Site) -> None:
    async with site.http() as c:
        r = await c.post("/chat/messages", json={"token": None, "cid": "p1", "text": "Qua HTTP"})
        assert r.status_code == 200, r.text
        token, visitor = r.json()["token"], r.json()["visitor"]
        code = await _code_of(site.rig, visitor)
        r = await c.post("/chat/messages", json={"token": token, "cid": "p1", "text": "Qua HTTP"})
        assert r.json()["duplicate"] is True

        async def has_ack() -> bool:
            got = await c.get("/chat/messages", headers={"X-Visitor-Token": token})
            return any(code in m["text"] for m in got.json()["messages"] if m["dir"] == "out")

        await _until(has_ack)
        cases = [
            ({"token": "A" * 16 + "." + "0" * 32, "cid": "p2", "text": "x"}, {}, 401),
            ({"token": token, "cid": "p3", "text": "x"}, {"origin": "https://evil.example"}, 403),
            ({"token": token, "cid": "p4", "text": "x" * 20_000}, {}, 413),
        ]
        for body, headers, status in cases:
            r = await c.post("/chat/messages", json=body, headers=headers)
            assert r.status_code == status and r.json()["error"]["message"]
        r = await c.post(
            "/chat/messages", content=b"{oops", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["id"] == "bad_json"
        assert (await c.get("/chat/messages")).status_code == 401
    assert await site.rig.journal.count() == 1


async def test_the_chat_page_may_be_framed_by_the_portal_only_and_loads_no_inline_script(
    site: Site,
) -> None:
    async with site.http() as c:
        page = await c.get("/chat")
        csp = page.headers["content-security-policy"]
        assert f"frame-ancestors 'self' {PORTAL};" in csp and "script-src 'self';" in csp
        assert "x-frame-options" not in page.headers  # the CSP says who may frame it
        assert (await c.get("/login")).headers["x-frame-options"] == "DENY"  # others: nobody
        assert "<script>" not in page.text and 'src="/chat/chat.js"' in page.text
        js = await c.get("/chat/widget.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith(
            "application/javascript"
        )
        assert (await c.get("/chat/../app.py")).status_code == 404
        assert (await c.get("/chat/nothing.js")).status_code == 404


async def test_given_nobody_on_duty_when_a_visitor_asks_for_an_agent_then_a_message_is_left(
    nobody: Site,
) -> None:
    async with await nobody.connect() as ws:
        _, visitor, _ = await _hello(ws)
        await ws.send(_msg("n1", "Gặp tổng đài viên"))
        code = await _code_of(nobody.rig, visitor)
        await _recv(ws, "message", dir="out")  # the code
        offline = await _recv(ws, "message", dir="out")
        assert "không có tổng đài viên" in offline["text"].lower() and code in offline["text"]
    t = await nobody.rig.web.deps.tickets.get(code)
    assert t is not None and t.outcome is Outcome.MESSAGE_LEFT


async def test_given_a_visitor_whose_network_drops_then_the_socket_is_forgotten(
    site: Site,
) -> None:
    ws = await site.connect()
    token, visitor, _ = await _hello(ws)
    await ws.send(_msg("d1", "Xin chào"))
    await _recv(ws, "ack", cid="d1")
    code = await _code_of(site.rig, visitor)
    assert site.rig.chat.hub.connected(visitor)
    ws.transport.abort()  # no closing handshake: the network went away

    async def forgotten() -> bool:
        return not site.rig.chat.hub.connected(visitor)

    await _until(forgotten)
    async with await site.connect() as again:
        _, same, history = await _hello(again, token)
        assert same == visitor and history[0]["text"] == "Xin chào"
        await site.rig.outbox.reply(code, "Chúng tôi vẫn ở đây", author_id="agent101")
        await _recv(again, "message", text="Chúng tôi vẫn ở đây")


async def test_given_a_name_and_a_phone_then_the_agent_sees_them(site: Site) -> None:
    async with await site.connect() as ws:
        _, visitor, _ = await _hello(ws)
        await ws.send(_msg("r1", "Xin gọi lại", name="Nguyễn Thị Lan", reach="0905 123 456"))
        await _recv(ws, "ack", cid="r1")
        code = await _code_of(site.rig, visitor)
        await _recv(ws, "message", dir="out")
    t = await site.rig.web.deps.tickets.get(code)
    assert t is not None and t.contact_id is not None
    contact = await site.rig.conv.get_contact(t.contact_id)
    assert contact is not None and contact.name == "Nguyễn Thị Lan"
    first = (await site.rig.conv.messages(code))[0]
    assert first.meta["reach"] == "0905 123 456"


class _Away:
    """A journal and a history whose database is away."""

    async def append(self, channel: Channel, external_id: str, payload: bytes) -> bool:
        raise StoreError("database away")

    async def history(self, visitor: str) -> list[Any]:
        raise StoreError("database away")


async def test_given_the_store_away_then_the_visitor_is_told_to_send_again_later(
    site: Site,
) -> None:
    away = _Away()
    site.rig.chat.journal = away
    site.rig.chat.history = away.history
    async with await site.connect() as ws:
        token, _, history = await _hello(ws)  # the socket still opens
        assert history == []
        await ws.send(_msg("s1", "Có ai không?"))
        err = await _recv(ws, "error", cid="s1")
        assert err["code"] == "store_unavailable" and "gửi lại" in err["message"]
    async with site.http() as c:
        r = await c.post("/chat/messages", json={"token": token, "cid": "s2", "text": "x"})
        assert r.status_code == 503 and r.json()["error"]["id"] == "store_unavailable"
        r = await c.get("/chat/messages", headers={"X-Visitor-Token": token})
        assert r.status_code == 503 and r.json()["error"]["id"] == "store_unavailable"
