"""Alembic environment: runs migrations on the connection ``tongdai.db.migrate`` hands over.

When Alembic is run from the command line instead (``alembic -x url=...``), it opens its own
asyncio engine on that URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from tongdai.db import Base, is_modelled, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, include_name=is_modelled
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database with: alembic -x url=sqlite+aiosqlite:///var/x.db ...")
    asyncio.run(_run_standalone(url))


main()
