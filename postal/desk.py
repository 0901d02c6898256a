"""What the console and the API call: the checks on what was typed (``postal.model``), then
the store. Refusals are ``PostalError`` (``reason`` a stable id, ``PostalInvalid.errors`` the
fields' Vietnamese messages); an unknown ticket or registration is ``KeyError``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from postal.model import (
    PostalInvalid,
    PostalState,
    Registration,
    check_address,
    check_dossier_code,
    check_note,
)
from postal.places import PlaceBook
from postal.store import PostalStore
from tongdai.clock import utcnow

#: the moves a person makes with a button (becoming ``registered`` needs the address)
MOVES = (PostalState.HANDED_TO_POST, PostalState.DELIVERED, PostalState.CANCELLED)


class PostalDesk:
    def __init__(
        self,
        store: PostalStore,
        places: PlaceBook,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.places = places
        self.clock = clock

    async def register(self, data: Mapping[str, object], *, by: str) -> Registration:
        """A complete registration typed in the console (or sent to the API) for ticket
        ``data["ticket"]``."""
        errors: dict[str, str] = {}
        ticket = data.get("ticket")
        if not isinstance(ticket, str) or not 1 <= len(ticket.strip()) <= 32:
            errors["ticket"] = "Xin nhập mã phiếu của cuộc gọi hoặc tin nhắn."
        for check in (
            lambda: check_dossier_code(data.get("dossier_code")),
            lambda: check_address(data, self.places),
            lambda: check_note(data.get("note")),
        ):
            try:
                check()
            except PostalInvalid as exc:
                errors.update(exc.errors)
        if errors:
            raise PostalInvalid(errors)
        assert isinstance(ticket, str)
        try:
            return await self.store.register(
                ticket_code=ticket.strip(),
                dossier_code=check_dossier_code(data.get("dossier_code")),
                address=check_address(data, self.places),
                by=by,
                at=self.clock(),
                note=check_note(data.get("note")),
            )
        except KeyError:
            raise PostalInvalid({"ticket": "Không có phiếu với mã này."}) from None

    async def complete(
        self, registration_id: int, data: Mapping[str, object], *, by: str
    ) -> Registration:
        """The address of a telephone request, taken by an agent."""
        address = check_address(data, self.places)
        return await self.store.complete(registration_id, address, by=by, at=self.clock())

    async def move(
        self, registration_id: int, to: str, *, by: str, note: object = None
    ) -> Registration:
        if to not in {s.value for s in MOVES}:
            raise PostalInvalid({"state": "Trạng thái không hợp lệ."})
        return await self.store.move(
            registration_id, PostalState(to), by=by, at=self.clock(), note=check_note(note)
        )
