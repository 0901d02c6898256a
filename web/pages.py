"""The HTML pages (drawn by ``web.render``): login, wallboard, agent console, and the live
stream and metrics endpoints; the ticket and report pages are in ``web.pages_tickets``, the
accounts page in ``web.pages_users`` (``web.app`` gathers every module's routes).

Forms post back with the session's CSRF token and redirect (303) to the page with a fixed
message key (``?ok=`` / ``?err=``, see ``web.labels``): nothing typed is reflected.
"""

from __future__ import annotations

import json
import secrets

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from accounts.model import Perm, Role
from tongdai.errors import TongdaiError
from web import agent_ops, pages_postal, ticket_query
from web import errors as v
from web import health as web_health
from web.errors import ApiError
from web.live import stream
from web.pages_agency import answer_callbacks
from web.render import back, form, render
from web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    client_ip,
    cookie_args,
    guard,
    same_token,
    still_authenticated,
)
from web.views import current_call, ticket_json

P = Perm
HOME = {
    Role.AGENT: "/console",
    Role.SUPERVISOR: "/wallboard",
    Role.MANAGER: "/reports",
    Role.ADMIN: "/wallboard",
    Role.AGENCY: "/co-quan",
}


def safe_next(value: str | None) -> str | None:
    """Only a path on this site (no ``//host`` or scheme): no open redirect after login."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


# -- login -----------------------------------------------------------------------------------


async def login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    nxt = safe_next(request.query_params.get("next")) or ""
    response = render(
        request, "login.html", {"login_csrf": token, "next": nxt, "error": error}, status
    )
    secure = request.app.state.deps.cookie_secure
    response.set_cookie(LOGIN_CSRF_COOKIE, token, **cookie_args(secure, 600))
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        return await login_page(request)
    data = await form(request)
    if not same_token(data.get("login_csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)):
        raise ApiError(403, "csrf", "Phiên đăng nhập hết hạn, xin tải lại trang.")
    name = data.get("name", "").strip().lower()[:64]
    password = data.get("password", "")[:200]
    deps = request.app.state.deps
    ip = client_ip(request)
    wait = await deps.limiter.retry_after(ip, name)
    if wait is not None:
        response = await login_page(
            request, error=f"Đăng nhập sai quá nhiều lần. Thử lại sau {int(wait)} giây.", status=429
        )
        response.headers["Retry-After"] = str(int(wait))
        return response
    user = await request.app.state.auth.login(name, password) if name and password else None
    if user is None:
        await deps.limiter.failed(ip, name)
        return await login_page(request, error="Sai tên đăng nhập hoặc mật khẩu.", status=401)
    await deps.limiter.succeeded(ip, name)
    token, _csrf = await request.app.state.auth.new_session(user)
    target = safe_next(data.get("next")) or HOME[user.role]
    response = RedirectResponse(target, 303)
    max_age = int(deps.session_ttl.total_seconds())
    response.set_cookie(SESSION_COOKIE, token, **cookie_args(deps.cookie_secure, max_age))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@guard(api=False)
async def logout(request: Request, p: Principal) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await request.app.state.auth.end_session(cookie)
    if p.session_id is not None:  # this session's live streams end now, not at their next ping
        request.app.state.deps.hub.end_session(p.session_id)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@guard(api=False)
async def home(request: Request, p: Principal) -> Response:
    return RedirectResponse(HOME[p.user.role], 303)


# -- wallboard -------------------------------------------------------------------------------


@guard(P.WALLBOARD, api=False)
async def wallboard(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    state = deps.control.state()
    latest = deps.hub.latest.get("stats")
    return render(
        request,
        "wallboard.html",
        {
            "state": state,
            "stats": json.loads(latest.full) if latest else None,
            "announcement": await request.app.state.announcer.current(),
            "can_spy": p.user.can(P.SPY) and bool(p.user.phone),
            "can_announce": p.user.can(P.ANNOUNCE),
            "degraded": web_health.banner(deps.health),
        },
    )


@guard(P.AGENTS_CONTROL, api=False)
async def wallboard_agent(request: Request, p: Principal) -> Response:
    data = await form(request)
    agent_id = str(request.path_params["agent_id"])[:64]
    try:
        op = data.get("op", "")
        agent_ops.change_state(
            request.app.state.deps.control,
            p.user,
            agent_id,
            op,
            data.get("reason"),
            (data.get("hand_to") or "")[:64] or None,
        )
    except ApiError as exc:
        return back("/wallboard", err=exc.error_id)
    return back("/wallboard", ok="state")


@guard(P.SPY, api=False)
async def wallboard_spy(request: Request, p: Principal) -> Response:
    data = await form(request)
    try:
        await agent_ops.spy(
            request.app.state.deps.control, p.user, data.get("agent", "")[:64], data.get("mode", "")
        )
    except ApiError as exc:
        return back("/wallboard", err=exc.error_id)
    return back("/wallboard", ok="spy")


@guard(P.ANNOUNCE, api=False)
async def wallboard_announce(request: Request, p: Principal) -> Response:
    data = await form(request)
    announcer = request.app.state.announcer
    if data.get("action") == "clear":
        await announcer.clear(p.user.name)
        return back("/wallboard", ok="announce_clear")
    try:
        text = v.text(data.get("text", "").strip(), "text", max_len=500)
        until_raw = data.get("until") or None
        if until_raw and len(until_raw) == 16:  # <input type=datetime-local>: Vietnam time
            until_raw += ":00+07:00"
        until = v.when(until_raw, "until")
        await announcer.set(text, until, p.user.name)
    except ApiError as exc:
        return back("/wallboard", err=exc.error_id)
    except ValueError:
        return back("/wallboard", err="invalid_input")
    except TongdaiError:
        return back("/wallboard", err="synthesis")
    return back("/wallboard", ok="announce_set")


# -- agent console ---------------------------------------------------------------------------


@guard(P.CONSOLE, api=False)
async def console(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    agent_id = p.user.agent_id
    current = await current_call(request.app, agent_id) if agent_id else None
    focus = None  # after saving, the ticket stays on screen (?ticket=CODE)
    code = request.query_params.get("ticket", "")[:32]
    if code and (current is None or current["call"] is None):
        found = await deps.tickets.get(code)
        focus = ticket_json(found) if found is not None else None
    todo = await ticket_query.callbacks(deps.engine, deps.clock())
    agents = [a.id for a in deps.control.state().agents]
    return render(
        request,
        "console.html",
        {
            "agent_id": agent_id,
            "current": current,
            "focus": focus,
            "callbacks": todo,
            "agents": agents,
            "answers": await answer_callbacks(request, p),
            "postal_requests": await pages_postal.waiting(request, p.user),
        },
    )


@guard(P.CONSOLE, api=False)
async def console_state(request: Request, p: Principal) -> Response:
    data = await form(request)
    if p.user.agent_id is None:
        return back("/console", err="no_agent")
    try:
        agent_ops.change_state(
            request.app.state.deps.control,
            p.user,
            p.user.agent_id,
            data.get("op", ""),
            data.get("reason"),
        )
    except ApiError as exc:
        return back("/console", err=exc.error_id)
    return back("/console", ok="state")


@guard(P.CONSOLE, api=False)
async def console_call(request: Request, p: Principal) -> Response:
    data = await form(request)
    if p.user.agent_id is None:
        return back("/console", err="no_agent")
    try:
        await agent_ops.call_back(
            request.app.state.deps.control,
            request.app.state.actions,
            p.user,
            p.user.agent_id,
            None,
            data.get("ticket", "")[:32] or None,
        )
    except ApiError as exc:
        return back("/console", err=exc.error_id)
    return back("/console", ok="calling")


# -- live stream and metrics -----------------------------------------------------------------


@guard(P.WALLBOARD, P.CONSOLE, api=True)
async def live(request: Request, p: Principal) -> Response:
    """Server-sent events: supervisors get everything, an agent only its own view."""
    deps = request.app.state.deps
    full = p.user.can(P.WALLBOARD)
    if not full and p.user.agent_id is None:
        raise ApiError(409, "no_agent", "your account is not linked to an agent")
    sub = deps.hub.subscribe(
        None if full else p.user.agent_id, session=p.session_id, user_id=p.user.id
    )

    async def still_valid() -> bool:
        return await still_authenticated(request, p)

    return StreamingResponse(
        stream(deps.hub, sub, ping_s=deps.ping_s, still_valid=still_valid),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


@guard(P.METRICS, api=True)
async def metrics(request: Request, p: Principal) -> Response:
    source = request.app.state.deps.metrics
    if source is None:
        raise ApiError(404, "not_found", "metrics are not enabled in this app")
    return Response(source.render(), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/wallboard", wallboard, methods=["GET"]),
        Route("/wallboard/agents/{agent_id}", wallboard_agent, methods=["POST"]),
        Route("/wallboard/spy", wallboard_spy, methods=["POST"]),
        Route("/wallboard/announcement", wallboard_announce, methods=["POST"]),
        Route("/console", console, methods=["GET"]),
        Route("/console/state", console_state, methods=["POST"]),
        Route("/console/call", console_call, methods=["POST"]),
        Route("/live", live, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
