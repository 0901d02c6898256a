"""A forward: one ticket handed to one agency, with its deadline and its answer.

States and the transitions between them (``FORWARD_TRANSITIONS``)::

    forwarded --answer--------------------> answered
        |  \\--ask for more time (once)--> extended --answer--> answered
        |                                     \\--send back--> sent_back
        \\--send back----------------------> sent_back

``answered`` and ``sent_back`` are final. Asking for more time needs a reason and happens at
most once: the deadline moves by the agency's deadline again (in working days). Sending back
(not ours, or not enough to act on) needs a reason; the ticket returns to the centre, which may
forward it again (a ticket has at most one forward that is not final). When the centre
resolves a ticket whose forward is answered, the answer goes back to the citizen
(``replied_at``; for a call, a callback task until ``callback_done_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class ForwardState(StrEnum):
    FORWARDED = "forwarded"
    EXTENDED = "extended"
    ANSWERED = "answered"
    SENT_BACK = "sent_back"


FORWARD_TRANSITIONS: dict[ForwardState, frozenset[ForwardState]] = {
    ForwardState.FORWARDED: frozenset(
        {ForwardState.EXTENDED, ForwardState.ANSWERED, ForwardState.SENT_BACK}
    ),
    ForwardState.EXTENDED: frozenset({ForwardState.ANSWERED, ForwardState.SENT_BACK}),
    ForwardState.ANSWERED: frozenset(),
    ForwardState.SENT_BACK: frozenset(),
}
#: the states in which the agency still owes an answer
OPEN_STATES = (ForwardState.FORWARDED, ForwardState.EXTENDED)


class Notify(StrEnum):
    """The agency's e-mail about a new forward."""

    PENDING = "pending"  # no e-mail sender configured yet, or waiting for a retry
    SENT = "sent"
    FAILED = "failed"


class IllegalForward(ValueError):
    """A transition the forward's state does not allow (says from what, to what)."""

    def __init__(self, state: ForwardState, wanted: ForwardState | str) -> None:
        super().__init__(f"forward is {state.value}: cannot become {wanted}")
        self.state, self.wanted = state, str(wanted)


@dataclass(frozen=True)
class Forward:
    id: int
    ticket_code: str
    agency_id: str
    state: ForwardState
    forwarded_at: datetime
    forwarded_by: str
    due_at: datetime
    note: str | None = None
    extension_reason: str | None = None
    extended_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    answer: str | None = None
    answer_public: bool = False
    sent_back_at: datetime | None = None
    sent_back_by: str | None = None
    sent_back_reason: str | None = None
    notify: Notify = Notify.PENDING
    notify_error: str | None = None
    notified_at: datetime | None = None
    replied_at: datetime | None = None
    #: how the answer went back: a message channel, or ``callback`` (voice)
    reply_via: str | None = None
    callback_done_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    def overdue(self, now: datetime) -> bool:
        return self.open and self.due_at < now

    def nearly_due(self, now: datetime, within: timedelta = timedelta(days=1)) -> bool:
        return self.open and now <= self.due_at <= now + within

    def late(self) -> bool | None:
        """Answered after the deadline? (None while not answered)"""
        if self.answered_at is None:
            return None
        return self.answered_at > self.due_at

    def flag(self, now: datetime) -> str | None:
        """``overdue``, ``nearly_due`` or None: what the lists and the wallboard show."""
        if self.overdue(now):
            return "overdue"
        if self.nearly_due(now):
            return "nearly_due"
        return None


def current(forwards: list[Forward]) -> Forward | None:
    """Of a ticket's forwards (oldest first), the latest that was not sent back (None: the
    ticket is with the centre)."""
    kept = [f for f in forwards if f.state is not ForwardState.SENT_BACK]
    return kept[-1] if kept else None
