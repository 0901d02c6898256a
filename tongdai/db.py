"""Database plumbing shared by every store: the declarative base, the engine, migrations.

``make_engine`` builds an asyncio engine for ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URLs
(SQLite gets WAL, a 10 s busy timeout, foreign keys and real transactions); ``migrate`` brings
the schema to the newest Alembic revision from any working directory. Timestamps go through
``UtcDateTime`` so they always come back timezone-aware in UTC.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Dialect, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from tongdai.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: connect timeout (seconds) and per-statement timeout for PostgreSQL
PG_CONNECT_TIMEOUT = 10.0
PG_COMMAND_TIMEOUT = 60.0
#: a pooled PostgreSQL connection older than this is replaced at its next checkout (seconds)
PG_POOL_RECYCLE_S = 1800
#: key of the PostgreSQL advisory lock that serialises concurrent ``migrate`` calls
_MIGRATE_LOCK_KEY = 1022_0001


class Base(DeclarativeBase):
    """Base of every mapped table; Alembic's ``target_metadata``."""


#: tables and indexes a migration keeps by raw SQL, outside the metadata: SQLite's FTS5 table
#: of the knowledge base with the shadow tables FTS5 makes for it (``kb_fts_data``, ...), and
#: PostgreSQL's expression index ``kb_fts_pg`` on the knowledge base's search vector
UNMODELLED_PREFIXES = ("kb_fts",)


def is_modelled(name: str | None, type_: str, parent_names: object = None) -> bool:
    """Alembic's ``include_name``: leave the unmodelled tables and indexes out of comparisons."""
    return not (
        type_ in ("table", "index") and name is not None and name.startswith(UNMODELLED_PREFIXES)
    )


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamp with time zone``; SQLite has no time zones, so values are
    stored as naive UTC text (which sorts correctly) and marked UTC again when read.
    Naive datetimes are refused: a time without a zone is a bug waiting to happen.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (give a time zone)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL, or ``StoreError`` naming what is wrong with it."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database url {url!r} is not valid: {exc}") from None
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise StoreError(
            f"database url {parsed.render_as_string(hide_password=True)}: driver "
            f"{parsed.drivername!r} is not supported (use sqlite+aiosqlite or postgresql+asyncpg)"
        )
    return parsed


def describe(url: URL | str) -> str:
    """The URL safe to print (password hidden)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin): the sqlite3 driver's legacy mode
    # skips BEGIN before SELECT and DDL, which breaks transactional migrations.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so a transaction
    # that reads then writes can never fail half-way with SQLITE_BUSY.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pre_ping: bool = False) -> AsyncEngine:
    """An asyncio engine for a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL.

    For a SQLite file the parent folder is created. Raises ``StoreError`` for a bad URL.

    PostgreSQL connections are not pinged at checkout unless ``pre_ping``: a ping is one
    more round trip per transaction (a third of the conversation processor's round trips,
    ``tongdai bench process``). The pool copes without it: a connection older than
    ``PG_POOL_RECYCLE_S`` is replaced at checkout (server or firewall idle timeouts), and a
    statement failing on a dead connection (PostgreSQL restarted, connections ended) makes
    SQLAlchemy invalidate every connection of the pool, so only the transactions that met a
    dead connection fail, as ``StoreError``, which their callers survive (the ticket spool,
    the journal's retry; ``tongdai bench faults --faults database``).
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of {database}: {exc}") from None
        engine = create_async_engine(parsed)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        parsed,
        pool_pre_ping=pre_ping,
        pool_recycle=PG_POOL_RECYCLE_S,
        connect_args={"timeout": PG_CONNECT_TIMEOUT, "command_timeout": PG_COMMAND_TIMEOUT},
    )


def alembic_config() -> Config:
    """Alembic's configuration, built in code so it works from any working directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _current_revisions(connection: Connection) -> set[str]:
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return {
        str(rev)
        for rev in connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    }


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK_KEY})
    cfg = alembic_config()
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    current = _current_revisions(connection)
    if current == heads:
        return  # already up to date: skip Alembic (and its log chatter) entirely
    log.info(
        "migrating %s from %s to %s",
        describe(connection.engine.url),
        ", ".join(sorted(current)) or "empty",
        ", ".join(sorted(heads)),
    )
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def store_error(what: str, exc: BaseException) -> StoreError:
    """A one-line ``StoreError`` for a driver/SQLAlchemy failure (no driver traceback text)."""
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    return StoreError(f"{what}: {detail}")


#: what a database driver raises when the server is away or refuses: wrapped as StoreError
DB_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, asyncio.TimeoutError)


async def upgrade_engine(engine: AsyncEngine) -> None:
    """Run Alembic ``upgrade head`` on ``engine`` in one transaction."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    except DB_ERRORS as exc:
        raise store_error(f"cannot migrate database {describe(engine.url)}", exc) from exc


async def migration_status(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    """(the database's revisions, the newest ones this code knows): equal when current."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(_current_revisions)
    except DB_ERRORS as exc:
        raise store_error(f"cannot read the schema of {describe(engine.url)}", exc) from exc
    return current, heads


async def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (idempotent, safe to run concurrently)."""
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
    finally:
        await engine.dispose()
