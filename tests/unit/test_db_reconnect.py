"""PostgreSQL without a pre-ping: when the server ends the pool's connections, at most the
transactions that meet a dead one fail (as ``StoreError``), and the next ones work on new
connections (SQLAlchemy invalidates the whole pool on a disconnect)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pg_admin import pg_admin
from sqlalchemy import text

from tickets.sql import SqlTicketStore
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import StoreError

pytestmark = pytest.mark.postgres


async def test_given_the_pools_connections_ended_then_one_failure_at_most_and_then_it_works(
    make_db_url: Callable[[str], str],
) -> None:
    url = make_db_url("postgres")
    engine = make_engine(url)
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]
    await upgrade_engine(engine)
    store = SqlTicketStore(engine)
    try:
        # three connections in the pool, all idle
        conns = [await engine.connect() for _ in range(3)]
        for c in conns:
            await c.execute(text("SELECT 1"))
            await c.close()
        database = url.rsplit("/", 1)[1]
        pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        failures = 0
        for _ in range(4):
            try:
                assert await store.list(limit=1) == []
            except StoreError:
                failures += 1
        assert failures <= 1
        assert await store.list(limit=1) == []
    finally:
        await engine.dispose()
