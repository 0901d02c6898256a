"""Back-office pages: forwarding from the ticket page (the centre) and the agency desk
(``/co-quan``: an agency account's own forwards, answer, ask for more time once, send back).
The rules live in ``agencies.desk``; refusals come back as ``?err=<id>`` (``web.labels``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm
from tickets.model import Ticket
from web import back_office as bo
from web import postal
from web.errors import ApiError
from web.render import back, form, render
from web.security import Principal, guard

P = Perm


async def forward_context(request: Request, p: Principal, ticket: Ticket) -> dict[str, Any]:
    """The ticket page's back-office part (empty for a role that does not forward)."""
    if not p.user.can(P.FORWARD):
        return {"forwards": [], "agencies": [], "suggested": []}
    desk = bo.desk_of(request)
    now = desk.clock()
    found = await desk.forwards.of_ticket(ticket.code)
    return {
        "forwards": [bo.forward_json(f, desk, now) for f in found],
        "agencies": list(desk.book),
        "suggested": [a.id for a in desk.book.for_category(ticket.category)],
    }


async def answer_callbacks(request: Request, p: Principal) -> list[dict[str, Any]]:
    """Agencies' answers to give back to callers by telephone (the agent console's list)."""
    if not p.user.can(P.FORWARD):
        return []
    desk = bo.desk_of(request)
    return [bo.forward_json(f, desk, desk.clock()) for f in await desk.forwards.callbacks()]


@guard(P.FORWARD, api=False)
async def callback_done_post(request: Request, p: Principal) -> Response:
    try:
        await bo.run(bo.desk_of(request).callback_done(bo.forward_id(request)))
    except ApiError as exc:
        return back("/console", err=exc.error_id)
    return back("/console", ok="callback_done")


def _ticket_page(code: str) -> str:
    return f"/tickets/{quote(code)}"


@guard(P.FORWARD, api=False)
async def forward_post(request: Request, p: Principal) -> Response:
    code = str(request.path_params["code"])[:32]
    data = await form(request)
    desk = bo.desk_of(request)
    try:
        agency = data.get("agency") or ""
        note = (data.get("note") or "").replace("\r\n", "\n")[:4000] or None
        await bo.run(desk.forward(code, agency, by=p.user.name, note=note))
    except ApiError as exc:
        return back(_ticket_page(code), err=exc.error_id)
    return back(_ticket_page(code), ok="forwarded")


@guard(P.FORWARD, api=False)
async def answer_back_post(request: Request, p: Principal) -> Response:
    code = str(request.path_params["code"])[:32]
    data = await form(request)
    desk = bo.desk_of(request)
    text = (data.get("text") or "").replace("\r\n", "\n")[:8000] or None
    try:
        await bo.run(desk.resolve(code, by=p.user.name, text=text))
    except ApiError as exc:
        return back(_ticket_page(code), err=exc.error_id)
    return back(_ticket_page(code), ok="answer_back")


@guard(P.AGENCY_DESK, api=False)
async def desk_page(request: Request, p: Principal) -> Response:
    desk = bo.desk_of(request)
    agency = bo.own_agency(p.user)
    found = await desk.forwards.listing(agency_id=agency)
    now = desk.clock()
    return render(
        request,
        "agency_desk.html",
        {
            "agency_name": desk.book.name(agency),
            "forwards": [bo.forward_json(f, desk, now) for f in found],
            "post_office": postal.is_post_office(request, p.user),
        },
    )


@guard(P.AGENCY_DESK, api=False)
async def desk_ticket(request: Request, p: Principal) -> Response:
    desk = bo.desk_of(request)
    code = str(request.path_params["code"])[:32]
    conv = getattr(desk.outbox, "conv", None)
    view = await bo.agency_view(desk, conv, bo.own_agency(p.user), code)
    return render(
        request,
        "agency_ticket.html",
        {**view, "agency_name": desk.book.name(p.user.agency_id)},
    )


@guard(P.AGENCY_DESK, api=False)
async def desk_move(request: Request, p: Principal) -> Response:
    desk = bo.desk_of(request)
    data = await form(request)
    move = data.get("move") or ""
    code = (data.get("code") or "")[:32]
    target = f"/co-quan/phieu/{quote(code)}" if code else "/co-quan"
    if move not in bo.MOVES:
        return back(target, err="invalid_input")
    body: dict[str, Any] = {
        "text": (data.get("text") or "").replace("\r\n", "\n"),
        "reason": (data.get("reason") or "").replace("\r\n", "\n"),
        "public": data.get("public") == "1",
    }
    try:
        fid = bo.forward_id(request)
        await bo.run(bo.MOVES[move][1](desk, bo.own_agency(p.user), fid, body, p.user.name))
    except ApiError as exc:
        return back(target, err=exc.error_id)
    done = {"answer": "answered", "extend": "extended", "send-back": "sent_back"}[move]
    return back(target, ok=done)


def routes() -> list[BaseRoute]:
    return [
        Route("/tickets/{code}/forward", forward_post, methods=["POST"]),
        Route("/tickets/{code}/answer-back", answer_back_post, methods=["POST"]),
        Route("/forwards/{id}/callback-done", callback_done_post, methods=["POST"]),
        Route("/co-quan", desk_page, methods=["GET"]),
        Route("/co-quan/phieu/{code}", desk_ticket, methods=["GET"]),
        Route("/co-quan/forwards/{id}", desk_move, methods=["POST"]),
    ]
