"""The engine starts with its database away: it answers (FastAGI listens, tickets would be
spooled), says it is degraded, and migrates the database as soon as it is back."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from pg_admin import pg_admin
from sqlalchemy import inspect

from hotline.serve import run_engine
from tongdai.db import make_engine
from tongdai.settings import load_settings


@pytest.mark.postgres
async def test_given_the_database_away_at_start_then_the_engine_runs_and_migrates_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"tongdai_late_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"  # not created yet
    config = tmp_path / "t.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\nstate_dir = "{tmp_path}/state"\n'
        f'[fastagi]\nport = 0\n[ami]\nsecret_file = "{tmp_path}/none"\n[web]\nenabled = false\n',
        encoding="utf-8",
    )
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_engine(load_settings(config), ready=ready, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        assert "database is DOWN" in caplog.text
        pg_admin(f'CREATE DATABASE "{name}"')
        engine = make_engine(url)
        try:
            async with asyncio.timeout(30):
                while True:
                    async with engine.connect() as conn:
                        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
                    if "tickets" in tables:
                        break
                    await asyncio.sleep(0.3)
        finally:
            await engine.dispose()
        assert "database is back" in caplog.text
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
