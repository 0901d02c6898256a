"""The agent as an explicit state machine, with named, validated, recorded transitions.

    LOGGED_OUT --login--> AVAILABLE --offer(call)--> RINGING --answered--> ON_CALL
    ON_CALL --call_ended--> WRAP_UP --wrapup_done--> AVAILABLE   (no wrap-up: straight back)
    RINGING --ring_no_answer--> AVAILABLE, or PAUSED(missed_calls) after max_misses in a row
    RINGING --offer_cancelled--> AVAILABLE   (caller left, claim lost: not the agent's fault)
    AVAILABLE / WRAP_UP / PAUSED --pause(reason)--> PAUSED --unpause--> AVAILABLE
    ON_CALL --pause(reason)--> ON_CALL, paused once the call and its wrap-up end
    AVAILABLE / WRAP_UP / PAUSED --logout--> LOGGED_OUT

The phone's device state (from AMI) is a separate flag: an agent whose device is busy, on any
call, even one the distribution did not give, is never eligible. Every transition returns a
``Transition`` (from, to, event, reason, at) the distributor writes to queue_log. Time comes
from the injected clock, never from the wall.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from acd.config import AgentConfig
from tongdai.errors import TongdaiError

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class AcdError(TongdaiError):
    """Base of the call distribution's errors."""


class IllegalTransition(AcdError):
    """A state machine was asked for a transition its current state does not allow."""

    def __init__(self, what: str, state: str, event: str, allowed: str = "") -> None:
        self.what, self.state, self.event = what, state, event
        hint = f" (allowed from: {allowed})" if allowed else ""
        super().__init__(f"{what}: cannot {event} while {state}{hint}")


class UnknownAgent(AcdError):
    """No agent with that id in the configuration."""


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class PauseReason(StrEnum):
    BREAK = "break"
    MEAL = "meal"
    TRAINING = "training"
    BACK_OFFICE = "back_office"
    MISSED_CALLS = "missed_calls"


#: AMI DeviceState values for which the phone can take a new call
FREE_DEVICE_STATES = frozenset({"NOT_INUSE", "UNKNOWN"})


def device_is_free(ami_state: str) -> bool:
    """``DeviceStateChange``'s ``State`` -> may this phone be rung? (INUSE, RINGING... -> no)."""
    return ami_state.upper() in FREE_DEVICE_STATES


@dataclass(frozen=True)
class Transition:
    """One agent transition, for queue_log and the supervisor's view."""

    agent: str
    event: str
    from_state: AgentState
    to_state: AgentState
    at: float
    reason: str | None = None
    call_id: str | None = None
    #: seconds since login (logout only, for AGENTLOGOFF)
    logged_in_s: float | None = None


@dataclass(frozen=True)
class AgentSnapshot:
    """Everything needed to rebuild an agent after an engine restart (JSON-safe via asdict)."""

    state: str
    state_since: float
    pause_reason: str | None = None
    pending_pause: str | None = None
    call_id: str | None = None
    device_in_use: bool = False
    calls_today: int = 0
    last_call_ended_at: float | None = None
    logged_in_at: float | None = None
    misses: int = 0
    wrapup_until: float | None = None
    time_in: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentSnapshot:
        return cls(**d)


_A = AgentState


