"""A call in line as an explicit state machine (like the agent's), with its place kept.

    WAITING --offer--> OFFERED --answered--> CONNECTED --complete--> ENDED(answered)
    OFFERED --ring_no_answer / offer_cancelled--> WAITING   (same place in line)
    WAITING / OFFERED --abandon--> ENDED(abandoned_queue)
    WAITING --timeout--> ENDED(timeout_queue)
    WAITING --request_callback--> CALLBACK_WAITING   (the caller hangs up, keeps the place)

A callback's turn comes, caller first: CALLBACK_WAITING --offer--> CALLBACK_DIALING (agent
reserved, not rung) --callback_answered--> OFFERED (now the agent rings) --answered--> CONNECTED.
Agent first: CALLBACK_WAITING --offer--> OFFERED (agent rings) --answered--> CALLBACK_DIALING
--callback_answered--> CONNECTED. A failed callback goes back to CALLBACK_WAITING (retry after a
delay, same place) until ``max_attempts``, then ENDED(callback_failed).

The place in line is the order key (priority desc, arrival time, arrival number); it never
changes while the call is in line, so positions stay stable and dense.
"""

from __future__ import annotations

import heapq
import logging
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from acd.agent import AcdError, Agent, IllegalTransition

log = logging.getLogger(__name__)


class UnknownCall(AcdError):
    """No call with that uniqueid in the distribution."""


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"
    CALLBACK_WAITING = "callback_waiting"
    CALLBACK_DIALING = "callback_dialing"
    ENDED = "ended"


class CallOutcome(StrEnum):
    """How a queued call ended: the name the distributor writes on the ticket."""

    ANSWERED = "answered"
    ABANDONED_QUEUE = "abandoned_queue"
    TIMEOUT_QUEUE = "timeout_queue"
    CALLBACK_FAILED = "callback_failed"
    CALLBACK_CANCELLED = "callback_cancelled"


_S = CallState
#: states in which the call holds a place in its queue's line
IN_LINE = frozenset({_S.WAITING, _S.OFFERED, _S.CALLBACK_WAITING, _S.CALLBACK_DIALING})
#: states in which an agent holds the call (``offered_to``)
HOLDING = frozenset({_S.OFFERED, _S.CONNECTED, _S.CALLBACK_DIALING})


@dataclass(frozen=True)
class CallTransition:
    """One call transition, with what queue_log and the ticket need."""

    call_id: str
    event: str
    from_state: CallState
    to_state: CallState
    at: float
    queue: str
    agent: str | None = None
    position: int | None = None
    orig_position: int | None = None
    wait_s: float = 0.0
    ring_s: float | None = None
    talk_s: float | None = None
    outcome: CallOutcome | None = None
    #: event-specific: caller number (enter), agent channel (connect), target queue (overflow),
    #: "caller"/"agent" (complete), pressed key (callback_requested)
    detail: str = ""
    #: the call's ticket code, for the recorder
    ticket: str | None = None


