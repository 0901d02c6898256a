"""Canned answers: short texts agents insert into replies, edited by supervisors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table, Text, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tongdai.clock import as_utc, utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error

MAX_TITLE = 200
MAX_BODY = 4000


class CannedRow(Base):
    __tablename__ = "canned_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


K = cast(Table, CannedRow.__table__)


@dataclass(frozen=True)
class Canned:
    id: int
    title: str
    body: str
    category: str | None
    updated_by: str
    updated_at: datetime


def _check(title: str, body: str) -> tuple[str, str]:
    title, body = title.strip(), body.strip()
    if not title or len(title) > MAX_TITLE:
        raise ValueError(f"title: 1-{MAX_TITLE} characters")
    if not body or len(body) > MAX_BODY:
        raise ValueError(f"body: 1-{MAX_BODY} characters")
    return title, body


class CannedAnswers:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list(self, category: str | None = None) -> list[Canned]:
        query = select(K).order_by(K.c.title)
        if category:
            query = query.where((K.c.category == category) | K.c.category.is_(None))
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        except DB_ERRORS as exc:
            raise store_error(f"canned answers ({describe(self.engine.url)})", exc) from exc
        return [Canned(r.id, r.title, r.body, r.category, r.updated_by, r.updated_at) for r in rows]

    async def save(
        self, title: str, body: str, *, by: str, category: str | None = None, id: int | None = None
    ) -> int:
        """Add (``id`` None) or change one; ValueError on empty/oversized text, KeyError on an
        unknown id."""
        title, body = _check(title, body)
        values = {
            "title": title,
            "body": body,
            "category": category or None,
            "updated_by": by,
            "updated_at": as_utc(utcnow()),
        }
        try:
            async with self.engine.begin() as conn:
                if id is None:
                    new = await conn.execute(insert(K).values(**values).returning(K.c.id))
                    return int(new.scalar_one())
                done = await conn.execute(update(K).where(K.c.id == id).values(**values))
                if done.rowcount == 0:
                    raise KeyError(id)
                return id
        except DB_ERRORS as exc:
            raise store_error(f"canned answers ({describe(self.engine.url)})", exc) from exc

    async def delete(self, id: int) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(K).where(K.c.id == id))
        except DB_ERRORS as exc:
            raise store_error(f"canned answers ({describe(self.engine.url)})", exc) from exc
