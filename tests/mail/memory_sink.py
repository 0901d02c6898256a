"""An in-memory InboundSink for the email tests: stores each (channel, external_id) once.

Like the real core it answers ``Received(duplicate=True)`` for a message it already has, and
it records every call in order, so a test can tell "stored once" (``stored``) from "handed
once" (``calls``)."""

from __future__ import annotations

from conversations.model import InboundMessage, Received
from tickets.model import Channel
from tongdai.errors import StoreError


class MemorySink:
    def __init__(self) -> None:
        self.stored: dict[tuple[Channel, str], InboundMessage] = {}
        self.calls: list[InboundMessage] = []
        self.fail_next = 0  # raise StoreError on the next N calls (an unavailable database)

    async def receive(self, message: InboundMessage) -> Received:
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("database away (test)")
        self.calls.append(message)
        key = (message.channel, message.external_id)
        if key in self.stored:
            return Received(ticket_code=None, created=False, duplicate=True)
        self.stored[key] = message
        return Received(
            ticket_code=f"1022-20261206-{len(self.stored):06d}", created=True, duplicate=False
        )

    def by_subject(self, subject: str) -> list[InboundMessage]:
        return [m for m in self.stored.values() if m.subject == subject]
