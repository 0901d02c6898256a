"""A conversation (web chat, email, Zalo, Facebook) in the ACD, as an explicit state machine.

    WAITING --assign(agent)--> ASSIGNED --finish--> ENDED
    ASSIGNED --hand_back (pause, logout) / transfer to a queue--> WAITING   (same place in line)
    ASSIGNED --reassign (escalated) / hand_over / transfer to an agent--> ASSIGNED
    WAITING --finish--> ENDED
    notes, no change of state: enter (a queue), overflow, escalate, citizen_wrote,
    agent_replied, restore

A conversation is keyed by its ticket code. Unlike a call it rings nothing: being assigned only
counts against the agent's conversation capacity, and the agent's voice state never changes.
Its place in line is its order key (priority desc, first entry, arrival number); hand-backs,
transfers and overflow keep it, so a conversation handed back by an agent going on break is at
the front of the line again, not at the back.

The escalation clock: ``awaiting_since`` is when the citizen started waiting for an agent's
reply (their first unanswered message); the agent holding the conversation has the queue's
``escalate_after_s`` from the later of that and their assignment before it is escalated.
``escalated`` is the wallboard's flag (until an agent replies), ``escalating`` says it looks for
another agent (the current one keeps it until someone can take it).

Conversations are not in the state store: at start the ACD rebuilds them from the tickets
(``acd.messaging``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from acd.agent import AcdError, IllegalTransition
from tickets.model import Channel

log = logging.getLogger(__name__)


class UnknownConversation(AcdError):
    """No conversation with that code in the distribution."""


class ConversationState(StrEnum):
    WAITING = "waiting"
    ASSIGNED = "assigned"
    ENDED = "ended"


_S = ConversationState


@dataclass(frozen=True)
class ConversationTransition:
    """One conversation transition, for the tickets and the live views (never queue_log)."""

    code: str
    event: str
    from_state: ConversationState
    to_state: ConversationState
    at: float
    queue: str
    channel: Channel
    #: the agent holding it after the transition, and before it
    agent: str | None = None
    prev_agent: str | None = None
    #: an "enter" into the first queue it ever waited in (the ticket's ``queued_at``)
    first_entry: bool = False
    #: event-specific: target queue (overflow, transfer), the agent who handed it over
    #: (hand_over), why it went back (hand_back: pause, logout, restart), who replied
    detail: str = ""


@dataclass(frozen=True)
class ConversationOffer:
    """A conversation given to an agent in a round (nothing rings: the adapter tells the core)."""

    code: str
    channel: Channel
    queue: str
    agent: str
    prev_agent: str | None = None


@dataclass
class Conversation:
    code: str
    channel: Channel
    queue: str
    priority: int
    entered_at: float
    seq: int
    state: ConversationState = ConversationState.WAITING
    agent: str | None = None
    assigned_at: float | None = None
    #: when it entered its current queue (overflow steps count from there)
    queue_entered_at: float = 0.0
    visited: list[str] = field(default_factory=list)
    #: the citizen waits for an agent's reply since (None: answered)
    awaiting_since: float | None = None
    escalated: bool = False
    escalating: bool = False

    def __post_init__(self) -> None:
        if not self.queue_entered_at:
            self.queue_entered_at = self.entered_at
        if not self.visited:
            self.visited = [self.queue]

    @property
    def order_key(self) -> tuple[int, float, int]:
        """Place in line: higher priority first, then first come first served."""
        return (-self.priority, self.entered_at, self.seq)

    @property
    def in_line(self) -> bool:
        return self.state is _S.WAITING

    # -- transitions -------------------------------------------------------------------------

    def _check(self, event: str, allowed: set[ConversationState]) -> None:
        if self.state not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise IllegalTransition(f"conversation {self.code}", self.state.value, event, names)

    def _go(
        self, event: str, to: ConversationState, now: float, **extra: Any
    ) -> ConversationTransition:
        frm, prev = self.state, self.agent
        self.state = to
        extra.setdefault("prev_agent", prev)
        tr = ConversationTransition(
            self.code, event, frm, to, now, self.queue, self.channel, self.agent, **extra
        )
        log.debug("conversation %s: %s %s -> %s", self.code, event, frm, to)
        return tr

    def note(
        self, event: str, now: float, *, detail: str = "", first_entry: bool = False
    ) -> ConversationTransition:
        """A transition without a change of state (enter, overflow, escalate...)."""
        return self._go(event, self.state, now, detail=detail, first_entry=first_entry)

    def assign(
        self, agent: str, now: float, event: str = "assign", detail: str = ""
    ) -> ConversationTransition:
        """Give it to ``agent`` (from the line, or from the agent holding it)."""
        self._check(event, {_S.WAITING, _S.ASSIGNED})
        prev = self.agent
        self.agent, self.assigned_at, self.escalating = agent, now, False
        return self._go(event, _S.ASSIGNED, now, prev_agent=prev, detail=detail)

    def hand_back(self, now: float, event: str, detail: str = "") -> ConversationTransition:
        """Back in line at its own place (the agent went away, or transferred it to a queue)."""
        self._check(event, {_S.ASSIGNED})
        prev = self.agent
        self.agent, self.assigned_at, self.escalating = None, None, False
        return self._go(event, _S.WAITING, now, prev_agent=prev, detail=detail)

    def escalate(self, now: float) -> ConversationTransition:
        """No agent reply in time: flag it and look for another agent."""
        self._check("escalate", {_S.ASSIGNED})
        self.escalated = self.escalating = True
        return self._go("escalate", _S.ASSIGNED, now)

    def finish(self, now: float) -> ConversationTransition:
        """Resolved or closed: it leaves the line, or its agent's capacity."""
        self._check("finish", {_S.WAITING, _S.ASSIGNED})
        prev = self.agent
        self.agent = None
        return self._go("finish", _S.ENDED, now, prev_agent=prev)

    def move(self, queue: str, now: float) -> None:
        """Into another queue (overflow, transfer): same arrival time, the same fairness there."""
        self.queue, self.queue_entered_at = queue, now
        if queue not in self.visited:
            self.visited.append(queue)


def check_transfer(queue: str | None, agent: str | None) -> None:
    if (queue is None) == (agent is None):
        raise AcdError("a transfer goes to a queue or to an agent (exactly one of them)")
