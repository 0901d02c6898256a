"""The console's postal delivery page (``/buu-chinh``, permission ``postal``): the list with
its status buttons, the registration form (province / district / ward picked from the
places file), completing a telephone request with the address, the day's download for the
post office; and the registrations shown on a ticket's page. Rules: ``postal.desk``.

A refused form is drawn again with what was typed (autoescaped) and each field's message in
Vietnamese, status 422; nothing is lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm, User
from postal.model import (
    PREFERRED_TIMES,
    STATE_LABELS,
    TRANSITIONS,
    PostalState,
    Registration,
)
from tongdai.clock import VN_TZ
from web import postal as api
from web.errors import ApiError
from web.render import back, form, render
from web.security import Principal, guard

P = Perm
FORM_FIELDS = ("ticket", "dossier_code", "note", *sorted(api.ADDRESS_FIELDS))


def _context(request: Request, user: User, **extra: Any) -> dict[str, Any]:
    desk = api.desk_of(request)
    mine = api.allowed_moves(request, user)
    return {
        "places": desk.places,
        "preferred_times": PREFERRED_TIMES,
        "state_labels": {s.value: label for s, label in STATE_LABELS.items()},
        "next_moves": {
            s.value: [(to.value, STATE_LABELS[to]) for to in mine if to in TRANSITIONS[s]]
            for s in PostalState
        },
        #: the centre registers; the post office only reads and marks deliveries
        "can_register": user.can(P.POSTAL),
        "today": desk.clock().astimezone(VN_TZ).date().isoformat(),
        "errors": {},
        "values": {},
        **extra,
    }


async def _list_page(
    request: Request, user: User, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    q = request.query_params
    state = q.get("state") or ""
    states = [PostalState(state)] if state in api.STATES else None
    found = await api.desk_of(request).store.listing(states=states, limit=300)
    values = values or {
        "ticket": (q.get("ticket") or "")[:32],
        "dossier_code": (q.get("dossier") or "")[:16],
    }
    ctx = _context(request, user, registrations=found, values=values, errors=errors, state=state)
    return render(request, "postal.html", ctx, status)


@guard(P.POSTAL, P.AGENCY_DESK, api=False)
async def page(request: Request, p: Principal) -> Response:
    api.require_reader(request, p.user)
    return await _list_page(request, p.user, {}, {})


@guard(P.POSTAL, api=False)
async def create(request: Request, p: Principal) -> Response:
    data = await form(request)
    values = {k: data.get(k, "")[:300] for k in FORM_FIELDS}
    try:
        reg = await api.run(api.desk_of(request).register(data, by=p.user.name))
    except ApiError as exc:
        if (fields := _fields(exc)) is not None:
            return await _list_page(request, p.user, values, fields, 422)
        return back("/buu-chinh", err=exc.error_id)
    return back(f"/buu-chinh/{reg.id}", ok="postal_registered")


def _fields(exc: ApiError) -> dict[str, str] | None:
    """Each bad field's message, when the refusal is about what was typed."""
    fields = exc.details.get("fields")
    return dict(fields) if exc.error_id == "invalid_input" and fields else None


async def _one_page(
    request: Request,
    user: User,
    reg_id: int,
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    store = api.desk_of(request).store
    reg = await store.get(reg_id)
    if reg is None:
        raise ApiError(404, "not_found", "no such registration")
    history = await store.events(reg_id)
    ctx = _context(request, user, r=reg, history=history, values=values, errors=errors)
    return render(request, "postal_one.html", ctx, status)


@guard(P.POSTAL, P.AGENCY_DESK, api=False)
async def one(request: Request, p: Principal) -> Response:
    api.require_reader(request, p.user)
    return await _one_page(request, p.user, api.registration_id(request), {}, {}, 200)


@guard(P.POSTAL, api=False)
async def complete(request: Request, p: Principal) -> Response:
    reg_id = api.registration_id(request)
    data = await form(request)
    try:
        await api.run(api.desk_of(request).complete(reg_id, data, by=p.user.name))
    except ApiError as exc:
        if (fields := _fields(exc)) is not None:
            values = {k: data.get(k, "")[:300] for k in api.ADDRESS_FIELDS}
            return await _one_page(request, p.user, reg_id, values, fields, 422)
        return back(f"/buu-chinh/{reg_id}", err=exc.error_id)
    return back(f"/buu-chinh/{reg_id}", ok="postal_completed")


@guard(P.POSTAL, P.AGENCY_DESK, api=False)
async def move(request: Request, p: Principal) -> Response:
    api.require_reader(request, p.user)
    reg_id = api.registration_id(request)
    data = await form(request)
    target = f"/buu-chinh/{reg_id}" if data.get("from") == "one" else "/buu-chinh"
    mine = {s.value for s in api.allowed_moves(request, p.user)}
    if p.user.can(P.AGENCY_DESK) and data.get("state") not in mine:
        return back(target, err="forbidden")
    try:
        await api.run(
            api.desk_of(request).move(
                reg_id, data.get("state") or "", by=p.user.name, note=data.get("note")
            )
        )
    except ApiError as exc:
        return back(target, err=exc.error_id)
    return back(target, ok="postal_state")


async def ticket_part(
    request: Request, user: User, code: str
) -> tuple[list[Registration], list[tuple[datetime, str, str]]]:
    """A ticket page's postal registrations and their changes for its timeline (nothing for
    a role without ``postal``)."""
    if not user.can(P.POSTAL):
        return [], []
    store = api.desk_of(request).store
    found = await store.of_ticket(code)
    rows: list[tuple[datetime, str, str]] = []
    for reg in found:
        for e in await store.events(reg.id):
            before = STATE_LABELS[e.from_state] + " → " if e.from_state else ""
            what = f"Bưu chính (hồ sơ {reg.dossier_code}): {before}{STATE_LABELS[e.to_state]}"
            rows.append((e.at, what, f"{e.by}: {e.note or ''}"))
    return found, rows


async def waiting(request: Request, user: User) -> list[Registration]:
    """Telephone requests still waiting for their address (the agent console's list)."""
    if not user.can(P.POSTAL):
        return []
    store = api.desk_of(request).store
    return await store.listing(states=[PostalState.REQUESTED], limit=50)


def link_for(code: str, dossier: str | None) -> str:
    """The form prefilled for a ticket (the ticket page's link)."""
    return f"/buu-chinh?ticket={quote(code)}" + (f"&dossier={quote(dossier)}" if dossier else "")


def routes() -> list[BaseRoute]:
    return [
        Route("/buu-chinh", page, methods=["GET"]),
        Route("/buu-chinh", create, methods=["POST"]),
        Route("/buu-chinh/{id}", one, methods=["GET"]),
        Route("/buu-chinh/{id}/complete", complete, methods=["POST"]),
        Route("/buu-chinh/{id}/status", move, methods=["POST"]),
    ]
