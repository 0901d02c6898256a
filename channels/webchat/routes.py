"""The web chat's routes: the page, the widget, the socket and its HTTP fallback.

    GET  /chat             the chat page (the portal embeds it: ``frame-ancestors`` lists the
                           allowed origins); /chat/chat.js, /chat/chat.css its assets
    GET  /chat/widget.js   one <script> tag for the portal: a button that opens /chat in a frame
    WS   /chat/ws          the conversation (below)
    POST /chat/messages    the same message as over the socket, for browsers without one
    GET  /chat/messages    the conversation so far (header ``X-Visitor-Token``)

The socket, frame by frame (JSON text; anything else is answered with an error frame)::

    → {"type": "hello", "token": "<token>" | null}       first, within 10 s
    ← {"type": "welcome", "token": "...", "visitor": "..."} then {"type": "history", ...}
    → {"type": "message", "cid": "<id>", "text": "...", "name"?, "reach"?, "website"?}
    → {"type": "typing"}                                  the visitor types (no answer)
    ← {"type": "typing", "who": "staff"}                  an agent types (``conversations.typing``)
    ← {"type": "ack", "cid": "...", "duplicate": bool}   journaled: it will not be lost
    ← {"type": "message", "key", "dir", "author", "text", "at"}   both ways, as stored/sent
    ← {"type": "error", "code": "...", "message": "<Vietnamese>"}

A browser's ``Origin`` must be this site or one of ``allowed_origins`` (otherwise 403 before
the handshake); a forged token closes the socket with 4401 (the page starts afresh); a frame
larger than ``max_frame_bytes`` closes it with 1009; messages are limited per visitor and per
client address; ``website`` is a honeypot (a bot fills it: acknowledged, not kept). Nothing a
visitor sends is ever put into HTML by the server; the page shows text as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from channels.webchat.events import event_id, event_payload
from channels.webchat.hub import Event, WebchatHub, message_event
from channels.webchat.limits import RateLimiter
from channels.webchat.settings import WebchatSettings
from channels.webchat.token import VisitorTokens
from channels.webhooks import clean, read_body
from conversations.model import EventJournal
from conversations.typing import Typing
from tickets.messages import Delivery, Direction, Message
from tickets.model import Channel
from tongdai.clock import utcnow
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
HELLO_TIMEOUT_S = 10.0
CID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
HOST_RE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
#: per client address: a whole office behind one NAT chats at once
IP_FACTOR = 10
ASSETS = {
    "chat.js": "application/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "widget.js": "application/javascript; charset=utf-8",
}
ERRORS = {
    "bad_json": "Tin nhắn không đọc được.",
    "bad_frame": "Tin nhắn không hợp lệ.",
    "bad_token": "Phiên trò chuyện không hợp lệ, xin tải lại trang.",
    "empty": "Tin nhắn trống.",
    "too_long": "Tin nhắn quá dài.",
    "too_large": "Tin nhắn quá lớn.",
    "rate_limited": "Bạn gửi quá nhanh, xin chờ một chút.",
    "store_unavailable": "Hệ thống đang bận, tin nhắn chưa được nhận; xin gửi lại sau.",
    "origin": "Trang này không được phép dùng khung chat.",
}

History = Callable[[str], Awaitable[Sequence[Message]]]


@dataclass
class Webchat:
    """What the web chat's routes need (``hotline.messaging`` builds it)."""

    cfg: WebchatSettings
    tokens: VisitorTokens
    hub: WebchatHub
    journal: EventJournal
    #: the messages of the visitor's latest conversation, oldest first
    history: History
    #: who types (the visitor's ``typing`` frames; the agents' typing comes back as frames)
    typing: Typing = field(default_factory=Typing)
    visitor_limits: RateLimiter = field(init=False)
    address_limits: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.visitor_limits = RateLimiter(self.cfg.rate_per_minute, self.cfg.burst)
        self.address_limits = RateLimiter(
            self.cfg.rate_per_minute * IP_FACTOR, self.cfg.burst * IP_FACTOR
        )


