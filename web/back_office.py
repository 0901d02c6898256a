"""The back office on the API: forwarding tickets to agencies (the centre) and the agency
desk (accounts of role ``agency``, each seeing only its own agency's forwards).

    GET  /api/v1/agencies                              the agencies file        forward
    GET  /api/v1/forwards?agency=&state=&flag=         forwards, flagged        forward
    GET  /api/v1/forwards/callbacks                    answers to phone back    forward
    POST /api/v1/forwards/{id}/callback-done                                    forward
    GET  /api/v1/tickets/{code}/forwards                                        forward
    POST /api/v1/tickets/{code}/forward   {agency, note}                        forward
    POST /api/v1/tickets/{code}/answer-back {text?}    answer to the citizen    forward
    GET  /api/v1/agency/forwards                       own agency only          agency_desk
    GET  /api/v1/agency/tickets/{code}                 own agency only          agency_desk
    POST /api/v1/agency/forwards/{id}/{answer|extend|send-back}                 agency_desk

An agency asking for another agency's forward or ticket gets 404, exactly as for one that
does not exist. The workflow itself is ``agencies.desk.ForwardDesk`` (``app.state.desk``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm, User
from agencies.desk import DeskError, ForwardDesk
from agencies.forwards import Forward, ForwardState, IllegalForward
from conversations.outbox import ReplyRefused
from tickets.model import Ticket
from web import errors as v
from web.errors import ApiError
from web.security import Principal, guard

P = Perm
T = TypeVar("T")
STATES = tuple(s.value for s in ForwardState)
FLAGS = ("overdue", "nearly_due")
_CONFLICTS = {"already_forwarded", "ticket_done", "not_answered", "already_replied", "no_callback"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def forward_json(f: Forward, desk: ForwardDesk, now: datetime) -> dict[str, Any]:
    return {
        "id": f.id,
        "ticket": f.ticket_code,
        "agency": f.agency_id,
        "agency_name": desk.book.name(f.agency_id),
        "state": f.state.value,
        "flag": f.flag(now),
        "forwarded_at": _iso(f.forwarded_at),
        "forwarded_by": f.forwarded_by,
        "due_at": _iso(f.due_at),
        "note": f.note,
        "extension_reason": f.extension_reason,
        "extended_at": _iso(f.extended_at),
        "answered_at": _iso(f.answered_at),
        "answered_by": f.answered_by,
        "answer": f.answer,
        "answer_public": f.answer_public,
        "late": f.late(),
        "sent_back_at": _iso(f.sent_back_at),
        "sent_back_reason": f.sent_back_reason,
        "notify": f.notify.value,
        "notify_error": f.notify_error,
        "replied_at": _iso(f.replied_at),
        "reply_via": f.reply_via,
        "callback_done_at": _iso(f.callback_done_at),
    }


def agency_ticket_json(t: Ticket, messages: list[Any]) -> dict[str, Any]:
    """What an agency sees of a ticket: the matter, never the caller's number or address."""
    return {
        "code": t.code,
        "channel": t.channel,
        "started_at": _iso(t.started_at),
        "category": t.category,
        "subject": t.subject,
        "status": t.status.value,
        "due_at": _iso(t.due_at),
        "messages": [
            {"at": _iso(m.at), "direction": m.direction.value, "body": m.body} for m in messages
        ],
    }


async def run(work: Awaitable[T]) -> T:
    """The desk's refusals as API errors (another agency's forward is simply not found)."""
    try:
        return await work
    except KeyError:
        raise ApiError(404, "not_found", "not found") from None
    except DeskError as exc:
        status = 409 if exc.reason in _CONFLICTS else 422
        raise ApiError(status, exc.reason, str(exc)) from None
    except IllegalForward as exc:
        details = {"state": exc.state.value, "wanted": exc.wanted}
        raise ApiError(409, "illegal_forward", str(exc), details) from None
    except ReplyRefused as exc:
        raise ApiError(409, "reply_refused", str(exc)) from None


def desk_of(request: Request) -> ForwardDesk:
    desk: ForwardDesk = request.app.state.desk
    return desk


def own_agency(user: User) -> str:
    if not user.agency_id:
        raise ApiError(409, "no_agency", "your account is not linked to an agency")
    return user.agency_id


def forward_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(404, "not_found", "no such forward")
    return int(raw)


def _code(request: Request) -> str:
    return v.text(request.path_params["code"], "code", max_len=32)


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


# -- the centre ------------------------------------------------------------------------------


