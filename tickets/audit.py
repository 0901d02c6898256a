"""The audit log: who looked at personal data, when, and what.

Every view of a confidential ticket's caller (a complaint about officials), every play of a
recording, is written here by the web app before the data is shown; administrators read it
(``/api/v1/audit``). The log is append-only: this module has no update and no delete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Index, Row, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tongdai.clock import as_utc, utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error


class AuditAction(StrEnum):
    VIEW_TICKET = "view_ticket"  # a confidential ticket's caller, contact and recording link
    PLAY_RECORDING = "play_recording"  # a recording's audio
    SET_CONFIDENTIAL = "set_confidential"  # a complaint classified about officials, or undone


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: AuditAction
    ticket_code: str | None
    detail: str | None


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_ticket_code", "ticket_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    ticket_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


A = cast(Table, AuditRow.__table__)


def _entry(r: Row[Any]) -> AuditEntry:
    return AuditEntry(r.id, r.at, r.actor, r.role, AuditAction(r.action), r.ticket_code, r.detail)


class SqlAuditLog:
    """The audit log on an asyncio engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock

    async def record(
        self,
        *,
        actor: str,
        role: str,
        action: AuditAction,
        ticket_code: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        """Write one entry and commit it (the data is shown only after this returns)."""
        at = as_utc(self._clock())
        note = detail[:2000] if detail else None
        values = dict(
            at=at,
            actor=actor[:64],
            role=role[:16],
            action=AuditAction(action).value,
            ticket_code=ticket_code,
            detail=note,
        )
        try:
            async with self.engine.begin() as conn:
                new_id = (
                    await conn.execute(insert(A).values(**values).returning(A.c.id))
                ).scalar_one()
        except DB_ERRORS as exc:
            raise store_error(
                f"audit log ({describe(self.engine.url)}): cannot write", exc
            ) from exc
        return AuditEntry(
            int(new_id), at, actor[:64], role[:16], AuditAction(action), ticket_code, note,
        )  # fmt: skip

    async def entries(
        self,
        *,
        ticket_code: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries matching every filter given, newest first."""
        q = select(A)
        if ticket_code is not None:
            q = q.where(A.c.ticket_code == ticket_code)
        if actor is not None:
            q = q.where(A.c.actor == actor)
        if since is not None:
            q = q.where(A.c.at >= as_utc(since, "since"))
        if until is not None:
            q = q.where(A.c.at < as_utc(until, "until"))
        q = q.order_by(A.c.id.desc()).limit(limit)
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(q)).all()
        except DB_ERRORS as exc:
            raise store_error(f"audit log ({describe(self.engine.url)}): cannot read", exc) from exc
        return [_entry(r) for r in rows]
