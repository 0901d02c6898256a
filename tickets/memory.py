"""An in-memory ``TicketStore`` with the same behaviour as ``tickets.sql`` (for unit tests).

It hands out copies, so changing a returned ``Ticket`` does not change the store, just as
with the database. Both stores pass the same contract tests.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from tickets.changes import check_changes, status_fields
from tickets.codes import code_day, format_code
from tickets.model import TRANSITIONS, UPDATABLE_FIELDS, IvrStep, Status, StatusChange, Ticket
from tongdai.clock import as_utc, utcnow

#: who opened a ticket, as written in its first history entry (as in tickets.sql)
OPENED_BY = "system"


class MemoryTicketStore:
    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._tickets: dict[str, Ticket] = {}
        self._counters: dict[str, int] = {}
        self._clock = clock
        self._lock = asyncio.Lock()
        self.closed = False

    def _find(self, code: str) -> Ticket:
        try:
            return self._tickets[code]
        except KeyError:
            raise KeyError(code) from None

    async def open(
        self, *, channel: str, caller: str | None, uniqueid: str | None, started_at: datetime
    ) -> Ticket:
        started_at = as_utc(started_at, "started_at")
        async with self._lock:
            day = code_day(started_at)
            self._counters[day] = self._counters.get(day, 0) + 1
            ticket = Ticket(
                id=len(self._tickets) + 1,
                code=format_code(day, self._counters[day]),
                channel=channel,
                caller=caller,
                uniqueid=uniqueid,
                started_at=started_at,
                history=[
                    StatusChange(
                        at=started_at, from_status=None, to_status=Status.NEW, by=OPENED_BY
                    )
                ],
            )
            self._tickets[ticket.code] = ticket
            return copy.deepcopy(ticket)

    async def import_ticket(self, ticket: Ticket) -> bool:
        """Insert a ticket made elsewhere under its own code with a new id; False if the code
        exists (as ``SqlTicketStore.import_ticket``)."""
        started_at = as_utc(ticket.started_at, "started_at")
        values = check_changes({name: getattr(ticket, name) for name in UPDATABLE_FIELDS})
        steps = [replace(s, at=as_utc(s.at, "step.at")) for s in ticket.ivr_path]
        history = [replace(h, at=as_utc(h.at, "history.at")) for h in ticket.history] or [
            StatusChange(at=started_at, from_status=None, to_status=Status.NEW, by=OPENED_BY)
        ]
        async with self._lock:
            if ticket.code in self._tickets:
                return False
            self._tickets[ticket.code] = replace(
                copy.deepcopy(ticket),
                id=len(self._tickets) + 1,
                started_at=started_at,
                status=Status(ticket.status),
                ivr_path=steps,
                history=history,
                **values,
            )
            return True

    async def update(self, code: str, **changes: Any) -> None:
        values = check_changes(changes)
        ticket = self._find(code)
        for name, value in values.items():
            setattr(ticket, name, value)

    async def append_steps(self, code: str, steps: Sequence[IvrStep]) -> None:
        checked = [replace(s, at=as_utc(s.at, "step.at")) for s in steps]
        self._find(code).ivr_path.extend(checked)

    async def get(self, code: str) -> Ticket | None:
        ticket = self._tickets.get(code)
        return copy.deepcopy(ticket) if ticket is not None else None

    async def find_by_uniqueid(self, uniqueid: str) -> Ticket | None:
        found = [t for t in self._tickets.values() if t.uniqueid == uniqueid]
        return copy.deepcopy(max(found, key=lambda t: t.id)) if found else None

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[Ticket]:
        low = as_utc(since, "since") if since is not None else None
        high = as_utc(until, "until") if until is not None else None
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        chosen = sorted(
            (
                t
                for t in self._tickets.values()
                if (low is None or t.started_at >= low) and (high is None or t.started_at < high)
            ),
            key=lambda t: (t.started_at, t.id),
        )
        return copy.deepcopy(chosen[:limit] if limit is not None else chosen)

    async def set_status(
        self, code: str, status: Status, *, by: str, note: str | None = None
    ) -> Ticket:
        new = Status(status)
        ticket = self._find(code)
        if new not in TRANSITIONS[ticket.status]:
            raise ValueError(f"ticket {code}: cannot go from {ticket.status} to {new}")
        at = as_utc(self._clock(), "clock")
        for name, value in status_fields(new, at).items():
            setattr(ticket, name, value)
        ticket.history.append(
            StatusChange(
                at=at,
                from_status=ticket.status,
                to_status=new,
                by=by,
                note=note,
            )
        )
        ticket.status = new
        return copy.deepcopy(ticket)

    async def close(self) -> None:
        self.closed = True
