"""Completes the tickets of queued calls from Asterisk's ``app_queue`` AMI events.

The IVR hands a call to a queue and returns; what happens next (answered by an agent, or the
caller gives up) is only visible on AMI:

    QueueCallerJoin  -> queued_at, queue (opens a ticket if the IVR was unreachable: fallback)
    AgentConnect     -> answered_at, agent, outcome=answered
    QueueCallerAbandon -> outcome=abandoned_queue
    Hangup           -> ended_at (and abandoned_queue if never answered)

Events are handled one at a time, in the order AMI sent them. Calls are keyed by the caller
channel's ``Uniqueid`` (the IVR's ``agi_uniqueid``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from appqueue.fallback import AMI_NO_NUMBER, known_number, open_fallback_ticket
from tickets.model import Outcome
from tickets.store import TicketStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)


class Headers(Protocol):
    """What the tracker needs of an AMI event (``pbx.ami_messages.AmiEvent``, or a dict)."""

    def get(self, key: str, /) -> str | None: ...


@dataclass
class _Tracked:
    code: str
    answered: bool = False
    abandoned: bool = False


class QueueTracker:
    def __init__(
        self,
        tickets: TicketStore,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        adopt_open: bool = True,
    ) -> None:
        #: resync adopts queued tickets left open; False when our own ACD owns queued calls
        #: (app_queue then only sees fallback calls, which QueueCallerJoin announces)
        self.adopt_open = adopt_open
        self.tickets = tickets
        self.now = now
        self.calls: dict[str, _Tracked] = {}
        self.events_handled = 0

    def queued(self, uniqueid: str, code: str) -> None:
        """Called by the IVR when it hands a call to a queue."""
        self.calls.setdefault(uniqueid, _Tracked(code))

    async def resync(self) -> None:
        """After a (re)start: follow tickets that were queued and never ended."""
        if not self.adopt_open:
            return
        try:
            for t in await self.tickets.list(since=self.now().replace(hour=0, minute=0)):
                if t.uniqueid and t.queued_at and t.ended_at is None:
                    self.calls.setdefault(
                        t.uniqueid, _Tracked(t.code, answered=t.answered_at is not None)
                    )
        except StoreError as exc:
            log.error("tracker resync failed: %s", exc)

    async def handle(self, name: str, ev: Headers) -> None:
        """One AMI event. Store errors are logged, never raised (the next event must run)."""
        self.events_handled += 1
        try:
            if name == "QueueCallerJoin":
                await self._join(ev)
            elif name == "AgentConnect":
                await self._connect(ev)
            elif name == "QueueCallerAbandon":
                await self._abandon(ev)
            elif name == "Hangup":
                await self._hangup(ev)
        except StoreError as exc:
            log.error("could not record %s for %s: %s", name, ev.get("Uniqueid"), exc)

    async def _join(self, ev: Headers) -> None:
        uid = ev.get("Uniqueid") or ""
        queue = ev.get("Queue") or ""
        tracked = self.calls.get(uid)
        if tracked is None:
            ticket = await self.tickets.find_by_uniqueid(uid)
            if ticket is None:
                # the IVR never saw this call (engine down: the dialplan's fallback) - every call
                # still leaves a ticket
                ticket = await open_fallback_ticket(
                    self.tickets,
                    uniqueid=uid,
                    caller=known_number(ev.get("CallerIDNum"), AMI_NO_NUMBER),
                    started_at=self.now(),
                    step_clock=self.now,
                )
            tracked = self.calls[uid] = _Tracked(ticket.code)
        await self.tickets.update(tracked.code, queue=queue, queued_at=self.now())

    async def _connect(self, ev: Headers) -> None:
        tracked = self.calls.get(ev.get("Uniqueid") or "")
        if tracked is None:
            return
        tracked.answered = True
        member = ev.get("MemberName") or ev.get("Interface") or ""
        agent = member.split("/", 1)[-1]
        await self.tickets.update(
            tracked.code, answered_at=self.now(), agent=agent, outcome=Outcome.ANSWERED
        )

    async def _abandon(self, ev: Headers) -> None:
        tracked = self.calls.get(ev.get("Uniqueid") or "")
        if tracked is None or tracked.answered:
            return
        tracked.abandoned = True
        await self.tickets.update(tracked.code, outcome=Outcome.ABANDONED_QUEUE)

    async def _hangup(self, ev: Headers) -> None:
        tracked = self.calls.pop(ev.get("Uniqueid") or "", None)
        if tracked is None:
            return
        changes: dict[str, object] = {"ended_at": self.now()}
        if not tracked.answered and not tracked.abandoned:
            changes["outcome"] = Outcome.ABANDONED_QUEUE
        await self.tickets.update(tracked.code, **changes)
