"""Test and demo rigs for the web app: a real ACD on a fake AMI, and an app on a database.

``SimAcd`` runs the engine's own ACD (``acd.service.AcdService``: real dispatcher, router,
voice and messaging adapters, recorder, listener hook) against ``FakeAmi``, which records
actions and lets a test play Asterisk's part: ``arrive`` (the IVR queues a caller), ``answer``
(the agent's phone answers: ``OriginateResponse`` Success), ``hangup``; conversations enter
through ``acd.messaging`` (``sim.messaging.enqueue(...)``). ``web_rig`` builds the app on a
database with one account per role. No Asterisk, no network: the browser tests and the API
tests use exactly these.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from accounts.model import User
from accounts.store import AuthStore
from acd.config import load_acd
from acd.dispatch import Event
from acd.service import AcdService
from pbx.fake import FakeAmi, FakeEvent
from tickets.memory import MemoryTicketStore
from tickets.sql import SqlTicketStore
from tongdai.db import make_engine, upgrade_engine
from tongdai.settings import PROJECT_HOME
from web.app import WebDeps, create_app
from web.control import RouterControl

#: argon2 at its cheapest, for tests only (a login costs ~1 ms instead of ~50)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class SimAcd:
    """The engine's ACD with a fake Asterisk (start it inside a running event loop)."""

    def __init__(
        self,
        config: Path | None = None,
        *,
        tickets: Any = None,
        tick_s: float = 0.05,
        max_calls: int | None = None,
    ) -> None:
        cfg = load_acd(config or PROJECT_HOME / "acd/agents_1022.toml")
        if max_calls is not None:
            cfg = replace(cfg, max_calls=max_calls)
        self.ami = FakeAmi()
        tickets = tickets if tickets is not None else MemoryTicketStore()
        self.acd = AcdService.build(cfg, self.ami, tickets, clock=time.time, tick_s=tick_s)
        self.router = self.acd.router
        self.voice = self.acd.voice
        self.messaging = self.acd.messaging
        self.control = RouterControl(self.router, self.ami)
        self._task: asyncio.Task[None] | None = None

    def use_tickets(self, tickets: Any) -> None:
        """Write the ACD's ticket changes (queue, agent, answer...) to ``tickets``."""
        self.acd.recorder.tickets = tickets

    def listen(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every ACD transition (e.g. a web app's live hub)."""
        self.router.listeners.append(listener)

    async def start(self, login: Iterable[str] = ()) -> None:
        await self.acd.start(login_all=False)
        for agent in login:
            self.router.login(agent)
        self._task = asyncio.create_task(self.acd.run(self.ami.stream()), name="sim-acd")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def arrive(self, uid: str, queue: str, caller: str | None, ticket: str | None = None) -> None:
        """The IVR puts a caller in line (and has finished with them)."""
        if not self.voice.enqueue(uid, f"PJSIP/citizen-{uid}", queue, caller, ticket):
            raise RuntimeError("the ACD is full")
        self.voice.ivr_done(uid)

    async def rung(self, uid: str, timeout: float = 3.0) -> dict[str, Any]:
        """The Originate that rings an agent for ``uid`` (waits for it)."""
        async with asyncio.timeout(timeout):
            while True:
                for o in self.ami.originates():
                    if f"TONGDAI_CALL={uid}" in o.get("Variable", []):
                        return o
                await asyncio.sleep(0.01)

    async def answer(self, uid: str) -> None:
        o = await self.rung(uid)
        await self.ami.events.put(
            FakeEvent("OriginateResponse", Uniqueid=o["ChannelId"], Response="Success")
        )

    async def hangup(self, uid: str) -> None:
        await self.ami.events.put(FakeEvent("Hangup", Uniqueid=uid))


LOGIN_CSRF_RE = re.compile(r'name="login_csrf" value="([^"]+)"')


async def login(client: Any, name: str, password: str) -> str:
    """Log ``client`` (an httpx.AsyncClient) in through the form; returns the CSRF token."""
    page = await client.get("/login")
    found = LOGIN_CSRF_RE.search(page.text)
    assert found is not None, "no login form"
    r = await client.post(
        "/login", data={"name": name, "password": password, "login_csrf": found.group(1)}
    )
    assert r.status_code == 303, f"login of {name} failed: {r.status_code}"
    me = await client.get("/api/v1/me")
    return str(me.json()["csrf"])


@dataclass
class Account:
    user: User
    password: str


@dataclass
class WebRig:
    deps: WebDeps
    app: Any
    accounts: dict[str, Account]
    tokens: dict[str, str]


def api_client(rig: WebRig, who: str | None) -> httpx.AsyncClient:
    """An HTTP client into ``rig``'s app with ``who``'s API token (None: no token)."""
    headers = {"Authorization": f"Bearer {rig.tokens[who]}"} if who else {}
    transport = httpx.ASGITransport(app=rig.app)
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


#: the rig's accounts: name -> (role, agent id, phone)
ACCOUNTS = {
    "tdv101": ("agent", "agent101", "PJSIP/agent101"),
    "tdv102": ("agent", "agent102", "PJSIP/agent102"),
    "giamsat": ("supervisor", None, "PJSIP/sup201"),
    "quanly": ("manager", None, None),
    "quantri": ("admin", "agent103", "PJSIP/sup201"),
}


@contextlib.asynccontextmanager
async def web_rig(
    db_url: str, control: Any = None, *, lifespan: bool = True, **deps_args: Any
) -> AsyncIterator[WebRig]:
    """The app on ``db_url`` (migrated) with one account (and API token) per ``ACCOUNTS``;
    the app's lifespan runs while the context is open (``lifespan=False``: uvicorn runs it)."""
    engine = make_engine(db_url)
    try:
        await upgrade_engine(engine)
        args: dict[str, Any] = {"hasher": FAST_HASHER, **deps_args}
        if control is not None:
            args["control"] = control
        deps = WebDeps(engine, SqlTicketStore(engine), **args)
        auth = AuthStore(engine, hasher=FAST_HASHER)
        accounts: dict[str, Account] = {}
        tokens: dict[str, str] = {}
        for name, (role, agent, phone) in ACCOUNTS.items():
            password = secrets.token_urlsafe(12)
            user = await auth.add_user(name, role, password, agent_id=agent, phone=phone)
            accounts[name] = Account(user, password)
            tokens[name] = await auth.new_token(name, "test")
        app = create_app(deps)
        rig = WebRig(deps, app, accounts, tokens)
        if lifespan:
            async with app.router.lifespan_context(app):
                yield rig
        else:
            yield rig
    finally:
        await engine.dispose()
