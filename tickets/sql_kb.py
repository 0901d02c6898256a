"""The knowledge base on SQLAlchemy: ``kb_entries`` and its search on each database.

PostgreSQL: full-text search over ``unaccent`` (the extension migration 0006 creates, with a
GIN index on the vector): ``to_tsvector('simple', unaccent(text)) @@ to_tsquery('simple',
words)``, the query's words folded here and joined by ``&`` (strict) or ``|`` (loose), ranked
by ``ts_rank``. SQLite: an FTS5 table
``kb_fts`` (rowid = the entry's id) holding the entry's folded text (``tickets.kb.fold``: the
FTS5 tokenizer alone keeps "đ"), kept in step by this store in the same transaction, ranked by
bm25. Either way at most ``CANDIDATES`` candidates are scored by ``tickets.kb.rank``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, String, Table, Text, UniqueConstraint, delete, insert, select, text
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tickets.kb import MAX_QUERY_WORDS, KbDraft, KbEntry, KbHit, fold, rank, words
from tongdai.clock import utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error

#: candidates fetched from the database before scoring
CANDIDATES = 200
#: the SQLite FTS5 table (created by migration 0006, not modelled: see tongdai.db.is_modelled)
FTS_TABLE = "kb_fts"


class KbRow(Base):
    __tablename__ = "kb_entries"
    __table_args__ = (UniqueConstraint("ticket_code", name="uq_kb_entries_ticket_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    procedure: Mapped[str | None] = mapped_column(String(200))
    ticket_code: Mapped[str | None] = mapped_column(String(32))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


K = cast(Table, KbRow.__table__)
#: the search vector; migration 0006 indexes exactly this expression (GIN), so keep the two
#: identical. ``tongdai_unaccent`` is the migration's IMMUTABLE wrapper of ``unaccent``.
PG_VECTOR = (
    "to_tsvector('simple'::regconfig, tongdai_unaccent(coalesce(question, '') || ' ' ||"
    " coalesce(procedure, '') || ' ' || coalesce(category, '') || ' ' || coalesce(answer, '')))"
)


def _entry(r: Row[Any]) -> KbEntry:
    return KbEntry(
        r.id, r.question, r.answer, r.category, r.procedure, r.ticket_code, r.updated_by,
        r.updated_at,
    )  # fmt: skip


class SqlKnowledgeBase:
    """``tickets.kb.KnowledgeBase`` on an asyncio engine (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owns_engine: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self._owns_engine = owns_engine
        self._clock = clock
        self._pg = engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def _tx(self, what: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except DB_ERRORS as exc:
            raise store_error(f"knowledge base ({describe(self.engine.url)}): {what}", exc) from exc

    async def publish(self, draft: KbDraft, *, by: str) -> KbEntry:
        d = draft.check()
        values = dict(
            question=d.question,
            answer=d.answer,
            category=d.category,
            procedure=d.procedure,
            ticket_code=d.ticket_code,
            updated_by=by,
            updated_at=self._clock(),
        )
        async with self._tx("cannot publish an entry") as conn:
            old = None
            if d.ticket_code is not None:
                old = (
                    await conn.execute(select(K.c.id).where(K.c.ticket_code == d.ticket_code))
                ).scalar_one_or_none()
            if old is not None:
                await conn.execute(sql_update(K).where(K.c.id == old).values(**values))
                entry_id = int(old)
            else:
                entry_id = int(
                    (await conn.execute(insert(K).values(**values).returning(K.c.id))).scalar_one()
                )
            row = (await conn.execute(select(K).where(K.c.id == entry_id))).one()
            entry = _entry(row)
            if not self._pg:
                await conn.execute(
                    text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"), {"id": entry_id}
                )
                await conn.execute(
                    text(f"INSERT INTO {FTS_TABLE} (rowid, body) VALUES (:id, :body)"),
                    {"id": entry_id, "body": fold(entry.text())},
                )
        return entry

    async def withdraw(self, entry_id: int) -> bool:
        async with self._tx("cannot withdraw an entry") as conn:
            gone = (await conn.execute(delete(K).where(K.c.id == entry_id))).rowcount
            if not self._pg:
                await conn.execute(
                    text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"), {"id": entry_id}
                )
        return bool(gone)

    async def get(self, entry_id: int) -> KbEntry | None:
        async with self._tx("cannot read an entry") as conn:
            row = (await conn.execute(select(K).where(K.c.id == entry_id))).one_or_none()
        return _entry(row) if row is not None else None

    async def search(self, query: str, *, strict: bool = True, limit: int = 10) -> list[KbHit]:
        wanted = words(query)[:MAX_QUERY_WORDS]
        if not wanted:
            return []
        async with self._tx("cannot search") as conn:
            rows = await (self._pg_candidates if self._pg else self._fts_candidates)(
                conn, wanted, strict
            )
        return rank(query, [_entry(r) for r in rows], strict=strict, limit=limit)

    async def _pg_candidates(
        self, conn: AsyncConnection, wanted: list[str], strict: bool
    ) -> Sequence[Row[Any]]:
        tsq = (" & " if strict else " | ").join(wanted)  # folded words: [a-z0-9]+ only
        vector = PG_VECTOR
        query = "to_tsquery('simple'::regconfig, :q)"
        stmt = select(K).where(text(f"{vector} @@ {query}"))
        if strict:  # every candidate holds every word: ``rank`` orders them newest first
            stmt = stmt.order_by(K.c.id.desc())
        else:  # the candidates holding the most words first
            stmt = stmt.order_by(text(f"ts_rank({vector}, {query}) DESC"), K.c.id.desc())
        stmt = stmt.limit(CANDIDATES)
        return (await conn.execute(stmt, {"q": tsq})).all()

    async def _fts_candidates(
        self, conn: AsyncConnection, wanted: list[str], strict: bool
    ) -> Sequence[Row[Any]]:
        match = (" AND " if strict else " OR ").join(f'"{w}"' for w in wanted)
        ids = (
            await conn.execute(
                text(
                    f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :m "
                    "ORDER BY rank LIMIT :n"
                ),
                {"m": match, "n": CANDIDATES},
            )
        ).scalars()
        found = [int(i) for i in ids]
        if not found:
            return []
        return (await conn.execute(select(K).where(K.c.id.in_(found)))).all()

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()
