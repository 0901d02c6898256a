"""Shared fixtures: a fresh database URL per test, on SQLite and on PostgreSQL.

PostgreSQL tests (marked ``postgres``) use one database created for the session on
127.0.0.1:5432 and dropped at the end; each test starts from an empty schema.
Deselect them with ``-m "not postgres"`` where no server runs.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_TIMEOUT = 10.0


async def _pg_execute(sql: str, dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=PG_TIMEOUT)
    try:
        await conn.execute(sql, timeout=PG_TIMEOUT)
    finally:
        await conn.close(timeout=PG_TIMEOUT)


def _pg_admin(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    """Run ``sql`` in a worker thread with its own event loop (leaves pytest-asyncio's alone)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _pg_execute(sql, dsn)).result(timeout=3 * PG_TIMEOUT)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """``postgresql+asyncpg`` URL of a database created for this test session."""
    name = f"tongdai_test_{secrets.token_hex(4)}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is needed (or use -m 'not postgres'): {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``make_db_url("sqlite" | "postgres")``: the URL of an empty database for this test."""

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / 'tongdai.db'}"
        if kind != "postgres":
            raise ValueError(f"unknown database kind {kind!r}")
        url: str = request.getfixturevalue("pg_url")
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        request.addfinalizer(
            lambda: _pg_admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public", dsn)
        )
        return url

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, make_db_url: Callable[[str], str]) -> str:
    """An empty database: a SQLite file in ``tmp_path`` or the session's PostgreSQL database."""
    return make_db_url(request.param)
