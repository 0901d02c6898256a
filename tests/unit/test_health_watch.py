"""A dependency going away while the engine runs: ``Health`` records it once per change with
the time it began, the probes and the AMI watch feed it, ``/api/health`` and the wallboard's
banner (and its live ``health`` event) show it, ``tongdai lab status`` reads the engine's file.
All on fakes: probes that fail on demand, a fake AMI event stream, a hand-set clock."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.web_rig import WebRig, login, web_rig
from hotline.metrics import Metrics
from hotline.watch import database_probe, health_file, probe_once, watch_ami
from lab.cli import health_lines
from pbx.fake import FakeEvent
from tongdai.db import make_engine
from tongdai.errors import StoreError
from tongdai.health import Health, read_file
from tongdai.settings import load_settings


class Clock:
    def __init__(self, t: float = 1_765_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_change_is_recorded_once_with_when_it_began(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = Health(clock=clock)
    seen: list[tuple[str, bool, float]] = []
    health.listeners.append(lambda name, dep: seen.append((name, dep.up, dep.since)))
    health.up("redis")
    clock.t += 10
    for i in range(3):  # retries while it is away: one change
        health.down("redis", f"refused {i}")
        clock.t += 2
    health.up("redis")
    assert seen == [
        ("redis", True, 1_765_000_000.0),
        ("redis", False, 1_765_000_010.0),
        ("redis", True, 1_765_000_016.0),
    ]
    assert caplog.text.count("redis is DOWN") == 1
    assert caplog.text.count("redis is back") == 1


def test_a_broken_listener_does_not_hide_the_change_from_the_others() -> None:
    health = Health()
    seen: list[str] = []

    def broken(name: str, dep: Any) -> None:
        raise RuntimeError("bug")

    health.listeners += [broken, lambda name, dep: seen.append(name)]
    health.down("database", "gone")
    assert seen == ["database"]


def test_the_json_view_says_what_is_down_since_when() -> None:
    clock = Clock()
    health = Health(clock=clock)
    health.up("database")
    health.down("redis", "ConnectionError: refused")
    data = health.to_json()
    assert data["status"] == "degraded"
    assert data["down"] == ["redis"]
    assert data["dependencies"] == [
        {"name": "database", "up": True, "detail": "", "since": clock.t},
        {"name": "redis", "up": False, "detail": "ConnectionError: refused", "since": clock.t},
    ]


async def test_probes_report_failures_timeouts_and_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health()
    state = {"db": "ok", "redis": "ok"}

    async def db() -> object:
        if state["db"] == "down":
            raise StoreError("database: connection refused\nmore lines")
        return True

    async def redis() -> object:
        if state["redis"] == "hang":
            await asyncio.sleep(10)
        return True

    async def not_yet() -> object:
        return None  # skipped: reports nothing

    probes = {"database": db, "redis": redis, "later": not_yet}
    await probe_once(health, probes, timeout_s=0.1)
    assert {n: d.up for n, d in health.snapshot().items()} == {"database": True, "redis": True}
    state.update(db="down", redis="hang")
    for _ in range(3):
        await probe_once(health, probes, timeout_s=0.1)
    snap = health.snapshot()
    assert snap["database"].detail == "StoreError: database: connection refused"
    assert snap["redis"].detail == "no answer within 0.1 s"
    assert health.degraded == ["database", "redis"]
    assert caplog.text.count("database is DOWN") == 1
    state.update(db="ok", redis="ok")
    await probe_once(health, probes, timeout_s=0.1)
    assert health.degraded == []


async def test_the_database_probe_asks_the_real_pool(tmp_path: Path) -> None:
    health = Health()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    ready = {"schema": False}
    try:
        probe = database_probe(engine, lambda: ready["schema"])
        await probe_once(health, {"database": probe})
        assert health.snapshot() == {}  # not migrated yet: the migration reports, not the probe
        ready["schema"] = True
        await probe_once(health, {"database": probe})
        assert health.snapshot()["database"].up
    finally:
        await engine.dispose()
    away = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        await probe_once(health, {"database": database_probe(away)}, timeout_s=3)
        assert not health.snapshot()["database"].up
    finally:
        await away.dispose()


async def _events(queue: asyncio.Queue[FakeEvent | None]) -> AsyncIterator[FakeEvent]:
    while (ev := await queue.get()) is not None:
        yield ev


async def _until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_the_ami_session_going_and_coming_back_is_recorded() -> None:
    health = Health()
    queue: asyncio.Queue[FakeEvent | None] = asyncio.Queue()
    task = asyncio.create_task(watch_ami(health, _events(queue), grace_s=60))
    await queue.put(FakeEvent("__connected__"))
    await _until(lambda: "asterisk" in health.snapshot())
    assert health.snapshot()["asterisk"].up
    await queue.put(FakeEvent("__disconnected__", Reason="connection reset"))
    await _until(lambda: health.degraded == ["asterisk"])
    assert health.snapshot()["asterisk"].detail == "AMI session lost: connection reset"
    await queue.put(FakeEvent("__connected__"))
    await _until(lambda: health.degraded == [])
    await queue.put(None)
    await asyncio.wait_for(task, 3)


async def test_no_ami_session_after_the_grace_period_is_down() -> None:
    health = Health()
    queue: asyncio.Queue[FakeEvent | None] = asyncio.Queue()
    task = asyncio.create_task(watch_ami(health, _events(queue), grace_s=0.05))
    await _until(lambda: health.degraded == ["asterisk"])
    assert "no AMI session" in health.snapshot()["asterisk"].detail
    await queue.put(None)
    await asyncio.wait_for(task, 3)


def test_the_health_file_follows_every_change_and_lab_status_prints_it(
    tmp_path: Path,
) -> None:
    health = Health()
    path = tmp_path / "state" / "health.json"
    health_file(health, path)
    assert read_file(path) == {**health.to_json(), "pid": os.getpid()} | {
        "at": json.loads(path.read_text())["at"]
    }
    health.down("redis", "refused")
    data = read_file(path)
    assert data is not None and data["down"] == ["redis"] and data["pid"] == os.getpid()
    config = tmp_path / "t.toml"
    config.write_text(f'[database]\nstate_dir = "{tmp_path}/state"\n', encoding="utf-8")
    lines = health_lines(load_settings(config), os.getpid())
    assert lines[0] == "engine health: degraded"
    assert lines[1].startswith("  redis: DOWN since ") and lines[1].endswith("(refused)")
    # another engine's file (a stale pid) is not taken for this one's
    assert health_lines(load_settings(config), os.getpid() + 1)[0].startswith(
        "engine health: not reported"
    )


@pytest.fixture
async def rig(make_db_url: Callable[[str], str]) -> AsyncIterator[tuple[WebRig, Health]]:
    health = Health()
    health.up("database")
    async with web_rig(make_db_url("sqlite"), metrics=Metrics(), health=health) as r:
        r.deps.metrics.watch_health(health)  # type: ignore[union-attr]
        yield r, health


def _client(rig: WebRig) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://t")


async def test_api_health_metrics_and_the_banner_show_what_is_down(
    rig: tuple[WebRig, Health],
) -> None:
    web, health = rig
    bearer = {"Authorization": f"Bearer {web.tokens['giamsat']}"}
    async with _client(web) as c:
        assert (await c.get("/api/health")).status_code == 401
        r = await c.get("/api/health", headers=bearer)
        assert r.json()["status"] == "ok" and r.json()["down"] == []
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        health.down("redis", "ConnectionError: <refused> & gone")
        r = await c.get("/api/health", headers=bearer)
        body = r.json()
        assert body["status"] == "degraded" and body["down"] == ["redis"]
        redis = next(d for d in body["dependencies"] if d["name"] == "redis")
        assert redis["label"] == "Redis (trạng thái phân phối cuộc gọi)"
        metrics = (await c.get("/metrics", headers=bearer)).text
        assert 'tongdai_dependency_up{name="redis"} 0.0' in metrics
        assert 'tongdai_dependency_up{name="database"} 1.0' in metrics
        await login(c, "giamsat", web.accounts["giamsat"].password)
        page = (await c.get("/wallboard")).text
        assert "Hệ thống đang chạy ở chế độ dự phòng" in page
        assert "Redis (trạng thái phân phối cuộc gọi)</b> mất kết nối từ " in page
        assert "&lt;refused&gt;" not in page  # the detail stays out of the banner
        health.up("redis")
        page = (await c.get("/wallboard")).text
        assert 'id="degraded" role="alert" hidden' in page


async def test_the_live_stream_carries_the_banner_to_supervisors_only(
    rig: tuple[WebRig, Health],
) -> None:
    web, health = rig
    hub = web.deps.hub
    sup = hub.subscribe(None)
    agent = hub.subscribe("agent101")
    health.down("database", "refused")
    msg = sup.queue.get_nowait()
    while msg is not None and msg.kind != "health":
        msg = sup.queue.get_nowait()
    assert msg is not None
    down = json.loads(msg.full)["down"]
    assert [(d["name"], d["label"]) for d in down] == [("database", "Cơ sở dữ liệu")]
    assert down[0]["since_vi"].count(":") == 2
    assert msg.for_agent("agent101") is None
    assert json.loads(hub.latest["health"].full)["down"] == down  # a new client gets it first
    health.up("database")
    assert json.loads(hub.latest["health"].full)["down"] == []
    hub.unsubscribe(sup)
    hub.unsubscribe(agent)


async def test_api_health_answers_a_recent_login_while_the_database_is_away(
    rig: tuple[WebRig, Health], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="web.app")
    web, health = rig
    known = {"Authorization": f"Bearer {web.tokens['giamsat']}"}
    agent = {"Authorization": f"Bearer {web.tokens['tdv101']}"}
    async with _client(web) as c:
        assert (await c.get("/api/health", headers=known)).status_code == 200

        async def away(*args: Any, **kwargs: Any) -> Any:
            raise StoreError("database: connection refused")

        monkeypatch.setattr(web.app.state.auth, "token_user", away)
        health.down("database", "connection refused")
        r = await c.get("/api/health", headers=known)
        assert r.status_code == 200 and r.json()["down"] == ["database"]
        # a credential never seen here cannot be checked: the usual 503
        r = await c.get("/api/health", headers=agent)
        assert r.status_code == 503 and r.json()["error"]["id"] == "store_unavailable"
        assert (await c.get("/api/v1/me", headers=known)).status_code == 503
