"""The ticket store interface. ``tickets.sql`` implements it on SQLAlchemy (SQLite/PostgreSQL),
``tickets.memory`` in memory for unit tests. Both pass the same contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from tickets.messages import Contact, Delivery, Message, NewMessage
from tickets.model import IvrStep, Status, Ticket


class TicketStore(Protocol):
    async def open(
        self, *, channel: str, caller: str | None, uniqueid: str | None, started_at: datetime
    ) -> Ticket:
        """Create a ticket and commit it before returning; assigns its code."""

    async def update(self, code: str, **changes: Any) -> None:
        """Set fields named in ``tickets.model.UPDATABLE_FIELDS``; unknown names raise ValueError.
        Raises ``KeyError`` for an unknown code."""

    async def append_steps(self, code: str, steps: Sequence[IvrStep]) -> None:
        """Append IVR path steps (in order) to the ticket."""

    async def get(self, code: str) -> Ticket | None: ...

    async def find_by_uniqueid(self, uniqueid: str) -> Ticket | None:
        """The ticket of an Asterisk channel (``agi_uniqueid`` / AMI ``Uniqueid``)."""

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Ticket]:
        """Tickets whose ``started_at`` is in [since, until), oldest first."""

    async def set_status(
        self, code: str, status: Status, *, by: str, note: str | None = None
    ) -> Ticket:
        """Move along the workflow (``tickets.model.TRANSITIONS``); illegal moves: ValueError."""

    async def close(self) -> None: ...


class ConversationStore(Protocol):
    """Messages and contacts, beside the tickets they belong to (``tickets.sql_conversations``
    on SQLAlchemy, ``tickets.memory_conversations`` in memory; one contract suite)."""

    async def start_conversation(
        self,
        *,
        channel: str,
        contact_id: int | None,
        caller: str | None,
        subject: str | None,
        first: NewMessage,
    ) -> tuple[Ticket, Message, bool]:
        """Open a ticket and store its first message in one transaction. If a message with
        the same (channel, external id) exists, nothing is created: returns its ticket, the
        stored message and False."""

    async def add_message(self, code: str, message: NewMessage) -> tuple[Message, bool]:
        """Append a message to ticket ``code`` (KeyError if unknown); a message whose
        (channel, external id) is already stored is not stored again: (it, False)."""

    async def find_message(self, channel: str, external_id: str) -> Message | None: ...

    async def messages(self, code: str) -> list[Message]:
        """The ticket's messages, oldest first."""

    async def set_delivery(
        self,
        message_id: int,
        delivery: Delivery,
        *,
        external_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Record a send attempt's result (attempts + 1 unless ``delivery`` is PENDING with no
        attempt made)."""

    async def due_deliveries(self, now: datetime, limit: int = 100) -> list[Message]:
        """Outgoing messages still ``pending`` whose next attempt is due, oldest first."""

    async def ticket_of_external(self, channel: str, external_ids: Sequence[str]) -> str | None:
        """The code of the newest ticket holding a message with one of ``external_ids``
        on ``channel`` (email threading by In-Reply-To/References)."""

    async def contact_for(self, kind: str, value: str, name: str | None) -> Contact:
        """The contact with this identity (created if new; a merged contact resolves to the
        one it was merged into). ``name`` fills an unnamed contact."""

    async def get_contact(self, contact_id: int) -> Contact | None: ...

    async def add_identity(self, contact_id: int, kind: str, value: str) -> Contact:
        """Link one more identity (ValueError if another contact holds it)."""

    async def merge_contacts(self, keep: int, merge: int) -> Contact:
        """Move ``merge``'s identities and tickets to ``keep``; ``merge`` points at ``keep``."""

    async def contact_tickets(self, contact_id: int, limit: int = 100) -> list[Ticket]:
        """The contact's tickets on every channel, newest first."""

    async def open_conversation(self, contact_id: int, channel: str) -> Ticket | None:
        """The contact's newest ticket on ``channel`` that is not resolved or closed."""

    async def open_conversations(self) -> list[Ticket]:
        """Every message ticket (channel other than voice) not resolved or closed, oldest
        first (the ACD rebuilds its conversations from these at start)."""
