"""The ticket of a call the engine never saw: every call leaves a ticket.

When the engine is down (or its FastAGI fails), the dialplan still sends the caller to the
general queue, so a call can reach ``app_queue`` without the IVR ever opening its ticket. Two
places find such calls and must give them the same ticket:

- ``appqueue.tracker.QueueTracker``, from AMI ``QueueCallerJoin`` of an unknown ``Uniqueid``;
- ``appqueue.reconcile``, from an ``ENTERQUEUE`` line of Asterisk's queue_log with no ticket.

A fallback ticket is a voice ticket keyed by the caller channel's uniqueid, with the caller's
number when Asterisk knew it, one IVR step ``fallback`` / ``ivr_unreachable`` and the category
``chung`` (general). The caller fills in the queue, times and outcome afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tickets.model import IvrStep, Ticket
from tickets.store import TicketStore

#: what AMI's ``CallerIDNum`` says when there is no number
AMI_NO_NUMBER = frozenset({"<unknown>", "unknown", "anonymous"})
#: what the caller field of a queue_log ``ENTERQUEUE`` line says when there is no number
QUEUE_LOG_NO_NUMBER = frozenset({"unknown", "anonymous"})

FALLBACK_NODE = "fallback"
FALLBACK_DETAIL = "ivr_unreachable"
FALLBACK_CATEGORY = "chung"


def known_number(raw: str | None, placeholders: frozenset[str]) -> str | None:
    """The caller's number, or None when it is empty or one of Asterisk's ``placeholders``."""
    if not raw or raw in placeholders:
        return None
    return raw


async def open_fallback_ticket(
    tickets: TicketStore,
    *,
    uniqueid: str,
    caller: str | None,
    started_at: datetime,
    step_clock: Callable[[], datetime] | None = None,
) -> Ticket:
    """Open the ticket of a call the IVR never saw and return it (as ``tickets.open`` did).

    ``caller`` is used as given (clean it with ``known_number``). The ``fallback`` step is
    stamped ``started_at`` or, with ``step_clock`` (a live clock, as the tracker's), the time
    it returns once the ticket is open. Store errors are raised, not caught: a failure after
    ``open`` leaves the ticket without its step or category, as before this helper."""
    ticket = await tickets.open(
        channel="voice", caller=caller, uniqueid=uniqueid, started_at=started_at
    )
    at = started_at if step_clock is None else step_clock()
    await tickets.append_steps(
        ticket.code, [IvrStep(at=at, node=FALLBACK_NODE, detail=FALLBACK_DETAIL)]
    )
    await tickets.update(ticket.code, category=FALLBACK_CATEGORY)
    return ticket
