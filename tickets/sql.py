"""The ticket store on SQLAlchemy (SQLite or PostgreSQL): tables and ``SqlTicketStore``.

``open`` commits before it returns, so a ticket exists on disk before the caller hears its code.
Database failures surface as ``tongdai.errors.StoreError`` with a one-line reason; unknown codes
raise ``KeyError`` and rule violations ``ValueError``, exactly like ``tickets.memory``.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ForeignKey,
    Index,
    Row,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tickets.changes import check_changes, status_fields
from tickets.codes import allocate_code
from tickets.model import (
    TRANSITIONS,
    UPDATABLE_FIELDS,
    IvrStep,
    Outcome,
    Status,
    StatusChange,
    Ticket,
)
from tongdai.clock import as_utc, utcnow
from tongdai.db import (
    DB_ERRORS,
    Base,
    UtcDateTime,
    describe,
    make_engine,
    store_error,
    upgrade_engine,
)

#: who opened a ticket, as written in its first history entry
OPENED_BY = "system"


class TicketRow(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("code", name="uq_tickets_code"),
        Index("ix_tickets_started_at", "started_at"),
        Index("ix_tickets_uniqueid", "uniqueid"),
        Index("ix_tickets_caller", "caller"),
        Index("ix_tickets_outcome", "outcome"),
        Index("ix_tickets_category", "category"),
        # the complaints of a period (reports.kpi); migration 0002 says why no others
        Index("ix_tickets_category_started_at", "category", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str | None] = mapped_column(String(80))
    uniqueid: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    category: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    dossier_code: Mapped[str | None] = mapped_column(String(32))
    recording: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    acw_seconds: Mapped[int | None]
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", name="fk_tickets_contact"), index=True
    )
    subject: Mapped[str | None] = mapped_column(Text)
    complaint_type: Mapped[str | None] = mapped_column(String(16))


class StepRow(Base):
    """One step of a ticket's IVR path; ``seq`` orders them from 1."""

    __tablename__ = "ticket_steps"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    node: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class HistoryRow(Base):
    """One status change; ``from_status`` is NULL for the ticket's creation."""

    __tablename__ = "ticket_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


T = cast(Table, TicketRow.__table__)
S = cast(Table, StepRow.__table__)
H = cast(Table, HistoryRow.__table__)


async def insert_ticket(
    conn: AsyncConnection,
    *,
    channel: str,
    caller: str | None,
    uniqueid: str | None,
    started_at: datetime,
    **fields: Any,
) -> Ticket:
    """Insert a new ticket (code taken from the day's counter) and its first history entry
    inside the caller's transaction; returns the ticket as written (``fields`` are Ticket
    fields), without reading it back."""
    code = await allocate_code(conn, started_at)
    ticket_id = (
        await conn.execute(
            insert(T)
            .values(
                code=code,
                channel=channel,
                caller=caller,
                uniqueid=uniqueid,
                started_at=started_at,
                status=Status.NEW.value,
                **fields,
            )
            .returning(T.c.id)
        )
    ).scalar_one()
    await conn.execute(
        insert(H).values(
            ticket_id=ticket_id,
            at=started_at,
            from_status=None,
            to_status=Status.NEW.value,
            changed_by=OPENED_BY,
        )
    )
    return Ticket(
        id=int(ticket_id),
        code=code,
        channel=channel,
        caller=caller,
        uniqueid=uniqueid,
        started_at=started_at,
        history=[StatusChange(at=started_at, from_status=None, to_status=Status.NEW, by=OPENED_BY)],
        **fields,
    )


async def ticket_id(conn: AsyncConnection, code: str) -> int:
    """The id of ticket ``code`` inside the caller's transaction (``KeyError`` if unknown): for
    the stores whose rows point at a ticket (forwards, postal registrations)."""
    row = (await conn.execute(select(T.c.id).where(T.c.code == code))).first()
    if row is None:
        raise KeyError(code)
    return int(row.id)


