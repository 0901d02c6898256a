"""Postal delivery registrations on the API (role permission ``postal``: agents,
supervisors, administrators), and what the console page shares with it.

The post office is an agency (``agencies/``): an ``agency`` account whose agency takes the
``buu_chinh`` category reads the list, its history and the day's export, and marks a
registration ``delivered``; nothing else (marked ``[post office]`` below).

    GET  /api/v1/postal?state=&limit=               registrations, newest first  [post office]
    POST /api/v1/postal  {ticket, dossier_code, recipient, phone, district, ward, street,
                          preferred_time?, note?}   a complete registration (201)
    GET  /api/v1/postal/places                      the province, districts and wards
    GET  /api/v1/postal/export?date=&format=csv|xlsx   the day's list        [post office]
    GET  /api/v1/postal/{id}                        one, with its history        [post office]
    POST /api/v1/postal/{id}/complete {recipient, phone, district, ward, street, ...}
                                                    a telephone request's address
    POST /api/v1/postal/{id}/status {state, note?}  handed_to_post, delivered, cancelled
                                                    (the post office: delivered) [post office]

Bad input is 422 ``invalid_input`` with ``details.fields``: each bad field's message in
Vietnamese. A move the state does not allow is 409 ``illegal_state``; a second active
registration of one dossier 409 ``already_registered``. The rules are ``postal.desk``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm, User
from postal.desk import MOVES, PostalDesk
from postal.export import day_list, file_name, to_csv, to_xlsx
from postal.model import (
    PREFERRED_TIMES,
    STATE_LABELS,
    Event,
    IllegalPostal,
    PostalError,
    PostalInvalid,
    PostalState,
    Registration,
)
from tongdai.clock import VN_TZ
from web import errors as v
from web.errors import ApiError
from web.security import Principal, guard

P = Perm
T = TypeVar("T")
STATES = tuple(s.value for s in PostalState)
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: an agency account whose agency takes this category is the post office
POST_OFFICE_CATEGORY = "buu_chinh"
ADDRESS_FIELDS = {"recipient", "phone", "district", "ward", "street", "preferred_time"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def registration_json(r: Registration) -> dict[str, Any]:
    return {
        "id": r.id,
        "ticket": r.ticket_code,
        "dossier_code": r.dossier_code,
        "state": r.state.value,
        "state_label": STATE_LABELS[r.state],
        "phone": r.phone,
        "recipient": r.recipient,
        "province": r.province,
        "district": r.district,
        "ward": r.ward,
        "street": r.street,
        "address": r.address_line(),
        "preferred_time": r.preferred_time,
        "preferred_time_label": PREFERRED_TIMES.get(r.preferred_time or ""),
        "note": r.note,
        "created_at": _iso(r.created_at),
        "created_by": r.created_by,
        "updated_at": _iso(r.updated_at),
        "registered_at": _iso(r.registered_at),
    }


def event_json(e: Event) -> dict[str, Any]:
    return {
        "at": _iso(e.at),
        "from": e.from_state.value if e.from_state else None,
        "to": e.to_state.value,
        "by": e.by,
        "note": e.note,
    }


def desk_of(request: Request) -> PostalDesk:
    desk: PostalDesk = request.app.state.postal
    return desk


def is_post_office(request: Request, user: User) -> bool:
    if not user.can(P.AGENCY_DESK) or not user.agency_id:
        return False
    agency = request.app.state.desk.book.get(user.agency_id)
    return agency is not None and POST_OFFICE_CATEGORY in agency.categories


def allowed_moves(request: Request, user: User) -> tuple[PostalState, ...]:
    """The state changes ``user`` may make (none: may not read either)."""
    if user.can(P.POSTAL):
        return MOVES
    return (PostalState.DELIVERED,) if is_post_office(request, user) else ()


def require_reader(request: Request, user: User) -> None:
    """The centre's roles, or the post office's account."""
    if not allowed_moves(request, user):
        raise ApiError(403, "forbidden", "your role may not do this", {"role": user.role})


async def run(work: Awaitable[T]) -> T:
    """The desk's refusals as API errors."""
    try:
        return await work
    except KeyError:
        raise ApiError(404, "not_found", "no such registration") from None
    except PostalInvalid as exc:
        raise ApiError(422, "invalid_input", str(exc), {"fields": exc.errors}) from None
    except IllegalPostal as exc:
        details = {"state": exc.state.value, "wanted": exc.wanted.value}
        raise ApiError(409, "illegal_state", str(exc), details) from None
    except PostalError as exc:
        status = 409 if exc.reason == "already_registered" else 422
        raise ApiError(status, exc.reason, str(exc)) from None


