"""What the web app sees of, and asks of, the call distribution: ``AcdControl``.

Pages, API and live updates only use this small interface, so tests run them against
``web.fake.FakeAcd`` and the engine plugs in ``DistributorControl`` (our own ACD on AMI).

- ``state()``: a snapshot of queues, agents and calls in progress (``LiveState``, plain data);
- agent state changes (login, logout, pause with a reason, unpause);
- ``spy``: listen to, whisper into or barge into an agent's call from the supervisor's own phone
  (AMI ``Originate`` of that phone into ``ChanSpy``; needs ``app_chanspy.so`` loaded). The phone
  is the web account's, and it must be declared in the ACD file (``[supervisors.<id>]``, whose
  PJSIP endpoints the lab generates): otherwise 422 ``phone_not_configured`` names the file;
- ``call_out``: click-to-call, ringing the agent's phone first, then the citizen through the
  dialplan context ``[tongdai-callout]``.

Errors: ``ControlError`` with an HTTP-like status (404 unknown agent, 409 not allowed in the
current state, 503 telephony unavailable).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from acd.agent import AcdError, AgentState, IllegalTransition, PauseReason, UnknownAgent
from acd.calls import CallState
from acd.distributor import Distributor
from tongdai.errors import AmiError

#: a citizen's number for click-to-call: digits, optional leading +
NUMBER_RE = re.compile(r"^\+?[0-9]{3,15}$")
#: reasons an agent or supervisor may give (missed_calls is the ACD's own)
PAUSE_REASONS = tuple(r.value for r in PauseReason if r is not PauseReason.MISSED_CALLS)
CALLOUT_CONTEXT = "tongdai-callout"


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


#: ChanSpy options per mode: q quiet (no beep), E end with the spied-on channel,
#: w whisper to the agent only, B barge (talk to both sides)
SPY_OPTIONS = {SpyMode.LISTEN: "qE", SpyMode.WHISPER: "qwE", SpyMode.BARGE: "qBE"}


class ControlError(Exception):
    """An action the distribution refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_id, self.message = status, error_id, message


@dataclass(frozen=True)
class CallView:
    id: str
    queue: str
    state: str
    caller: str | None
    ticket: str | None
    agent: str | None
    #: epoch seconds when the call entered the line, and when the agent answered
    entered_at: float
    connected_at: float | None
    position: int | None
    callback: bool = False


@dataclass(frozen=True)
class AgentView:
    id: str
    name: str
    state: str
    #: epoch seconds since when the agent is in ``state``
    since: float
    pause_reason: str | None
    pending_pause: str | None
    calls_today: int
    endpoint: str
    queues: tuple[str, ...] = ()
    call_id: str | None = None
    caller: str | None = None
    queue: str | None = None
    ticket: str | None = None


@dataclass(frozen=True)
class QueueView:
    name: str
    category: str
    waiting: int
    #: epoch seconds of the longest-waiting call's arrival (None: nobody waits)
    oldest_at: float | None
    callbacks_waiting: int
    agents_serving: int
    wrapup_s: float = 0.0


@dataclass(frozen=True)
class LiveState:
    at: float
    queues: tuple[QueueView, ...] = ()
    agents: tuple[AgentView, ...] = ()
    calls: tuple[CallView, ...] = ()
    available: bool = True

    def agent(self, agent_id: str) -> AgentView | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def to_dict(self, *, max_calls: int = 200) -> dict[str, Any]:
        """JSON-ready; the calls list is cut to the ``max_calls`` longest-waiting."""
        calls = sorted(self.calls, key=lambda c: c.entered_at)[:max_calls]
        return {
            "at": self.at,
            "available": self.available,
            "queues": [asdict(q) for q in self.queues],
            "agents": [asdict(a) for a in self.agents],
            "calls": [asdict(c) for c in calls],
            "calls_total": len(self.calls),
        }