class Refused(Exception):
    def __init__(self, code: str, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.code, self.status, self.retry_after = code, status, retry_after

    def event(self, cid: str | None = None) -> Event:
        e: Event = {"type": "error", "code": self.code, "message": ERRORS[self.code]}
        if cid:
            e["cid"] = cid
        if self.retry_after is not None:
            e["retry_after"] = round(self.retry_after, 1)
        return e


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """A browser's ``Origin``: this site (same host), or a configured one; no header at all
    is not a browser (nothing to forge for), and passes."""
    if origin is None:
        return True
    o = origin.strip().lower().rstrip("/")
    if "*" in allowed or o in allowed:
        return True
    netloc = urlsplit(o).netloc if o.startswith(("http://", "https://")) else ""
    return bool(netloc) and host is not None and netloc == host.strip().lower()


def history_events(messages: Sequence[Message]) -> list[Event]:
    """What the visitor may see of the conversation: not replies still waiting for them
    (the outbox pushes those next) nor anything that was never delivered."""
    return [
        message_event(m)
        for m in messages[-200:]
        if m.direction is Direction.IN or m.delivery is Delivery.SENT
    ]


async def _keep(chat: Webchat, visitor: str, ip: str, doc: dict[str, Any]) -> Event:
    """Check one message and journal it; the ack, or ``Refused``."""
    cid = doc.get("cid")
    if not isinstance(cid, str) or not CID_RE.match(cid):
        raise Refused("bad_frame")
    text = doc.get("text")
    if not isinstance(text, str):
        raise Refused("bad_frame")
    text = clean(text).strip()
    if not text:
        raise Refused("empty")
    if len(text) > chat.cfg.max_message_chars:
        raise Refused("too_long")
    name, reach = doc.get("name"), doc.get("reach")
    name = (clean(name).strip()[:100] or None) if isinstance(name, str) else None
    reach = (clean(reach).strip()[:200] or None) if isinstance(reach, str) else None
    wait = chat.visitor_limits.take(visitor) or chat.address_limits.take(ip)
    if wait is not None:
        raise Refused("rate_limited", 429, wait)
    if doc.get("website"):  # the honeypot: only a bot fills a field nobody sees
        log.info("webchat: honeypot filled by visitor %s from %s: dropped", visitor, ip)
        return {"type": "ack", "cid": cid, "duplicate": False}
    payload = event_payload(visitor, cid, text, utcnow(), name=name, reach=reach)
    try:
        fresh = await chat.journal.append(Channel.WEBCHAT, event_id(visitor, cid), payload)
    except StoreError as exc:
        log.warning("webchat: message of %s not kept: %s", visitor, exc)
        raise Refused("store_unavailable", 503) from None
    return {"type": "ack", "cid": cid, "duplicate": not fresh}


def _json_frame(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused("bad_json") from None
    if not isinstance(doc, dict):
        raise Refused("bad_frame")
    return doc


async def _writer(ws: WebSocket, q: asyncio.Queue[Event | None]) -> None:
    while True:
        event = await q.get()
        if event is None:
            await ws.close(1000)
            return
        code = event.get("_close")
        if isinstance(code, int):
            await ws.close(code)
            return
        await ws.send_text(json.dumps(event, ensure_ascii=False))


def webchat_routes(chat: Webchat) -> list[BaseRoute]:
    cfg = chat.cfg
    page = (STATIC / "chat.html").read_bytes()
    assets = {name: (STATIC / name).read_bytes() for name in ASSETS}

    def host_of(headers: Any) -> str | None:
        host = headers.get("host")
        return host if isinstance(host, str) and HOST_RE.match(host) else None

    async def chat_page(request: Request) -> Response:
        host = host_of(request.headers)
        sockets = f" ws://{host} wss://{host}" if host else ""
        ancestors = " ".join(["'self'", *(o for o in cfg.allowed_origins if o != "*")])
        if "*" in cfg.allowed_origins:
            ancestors = "*"
        csp = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'{sockets}; frame-ancestors {ancestors}; form-action 'self'; "
            "base-uri 'none'"
        )
        return Response(
            page, media_type="text/html; charset=utf-8", headers={"content-security-policy": csp}
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return Response("not found", 404, media_type="text/plain")
        return Response(assets[name], media_type=ASSETS[name])

    async def socket(ws: WebSocket) -> None:
        if not origin_allowed(ws.headers.get("origin"), host_of(ws.headers), cfg.allowed_origins):
            log.warning("webchat: socket from origin %r refused", ws.headers.get("origin"))
            await ws.close(4403)  # before accept: the handshake gets 403
            return
        await ws.accept()
        ip = ws.client.host if ws.client else "-"
        visitor: str | None = None
        q: asyncio.Queue[Event | None] | None = None
        writer: asyncio.Task[None] | None = None
        try:
            visitor = await _hello(ws, chat)
            if visitor is None:
                return
            q = chat.hub.attach(visitor)
            writer = asyncio.create_task(_writer(ws, q), name=f"webchat-{visitor}")
            writer.add_done_callback(_settled)
            if chat.hub.on_return is not None:
                try:
                    await chat.hub.on_return(visitor)
                except StoreError as exc:
                    log.warning("webchat: waiting replies of %s not offered: %s", visitor, exc)
            while True:
                frame = await ws.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                reply = await _frame(chat, visitor, ip, frame)
                if reply:  # a typing frame has no answer
                    await q.put(reply)
                if "_close" in reply:
                    return
        except WebSocketDisconnect:
            return
        finally:
            if visitor is not None and q is not None:
                chat.hub.detach(visitor, q)
            if writer is not None:
                if q is not None and not writer.done():
                    with contextlib.suppress(asyncio.QueueFull):
                        q.put_nowait(None)
                    with contextlib.suppress(asyncio.TimeoutError, Exception):
                        await asyncio.wait_for(writer, 2.0)
                writer.cancel()

    async def _frame(
        chat: Webchat, visitor: str, ip: str, frame: MutableMapping[str, Any]
    ) -> Event:
        text = frame.get("text")
        if text is None:
            return Refused("bad_frame").event()
        if len(text) > cfg.max_frame_bytes:
            log.warning("webchat: frame of %d characters from %s: closed", len(text), visitor)
            return {**Refused("too_large").event(), "_close": 1009}
        cid: str | None = None
        try:
            doc = _json_frame(text)
            cid = doc.get("cid") if isinstance(doc.get("cid"), str) else None
            if doc.get("type") == "typing":  # not stored; throttled by the board
                chat.typing.citizen(visitor)
                return {}
            if doc.get("type") != "message":
                raise Refused("bad_frame")
            return await _keep(chat, visitor, ip, doc)
        except Refused as r:
            return r.event(cid)

    async def post_message(request: Request) -> Response:
        if not origin_allowed(
            request.headers.get("origin"), host_of(request.headers), cfg.allowed_origins
        ):
            return _refused(Refused("origin", 403))
        body = await read_body(request, cfg.max_frame_bytes)
        if body is None:
            return _refused(Refused("too_large", 413))
        try:
            doc = _json_frame(body.decode("utf-8", "replace"))
            token = doc.get("token")
            if token is None:
                visitor, token = chat.tokens.new()
            else:
                found = chat.tokens.visitor(token)
                if found is None:
                    raise Refused("bad_token", 401)
                visitor = found
            ip = request.client.host if request.client else "-"
            ack = await _keep(chat, visitor, ip, doc)
            chat.hub.mark_polled(visitor)
        except Refused as r:
            return _refused(r)
        return JSONResponse({**ack, "token": token, "visitor": visitor})

    async def get_messages(request: Request) -> Response:
        if not origin_allowed(
            request.headers.get("origin"), host_of(request.headers), cfg.allowed_origins
        ):
            return _refused(Refused("origin", 403))
        visitor = chat.tokens.visitor(request.headers.get("x-visitor-token"))
        if visitor is None:
            return _refused(Refused("bad_token", 401))
        chat.hub.mark_polled(visitor)
        try:
            if chat.hub.on_return is not None:
                await chat.hub.on_return(visitor)  # replies waiting: sent now, read next poll
            messages = await chat.history(visitor)
        except StoreError as exc:
            log.warning("webchat: history of %s unavailable: %s", visitor, exc)
            return _refused(Refused("store_unavailable", 503))
        return JSONResponse({"type": "history", "messages": history_events(messages)})

    return [
        Route("/chat", chat_page, methods=["GET"]),
        Route("/chat/messages", post_message, methods=["POST"]),
        Route("/chat/messages", get_messages, methods=["GET"]),
        WebSocketRoute("/chat/ws", socket),
        Route("/chat/{name}", asset, methods=["GET"]),
    ]


async def _hello(ws: WebSocket, chat: Webchat) -> str | None:
    """The first frame names the visitor (or asks for a new one); None: refused, closed."""
    try:
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            frame = await ws.receive()
    except TimeoutError:
        await ws.close(1008)
        return None
    if frame["type"] == "websocket.disconnect":
        return None
    text = frame.get("text")
    try:
        if text is None or len(text) > 1024:
            raise Refused("bad_frame")
        doc = _json_frame(text)
        if doc.get("type") != "hello":
            raise Refused("bad_frame")
    except Refused as r:
        await ws.send_text(json.dumps(r.event()))
        await ws.close(1008)
        return None
    token = doc.get("token")
    if token is None:
        visitor, token = chat.tokens.new()
    else:
        found = chat.tokens.visitor(token)
        if found is None:
            log.warning("webchat: forged or damaged visitor token refused")
            await ws.send_text(json.dumps(Refused("bad_token").event()))
            await ws.close(4401)
            return None
        visitor = found
    await ws.send_text(json.dumps({"type": "welcome", "token": token, "visitor": visitor}))
    try:
        history = history_events(await chat.history(visitor))
    except StoreError as exc:
        log.warning("webchat: history of %s unavailable: %s", visitor, exc)
        history = []
    await ws.send_text(json.dumps({"type": "history", "messages": history}, ensure_ascii=False))
    return visitor


def _settled(task: asyncio.Task[None]) -> None:
    """A socket's writer ended: a send to a socket already gone is expected, not an error."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("webchat: writer ended: %r", task.exception())


def _refused(r: Refused) -> Response:
    headers = {"retry-after": str(int(r.retry_after) + 1)} if r.retry_after is not None else None
    return JSONResponse(
        {"error": {"id": r.code, "message": ERRORS[r.code]}}, r.status, headers=headers
    )
