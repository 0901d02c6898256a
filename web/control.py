"""What the web app sees of, and asks of, the call distribution: ``AcdControl``.

Pages, API and live updates only use this small interface; the engine plugs in
``RouterControl`` (our own ACD: its router's public interface, and AMI for the phones), tests
the same on a fake AMI (``bench.web_rig.SimAcd``), and ``NullControl`` stands in when
app_queue distributes the calls.

- ``state()``: a snapshot of queues, agents, calls in progress and conversations
  (``LiveState``, plain data): per queue the calls waiting and the conversations waiting and
  open per channel; per agent their open conversations (count and ticket codes);
- agent state changes (login, logout, pause with a reason, unpause); logout and pause hand
  the agent's open conversations back to their queues, or to a colleague (``hand_to``);
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
from acd.conversations import ConversationState
from acd.router import Router
from pbx.ports import AmiActions
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
    state: CallState
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
    state: AgentState
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
    #: ticket codes of the conversations the agent holds, and how many they may hold
    conversations: tuple[str, ...] = ()
    conversations_open: int = 0
    conversation_capacity: int = 0


@dataclass(frozen=True)
class ConversationView:
    code: str
    channel: str
    queue: str
    state: ConversationState
    agent: str | None
    #: epoch seconds: first entry in a queue, given to its agent, the citizen's unanswered
    #: message (None: answered)
    entered_at: float
    assigned_at: float | None
    position: int | None
    awaiting_since: float | None
    #: no agent reply within the queue's ``escalate_after_s`` (until an agent replies)
    escalated: bool = False


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
    #: conversations per channel (``webchat``, ``email``...): waiting in line, held by agents
    conversations_waiting: dict[str, int] = field(default_factory=dict)
    conversations_open: dict[str, int] = field(default_factory=dict)
    conversations_escalated: int = 0


@dataclass(frozen=True)
class LiveState:
    at: float
    queues: tuple[QueueView, ...] = ()
    agents: tuple[AgentView, ...] = ()
    calls: tuple[CallView, ...] = ()
    available: bool = True
    conversations: tuple[ConversationView, ...] = ()

    def agent(self, agent_id: str) -> AgentView | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def to_dict(self, *, max_calls: int = 200) -> dict[str, Any]:
        """JSON-ready; the calls and conversations lists are cut to the ``max_calls``
        longest-waiting."""
        calls = sorted(self.calls, key=lambda c: c.entered_at)[:max_calls]
        convs = sorted(self.conversations, key=lambda c: c.entered_at)[:max_calls]
        return {
            "at": self.at,
            "available": self.available,
            "queues": [asdict(q) for q in self.queues],
            "agents": [asdict(a) for a in self.agents],
            "calls": [asdict(c) for c in calls],
            "calls_total": len(self.calls),
            "conversations": [asdict(c) for c in convs],
            "conversations_total": len(self.conversations),
        }


class AcdControl(Protocol):
    def state(self) -> LiveState: ...

    def agent_login(self, agent_id: str) -> None: ...

    def agent_logout(self, agent_id: str, hand_to: str | None = None) -> None: ...

    def agent_pause(self, agent_id: str, reason: str, hand_to: str | None = None) -> None: ...

    def agent_unpause(self, agent_id: str) -> None: ...

    def supervisor_phones(self) -> tuple[str, ...]: ...

    async def spy(self, agent_id: str, phone: str, mode: SpyMode) -> None: ...

    async def call_out(self, agent_id: str, number: str, ticket: str | None) -> None: ...


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


async def originate_spy(ami: AmiActions, endpoint: str, phone: str, mode: SpyMode) -> None:
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
    ami: AmiActions, endpoint: str, number: str, ticket: str | None, name: str
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
class RouterControl:
    """``AcdControl`` on the engine's ACD (same event loop): its router's public interface
    (``acd.router.Router``) and AMI for the phones."""

    router: Router
    ami: AmiActions
    clock: Callable[[], float] = field(default=time.time)

    def state(self) -> LiveState:
        r = self.router
        calls = tuple(
            CallView(
                c.uniqueid,
                c.queue,
                c.state,
                c.caller,
                c.ticket,
                c.offered_to,
                c.entered_at,
                c.connected_at,
                r.position(c.uniqueid),
                c.is_callback,
            )
            for c in r.calls()
        )
        convs = tuple(
            ConversationView(
                c.code,
                c.channel.value,
                c.queue,
                c.state,
                c.agent,
                c.entered_at,
                c.assigned_at,
                r.conversation_position(c.code),
                c.awaiting_since,
                c.escalated,
            )
            for c in r.conversations()
        )
        return LiveState(self.clock(), self._queues(calls, convs), self._agents(calls), calls,
                         conversations=convs)  # fmt: skip

    def _agents(self, calls: tuple[CallView, ...]) -> tuple[AgentView, ...]:
        r = self.router
        by_id = {c.id: c for c in calls}
        agents = []
        for a in r.agents():
            call = by_id.get(a.call_id or "")
            codes = tuple(r.open_conversations(a.id))
            agents.append(
                AgentView(
                    a.id,
                    a.config.name,
                    a.state,
                    a.state_since,
                    a.pause_reason.value if a.pause_reason else None,
                    a.pending_pause.value if a.pending_pause else None,
                    a.calls_today,
                    a.config.endpoint,
                    tuple(r.agent_queues(a.id)),
                    a.call_id,
                    call.caller if call else None,
                    call.queue if call else None,
                    call.ticket if call else None,
                    codes,
                    len(codes),
                    r.config.capacity_of(a.id).conversations,
                )
            )
        return tuple(agents)

    def _queues(
        self, calls: tuple[CallView, ...], convs: tuple[ConversationView, ...]
    ) -> tuple[QueueView, ...]:
        waiting_c: dict[str, dict[str, int]] = {}
        open_c: dict[str, dict[str, int]] = {}
        escalated: dict[str, int] = {}
        for c in convs:
            into = waiting_c if c.state is ConversationState.WAITING else open_c
            per = into.setdefault(c.queue, {})
            per[c.channel] = per.get(c.channel, 0) + 1
            escalated[c.queue] = escalated.get(c.queue, 0) + c.escalated
        queues = []
        for q in self.router.queues():
            line = [c for c in calls if c.queue == q.name]
            waiting = [c for c in line if c.state in (CallState.WAITING, CallState.OFFERED)]
            queues.append(
                QueueView(
                    q.name,
                    q.category,
                    len(waiting),
                    min((c.entered_at for c in waiting), default=None),
                    sum(1 for c in line if c.state is CallState.CALLBACK_WAITING),
                    self.router.serving_agents(q.name),
                    q.wrapup_s,
                    waiting_c.get(q.name, {}),
                    open_c.get(q.name, {}),
                    escalated.get(q.name, 0),
                )
            )
        return tuple(queues)

    def _apply(self, op: Callable[[], object]) -> None:
        """The router flushes: queue_log, tickets and the live hub see the change at once."""
        try:
            op()
        except AcdError as exc:
            raise _acd_error(exc) from exc

    def agent_login(self, agent_id: str) -> None:
        self._apply(lambda: self.router.login(agent_id))

    def agent_logout(self, agent_id: str, hand_to: str | None = None) -> None:
        self._apply(lambda: self.router.logout(agent_id, hand_to))

    def agent_pause(self, agent_id: str, reason: str, hand_to: str | None = None) -> None:
        check_reason(reason)
        self._apply(lambda: self.router.pause(agent_id, reason, hand_to))

    def agent_unpause(self, agent_id: str) -> None:
        self._apply(lambda: self.router.unpause(agent_id))

    def _endpoint(self, agent_id: str) -> str:
        try:
            return str(self.router.agent(agent_id).config.endpoint)
        except AcdError as exc:
            raise _acd_error(exc) from exc

    def supervisor_phones(self) -> tuple[str, ...]:
        return tuple(s.endpoint for s in self.router.config.supervisors.values())

    async def spy(self, agent_id: str, phone: str, mode: SpyMode) -> None:
        endpoint = self._endpoint(agent_id)
        cfg = self.router.config
        if cfg.supervisor_phone(phone) is None:
            raise ControlError(
                422,
                "phone_not_configured",
                f"your phone {phone} is not a supervisor phone in {cfg.source}: add "
                f'[supervisors.<id>] with endpoint = "{phone}" there (the lab then creates its '
                "PJSIP endpoint), or set your account's phone to one of: "
                + (", ".join(self.supervisor_phones()) or "(none declared)"),
            )
        if self.router.agent(agent_id).state is not AgentState.ON_CALL:
            raise ControlError(409, "not_on_call", f"agent {agent_id} is not on a call")
        await originate_spy(self.ami, endpoint, phone, mode)

    async def call_out(self, agent_id: str, number: str, ticket: str | None) -> None:
        check_number(number)
        endpoint = self._endpoint(agent_id)
        agent = self.router.agent(agent_id)
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL) or agent.device_in_use:
            raise ControlError(409, "agent_busy", f"agent {agent_id} is busy")
        await originate_callout(self.ami, endpoint, number, ticket, agent.config.name)


class NullControl:
    """No ACD in this engine (``distribution = "asterisk"``): empty state, actions refused."""

    def state(self) -> LiveState:
        return LiveState(time.time(), available=False)

    def _refuse(self) -> None:
        raise ControlError(503, "acd_unavailable", "the engine's call distribution is not running")

    def agent_login(self, agent_id: str) -> None:
        self._refuse()

    def agent_logout(self, agent_id: str, hand_to: str | None = None) -> None:
        self._refuse()

    def agent_pause(self, agent_id: str, reason: str, hand_to: str | None = None) -> None:
        self._refuse()

    def agent_unpause(self, agent_id: str) -> None:
        self._refuse()

    def supervisor_phones(self) -> tuple[str, ...]:
        return ()

    async def spy(self, agent_id: str, phone: str, mode: SpyMode) -> None:
        self._refuse()

    async def call_out(self, agent_id: str, number: str, ticket: str | None) -> None:
        self._refuse()
