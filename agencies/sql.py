"""The forwards on SQLAlchemy: the ``forwards`` table (migration 0005) and ``SqlForwardStore``;
the days the daily digest went (``digest_days``, migration 0008) and ``SqlDigestLog``.

Database failures are ``tongdai.errors.StoreError``; unknown ids ``KeyError``; a transition
the state does not allow ``IllegalForward`` (checked by the ``UPDATE``'s ``WHERE`` clause).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from agencies.forwards import (
    FORWARD_TRANSITIONS,
    OPEN_STATES,
    Forward,
    ForwardState,
    IllegalForward,
    Notify,
)
from tickets.sql import ticket_id
from tongdai.clock import as_utc
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error


class ForwardRow(Base):
    __tablename__ = "forwards"
    __table_args__ = (
        Index("ix_forwards_agency_state", "agency_id", "state"),
        Index("ix_forwards_ticket_code", "ticket_code"),
        Index("ix_forwards_forwarded_at", "forwarded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_code: Mapped[str] = mapped_column(
        String(32), ForeignKey("tickets.code", name="fk_forwards_ticket", ondelete="CASCADE")
    )
    agency_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    forwarded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    forwarded_by: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answer: Mapped[str | None] = mapped_column(Text)
    answer_public: Mapped[bool] = mapped_column(Boolean, server_default=false())
    sent_back_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_back_by: Mapped[str | None] = mapped_column(String(64))
    sent_back_reason: Mapped[str | None] = mapped_column(Text)
    notify: Mapped[str] = mapped_column(String(16))
    notify_error: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reply_via: Mapped[str | None] = mapped_column(String(16))
    callback_done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DigestDayRow(Base):
    __tablename__ = "digest_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    mails: Mapped[int | None] = mapped_column(Integer)


F = cast(Table, ForwardRow.__table__)
DD = cast(Table, DigestDayRow.__table__)
_OPEN = tuple(s.value for s in OPEN_STATES)


def _forward(row: Row[Any]) -> Forward:
    m = row._mapping
    values = {c.name: m[c.name] for c in F.c}
    values["state"] = ForwardState(values["state"])
    values["notify"] = Notify(values["notify"])
    values["answer_public"] = bool(values["answer_public"])
    return Forward(**values)


class SqlForwardStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _fail(self, what: str, exc: Exception) -> Exception:
        return store_error(f"forwards: {what} ({describe(self.engine.url)})", exc)

    async def _one(self, query: Any) -> Row[Any] | None:
        try:
            async with self.engine.connect() as conn:
                return (await conn.execute(query)).first()
        except DB_ERRORS as exc:
            raise self._fail("cannot read", exc) from exc

    async def _all(self, query: Any) -> list[Forward]:
        try:
            async with self.engine.connect() as conn:
                return [_forward(r) for r in (await conn.execute(query)).all()]
        except DB_ERRORS as exc:
            raise self._fail("cannot read", exc) from exc

    async def create(
        self,
        *,
        ticket_code: str,
        agency_id: str,
        due_at: datetime,
        by: str,
        at: datetime,
        note: str | None = None,
    ) -> Forward:
        try:
            async with self.engine.begin() as conn:
                await ticket_id(conn, ticket_code)
                busy = (
                    await conn.execute(
                        select(F.c.id, F.c.agency_id).where(
                            F.c.ticket_code == ticket_code, F.c.state.in_(_OPEN)
                        )
                    )
                ).first()
                if busy is not None:
                    raise ValueError(f"{ticket_code} is already with {busy.agency_id}")
                row = (
                    await conn.execute(
                        insert(F)
                        .values(
                            ticket_code=ticket_code,
                            agency_id=agency_id,
                            state=ForwardState.FORWARDED.value,
                            forwarded_at=as_utc(at, "at"),
                            forwarded_by=by,
                            due_at=as_utc(due_at, "due_at"),
                            note=note,
                            answer_public=False,
                            notify=Notify.PENDING.value,
                        )
                        .returning(*F.c)
                    )
                ).one()
        except DB_ERRORS as exc:
            raise self._fail(f"cannot forward {ticket_code}", exc) from exc
        return _forward(row)

    async def get(self, forward_id: int) -> Forward | None:
        row = await self._one(select(F).where(F.c.id == forward_id))
        return _forward(row) if row is not None else None

    async def of_ticket(self, code: str) -> list[Forward]:
        return await self._all(select(F).where(F.c.ticket_code == code).order_by(F.c.id))

    async def listing(
        self,
        *,
        agency_id: str | None = None,
        states: Sequence[ForwardState] | None = None,
        limit: int = 200,
    ) -> list[Forward]:
        query = select(F)
        if agency_id is not None:
            query = query.where(F.c.agency_id == agency_id)
        if states is not None:
            query = query.where(F.c.state.in_([s.value for s in states]))
        return await self._all(query.order_by(F.c.due_at, F.c.id).limit(limit))

    async def _move(
        self, forward_id: int, to: ForwardState, values: dict[str, Any], allowed: Sequence[str]
    ) -> Forward:
        try:
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        update(F)
                        .where(F.c.id == forward_id, F.c.state.in_(allowed))
                        .values(state=to.value, **values)
                        .returning(*F.c)
                    )
                ).first()
                if row is None:
                    now = (
                        await conn.execute(select(F.c.state).where(F.c.id == forward_id))
                    ).first()
                    if now is None:
                        raise KeyError(forward_id)
                    raise IllegalForward(ForwardState(now.state), to)
        except DB_ERRORS as exc:
            raise self._fail(f"cannot change forward {forward_id}", exc) from exc
        return _forward(row)

    @staticmethod
    def _from(to: ForwardState) -> list[str]:
        return [s.value for s, nxt in FORWARD_TRANSITIONS.items() if to in nxt]

    async def extend(
        self, forward_id: int, *, reason: str, due_at: datetime, at: datetime
    ) -> Forward:
        to = ForwardState.EXTENDED
        values = {
            "extension_reason": reason,
            "extended_at": as_utc(at, "at"),
            "due_at": as_utc(due_at, "due_at"),
        }
        return await self._move(forward_id, to, values, self._from(to))

    async def answer(
        self, forward_id: int, *, text: str, public: bool, by: str, at: datetime
    ) -> Forward:
        to = ForwardState.ANSWERED
        values = {
            "answer": text,
            "answer_public": public,
            "answered_by": by,
            "answered_at": as_utc(at, "at"),
        }
        return await self._move(forward_id, to, values, self._from(to))

    async def send_back(self, forward_id: int, *, reason: str, by: str, at: datetime) -> Forward:
        to = ForwardState.SENT_BACK
        values = {"sent_back_reason": reason, "sent_back_by": by, "sent_back_at": as_utc(at)}
        return await self._move(forward_id, to, values, self._from(to))

    async def _set(self, forward_id: int, what: str, **values: Any) -> Forward:
        try:
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        update(F).where(F.c.id == forward_id).values(**values).returning(*F.c)
                    )
                ).first()
        except DB_ERRORS as exc:
            raise self._fail(f"cannot {what} forward {forward_id}", exc) from exc
        if row is None:
            raise KeyError(forward_id)
        return _forward(row)

    async def set_notify(
        self, forward_id: int, notify: Notify, *, at: datetime, error: str | None = None
    ) -> None:
        sent_at = as_utc(at, "at") if notify is Notify.SENT else None
        await self._set(
            forward_id, "record the notice of", notify=notify.value, notify_error=error,
            notified_at=sent_at,
        )  # fmt: skip

    async def pending_notifications(self, limit: int = 50) -> list[Forward]:
        query = select(F).where(F.c.notify == Notify.PENDING.value).order_by(F.c.id).limit(limit)
        return await self._all(query)

    async def replied(self, forward_id: int, *, via: str, at: datetime) -> Forward:
        return await self._set(forward_id, "mark replied", reply_via=via, replied_at=as_utc(at))

    async def callback_done(self, forward_id: int, *, at: datetime) -> Forward:
        return await self._set(forward_id, "close the callback of", callback_done_at=as_utc(at))

    async def callbacks(self, limit: int = 100) -> list[Forward]:
        query = (
            select(F)
            .where(F.c.reply_via == "callback", F.c.callback_done_at.is_(None))
            .order_by(F.c.replied_at, F.c.id)
            .limit(limit)
        )
        return await self._all(query)


class SqlDigestLog:
    """``agencies.digest.DigestLog`` in the database: one row per day whose digest went."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _fail(self, what: str, exc: Exception) -> Exception:
        return store_error(f"digest days: {what} ({describe(self.engine.url)})", exc)

    async def claimed(self, day: date) -> bool:
        try:
            async with self.engine.connect() as conn:
                found = await conn.execute(select(DD.c.day).where(DD.c.day == day))
                return found.first() is not None
        except DB_ERRORS as exc:
            raise self._fail("cannot read", exc) from exc

    async def claim(self, day: date, at: datetime) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(DD).values(day=day, claimed_at=as_utc(at, "at")))
            return True
        except IntegrityError:  # another engine (or an earlier run) has it
            return False
        except DB_ERRORS as exc:
            raise self._fail("cannot write", exc) from exc

    async def done(self, day: date, mails: int) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(update(DD).where(DD.c.day == day).values(mails=mails))
        except DB_ERRORS as exc:
            raise self._fail("cannot write", exc) from exc
