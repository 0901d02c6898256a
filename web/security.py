"""Who is asking, and may they: authentication per request, role guards, CSRF, login limits.

A request is authenticated by ``Authorization: Bearer <token>`` (API clients) or by the session
cookie (browsers). ``guard`` wraps an endpoint: anonymous callers get 401 JSON on the API and a
redirect to ``/login`` on pages; a role without the permission gets 403. A state-changing
request authenticated by the cookie must carry the session's CSRF token (form field ``csrf``,
or header ``X-CSRF-Token`` for the pages' own ``fetch`` calls); bearer tokens are not sent by
browsers on their own, so they need none. The login form has its own double-submit token,
and failed logins are limited per client address and user name (``LoginLimiter``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from accounts.model import Perm, User
from accounts.store import AuthStore, session_key
from web.errors import ApiError
from web.limits import client_address

SESSION_COOKIE = "tongdai_session"
LOGIN_CSRF_COOKIE = "tongdai_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    user: User
    #: the session's CSRF token (None when authenticated by an API token)
    csrf: str | None
    via: str  # "session" | "token"
    #: the session's key (``accounts.store.session_key`` of the cookie; None for an API token):
    #: logging out ends the live streams opened under it
    session_id: str | None = None


async def _lookup(request: Request) -> Principal | None:
    auth: AuthStore = request.app.state.auth
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            user = await auth.token_user(token.strip())
            return Principal(user, None, "token") if user else None
        return None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and len(cookie) <= 100:
        found_session = await auth.session(cookie)
        if found_session is not None:
            return Principal(found_session[0], found_session[1], "session", session_key(cookie))
    return None


async def authenticate(request: Request) -> Principal | None:
    if hasattr(request.state, "principal"):
        found: Principal | None = request.state.principal
        return found
    principal = await _lookup(request)
    request.state.principal = principal
    return principal


async def still_authenticated(request: Request, principal: Principal) -> bool:
    """Do the request's credentials still log in the same account with the same role (asked
    again of the database: the session may have expired or ended, the account been disabled
    or changed)? A long-lived response (``/live``) checks this now and then."""
    again = await _lookup(request)
    if again is None:
        return False
    was, now = principal.user, again.user
    return (now.id, now.role, now.agent_id, now.agency_id) == (
        was.id, was.role, was.agent_id, was.agency_id,
    )  # fmt: skip


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(str(a), str(b))


async def check_csrf(request: Request, principal: Principal) -> bool:
    if request.method in SAFE_METHODS or principal.via != "session":
        return True
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    return same_token(sent, principal.csrf)


Endpoint = Callable[[Request, Principal], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]


def guard(*perms: Perm, api: bool) -> Callable[[Endpoint], Handler]:
    """Require a login, any one of ``perms`` (none given: any role) and, for state changes
    by cookie, the CSRF token. ``api`` decides JSON errors or HTML (redirect to /login)."""

    def wrap(endpoint: Endpoint) -> Handler:
        async def handler(request: Request) -> Response:
            principal = await authenticate(request)
            if principal is None:
                if api:
                    raise ApiError(401, "unauthenticated", "log in or send a bearer token")
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            if perms and not any(principal.user.can(p) for p in perms):
                raise ApiError(
                    403, "forbidden", "your role may not do this", {"role": principal.user.role}
                )
            if not await check_csrf(request, principal):
                raise ApiError(403, "csrf", "missing or wrong CSRF token")
            return await endpoint(request, principal)

        handler.__name__ = endpoint.__name__
        handler.__doc__ = endpoint.__doc__
        return handler

    return wrap


def client_ip(request: Request) -> str:
    """The client's address (through the configured reverse proxies: ``web.limits``)."""
    deps = getattr(request.app.state, "deps", None)
    return client_address(request, getattr(deps, "trusted_proxies", ()))


def cookie_args(secure: bool, max_age: int | None) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": secure, "max_age": max_age, "path": "/"}