class SqlTicketStore:
    """``TicketStore`` on an asyncio engine. ``close`` disposes the engine if it owns it."""

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

    @asynccontextmanager
    async def _tx(self, what: str) -> AsyncIterator[AsyncConnection]:
        """A transaction; driver failures become ``StoreError`` (KeyError/ValueError pass)."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except DB_ERRORS as exc:
            raise store_error(f"ticket store ({describe(self.engine.url)}): {what}", exc) from exc

    async def open(
        self, *, channel: str, caller: str | None, uniqueid: str | None, started_at: datetime
    ) -> Ticket:
        started_at = as_utc(started_at, "started_at")
        async with self._tx("cannot open a ticket") as conn:
            return await insert_ticket(
                conn, channel=channel, caller=caller, uniqueid=uniqueid, started_at=started_at
            )

    async def import_ticket(self, ticket: Ticket) -> bool:
        """Insert a ticket made elsewhere (``tickets.spool``) under its own code, with its fields,
        path and history, in one transaction; its ``id`` is ignored (a new one is given).

        Returns False and changes nothing if a ticket with that code exists, so importing the
        same ticket twice is harmless. The day counters are not touched.
        """
        started_at = as_utc(ticket.started_at, "started_at")
        values = check_changes({name: getattr(ticket, name) for name in UPDATABLE_FIELDS})
        stored = {k: (v.value if isinstance(v, Outcome) else v) for k, v in values.items()}
        steps = [(as_utc(s.at, "step.at"), s) for s in ticket.ivr_path]
        history = ticket.history or [
            StatusChange(at=started_at, from_status=None, to_status=Status.NEW, by=OPENED_BY)
        ]
        async with self._tx(f"cannot import ticket {ticket.code}") as conn:
            found = (await conn.execute(select(T.c.id).where(T.c.code == ticket.code))).first()
            if found is not None:
                return False
            ticket_id = (
                await conn.execute(
                    insert(T)
                    .values(
                        code=ticket.code,
                        channel=ticket.channel,
                        caller=ticket.caller,
                        uniqueid=ticket.uniqueid,
                        started_at=started_at,
                        status=Status(ticket.status).value,
                        **stored,
                    )
                    .returning(T.c.id)
                )
            ).scalar_one()
            if steps:
                await conn.execute(
                    insert(S),
                    [
                        {
                            "ticket_id": ticket_id,
                            "seq": i + 1,
                            "at": at,
                            "node": s.node,
                            "key": s.key,
                            "detail": s.detail,
                        }
                        for i, (at, s) in enumerate(steps)
                    ],
                )
            await conn.execute(
                insert(H),
                [
                    {
                        "ticket_id": ticket_id,
                        "at": as_utc(h.at, "history.at"),
                        "from_status": Status(h.from_status).value if h.from_status else None,
                        "to_status": Status(h.to_status).value,
                        "changed_by": h.by,
                        "note": h.note,
                    }
                    for h in history
                ],
            )
        return True

    async def _id_for_update(self, conn: AsyncConnection, code: str) -> tuple[int, str]:
        row = (
            await conn.execute(select(T.c.id, T.c.status).where(T.c.code == code).with_for_update())
        ).one_or_none()
        if row is None:
            raise KeyError(code)
        return int(row.id), str(row.status)

    async def update(self, code: str, **changes: Any) -> None:
        values = check_changes(changes)
        async with self._tx(f"cannot update ticket {code}") as conn:
            if not values:
                await self._id_for_update(conn, code)
                return
            stored = {k: (v.value if isinstance(v, Outcome) else v) for k, v in values.items()}
            result = await conn.execute(update(T).where(T.c.code == code).values(**stored))
            if result.rowcount == 0:
                raise KeyError(code)

    async def append_steps(self, code: str, steps: Sequence[IvrStep]) -> None:
        rows = [(as_utc(s.at, "step.at"), s) for s in steps]
        async with self._tx(f"cannot append steps to ticket {code}") as conn:
            ticket_id, _ = await self._id_for_update(conn, code)
            if not rows:
                return
            last = (
                await conn.execute(select(func.max(S.c.seq)).where(S.c.ticket_id == ticket_id))
            ).scalar_one()
            first = int(last or 0) + 1
            await conn.execute(
                insert(S),
                [
                    {
                        "ticket_id": ticket_id,
                        "seq": first + i,
                        "at": at,
                        "node": s.node,
                        "key": s.key,
                        "detail": s.detail,
                    }
                    for i, (at, s) in enumerate(rows)
                ],
            )

    async def get(self, code: str) -> Ticket | None:
        async with self._tx(f"cannot read ticket {code}") as conn:
            found = await self._load(conn, select(T).where(T.c.code == code))
        return found[0] if found else None

    async def find_by_uniqueid(self, uniqueid: str) -> Ticket | None:
        query = select(T).where(T.c.uniqueid == uniqueid).order_by(T.c.id.desc()).limit(1)
        async with self._tx(f"cannot find the ticket of channel {uniqueid}") as conn:
            found = await self._load(conn, query)
        return found[0] if found else None

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[Ticket]:
        query = select(T).order_by(T.c.started_at, T.c.id)
        if since is not None:
            query = query.where(T.c.started_at >= as_utc(since, "since"))
        if until is not None:
            query = query.where(T.c.started_at < as_utc(until, "until"))
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must not be negative, got {limit}")
            query = query.limit(limit)
        async with self._tx("cannot list tickets") as conn:
            return await self._load(conn, query)

    async def set_status(
        self, code: str, status: Status, *, by: str, note: str | None = None
    ) -> Ticket:
        new = Status(status)
        async with self._tx(f"cannot change the status of ticket {code}") as conn:
            ticket_id, current = await self._id_for_update(conn, code)
            old = Status(current)
            if new not in TRANSITIONS[old]:
                raise ValueError(f"ticket {code}: cannot go from {old} to {new}")
            at = as_utc(self._clock(), "clock")
            values = {"status": new.value, **status_fields(new, at)}
            await conn.execute(update(T).where(T.c.id == ticket_id).values(**values))
            await conn.execute(
                insert(H).values(
                    ticket_id=ticket_id,
                    at=at,
                    from_status=old.value,
                    to_status=new.value,
                    changed_by=by,
                    note=note,
                )
            )
            return (await self._load(conn, select(T).where(T.c.id == ticket_id)))[0]

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    async def _load(self, conn: AsyncConnection, query: Any) -> builtins.list[Ticket]:
        """Tickets of ``query`` (a select of the tickets table) with path and history, in order."""
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        steps: dict[int, builtins.list[IvrStep]] = {i: [] for i in ids}
        for s in await conn.execute(select(S).where(S.c.ticket_id.in_(ids)).order_by(S.c.seq)):
            steps[s.ticket_id].append(IvrStep(at=s.at, node=s.node, key=s.key, detail=s.detail))
        history: dict[int, builtins.list[StatusChange]] = {i: [] for i in ids}
        for h in await conn.execute(select(H).where(H.c.ticket_id.in_(ids)).order_by(H.c.id)):
            history[h.ticket_id].append(
                StatusChange(
                    at=h.at,
                    from_status=Status(h.from_status) if h.from_status else None,
                    to_status=Status(h.to_status),
                    by=h.changed_by,
                    note=h.note,
                )
            )
        return [_ticket(row, steps[row.id], history[row.id]) for row in rows]


def _ticket(row: Row[Any], steps: list[IvrStep], history: list[StatusChange]) -> Ticket:
    return Ticket(
        id=row.id,
        code=row.code,
        channel=row.channel,
        caller=row.caller,
        uniqueid=row.uniqueid,
        started_at=row.started_at,
        queued_at=row.queued_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        category=row.category,
        queue=row.queue,
        agent=row.agent,
        outcome=Outcome(row.outcome) if row.outcome else None,
        dossier_code=row.dossier_code,
        recording=row.recording,
        notes=row.notes,
        status=Status(row.status),
        ivr_path=steps,
        history=history,
        satisfaction=row.satisfaction,
        acw_seconds=row.acw_seconds,
        due_at=row.due_at,
        resolved_at=row.resolved_at,
        contact_id=row.contact_id,
        subject=row.subject,
        complaint_type=row.complaint_type,
    )


async def open_store(url: str) -> SqlTicketStore:
    """Migrate the database at ``url`` and return a store that owns its engine."""
    engine = make_engine(url)
    migrated = False
    try:
        await upgrade_engine(engine)
        migrated = True
    finally:
        if not migrated:
            await engine.dispose()
    return SqlTicketStore(engine, owns_engine=True)
