"""Every endpoint x every role: anonymous callers get 401 (API) or a redirect to /login (pages),
a role without the permission gets 403, the others get through (whatever the action then says).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bench.web_rig import SimAcd, WebRig, login, web_rig
from hotline.metrics import Metrics

ROLES = ("anon", "tdv101", "giamsat", "quanly", "quantri")
ALL = {"anon": 401, "tdv101": 200, "giamsat": 200, "quanly": 200, "quantri": 200}


def only(allowed: dict[str, int], *, anon: int = 401, others: int = 403) -> dict[str, int]:
    return {r: allowed.get(r, anon if r == "anon" else others) for r in ROLES}


SUP = {"giamsat": 200, "quantri": 200}


def sup(status: int, **more: int) -> dict[str, int]:
    """Supervisors and admins get ``status`` (and ``more`` roles theirs); others 403."""
    return only({"giamsat": status, "quantri": status, **more})


def page(allowed: dict[str, int]) -> dict[str, int]:
    return only(allowed, anon=303)  # anonymous: to /login


# (method, path, JSON body, expected status per role); {T} is a ticket of agent102,
# {F} a ticket nobody has taken
NUMBER = {"number": "0905123456"}
ADMIN = {"quantri": 200}
NEW_USER = {"name": "minh", "role": "agent", "password": "mat-khau-dai-2026"}
API: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/api/v1/me", None, ALL),
    ("GET", "/api/v1/openapi.json", None, ALL),
    ("GET", "/api/v1/queues", None, only(SUP)),
    ("GET", "/api/v1/calls", None, only(SUP)),
    ("GET", "/api/v1/agents", None, only(SUP)),
    ("GET", "/api/v1/agents/agent101", None, sup(200, tdv101=200)),
    ("GET", "/api/v1/agents/agent102", None, only(SUP)),
    ("POST", "/api/v1/agents/agent101/state", {"op": "pause"}, sup(200, tdv101=200)),
    ("POST", "/api/v1/agents/agent102/state", {"op": "pause", "reason": "meal"}, only(SUP)),
    ("POST", "/api/v1/agents/agent102/spy", {"mode": "listen"}, sup(409)),  # not on a call
    ("POST", "/api/v1/agents/agent102/call", NUMBER, sup(202)),
    ("POST", "/api/v1/agents/agent101/call", NUMBER, sup(202, tdv101=202)),
    ("GET", "/api/v1/tickets", None, ALL),
    ("GET", "/api/v1/tickets/{T}", None, ALL),
    ("PATCH", "/api/v1/tickets/{T}", {"notes": "ghi chú"}, only(SUP)),
    ("PATCH", "/api/v1/tickets/{F}", {"notes": "ghi chú"}, sup(200, tdv101=200)),
    ("GET", "/api/v1/callbacks", None, ALL),
    ("GET", "/api/v1/dossiers/12345678", None, {**{r: 404 for r in ROLES}, "anon": 401}),
    ("GET", "/api/v1/console", None, only({"tdv101": 200, "quantri": 200, "giamsat": 409})),
    ("GET", "/api/v1/announcement", None, only(SUP)),
    ("PUT", "/api/v1/announcement", {"text": "Thông báo thử"}, only(SUP)),
    ("DELETE", "/api/v1/announcement", None, only(SUP)),
    ("GET", "/metrics", None, ALL),
    ("GET", "/api/health", None, ALL),
    ("GET", "/api/v1/users", None, only(ADMIN)),
    ("POST", "/api/v1/users", NEW_USER, only({"quantri": 201})),
    ("GET", "/api/v1/users/tdv102", None, only(ADMIN)),
    ("PATCH", "/api/v1/users/tdv102", {"display_name": "Trần Văn Minh"}, only(ADMIN)),
    ("PUT", "/api/v1/users/tdv102/password", {"password": "mat-khau-dai-2026"}, only(ADMIN)),
]

WORKERS = {"tdv101": 200, "giamsat": 200, "quantri": 200}
MANAGERS = {"quanly": 200, "quantri": 200}
SUP_POST = {"giamsat": 303, "quantri": 303}
WORKERS_POST = {"tdv101": 303, "giamsat": 303, "quantri": 303}
PAGES: list[tuple[str, str, dict[str, str] | None, dict[str, int]]] = [
    ("GET", "/", None, page({r: 303 for r in ROLES[1:]})),
    ("GET", "/wallboard", None, page(SUP)),
    ("GET", "/console", None, page(WORKERS)),
    ("GET", "/tickets", None, {**ALL, "anon": 303}),
    ("GET", "/tickets/{T}", None, {**ALL, "anon": 303}),
    ("GET", "/reports", None, page(MANAGERS)),
    ("GET", "/reports/view?from=2026-01-01&to=2026-01-31", None, page(MANAGERS)),
    ("GET", "/recordings/msg.wav", None, {**ALL, "anon": 303}),
    ("POST", "/wallboard/agents/agent102", {"op": "pause"}, page(SUP_POST)),
    ("POST", "/wallboard/spy", {"agent": "agent102", "mode": "listen"}, page(SUP_POST)),
    ("POST", "/wallboard/announcement", {"action": "clear"}, page(SUP_POST)),
    ("POST", "/console/state", {"op": "pause"}, page(WORKERS_POST)),
    ("POST", "/tickets/{F}", {"notes": "x"}, page(WORKERS_POST)),
    ("GET", "/admin/users", None, page({"quantri": 200})),
    ("POST", "/admin/users", {**NEW_USER, "name": "minh2"}, page({"quantri": 303})),
    ("POST", "/admin/users/tdv102", {"op": "role", "role": "agent"}, page({"quantri": 303})),
]


@pytest.fixture
async def world(
    make_db_url: Callable[[str], str], tmp_path: Any
) -> AsyncIterator[tuple[WebRig, dict[str, str]]]:
    sim = SimAcd()
    await sim.start(login=["agent101", "agent102", "agent103"])
    (tmp_path / "msg.wav").write_bytes(b"RIFF0000WAVE")
    async with web_rig(
        make_db_url("sqlite"), sim.control, messages_dir=tmp_path, metrics=Metrics()
    ) as rig:
        now = datetime.now(UTC)
        taken = await rig.deps.tickets.open(
            channel="voice", caller="0905", uniqueid="u1", started_at=now
        )
        await rig.deps.tickets.update(taken.code, agent="agent102")
        free = await rig.deps.tickets.open(
            channel="voice", caller="0906", uniqueid="u2", started_at=now
        )
        try:
            yield rig, {"{T}": taken.code, "{F}": free.code}
        finally:
            await sim.stop()


def _fill(path: str, codes: dict[str, str]) -> str:
    for key, code in codes.items():
        path = path.replace(key, code)
    return path


@pytest.mark.parametrize("role", ROLES)
async def test_every_api_endpoint_enforces_the_role_matrix(
    role: str, world: tuple[WebRig, dict[str, str]]
) -> None:
    rig, codes = world
    headers = {} if role == "anon" else {"Authorization": f"Bearer {rig.tokens[role]}"}
    wrong = []
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for method, path, body, expected in API:
            r = await c.request(method, _fill(path, codes), json=body, headers=headers)
            if r.status_code != expected[role]:
                wrong.append(
                    f"{method} {path}: {r.status_code} (want {expected[role]}) {r.text[:120]}"
                )
            if r.status_code >= 400 and not path.startswith("/metrics"):
                assert set(r.json()["error"]) == {"id", "message", "details"}
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
async def test_every_page_enforces_the_role_matrix(
    role: str, world: tuple[WebRig, dict[str, str]]
) -> None:
    rig, codes = world
    wrong = []
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        csrf = "" if role == "anon" else await login(c, role, rig.accounts[role].password)
        for method, path, form, expected in PAGES:
            data = {**form, "csrf": csrf} if form is not None else None
            r = await c.request(method, _fill(path, codes), data=data)
            if r.status_code != expected[role]:
                wrong.append(f"{method} {path}: {r.status_code} (want {expected[role]})")
            if role == "anon":
                assert r.headers["location"].startswith("/login?next=")
            elif r.status_code == 303 and method == "POST":
                assert "err=forbidden" not in r.headers["location"], (path, role)
    assert not wrong, "\n".join(wrong)