@guard(P.FORWARD, api=True)
async def agencies(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    return ok(
        {
            "agencies": [
                {"id": a.id, "name": a.name, "email": a.email, "categories": list(a.categories),
                 "deadline_days": a.deadline_days}
                for a in desk.book
            ]
        }
    )  # fmt: skip


def _flagged(found: list[Forward], flag: str | None, now: datetime) -> list[Forward]:
    return [f for f in found if flag is None or f.flag(now) == flag]


@guard(P.FORWARD, api=True)
async def forwards(request: Request, p: Principal) -> Response:
    desk, q = desk_of(request), request.query_params
    agency = v.opt_choice(q.get("agency"), "agency", tuple(a.id for a in desk.book))
    state = v.opt_choice(q.get("state"), "state", STATES)
    flag = v.opt_choice(q.get("flag"), "flag", FLAGS)
    limit = v.integer(q.get("limit"), "limit", default=200, lo=1, hi=1000)
    states = [ForwardState(state)] if state else None
    found = await desk.forwards.listing(agency_id=agency, states=states, limit=limit)
    now = desk.clock()
    return ok(
        {
            "overdue": sum(f.overdue(now) for f in found),
            "nearly_due": sum(f.nearly_due(now) for f in found),
            "forwards": [forward_json(f, desk, now) for f in _flagged(found, flag, now)],
        }
    )


@guard(P.FORWARD, api=True)
async def callbacks(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    found = await desk.forwards.callbacks()
    return ok({"forwards": [forward_json(f, desk, desk.clock()) for f in found]})


@guard(P.FORWARD, api=True)
async def callback_done(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    done = await run(desk.callback_done(forward_id(request)))
    return ok(forward_json(done, desk, desk.clock()))


@guard(P.FORWARD, api=True)
async def ticket_forwards(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    code = _code(request)
    await run(desk.ticket(code))
    found = await desk.forwards.of_ticket(code)
    return ok({"forwards": [forward_json(f, desk, desk.clock()) for f in found]})


@guard(P.FORWARD, api=True)
async def forward(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    body = await v.json_object(request)
    v.no_unknown(body, {"agency", "note"})
    agency = v.text(body.get("agency"), "agency", max_len=32)
    note = v.opt_text(body.get("note"), "note", max_len=4000, multiline=True)
    made = await run(desk.forward(_code(request), agency, by=p.user.name, note=note))
    return ok(forward_json(made, desk, desk.clock()), 201)


@guard(P.FORWARD, api=True)
async def answer_back(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    body = await v.json_object(request)
    v.no_unknown(body, {"text"})
    text = v.opt_text(body.get("text"), "text", max_len=8000, multiline=True)
    done = await run(desk.resolve(_code(request), by=p.user.name, text=text))
    return ok(forward_json(done, desk, desk.clock()))


# -- the agency desk -------------------------------------------------------------------------


@guard(P.AGENCY_DESK, api=True)
async def agency_forwards(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    state = v.opt_choice(request.query_params.get("state"), "state", STATES)
    found = await desk.forwards.listing(
        agency_id=own_agency(p.user), states=[ForwardState(state)] if state else None
    )
    now = desk.clock()
    return ok({"agency": p.user.agency_id, "forwards": [forward_json(f, desk, now) for f in found]})


async def agency_view(desk: ForwardDesk, conv: Any, agency: str, code: str) -> dict[str, Any]:
    ticket, mine = await run(desk.agency_ticket(agency, code))
    messages = await conv.messages(code) if conv is not None else []
    now = desk.clock()
    return {
        "ticket": agency_ticket_json(ticket, messages),
        "forwards": [forward_json(f, desk, now) for f in mine],
    }


@guard(P.AGENCY_DESK, api=True)
async def agency_ticket(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    conv = getattr(desk.outbox, "conv", None)
    return ok(await agency_view(desk, conv, own_agency(p.user), _code(request)))


Move = Callable[[ForwardDesk, str, int, dict[str, Any], str], Awaitable[Forward]]


async def _answer(desk: ForwardDesk, agency: str, fid: int, b: dict[str, Any], by: str) -> Forward:
    text = v.text(b.get("text"), "text", max_len=8000, multiline=True)
    public = b.get("public", False)
    if not isinstance(public, bool):
        raise v.invalid("public", "must be true or false")
    return await desk.answer(agency, fid, text=text, public=public, by=by)


async def _extend(desk: ForwardDesk, agency: str, fid: int, b: dict[str, Any], by: str) -> Forward:
    reason = v.text(b.get("reason"), "reason", max_len=1000, multiline=True)
    return await desk.extend(agency, fid, reason=reason)


async def _back(desk: ForwardDesk, agency: str, fid: int, b: dict[str, Any], by: str) -> Forward:
    reason = v.text(b.get("reason"), "reason", max_len=1000, multiline=True)
    return await desk.send_back(agency, fid, reason=reason, by=by)


#: the agency's moves: name -> (body fields, what it does)
MOVES: dict[str, tuple[set[str], Move]] = {
    "answer": ({"text", "public"}, _answer),
    "extend": ({"reason"}, _extend),
    "send-back": ({"reason"}, _back),
}


@guard(P.AGENCY_DESK, api=True)
async def agency_move(request: Request, p: Principal) -> Response:
    desk = desk_of(request)
    fields, do = MOVES[request.url.path.rsplit("/", 1)[-1]]
    body = await v.json_object(request)
    v.no_unknown(body, fields)
    agency, fid = own_agency(p.user), forward_id(request)
    done = await run(do(desk, agency, fid, body, p.user.name))
    return ok(forward_json(done, desk, desk.clock()))


def routes() -> list[BaseRoute]:
    r = "/api/v1"
    return [
        Route(f"{r}/agencies", agencies, methods=["GET"]),
        Route(f"{r}/forwards", forwards, methods=["GET"]),
        Route(f"{r}/forwards/callbacks", callbacks, methods=["GET"]),
        Route(f"{r}/forwards/{{id}}/callback-done", callback_done, methods=["POST"]),
        Route(f"{r}/tickets/{{code}}/forwards", ticket_forwards, methods=["GET"]),
        Route(f"{r}/tickets/{{code}}/forward", forward, methods=["POST"]),
        Route(f"{r}/tickets/{{code}}/answer-back", answer_back, methods=["POST"]),
        Route(f"{r}/agency/forwards", agency_forwards, methods=["GET"]),
        Route(f"{r}/agency/tickets/{{code}}", agency_ticket, methods=["GET"]),
        *(
            Route(f"{r}/agency/forwards/{{id}}/{move}", agency_move, methods=["POST"])
            for move in MOVES
        ),
    ]
