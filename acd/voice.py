"""The Asterisk voice adapter: carries out the router's call offers over AMI and FastAGI, and
feeds Asterisk's events back (``acd.voice_events``). It translates; the dispatcher decides.

How a call is distributed (``distribution = "engine"``):

1. The IVR (same process) calls ``enqueue``: the caller holds a place in line, but no agent is
   reserved while the IVR still speaks to them. The dialplan then holds the caller in
   ``[tongdai-acd-wait]`` (music on hold, with an AGI every N seconds for announcements).
2. Direct dial (the fast path): when the IVR hands the caller over (``dial_now``) and an agent
   is free, the decision is made right there, inside the caller's AGI session, and the
   caller's own channel ``Dial()``s the agent (``[tongdai-acd-dial]``): no AMI round trip
   between the decision and the agent's phone ringing. We follow that Dial over AMI
   (``DialBegin``/``DialEnd`` of the caller's channel): not answered = ring-no-answer, the
   caller goes on to the wait loop and keeps their place.
3. Otherwise, when a round pairs a waiting call with a free agent (``ring``), we
   ``Originate`` the agent's endpoint into ``[tongdai-acd-connect]`` with ``ChannelId`` set,
   so we know the agent leg's uniqueid before it exists. On answer, that context runs
   ``Bridge(<caller channel>)``, which pulls the caller out of the music loop.
   ``OriginateResponse`` Failure = ring-no-answer. We chose Originate+Bridge over Redirect so
   the caller never leaves the music until the agent has really answered, and a ringing agent
   can be cancelled (AMI ``Hangup`` on the known leg) without touching the caller.
4. AMI ``Hangup`` of the caller or the agent leg ends the conversation (COMPLETECALLER /
   COMPLETEAGENT) or the wait (ABANDON); ``DeviceStateChange`` keeps busy phones out.
5. Callbacks (``acd.callbacks``): a caller who pressed the callback key hangs up and keeps
   their place. Caller first: when their turn comes the citizen is dialled into
   ``[tongdai-callback]`` (the agent reserved, not rung) and, once they answer, the agent is
   rung and bridged as in 3. Agent first: the agent is originated into
   ``[tongdai-callback-agent]``, whose channel then dials the citizen (``TONGDAI_CITIZEN``).

At start (``acd.service``): the stored calls get their legs back (``restored``), then
``resync`` checks them against Asterisk: device states, callers still in the wait loop (taken
back in the order they arrived), calls whose channel is gone (ended as abandoned).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterable, Coroutine, Sequence
from typing import Any

from acd.agent import AcdError, Agent, Transition
from acd.callbacks import CallbackDialer
from acd.calls import Admission, CallOutcome, CallState, CallTransition, Offer
from acd.legs import DirectDial, Leg, Legs
from acd.recorder import Recorder
from acd.router import Router
from acd.voice_events import CallEvents
from acd.waits import WaitNews, wait_news
from pbx.ami_messages import HeaderValue
from pbx.channels import channel_started
from pbx.ports import AmiActions, AmiHeaders
from tongdai.errors import AmiError

log = logging.getLogger(__name__)

_S = CallState
#: where callers wait for an agent of ours: the music loop, and ``[tongdai-rejoin]`` (the
#: engine that served them died; they ask every second for the next one)
WAITING_CONTEXTS = ("tongdai-acd-wait", "tongdai-rejoin")


def _seconds(hms: str) -> int:
    """``HH:MM:SS`` (CoreShowChannel's Duration) in seconds; 0 if unreadable."""
    try:
        h, m, sec = (int(x) for x in hms.split(":"))
    except ValueError:
        return 0
    return h * 3600 + m * 60 + sec


class VoiceAdapter:
    def __init__(self, router: Router, ami: AmiActions, recorder: Recorder | None = None) -> None:
        self.router = router
        self.d = router.d
        self.ami = ami
        self.recorder = recorder
        self.legs = Legs()
        self._tg: asyncio.TaskGroup | None = None
        self._early: list[Coroutine[Any, Any, None]] = []
        self.events = CallEvents(router, self.legs, ami, recorder, self._spawn, self._resync_soon)
        router.voice = self
        #: the stored state is back and Asterisk was asked what is up (``AcdService.start``):
        #: only then are callers a crashed engine lost taken back (``ivr.rejoin``)
        self.started = False

    # -- set-up ------------------------------------------------------------------------------

    @property
    def callbacks(self) -> CallbackDialer | None:
        return self.events.callbacks

    def enable_callbacks(self, channel_template: str, greeting: str) -> CallbackDialer:
        """Dial waiting callers back (``acd.callback_channel``, e.g. ``PJSIP/{number}@...``)."""
        self.events.callbacks = CallbackDialer(self, channel_template, greeting)
        return self.events.callbacks

    @property
    def completed(self) -> set[str]:
        return self.events.completed

    @property
    def timed_out(self) -> set[str]:
        return self.events.timed_out

    # -- from the IVR ------------------------------------------------------------------------

    def enqueue(
        self,
        uniqueid: str,
        channel: str,
        queue: str,
        caller: str | None,
        ticket: str | None,
        *,
        entered_at: float | None = None,
        seq: int | None = None,
    ) -> bool:
        """Put a caller in line; False when the system is full (the IVR plays "busy").
        ``entered_at``/``seq``: a caller taken back after a crash, or one another engine took
        in (``acd.arrivals``), keeps their place (``call_arrived``)."""
        queue = self.d.cfg.queue_or_general(queue)
        admission = self.d.call_arrived(
            uniqueid,
            queue,
            caller=caller,
            ticket=ticket,
            in_ivr=True,
            entered_at=entered_at,
            seq=seq,
        )
        if admission is Admission.REJECTED_BUSY:
            return False
        self.legs.calls[uniqueid] = Leg(channel, ticket)
        self.router.flush()
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
            self.router.kick()

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
        if call.state is _S.WAITING:
            self.router.assign_now(defer=True)
        out: DirectDial | None = None
        if call.state is _S.OFFERED and leg.agent_uid is None and call.offered_to:
            agent = self.d.agents[call.offered_to]
            timeout = self.d.cfg.queues[call.queue].ring_timeout_s
            leg.direct = True  # before ready: a pending _ring() for this offer stands down
            out = DirectDial(agent.id, agent.config.endpoint, max(1, round(timeout)))
        self.ivr_done(uniqueid)
        return out

    def waiting(self, uniqueid: str) -> bool:
        return uniqueid in self.d.calls

    def wait_news(self, uniqueid: str) -> WaitNews | None:
        """What the wait loop's announcement says to this caller now."""
        return wait_news(self.d, uniqueid)

    @property
    def callback_key(self) -> str:
        return self.d.cfg.callback.key

    def may_call_back(self, uniqueid: str) -> bool:
        return self.d.may_offer_callback(uniqueid)

    def request_callback(self, uniqueid: str) -> None:
        """The caller pressed the callback key: they keep their place and hang up."""
        try:
            self.d.request_callback(uniqueid)
        finally:
            self.router.flush()

    def call_id_of(self, channel_uid: str) -> str:
        """The call a channel stands for (a called-back citizen's leg -> the original call)."""
        return self.events.call_id_of(channel_uid)

    def ticket_of(self, uniqueid: str) -> str | None:
        leg = self.legs.get(uniqueid)
        return leg.ticket if leg else None

    # -- from the router ---------------------------------------------------------------------

    def ring(self, offer: Offer) -> None:
        self._spawn(self._ring(offer))

    def on_event(self, event: Transition | CallTransition) -> None:
        if not isinstance(event, CallTransition):
            return
        if event.event == "complete":
            self.completed.add(event.call_id)
        elif event.outcome is CallOutcome.TIMEOUT_QUEUE:
            self.timed_out.add(event.call_id)

    async def _ring(self, offer: Offer) -> None:
        uid = offer.call_id
        leg = self.legs.get(uid)
        if leg is None:
            return
        if offer.callback:
            await self._call_back(offer)
            return
        try:
            async with asyncio.timeout(120):
                await leg.ready.wait()
        except TimeoutError:
            log.warning("IVR never released %s: withdrawing the offer", uid)
        if leg.direct:
            return  # the caller's own channel dials this agent (dial_now)
        call = self.d.calls.get(uid)
        if call is None or call.offered_to != offer.agent.id or call.state is not _S.OFFERED:
            return  # the caller left meanwhile; the dispatcher already freed the agent
        if not leg.ready.is_set():
            with contextlib.suppress(AcdError):
                self.d.cancel_offer(uid)
            self.router.flush()
            return
        await self._originate_agent(uid, offer.agent, offer.ring_timeout_s)

    async def _call_back(self, offer: Offer) -> None:
        uid, call = offer.call_id, offer.call
        if self.callbacks is None or not call.callback_number:
            log.warning("callback %s cannot be dialled: withdrawing it", uid)
            self.callback_failed(uid)
        elif offer.mode == "agent_first":  # the agent's phone first, then the citizen
            citizen = self.callbacks.citizen_channel(call.callback_number)
            await self._originate_agent(
                uid,
                offer.agent,
                offer.ring_timeout_s,
                context="tongdai-callback-agent",
                extra=[f"TONGDAI_CITIZEN={citizen}"],
            )
        else:
            await self.callbacks.dial(offer)

    async def _originate_agent(
        self,
        uid: str,
        agent: Agent,
        ring_timeout_s: float,
        *,
        context: str = "tongdai-acd-connect",
        extra: list[str] | None = None,
    ) -> None:
        leg = self.legs.calls[uid]
        # OriginateResponse carries the new channel's Uniqueid, which we chose (ChannelId)
        agent_uid = f"tongdai-acd-{secrets.token_hex(6)}"
        self.legs.link_agent(uid, agent_uid)
        call = self.d.calls.get(uid)
        caller = (call.caller if call else None) or ""
        try:
            await self.originate(
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
            self.legs.forget_offer(uid)
            with contextlib.suppress(AcdError):
                self.d.cancel_offer(uid)
            self.router.flush()

    # -- the callback dialer's host (acd.callbacks.CallbackHost) ------------------------------

    async def originate(self, **headers: HeaderValue) -> None:
        await self.ami.action("Originate", action_timeout=None, **headers)

    def leg(self, call_id: str) -> Leg | None:
        return self.legs.get(call_id)

    def callback_answered(self, call_id: str, channel: str) -> None:
        leg = self.legs.get(call_id)
        if leg is not None:
            leg.caller_channel = channel or leg.caller_channel
            leg.ready.set()
        self.d.callback_answered(call_id)
        call = self.d.calls.get(call_id)
        if call is not None and call.offered_to is not None:
            timeout = self.d.cfg.queues[call.queue].ring_timeout_s
            agent = self.d.agents[call.offered_to]
            self._spawn(self._originate_agent(call_id, agent, timeout))

    def callback_failed(self, call_id: str) -> None:
        with contextlib.suppress(AcdError):
            self.d.callback_failed(call_id)
        self.router.flush()

    # -- start and run -----------------------------------------------------------------------

    def restored(self) -> None:
        """After the state store gave calls back: each gets its legs (its channel comes with
        ``resync``). Offers in flight when the engine stopped are withdrawn without blame
        (their Originate's outcome went to the old process)."""
        for c in list(self.d.calls.values()):
            leg = self.legs.add(c.uniqueid, Leg("", c.ticket))
            leg.ready.set()
            self.d.ivr_done(c.uniqueid)
            if c.state is _S.OFFERED:
                with contextlib.suppress(AcdError):
                    self.d.cancel_offer(c.uniqueid)
        self.router.flush()

    async def resync(self) -> None:
        """Rebuild our view from Asterisk (after a start or an AMI reconnection): device
        states; calls we hold whose channel no longer exists (they ended while we were away);
        callers already talking to an agent (``_resume_bridged``: answered while we were away,
        never offered again); callers waiting in ``WAITING_CONTEXTS`` that we do not hold,
        taken back in the order they arrived (a caller in ``[tongdai-rejoin]`` with no ticket
        yet is left to its rejoin AGI, which opens the ticket)."""
        try:
            states = await self.ami.action("DeviceStateList")
            channels = await self.ami.action("CoreShowChannels")
        except AmiError as exc:
            log.warning("resync from AMI failed: %s", exc)
            return
        for ev in states.events:
            if ev.get("Device") and ev.get("State"):
                self.events.device(ev.get("Device") or "", ev.get("State") or "")
        alive = {ev.get("Uniqueid") or "" for ev in channels.events}
        for ev in channels.events:  # restored calls learn their channel
            leg = self.legs.get(ev.get("Uniqueid") or "")
            if leg is not None and not leg.caller_channel:
                leg.caller_channel = ev.get("Channel") or ""
        for uid in [u for u in self.legs.calls if u not in alive]:
            self.events.hangup(uid)
        self._resume_bridged(channels.events)
        waiting = [
            ev
            for ev in channels.events
            if ev.get("Context") in WAITING_CONTEXTS
            and not ev.get("BridgeId")  # Bridge() took them out of the music: not waiting
            and (ev.get("Uniqueid") or "") not in self.d.calls
        ]
        waiting.sort(key=lambda ev: -_seconds(ev.get("Duration") or ""))  # longest wait first
        for ev in waiting:
            await self._take_back(ev)
        self.router.flush()

    def _resume_bridged(self, channels: Sequence[AmiHeaders]) -> None:
        """Calls of ours whose caller is in a bridge with another channel (an agent's phone)
        are connected, whatever our stored state says; their agent leg is linked so that its
        hang-up ends the conversation."""
        bridges: dict[str, list[AmiHeaders]] = {}
        for ev in channels:
            if ev.get("BridgeId"):
                bridges.setdefault(ev.get("BridgeId") or "", []).append(ev)
        endpoints = {a.config.endpoint: a.id for a in self.d.agents.values()}
        for members in bridges.values():
            for ev in members:
                uid = ev.get("Uniqueid") or ""
                call, leg = self.d.calls.get(uid), self.legs.get(uid)
                peer = next((m for m in members if m is not ev), None)
                if call is None or leg is None or peer is None:
                    continue
                peer_uid, peer_chan = peer.get("Uniqueid") or "", peer.get("Channel") or ""
                if call.state is not _S.CONNECTED:
                    agent = endpoints.get(peer_chan.rsplit("-", 1)[0])
                    try:
                        self.d.resume_connected(uid, agent, peer_uid)
                    except AcdError as exc:
                        log.warning("bridged call %s not resumed: %s", uid, exc)
                        continue
                    log.info("call %s was answered while we were away (%s)", uid, peer_chan)
                if leg.agent_uid is None and peer_uid:
                    self.legs.link_agent(uid, peer_uid, peer_chan)

    async def _take_back(self, ev: AmiHeaders) -> None:
        uid, channel = ev.get("Uniqueid") or "", ev.get("Channel") or ""
        queue = await self._getvar(channel, "TONGDAI_QUEUE") or "chung"
        ticket = await self._getvar(channel, "TONGDAI_TICKET")
        if uid in self.d.calls:  # taken in while we asked (the IVR's hand-over, a resync)
            return
        if ev.get("Context") == "tongdai-rejoin" and not ticket:
            return  # no ticket yet: its rejoin AGI opens one and takes the caller in then
        arrived = channel_started(uid)
        if self.enqueue(uid, channel, queue, ev.get("CallerIDNum"), ticket, entered_at=arrived):
            self.ivr_done(uid)
            log.info("took back waiting caller %s (%s)", uid, queue)

    async def _getvar(self, channel: str, name: str) -> str | None:
        try:
            resp = await self.ami.action("Getvar", Channel=channel, Variable=name)
        except AmiError:
            return None
        return resp.get("Value") or None

    async def run(self, events: AsyncIterable[AmiHeaders]) -> None:
        """Consume ``events`` (an AMI subscription to ``voice_events.WANTED_EVENTS``) until
        cancelled; this adapter's tasks (ringing, hanging up, resync) live in here."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            early, self._early = self._early, []
            for coro in early:
                tg.create_task(coro)
            try:
                async for ev in events:
                    self.events.handle(ev)
            finally:
                self._tg = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._tg is not None:
            self._tg.create_task(coro)
        else:  # before run(): started as soon as it runs
            self._early.append(coro)

    def _resync_soon(self) -> None:
        self._spawn(self.resync())
