"""Asterisk's AMI events, turned into the dispatcher's call and agent events (voice adapter).

``CallEvents.handle`` takes one event at a time, synchronously, in Asterisk's order, and ends
with a flush of the router (the dispatcher never awaits):

    OriginateResponse  our Originate of an agent: Success = answered (CONNECT), else
                       ring-no-answer; or a callback's citizen leg (``acd.callbacks``)
    Newchannel         learn the channel name of an agent leg we originated (to cancel it)
    DialBegin/DialEnd  the caller's own Dial() of its agent (direct dial): ANSWER = connected,
                       CANCEL = the caller hung up while it rang (abandon, no blame), anything
                       else = ring-no-answer; for an agent-first callback, the agent's channel
                       dialling the citizen
    HangupRequest      which side of a conversation hung up first (the phone that sent BYE)
    Hangup             either leg: the end of the conversation (COMPLETECALLER/COMPLETEAGENT)
                       or of the wait (ABANDON); the ticket gets ``ended_at``
    DeviceStateChange  phones on any call are not rung
    UserEvent          ``TongdaiAgent``: login / logout / pause / unpause from ``tongdai agent``
                       or a phone's feature code
    __connected__      AMI (re)connected: Asterisk may have restarted, resync
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from acd.agent import AcdError, device_is_free
from acd.callbacks import CallbackDialer
from acd.calls import CallState
from acd.legs import Leg, Legs
from acd.recorder import Recorder
from acd.router import Router
from pbx.ports import AmiActions, AmiHeaders
from tongdai.errors import AmiError

log = logging.getLogger(__name__)

_S = CallState

#: the AMI events the voice adapter subscribes to
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

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class CallEvents:
    def __init__(
        self,
        router: Router,
        legs: Legs,
        ami: AmiActions,
        recorder: Recorder | None,
        spawn: Spawn,
        on_reconnect: Callable[[], None],
    ) -> None:
        self.router = router
        self.d = router.d
        self.legs = legs
        self.ami = ami
        self.recorder = recorder
        self.spawn = spawn
        self.on_reconnect = on_reconnect
        self.callbacks: CallbackDialer | None = None
        self.timed_out: set[str] = set()  # waited past max_wait_s: the wait loop says goodbye
        #: talked to an agent and the agent hung up: if the caller comes back to the wait loop
        #: (Bridge's F() did not move them), the loop sends them to the survey instead
        self.completed: set[str] = set()

    def call_id_of(self, channel_uid: str) -> str:
        """The call a channel stands for (a called-back citizen's leg -> the original call)."""
        return self.callbacks.call_id_of(channel_uid) if self.callbacks else channel_uid

    def handle(self, ev: AmiHeaders) -> None:
        """One AMI event, synchronously (the dispatcher never awaits)."""
        try:
            name = ev.name
            if name == "OriginateResponse":
                self._originate_response(ev)
            elif name == "Newchannel":
                uid = ev.get("Uniqueid") or ""
                if uid in self.legs.agent_legs:
                    self.legs.names[uid] = ev.get("Channel") or ""
            elif name == "Hangup":
                self.hangup(ev.get("Uniqueid") or "")
            elif name == "HangupRequest":
                self._hangup_request(ev.get("Uniqueid") or "")
            elif name == "DialBegin":
                self._dial_begin(ev)
            elif name == "DialEnd":
                self._dial_end(ev)
            elif name == "DeviceStateChange":
                self.device(ev.get("Device") or "", ev.get("State") or "")
            elif name == "UserEvent" and (ev.get("UserEvent") or "") == "TongdaiAgent":
                self._agent_command(ev)
            elif name in ("__connected__", "__overflow__"):
                self.on_reconnect()  # Asterisk may have restarted meanwhile
        except AcdError as exc:
            log.warning("%s ignored: %s", ev.name, exc)
        self.router.flush()

    def _originate_response(self, ev: AmiHeaders) -> None:
        if self.callbacks is not None and self.callbacks.originate_response(ev):
            return
        agent_uid = ev.get("Uniqueid") or ""
        uid = self.legs.agent_legs.get(agent_uid)
        if uid is None or uid not in self.d.calls:
            return
        if (ev.get("Response") or "").lower() == "success":
            self.d.answered(uid, peer=agent_uid)
        else:
            self.legs.forget_offer(uid)
            self.d.ring_no_answer(uid)

    def _direct_leg(self, ev: AmiHeaders) -> tuple[str, Leg] | None:
        uid = ev.get("Uniqueid") or ""
        leg = self.legs.get(uid) if uid else None
        return (uid, leg) if leg is not None and leg.direct else None

    def _dial_begin(self, ev: AmiHeaders) -> None:
        """The caller's channel started dialling its agent: learn the agent leg. (Or, for an
        agent-first callback, the agent's channel dials the citizen: the citizen's leg then
        stands for the call.)"""
        uid = self.legs.agent_legs.get(ev.get("Uniqueid") or "")
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
        uid, _ = found
        agent_uid = ev.get("DestUniqueid") or ""
        if agent_uid:
            self.legs.link_agent(uid, agent_uid, ev.get("DestChannel") or "")

    def _dial_end(self, ev: AmiHeaders) -> None:
        """How a Dial() of ours ended (see the module's table)."""
        uid = self.legs.agent_legs.get(ev.get("Uniqueid") or "")
        if uid is not None:  # the agent's channel dialled a called-back citizen
            call = self.d.calls.get(uid)
            if call is not None and call.state is _S.CALLBACK_DIALING:
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
        if call is None or call.state is not _S.OFFERED:
            return
        status = (ev.get("DialStatus") or "").upper()
        if status == "ANSWER":
            self.d.answered(uid, peer=ev.get("DestUniqueid") or leg.agent_uid or "")
        elif status == "CANCEL":
            self.legs.forget_offer(uid)
            self.d.call_left(uid)
        else:
            self.legs.forget_offer(uid)
            self.d.ring_no_answer(uid)

    def _hangup_request(self, uniqueid: str) -> None:
        """A phone hung up (remote BYE): remember which side of a conversation went first."""
        if uniqueid in self.legs.agent_legs:
            call_id, side = self.legs.agent_legs[uniqueid], "agent"
        else:
            call_id, side = self.call_id_of(uniqueid), "caller"
        call = self.d.calls.get(call_id)
        if call is not None and call.state is _S.CONNECTED:
            self.legs.first_gone.setdefault(call_id, side)

    def hangup(self, uniqueid: str) -> None:
        """A channel of ours is gone (also for calls whose channel resync no longer finds)."""
        if self.callbacks is not None:  # a called-back citizen's leg stands for the call
            uniqueid = self.callbacks.call_id_of(uniqueid)
            self.callbacks.forget_call(uniqueid)
        if uniqueid in self.legs.agent_legs:  # the agent's leg ended
            uid = self.legs.drop_agent_leg(uniqueid)
            call = self.d.calls.get(uid)
            if call is not None and call.state is _S.CONNECTED:
                self.d.call_completed(uid, self.legs.first_gone.pop(uid, "agent"))
            return
        leg = self.legs.get(uniqueid)
        self.timed_out.discard(uniqueid)
        self.completed.discard(uniqueid)
        if leg is None:
            return
        call = self.d.calls.get(uniqueid)
        if call is not None:
            if call.state is _S.CONNECTED:
                self.d.call_completed(uniqueid, self.legs.first_gone.pop(uniqueid, "caller"))
            elif call.in_line and call.on_line:
                self._cancel_ringing(leg)
                self.d.call_left(uniqueid)
        if uniqueid not in self.d.calls:
            self.router.flush()  # the ticket learns how the call ended before the leg goes
            self.legs.drop(uniqueid)
            if self.recorder is not None:
                self.recorder.write(leg.ticket, ended_at=self.recorder.wall())

    def _cancel_ringing(self, leg: Leg) -> None:
        """The caller left while their agent's phone rings: stop ringing it."""
        name = self.legs.names.get(leg.agent_uid or "")
        if name:
            self.spawn(self._hangup_channel(name))

    async def _hangup_channel(self, channel: str) -> None:
        with contextlib.suppress(AmiError):
            await self.ami.action("Hangup", Channel=channel, Cause="16")

    def device(self, device: str, state: str) -> None:
        for a in self.d.agents.values():
            if a.config.endpoint == device:
                in_use = not device_is_free(state)
                if in_use != a.device_in_use:
                    self.d.agent_device(a.id, in_use)
                return

    def _agent_command(self, ev: AmiHeaders) -> None:
        """``UserEvent(TongdaiAgent,Agent: ...,Op: login|logout|pause|unpause,Reason: ...,
        HandTo: ...)``: from ``tongdai agent ...`` (AMI UserEvent action) or a phone's feature
        code. ``HandTo`` (optional) names the colleague who takes the open conversations."""
        agent = (ev.get("Agent") or "").removeprefix("PJSIP/")
        op = (ev.get("Op") or "").lower()
        hand_to = ev.get("HandTo") or None
        if op == "login":
            self.router.login(agent)
        elif op == "logout":
            self.router.logout(agent, hand_to)
        elif op == "pause":
            self.router.pause(agent, ev.get("Reason") or "break", hand_to)
        elif op == "unpause":
            self.router.unpause(agent)
        else:
            raise AcdError(f"unknown agent operation {op!r}")
