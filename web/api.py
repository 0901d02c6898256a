"""The REST API under ``/api/v1`` (JSON; bearer token or session + ``X-CSRF-Token``).

Same roles as the pages (``accounts.model.PERMISSIONS``); every refusal or bad input is a 4xx with
``{"error": {"id", "message", "details"}}`` (``web.errors``). The OpenAPI document is built in
``web.openapi`` from the same list of routes, so it cannot forget one.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import ROLE_LABELS, Perm
from dossiers.model import CODE_RE as DOSSIER_RE
from tickets.model import Outcome, Status
from web import agent_ops, privacy, stats, ticket_query, users
from web import errors as v
from web import kb as kb_api
from web import procedures as procedures_api
from web.errors import ApiError
from web.security import Principal, guard
from web.ticket_actions import ACTIONS, COMPLAINT_TYPES, MAX_NOTES, Change
from web.views import current_call, dossier_json

P = Perm
OUTCOMES = tuple(o.value for o in Outcome)
STATUSES = tuple(s.value for s in Status)
SPY_MODES = ("listen", "whisper", "barge")


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _path(request: Request, name: str) -> str:
    return v.text(request.path_params[name], name, max_len=64)


# -- who am I --------------------------------------------------------------------------------


@guard(api=True)
async def me(request: Request, p: Principal) -> Response:
    u = p.user
    return ok(
        {
            "name": u.name,
            "role": u.role.value,
            "role_label": ROLE_LABELS[u.role],
            "agent_id": u.agent_id,
            "agency_id": u.agency_id,
            "phone": u.phone,
            "permissions": sorted(perm.value for perm in Perm if u.can(perm)),
            "csrf": p.csrf,
        }
    )


# -- the distribution ------------------------------------------------------------------------


@guard(P.WALLBOARD, api=True)
async def queues(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    state = deps.control.state()
    figures = await stats.today(deps.engine, deps.clock())
    return ok(
        {
            "at": state.at,
            "available": state.available,
            "queues": [asdict(q) for q in state.queues],
            "today": figures,
        }
    )


@guard(P.WALLBOARD, api=True)
async def calls(request: Request, p: Principal) -> Response:
    state = request.app.state.deps.control.state()
    return ok({"at": state.at, "calls": [asdict(c) for c in state.calls]})


@guard(P.WALLBOARD, api=True)
async def agents(request: Request, p: Principal) -> Response:
    state = request.app.state.deps.control.state()
    return ok({"at": state.at, "agents": [asdict(a) for a in state.agents]})


@guard(P.WALLBOARD, P.CONSOLE, api=True)
async def agent(request: Request, p: Principal) -> Response:
    agent_id = _path(request, "agent_id")
    if not agent_ops.may_act_for(p.user, agent_id) and not p.user.can(P.WALLBOARD):
        raise ApiError(403, "forbidden", "you may only see your own agent")
    found = request.app.state.deps.control.state().agent(agent_id)
    if found is None:
        raise ApiError(404, "unknown_agent", f"no agent {agent_id!r}", {"agent": agent_id})
    return ok(asdict(found))


@guard(P.AGENTS_CONTROL, P.CONSOLE, api=True)
async def agent_state(request: Request, p: Principal) -> Response:
    agent_id = _path(request, "agent_id")
    body = await v.json_object(request)
    v.no_unknown(body, {"op", "reason", "hand_to"})
    op = v.choice(body.get("op"), "op", agent_ops.OPS)
    reason = v.opt_text(body.get("reason"), "reason", max_len=32)
    hand_to = v.opt_text(body.get("hand_to"), "hand_to", max_len=64)
    agent_ops.change_state(request.app.state.deps.control, p.user, agent_id, op, reason, hand_to)
    found = request.app.state.deps.control.state().agent(agent_id)
    return ok(asdict(found) if found else {"id": agent_id})


@guard(P.SPY, api=True)
async def agent_spy(request: Request, p: Principal) -> Response:
    agent_id = _path(request, "agent_id")
    body = await v.json_object(request)
    v.no_unknown(body, {"mode"})
    mode = v.choice(body.get("mode"), "mode", SPY_MODES)
    await agent_ops.spy(request.app.state.deps.control, p.user, agent_id, mode)
    return ok({"agent": agent_id, "mode": mode, "phone": p.user.phone}, 202)


@guard(P.AGENTS_CONTROL, P.CONSOLE, api=True)
async def agent_call(request: Request, p: Principal) -> Response:
    agent_id = _path(request, "agent_id")
    body = await v.json_object(request)
    v.no_unknown(body, {"number", "ticket"})
    number = v.opt_text(body.get("number"), "number", max_len=20)
    ticket = v.opt_text(body.get("ticket"), "ticket", max_len=32)
    deps = request.app.state.deps
    called = await agent_ops.call_back(
        deps.control, request.app.state.actions, p.user, agent_id, number, ticket
    )
    return ok({"agent": agent_id, "number": called, "ticket": ticket}, 202)


# -- tickets ---------------------------------------------------------------------------------


def ticket_filter(q: Any, categories: dict[str, str]) -> ticket_query.TicketFilter:
    return ticket_query.TicketFilter(
        since=v.when(q.get("since"), "since"),
        until=v.when(q.get("until"), "until", end_of_day=True),
        category=v.opt_choice(q.get("category"), "category", tuple(categories)),
        outcome=v.opt_choice(q.get("outcome"), "outcome", OUTCOMES),
        status=v.opt_choice(q.get("status"), "status", STATUSES),
        caller=v.opt_text(q.get("caller"), "caller", max_len=40),
        agent=v.opt_text(q.get("agent"), "agent", max_len=64),
        queue=v.opt_text(q.get("queue"), "queue", max_len=64),
        limit=v.integer(q.get("limit"), "limit", default=50, lo=1, hi=500),
        offset=v.integer(q.get("offset"), "offset", default=0, lo=0, hi=1_000_000),
    )


@guard(P.TICKETS_READ, api=True)
async def tickets(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    f = ticket_filter(request.query_params, deps.categories)
    found, total = await ticket_query.search(deps.engine, f, deps.clock())
    return ok({"total": total, "tickets": [t.to_dict() for t in found]})


@guard(P.TICKETS_READ, api=True)
async def ticket(request: Request, p: Principal) -> Response:
    found = await request.app.state.actions.get(_path(request, "code"))
    return ok(await privacy.ticket_view(request, p, found, "api"))


@guard(P.TICKETS_WRITE_OWN, P.TICKETS_WRITE_ALL, api=True)
async def ticket_patch(request: Request, p: Principal) -> Response:
    code = _path(request, "code")
    body = await v.json_object(request)
    v.no_unknown(body, {"action", "notes", "category", "status", "note", "agent", "complaint_type"})
    deps = request.app.state.deps
    change = Change(
        action=v.choice(body.get("action", "save"), "action", ACTIONS),
        notes=None
        if body.get("notes") is None
        else v.text(body["notes"], "notes", max_len=MAX_NOTES, multiline=True),
        category=v.opt_choice(body.get("category"), "category", tuple(deps.categories)),
        status=v.opt_choice(body.get("status"), "status", STATUSES),
        note=v.opt_text(body.get("note"), "note", max_len=500, multiline=True),
        agent=v.opt_text(body.get("agent"), "agent", max_len=64),
        complaint_type=v.opt_choice(
            body.get("complaint_type"), "complaint_type", tuple(COMPLAINT_TYPES)
        ),
    )
    updated = await request.app.state.actions.apply(p.user, code, change)
    return ok(await privacy.ticket_view(request, p, updated, "api"))


@guard(P.CONSOLE, P.TICKETS_READ, api=True)
async def callbacks(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    limit = v.integer(request.query_params.get("limit"), "limit", default=50, lo=1, hi=500)
    found = await ticket_query.callbacks(deps.engine, deps.clock(), limit=limit)
    return ok({"tickets": [t.to_dict() for t in found]})


@guard(P.CONSOLE, P.TICKETS_READ, api=True)
async def dossier(request: Request, p: Principal) -> Response:
    code = _path(request, "code")
    if not DOSSIER_RE.match(code):
        raise v.invalid("code", "a dossier code is 4 to 16 digits")
    found = await request.app.state.dossiers.find(code)
    if found is None:
        raise ApiError(404, "not_found", f"no dossier {code}", {"code": code})
    return ok(dossier_json(found))


@guard(P.CONSOLE, api=True)
async def console(request: Request, p: Principal) -> Response:
    """The logged-in agent: its state and its current call with everything known about it."""
    if p.user.agent_id is None:
        raise ApiError(409, "no_agent", "your account is not linked to an agent")
    return ok(await current_call(request.app, p.user.agent_id))


# -- announcement ----------------------------------------------------------------------------


def _announcement(a: Any) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "id": a.id,
        "text": a.text,
        "active_from": a.active_from.isoformat(),
        "active_until": a.active_until.isoformat() if a.active_until else None,
        "created_by": a.created_by,
    }


@guard(P.ANNOUNCE, api=True)
async def announcement(request: Request, p: Principal) -> Response:
    announcer = request.app.state.announcer
    if request.method == "GET":
        return ok({"announcement": _announcement(await announcer.current())})
    if request.method == "DELETE":
        return ok({"cleared": await announcer.clear(p.user.name)})
    body = await v.json_object(request)
    v.no_unknown(body, {"text", "until"})
    text = v.text(body.get("text"), "text", max_len=500)
    until_raw = v.opt_text(body.get("until"), "until", max_len=40)
    until = v.when(until_raw, "until") if until_raw else None
    try:
        made = await announcer.set(text, until, p.user.name)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    return ok({"announcement": _announcement(made)})


# -- accounts (administrators) ---------------------------------------------------------------


@guard(P.USERS, api=True)
async def users_list(request: Request, p: Principal) -> Response:
    if request.method == "POST":
        body = await v.json_object(request)
        v.no_unknown(
            body, {"name", "display_name", "role", "password", "agent_id", "phone", "agency_id"}
        )
        made = await users.add(
            request.app.state.auth, users.new_user(body), request.app.state.desk.book
        )
        return ok(users.account_json(made), 201)
    found = await request.app.state.auth.accounts()
    return ok({"users": [users.account_json(a) for a in found]})


@guard(P.USERS, api=True)
async def user(request: Request, p: Principal) -> Response:
    name = _path(request, "name")
    auth = request.app.state.auth
    if request.method == "PATCH":
        changes = users.checked_changes(await v.json_object(request))
        changed = await users.change(auth, request.app.state.deps.hub, p.user, name, changes)
        return ok(users.account_json(changed))
    found = await auth.account(name)
    if found is None:
        raise ApiError(404, "not_found", f"no user {name!r}", {"name": name})
    return ok(users.account_json(found))


@guard(P.USERS, api=True)
async def user_password(request: Request, p: Principal) -> Response:
    name = _path(request, "name")
    body = await v.json_object(request)
    v.no_unknown(body, {"password"})
    password = users.check_password(body.get("password"))
    ended = await users.reset_password(
        request.app.state.auth, request.app.state.deps.hub, name, password
    )
    return ok({"name": name, "password_set": True, "sessions_ended": ended})


@guard(api=True)
async def openapi(request: Request, p: Principal) -> Response:
    from web.openapi import document

    return ok(document())


def routes() -> list[BaseRoute]:
    r = "/api/v1"
    return [
        Route(f"{r}/openapi.json", openapi, methods=["GET"]),
        Route(f"{r}/me", me, methods=["GET"]),
        Route(f"{r}/queues", queues, methods=["GET"]),
        Route(f"{r}/calls", calls, methods=["GET"]),
        Route(f"{r}/agents", agents, methods=["GET"]),
        Route(f"{r}/agents/{{agent_id}}", agent, methods=["GET"]),
        Route(f"{r}/agents/{{agent_id}}/state", agent_state, methods=["POST"]),
        Route(f"{r}/agents/{{agent_id}}/spy", agent_spy, methods=["POST"]),
        Route(f"{r}/agents/{{agent_id}}/call", agent_call, methods=["POST"]),
        Route(f"{r}/tickets", tickets, methods=["GET"]),
        Route(f"{r}/tickets/{{code}}", ticket, methods=["GET"]),
        Route(f"{r}/tickets/{{code}}", ticket_patch, methods=["PATCH"]),
        Route(f"{r}/callbacks", callbacks, methods=["GET"]),
        Route(f"{r}/dossiers/{{code}}", dossier, methods=["GET"]),
        Route(f"{r}/console", console, methods=["GET"]),
        Route(f"{r}/announcement", announcement, methods=["GET", "PUT", "DELETE"]),
        Route(f"{r}/users", users_list, methods=["GET", "POST"]),
        Route(f"{r}/users/{{name}}", user, methods=["GET", "PATCH"]),
        Route(f"{r}/users/{{name}}/password", user_password, methods=["PUT"]),
        *kb_api.routes(r),
        *procedures_api.routes(r),
        *privacy.routes(r),
    ]
