"""The whole engine (``run_engine``: web app, probes, ACD state store setting) with a real
``redis-server`` of its own that is stopped and started again while the engine runs: the
change shows on ``/api/health``, ``/metrics``, the wallboard's banner and the health file
(what ``tongdai lab status`` prints), and clears when Redis is back. The shared Redis on 6379
is never touched."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.store import AuthStore
from hotline.serve import run_engine
from lab.redis_server import PrivateRedis, free_port
from tongdai.db import make_engine
from tongdai.health import read_file
from tongdai.settings import load_settings

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def test_redis_stopped_and_started_while_the_engine_runs(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    web_port = free_port()
    db = f"sqlite+aiosqlite:///{tmp_path / 'tongdai.db'}"
    config = tmp_path / "t.toml"
    config.write_text(
        f'[database]\nurl = "{db}"\nstate_dir = "{tmp_path}/state"\n'
        f'[fastagi]\nport = 0\n[ami]\nsecret_file = "{tmp_path}/none"\n'
        f'[acd]\nstate_store = "{redis.url}"\nstate_prefix = "tongdai:health-test"\n'
        f"[web]\nenabled = true\nport = {web_port}\n",
        encoding="utf-8",
    )
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_engine(load_settings(config), ready=ready, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        engine = make_engine(db)
        try:
            auth = AuthStore(engine)
            await auth.add_user("giamsat", "supervisor", "mat-khau-dai-2026")
            token = await auth.new_token("giamsat", "test")
        finally:
            await engine.dispose()
        health_file = tmp_path / "state" / "health.json"
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{web_port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as c:

            async def health() -> dict[str, Any]:
                r = await c.get("/api/health")
                assert r.status_code == 200, r.text
                data: dict[str, Any] = r.json()
                return data

            async def redis_up() -> bool:
                return any(d["name"] == "redis" and d["up"] for d in (await health())[
                    "dependencies"
                ])  # fmt: skip

            await _until(redis_up, 10)
            assert (await health())["status"] == "ok"

            redis.stop()

            async def redis_down() -> bool:
                return (await health())["down"] == ["redis"]

            await _until(redis_down, 15)
            metrics = (await c.get("/metrics")).text
            assert 'tongdai_dependency_up{name="redis"} 0.0' in metrics
            assert 'tongdai_dependency_up{name="database"} 1.0' in metrics
            page = (await c.get("/wallboard")).text
            assert "Redis (trạng thái phân phối cuộc gọi)</b> mất kết nối từ " in page
            on_disk = read_file(health_file)
            assert on_disk is not None and on_disk["down"] == ["redis"]

            redis.start()
            await _until(redis_up, 15)
            assert (await health())["status"] == "ok"
            page = (await c.get("/wallboard")).text
            assert 'id="degraded" role="alert" hidden' in page
            on_disk = read_file(health_file)
            assert on_disk is not None and on_disk["status"] == "ok"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        redis.stop()
