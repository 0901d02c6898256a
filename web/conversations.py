"""The agents' conversations (messages on every channel): pages and JSON API.

    GET  /console/conversations                  the agent's open conversations, the waiting
                                                 ones, per channel (supervisors: everyone's)
    GET  /console/conversations/{code}           one conversation: messages both ways, files,
                                                 the contact's tickets on every channel,
                                                 canned answers, the reply box
    GET  /console/conversations/{code}/files/{message}/{n}   an attachment (logged in only)
    POST /console/conversations/{code}/merge     supervisors: merge another contact into this
    GET  /api/conversations                      the lists as JSON (``?since=V&wait=S``: wait
                                                 up to S s for a change after version V)
    GET  /api/conversations/{code}/messages      the conversation (``?after=ID&wait=S``)
    POST /api/conversations/{code}/messages      {"text"}: a reply through ``Outbox.reply``
    POST /api/conversations/{code}/typing        the agent types (the web chat's visitor sees
                                                 it; ``conversations.typing``); the messages'
                                                 JSON says ``typing.citizen`` likewise
    GET  /api/canned                             the canned answers
    POST /api/canned, DELETE /api/canned/{id}    supervisors: add, change, remove one
    POST /api/contacts/merge                     {"keep", "merge"}: supervisors

Every route needs a login and the console permission (agents, supervisors, admins). A reply
is stored ``pending`` and delivered by the outbox; its status (pending, sent, failed and why)
shows on the message; a reply the platform's window no longer allows is refused up front
(409 ``reply_refused`` with the reason). Who holds a conversation comes from the ACD's
messaging side (``ConversationRouting.assigned_to``) when the engine has one, else from the
ticket's agent. Pages show what citizens typed as text only (autoescaped templates, the
script writes ``textContent``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm, User
from agencies.desk import ForwardDesk
from agencies.forwards import OPEN_STATES
from conversations.canned import CannedAnswers
from conversations.files import AttachmentStore
from conversations.inbox import Inbox
from conversations.model import ConversationRouting
from conversations.outbox import Outbox, ReplyRefused
from conversations.typing import Typing
from tickets.messages import Author, Contact, Message
from tickets.model import Status, Ticket
from tickets.store import ConversationStore
from web import errors as v
from web import privacy
from web.errors import ApiError
from web.render import back, form, render
from web.security import Principal, guard

P = Perm
MAX_WAIT_S = 25.0
MAX_LIST = 300


class ConversationFeed:
    """Versions that move when a message is stored or its delivery changes (the inbox's and
    the outbox's listeners), so pages can wait for a change (long polling) instead of asking
    again and again."""

    def __init__(self) -> None:
        self.version = 0
        self._of: dict[str, int] = {}
        self._changed = asyncio.Event()

    def on_message(self, m: Message) -> None:
        self.changed(m.ticket_code)

    def changed(self, code: str) -> None:
        """Something of ``code`` changed (a message, a transfer, resolved): pages look again."""
        self.version += 1
        self._of[code] = self.version
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def of(self, code: str | None) -> int:
        return self.version if code is None else self._of.get(code, 0)

    async def wait(self, since: int, code: str | None, timeout: float) -> int:
        """Until the version (of ``code``, or of everything) passes ``since``, or timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.of(code) <= since:
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._changed.wait()
        return self.of(code)


@dataclass
class ConversationDeps:
    """What the conversation pages need of the message channels (``hotline.messaging``)."""

    conv: ConversationStore
    outbox: Outbox
    canned: CannedAnswers
    files: AttachmentStore
    inbox: Inbox | None = None
    feed: ConversationFeed = field(default_factory=ConversationFeed)
    #: the web chat's typing board (None: no web chat, nobody's typing is shown)
    typing: Typing | None = None

    def __post_init__(self) -> None:
        if self.typing is not None and self.feed.changed not in self.typing.to_agents:
            self.typing.to_agents.append(self.feed.changed)
        if self.feed.on_message not in self.outbox.listeners:
            self.outbox.listeners.append(self.feed.on_message)
        if self.inbox is not None and self.feed.on_message not in self.inbox.listeners:
            self.inbox.listeners.append(self.feed.on_message)

    @property
    def routing(self) -> ConversationRouting | None:
        return self.inbox.routing if self.inbox is not None else None

    def holder(self, t: Ticket) -> str | None:
        """The agent holding the conversation now."""
        routing = self.routing
        if routing is not None:
            try:
                return routing.assigned_to(t.code)
            except Exception:  # the ACD's view is a nicety; the ticket still knows
                return t.agent
        return t.agent


def deps_of(request: Request) -> ConversationDeps:
    found: ConversationDeps | None = getattr(request.app.state.deps, "conversations", None)
    if found is None:
        raise ApiError(503, "no_channels", "the message channels are not running")
    return found


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def message_json(code: str, m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "dir": m.direction.value,
        "author": m.author.value,
        "author_id": m.author_id,
        "channel": m.channel,
        "text": m.body,
        "at": _iso(m.at),
        "delivery": m.delivery.value,
        "delivery_error": m.delivery_error,
        #: how the citizen asked to be reached (the web chat's optional field), as typed
        "reach": m.meta.get("reach"),
        "attachments": [
            {
                "name": a.filename,
                "type": a.content_type,
                "size": a.size,
                "url": f"/console/conversations/{code}/files/{m.id}/{i}",
            }
            for i, a in enumerate(m.attachments)
        ],
    }


def contact_json(c: Contact | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "id": c.id,
        "name": c.name,
        "identities": [{"kind": i.kind, "value": i.value} for i in c.identities],
    }


def _summary(d: ConversationDeps, t: Ticket, last: Message | None) -> dict[str, Any]:
    return {
        "code": t.code,
        "channel": t.channel,
        # a complaint about officials: lists never show who (web.privacy)
        "caller": None if t.confidential else t.caller,
        "contact_id": None if t.confidential else t.contact_id,
        "subject": t.subject,
        "status": t.status.value,
        "queue": t.queue,
        "agent": d.holder(t),
        "started_at": _iso(t.started_at),
        "queued_at": _iso(t.queued_at),
        "last": {"text": last.body[:200], "at": _iso(last.at), "dir": last.direction.value}
        if last is not None
        else None,
    }


async def _lists(d: ConversationDeps, user: User) -> dict[str, Any]:
    """Mine (held by the user's agent), waiting (queued, nobody holds it), others."""
    mine: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    everyone = user.can(P.TICKETS_WRITE_ALL)
    for t in (await d.conv.open_conversations())[-MAX_LIST:]:
        msgs = await d.conv.messages(t.code)
        row = _summary(d, t, msgs[-1] if msgs else None)
        if row["agent"] and row["agent"] == user.agent_id:
            mine.append(row)
        elif row["agent"] is None and t.queued_at is not None:
            waiting.append(row)
        elif everyone or row["agent"] is None:
            others.append(row)
    per_channel: dict[str, dict[str, int]] = {}
    for name, rows in (("mine", mine), ("waiting", waiting), ("others", others)):
        for r in rows:
            per_channel.setdefault(r["channel"], {"mine": 0, "waiting": 0, "others": 0})[name] += 1
    return {"mine": mine, "waiting": waiting, "others": others, "per_channel": per_channel}


async def ticket_of(request: Request, code: str) -> Ticket:
    t = await request.app.state.deps.tickets.get(code)
    if t is None or t.channel == "voice":
        raise ApiError(404, "not_found", f"no conversation {code}", {"code": code})
    assert isinstance(t, Ticket)
    return t


async def _conversation(
    d: ConversationDeps, request: Request, t: Ticket, after: int = 0
) -> dict[str, Any]:
    # the version first: a change landing while we read is then newer than what we answer
    version = d.feed.of(t.code)
    msgs = await d.conv.messages(t.code)
    contact = await d.conv.get_contact(t.contact_id) if t.contact_id is not None else None
    earlier = await d.conv.contact_tickets(contact.id, 50) if contact is not None else []
    return {
        "ticket": {**_summary(d, t, msgs[-1] if msgs else None), "outcome": t.outcome},
        "contact": contact_json(contact),
        "tickets": [
            {
                "code": e.code,
                "channel": e.channel,
                "started_at": _iso(e.started_at),
                "status": e.status.value,
                "subject": e.subject,
            }
            for e in earlier
        ],
        "messages": [message_json(t.code, m) for m in msgs if m.id > after],
        "typing": {"citizen": d.typing is not None and d.typing.citizen_typing(t.code)},
        "version": version,
    }


def may_reply(d: ConversationDeps, user: User, t: Ticket) -> bool:
    if user.can(P.TICKETS_WRITE_ALL):
        return True
    holder = d.holder(t)
    return holder is None or holder == user.agent_id


def _wait_s(request: Request) -> int:
    return v.integer(request.query_params.get("wait"), "wait", default=0, lo=0, hi=int(MAX_WAIT_S))


async def send_reply(
    d: ConversationDeps, request: Request, user: User, t: Ticket, text: str
) -> Message:
    if t.status not in (Status.NEW, Status.IN_PROGRESS):
        raise ApiError(409, "reply_refused", "Phiếu đã giải quyết hoặc đã đóng.")
    if not may_reply(d, user, t):
        raise ApiError(403, "forbidden", "this conversation is held by another agent")
    who = user.agent_id or user.name
    try:
        msg = await d.outbox.reply(t.code, text, author=Author.AGENT, author_id=who)
    except ReplyRefused as exc:
        raise ApiError(409, "reply_refused", str(exc)) from None
    routing = d.routing
    if routing is not None:
        routing.agent_replied(t.code, who)
    elif t.agent is None and user.agent_id is not None:
        # no ACD for messages: the first agent who answers holds the conversation
        await request.app.state.deps.tickets.update(t.code, agent=user.agent_id)
    return msg


# -- JSON API --------------------------------------------------------------------------------


@guard(P.CONSOLE, api=True)
async def api_list(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    wait = _wait_s(request)
    since = v.integer(request.query_params.get("since"), "since", default=-1, lo=-1, hi=2**62)
    if wait and since >= 0:
        await d.feed.wait(since, None, wait)
    version = d.feed.version  # before reading: a change meanwhile answers the next poll
    return JSONResponse({**await _lists(d, p.user), "version": version})


@guard(P.CONSOLE, api=True)
async def api_messages(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    code = v.text(request.path_params["code"], "code", max_len=32)
    if request.method == "POST":
        t = await ticket_of(request, code)
        body = await v.json_object(request)
        v.no_unknown(body, {"text"})
        text = v.text(body.get("text"), "text", max_len=20_000, multiline=True)
        msg = await send_reply(d, request, p.user, t, text)
        return JSONResponse(message_json(code, msg), 201)
    after = v.integer(request.query_params.get("after"), "after", default=0, lo=0, hi=2**62)
    since = v.integer(request.query_params.get("since"), "since", default=-1, lo=-1, hi=2**62)
    wait = _wait_s(request)
    t = await ticket_of(request, code)
    if wait and since >= 0:
        await d.feed.wait(since, code, wait)
        t = await ticket_of(request, code)
    data = await _conversation(d, request, t, after)
    return JSONResponse(await privacy.conversation_view(request, p, t, data))


@guard(P.CONSOLE, api=True)
async def api_typing(request: Request, p: Principal) -> Response:
    """The agent types in the reply box: the web chat's visitor is told (throttled; other
    channels have no typing, and nothing is stored). 204 either way."""
    d = deps_of(request)
    t = await ticket_of(request, v.text(request.path_params["code"], "code", max_len=32))
    if not may_reply(d, p.user, t):
        raise ApiError(403, "forbidden", "this conversation is held by another agent")
    if d.typing is not None and t.channel == "webchat" and t.caller:
        d.typing.agent(t.code, t.caller)
    return Response(status_code=204)


@guard(P.CONSOLE, api=True)
async def api_canned(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    answers = await d.canned.list(request.query_params.get("category") or None)
    return JSONResponse(
        {"canned": [{"id": c.id, "title": c.title, "body": c.body, "category": c.category}
                    for c in answers]}
    )  # fmt: skip


@guard(P.TICKETS_WRITE_ALL, api=True)
async def api_canned_save(request: Request, p: Principal) -> Response:
    """Supervisors add (no ``id``) or change (``id``) a canned answer."""
    d = deps_of(request)
    body = await v.json_object(request)
    v.no_unknown(body, {"id", "title", "body", "category"})
    title = v.text(body.get("title"), "title", max_len=200)
    text = v.text(body.get("body"), "body", max_len=4000, multiline=True)
    category = v.opt_text(body.get("category"), "category", max_len=64)
    cid = body.get("id")
    if cid is not None and (not isinstance(cid, int) or isinstance(cid, bool)):
        raise v.invalid("id", "expected a whole number")
    try:
        saved = await d.canned.save(title, text, by=p.user.name, category=category, id=cid)
    except ValueError as exc:
        raise v.invalid("title/body", str(exc)) from None
    except KeyError:
        raise ApiError(404, "not_found", f"no canned answer {cid}") from None
    return JSONResponse({"id": saved}, 201 if cid is None else 200)


@guard(P.TICKETS_WRITE_ALL, api=True)
async def api_canned_delete(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    cid = v.integer(request.path_params["id"], "id", default=0, lo=1, hi=2**62)
    await d.canned.delete(cid)
    return Response(status_code=204)


async def _merge(d: ConversationDeps, keep: Any, merge: Any) -> Contact:
    if not isinstance(keep, int) or not isinstance(merge, int) or isinstance(keep, bool):
        raise v.invalid("keep/merge", "expected contact ids (whole numbers)")
    if keep == merge:
        raise v.invalid("merge", "a contact cannot be merged into itself")
    for cid in (keep, merge):
        found = await d.conv.get_contact(cid)
        if found is None or found.merged_into is not None:
            raise ApiError(404, "unknown_contact", f"no contact {cid}", {"contact": cid})
    return await d.conv.merge_contacts(keep, merge)


@guard(P.TICKETS_WRITE_ALL, api=True)
async def api_merge(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    body = await v.json_object(request)
    v.no_unknown(body, {"keep", "merge"})
    merged = await _merge(d, body.get("keep"), body.get("merge"))
    return JSONResponse(contact_json(merged))


# -- pages -----------------------------------------------------------------------------------


@guard(P.CONSOLE, api=False)
async def list_page(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    version = d.feed.version
    lists = await _lists(d, p.user)
    return render(request, "conversations.html", {**lists, "version": version})


@guard(P.CONSOLE, api=False)
async def view_page(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    code = v.text(request.path_params["code"], "code", max_len=32)
    t = await ticket_of(request, code)
    data = await privacy.conversation_view(request, p, t, await _conversation(d, request, t))
    canned = await d.canned.list(t.category)
    return render(
        request,
        "conversation.html",
        {
            "c": data,
            "canned": canned,
            "may_reply": may_reply(d, p.user, t),
            "may_merge": p.user.can(P.TICKETS_WRITE_ALL),
            "forward": await _forward_of(request, code),
            **await _transfer_choices(request, d.holder(t)),
        },
    )


async def _forward_of(request: Request, code: str) -> dict[str, Any] | None:
    """The ticket's forward to an agency that decides how it may be resolved, if any."""
    desk: ForwardDesk | None = getattr(request.app.state, "desk", None)
    fwd = await desk.current(code) if desk is not None else None
    if desk is None or fwd is None:
        return None
    return {
        "agency": desk.book.name(fwd.agency_id),
        "state": fwd.state.value,
        "open": fwd.state in OPEN_STATES,
        "due_at": fwd.due_at,
        "answer": fwd.answer if fwd.replied_at is None else None,
    }


async def _transfer_choices(request: Request, holder: str | None) -> dict[str, list[str]]:
    """The queues and the colleagues (not the holder) the transfer form offers: the ACD's,
    else (no call distribution state) the agents of the accounts."""
    try:
        state = request.app.state.deps.control.state()
        queues = [q.name for q in state.queues]
        agents = [a.id for a in state.agents]
    except Exception:  # the ACD is away: the page still shows
        queues, agents = [], []
    if not agents:
        users = await request.app.state.auth.users()
        agents = sorted({u.agent_id for u in users if u.agent_id})
    return {"queues": queues, "agents": [a for a in agents if a != holder]}


@guard(P.CONSOLE, api=False)
async def attachment(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    code = v.text(request.path_params["code"], "code", max_len=32)
    mid = v.integer(request.path_params["message"], "message", default=0, lo=1, hi=2**62)
    n = v.integer(request.path_params["n"], "n", default=0, lo=0, hi=1000)
    msg = next((m for m in await d.conv.messages(code) if m.id == mid), None)
    if msg is None or n >= len(msg.attachments):
        raise ApiError(404, "not_found", "no such attachment")
    a = msg.attachments[n]
    if not a.path:
        if a.url and a.url.startswith(("https://", "http://")):
            return RedirectResponse(a.url, 303)  # hosted by the platform
        raise ApiError(404, "not_found", "the file was not kept")
    try:
        path = d.files.path_of(a)
    except ValueError:
        raise ApiError(404, "not_found", "no such attachment") from None
    if not path.is_file():
        raise ApiError(404, "not_found", "the file is gone")
    # never rendered inline as HTML: a download with the type the allow-list accepted
    return FileResponse(
        path, media_type=a.content_type, filename=a.filename, content_disposition_type="attachment"
    )


@guard(P.TICKETS_WRITE_ALL, api=False)
async def merge_page(request: Request, p: Principal) -> Response:
    d = deps_of(request)
    code = v.text(request.path_params["code"], "code", max_len=32)
    t = await ticket_of(request, code)
    data = await form(request)
    target = f"/console/conversations/{code}"
    raw = data.get("merge", "").strip()
    if t.contact_id is None or not raw.isdigit():
        return back(target, err="invalid_input")
    try:
        await _merge(d, t.contact_id, int(raw))
    except ApiError as exc:
        return back(target, err=exc.error_id)
    return back(target, ok="merged")


def routes() -> list[BaseRoute]:
    return [
        Route("/console/conversations", list_page, methods=["GET"]),
        Route("/console/conversations/{code}", view_page, methods=["GET"]),
        Route("/console/conversations/{code}/files/{message}/{n}", attachment, methods=["GET"]),
        Route("/console/conversations/{code}/merge", merge_page, methods=["POST"]),
        Route("/api/conversations", api_list, methods=["GET"]),
        Route("/api/conversations/{code}/messages", api_messages, methods=["GET", "POST"]),
        Route("/api/conversations/{code}/typing", api_typing, methods=["POST"]),
        Route("/api/canned", api_canned, methods=["GET"]),
        Route("/api/canned", api_canned_save, methods=["POST"]),
        Route("/api/canned/{id}", api_canned_delete, methods=["DELETE"]),
        Route("/api/contacts/merge", api_merge, methods=["POST"]),
    ]