class AcdControl(Protocol):
    def state(self) -> LiveState: ...

    def agent_login(self, agent_id: str) -> None: ...

    def agent_logout(self, agent_id: str) -> None: ...

    def agent_pause(self, agent_id: str, reason: str) -> None: ...

    def agent_unpause(self, agent_id: str) -> None: ...

    def supervisor_phones(self) -> tuple[str, ...]: ...

    async def spy(self, agent_id: str, phone: str, mode: SpyMode) -> None: ...

    async def call_out(self, agent_id: str, number: str, ticket: str | None) -> None: ...


class Ami(Protocol):
    async def action(self, name: str, /, **headers: Any) -> Any: ...


def check_reason(reason: str) -> str:
    if reason not in PAUSE_REASONS:
        raise ControlError(422, "invalid_reason", f"lý do tạm nghỉ không hợp lệ: {reason!r}")
    return reason


def check_number(number: str) -> str:
    if not NUMBER_RE.match(number):
        raise ControlError(422, "invalid_number", "số điện thoại không hợp lệ")
    return number


def _acd_error(exc: AcdError) -> ControlError:
    if isinstance(exc, UnknownAgent):
        return ControlError(404, "unknown_agent", str(exc))
    if isinstance(exc, IllegalTransition):
        return ControlError(409, "illegal_transition", str(exc))
    return ControlError(409, "acd_refused", str(exc))


async def originate_spy(ami: Ami, endpoint: str, phone: str, mode: SpyMode) -> None:
    """Ring ``phone``; when answered it spies on ``endpoint``'s channel (``PJSIP/agent101-``
    prefix, the dash so agent101 never matches agent1010)."""
    try:
        await ami.action(
            "Originate",
            Channel=phone,
            Application="ChanSpy",
            Data=f"{endpoint}-,{SPY_OPTIONS[mode]}",
            CallerID=f'"{mode.value} {endpoint.rsplit("/", 1)[-1]}" <1022>',
            Timeout="30000",
            Async="true",
        )
    except AmiError as exc:
        raise ControlError(503, "telephony_unavailable", f"AMI: {exc}") from exc


async def originate_callout(
    ami: Ami, endpoint: str, number: str, ticket: str | None, name: str
) -> None:
    """Ring the agent's phone; when answered, ``[tongdai-callout]`` dials ``number``."""
    try:
        await ami.action(
            "Originate",
            Channel=endpoint,
            Context=CALLOUT_CONTEXT,
            Exten=number.lstrip("+"),
            Priority="1",
            CallerID=f'"{name}" <{number}>',
            Timeout="30000",
            Async="true",
            Variable=[f"TONGDAI_TICKET={ticket or ''}"],
        )
    except AmiError as exc:
        raise ControlError(503, "telephony_unavailable", f"AMI: {exc}") from exc


