"""Ticket codes: ``1022-YYYYMMDD-NNNNNN``, the day in Vietnam time and a per-day sequence.

The caller hears this code, so it is short and readable. ``allocate_code`` takes the next
number of the day atomically (one ``INSERT .. ON CONFLICT .. DO UPDATE .. RETURNING``), which
is safe under any concurrency on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from tongdai.clock import VN_TZ
from tongdai.db import Base

PREFIX = "1022"
CODE_RE = re.compile(r"^1022-[0-9]{8}-[0-9]{6,}$")


class CounterRow(Base):
    """The last ticket number given out on a day (``day`` is ``YYYYMMDD`` in Vietnam time)."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int]


def code_day(at: datetime) -> str:
    """``YYYYMMDD`` of ``at`` in Vietnam time (``at`` must be timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()} (give a time zone)")
    return at.astimezone(VN_TZ).strftime("%Y%m%d")


def format_code(day: str, seq: int) -> str:
    """The code of the ``seq``-th ticket of ``day``: zero-padded to at least six digits."""
    return f"{PREFIX}-{day}-{seq:06d}"


async def allocate_code(conn: AsyncConnection, at: datetime) -> str:
    """Take the next code for the day of ``at`` inside the caller's transaction."""
    day = code_day(at)
    table = cast(Table, CounterRow.__table__)
    bump = {"last": table.c.last + 1}
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(day=day, last=1)
        query = pg.on_conflict_do_update(index_elements=[table.c.day], set_=bump)
        seq = (await conn.execute(query.returning(table.c.last))).scalar_one()
    else:
        lite = sqlite.insert(table).values(day=day, last=1)
        query_lite = lite.on_conflict_do_update(index_elements=[table.c.day], set_=bump)
        seq = (await conn.execute(query_lite.returning(table.c.last))).scalar_one()
    return format_code(day, int(seq))
