"""The ticket store interface. ``tickets.sql`` implements it on SQLAlchemy (SQLite/PostgreSQL),
``tickets.memory`` in memory for unit tests. Both pass the same contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

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
