"""The ACD's transitions, in order, to the tickets and (voice only) to Asterisk's queue_log.

``record(events)`` takes one batch of the dispatcher's outbox, in order, synchronously: the
queue_log lines are appended at once, the ticket changes go to one writer task (``run``), so
they reach the ticket store in the order they happened and nothing waits for the database.

Calls (``CallTransition``, and the agents' ``Transition`` for after-call work):

    enter                              queue, queued_at
    connect (or an agent-first callback's citizen answering)
                                       answered_at, agent, outcome answered
    any other end                      its outcome (abandoned_queue, timeout_queue, ...)
    the agent's wrap-up ends           acw_seconds (0 for a queue without wrap-up)

Conversations (``ConversationTransition``) never reach the queue_log (tools reading it expect
calls):

    enter (first queue only)           queue, queued_at;   later entries: queue
    given to an agent                  agent
    back in line                       agent = None (so a restart does not give it back)

The voice adapter writes the call's end (``ended_at``) through ``write`` too, so it lands after
the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from acd.agent import AgentState, Transition
from acd.calls import CallOutcome, CallState, CallTransition
from acd.conversations import ConversationState, ConversationTransition
from acd.dispatch import Event
from acd.queue_log import QueueLogWriter
from tickets.model import Outcome
from tickets.store import TicketStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

#: ticket outcome for each way a queued call can end
OUTCOMES = {
    CallOutcome.ANSWERED: Outcome.ANSWERED,
    CallOutcome.ABANDONED_QUEUE: Outcome.ABANDONED_QUEUE,
    CallOutcome.TIMEOUT_QUEUE: Outcome.TIMEOUT_QUEUE,
    CallOutcome.CALLBACK_FAILED: Outcome.CALLBACK_FAILED,
    CallOutcome.CALLBACK_CANCELLED: Outcome.CALLBACK_CANCELLED,
}


class Recorder:
    def __init__(
        self,
        tickets: TicketStore,
        queue_log: QueueLogWriter | None = None,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tickets = tickets
        self.queue_log = queue_log
        self.wall = wall
        self._writes: asyncio.Queue[tuple[str, dict[str, object]]] = asyncio.Queue()
        #: call id -> ticket, for the calls of the batch being recorded
        self._call_tickets: dict[str, str] = {}
        #: agents in wrap-up: (ticket of the call they wrap up, when wrap-up began)
        self._wrapups: dict[str, tuple[str, float]] = {}

    # -- in --------------------------------------------------------------------------------

    def record(self, events: Sequence[Event]) -> None:
        """One batch of transitions, in order."""
        # an agent's "call_ended" comes before its call's "complete" in a batch: learn the
        # batch's tickets first
        self._call_tickets = {
            e.call_id: e.ticket for e in events if isinstance(e, CallTransition) and e.ticket
        }
        for e in events:
            if isinstance(e, ConversationTransition):
                self._conversation(e)
                continue
            if self.queue_log is not None:
                self.queue_log.write(e)
            if isinstance(e, CallTransition):
                self._call(e)
            else:
                self._acw(e)
        self._call_tickets = {}

    def write(self, ticket: str | None, **changes: object) -> None:
        """Queue a ticket change behind those already recorded."""
        if ticket:
            self._writes.put_nowait((ticket, changes))

    # -- rules -------------------------------------------------------------------------------

    def _call(self, e: CallTransition) -> None:
        if e.event == "enter":
            self.write(e.ticket, queue=e.queue, queued_at=self.wall())
        elif e.event == "connect" or (
            e.event == "callback_answered" and e.to_state is CallState.CONNECTED
        ):  # the second: an agent-first callback, the citizen has answered the agent's call
            self.write(e.ticket, answered_at=self.wall(), agent=e.agent, outcome=Outcome.ANSWERED)
        elif e.outcome is not None and e.outcome is not CallOutcome.ANSWERED:
            self.write(e.ticket, outcome=OUTCOMES[e.outcome])

    def _acw(self, e: Transition) -> None:
        """After-call work on the ticket: the seconds the agent spent in wrap-up after it
        (0 when the queue has none), written when wrap-up ends however it ends."""
        if e.event == "call_ended" and e.call_id:
            ticket = self._call_tickets.get(e.call_id)
            if ticket and e.to_state is AgentState.WRAP_UP:
                self._wrapups[e.agent] = (ticket, e.at)
            elif ticket:
                self.write(ticket, acw_seconds=0)
        elif e.from_state is AgentState.WRAP_UP and e.to_state is not AgentState.WRAP_UP:
            found = self._wrapups.pop(e.agent, None)
            if found is not None:
                self.write(found[0], acw_seconds=max(0, round(e.at - found[1])))

    def _conversation(self, e: ConversationTransition) -> None:
        if e.event == "enter":
            if e.first_entry:
                self.write(e.code, queue=e.queue, queued_at=self.wall())
            else:
                self.write(e.code, queue=e.queue)
        elif e.to_state is ConversationState.ASSIGNED and e.agent != e.prev_agent:
            self.write(e.code, agent=e.agent)
        elif e.to_state is ConversationState.WAITING and e.prev_agent is not None:
            self.write(e.code, agent=None)

    # -- out ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """The one writer task: ticket changes in order, until cancelled."""
        while True:
            code, changes = await self._writes.get()
            try:
                await self.tickets.update(code, **changes)
            except (StoreError, KeyError, ValueError) as exc:
                log.error("ticket %s not updated (%s): %s", code, changes, exc)
            finally:
                self._writes.task_done()

    async def settled(self) -> None:
        """Wait until every change recorded so far has been written (or refused)."""
        await self._writes.join()
