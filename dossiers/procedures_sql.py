"""The procedure catalogue in the database: the ``procedures`` table (migration
0009_procedures), ``SqlCatalogue`` and the upsert ``tongdai procedures import`` uses.

A province's catalogue is a few hundred to two thousand procedures: a search reads the
table once and ranks it in Python with ``dossiers.procedures.rank`` (the same folding as the
knowledge base), so SQLite and PostgreSQL answer alike; the rows are kept for ``CACHE_S``
seconds so a busy console does not read the table for every keystroke.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Integer, Row, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from dossiers.procedures import CODE_RE, OnlineLevel, Procedure, rank
from dossiers.sql import row_by_code, upsert_rows
from tongdai.db import DB_ERRORS, Base, describe, store_error

#: seconds a search reuses the rows it read (an import clears it in this process)
CACHE_S = 30.0


class ProcedureRow(Base):
    __tablename__ = "procedures"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    agency: Mapped[str] = mapped_column(String(64))
    documents: Mapped[str] = mapped_column(Text)
    time_limit_days: Mapped[int] = mapped_column(Integer)
    fee_vnd: Mapped[int] = mapped_column(Integer)
    online_level: Mapped[str] = mapped_column(String(16))


P = cast(Table, ProcedureRow.__table__)


def _procedure(row: Row[tuple[object, ...]]) -> Procedure:
    m = row._mapping
    return Procedure(
        code=m["code"],
        name=m["name"],
        agency=m["agency"],
        documents=m["documents"],
        time_limit_days=m["time_limit_days"],
        fee_vnd=m["fee_vnd"],
        online_level=OnlineLevel(m["online_level"]),
    )


class SqlCatalogue:
    """``dossiers.procedures.ProcedureCatalogue`` reading the ``procedures`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._rows: list[Procedure] = []
        self._read_at = -CACHE_S

    async def find(self, code: str) -> Procedure | None:
        if not CODE_RE.match(code):
            return None
        row = await row_by_code(self.engine, P, code, "procedure")
        return _procedure(row) if row is not None else None

    async def all(self) -> list[Procedure]:
        """Every procedure, by code (cached for ``CACHE_S``)."""
        if time.monotonic() - self._read_at < CACHE_S:
            return self._rows
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(select(P).order_by(P.c.code))).all()
        except DB_ERRORS as exc:
            raise store_error(
                f"cannot read the procedure catalogue ({describe(self.engine.url)})", exc
            ) from exc
        self._rows = [_procedure(r) for r in rows]
        self._read_at = time.monotonic()
        return self._rows

    async def search(self, query: str, *, limit: int = 20) -> list[Procedure]:
        return rank(query, await self.all(), limit=limit)


async def upsert_procedures(engine: AsyncEngine, procedures: Sequence[Procedure]) -> int:
    """Insert or replace (by code) every procedure in one transaction; returns how many.
    Importing the same file twice leaves the same table."""
    rows = [
        {
            "code": p.code,
            "name": p.name,
            "agency": p.agency,
            "documents": p.documents,
            "time_limit_days": p.time_limit_days,
            "fee_vnd": p.fee_vnd,
            "online_level": p.online_level.value,
        }
        for p in procedures
    ]
    return await upsert_rows(engine, P, rows, "procedures")
