"""What is down, for people and for monitoring: ``GET /api/health`` (JSON, login + the
``metrics`` permission, like ``/metrics``) and the wallboard's degraded banner, kept current
over the live stream (a ``health`` event whenever a dependency goes down or comes back).

    {"status": "ok" | "degraded", "at": 1765130000.0, "down": ["redis"],
     "dependencies": [{"name": "redis", "up": false, "detail": "...", "since": 1765129900.0,
                       "label": "Redis (trạng thái phân phối cuộc gọi)", "effect": "..."}]}

``since`` (epoch seconds) is when the current state began. Without a ``Health`` (an app
built without the engine) the answer is ``ok`` with no dependencies.

Logins live in the database, so with the database away no request can be authenticated
(503 ``store_unavailable`` everywhere else). ``/api/health`` alone remembers the credentials
(a hash of the bearer token or session cookie) that it accepted in the last
``REMEMBER_S`` seconds and accepts them again while the database cannot be asked: the
monitoring that polls it keeps seeing *what* is down instead of a bare 503.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm
from tongdai.clock import utcnow
from tongdai.errors import StoreError
from tongdai.health import LABELS_VI, Health, banner_vi
from web.errors import ApiError
from web.live import LiveHub, Message, dumps
from web.security import SESSION_COOKIE, Principal, authenticate

#: how long a credential accepted by ``/api/health`` is accepted again with the database away
REMEMBER_S = 900.0
MAX_REMEMBERED = 1000


def health_view(health: Health | None) -> dict[str, Any]:
    if health is None:
        return {"status": "ok", "at": utcnow().timestamp(), "down": [], "dependencies": []}
    data = health.to_json()
    for dep in data["dependencies"]:
        label, effect = LABELS_VI.get(dep["name"], (dep["name"], ""))
        dep["label"] = label
        dep["effect"] = effect
    return data


def banner(health: Health | None) -> list[dict[str, Any]]:
    """The wallboard's banner lines (empty: nothing is down)."""
    return banner_vi(health.snapshot()) if health is not None else []


def follow(health: Health, hub: LiveHub) -> None:
    """Publish the banner now and after every change (supervisors only: agents' consoles
    get nothing of it)."""

    def publish(_name: str = "", _dep: object = None) -> None:
        hub.publish(Message("health", dumps({"down": banner(health)})))

    publish()
    health.listeners.append(publish)


def _credential(request: Request) -> str | None:
    raw = request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE)
    return hashlib.sha256(raw.encode()).hexdigest() if raw else None


class RecentLogins:
    """Credentials accepted lately (hashes only), for when the database cannot be asked."""

    def __init__(self, remember_s: float = REMEMBER_S) -> None:
        self.remember_s = remember_s
        self._seen: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def accepted(self, key: str, principal: Principal) -> None:
        self._seen[key] = (time.monotonic(), principal)
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def recall(self, key: str | None) -> Principal | None:
        found = self._seen.get(key) if key else None
        if found is None or time.monotonic() - found[0] > self.remember_s:
            return None
        return found[1]


def routes() -> list[BaseRoute]:
    recent = RecentLogins()

    async def api_health(request: Request) -> Response:
        key = _credential(request)
        try:
            principal = await authenticate(request)
        except StoreError:
            principal = recent.recall(key)
            if principal is None:
                raise
        if principal is None:
            raise ApiError(401, "unauthenticated", "log in or send a bearer token")
        if not principal.user.can(Perm.METRICS):
            raise ApiError(403, "forbidden", "your role may not do this")
        if key is not None:
            recent.accepted(key, principal)
        return JSONResponse(health_view(request.app.state.deps.health))

    return [Route("/api/health", api_health, methods=["GET"])]