@dataclass
class QueuedCall:
    uniqueid: str
    queue: str
    priority: int
    entered_at: float
    seq: int
    caller: str | None = None
    ticket: str | None = None
    state: CallState = CallState.WAITING
    offered_to: str | None = None
    offered_at: float | None = None
    connected_at: float | None = None
    orig_position: int = 0
    #: when the call entered its current queue (overflow steps count from there)
    queue_entered_at: float = 0.0
    visited: list[str] = field(default_factory=list)
    callback_number: str | None = None
    callback_mode: str | None = None
    #: False while the citizen waits for a callback (hung up, place kept)
    on_line: bool = True
    #: failed callback dials so far
    callback_attempts: int = 0
    #: a callback is not tried again before this time
    not_before: float = 0.0
    last_announced_at: float = 0.0
    #: the agent who last let it ring out: others are preferred for the next offer
    missed_by: str | None = None
    #: the IVR still speaks to the caller (transfer prompt, ticket code): the call holds its
    #: place in line but no agent is reserved for it yet
    in_ivr: bool = False
    outcome: CallOutcome | None = None

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
        return self.state in IN_LINE

    @property
    def is_callback(self) -> bool:
        return self.callback_mode is not None

    # -- transitions -------------------------------------------------------------------------

    def _check(self, event: str, allowed: set[CallState]) -> None:
        if self.state not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise IllegalTransition(f"call {self.uniqueid}", self.state.value, event, names)

    def _go(self, event: str, to: CallState, now: float, **extra: Any) -> CallTransition:
        frm = self.state
        self.state = to
        extra.setdefault("agent", self.offered_to)
        extra.setdefault("ticket", self.ticket)
        tr = CallTransition(
            self.uniqueid,
            event,
            frm,
            to,
            now,
            self.queue,
            orig_position=self.orig_position,
            wait_s=max(0.0, now - self.entered_at),
            **extra,
        )
        log.debug("call %s: %s %s -> %s", self.uniqueid, event, frm, to)
        return tr

    def note(
        self, event: str, now: float, position: int | None, detail: str = ""
    ) -> CallTransition:
        """A transition without a change of state: "enter" a queue, "overflow" out of one."""
        return self._go(event, self.state, now, position=position, detail=detail)

    def offer(self, agent_id: str, now: float) -> CallTransition:
        """An agent is chosen. Returns the transition; its state says which leg to dial first."""
        self._check("offer", {_S.WAITING, _S.CALLBACK_WAITING})
        self.offered_to, self.offered_at = agent_id, now
        if self.state is _S.CALLBACK_WAITING and self.callback_mode == "caller_first":
            return self._go("callback_dialing", _S.CALLBACK_DIALING, now)
        return self._go("offer", _S.OFFERED, now)

    def callback_answered(self, now: float) -> CallTransition:
        """The citizen picked up the callback."""
        self._check("callback_answered", {_S.CALLBACK_DIALING})
        self.on_line = True
        if self.callback_mode == "caller_first":
            self.offered_at = now  # the agent's phone starts ringing now
            return self._go("callback_answered", _S.OFFERED, now)
        self.connected_at = now
        return self._go("callback_answered", _S.CONNECTED, now)

    def answered(self, now: float, peer: str = "") -> CallTransition:
        """The agent picked up."""
        self._check("answered", {_S.OFFERED})
        ring = now - (self.offered_at or now)
        if not self.on_line:  # agent-first callback: now dial the citizen
            return self._go("callback_dialing", _S.CALLBACK_DIALING, now, ring_s=ring)
        self.connected_at = now
        return self._go("connect", _S.CONNECTED, now, ring_s=ring, detail=peer)

    def back_in_line(self, event: str, now: float, position: int | None) -> CallTransition:
        """Ring-no-answer or a withdrawn offer: the call keeps its place."""
        self._check(event, {_S.OFFERED, _S.CALLBACK_DIALING})
        ring = now - (self.offered_at or now)
        agent = self.offered_to
        self.offered_to = self.offered_at = None
        if event == "ring_no_answer":
            self.missed_by = agent
        to = _S.WAITING if self.on_line else _S.CALLBACK_WAITING
        return self._go(event, to, now, agent=agent, ring_s=ring, position=position)

    def request_callback(
        self, number: str, mode: str, key: str, now: float, position: int | None
    ) -> CallTransition:
        self._check("request_callback", {_S.WAITING})
        self.callback_number, self.callback_mode, self.on_line = number, mode, False
        return self._go(
            "callback_requested", _S.CALLBACK_WAITING, now, position=position, detail=key
        )

    def callback_failed(
        self, now: float, max_attempts: int, retry_after_s: float, position: int | None
    ) -> CallTransition:
        """The citizen did not answer the callback: retry later, or end after max_attempts."""
        self._check("callback_failed", {_S.CALLBACK_DIALING})
        agent = self.offered_to
        self.offered_to = self.offered_at = None
        self.callback_attempts += 1
        if self.callback_attempts >= max_attempts:
            self.outcome = CallOutcome.CALLBACK_FAILED
            return self._go(
                "callback_failed",
                _S.ENDED,
                now,
                agent=agent,
                outcome=self.outcome,
                position=position,
            )
        self.not_before = now + retry_after_s
        return self._go("callback_retry", _S.CALLBACK_WAITING, now, agent=agent, position=position)

    def end(
        self, event: str, outcome: CallOutcome, now: float, position: int | None
    ) -> CallTransition:
        """Leave the line: abandon (caller hung up), timeout, callback cancelled."""
        allowed = {_S.WAITING, _S.OFFERED} if event != "callback_cancelled" else set(IN_LINE)
        self._check(event, allowed)
        agent = self.offered_to
        ring = now - self.offered_at if self.offered_at is not None else None
        self.offered_to = self.offered_at = None
        self.outcome = outcome
        return self._go(
            event, _S.ENDED, now, agent=agent, ring_s=ring, outcome=outcome, position=position
        )

    def complete(self, by: str, now: float) -> CallTransition:
        """The conversation is over; ``by`` is who hung up ("caller" or "agent")."""
        self._check("complete", {_S.CONNECTED})
        if by not in ("caller", "agent"):
            raise ValueError(f"by must be 'caller' or 'agent', got {by!r}")
        self.outcome = CallOutcome.ANSWERED
        talk = now - (self.connected_at or now)
        return self._go("complete", _S.ENDED, now, talk_s=talk, outcome=self.outcome, detail=by)

    def move(self, queue: str, now: float) -> None:
        """Overflow to another queue: same arrival time, so the same fairness there."""
        self.queue, self.queue_entered_at = queue, now
        self.visited.append(queue)

    # -- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueuedCall:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["state"] = CallState(kw.get("state", "waiting"))
        if kw.get("outcome") is not None:
            kw["outcome"] = CallOutcome(kw["outcome"])
        kw["visited"] = list(kw.get("visited") or [])
        return cls(**kw)


