"""Drives the ACD on a real Asterisk over AMI: the asyncio side of ``acd.dispatch.Dispatcher``.

How a call is distributed (``distribution = "engine"``):

1. The IVR (same process) calls ``enqueue``; the dialplan then holds the caller in
   ``[tongdai-acd-wait]`` (music on hold, with an AGI every N seconds for announcements).
2. Direct dial (the fast path): when the IVR hands the caller over (``dial_now``) and an agent
   is free, the decision is made right there, inside the caller's AGI session, and the
   caller's own channel ``Dial()``s the agent (``[tongdai-acd-dial]``): no AMI round trip
   between the decision and the agent's phone ringing. We follow that Dial over AMI
   (``DialBegin``/``DialEnd`` of the caller's channel): not answered = ring-no-answer, the
   caller goes on to the wait loop and keeps their place.
3. Otherwise, when ``Dispatcher.assign`` pairs a waiting call with a free agent, we
   ``Originate`` the agent's endpoint into ``[tongdai-acd-connect]`` with ``ChannelId`` set,
   so we know the agent leg's uniqueid before it exists. On answer, that context runs
   ``Bridge(<caller channel>)``, which pulls the caller out of the music loop.
   ``OriginateResponse`` Failure = ring-no-answer. We chose Originate+Bridge over Redirect so
   the caller never leaves the music until the agent has really answered, and a ringing agent
   can be cancelled (AMI ``Hangup`` on the known leg) without touching the caller.
4. AMI ``Hangup`` of the caller or the agent leg ends the conversation (COMPLETECALLER /
   COMPLETEAGENT) or the wait (ABANDON); ``DeviceStateChange`` keeps busy phones out.

Every dispatcher transition goes, in order, to the queue_log and the ticket (one writer task).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from acd.agent import AcdError, Agent, AgentState, Transition
from acd.callbacks import CallbackDialer
from acd.calls import Admission, CallOutcome, CallState, CallTransition, Offer
from acd.dispatch import Dispatcher, Event
from acd.queue_log import QueueLogWriter
from acd.store import Dirty, StateStore, persist, rebuild
from tickets.model import Outcome
from tickets.store import TicketStore
from tongdai.errors import AmiError, StoreError

log = logging.getLogger(__name__)

WANTED_EVENTS = (
    "OriginateResponse",
    "Newchannel",
    "Hangup",
    "DeviceStateChange",
    "UserEvent",
    "DialBegin",
    "DialEnd",
    "HangupRequest",
)


class Ami(Protocol):
    async def action(self, name: str, /, **headers: Any) -> Any: ...


class Headers(Protocol):
    name: str

    def get(self, key: str, default: str | None = None, /) -> str | None: ...


@dataclass
class Leg:
    """What we know of a call's Asterisk channels."""

    caller_channel: str
    ticket: str | None
    agent_uid: str | None = None
    #: set when the IVR has finished with the caller (they are in the wait loop): only then
    #: may Bridge() take them; an agent chosen earlier is reserved (ringing) until then
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: the caller's own channel is dialling the agent (``dial_now``), not an Originate
    direct: bool = False


@dataclass(frozen=True)
class DirectDial:
    """What the caller's dialplan dials: ``Dial(<endpoint>,<ring_timeout_s>,...)``."""

    agent_id: str
    endpoint: str
    ring_timeout_s: int

    @property
    def dial_args(self) -> str:
        """``TONGDAI_DIAL``: the first two Dial() arguments (Asterisk splits after
        substitution, so one variable carries both)."""
        return f"{self.endpoint},{self.ring_timeout_s}"


#: ticket outcome for each way a queued call can end
_OUTCOME = {
    CallOutcome.ANSWERED: Outcome.ANSWERED,
    CallOutcome.ABANDONED_QUEUE: Outcome.ABANDONED_QUEUE,
    CallOutcome.TIMEOUT_QUEUE: Outcome.TIMEOUT_QUEUE,
    CallOutcome.CALLBACK_FAILED: Outcome.CALLBACK_FAILED,
    CallOutcome.CALLBACK_CANCELLED: Outcome.CALLBACK_CANCELLED,
}


