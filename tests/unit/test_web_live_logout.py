"""Live streams belong to a login: logging out ends that session's /live stream within a second
(not the account's other sessions), disabling the account ends all of them, and a session that
ends behind the web app's back (expiry, another process) stops the stream at the next ping.
Over a real uvicorn socket, as a browser's EventSource would see it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from accounts.store import AuthStore
from bench.web_rig import FAST_HASHER, WebRig, login, web_rig
from web.app import listen, serve
from web.live import LiveHub
from web.security import SESSION_COOKIE


def test_given_streams_of_two_sessions_when_one_ends_then_only_its_streams_end() -> None:
    hub = LiveHub()
    a1 = hub.subscribe(None, session="A", user_id=1)
    a2 = hub.subscribe(None, session="A", user_id=1)
    b = hub.subscribe(None, session="B", user_id=1)
    token = hub.subscribe(None, user_id=1)  # an API token's stream: no session
    other = hub.subscribe("agent101", session="C", user_id=2)
    assert hub.end_session("A") == 2
    assert a1.queue.get_nowait() is None and a2.queue.get_nowait() is None
    assert hub.clients == 3 and b.queue.empty() and token.queue.empty()
    assert hub.end_session("A") == 0
    assert hub.end_user(1) == 2
    assert b.queue.get_nowait() is None and token.queue.get_nowait() is None
    assert hub.clients == 1 and other.queue.empty()


@dataclass
class Served:
    rig: WebRig
    url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=5)


@contextlib.asynccontextmanager
async def serving(db_url: str, ping_s: float) -> AsyncIterator[Served]:
    async with web_rig(db_url, lifespan=False, ping_s=ping_s) as rig:
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        async with asyncio.timeout(5):
            await ready.wait()
        try:
            yield Served(rig, f"http://127.0.0.1:{sock.getsockname()[1]}")
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task


@pytest.fixture
async def served(make_db_url: Callable[[str], str]) -> AsyncIterator[Served]:
    """Pings every 30 s: a stream that ends within a second was ended by the hub, at once."""
    async with serving(make_db_url("sqlite"), ping_s=30.0) as s:
        yield s


@pytest.fixture
async def served_fast_ping(make_db_url: Callable[[str], str]) -> AsyncIterator[Served]:
    async with serving(make_db_url("sqlite"), ping_s=0.3) as s:
        yield s


class OpenStream:
    """A /live stream read in the background: ``ended`` is set when the server ends it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.ended = asyncio.Event()
        self.opened = asyncio.Event()
        self.status = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with self.client.stream("GET", "/live") as r:
            self.status = r.status_code
            self.opened.set()
            async for _ in r.aiter_lines():
                pass
        self.ended.set()

    async def wait_open(self) -> None:
        async with asyncio.timeout(3):
            await self.opened.wait()
        assert self.status == 200

    async def ends_within(self, seconds: float) -> float:
        began = time.perf_counter()
        async with asyncio.timeout(seconds):
            await self.ended.wait()
        return time.perf_counter() - began

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_given_an_open_stream_when_its_session_logs_out_then_it_ends_within_a_second(
    served: Served,
) -> None:
    password = served.rig.accounts["giamsat"].password
    hub = served.rig.deps.hub
    async with served.client() as mine, served.client() as other:
        csrf = await login(mine, "giamsat", password)
        await login(other, "giamsat", password)  # the same person on a second screen
        streams = [OpenStream(mine), OpenStream(other)]
        try:
            for s in streams:
                await s.wait_open()
            await _until(lambda: hub.clients == 2)
            r = await mine.post("/logout", data={"csrf": csrf})
            assert r.status_code == 303
            took = await streams[0].ends_within(1.0)
            assert took < 1.0
            await asyncio.sleep(0.3)
            assert not streams[1].ended.is_set() and hub.clients == 1
            assert (await other.get("/api/v1/me")).status_code == 200
        finally:
            for s in streams:
                await s.close()


async def test_given_an_open_stream_when_an_admin_disables_the_account_then_it_ends(
    served: Served,
) -> None:
    async with served.client() as agent, served.client() as admin:
        await login(agent, "tdv101", served.rig.accounts["tdv101"].password)
        stream = OpenStream(agent)
        try:
            await stream.wait_open()
            csrf = await login(admin, "quantri", served.rig.accounts["quantri"].password)
            r = await admin.post("/admin/users/tdv101", data={"csrf": csrf, "op": "disable"})
            assert r.headers["location"].endswith("ok=user_disabled")
            assert await stream.ends_within(1.0) < 1.0
            again = await agent.get("/live")
            assert again.status_code == 401
        finally:
            await stream.close()


async def test_given_a_session_ended_elsewhere_then_the_stream_stops_at_the_next_ping(
    served_fast_ping: Served,
) -> None:
    served = served_fast_ping
    password = served.rig.accounts["giamsat"].password
    async with served.client() as c, served.client() as other:
        await login(c, "giamsat", password)
        await login(other, "giamsat", password)
        cookie = c.cookies[SESSION_COOKIE]
        streams = [OpenStream(c), OpenStream(other)]
        try:
            for s in streams:
                await s.wait_open()
            await _until(lambda: served.rig.deps.hub.clients == 2)
            # as `tongdai` in another process, or the session's expiry: the hub is not told
            await AuthStore(served.rig.deps.engine, hasher=FAST_HASHER).end_session(cookie)
            assert await streams[0].ends_within(1.5) < 1.5
            await asyncio.sleep(1.0)  # pings go on asking: the valid session's stream stays
            assert not streams[1].ended.is_set() and served.rig.deps.hub.clients == 1
        finally:
            for s in streams:
                await s.close()
