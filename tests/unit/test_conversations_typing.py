"""Typing in a web chat, both ways (``conversations.typing``): the board alone (throttle,
expiry, bounded memory), then over a real socket with the console's API: the visitor's typing
frame shows on the agent's conversation (and wakes its long poll), the agent's typing reaches
the visitor's socket; nothing is stored and the frames are throttled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from bench.chat_rig import ChatRig, chat_rig
from conversations import typing as typing_mod
from conversations.typing import Typing
from web.app import listen, serve

PORTAL = "https://portal.example"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_board_throttles_expires_and_forgets_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    board = Typing(ttl_s=6.0, gap_s=2.0, clock=clock)
    told_agents: list[str] = []
    told_visitors: list[str] = []
    board.to_agents.append(told_agents.append)
    board.to_visitor.append(told_visitors.append)
    assert board.citizen("v1") is None  # no conversation yet: nobody to tell
    board.seen("v1", "1022-20261207-000001")
    assert board.citizen("v1") == "1022-20261207-000001"
    assert board.citizen_typing("1022-20261207-000001")
    clock.now += 1.0
    assert board.citizen("v1") is None  # throttled
    clock.now += 1.5
    assert board.citizen("v1") == "1022-20261207-000001"
    assert told_agents == ["1022-20261207-000001"] * 2
    clock.now += 6.1
    assert not board.citizen_typing("1022-20261207-000001")  # expired
    board.citizen("v1")
    board.citizen_stopped("1022-20261207-000001")  # their message arrived
    assert not board.citizen_typing("1022-20261207-000001")
    assert board.agent("1022-20261207-000001", "v1") and not board.agent(
        "1022-20261207-000001", "v1"
    )
    assert told_visitors == ["v1"]
    monkeypatch.setattr(typing_mod, "MAX_ENTRIES", 3)
    for i in range(5):
        board.seen(f"w{i}", f"c{i}")
    assert board.code_of("w0") is None and board.code_of("w4") == "c4"


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[ChatRig, int]]:
    async with chat_rig(db_url, tmp_path, lifespan=False) as rig:
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 5)
        try:
            yield rig, sock.getsockname()[1]
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)


async def _next(ws: Any, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            e = dict(json.loads(await ws.recv()))
            if e["type"] == kind:
                return e


async def test_typing_goes_both_ways_over_the_socket_and_the_console(
    site: tuple[ChatRig, int],
) -> None:
    rig, port = site
    token = {"Authorization": f"Bearer {rig.web.tokens['tdv101']}"}
    async with (
        websockets.connect(f"ws://127.0.0.1:{port}/chat/ws", origin=PORTAL,  # type: ignore[arg-type]
                           open_timeout=5) as ws,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=token) as c,
    ):  # fmt: skip
        # before any message the visitor has no conversation: a typing frame is answered by
        # nothing (no error either) and tells nobody
        await ws.send(json.dumps({"type": "hello", "token": None}))
        await _next(ws, "history")
        await ws.send(json.dumps({"type": "typing"}))
        await ws.send(json.dumps({"type": "message", "cid": "m1", "text": "Gặp tổng đài viên"}))
        ack = await _next(ws, "ack")
        assert ack["cid"] == "m1"  # the typing frame had no answer of its own
        code = None
        async with asyncio.timeout(5):
            while code is None:
                code = next(iter(rig.routing.held), None)
                await asyncio.sleep(0.02)
        url = f"/api/conversations/{code}/messages"
        r = await c.get(url)
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["typing"] == {"citizen": False}
        stored = len(d["messages"])

        # the visitor types: the agent's waiting poll answers (the typing moves the version),
        # saying so; a poll may also answer for a delivery change first: poll on from there
        await ws.send(json.dumps({"type": "typing"}))
        version, got = d["version"], d
        async with asyncio.timeout(5):
            while not got["typing"]["citizen"]:
                got = (await c.get(f"{url}?since={version}&wait=10")).json()
                version = got["version"]
        assert len((await c.get(url)).json()["messages"]) == stored  # nothing stored

        # the agent types: the visitor's socket is told, once per gap however fast they type
        assert (await c.post(f"/api/conversations/{code}/typing")).status_code == 204
        assert (await c.post(f"/api/conversations/{code}/typing")).status_code == 204
        assert await _next(ws, "typing") == {"type": "typing", "who": "staff"}
        with pytest.raises(TimeoutError):
            await _next(ws, "typing", timeout=0.5)
        assert len((await c.get(url)).json()["messages"]) == stored

        # the visitor's message ends their typing
        await ws.send(json.dumps({"type": "message", "cid": "m2", "text": "Tôi hỏi về hồ sơ"}))
        await _next(ws, "ack")
        async with asyncio.timeout(5):
            while (await c.get(url)).json()["typing"]["citizen"]:
                await asyncio.sleep(0.05)
    other = {"Authorization": f"Bearer {rig.web.tokens['tdv102']}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t", headers=other
    ) as c2:
        assert (await c2.post(f"/api/conversations/{code}/typing")).status_code == 403
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.app), base_url="http://t"
    ) as c3:
        assert (await c3.post(f"/api/conversations/{code}/typing")).status_code == 401