@dataclass
class DistributorControl:
    """``AcdControl`` on the engine's ``acd.distributor.Distributor`` (same event loop)."""

    dist: Distributor
    clock: Callable[[], float] = field(default=time.time)

    def state(self) -> LiveState:
        d = self.dist.d
        now = self.clock()
        calls = tuple(
            CallView(
                c.uniqueid,
                c.queue,
                c.state.value,
                c.caller,
                c.ticket,
                c.offered_to,
                c.entered_at,
                c.connected_at,
                d.position(c.uniqueid),
                c.is_callback,
            )
            for c in d.calls.values()
        )
        by_id = {c.id: c for c in calls}
        agents = []
        for a in d.agents.values():
            call = by_id.get(a.call_id or "")
            agents.append(
                AgentView(
                    a.id,
                    a.config.name,
                    a.state.value,
                    a.state_since,
                    a.pause_reason.value if a.pause_reason else None,
                    a.pending_pause.value if a.pending_pause else None,
                    a.calls_today,
                    a.config.endpoint,
                    tuple(d.agent_queues(a.id)),
                    a.call_id,
                    call.caller if call else None,
                    call.queue if call else None,
                    call.ticket if call else None,
                )
            )
        queues = []
        for q in d.cfg.queues.values():
            line = [c for c in calls if c.queue == q.name]
            waiting = [c for c in line if c.state in (CallState.WAITING, CallState.OFFERED)]
            queues.append(
                QueueView(
                    q.name,
                    q.category,
                    len(waiting),
                    min((c.entered_at for c in waiting), default=None),
                    sum(1 for c in line if c.state == CallState.CALLBACK_WAITING),
                    d.serving_agents(q.name),
                    q.wrapup_s,
                )
            )
        return LiveState(now, tuple(queues), tuple(agents), calls)

    def _apply(self, op: Callable[[], object]) -> None:
        try:
            op()
        except AcdError as exc:
            raise _acd_error(exc) from exc
        # queue_log, tickets and the live hub see the transition now (not at the next tick)
        self.dist.flush()

    def agent_login(self, agent_id: str) -> None:
        self._apply(lambda: self.dist.d.agent_login(agent_id))

    def agent_logout(self, agent_id: str) -> None:
        self._apply(lambda: self.dist.d.agent_logout(agent_id))

    def agent_pause(self, agent_id: str, reason: str) -> None:
        check_reason(reason)
        self._apply(lambda: self.dist.d.agent_pause(agent_id, reason))

    def agent_unpause(self, agent_id: str) -> None:
        self._apply(lambda: self.dist.d.agent_unpause(agent_id))

    def _endpoint(self, agent_id: str) -> str:
        try:
            return str(self.dist.d.agent(agent_id).config.endpoint)
        except AcdError as exc:
            raise _acd_error(exc) from exc

    def supervisor_phones(self) -> tuple[str, ...]:
        return tuple(s.endpoint for s in self.dist.d.cfg.supervisors.values())

    async def spy(self, agent_id: str, phone: str, mode: SpyMode) -> None:
        endpoint = self._endpoint(agent_id)
        cfg = self.dist.d.cfg
        if cfg.supervisor_phone(phone) is None:
            raise ControlError(
                422,
                "phone_not_configured",
                f"your phone {phone} is not a supervisor phone in {cfg.source}: add "
                f'[supervisors.<id>] with endpoint = "{phone}" there (the lab then creates its '
                "PJSIP endpoint), or set your account's phone to one of: "
                + (", ".join(self.supervisor_phones()) or "(none declared)"),
            )
        if self.dist.d.agent(agent_id).state is not AgentState.ON_CALL:
            raise ControlError(409, "not_on_call", f"agent {agent_id} is not on a call")
        await originate_spy(self.dist.ami, endpoint, phone, mode)

    async def call_out(self, agent_id: str, number: str, ticket: str | None) -> None:
        check_number(number)
        endpoint = self._endpoint(agent_id)
        agent = self.dist.d.agent(agent_id)
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL) or agent.device_in_use:
            raise ControlError(409, "agent_busy", f"agent {agent_id} is busy")
        await originate_callout(self.dist.ami, endpoint, number, ticket, agent.config.name)


class NullControl:
    """No ACD in this engine (``distribution = "asterisk"``): empty state, actions refused."""

    def state(self) -> LiveState:
        return LiveState(time.time(), available=False)

    def _refuse(self) -> None:
        raise ControlError(503, "acd_unavailable", "the engine's call distribution is not running")

    def agent_login(self, agent_id: str) -> None:
        self._refuse()

    def agent_logout(self, agent_id: str) -> None:
        self._refuse()

    def agent_pause(self, agent_id: str, reason: str) -> None:
        self._refuse()

    def agent_unpause(self, agent_id: str) -> None:
        self._refuse()

    def supervisor_phones(self) -> tuple[str, ...]:
        return ()

    async def spy(self, agent_id: str, phone: str, mode: SpyMode) -> None:
        self._refuse()

    async def call_out(self, agent_id: str, number: str, ticket: str | None) -> None:
        self._refuse()