class Agent:
    def __init__(self, config: AgentConfig, clock: Clock, *, order: int = 0) -> None:
        self.config = config
        self.clock = clock
        #: position in the configuration, the stable tie-break between equal agents
        self.order = order
        self.state = _A.LOGGED_OUT
        self.state_since = clock()
        self.pause_reason: PauseReason | None = None
        self.pending_pause: PauseReason | None = None
        self.call_id: str | None = None
        self.device_in_use = False
        self.calls_today = 0
        self.last_call_ended_at: float | None = None
        self.logged_in_at: float | None = None
        self.misses = 0
        self.wrapup_until: float | None = None
        #: seconds spent in each state before the current one (today)
        self.time_in: dict[AgentState, float] = {}

    def __repr__(self) -> str:
        return f"Agent({self.id}, {self.state}, call={self.call_id})"

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def eligible(self) -> bool:
        """May be offered a call now: available and the phone is not in use."""
        return self.state is _A.AVAILABLE and not self.device_in_use

    @property
    def idle_since(self) -> float:
        """For longest-idle: when the last call ended, else login time."""
        if self.last_call_ended_at is not None:
            return self.last_call_ended_at
        return self.logged_in_at if self.logged_in_at is not None else self.state_since

    def time_in_state(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) - self.state_since

    def level(self, skill: str) -> int:
        return self.config.skills.get(skill, 0)

    # -- transitions -------------------------------------------------------------------------

    def _check(self, event: str, allowed: set[AgentState]) -> None:
        if self.state not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise IllegalTransition(f"agent {self.id}", self.state.value, event, names)

    def _go(
        self,
        event: str,
        to: AgentState,
        reason: str | None = None,
        *,
        call_id: str | None = None,
        logged_in_s: float | None = None,
    ) -> Transition:
        now = self.clock()
        frm = self.state
        if to is not frm:
            self.time_in[frm] = self.time_in.get(frm, 0.0) + max(0.0, now - self.state_since)
            self.state, self.state_since = to, now
        call = call_id if call_id is not None else self.call_id
        tr = Transition(self.id, event, frm, to, now, reason, call, logged_in_s)
        log.debug("agent %s: %s %s -> %s (%s)", self.id, event, frm, to, reason or "")
        return tr

    def login(self) -> Transition:
        self._check("login", {_A.LOGGED_OUT})
        self.logged_in_at = self.clock()
        self.misses = 0
        return self._go("login", _A.AVAILABLE)

    def logout(self) -> Transition:
        self._check("logout", {_A.AVAILABLE, _A.WRAP_UP, _A.PAUSED})
        since = self.logged_in_at
        self.pause_reason = self.pending_pause = None
        self.wrapup_until = None
        now = self.clock()
        return self._go("logout", _A.LOGGED_OUT, logged_in_s=now - since if since else 0.0)

    def pause(self, reason: PauseReason | str) -> Transition:
        reason = PauseReason(reason)
        if self.state is _A.ON_CALL:
            self.pending_pause = reason  # takes effect when the call and its wrap-up end
            return self._go("pause", _A.ON_CALL, reason.value)
        self._check("pause", {_A.AVAILABLE, _A.WRAP_UP, _A.PAUSED, _A.ON_CALL})
        self.pause_reason, self.wrapup_until = reason, None
        return self._go("pause", _A.PAUSED, reason.value)

    def unpause(self) -> Transition:
        if self.state is _A.ON_CALL and self.pending_pause is not None:
            self.pending_pause = None
            return self._go("unpause", _A.ON_CALL)
        self._check("unpause", {_A.PAUSED})
        self.pause_reason, self.misses = None, 0
        return self._go("unpause", _A.AVAILABLE)

    def offer(self, call_id: str) -> Transition:
        self._check("offer", {_A.AVAILABLE})
        if self.device_in_use:
            raise IllegalTransition(f"agent {self.id}", "device busy", "offer")
        self.call_id = call_id
        return self._go("offer", _A.RINGING)

    def answered(self) -> Transition:
        self._check("answered", {_A.RINGING})
        self.misses = 0
        return self._go("answered", _A.ON_CALL)

    def ring_no_answer(self, max_misses: int) -> Transition:
        """The phone rang out; after ``max_misses`` in a row the agent is auto-paused."""
        self._check("ring_no_answer", {_A.RINGING})
        self.misses += 1
        call, self.call_id = self.call_id, None
        if self.misses >= max_misses:
            self.pause_reason = PauseReason.MISSED_CALLS
            return self._go("ring_no_answer", _A.PAUSED, self.pause_reason.value, call_id=call)
        return self._go("ring_no_answer", _A.AVAILABLE, call_id=call)

    def offer_cancelled(self) -> Transition:
        """The offer was withdrawn (caller left, another node won the claim): no miss counted."""
        self._check("offer_cancelled", {_A.RINGING})
        call, self.call_id = self.call_id, None
        return self._go("offer_cancelled", _A.AVAILABLE, call_id=call)

    def call_ended(self, wrapup_s: float, *, handled: bool = True) -> Transition:
        """The call is over; ``handled=False`` for a callback whose citizen never answered."""
        self._check("call_ended", {_A.ON_CALL})
        now = self.clock()
        call, self.call_id = self.call_id, None
        if handled:
            self.calls_today += 1
            self.last_call_ended_at = now
        if handled and wrapup_s > 0:
            self.wrapup_until = now + wrapup_s
            return self._go("call_ended", _A.WRAP_UP, call_id=call)
        if self.pending_pause is not None:
            self.pause_reason, self.pending_pause = self.pending_pause, None
            return self._go("call_ended", _A.PAUSED, self.pause_reason.value, call_id=call)
        return self._go("call_ended", _A.AVAILABLE, call_id=call)

    def wrapup_done(self) -> Transition:
        self._check("wrapup_done", {_A.WRAP_UP})
        self.wrapup_until = None
        if self.pending_pause is not None:
            self.pause_reason, self.pending_pause = self.pending_pause, None
            return self._go("wrapup_done", _A.PAUSED, self.pause_reason.value)
        return self._go("wrapup_done", _A.AVAILABLE)

    def device_busy(self) -> Transition:
        """AMI says the phone is in use (ringing, on a call, unavailable...)."""
        self.device_in_use = True
        return self._go("device_busy", self.state)

    def device_free(self) -> Transition:
        self.device_in_use = False
        return self._go("device_free", self.state)

    def reset_day(self) -> None:
        """Start of a new day: the daily counters go back to zero."""
        self.calls_today = 0
        self.time_in.clear()

    # -- persistence -------------------------------------------------------------------------

    def snapshot(self) -> AgentSnapshot:
        return AgentSnapshot(
            state=self.state.value,
            state_since=self.state_since,
            pause_reason=self.pause_reason.value if self.pause_reason else None,
            pending_pause=self.pending_pause.value if self.pending_pause else None,
            call_id=self.call_id,
            device_in_use=self.device_in_use,
            calls_today=self.calls_today,
            last_call_ended_at=self.last_call_ended_at,
            logged_in_at=self.logged_in_at,
            misses=self.misses,
            wrapup_until=self.wrapup_until,
            time_in={k.value: v for k, v in self.time_in.items()},
        )

    def restore(self, s: AgentSnapshot) -> None:
        self.state = AgentState(s.state)
        self.state_since = s.state_since
        self.pause_reason = PauseReason(s.pause_reason) if s.pause_reason else None
        self.pending_pause = PauseReason(s.pending_pause) if s.pending_pause else None
        self.call_id = s.call_id
        self.device_in_use = s.device_in_use
        self.calls_today = s.calls_today
        self.last_call_ended_at = s.last_call_ended_at
        self.logged_in_at = s.logged_in_at
        self.misses = s.misses
        self.wrapup_until = s.wrapup_until
        self.time_in = {AgentState(k): v for k, v in s.time_in.items()}
