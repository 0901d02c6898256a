"""Account administration: the accounts page and /api/v1/users (administrators only): add with
an argon2 hash and a minimum password length, change a role, disable and enable, reset a
password; CSRF, escaping, no self-lockout (so one admin always stays); every other role gets 403."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from accounts.model import MIN_PASSWORD
from accounts.store import AuthStore, U
from bench.web_rig import FAST_HASHER, LOGIN_CSRF_RE, WebRig, login, web_rig

PAGE = "/admin/users"
GOOD_PASSWORD = "mat-khau-moi-2026"
XSS_NAME = '<script>alert("tên")</script>'


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[WebRig]:
    async with web_rig(db_url) as r:
        yield r


def client(rig: WebRig, who: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=rig.app)
    headers = {"Authorization": f"Bearer {rig.tokens[who]}"} if who else {}
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


@contextlib.asynccontextmanager
async def browser(
    rig: WebRig, who: str = "quantri"
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with client(rig) as c:
        yield c, await login(c, who, rig.accounts[who].password)


async def try_login(rig: WebRig, name: str, password: str) -> int:
    async with client(rig) as c:
        found = LOGIN_CSRF_RE.search((await c.get("/login")).text)
        assert found is not None
        r = await c.post(
            "/login", data={"name": name, "password": password, "login_csrf": found.group(1)}
        )
        return r.status_code


def auth(rig: WebRig) -> AuthStore:
    return AuthStore(rig.deps.engine, hasher=FAST_HASHER)


def ok_key(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


# -- the page --------------------------------------------------------------------------------


async def test_given_an_admin_when_opening_the_page_then_every_account_is_listed(
    rig: WebRig,
) -> None:
    await auth(rig).update_user("quanly", disabled=True)
    async with browser(rig) as (c, _):
        page = await c.get(PAGE)
        assert page.status_code == 200
        for name in rig.accounts:
            assert f'data-user="{name}"' in page.text
        assert 'data-user="quanly" data-disabled="yes"' in page.text  # disabled ones too
        assert "Thêm tài khoản" in page.text and "Giám sát viên" in page.text
        assert 'href="/admin/users" aria-current="page"' in page.text
        assert 'value="PJSIP/sup201"' not in page.text  # no ACD here: no phones to suggest
        assert "$argon2" not in page.text


async def test_given_the_add_form_when_posted_then_the_user_logs_in_with_an_argon2_hash(
    rig: WebRig,
) -> None:
    async with browser(rig) as (c, csrf):
        form = {
            "csrf": csrf,
            "name": "Lan.Nguyen",  # stored in lower case
            "display_name": XSS_NAME,
            "role": "agent",
            "password": GOOD_PASSWORD,
            "agent_id": "agent104",
            "phone": "",
        }
        assert ok_key(await c.post(PAGE, data=form)).endswith("?ok=user_added")
        page = (await c.get(PAGE)).text
        assert XSS_NAME not in page and "&lt;script&gt;alert(&#34;tên&#34;)&lt;/script&gt;" in page
        # the same name again
        assert ok_key(await c.post(PAGE, data=form)).endswith("?err=user_exists")
    async with rig.deps.engine.connect() as conn:
        stored = await conn.execute(select(U.c.password_hash).where(U.c.name == "lan.nguyen"))
        hashed = stored.scalar_one()
    assert hashed.startswith("$argon2id$") and GOOD_PASSWORD not in hashed
    assert await try_login(rig, "lan.nguyen", GOOD_PASSWORD) == 303
    user = await auth(rig).get_user("lan.nguyen")
    assert user is not None and (user.role, user.agent_id, user.phone) == (
        "agent",
        "agent104",
        None,
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"password": "x" * (MIN_PASSWORD - 1)}, "weak_password"),
        ({"role": "boss"}, "invalid_input"),
        ({"name": "Lan Anh"}, "invalid_input"),
        ({"phone": "agent120"}, "invalid_input"),
        ({"display_name": "a\x00b"}, "invalid_input"),
    ],
)
async def test_given_a_bad_field_when_adding_then_refused_and_nothing_is_created(
    rig: WebRig, change: dict[str, str], error: str
) -> None:
    form = {"name": "minh", "role": "agent", "password": GOOD_PASSWORD, **change}
    async with browser(rig) as (c, csrf):
        assert ok_key(await c.post(PAGE, data={**form, "csrf": csrf})).endswith(f"?err={error}")
    assert await auth(rig).account(form["name"].lower()) is None


async def test_given_no_csrf_token_when_posting_then_403_and_nothing_changes(rig: WebRig) -> None:
    form = {"name": "minh", "role": "admin", "password": GOOD_PASSWORD}
    async with browser(rig) as (c, _):
        assert (await c.post(PAGE, data=form)).status_code == 403
        r = await c.post(f"{PAGE}/giamsat", data={"op": "role", "role": "admin", "csrf": "x"})
        assert r.status_code == 403
    assert await auth(rig).account("minh") is None
    giamsat = await auth(rig).get_user("giamsat")
    assert giamsat is not None and giamsat.role == "supervisor"


async def test_given_the_role_form_then_the_role_changes_and_the_server_enforces_it(
    rig: WebRig,
) -> None:
    async with client(rig, "quanly") as manager:
        assert (await manager.get("/api/v1/agents")).status_code == 403
        async with browser(rig) as (c, csrf):
            r = await c.post(
                f"{PAGE}/quanly", data={"csrf": csrf, "op": "role", "role": "supervisor"}
            )
            assert ok_key(r).endswith("?ok=role_changed")
            assert "Giám sát viên" in (await c.get(PAGE)).text
        me = (await manager.get("/api/v1/me")).json()
        assert me["role"] == "supervisor"
        assert (await manager.get("/api/v1/agents")).status_code == 200  # at once, same token


async def test_given_disable_then_login_session_and_token_stop_and_enable_restores_login(
    rig: WebRig,
) -> None:
    password = rig.accounts["tdv101"].password
    async with browser(rig, "tdv101") as (agent, _), client(rig, "tdv101") as api:
        assert (await agent.get("/console")).status_code == 200
        async with browser(rig) as (c, csrf):
            r = await c.post(f"{PAGE}/tdv101", data={"csrf": csrf, "op": "disable"})
            assert ok_key(r).endswith("?ok=user_disabled")
            assert 'data-user="tdv101" data-disabled="yes"' in (await c.get(PAGE)).text
        assert (await agent.get("/api/v1/me")).status_code == 401  # the session ended
        assert (await api.get("/api/v1/me")).status_code == 401  # the token is refused
        assert await try_login(rig, "tdv101", password) == 401
        async with browser(rig) as (c, csrf):
            r = await c.post(f"{PAGE}/tdv101", data={"csrf": csrf, "op": "enable"})
            assert ok_key(r).endswith("?ok=user_enabled")
        assert await try_login(rig, "tdv101", password) == 303
        assert (await api.get("/api/v1/me")).status_code == 200
        assert (await agent.get("/api/v1/me")).status_code == 401  # old sessions stay ended


async def test_given_a_password_reset_then_only_the_new_one_works_and_sessions_end(
    rig: WebRig,
) -> None:
    old = rig.accounts["giamsat"].password
    async with browser(rig, "giamsat") as (sup, _):
        async with browser(rig) as (c, csrf):
            short = {"csrf": csrf, "op": "password", "password": "ngan"}
            assert ok_key(await c.post(f"{PAGE}/giamsat", data=short)).endswith(
                "?err=weak_password"
            )
            assert (await sup.get("/api/v1/me")).status_code == 200  # nothing happened
            form = {"csrf": csrf, "op": "password", "password": GOOD_PASSWORD}
            r = await c.post(f"{PAGE}/giamsat", data=form)
            assert ok_key(r).endswith("?ok=password_reset")
            r = await c.post(f"{PAGE}/nobody", data=form)
            assert ok_key(r).endswith("?err=not_found")
        assert (await sup.get("/api/v1/me")).status_code == 401
    assert await try_login(rig, "giamsat", old) == 401
    assert await try_login(rig, "giamsat", GOOD_PASSWORD) == 303


async def test_given_an_admin_then_it_cannot_lock_itself_out_and_one_admin_always_stays(
    rig: WebRig,
) -> None:
    async with browser(rig) as (c, csrf):
        for form in ({"op": "disable"}, {"op": "role", "role": "manager"}):
            r = await c.post(f"{PAGE}/quantri", data={**form, "csrf": csrf})
            assert ok_key(r).endswith("?err=self_lockout")
        r = await c.post(f"{PAGE}/quantri", data={"op": "dance", "csrf": csrf})
        assert ok_key(r).endswith("?err=invalid_input")
    # another admin may disable an admin; the one left cannot lock itself out either
    store = auth(rig)
    await store.add_user("quantri2", "admin", GOOD_PASSWORD)
    async with browser(rig) as (c, csrf):
        r = await c.post(f"{PAGE}/quantri2", data={"op": "disable", "csrf": csrf})
        assert ok_key(r).endswith("?ok=user_disabled")  # another admin: allowed
    async with client(rig, "quantri") as api:
        r = await api.patch("/api/v1/users/quantri2", json={"disabled": False})
        assert r.status_code == 200
        await store.update_user("quantri", role="manager")  # done by the CLI, say
    async with client(rig) as c:
        csrf = await login(c, "quantri2", GOOD_PASSWORD)
        r = await c.post(f"{PAGE}/quantri2", data={"op": "disable", "csrf": csrf})
        assert ok_key(r).endswith("?err=self_lockout")
    found = await store.account("quantri2")
    assert found is not None and not found.disabled and found.user.role == "admin"


# -- the API ---------------------------------------------------------------------------------


async def test_given_the_api_then_an_admin_lists_adds_changes_and_resets(rig: WebRig) -> None:
    async with client(rig, "quantri") as c:
        listed = (await c.get("/api/v1/users")).json()["users"]
        assert sorted(u["name"] for u in listed) == sorted(rig.accounts)
        assert all("password" not in key for u in listed for key in u if key != "has_password")
        body: dict[str, Any] = {
            "name": "hoa",
            "display_name": "Lê Thị Hoa",
            "role": "supervisor",
            "password": GOOD_PASSWORD,
            "phone": "PJSIP/sup201",
        }
        r = await c.post("/api/v1/users", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["name"], made["role"], made["phone"], made["disabled"]) == (
            "hoa", "supervisor", "PJSIP/sup201", False,
        )  # fmt: skip
        assert (await c.post("/api/v1/users", json=body)).status_code == 409
        weak = await c.post("/api/v1/users", json={**body, "name": "hoa2", "password": "ngan"})
        assert weak.status_code == 422 and weak.json()["error"]["id"] == "weak_password"
        extra = await c.post("/api/v1/users", json={**body, "name": "hoa3", "admin": True})
        assert extra.status_code == 422 and extra.json()["error"]["details"]["unknown"] == ["admin"]

        r = await c.patch("/api/v1/users/hoa", json={"role": "manager", "phone": None})
        assert r.status_code == 200 and (r.json()["role"], r.json()["phone"]) == ("manager", None)
        r = await c.patch("/api/v1/users/hoa", json={"disabled": True})
        assert r.json()["disabled"] is True
        assert (await c.get("/api/v1/users/hoa")).json()["disabled"] is True
        r = await c.patch("/api/v1/users/hoa", json={"disabled": "yes"})
        assert r.status_code == 422
        r = await c.patch("/api/v1/users/hoa", json={"role": "boss"})
        assert r.status_code == 422
        assert (await c.get("/api/v1/users/nobody")).status_code == 404
        assert (await c.patch("/api/v1/users/nobody", json={"disabled": True})).status_code == 404

        r = await c.put("/api/v1/users/giamsat/password", json={"password": GOOD_PASSWORD})
        assert r.status_code == 200 and r.json()["password_set"] is True
        r = await c.put("/api/v1/users/giamsat/password", json={"password": "ngan"})
        assert r.status_code == 422
        r = await c.patch("/api/v1/users/quantri", json={"role": "agent"})
        assert r.status_code == 409 and r.json()["error"]["id"] == "self_lockout"
    assert await try_login(rig, "giamsat", GOOD_PASSWORD) == 303


async def test_given_a_cookie_session_then_the_api_needs_the_csrf_header(rig: WebRig) -> None:
    async with browser(rig) as (c, csrf):
        body = {"name": "minh", "role": "agent", "password": GOOD_PASSWORD}
        r = await c.post("/api/v1/users", json=body)
        assert r.status_code == 403 and r.json()["error"]["id"] == "csrf"
        r = await c.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201


USER_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"name": "minh", "role": "admin", "password": GOOD_PASSWORD}),
    ("GET", "/api/v1/users/quantri", None),
    ("PATCH", "/api/v1/users/quantri", {"disabled": True}),
    ("PATCH", "/api/v1/users/tdv101", {"role": "admin"}),
    ("PUT", "/api/v1/users/quantri/password", {"password": GOOD_PASSWORD}),
]


@pytest.mark.parametrize("who", ["tdv101", "giamsat", "quanly"])
async def test_given_a_role_other_than_admin_then_every_user_endpoint_is_403(
    rig: WebRig, who: str
) -> None:
    async with client(rig, who) as c:
        for method, path, body in USER_ENDPOINTS:
            r = await c.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.status_code)
            assert r.json()["error"]["id"] == "forbidden"
    async with browser(rig, who) as (c, csrf):
        page = await c.get(PAGE)
        assert page.status_code == 403 and "Tài khoản người dùng" not in page.text
        assert 'href="/admin/users"' not in (await c.get("/tickets")).text  # no menu entry
        forms = [
            (PAGE, {"name": "minh", "role": "admin", "password": GOOD_PASSWORD}),
            (f"{PAGE}/quantri", {"op": "disable"}),
            (f"{PAGE}/tdv101", {"op": "role", "role": "admin"}),
            (f"{PAGE}/quantri", {"op": "password", "password": GOOD_PASSWORD}),
        ]
        for path, form in forms:
            assert (await c.post(path, data={**form, "csrf": csrf})).status_code == 403, path
    store = auth(rig)
    assert await store.account("minh") is None
    quantri, tdv101 = await store.account("quantri"), await store.get_user("tdv101")
    assert quantri is not None and not quantri.disabled
    assert tdv101 is not None and tdv101.role == "agent"
    assert await try_login(rig, "quantri", rig.accounts["quantri"].password) == 303
