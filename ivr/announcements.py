"""Urgent announcements the IVR plays before the menu (a storm, a system outage, ...).

At most one announcement is active: ``set_announcement`` clears the previous one.
``active_announcement`` is what the IVR asks on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Index, Row, String, Table, Text, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tongdai.clock import utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, store_error


class AnnouncementRow(Base):
    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_active_from", "active_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    prompt_file: Mapped[str | None] = mapped_column(String(500))
    active_from: Mapped[datetime] = mapped_column(UtcDateTime)
    active_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(64))


@dataclass(frozen=True)
class Announcement:
    id: int
    text: str
    prompt_file: str | None
    active_from: datetime
    active_until: datetime | None
    created_by: str
    created_at: datetime
    cleared_at: datetime | None = None
    cleared_by: str | None = None


A = cast(Table, AnnouncementRow.__table__)


def _announcement(row: Row[tuple[object, ...]]) -> Announcement:
    m = row._mapping
    return Announcement(**{column.key: m[column.key] for column in A.c})


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value.isoformat()} (give a time zone)")
    return value


async def active_announcement(engine: AsyncEngine, now: datetime) -> Announcement | None:
    """The announcement to play at ``now``, or None (newest wins if several overlap)."""
    now = _aware(now, "now")
    query = (
        select(A)
        .where(
            A.c.cleared_at.is_(None),
            A.c.active_from <= now,
            or_(A.c.active_until.is_(None), A.c.active_until > now),
        )
        .order_by(A.c.active_from.desc(), A.c.id.desc())
        .limit(1)
    )
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(query)).one_or_none()
    except DB_ERRORS as exc:
        raise store_error("cannot read the active announcement", exc) from exc
    return _announcement(row) if row is not None else None


async def set_announcement(
    engine: AsyncEngine,
    text: str,
    prompt_file: str | None,
    until: datetime | None,
    by: str,
    *,
    now: datetime | None = None,
) -> Announcement:
    """Make ``text`` (played from ``prompt_file`` if given) the active announcement from ``now``
    until ``until`` (None: until cleared). The previous announcement is cleared."""
    now = _aware(now, "now") if now is not None else utcnow()
    if not text.strip():
        raise ValueError("announcement text is empty")
    if until is not None and _aware(until, "until") <= now:
        raise ValueError(f"until {until.isoformat()} is not in the future")
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(A).where(A.c.cleared_at.is_(None)).values(cleared_at=now, cleared_by=by)
            )
            row = (
                await conn.execute(
                    insert(A)
                    .values(
                        text=text,
                        prompt_file=prompt_file,
                        active_from=now,
                        active_until=until,
                        created_by=by,
                        created_at=now,
                    )
                    .returning(*A.c)
                )
            ).one()
    except DB_ERRORS as exc:
        raise store_error("cannot set the announcement", exc) from exc
    return _announcement(row)


async def clear_announcement(engine: AsyncEngine, by: str, *, now: datetime | None = None) -> int:
    """Stop every announcement not yet cleared; returns how many were cleared."""
    now = _aware(now, "now") if now is not None else utcnow()
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                update(A).where(A.c.cleared_at.is_(None)).values(cleared_at=now, cleared_by=by)
            )
    except DB_ERRORS as exc:
        raise store_error("cannot clear the announcement", exc) from exc
    return int(result.rowcount)
