"""Dossiers in the database: the table, ``SqlDossierLookup`` and the upsert the importer uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Date, Row, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from dossiers.model import CODE_RE, Dossier, DossierStatus
from tongdai.db import DB_ERRORS, Base, describe, store_error


class DossierRow(Base):
    __tablename__ = "dossiers"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    procedure: Mapped[str] = mapped_column(Text)
    agency: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    received_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)


D = cast(Table, DossierRow.__table__)


def _dossier(row: Row[tuple[object, ...]]) -> Dossier:
    m = row._mapping
    return Dossier(
        code=m["code"],
        procedure=m["procedure"],
        agency=m["agency"],
        status=DossierStatus(m["status"]),
        received_date=m["received_date"],
        due_date=m["due_date"],
    )


class SqlDossierLookup:
    """``DossierLookup`` reading the ``dossiers`` table (filled by ``tongdai dossiers import``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find(self, code: str) -> Dossier | None:
        if not CODE_RE.match(code):
            return None
        row = await row_by_code(self.engine, D, code, "dossier")
        return _dossier(row) if row is not None else None


async def row_by_code(
    engine: AsyncEngine, table: Table, code: str, what: str
) -> Row[tuple[object, ...]] | None:
    """The row of ``table`` whose ``code`` is ``code``; a database error is a ``StoreError``
    naming ``what`` was looked up and where."""
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.code == code))).one_or_none()
    except DB_ERRORS as exc:
        raise store_error(f"cannot look up {what} {code} ({describe(engine.url)})", exc) from exc
    return row


async def upsert_dossiers(engine: AsyncEngine, dossiers: Sequence[Dossier]) -> int:
    """Insert or replace (by code) every dossier in one transaction; returns how many."""
    rows = [
        {
            "code": d.code,
            "procedure": d.procedure,
            "agency": d.agency,
            "status": d.status.value,
            "received_date": d.received_date,
            "due_date": d.due_date,
        }
        for d in dossiers
    ]
    return await upsert_rows(engine, D, rows, "dossiers")


async def upsert_rows(
    engine: AsyncEngine, table: Table, rows: list[dict[str, Any]], what: str
) -> int:
    """Insert or replace (by the ``code`` primary key) ``rows`` of ``table`` in one
    transaction (PostgreSQL's and SQLite's ``ON CONFLICT DO UPDATE``); returns how many."""
    if not rows:
        return 0
    columns = [c for c in rows[0] if c != "code"]
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                pg = postgresql.insert(table)
                set_pg = {c: pg.excluded[c] for c in columns}
                await conn.execute(
                    pg.on_conflict_do_update(index_elements=[table.c.code], set_=set_pg), rows
                )
            else:
                lite = sqlite.insert(table)
                set_lite = {c: lite.excluded[c] for c in columns}
                await conn.execute(
                    lite.on_conflict_do_update(index_elements=[table.c.code], set_=set_lite), rows
                )
    except DB_ERRORS as exc:
        raise store_error(f"cannot import {what} into {describe(engine.url)}", exc) from exc
    return len(rows)
