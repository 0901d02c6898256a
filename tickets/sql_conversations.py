"""Messages and contacts on SQLAlchemy (SQLite or PostgreSQL): ``SqlConversationStore``.

Exactly once: ``(channel, external_id)`` is unique in ``messages``, so a redelivered message is
refused by the database itself; ``start_conversation`` opens the ticket and stores the first
message in one transaction, so a crash between the two cannot leave a ticket without its
message, and a redelivery of that first message finds the stored one instead of opening a
second ticket. Attachments and channel details are JSON text beside the message.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ForeignKey,
    Index,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tickets.messages import (
    Attachment,
    Author,
    Contact,
    ContactIdentity,
    Delivery,
    Direction,
    Message,
    NewMessage,
)
from tickets.model import Status, Ticket
from tickets.sql import SqlTicketStore, T, insert_ticket, ticket_id
from tongdai.clock import as_utc, utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error

VOICE = "voice"
_OPEN = (Status.NEW.value, Status.IN_PROGRESS.value)


class ContactRow(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", name="fk_contacts_merged_into")
    )


class IdentityRow(Base):
    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_contact_identities_kind_value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", name="fk_contact_identities_contact"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_messages_channel_external_id"),
        Index("ix_messages_ticket_id", "ticket_id", "id"),
        Index("ix_messages_delivery_next", "delivery", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE", name="fk_messages_ticket")
    )
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))
    author: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str | None] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(512))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    attachments: Mapped[str | None] = mapped_column(Text)
    delivery: Mapped[str] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    meta: Mapped[str | None] = mapped_column(Text)


C = cast(Table, ContactRow.__table__)
I = cast(Table, IdentityRow.__table__)  # noqa: E741
M = cast(Table, MessageRow.__table__)


def _attachments_json(items: Sequence[Attachment]) -> str | None:
    if not items:
        return None
    return json.dumps(
        [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "path": a.path,
                "url": a.url,
            }
            for a in items
        ],
        ensure_ascii=False,
    )


def _message(row: Row[Any], code: str) -> Message:
    atts = tuple(Attachment(**a) for a in json.loads(row.attachments or "[]"))
    return Message(
        id=int(row.id),
        ticket_code=code,
        channel=row.channel,
        direction=Direction(row.direction),
        author=Author(row.author),
        body=row.body,
        at=row.at,
        author_id=row.author_id,
        html=row.html,
        external_id=row.external_id,
        attachments=atts,
        delivery=Delivery(row.delivery),
        delivery_error=row.delivery_error,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        meta=json.loads(row.meta or "{}"),
    )


class SqlConversationStore:
    """``ConversationStore`` on the engine (and the ticket tables) of a ``SqlTicketStore``."""

    def __init__(self, tickets: SqlTicketStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.tickets = tickets
        self.engine: AsyncEngine = tickets.engine
        self._clock = clock

    @asynccontextmanager
    async def _tx(self, what: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except DB_ERRORS as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise store_error(
                f"conversation store ({describe(self.engine.url)}): {what}", exc
            ) from exc

    # -- messages ----------------------------------------------------------------------------

    @staticmethod
    def _values(ticket_id: int, m: NewMessage) -> dict[str, Any]:
        return {
            "ticket_id": ticket_id,
            "channel": m.channel,
            "direction": Direction(m.direction).value,
            "author": Author(m.author).value,
            "author_id": m.author_id,
            "body": m.body,
            "html": m.html,
            "external_id": m.external_id,
            "at": as_utc(m.at, "message.at"),
            "attachments": _attachments_json(m.attachments),
            "delivery": Delivery(m.delivery).value,
            "delivery_error": None,
            "attempts": 0,
            "next_attempt_at": as_utc(m.at, "message.at")
            if m.delivery is Delivery.PENDING
            else None,
            "meta": json.dumps(m.meta, ensure_ascii=False) if m.meta else None,
        }

    async def _existing(
        self, conn: AsyncConnection, channel: str, external_id: str | None
    ) -> tuple[Message, str] | None:
        if external_id is None:
            return None
        row = (
            await conn.execute(
                select(M, T.c.code)
                .join(T, T.c.id == M.c.ticket_id)
                .where(M.c.channel == channel, M.c.external_id == external_id)
            )
        ).first()
        return (_message(row, row.code), row.code) if row is not None else None

    async def start_conversation(
        self,
        *,
        channel: str,
        contact_id: int | None,
        caller: str | None,
        subject: str | None,
        first: NewMessage,
    ) -> tuple[Ticket, Message, bool]:
        at = as_utc(first.at, "message.at")
        for attempt in range(2):
            try:
                async with self._tx("cannot open a conversation") as conn:
                    found = await self._existing(conn, first.channel, first.external_id)
                    if found is not None:
                        message, code = found
                        tickets = await self.tickets._load(conn, select(T).where(T.c.code == code))
                        return tickets[0], message, False
                    ticket = await insert_ticket(
                        conn,
                        channel=channel,
                        caller=caller,
                        uniqueid=None,
                        started_at=at,
                        contact_id=contact_id,
                        subject=subject,
                    )
                    message = await self._insert(conn, ticket.id, ticket.code, first)
                    return ticket, message, True
            except IntegrityError as exc:  # a concurrent delivery of the same message won
                if attempt:
                    raise store_error("conversation store: duplicate message", exc) from exc
        raise AssertionError("unreachable")

    async def _insert(
        self, conn: AsyncConnection, ticket_id: int, code: str, message: NewMessage
    ) -> Message:
        """Insert ``message`` and return it as stored (one statement: INSERT .. RETURNING)."""
        row = (
            await conn.execute(insert(M).values(**self._values(ticket_id, message)).returning(M))
        ).one()
        return _message(row, code)

    async def add_message(self, code: str, message: NewMessage) -> tuple[Message, bool]:
        for attempt in range(2):
            try:
                async with self._tx(f"cannot add a message to {code}") as conn:
                    found = await self._existing(conn, message.channel, message.external_id)
                    if found is not None:
                        return found[0], False
                    tid = await ticket_id(conn, code)
                    return await self._insert(conn, tid, code, message), True
            except IntegrityError as exc:
                if attempt:
                    raise store_error("conversation store: duplicate message", exc) from exc
        raise AssertionError("unreachable")

    async def find_message(self, channel: str, external_id: str) -> Message | None:
        async with self._tx("cannot find a message") as conn:
            found = await self._existing(conn, channel, external_id)
        return found[0] if found else None

    async def messages(self, code: str) -> builtins.list[Message]:
        query = (
            select(M, T.c.code)
            .join(T, T.c.id == M.c.ticket_id)
            .where(T.c.code == code)
            .order_by(M.c.id)
        )
        async with self._tx(f"cannot read the messages of {code}") as conn:
            rows = (await conn.execute(query)).all()
        return [_message(r, r.code) for r in rows]

    async def set_delivery(
        self,
        message_id: int,
        delivery: Delivery,
        *,
        external_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "delivery": Delivery(delivery).value,
            "delivery_error": error,
            "next_attempt_at": as_utc(next_attempt_at, "next_attempt_at")
            if next_attempt_at is not None
            else None,
            "attempts": M.c.attempts + 1,
        }
        if external_id is not None:
            values["external_id"] = external_id
        async with self._tx(f"cannot record the delivery of message {message_id}") as conn:
            result = await conn.execute(update(M).where(M.c.id == message_id).values(**values))
            if result.rowcount == 0:
                raise KeyError(message_id)

    async def due_deliveries(self, now: datetime, limit: int = 100) -> builtins.list[Message]:
        query = (
            select(M, T.c.code)
            .join(T, T.c.id == M.c.ticket_id)
            .where(
                M.c.delivery == Delivery.PENDING.value,
                or_(M.c.next_attempt_at.is_(None), M.c.next_attempt_at <= as_utc(now)),
            )
            .order_by(M.c.id)
            .limit(limit)
        )
        async with self._tx("cannot list pending deliveries") as conn:
            rows = (await conn.execute(query)).all()
        return [_message(r, r.code) for r in rows]

    async def ticket_of_external(self, channel: str, external_ids: Sequence[str]) -> str | None:
        ids = [e for e in external_ids if e]
        if not ids:
            return None
        query = (
            select(T.c.code)
            .join(M, M.c.ticket_id == T.c.id)
            .where(M.c.channel == channel, M.c.external_id.in_(ids))
            .order_by(M.c.id.desc())
            .limit(1)
        )
        async with self._tx("cannot thread a message") as conn:
            code = (await conn.execute(query)).scalar()
        return str(code) if code is not None else None

    # -- contacts ----------------------------------------------------------------------------

    async def _contact(self, conn: AsyncConnection, contact_id: int) -> Contact | None:
        row = (await conn.execute(select(C).where(C.c.id == contact_id))).first()
        if row is None:
            return None
        return await self._with_identities(conn, row)

    @staticmethod
    async def _with_identities(conn: AsyncConnection, row: Row[Any]) -> Contact:
        """The contact of ``row`` (a contacts row) with its identities."""
        ids = await conn.execute(
            select(I.c.kind, I.c.value).where(I.c.contact_id == row.id).order_by(I.c.id)
        )
        return Contact(
            id=int(row.id),
            name=row.name,
            created_at=row.created_at,
            identities=tuple(ContactIdentity(k, v) for k, v in ids),
            merged_into=row.merged_into,
        )

    async def _resolve(self, conn: AsyncConnection, contact_id: int) -> int:
        """Follow ``merged_into`` to the contact that stands now."""
        seen = set()
        while contact_id not in seen:
            seen.add(contact_id)
            nxt = (await conn.execute(select(C.c.merged_into).where(C.c.id == contact_id))).scalar()
            if nxt is None:
                return contact_id
            contact_id = int(nxt)
        return contact_id

    async def contact_for(self, kind: str, value: str, name: str | None) -> Contact:
        # the common case is one statement (the identity's contact, when it was never merged)
        # and the identities; a new citizen is two inserts and nothing read back
        for attempt in range(2):
            try:
                async with self._tx("cannot find or create a contact") as conn:
                    row = (
                        await conn.execute(
                            select(C)
                            .join(I, I.c.contact_id == C.c.id)
                            .where(I.c.kind == kind, I.c.value == value)
                        )
                    ).first()
                    if row is None:
                        created_at = as_utc(self._clock())
                        cid = (
                            await conn.execute(
                                insert(C).values(name=name, created_at=created_at).returning(C.c.id)
                            )
                        ).scalar_one()
                        await conn.execute(insert(I).values(contact_id=cid, kind=kind, value=value))
                        return Contact(
                            id=int(cid),
                            name=name,
                            created_at=created_at,
                            identities=(ContactIdentity(kind, value),),
                        )
                    cid = int(row.id)
                    if row.merged_into is not None:
                        cid = await self._resolve(conn, cid)
                    elif not (name and row.name is None):
                        return await self._with_identities(conn, row)
                    if name:
                        await conn.execute(
                            update(C).where(C.c.id == cid, C.c.name.is_(None)).values(name=name)
                        )
                    contact = await self._contact(conn, cid)
                    assert contact is not None
                    return contact
            except IntegrityError as exc:  # created concurrently: read it the second time
                if attempt:
                    raise store_error("conversation store: contact identity", exc) from exc
        raise AssertionError("unreachable")

    async def get_contact(self, contact_id: int) -> Contact | None:
        async with self._tx(f"cannot read contact {contact_id}") as conn:
            return await self._contact(conn, contact_id)

    async def add_identity(self, contact_id: int, kind: str, value: str) -> Contact:
        async with self._tx(f"cannot add an identity to contact {contact_id}") as conn:
            if await self._contact(conn, contact_id) is None:
                raise KeyError(contact_id)
            holder = (
                await conn.execute(
                    select(I.c.contact_id).where(I.c.kind == kind, I.c.value == value)
                )
            ).scalar()
            if holder is not None and int(holder) != contact_id:
                raise ValueError(f"{kind} {value} belongs to contact {holder}: merge them instead")
            if holder is None:
                await conn.execute(insert(I).values(contact_id=contact_id, kind=kind, value=value))
            contact = await self._contact(conn, contact_id)
            assert contact is not None
            return contact

    async def merge_contacts(self, keep: int, merge: int) -> Contact:
        if keep == merge:
            raise ValueError("cannot merge a contact into itself")
        async with self._tx(f"cannot merge contact {merge} into {keep}") as conn:
            for cid in (keep, merge):
                if await self._contact(conn, cid) is None:
                    raise KeyError(cid)
            await conn.execute(update(I).where(I.c.contact_id == merge).values(contact_id=keep))
            await conn.execute(update(T).where(T.c.contact_id == merge).values(contact_id=keep))
            await conn.execute(update(C).where(C.c.id == merge).values(merged_into=keep))
            await conn.execute(update(C).where(C.c.merged_into == merge).values(merged_into=keep))
            contact = await self._contact(conn, keep)
            assert contact is not None
            return contact

    async def contact_tickets(self, contact_id: int, limit: int = 100) -> builtins.list[Ticket]:
        query = (
            select(T)
            .where(T.c.contact_id == contact_id)
            .order_by(T.c.started_at.desc(), T.c.id.desc())
            .limit(limit)
        )
        async with self._tx(f"cannot list the tickets of contact {contact_id}") as conn:
            return await self.tickets._load(conn, query)

    async def open_conversation(self, contact_id: int, channel: str) -> Ticket | None:
        query = (
            select(T)
            .where(T.c.contact_id == contact_id, T.c.channel == channel, T.c.status.in_(_OPEN))
            .order_by(T.c.id.desc())
            .limit(1)
        )
        async with self._tx("cannot find an open conversation") as conn:
            found = await self.tickets._load(conn, query)
        return found[0] if found else None

    async def open_conversations(self) -> builtins.list[Ticket]:
        query = select(T).where(T.c.channel != VOICE, T.c.status.in_(_OPEN)).order_by(T.c.id)
        async with self._tx("cannot list open conversations") as conn:
            return await self.tickets._load(conn, query)
