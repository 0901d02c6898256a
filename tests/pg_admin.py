"""Create and drop PostgreSQL databases for tests (run from sync fixtures, in a worker thread with
its own event loop so pytest-asyncio's loops are left alone)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_TIMEOUT = 10.0


async def pg_execute(sql: str, dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=PG_TIMEOUT)
    try:
        await conn.execute(sql, timeout=PG_TIMEOUT)
    finally:
        await conn.close(timeout=PG_TIMEOUT)


def pg_admin(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    """Run ``sql`` in a worker thread with its own event loop (leaves pytest-asyncio's alone)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, pg_execute(sql, dsn)).result(timeout=3 * PG_TIMEOUT)
