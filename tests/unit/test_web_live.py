"""Live updates: the hub's fan-out, and server-sent events end to end over a real uvicorn socket
(ACD event -> distributor listener -> hub -> publisher -> SSE client), timed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bench.web_rig import SimAcd, WebRig, web_rig
from web.app import listen, serve
from web.live import LiveHub, Message


def test_given_subscribers_when_publishing_then_each_gets_its_view() -> None:
    hub = LiveHub(maxsize=4)
    boss, lan, minh = hub.subscribe(None), hub.subscribe("agent101"), hub.subscribe("agent102")
    hub.publish(Message("state", "FULL", by_agent={"agent101": "LAN"}, public=None))
    got = [s.queue.get_nowait() for s in (boss, lan, minh)]
    assert all(m is not None for m in got)
    assert [m.for_agent(s.agent) for m, s in zip(got, (boss, lan, minh), strict=True) if m] == [
        "FULL",
        "LAN",
        None,  # nothing for an agent the message has no view for
    ]
    assert hub.agent_ids() == {"agent101", "agent102"}


def test_given_a_slow_client_when_its_queue_is_full_then_the_oldest_messages_go() -> None:
    hub = LiveHub(maxsize=3)
    slow = hub.subscribe(None)
    for i in range(10):
        hub.publish(Message("state", str(i)))
    assert slow.dropped == 7
    assert [slow.queue.get_nowait().full for _ in range(3)] == ["7", "8", "9"]  # type: ignore[union-attr]


def test_given_a_closed_hub_then_streams_end_and_new_ones_end_at_once() -> None:
    hub = LiveHub()
    sub = hub.subscribe(None)
    hub.close()
    assert sub.queue.get_nowait() is None and hub.clients == 0
    assert hub.subscribe(None).queue.get_nowait() is None


@dataclass
class Served:
    sim: SimAcd
    rig: WebRig
    url: str


@pytest.fixture
async def served(make_db_url: Callable[[str], str]) -> AsyncIterator[Served]:
    sim = SimAcd()
    await sim.start(login=["agent101", "agent102"])
    async with web_rig(make_db_url("sqlite"), sim.control, lifespan=False, ping_s=1.0) as rig:
        sim.use_tickets(rig.deps.tickets)
        sim.listen(rig.deps.hub.on_acd_event)
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        async with asyncio.timeout(5):
            await ready.wait()
        try:
            yield Served(sim, rig, f"http://127.0.0.1:{sock.getsockname()[1]}")
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task
            await sim.stop()


class Stream:
    """One SSE connection: events as (name, data) as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 3.0) -> tuple[str, Any]:
        name, data = "message", ""
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    return name, json.loads(data)
        raise EOFError("stream ended")

    async def until(self, cond: Callable[[str, Any], bool], timeout: float = 3.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                name, data = await self.next(timeout)
                if cond(name, data):
                    return data


@contextlib.asynccontextmanager
async def live(s: Served, who: str) -> AsyncIterator[Stream]:
    headers = {"Authorization": f"Bearer {s.rig.tokens[who]}"}
    async with (
        httpx.AsyncClient(base_url=s.url, timeout=5) as c,
        c.stream("GET", "/live", headers=headers) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        yield Stream(r)


def _waiting(caller: str) -> Callable[[str, Any], bool]:
    return lambda name, d: name == "state" and any(c["caller"] == caller for c in d["calls"])


async def test_given_a_supervisor_stream_when_calls_arrive_then_each_shows_within_a_second(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    latencies = []
    async with live(served, "giamsat") as stream:
        await stream.until(lambda name, d: name == "state")  # the current state comes first
        for i in range(20):
            caller = f"09051{i:05d}"
            began = time.perf_counter()
            served.sim.arrive(f"c{i}", "thu_tuc", caller)
            await stream.until(_waiting(caller), timeout=2.0)
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(0.12)  # past the publisher's coalescing interval
        assert max(latencies) < 1.0, latencies
    with capsys.disabled():
        print(
            f"\nSSE latency, event -> client (20 calls): median "
            f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )


async def test_given_a_waiting_call_when_an_agent_answers_then_the_stream_moves_it(
    served: Served,
) -> None:
    async with live(served, "giamsat") as stream:
        served.sim.arrive("c1", "thu_tuc", "0905123456")
        await stream.until(_waiting("0905123456"))
        await served.sim.answer("c1")
        state = await stream.until(
            lambda n, d: n == "state" and any(a["caller"] == "0905123456" for a in d["agents"])
        )
        agent = next(a for a in state["agents"] if a["caller"] == "0905123456")
        assert (agent["id"], agent["state"]) == ("agent101", "on_call")
        assert [c["state"] for c in state["calls"]] == ["connected"]


async def test_given_an_agent_stream_then_it_sees_itself_and_no_other_caller(
    served: Served,
) -> None:
    async with live(served, "tdv102") as stream:
        first = await stream.until(lambda n, d: n == "state" and d.get("me"))
        assert first["me"]["id"] == "agent102" and "agents" not in first and "calls" not in first
        served.sim.arrive("c1", "thu_tuc", "0905999999")  # goes to agent101 (skills strategy)
        await served.sim.answer("c1")
        served.sim.arrive("c2", "phan_anh", "0905888888")  # agent102 serves phan_anh
        await served.sim.answer("c2")
        mine = await stream.until(lambda n, d: n == "state" and d["me"]["call_id"] == "c2")
        assert mine["me"]["caller"] == "0905888888"
        assert "0905999999" not in json.dumps(mine)


async def test_given_roles_without_the_live_view_then_401_or_403(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=5) as c:
        assert (await c.get("/live")).status_code == 401
        headers = {"Authorization": f"Bearer {served.rig.tokens['quanly']}"}
        r = await c.get("/live", headers=headers)
        assert r.status_code == 403 and r.json()["error"]["id"] == "forbidden"


async def test_given_open_streams_when_the_engine_stops_then_the_server_stops_quickly(
    make_db_url: Callable[[str], str],
) -> None:
    async with web_rig(make_db_url("sqlite"), lifespan=False) as rig:
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        headers = {"Authorization": f"Bearer {rig.tokens['giamsat']}"}
        async with (
            httpx.AsyncClient(base_url=url, timeout=5) as c,
            c.stream("GET", "/live", headers=headers) as r,
        ):
            lines = r.aiter_lines()
            await anext(lines)
            began = time.perf_counter()
            stop.set()
            async with asyncio.timeout(3):
                await task
                async for _ in lines:
                    pass  # the stream ends
        assert time.perf_counter() - began < 2.0


def test_given_a_port_in_use_when_listening_then_a_clear_error() -> None:
    from tongdai.errors import TongdaiError

    first = listen("127.0.0.1", 0)
    try:
        with pytest.raises(TongdaiError, match=r"web: cannot listen on 127\.0\.0\.1:\d+"):
            listen("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()


async def test_given_load_and_several_supervisors_when_measuring_then_all_see_events_fast() -> None:
    from bench.web_live import measure

    result = await measure(calls=150, supervisors=4, samples=5)
    assert result.samples == 5 and result.max_ms < 1000.0
    assert 0 < result.median_ms <= result.p95_ms <= result.max_ms
    assert result.snapshot_bytes > 10_000  # 150 calls in the snapshot


async def test_given_a_broken_listener_when_the_acd_moves_then_it_goes_on_and_others_hear_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = SimAcd()
    await sim.start(login=["agent101"])
    hub = LiveHub()

    def broken(event: object) -> None:
        raise RuntimeError("observer bug")

    sim.listen(broken)
    sim.listen(hub.on_acd_event)
    try:
        hub.dirty.clear()
        sim.arrive("c1", "thu_tuc", "0905")
        assert hub.dirty.is_set() and sim.router.call("c1") is not None
        assert "ACD listener" in caplog.text and "observer bug" in caplog.text
        await sim.answer("c1")  # the distribution still works
        async with asyncio.timeout(3):
            while sim.control.state().calls[0].state != "connected":
                await asyncio.sleep(0.01)
    finally:
        await sim.stop()


async def test_given_the_engine_wiring_then_the_acd_feeds_the_app_and_without_it_503(
    make_db_url: Callable[[str], str],
) -> None:
    from accounts.store import AuthStore
    from bench.web_rig import FAST_HASHER
    from hotline.parts import engine_web
    from tickets.sql import SqlTicketStore
    from tongdai.db import make_engine, upgrade_engine
    from tongdai.settings import Settings

    engine = make_engine(make_db_url("sqlite"))
    sim = SimAcd()
    await sim.start(login=["agent101"])
    try:
        await upgrade_engine(engine)
        await AuthStore(engine, hasher=FAST_HASHER).add_user("gs", "supervisor", None)
        token = await AuthStore(engine).new_token("gs")
        headers = {"Authorization": f"Bearer {token}"}
        for acd in (sim.acd, None):
            app = engine_web(Settings(), engine, SqlTicketStore(engine), acd)
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c,
            ):
                if acd is not None:
                    assert app.state.deps.hub.on_acd_event in acd.router.listeners
                    sim.arrive("c1", "chung", "0905")
                    assert app.state.deps.hub.dirty.is_set()
                    calls = (await c.get("/api/v1/calls")).json()["calls"]
                    assert [x["id"] for x in calls] == ["c1"]
                else:
                    assert (await c.get("/api/v1/agents")).json()["agents"] == []
                    r = await c.post("/api/v1/agents/agent101/state", json={"op": "pause"})
                    assert r.status_code == 503
                    assert r.json()["error"]["id"] == "acd_unavailable"
    finally:
        await sim.stop()
        await engine.dispose()
