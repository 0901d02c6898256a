"""The accounts page (``/admin/users``, administrators only): list, add, change a role, disable
or enable, reset a password.

Forms post back with the session's CSRF token (``web.security.guard``) and redirect (303) with a
fixed message key, like the other pages: nothing typed is reflected. The work is done by
``web.users``, which the API uses too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from accounts.model import MIN_PASSWORD, Perm
from web import users
from web.errors import ApiError
from web.render import back, form, render
from web.security import Principal, guard

PAGE = "/admin/users"
#: a form's ``op`` -> the message key shown after it
OPS = {
    "role": "role_changed",
    "disable": "user_disabled",
    "enable": "user_enabled",
    "password": "password_reset",
}


@guard(Perm.USERS, api=False)
async def users_page(request: Request, p: Principal) -> Response:
    accounts = await request.app.state.auth.accounts()
    phones = request.app.state.deps.control.supervisor_phones()
    return render(
        request,
        "users.html",
        {
            "accounts": accounts,
            "roles": users.ROLES,
            "phones": phones,
            "min_password": MIN_PASSWORD,
            "agencies": list(request.app.state.desk.book),
        },
    )


@guard(Perm.USERS, api=False)
async def users_add(request: Request, p: Principal) -> Response:
    data = await form(request)
    try:
        await users.add(request.app.state.auth, users.new_user(data), request.app.state.desk.book)
    except ApiError as exc:
        return back(PAGE, err=exc.error_id)
    return back(PAGE, ok="user_added")


@guard(Perm.USERS, api=False)
async def users_change(request: Request, p: Principal) -> Response:
    data = await form(request)
    name = str(request.path_params["name"])[:64]
    op = data.get("op", "")
    auth, hub = request.app.state.auth, request.app.state.deps.hub
    try:
        if op == "password":
            await users.reset_password(auth, hub, name, users.check_password(data.get("password")))
        elif op == "role":
            changes = users.checked_changes({"role": data.get("role")})
            await users.change(auth, hub, p.user, name, changes)
        elif op in ("disable", "enable"):
            await users.change(auth, hub, p.user, name, {"disabled": op == "disable"})
        else:
            raise ApiError(422, "invalid_input", "op: role, disable, enable or password")
    except ApiError as exc:
        return back(PAGE, err=exc.error_id)
    return back(PAGE, ok=OPS[op])


def routes() -> list[BaseRoute]:
    return [
        Route(PAGE, users_page, methods=["GET"]),
        Route(PAGE, users_add, methods=["POST"]),
        Route(f"{PAGE}/{{name}}", users_change, methods=["POST"]),
    ]
