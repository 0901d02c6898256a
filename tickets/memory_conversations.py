"""An in-memory ``ConversationStore`` beside a ``MemoryTicketStore``, with the same behaviour as
``tickets.sql_conversations`` (the contract tests run on both)."""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from tickets.memory import MemoryTicketStore
from tickets.messages import Contact, ContactIdentity, Delivery, Message, NewMessage
from tickets.model import Status, Ticket
from tongdai.clock import as_utc, utcnow

_OPEN = (Status.NEW, Status.IN_PROGRESS)


class MemoryConversationStore:
    def __init__(
        self, tickets: MemoryTicketStore, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.tickets = tickets
        self._clock = clock
        self._messages: dict[int, Message] = {}
        self._by_external: dict[tuple[str, str], int] = {}
        self._contacts: dict[int, Contact] = {}
        self._identities: dict[tuple[str, str], int] = {}
        self._lock = asyncio.Lock()

    def _store(self, code: str, m: NewMessage) -> Message:
        at = as_utc(m.at, "message.at")
        msg = Message(
            id=len(self._messages) + 1,
            ticket_code=code,
            channel=m.channel,
            direction=m.direction,
            author=m.author,
            body=m.body,
            at=at,
            author_id=m.author_id,
            html=m.html,
            external_id=m.external_id,
            attachments=tuple(m.attachments),
            delivery=m.delivery,
            next_attempt_at=at if m.delivery is Delivery.PENDING else None,
            meta=dict(m.meta),
        )
        self._messages[msg.id] = msg
        if m.external_id is not None:
            self._by_external[(m.channel, m.external_id)] = msg.id
        return msg

    def _existing(self, channel: str, external_id: str | None) -> Message | None:
        if external_id is None:
            return None
        mid = self._by_external.get((channel, external_id))
        return self._messages[mid] if mid is not None else None

    async def start_conversation(
        self,
        *,
        channel: str,
        contact_id: int | None,
        caller: str | None,
        subject: str | None,
        first: NewMessage,
    ) -> tuple[Ticket, Message, bool]:
        async with self._lock:
            found = self._existing(first.channel, first.external_id)
            if found is not None:
                ticket = await self.tickets.get(found.ticket_code)
                assert ticket is not None
                return ticket, found, False
            ticket = await self.tickets.open(
                channel=channel, caller=caller, uniqueid=None, started_at=first.at
            )
            await self.tickets.update(ticket.code, contact_id=contact_id, subject=subject)
            msg = self._store(ticket.code, first)
        stored = await self.tickets.get(ticket.code)
        assert stored is not None
        return stored, msg, True

    async def add_message(self, code: str, message: NewMessage) -> tuple[Message, bool]:
        async with self._lock:
            found = self._existing(message.channel, message.external_id)
            if found is not None:
                return found, False
            if await self.tickets.get(code) is None:
                raise KeyError(code)
            return self._store(code, message), True

    async def find_message(self, channel: str, external_id: str) -> Message | None:
        return self._existing(channel, external_id)

    async def messages(self, code: str) -> builtins.list[Message]:
        return [m for m in self._messages.values() if m.ticket_code == code]

    async def set_delivery(
        self,
        message_id: int,
        delivery: Delivery,
        *,
        external_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        m = self._messages.get(message_id)
        if m is None:
            raise KeyError(message_id)
        self._messages[message_id] = replace(
            m,
            delivery=Delivery(delivery),
            delivery_error=error,
            next_attempt_at=as_utc(next_attempt_at) if next_attempt_at else None,
            attempts=m.attempts + 1,
            external_id=external_id if external_id is not None else m.external_id,
        )
        if external_id is not None:
            self._by_external[(m.channel, external_id)] = message_id

    async def due_deliveries(self, now: datetime, limit: int = 100) -> builtins.list[Message]:
        now = as_utc(now)
        due = [
            m
            for m in self._messages.values()
            if m.delivery is Delivery.PENDING
            and (m.next_attempt_at is None or m.next_attempt_at <= now)
        ]
        return due[:limit]

    async def ticket_of_external(self, channel: str, external_ids: Sequence[str]) -> str | None:
        found = [self._by_external.get((channel, e)) for e in external_ids if e]
        ids = [i for i in found if i is not None]
        return self._messages[max(ids)].ticket_code if ids else None

    # -- contacts ----------------------------------------------------------------------------

    def _resolve(self, contact_id: int) -> int:
        seen = set()
        while contact_id not in seen:
            seen.add(contact_id)
            nxt = self._contacts[contact_id].merged_into
            if nxt is None:
                return contact_id
            contact_id = nxt
        return contact_id

    def _with_identities(self, contact_id: int) -> Contact:
        c = self._contacts[contact_id]
        ids = tuple(
            ContactIdentity(k, v) for (k, v), cid in self._identities.items() if cid == c.id
        )
        return replace(c, identities=ids)

    async def contact_for(self, kind: str, value: str, name: str | None) -> Contact:
        async with self._lock:
            cid = self._identities.get((kind, value))
            if cid is None:
                cid = len(self._contacts) + 1
                self._contacts[cid] = Contact(cid, name, as_utc(self._clock()))
                self._identities[(kind, value)] = cid
            cid = self._resolve(cid)
            c = self._contacts[cid]
            if name and not c.name:
                self._contacts[cid] = replace(c, name=name)
            return self._with_identities(cid)

    async def get_contact(self, contact_id: int) -> Contact | None:
        if contact_id not in self._contacts:
            return None
        return self._with_identities(contact_id)

    async def add_identity(self, contact_id: int, kind: str, value: str) -> Contact:
        if contact_id not in self._contacts:
            raise KeyError(contact_id)
        holder = self._identities.get((kind, value))
        if holder is not None and holder != contact_id:
            raise ValueError(f"{kind} {value} belongs to contact {holder}: merge them instead")
        self._identities[(kind, value)] = contact_id
        return self._with_identities(contact_id)

    async def merge_contacts(self, keep: int, merge: int) -> Contact:
        if keep == merge:
            raise ValueError("cannot merge a contact into itself")
        for cid in (keep, merge):
            if cid not in self._contacts:
                raise KeyError(cid)
        for key, cid in list(self._identities.items()):
            if cid == merge:
                self._identities[key] = keep
        for t in await self.tickets.list():
            if t.contact_id == merge:
                await self.tickets.update(t.code, contact_id=keep)
        self._contacts[merge] = replace(self._contacts[merge], merged_into=keep)
        for cid, c in list(self._contacts.items()):
            if c.merged_into == merge:
                self._contacts[cid] = replace(c, merged_into=keep)
        return self._with_identities(keep)

    async def contact_tickets(self, contact_id: int, limit: int = 100) -> builtins.list[Ticket]:
        found = [t for t in await self.tickets.list() if t.contact_id == contact_id]
        found.sort(key=lambda t: (t.started_at, t.id), reverse=True)
        return copy.deepcopy(found[:limit])

    async def open_conversation(self, contact_id: int, channel: str) -> Ticket | None:
        found = [
            t
            for t in await self.tickets.list()
            if t.contact_id == contact_id and t.channel == channel and t.status in _OPEN
        ]
        return max(found, key=lambda t: t.id) if found else None

    async def open_conversations(self) -> builtins.list[Ticket]:
        found = [t for t in await self.tickets.list() if t.channel != "voice" and t.status in _OPEN]
        return sorted(found, key=lambda t: t.id)
