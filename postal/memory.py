"""An in-memory ``PostalStore`` with the behaviour of ``postal.sql`` (for unit tests of what
uses a store: the IVR, the web). Both pass the same contract tests
(``tests/unit/test_postal_store.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from postal.model import (
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
from tickets.store import TicketStore
from tongdai.clock import as_utc


class MemoryPostalStore:
    def __init__(self, tickets: TicketStore) -> None:
        self.tickets = tickets
        self._regs: dict[int, Registration] = {}
        self._events: dict[int, list[Event]] = {}

    async def _create(
        self, reg: Registration, note: str | None, address: Address | None
    ) -> Registration:
        if await self.tickets.get(reg.ticket_code) is None:
            raise KeyError(reg.ticket_code)
        for other in self._regs.values():
            if other.dossier_code == reg.dossier_code and other.active:
                raise PostalError(
                    "already_registered",
                    f"dossier {reg.dossier_code} already has registration {other.id}",
                )
        reg = replace(reg, id=len(self._regs) + 1, note=note)
        if address is not None:
            reg = _with_address(reg, address)
        self._regs[reg.id] = reg
        self._events[reg.id] = [Event(reg.created_at, None, reg.state, reg.created_by, note)]
        return reg

    async def request(
        self, *, ticket_code: str, dossier_code: str, phone: str | None, by: str, at: datetime
    ) -> Registration:
        at = as_utc(at, "at")
        reg = Registration(0, ticket_code, dossier_code, PostalState.REQUESTED, phone, at, by, at)
        return await self._create(reg, IVR_REQUEST_NOTE, None)

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
        at = as_utc(at, "at")
        reg = Registration(
            0, ticket_code, dossier_code, PostalState.REGISTERED, address.phone, at, by, at,
            registered_at=at,
        )  # fmt: skip
        return await self._create(reg, note, address)

    def _move(
        self, reg_id: int, to: PostalState, by: str, at: datetime, note: str | None
    ) -> Registration:
        reg = self._regs.get(reg_id)
        if reg is None:
            raise KeyError(reg_id)
        if to not in TRANSITIONS[reg.state]:
            raise IllegalPostal(reg.state, to)
        at = as_utc(at, "at")
        self._events[reg_id].append(Event(at, reg.state, to, by, note))
        reg = replace(reg, state=to, updated_at=at)
        self._regs[reg_id] = reg
        return reg

    async def complete(
        self, registration_id: int, address: Address, *, by: str, at: datetime
    ) -> Registration:
        reg = self._move(registration_id, PostalState.REGISTERED, by, at, "đã lấy địa chỉ nhận")
        reg = replace(_with_address(reg, address), registered_at=reg.updated_at)
        self._regs[reg.id] = reg
        return reg

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
        return self._move(registration_id, to, by, at, note)

    async def get(self, registration_id: int) -> Registration | None:
        return self._regs.get(registration_id)

    async def events(self, registration_id: int) -> list[Event]:
        return list(self._events.get(registration_id, []))

    async def of_ticket(self, code: str) -> list[Registration]:
        return [r for r in self._regs.values() if r.ticket_code == code]

    async def listing(
        self, *, states: Sequence[PostalState] | None = None, limit: int = 200
    ) -> list[Registration]:
        found = [r for r in self._regs.values() if states is None or r.state in states]
        return sorted(found, key=lambda r: -r.id)[:limit]

    async def for_post(self, start: datetime, end: datetime) -> list[Registration]:
        start, end = as_utc(start, "start"), as_utc(end, "end")
        found = [
            r
            for r in self._regs.values()
            if r.registered_at is not None
            and start <= r.registered_at < end
            and r.state is not PostalState.CANCELLED
        ]
        return sorted(found, key=lambda r: (r.registered_at or start, r.id))


def _with_address(reg: Registration, a: Address) -> Registration:
    return replace(
        reg, recipient=a.recipient, phone=a.phone, province=a.province, district=a.district,
        ward=a.ward, street=a.street, preferred_time=a.preferred_time,
    )  # fmt: skip
