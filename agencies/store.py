"""The forward store interface; ``agencies.sql`` implements it on SQLAlchemy (SQLite and
PostgreSQL), tested by one contract suite. Transitions are checked in the database (an
``UPDATE ... WHERE state IN (allowed)``), so two people acting at once cannot both win."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from agencies.forwards import Forward, ForwardState, Notify


class ForwardStore(Protocol):
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
        """A new forward (state ``forwarded``, notification ``pending``). KeyError: no such
        ticket; ValueError: the ticket has a forward that is not final yet."""

    async def get(self, forward_id: int) -> Forward | None: ...

    async def of_ticket(self, code: str) -> list[Forward]:
        """The ticket's forwards, oldest first."""

    async def listing(
        self,
        *,
        agency_id: str | None = None,
        states: Sequence[ForwardState] | None = None,
        limit: int = 200,
    ) -> list[Forward]:
        """Forwards (of one agency, in some states), the soonest due first."""

    async def extend(
        self, forward_id: int, *, reason: str, due_at: datetime, at: datetime
    ) -> Forward:
        """More time, once: ``forwarded`` -> ``extended`` with the reason and the new due
        date. KeyError: unknown; ``IllegalForward`` from any other state."""

    async def answer(
        self, forward_id: int, *, text: str, public: bool, by: str, at: datetime
    ) -> Forward:
        """``forwarded``/``extended`` -> ``answered``."""

    async def send_back(self, forward_id: int, *, reason: str, by: str, at: datetime) -> Forward:
        """``forwarded``/``extended`` -> ``sent_back``."""

    async def set_notify(
        self, forward_id: int, notify: Notify, *, at: datetime, error: str | None = None
    ) -> None: ...

    async def pending_notifications(self, limit: int = 50) -> list[Forward]:
        """Forwards whose agency has not been mailed yet, oldest first."""

    async def replied(self, forward_id: int, *, via: str, at: datetime) -> Forward:
        """The answer went back to the citizen (``via``: a channel or ``callback``)."""

    async def callback_done(self, forward_id: int, *, at: datetime) -> Forward: ...

    async def callbacks(self, limit: int = 100) -> list[Forward]:
        """Answers to give back by telephone (``reply_via = callback``, not done yet)."""
