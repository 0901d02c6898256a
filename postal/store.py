"""The registration store interface; ``postal.sql`` implements it on SQLAlchemy (SQLite and
PostgreSQL). Transitions are checked in the database (an ``UPDATE ... WHERE state IN
(allowed)``), so two people acting at once cannot both win; a dossier has at most one active
registration (a partial unique index)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from postal.model import Address, Event, PostalState, Registration


class PostalStore(Protocol):
    async def request(
        self, *, ticket_code: str, dossier_code: str, phone: str | None, by: str, at: datetime
    ) -> Registration:
        """A caller's wish, address to be taken (``requested``). KeyError: no such ticket;
        ``PostalError("already_registered")``: the dossier has an active registration."""

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
        """A complete registration (``registered``); errors as ``request``."""

    async def complete(
        self, registration_id: int, address: Address, *, by: str, at: datetime
    ) -> Registration:
        """The address of a ``requested`` one: it becomes ``registered``. KeyError: unknown;
        ``IllegalPostal`` from any other state."""

    async def move(
        self,
        registration_id: int,
        to: PostalState,
        *,
        by: str,
        at: datetime,
        note: str | None = None,
    ) -> Registration:
        """``handed_to_post``, ``delivered`` or ``cancelled`` (``IllegalPostal`` when the
        state does not allow it; becoming ``registered`` is ``complete``)."""

    async def get(self, registration_id: int) -> Registration | None: ...

    async def events(self, registration_id: int) -> list[Event]:
        """Its history, oldest first."""

    async def of_ticket(self, code: str) -> list[Registration]: ...

    async def listing(
        self, *, states: Sequence[PostalState] | None = None, limit: int = 200
    ) -> list[Registration]:
        """Registrations (in some states), the newest first."""

    async def for_post(self, start: datetime, end: datetime) -> list[Registration]:
        """Registrations that became ``registered`` in [start, end) and were not cancelled:
        the post office's list of that day, oldest first."""