class InLine(Protocol):
    """What holds a place in a line: a call, or a conversation (``acd.conversations``)."""

    queue: str

    @property
    def order_key(self) -> tuple[int, float, int]: ...


T = TypeVar("T", bound=InLine)


def _key(c: InLine) -> tuple[int, float, int]:
    return c.order_key


class Lines(Generic[T]):
    """Each queue's line in order; positions by binary search on the order key."""

    def __init__(self, queues: Iterable[str]) -> None:
        self._lines: dict[str, list[T]] = {q: [] for q in queues}

    def __contains__(self, queue: object) -> bool:
        return queue in self._lines

    def add(self, c: T) -> int:
        """Insert ``c`` at its place in its queue; returns its position."""
        insort(self._lines[c.queue], c, key=_key)
        return self.position(c)

    def remove(self, c: T) -> None:
        line = self._lines[c.queue]
        i = bisect_left(line, c.order_key, key=_key)
        if i < len(line) and line[i] is c:
            del line[i]

    def position(self, c: T) -> int:
        return bisect_left(self._lines[c.queue], c.order_key, key=_key) + 1

    def line(self, queue: str) -> list[T]:
        return list(self._lines[queue])

    def merged(self) -> Iterator[T]:
        """Every queue's calls in one order: priority desc, then first come first served."""
        return heapq.merge(*self._lines.values(), key=_key)


class Admission(StrEnum):
    QUEUED = "queued"
    REJECTED_BUSY = "rejected_busy"


@dataclass(frozen=True)
class Offer:
    """Ring ``agent`` for ``call``. For a callback, ``mode`` says which leg to dial first."""

    call: QueuedCall
    agent: Agent
    ring_timeout_s: float
    callback: bool = False
    mode: str | None = None

    @property
    def call_id(self) -> str:
        return self.call.uniqueid

    @property
    def agent_id(self) -> str:
        return self.agent.id

    @property
    def endpoint(self) -> str:
        return self.agent.config.endpoint


@dataclass(frozen=True)
class Announcement:
    """Say to a waiting caller: their position (if the queue says so) and minutes (if known)."""

    call_id: str
    queue: str
    position: int | None
    wait_minutes: int | None