def merge_dirty(into: Dirty, new: Dirty) -> None:
    """Fold ``new`` changes into ``into`` (not yet stored): latest call and agent wins, an
    ended call is deleted rather than saved."""
    calls = {c.uniqueid: c for c in into.calls}
    ended = dict.fromkeys(into.ended)
    for c in new.calls:
        calls[c.uniqueid] = c
        ended.pop(c.uniqueid, None)
    for uid in new.ended:
        calls.pop(uid, None)
        ended[uid] = None
    into.calls = list(calls.values())
    into.ended = list(ended)
    into.agents.update(new.agents)
    if new.rr is not None:
        into.rr = new.rr


def _seconds(hms: str) -> int:
    """``HH:MM:SS`` (CoreShowChannel's Duration) in seconds; 0 if unreadable."""
    try:
        h, m, sec = (int(x) for x in hms.split(":"))
    except ValueError:
        return 0
    return h * 3600 + m * 60 + sec


class Distributor:
    def __init__(
        self,
        dispatcher: Dispatcher,
        ami: Ami,
        tickets: TicketStore,
        queue_log: QueueLogWriter | None,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_s: float = 0.5,
    ) -> None:
        self.d = dispatcher
        self.ami = ami
        self.tickets = tickets
        self.queue_log = queue_log
        self.wall = wall
        self.tick_s = tick_s
        self.legs: dict[str, Leg] = {}
        self._agent_legs: dict[str, str] = {}  # agent leg uniqueid -> caller uniqueid
        self._leg_names: dict[str, str] = {}  # agent leg uniqueid -> channel name
        self.timed_out: set[str] = set()  # waited past max_wait_s: the wait loop says goodbye
        #: talked to an agent and the agent hung up: if the caller comes back to the wait loop
        #: (Bridge's F() did not move them), the loop sends them to the survey instead
        self.completed: set[str] = set()
        self.callbacks: CallbackDialer | None = None
        #: the live state's store (``acd.state_store``); None: in this process only
        self.store: StateStore | None = None
        self._persist_kick = asyncio.Event()
        self._pending = Dirty()  # changes not yet stored (kept across a failed write)
        #: who hung up first in a conversation ("caller"/"agent"), from AMI HangupRequest (the
        #: side whose phone sent the BYE); the Hangup events' order does not tell it
        self._first_gone: dict[str, str] = {}
        #: agents in wrap-up: (ticket of the call they wrap up, when wrap-up began)
        self._wrapups: dict[str, tuple[str, float]] = {}
        self._flush_scheduled = False
        self._kick = asyncio.Event()
        self._writes: asyncio.Queue[tuple[str, dict[str, object]]] = asyncio.Queue()
        self._tg: asyncio.TaskGroup | None = None
        #: seconds spent in each assign() (the benchmark's decision latency); bounded
        self.decisions: deque[float] = deque(maxlen=100_000)
        #: the same rounds in this thread's CPU time: tells the engine's own work apart from
        #: the operating system running something else (Asterisk) mid-decision on a busy host
        self.decisions_cpu: deque[float] = deque(maxlen=100_000)
        #: called with every dispatcher transition, in order, after queue_log and the ticket
        #: (the web app's live hub and metrics); must be quick and must not await
        self.listeners: list[Callable[[Event], None]] = []

    # -- from the IVR ------------------------------------------------------------------------

    def enqueue(
        self, uniqueid: str, channel: str, queue: str, caller: str | None, ticket: str | None
    ) -> bool:
        """Put a caller in line; False when the system is full (the IVR plays "busy")."""
        if queue not in self.d.cfg.queues:
            queue = "chung" if "chung" in self.d.cfg.queues else next(iter(self.d.cfg.queues))
        admission = self.d.call_arrived(uniqueid, queue, caller=caller, ticket=ticket, in_ivr=True)
        if admission is Admission.REJECTED_BUSY:
            return False
        self.legs[uniqueid] = Leg(channel, ticket)
        self._flush()
        return True

    def ivr_done(self, uniqueid: str) -> None:
        """The IVR has finished with the caller (they are in the wait loop): they may now be
        offered to an agent."""
        leg = self.legs.get(uniqueid)
        if leg is not None:
            leg.ready.set()
        call = self.d.calls.get(uniqueid)
        if call is not None and call.in_ivr:
            self.d.ivr_done(uniqueid)
            self._kick.set()

    def dial_now(self, uniqueid: str) -> DirectDial | None:
        """The IVR hands the caller over (instead of ``ivr_done``). If an agent is free for
        them this instant (or was already reserved for them while the IVR spoke), return the
        agent for the caller's own channel to dial; None: the caller waits in the loop."""
        leg = self.legs.get(uniqueid)
        call = self.d.calls.get(uniqueid)
        if leg is None or call is None or leg.ready.is_set():
            self.ivr_done(uniqueid)
            return None
        self.d.ivr_done(uniqueid)
        if call.state.value == "waiting":
            self._assign_now(defer=True)
        out: DirectDial | None = None
        if call.state.value == "offered" and leg.agent_uid is None and call.offered_to:
            agent = self.d.agents[call.offered_to]
            timeout = self.d.cfg.queues[call.queue].ring_timeout_s
            leg.direct = True  # before ready: a pending _ring() for this offer stands down
            out = DirectDial(agent.id, agent.config.endpoint, max(1, round(timeout)))
        self.ivr_done(uniqueid)
        return out

    def waiting(self, uniqueid: str) -> bool:
        return uniqueid in self.d.calls

    def request_callback(self, uniqueid: str) -> None:
        """The caller pressed the callback key: they keep their place and hang up."""
        self.d.request_callback(uniqueid)
        self._flush()

    def call_id_of(self, channel_uid: str) -> str:
        """The call a channel stands for (a called-back citizen's leg -> the original call)."""
        return self.callbacks.call_id_of(channel_uid) if self.callbacks else channel_uid

    def ticket_of(self, uniqueid: str) -> str | None:
        leg = self.legs.get(uniqueid)
        return leg.ticket if leg else None

    # -- the loop ----------------------------------------------------------------------------

    async def start(self, *, login_all: bool) -> None:
        """After AMI login: get the stored state back (an engine restart), learn which phones
        are busy, (lab) log every agent in, and take back the callers already waiting in the
        music loop."""
        if self.store is not None:
            await self._restore()
        if login_all:
            for a in self.d.agents.values():
                if a.state.value == "logged_out":
                    self.d.agent_login(a.id)
        await self.resync()

    async def resync(self) -> None:
        """Rebuild our view from Asterisk (after a start or an AMI reconnection): device
        states, callers waiting in ``[tongdai-acd-wait]`` (kept in the order they arrived),
        and calls we hold whose channel no longer exists (Asterisk restarted: they ended)."""
        try:
            states = await self.ami.action("DeviceStateList")
            channels = await self.ami.action("CoreShowChannels")
        except AmiError as exc:
            log.warning("resync from AMI failed: %s", exc)
            return
        for ev in getattr(states, "events", []):
            if ev.get("Device") and ev.get("State"):
                self._device(ev.get("Device") or "", ev.get("State") or "")
        alive = {ev.get("Uniqueid") or "" for ev in getattr(channels, "events", [])}
        for ev in getattr(channels, "events", []):  # restored calls learn their channel
            leg = self.legs.get(ev.get("Uniqueid") or "")
            if leg is not None and not leg.caller_channel:
                leg.caller_channel = ev.get("Channel") or ""
        for uid in [u for u in self.legs if u not in alive]:
            self._hangup(uid)
        waiting = [
            ev
            for ev in getattr(channels, "events", [])
            if ev.get("Context") == "tongdai-acd-wait"
            and (ev.get("Uniqueid") or "") not in self.d.calls
        ]
        waiting.sort(key=lambda ev: -_seconds(ev.get("Duration") or ""))  # longest wait first
        for ev in waiting:
            uid, channel = ev.get("Uniqueid") or "", ev.get("Channel") or ""
            queue = await self._getvar(channel, "TONGDAI_QUEUE") or "chung"
            ticket = await self._getvar(channel, "TONGDAI_TICKET")
            if self.enqueue(uid, channel, queue, ev.get("CallerIDNum"), ticket):
                self.ivr_done(uid)
                log.info("took back waiting caller %s (%s)", uid, queue)
        self._flush()

    async def _restore(self) -> None:
        """Load the stored calls and agents. Offers in flight when the engine stopped are
        withdrawn without blame (their Originate's outcome went to the old process); resync
        then gives each call its channel, or ends it if the caller left meanwhile."""
        assert self.store is not None
        try:
            n = await rebuild(self.store, self.d)
        except StoreError as exc:
            log.error("ACD state not restored (%s): rebuilding from Asterisk only", exc)
            return
        for c in list(self.d.calls.values()):
            leg = self.legs.setdefault(c.uniqueid, Leg("", c.ticket))
            leg.ready.set()
            self.d.ivr_done(c.uniqueid)
            if c.state.value == "offered":
                with contextlib.suppress(AcdError):
                    self.d.cancel_offer(c.uniqueid)
        self._flush()
        log.info("ACD state restored: %d calls", n)

    async def _persister(self) -> None:
        """Write what changed to the store, coalescing bursts; a failed write is kept and
        retried with the next changes."""
        assert self.store is not None
        while True:
            await self._persist_kick.wait()
            self._persist_kick.clear()
            merge_dirty(self._pending, self.d.take_dirty())
            try:
                await persist(self.store, self._pending)
            except StoreError as exc:
                log.warning("ACD state not stored yet (%s): retrying", exc)
                await asyncio.sleep(1.0)
                self._persist_kick.set()
                continue
            self._pending = Dirty()

    async def _getvar(self, channel: str, name: str) -> str | None:
        try:
            resp = await self.ami.action("Getvar", Channel=channel, Variable=name)
        except AmiError:
            return None
        value = resp.get("Value") if hasattr(resp, "get") else None
        return value or None

    async def run(self, events: Any) -> None:
        """Consume ``events`` (an AMI subscription) and distribute, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._writer())
            tg.create_task(self._ticker())
            tg.create_task(self._assigner())
            if self.store is not None:
                tg.create_task(self._persister())
                self._persist_kick.set()
            async for ev in events:
                self.handle(ev)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self._kick.set()

    async def _assigner(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            self._assign_now()

    def _assign_now(self, *, defer: bool = False) -> None:
        """One matching round: offers go to ``_ring`` tasks (an offer for a caller the IVR
        still holds waits there, and ``dial_now`` may take it over). ``defer``: write the
        transitions out once the caller's AGI has its answer (``dial_now``)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        offers = self.d.assign()
        self.decisions.append(time.perf_counter() - t0)
        self.decisions_cpu.append(time.thread_time() - c0)
        if defer:
            self._flush_soon()
        else:
            self._flush(kick=False)
        for offer in offers:
            if self._tg is not None:
                self._tg.create_task(self._ring(offer))

    async def _ring(self, offer: Offer) -> None:
        uid = offer.call_id
        leg = self.legs.get(uid)
        if leg is None:
            return
        if offer.callback:
            call = self.d.calls.get(uid)
            if self.callbacks is None or call is None or not call.callback_number:
                log.warning("callback %s cannot be dialled: withdrawing it", uid)
                with contextlib.suppress(AcdError):
                    self.d.callback_failed(uid)
                self._flush()
            elif offer.mode == "agent_first":  # the agent's phone first, then the citizen
                citizen = self.callbacks.channel_template.format(number=call.callback_number)
                await self._originate_agent(
                    uid,
                    offer.agent,
                    offer.ring_timeout_s,
                    context="tongdai-callback-agent",
                    extra=[f"TONGDAI_CITIZEN={citizen}"],
                )
            else:
                await self.callbacks.dial(offer)
            return
        try:
            async with asyncio.timeout(120):
                await leg.ready.wait()
        except TimeoutError:
            log.warning("IVR never released %s: withdrawing the offer", uid)
        if leg.direct:
            return  # the caller's own channel dials this agent (dial_now)
        call = self.d.calls.get(uid)
        if call is None or call.offered_to != offer.agent.id or call.state.value != "offered":
            return  # the caller left meanwhile; the dispatcher already freed the agent
        if not leg.ready.is_set():
            with contextlib.suppress(AcdError):
                self.d.cancel_offer(uid)
            self._flush()
            return
        await self._originate_agent(uid, offer.agent, offer.ring_timeout_s)

    def ring_agent(self, uid: str, agent: Agent, queue: str) -> None:
        """Ring the agent reserved for ``uid`` now (a callback's citizen has answered)."""
        if self._tg is not None:
            timeout = self.d.cfg.queues[queue].ring_timeout_s
            self._tg.create_task(self._originate_agent(uid, agent, timeout))

    async def _originate_agent(
        self,
        uid: str,
        agent: Agent,
        ring_timeout_s: float,
        *,
        context: str = "tongdai-acd-connect",
        extra: list[str] | None = None,
    ) -> None:
        leg = self.legs[uid]
        agent_uid = f"tongdai-acd-{secrets.token_hex(6)}"
        leg.agent_uid = agent_uid
        # OriginateResponse carries the new channel's Uniqueid, which we chose (ChannelId)
        self._agent_legs[agent_uid] = uid
        call = self.d.calls.get(uid)
        caller = (call.caller if call else None) or ""
        try:
            await self.ami.action(
                "Originate",
                Channel=agent.config.endpoint,
                Context=context,
                Exten="s",
                Priority="1",
                Timeout=str(int(ring_timeout_s * 1000)),
                CallerID=f'"{caller}" <{caller}>',
                ChannelId=agent_uid,
                Async="true",
                Variable=[
                    f"TONGDAI_CALLER_CHAN={leg.caller_channel}",
                    f"TONGDAI_TICKET={leg.ticket or ''}",
                    f"TONGDAI_CALL={uid}",
                    *(extra or []),
                ],
            )
        except (AmiError, ValueError) as exc:
            log.warning("could not ring %s for %s: %s", agent.id, uid, exc)
            self._forget_offer(uid)
            with contextlib.suppress(AcdError):
                self.d.cancel_offer(uid)
            self._flush()

    def _forget_offer(self, uid: str) -> None:
        leg = self.legs.get(uid)
        if leg is None:
            return
        self._agent_legs.pop(leg.agent_uid or "", None)
        self._leg_names.pop(leg.agent_uid or "", None)
        leg.agent_uid = None

    # -- AMI events --------------------------------------------------------------------------

    def handle(self, ev: Headers) -> None:
        """One AMI event, synchronously (the dispatcher never awaits)."""
        try:
            if ev.name == "OriginateResponse":
                self._originate_response(ev)
            elif ev.name == "Newchannel":
                uid = ev.get("Uniqueid") or ""
                if uid in self._agent_legs:
                    self._leg_names[uid] = ev.get("Channel") or ""
            elif ev.name == "Hangup":
                self._hangup(ev.get("Uniqueid") or "")
            elif ev.name == "HangupRequest":
                self._hangup_request(ev.get("Uniqueid") or "")
            elif ev.name == "DialBegin":
                self._dial_begin(ev)
            elif ev.name == "DialEnd":
                self._dial_end(ev)
            elif ev.name == "DeviceStateChange":
                self._device(ev.get("Device") or "", ev.get("State") or "")
            elif ev.name == "UserEvent" and (ev.get("UserEvent") or "") == "TongdaiAgent":
                self._agent_command(ev)
            elif ev.name in ("__connected__", "__overflow__") and self._tg is not None:
                self._tg.create_task(self.resync())  # Asterisk may have restarted meanwhile
        except AcdError as exc:
            log.warning("%s ignored: %s", ev.name, exc)
        self._flush()

    def _originate_response(self, ev: Headers) -> None:
        if self.callbacks is not None and self.callbacks.originate_response(ev):
            return
        agent_uid = ev.get("Uniqueid") or ""
        uid = self._agent_legs.get(agent_uid)
        if uid is None or uid not in self.d.calls:
            return
        if (ev.get("Response") or "").lower() == "success":
            self.d.answered(uid, peer=agent_uid)
        else:
            self._forget_offer(uid)
            self.d.ring_no_answer(uid)

    def _direct_leg(self, ev: Headers) -> tuple[str, Leg] | None:
        uid = ev.get("Uniqueid") or ""
        leg = self.legs.get(uid) if uid else None
        return (uid, leg) if leg is not None and leg.direct else None

    def _dial_begin(self, ev: Headers) -> None:
        """The caller's channel started dialling its agent: learn the agent leg. (Or, for an
        agent-first callback, the agent's channel dials the citizen: the citizen's leg then
        stands for the call.)"""
        uid = self._agent_legs.get(ev.get("Uniqueid") or "")
        if uid is not None:
            citizen = ev.get("DestUniqueid") or ""
            if self.callbacks is not None and citizen:
                self.callbacks.legs[citizen] = uid
            leg = self.legs.get(uid)
            if leg is not None:
                leg.caller_channel = ev.get("DestChannel") or leg.caller_channel
            return
        found = self._direct_leg(ev)
        if found is None:
            return
        uid, leg = found
        agent_uid = ev.get("DestUniqueid") or ""
        if agent_uid:
            leg.agent_uid = agent_uid
            self._agent_legs[agent_uid] = uid
            self._leg_names[agent_uid] = ev.get("DestChannel") or ""

    def _dial_end(self, ev: Headers) -> None:
        """How the caller's Dial() of its agent ended. ANSWER: connected. CANCEL: the caller
        hung up while it rang (an abandon, not the agent's fault). Anything else (NOANSWER,
        BUSY, CHANUNAVAIL, CONGESTION): ring-no-answer; the caller goes on to the wait loop.
        For an agent-first callback (the agent's channel dialled the citizen): answered =
        connected, anything else = the callback failed (retried later, or ends)."""
        uid = self._agent_legs.get(ev.get("Uniqueid") or "")
        if uid is not None:
            call = self.d.calls.get(uid)
            if call is not None and call.state.value == "callback_dialing":
                if (ev.get("DialStatus") or "").upper() == "ANSWER":
                    self.d.callback_answered(uid)
                else:
                    self.d.callback_failed(uid)
            return
        found = self._direct_leg(ev)
        if found is None:
            return
        uid, leg = found
        leg.direct = False
        call = self.d.calls.get(uid)
        if call is None or call.state.value != "offered":
            return
        status = (ev.get("DialStatus") or "").upper()
        if status == "ANSWER":
            self.d.answered(uid, peer=ev.get("DestUniqueid") or leg.agent_uid or "")
        elif status == "CANCEL":
            self._forget_offer(uid)
            self.d.call_left(uid)
        else:
            self._forget_offer(uid)
            self.d.ring_no_answer(uid)

    def _hangup_request(self, uniqueid: str) -> None:
        """A phone hung up (remote BYE): remember which side of a conversation went first."""
        if uniqueid in self._agent_legs:
            call_id, side = self._agent_legs[uniqueid], "agent"
        else:
            call_id, side = self.call_id_of(uniqueid), "caller"
        call = self.d.calls.get(call_id)
        if call is not None and call.state.value == "connected":
            self._first_gone.setdefault(call_id, side)

    def _hangup(self, uniqueid: str) -> None:
        if self.callbacks is not None:  # a called-back citizen's leg stands for the call
            uniqueid = self.callbacks.call_id_of(uniqueid)
            self.callbacks.legs = {k: v for k, v in self.callbacks.legs.items() if v != uniqueid}
        if uniqueid in self._agent_legs:  # the agent's leg ended
            uid = self._agent_legs.pop(uniqueid)
            self._leg_names.pop(uniqueid, None)
            call = self.d.calls.get(uid)
            if call is not None and call.state.value == "connected":
                self.d.call_completed(uid, self._first_gone.pop(uid, "agent"))
            return
        leg = self.legs.get(uniqueid)
        self.timed_out.discard(uniqueid)
        self.completed.discard(uniqueid)
        if leg is None:
            return
        call = self.d.calls.get(uniqueid)
        if call is not None:
            if call.state.value == "connected":
                self.d.call_completed(uniqueid, self._first_gone.pop(uniqueid, "caller"))
            elif call.in_line and call.on_line:
                self._cancel_ringing(leg)
                self.d.call_left(uniqueid)
        if uniqueid not in self.d.calls:
            self._flush()  # the ticket learns how the call ended before the leg is forgotten
            self.legs.pop(uniqueid, None)
            self._first_gone.pop(uniqueid, None)
            self._write(leg.ticket, ended_at=self.wall())

    def _cancel_ringing(self, leg: Leg) -> None:
        """The caller left while their agent's phone rings: stop ringing it."""
        name = self._leg_names.get(leg.agent_uid or "")
        if name and self._tg is not None:
            self._tg.create_task(self._hangup_leg(name))

    async def _hangup_leg(self, channel: str) -> None:
        with contextlib.suppress(AmiError):
            await self.ami.action("Hangup", Channel=channel, Cause="16")

    def _device(self, device: str, state: str) -> None:
        from acd.agent import device_is_free

        for a in self.d.agents.values():
            if a.config.endpoint == device:
                in_use = not device_is_free(state)
                if in_use != a.device_in_use:
                    self.d.agent_device(a.id, in_use)
                return

    def _agent_command(self, ev: Headers) -> None:
        """``UserEvent(TongdaiAgent,Agent: ...,Op: login|logout|pause|unpause,Reason: ...)``:
        from ``tongdai agent ...`` (AMI UserEvent action) or a phone's feature code."""
        agent = (ev.get("Agent") or "").removeprefix("PJSIP/")
        op = (ev.get("Op") or "").lower()
        if op == "login":
            self.d.agent_login(agent)
        elif op == "logout":
            self.d.agent_logout(agent)
        elif op == "pause":
            self.d.agent_pause(agent, ev.get("Reason") or "break")
        elif op == "unpause":
            self.d.agent_unpause(agent)
        else:
            raise AcdError(f"unknown agent operation {op!r}")

    # -- outputs -----------------------------------------------------------------------------

    def flush(self) -> None:
        self._flush()

    def _flush_soon(self) -> None:
        """``_flush`` at the event loop's next turn (once per turn): the caller of this
        (an AGI handler) sends its answer to Asterisk first. Transitions keep their order:
        every flush drains the dispatcher's events in sequence."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): now
            self._flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self, *, kick: bool = True) -> None:
        """Send the dispatcher's transitions to queue_log and the tickets, in order; ``kick``
        wakes the assigner (something changed that may let a call reach an agent)."""
        for e in self.d.drain_events():
            if self.queue_log is not None:
                self.queue_log.write(e)
            if isinstance(e, CallTransition):
                self._ticket_for(e)
            elif isinstance(e, Transition):
                self._acw_for(e)
            for listener in self.listeners:
                try:
                    listener(e)
                except Exception:  # a broken observer must not stop the distribution
                    log.exception("ACD listener %r failed", listener)
        if self.store is not None:
            self._persist_kick.set()
        if kick:
            self._kick.set()

    def _ticket_for(self, e: CallTransition) -> None:
        leg = self.legs.get(e.call_id)
        ticket = leg.ticket if leg else None
        if e.event == "complete":
            self.completed.add(e.call_id)
        if e.event == "enter":
            self._write(ticket, queue=e.queue, queued_at=self.wall())
        elif e.event == "connect" or (
            e.event == "callback_answered" and e.to_state is CallState.CONNECTED
        ):  # the second: an agent-first callback, the citizen has answered the agent's call
            self._write(ticket, answered_at=self.wall(), agent=e.agent, outcome=Outcome.ANSWERED)
        elif e.outcome is not None and e.outcome is not CallOutcome.ANSWERED:
            if e.outcome is CallOutcome.TIMEOUT_QUEUE:
                self.timed_out.add(e.call_id)
            self._write(ticket, outcome=_OUTCOME[e.outcome])

    def _acw_for(self, e: Transition) -> None:
        """After-call work on the ticket: the seconds the agent spent in wrap-up after it
        (0 when the queue has none), written when wrap-up ends however it ends."""
        if e.event == "call_ended" and e.call_id:
            leg = self.legs.get(e.call_id)
            ticket = leg.ticket if leg else None
            if ticket and e.to_state is AgentState.WRAP_UP:
                self._wrapups[e.agent] = (ticket, e.at)
            elif ticket:
                self._write(ticket, acw_seconds=0)
        elif e.from_state is AgentState.WRAP_UP and e.to_state is not AgentState.WRAP_UP:
            found = self._wrapups.pop(e.agent, None)
            if found is not None:
                self._write(found[0], acw_seconds=max(0, round(e.at - found[1])))

    def _write(self, ticket: str | None, **changes: object) -> None:
        if ticket:
            self._writes.put_nowait((ticket, changes))

    async def _writer(self) -> None:
        while True:
            code, changes = await self._writes.get()
            try:
                await self.tickets.update(code, **changes)
            except (StoreError, KeyError, ValueError) as exc:
                log.error("ticket %s not updated (%s): %s", code, changes, exc)

    def dump_decisions(self, path: Path) -> None:
        """Write ``decisions`` (seconds per ``assign`` round) as JSON for ``tongdai bench acd``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        body = {"decisions_s": list(self.decisions), "decisions_cpu_s": list(self.decisions_cpu)}
        tmp.write_text(json.dumps(body), encoding="utf-8")
        tmp.replace(path)

    def snapshot(self) -> Mapping[str, object]:
        """A small view for logs and the status command."""
        return {
            "waiting": sum(1 for c in self.d.calls.values() if c.in_line),
            "agents": {a.id: a.state.value for a in self.d.agents.values()},
        }
