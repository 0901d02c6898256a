"""Resolving and transferring a conversation from the agent's console: pages and JSON API.

    POST /console/conversations/{code}/resolve     form: ``answer`` (optional), ``note``
    POST /console/conversations/{code}/transfer    form: ``to`` = ``queue:<name>`` or
                                                   ``agent:<id>``
    POST /api/conversations/{code}/resolve         {"answer"?, "note"?}
    POST /api/conversations/{code}/transfer        {"queue"} or {"agent"}

Who may: whoever may answer the conversation (``web.conversations``: its holder, nobody's,
or a supervisor) and, for resolving, change the ticket (``web.ticket_actions.may_write``).

Resolve follows the ticket page's rule (``TicketActions``: new or in progress to resolved,
in the ticket's history with who and the note, the ACD frees the agent's capacity) and the
back office's (``agencies.desk``):

- a ticket waiting for an agency's answer (forward ``forwarded``/``extended``) is not
  resolved here: 409 ``forward_open`` says which agency and by when;
- a ticket whose agency answered and whose answer was not given back yet is resolved the
  back office's way (``ForwardDesk.resolve``): the agency's answer (or the agent's wording
  of it, ``answer``) goes to the citizen on the ticket's channel, marked as the agency's;
- otherwise the optional ``answer`` is sent first (``Outbox.reply``, the same checks as a
  reply: a platform window that has closed refuses it, 409 ``reply_refused``, and the ticket
  stays open: nothing is lost), then the ticket is resolved.

Transfer hands the conversation to another queue (back in line) or to a named colleague
through the ACD's messaging side (``ConversationRouting.transfer``; the ACD writes the queue
and agent on the ticket). A colleague who cannot take it now (logged out, paused, full) or
an unknown queue is a 409 ``transfer_refused`` with the ACD's reason; without an ACD for
messages, 409 ``no_acd``. The move is stamped in the ticket's notes. Pages answer with a
redirect carrying ``?ok=``/``?err=`` (``web.labels``).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm, User
from acd.agent import AcdError
from agencies.desk import ForwardDesk
from agencies.forwards import OPEN_STATES, ForwardState
from tickets.model import Status, Ticket
from tongdai.clock import VN_TZ
from web import back_office as bo
from web import conversations as cv
from web import errors as v
from web.errors import ApiError
from web.render import back, form
from web.security import Principal, guard
from web.ticket_actions import Change, TicketActions, may_write

P = Perm
MAX_ANSWER = 8000
MAX_NOTE = 500
_OPEN = (Status.NEW, Status.IN_PROGRESS)


def _desk(request: Request) -> ForwardDesk | None:
    desk: ForwardDesk | None = getattr(request.app.state, "desk", None)
    return desk


def _check_open(d: cv.ConversationDeps, user: User, t: Ticket) -> None:
    if t.status not in _OPEN:
        raise ApiError(409, "ticket_done", "Phiếu đã giải quyết hoặc đã đóng.", {"code": t.code})
    if not cv.may_reply(d, user, t):
        raise ApiError(403, "forbidden", "this conversation is held by another agent")


async def resolve(
    request: Request, user: User, code: str, answer: str | None, note: str | None
) -> Ticket:
    """Resolve the conversation ``code`` for ``user`` (rules in the module's docstring)."""
    d = cv.deps_of(request)
    t = await cv.ticket_of(request, code)
    _check_open(d, user, t)
    if not may_write(user, t):
        raise ApiError(403, "forbidden", "this ticket is not yours to change", {"code": code})
    actions: TicketActions = request.app.state.actions
    desk = _desk(request)
    fwd = await desk.current(code) if desk is not None else None
    if desk is not None and fwd is not None and fwd.state in OPEN_STATES:
        agency = desk.book.name(fwd.agency_id)
        due = fwd.due_at.astimezone(VN_TZ).strftime("%d/%m/%Y")
        raise ApiError(
            409,
            "forward_open",
            f"Phiếu đang chờ {agency} trả lời (hạn {due}): chưa giải quyết được.",
            {"code": code, "agency": fwd.agency_id},
        )
    if (
        desk is not None
        and fwd is not None
        and fwd.state is ForwardState.ANSWERED
        and fwd.replied_at is None
    ):
        # the back office's way: the agency's answer back to the citizen, then resolved
        await bo.run(desk.resolve(code, by=user.name, text=answer))
        if actions.ended is not None:
            actions.ended(code)
        done = await actions.get(code)
        actions.hub.ticket_changed(code, done.status.value, done.agent, done.category)
        d.feed.changed(code)
        return done
    if answer:
        await cv.send_reply(d, request, user, t, answer)
    done = await actions.apply(
        user, code, Change(action="resolve", note=note or "Giải quyết trên hội thoại")
    )
    d.feed.changed(code)
    return done


async def transfer(
    request: Request, user: User, code: str, *, queue: str | None, agent: str | None
) -> None:
    """Hand the conversation to ``queue`` or to the colleague ``agent`` (exactly one)."""
    if (queue is None) == (agent is None):
        raise v.invalid("queue/agent", "a transfer goes to a queue or to an agent (one of them)")
    d = cv.deps_of(request)
    t = await cv.ticket_of(request, code)
    _check_open(d, user, t)
    routing = d.routing
    if routing is None:
        raise ApiError(409, "no_acd", "no call distribution runs for conversations")
    if agent is not None and agent == d.holder(t):
        raise ApiError(409, "transfer_refused", f"{agent} already holds this conversation")
    try:
        routing.transfer(code, queue=queue, agent=agent)
    except AcdError as exc:
        raise ApiError(409, "transfer_refused", str(exc), {"code": code}) from None
    actions: TicketActions = request.app.state.actions
    where = f"tổng đài viên {agent}" if agent is not None else f"hàng chờ {queue}"
    fresh = await actions.get(code)
    stamped = actions.stamp(user, f"Chuyển hội thoại cho {where}.", fresh.notes)
    await actions.tickets.update(code, notes=stamped)
    fresh = await actions.get(code)
    actions.hub.ticket_changed(code, fresh.status.value, d.holder(fresh), fresh.category)
    d.feed.changed(code)


def _code(request: Request) -> str:
    return v.text(request.path_params["code"], "code", max_len=32)


# -- JSON API --------------------------------------------------------------------------------


@guard(P.CONSOLE, api=True)
async def api_resolve(request: Request, p: Principal) -> Response:
    body = await v.json_object(request)
    v.no_unknown(body, {"answer", "note"})
    answer = v.opt_text(body.get("answer"), "answer", max_len=MAX_ANSWER, multiline=True)
    note = v.opt_text(body.get("note"), "note", max_len=MAX_NOTE, multiline=True)
    done = await resolve(request, p.user, _code(request), answer, note)
    return JSONResponse({"code": done.code, "status": done.status.value})


@guard(P.CONSOLE, api=True)
async def api_transfer(request: Request, p: Principal) -> Response:
    body = await v.json_object(request)
    v.no_unknown(body, {"queue", "agent"})
    queue = v.opt_text(body.get("queue"), "queue", max_len=64)
    agent = v.opt_text(body.get("agent"), "agent", max_len=64)
    code = _code(request)
    await transfer(request, p.user, code, queue=queue, agent=agent)
    d = cv.deps_of(request)
    t = await cv.ticket_of(request, code)
    return JSONResponse({"code": code, "agent": d.holder(t), "queue": t.queue})


# -- pages -----------------------------------------------------------------------------------


def _page(code: str) -> str:
    return f"/console/conversations/{quote(code)}"


def _field(data: dict[str, str], name: str, max_len: int) -> str | None:
    raw = (data.get(name) or "").replace("\r\n", "\n").strip()
    return v.opt_text(raw or None, name, max_len=max_len, multiline=True)


@guard(P.CONSOLE, api=False)
async def resolve_post(request: Request, p: Principal) -> Response:
    code = str(request.path_params["code"])[:32]
    data = await form(request)
    try:
        answer = _field(data, "answer", MAX_ANSWER)
        note = _field(data, "note", MAX_NOTE)
        await resolve(request, p.user, code, answer, note)
    except ApiError as exc:
        return back(_page(code), err=exc.error_id)
    return back(_page(code), ok="resolved")


@guard(P.CONSOLE, api=False)
async def transfer_post(request: Request, p: Principal) -> Response:
    code = str(request.path_params["code"])[:32]
    data = await form(request)
    kind, _, name = (data.get("to") or "").partition(":")
    try:
        if kind not in ("queue", "agent") or not name:
            raise v.invalid("to", "expected queue:<name> or agent:<id>")
        name = v.text(name, "to", max_len=64)
        await transfer(
            request,
            p.user,
            code,
            queue=name if kind == "queue" else None,
            agent=name if kind == "agent" else None,
        )
    except ApiError as exc:
        return back(_page(code), err=exc.error_id)
    # the conversation is someone else's now: back to the lists
    return back("/console/conversations", ok="transferred")


def routes() -> list[BaseRoute]:
    return [
        Route("/console/conversations/{code}/resolve", resolve_post, methods=["POST"]),
        Route("/console/conversations/{code}/transfer", transfer_post, methods=["POST"]),
        Route("/api/conversations/{code}/resolve", api_resolve, methods=["POST"]),
        Route("/api/conversations/{code}/transfer", api_transfer, methods=["POST"]),
    ]