def registration_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(404, "not_found", "no such registration")
    return int(raw)


def export_day(raw: str | None, now: datetime) -> date:
    if raw is None or raw == "":
        return now.astimezone(VN_TZ).date()
    v.text(raw, "date", max_len=10)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise v.invalid("date", "expected YYYY-MM-DD") from None


@guard(P.POSTAL, P.AGENCY_DESK, api=True)
async def listing(request: Request, p: Principal) -> Response:
    require_reader(request, p.user)
    q = request.query_params
    state = v.opt_choice(q.get("state"), "state", STATES)
    limit = v.integer(q.get("limit"), "limit", default=200, lo=1, hi=1000)
    states = [PostalState(state)] if state else None
    found = await desk_of(request).store.listing(states=states, limit=limit)
    return JSONResponse({"registrations": [registration_json(r) for r in found]})


@guard(P.POSTAL, api=True)
async def create(request: Request, p: Principal) -> Response:
    data = await v.json_object(request)
    v.no_unknown(data, {"ticket", "dossier_code", "note", *ADDRESS_FIELDS})
    reg = await run(desk_of(request).register(data, by=p.user.name))
    return JSONResponse(registration_json(reg), status_code=201)


@guard(P.POSTAL, P.AGENCY_DESK, api=True)
async def one(request: Request, p: Principal) -> Response:
    require_reader(request, p.user)
    store = desk_of(request).store
    reg = await store.get(registration_id(request))
    if reg is None:
        raise ApiError(404, "not_found", "no such registration")
    history = [event_json(e) for e in await store.events(reg.id)]
    return JSONResponse({**registration_json(reg), "history": history})


@guard(P.POSTAL, api=True)
async def complete(request: Request, p: Principal) -> Response:
    data = await v.json_object(request)
    v.no_unknown(data, ADDRESS_FIELDS)
    reg = await run(desk_of(request).complete(registration_id(request), data, by=p.user.name))
    return JSONResponse(registration_json(reg))


@guard(P.POSTAL, P.AGENCY_DESK, api=True)
async def status(request: Request, p: Principal) -> Response:
    require_reader(request, p.user)
    data = await v.json_object(request)
    v.no_unknown(data, {"state", "note"})
    state = v.choice(data.get("state"), "state", STATES)
    if p.user.can(P.AGENCY_DESK) and PostalState(state) not in allowed_moves(request, p.user):
        raise ApiError(403, "forbidden", "the post office only marks a delivery delivered")
    desk = desk_of(request)
    reg = await run(
        desk.move(registration_id(request), state, by=p.user.name, note=data.get("note"))
    )
    return JSONResponse(registration_json(reg))


@guard(P.POSTAL, P.AGENCY_DESK, api=True)
async def places(request: Request, p: Principal) -> Response:
    require_reader(request, p.user)
    book = desk_of(request).places
    return JSONResponse(
        {
            "province": book.province,
            "districts": [{"id": d.id, "name": d.name, "wards": list(d.wards)} for d in book],
            "preferred_times": PREFERRED_TIMES,
        }
    )


@guard(P.POSTAL, P.AGENCY_DESK, api=True)
async def export(request: Request, p: Principal) -> Response:
    require_reader(request, p.user)
    """The post office's list of one day (a file download; the console links to it)."""
    desk, q = desk_of(request), request.query_params
    day = export_day(q.get("date"), desk.clock())
    fmt = v.choice(q.get("format") or "csv", "format", tuple(FORMATS))
    found = await day_list(desk.store, day)
    body = to_csv(found) if fmt == "csv" else to_xlsx(found, day)
    disposition = f'attachment; filename="{file_name(day, fmt)}"'
    return Response(body, media_type=FORMATS[fmt], headers={"Content-Disposition": disposition})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/postal", listing, methods=["GET"]),
        Route("/api/v1/postal", create, methods=["POST"]),
        Route("/api/v1/postal/places", places, methods=["GET"]),
        Route("/api/v1/postal/export", export, methods=["GET"]),
        Route("/api/v1/postal/{id}", one, methods=["GET"]),
        Route("/api/v1/postal/{id}/complete", complete, methods=["POST"]),
        Route("/api/v1/postal/{id}/status", status, methods=["POST"]),
    ]
