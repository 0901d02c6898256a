"""Shared fixtures: a fresh database URL per test, on SQLite and on PostgreSQL.

PostgreSQL tests (marked ``postgres``) use one database created for the session on
127.0.0.1:5432 and dropped at the end; each test starts from an empty schema.
Deselect them with ``-m "not postgres"`` where no server runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from pg_admin import PG_ADMIN_DSN, pg_admin


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """``postgresql+asyncpg`` URL of a database created for this test session."""
    name = f"tongdai_test_{secrets.token_hex(4)}"
    try:
        pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is needed (or use -m 'not postgres'): {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
            lambda: pg_admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public", dsn)
        )
        return url

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, make_db_url: Callable[[str], str]) -> str:
    """An empty database: a SQLite file in ``tmp_path`` or the session's PostgreSQL database."""
    return make_db_url(request.param)
