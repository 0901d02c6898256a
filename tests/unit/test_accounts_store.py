"""Accounts, sessions and tokens (SQLite and PostgreSQL), and the login form's protections:
CSRF, rate limit, cookie flags, no open redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from accounts.model import Role
from accounts.store import AuthStore, create_demo_users
from bench.web_rig import FAST_HASHER, LOGIN_CSRF_RE, WebRig, login, web_rig
from tongdai.db import make_engine, upgrade_engine
from web.limits import parse_proxies


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[AuthStore]:
    engine = make_engine(db_url)
    await upgrade_engine(engine)
    try:
        yield AuthStore(engine, hasher=FAST_HASHER)
    finally:
        await engine.dispose()


async def test_given_a_user_when_logging_in_then_only_the_right_password_works(
    store: AuthStore,
) -> None:
    await store.add_user("lan", "agent", "mat-khau-dai-1", agent_id="agent101")
    user = await store.login("lan", "mat-khau-dai-1")
    assert user is not None and user.role is Role.AGENT and user.agent_id == "agent101"
    assert await store.login("lan", "mat-khau-sai-1") is None
    assert await store.login("nobody", "mat-khau-dai-1") is None


async def test_given_bad_fields_when_adding_a_user_then_value_error(store: AuthStore) -> None:
    with pytest.raises(ValueError, match="password too short"):
        await store.add_user("lan", "agent", "short")
    with pytest.raises(ValueError, match="role"):
        await store.add_user("lan", "boss", "mat-khau-dai-1")
    with pytest.raises(ValueError, match="user name"):
        await store.add_user("Lan Anh", "agent", "mat-khau-dai-1")
    with pytest.raises(ValueError, match="phone"):
        await store.add_user("lan", "supervisor", "mat-khau-dai-1", phone="agent120")
    await store.add_user("lan", "agent", "mat-khau-dai-1")
    with pytest.raises(ValueError, match="exists"):
        await store.add_user("lan", "agent", "mat-khau-dai-2")


async def test_given_a_password_when_stored_then_only_an_argon2_hash_is_kept(
    store: AuthStore,
) -> None:
    from sqlalchemy import select

    from accounts.store import U

    await store.add_user("lan", "agent", "mat-khau-dai-1")
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(U.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and "mat-khau" not in stored


async def test_given_a_session_when_it_expires_or_ends_then_it_no_longer_authenticates(
    store: AuthStore,
) -> None:
    user = await store.add_user("gs", "supervisor", "mat-khau-dai-1")
    token, csrf = await store.new_session(user)
    found = await store.session(token)
    assert found is not None and found[0].name == "gs" and found[1] == csrf
    later = AuthStore(
        store.engine, hasher=FAST_HASHER, clock=lambda: datetime.now(UTC) + timedelta(hours=13)
    )
    assert await later.session(token) is None
    await store.end_session(token)
    assert await store.session(token) is None


async def test_given_an_api_token_when_revoked_then_it_stops_working(store: AuthStore) -> None:
    await store.add_user("bot", "manager", None)
    token = await store.new_token("bot", "reports")
    assert token.startswith("tdk_")
    user = await store.token_user(token)
    assert user is not None and user.name == "bot"
    assert await store.token_user(token + "x") is None
    assert await store.token_user("not-a-token") is None
    assert await store.revoke_tokens("bot") == 1
    assert await store.token_user(token) is None


async def test_given_demo_users_when_created_twice_then_passwords_are_new_and_work(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    await upgrade_engine(engine)
    try:
        first = await create_demo_users(engine)
        second = await create_demo_users(engine)
        assert {r for _, r, _ in first} == {"agent", "supervisor", "manager", "admin", "agency"}
        assert all(a[2] != b[2] and len(a[2]) >= 12 for a, b in zip(first, second, strict=True))
        store = AuthStore(engine)
        name, _, password = second[0]
        assert await store.login(name, password) is not None
        assert await store.login(name, first[0][2]) is None
    finally:
        await engine.dispose()


# -- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[WebRig]:
    async with web_rig(db_url) as r:
        yield r


def client(rig: WebRig, scheme: str = "http") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=rig.app)
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://t")


async def _login_form(c: httpx.AsyncClient) -> str:
    found = LOGIN_CSRF_RE.search((await c.get("/login")).text)
    assert found is not None
    return found.group(1)


async def test_given_wrong_passwords_when_logging_in_five_times_then_429(rig: WebRig) -> None:
    async with client(rig) as c:
        for _ in range(5):
            token = await _login_form(c)
            r = await c.post(
                "/login", data={"name": "giamsat", "password": "sai-roi-1234", "login_csrf": token}
            )
            assert r.status_code == 401
        token = await _login_form(c)
        right = rig.accounts["giamsat"].password
        r = await c.post("/login", data={"name": "giamsat", "password": right, "login_csrf": token})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 200
        assert "quá nhiều lần" in r.text


async def test_given_no_login_token_when_posting_the_login_form_then_403(rig: WebRig) -> None:
    async with client(rig) as c:
        password = rig.accounts["giamsat"].password
        r = await c.post("/login", data={"name": "giamsat", "password": password})
        assert r.status_code == 403
        assert "tongdai_session" not in c.cookies


async def test_given_a_login_then_the_cookie_is_httponly_and_lax_and_secure_when_asked(
    db_url: str,
) -> None:
    for secure in (False, True):
        url = db_url.replace(".db", f"{secure}.db")
        # a Secure cookie only goes back over https
        async with (
            web_rig(url, cookie_secure=secure) as rig,
            client(rig, "https" if secure else "http") as c,
        ):
            token = await _login_form(c)
            a = rig.accounts["giamsat"]
            r = await c.post(
                "/login", data={"name": "giamsat", "password": a.password, "login_csrf": token}
            )
            cookie = next(
                v
                for k, v in r.headers.multi_items()
                if k == "set-cookie" and v.startswith("tongdai_session=")
            )
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie
            assert ("Secure" in cookie) is secure
        if not db_url.startswith("sqlite"):
            break  # one PostgreSQL database per test: the secure variant ran on SQLite


async def test_given_a_next_url_off_site_when_logging_in_then_it_is_ignored(rig: WebRig) -> None:
    async with client(rig) as c:
        found = LOGIN_CSRF_RE.search((await c.get("/login?next=//evil.example/x")).text)
        assert found is not None
        a = rig.accounts["tdv101"]
        data = {
            "name": "tdv101",
            "password": a.password,
            "login_csrf": found.group(1),
            "next": "//evil.example/x",
        }
        r = await c.post("/login", data=data)
        assert r.status_code == 303 and r.headers["location"] == "/console"


async def test_given_a_session_when_posting_a_form_without_csrf_then_403(rig: WebRig) -> None:
    async with client(rig) as c:
        csrf = await login(c, "giamsat", rig.accounts["giamsat"].password)
        r = await c.post("/wallboard/agents/agent101", data={"op": "login"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await c.post("/wallboard/agents/agent101", data={"op": "login", "csrf": "wrong"})
        assert r.status_code == 403
        r = await c.patch("/api/v1/tickets/1022-20260101-000001", json={"notes": "x"})
        assert r.status_code == 403 and r.json()["error"]["id"] == "csrf"
        r = await c.post("/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await c.get("/api/v1/me")).status_code == 401


async def test_given_a_bearer_token_when_posting_then_no_csrf_is_needed(rig: WebRig) -> None:
    async with client(rig) as c:
        h = {"Authorization": f"Bearer {rig.tokens['giamsat']}"}
        r = await c.put("/api/v1/announcement", json={"text": "Mất điện khu vực Tam Kỳ"}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["announcement"]["created_by"] == "giamsat"


async def test_given_a_trusted_proxy_then_each_citizen_behind_it_has_its_own_limit(
    db_url: str,
) -> None:
    """Behind nginx every request comes from the proxy: without X-Forwarded-For, one person's
    failures would lock everyone out; with it, each address counts for itself."""
    async with web_rig(db_url, trusted_proxies=parse_proxies("127.0.0.1")) as rig:
        c = client(rig)
        async with c:
            for _ in range(5):
                token = await _login_form(c)
                r = await c.post(
                    "/login",
                    data={"name": "giamsat", "password": "sai-roi-1234", "login_csrf": token},
                    headers={"X-Forwarded-For": "203.0.113.9"},
                )
                assert r.status_code == 401
            right = rig.accounts["giamsat"].password
            for xff, status in (("203.0.113.9", 429), ("198.51.100.7", 303)):
                token = await _login_form(c)
                r = await c.post(
                    "/login",
                    data={"name": "giamsat", "password": right, "login_csrf": token},
                    headers={"X-Forwarded-For": xff},
                )
                assert r.status_code == status
