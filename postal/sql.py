"""Postal registrations on SQLAlchemy: the ``postal_registrations`` and ``postal_events``
tables (migration 0007) and ``SqlPostalStore``.

Database failures are ``tongdai.errors.StoreError``; unknown ids ``KeyError``; a transition
the state does not allow ``IllegalPostal`` (checked by the ``UPDATE``'s ``WHERE`` clause); a
second active registration of one dossier ``PostalError("already_registered")`` (checked
first, and by the partial unique index when two arrive at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ForeignKey, Index, Row, String, Table, Text, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from postal.model import (
    ACTIVE_STATES,
    IVR_REQUEST_NOTE,
    TRANSITIONS,
    Address,
    Event,
    IllegalPostal,
    PostalError,
    PostalState,
    Registration,
    check_move,
)
from tickets.sql import ticket_id
from tongdai.clock import as_utc
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error

#: the partial index's condition (the migration writes the same text)
ACTIVE_WHERE = "state IN ('requested', 'registered', 'handed_to_post')"


class RegistrationRow(Base):
    __tablename__ = "postal_registrations"
    __table_args__ = (
        Index("ix_postal_registrations_ticket_code", "ticket_code"),
        Index("ix_postal_registrations_state", "state"),
        Index("ix_postal_registrations_registered_at", "registered_at"),
        Index(
            "uq_postal_registrations_active_dossier",
            "dossier_code",
            unique=True,
            sqlite_where=text(ACTIVE_WHERE),
            postgresql_where=text(ACTIVE_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_code: Mapped[str] = mapped_column(
        String(32), ForeignKey("tickets.code", name="fk_postal_ticket", ondelete="CASCADE")
    )
    dossier_code: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(100))
    province: Mapped[str | None] = mapped_column(String(80))
    district: Mapped[str | None] = mapped_column(String(80))
    ward: Mapped[str | None] = mapped_column(String(80))
    street: Mapped[str | None] = mapped_column(String(200))
    preferred_time: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EventRow(Base):
    """One change of a registration; ``from_state`` is NULL for its creation."""

    __tablename__ = "postal_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("postal_registrations.id", name="fk_postal_events_reg", ondelete="CASCADE"),
        index=True,
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


R = cast(Table, RegistrationRow.__table__)
E = cast(Table, EventRow.__table__)
_ACTIVE = tuple(s.value for s in ACTIVE_STATES)


def _registration(row: Row[Any]) -> Registration:
    values = {c.name: row._mapping[c.name] for c in R.c}
    values["state"] = PostalState(values["state"])
    return Registration(**values)


def _address_values(a: Address) -> dict[str, Any]:
    return {
        "recipient": a.recipient, "phone": a.phone, "province": a.province,
        "district": a.district, "ward": a.ward, "street": a.street,
        "preferred_time": a.preferred_time,
    }  # fmt: skip


class SqlPostalStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _fail(self, what: str, exc: Exception) -> Exception:
        return store_error(f"postal: {what} ({describe(self.engine.url)})", exc)

    async def _all(self, query: Any) -> list[Registration]:
        try:
            async with self.engine.connect() as conn:
                return [_registration(r) for r in (await conn.execute(query)).all()]
        except DB_ERRORS as exc:
            raise self._fail("cannot read", exc) from exc

    @staticmethod
    async def _event(
        conn: AsyncConnection,
        reg_id: int,
        *,
        at: datetime,
        old: PostalState | None,
        new: PostalState,
        by: str,
        note: str | None,
    ) -> None:
        await conn.execute(
            insert(E).values(
                registration_id=reg_id, at=at, from_state=old.value if old else None,
                to_state=new.value, changed_by=by, note=note,
            )
        )  # fmt: skip

    async def _create(
        self, ticket_code: str, dossier_code: str, state: PostalState, values: dict[str, Any],
        by: str, at: datetime, note: str | None,
    ) -> Registration:  # fmt: skip
        at = as_utc(at, "at")
        try:
            async with self.engine.begin() as conn:
                await ticket_id(conn, ticket_code)
                busy = (
                    await conn.execute(
                        select(R.c.id).where(
                            R.c.dossier_code == dossier_code, R.c.state.in_(_ACTIVE)
                        )
                    )
                ).first()
                if busy is not None:
                    raise PostalError(
                        "already_registered",
                        f"dossier {dossier_code} already has registration {busy.id}",
                    )
                registered_at = at if state is PostalState.REGISTERED else None
                row = (
                    await conn.execute(
                        insert(R)
                        .values(
                            ticket_code=ticket_code, dossier_code=dossier_code,
                            state=state.value, note=note, created_at=at, created_by=by,
                            updated_at=at, registered_at=registered_at, **values,
                        )
                        .returning(*R.c)
                    )
                ).one()  # fmt: skip
                await self._event(conn, row.id, at=at, old=None, new=state, by=by, note=note)
        except IntegrityError as exc:
            raise PostalError(
                "already_registered", f"dossier {dossier_code} already has a registration"
            ) from exc
        except DB_ERRORS as exc:
            raise self._fail(f"cannot register dossier {dossier_code}", exc) from exc
        return _registration(row)

    async def request(
        self, *, ticket_code: str, dossier_code: str, phone: str | None, by: str, at: datetime
    ) -> Registration:
        return await self._create(
            ticket_code, dossier_code, PostalState.REQUESTED, {"phone": phone}, by, at,
            IVR_REQUEST_NOTE,
        )  # fmt: skip

    async def register(
        self,
        *,
        ticket_code: str,
        dossier_code: str,
        address: Address,
        by: str,
        at: datetime,
        note: str | None = None,
    ) -> Registration:
        values = _address_values(address)
        return await self._create(
            ticket_code, dossier_code, PostalState.REGISTERED, values, by, at, note
        )

    async def _move(
        self,
        reg_id: int,
        to: PostalState,
        values: dict[str, Any],
        *,
        by: str,
        at: datetime,
        note: str | None,
    ) -> Registration:
        at = as_utc(at, "at")
        allowed = [s.value for s, nxt in TRANSITIONS.items() if to in nxt]
        try:
            async with self.engine.begin() as conn:
                before = (await conn.execute(select(R.c.state).where(R.c.id == reg_id))).first()
                if before is None:
                    raise KeyError(reg_id)
                row = (
                    await conn.execute(
                        update(R)
                        .where(R.c.id == reg_id, R.c.state == before.state)
                        .where(R.c.state.in_(allowed))
                        .values(state=to.value, updated_at=at, **values)
                        .returning(*R.c)
                    )
                ).first()
                if row is None:
                    now = (await conn.execute(select(R.c.state).where(R.c.id == reg_id))).one()
                    raise IllegalPostal(PostalState(now.state), to)
                old = PostalState(before.state)
                await self._event(conn, reg_id, at=at, old=old, new=to, by=by, note=note)
        except DB_ERRORS as exc:
            raise self._fail(f"cannot change registration {reg_id}", exc) from exc
        return _registration(row)

    async def complete(
        self, registration_id: int, address: Address, *, by: str, at: datetime
    ) -> Registration:
        values = {**_address_values(address), "registered_at": as_utc(at, "at")}
        return await self._move(
            registration_id, PostalState.REGISTERED, values, by=by, at=at,
            note="đã lấy địa chỉ nhận",
        )  # fmt: skip

    async def move(
        self,
        registration_id: int,
        to: PostalState,
        *,
        by: str,
        at: datetime,
        note: str | None = None,
    ) -> Registration:
        check_move(to)
        return await self._move(registration_id, to, {}, by=by, at=at, note=note)

    async def get(self, registration_id: int) -> Registration | None:
        found = await self._all(select(R).where(R.c.id == registration_id))
        return found[0] if found else None

    async def events(self, registration_id: int) -> list[Event]:
        query = select(E).where(E.c.registration_id == registration_id).order_by(E.c.id)
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        except DB_ERRORS as exc:
            raise self._fail("cannot read", exc) from exc
        return [
            Event(
                at=r.at,
                from_state=PostalState(r.from_state) if r.from_state else None,
                to_state=PostalState(r.to_state),
                by=r.changed_by,
                note=r.note,
            )
            for r in rows
        ]

    async def of_ticket(self, code: str) -> list[Registration]:
        return await self._all(select(R).where(R.c.ticket_code == code).order_by(R.c.id))

    async def listing(
        self, *, states: Sequence[PostalState] | None = None, limit: int = 200
    ) -> list[Registration]:
        query = select(R)
        if states is not None:
            query = query.where(R.c.state.in_([s.value for s in states]))
        return await self._all(query.order_by(R.c.id.desc()).limit(limit))

    async def for_post(self, start: datetime, end: datetime) -> list[Registration]:
        query = (
            select(R)
            .where(R.c.registered_at >= as_utc(start, "start"))
            .where(R.c.registered_at < as_utc(end, "end"))
            .where(R.c.state != PostalState.CANCELLED.value)
            .order_by(R.c.registered_at, R.c.id)
        )
        return await self._all(query)
