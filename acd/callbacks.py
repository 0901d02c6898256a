"""Callbacks that keep the caller's place: dialling the citizen back when their turn comes.

Caller first (``mode = "caller_first"``): the dispatcher reserves an agent, we ``Originate`` the
citizen's number (``acd.callback_channel``, e.g. ``PJSIP/{number}@citizens``) into
``[tongdai-callback]``, which greets them and puts them in the ACD wait loop; once they answer,
the reserved agent is rung and bridged like any waiting caller. No answer: the call goes back to
its place and is retried after ``retry_after_s``, up to ``max_attempts``.
The citizen's new channel has its own uniqueid; everything else keys calls by the original one,
so this module maps one to the other.

The dialer knows the voice adapter only through ``CallbackHost`` (originate, the call's leg,
report the outcome), so the two do not import each other.
"""

from __future__ import annotations

import logging
import secrets
from typing import Protocol

from acd.calls import Offer
from acd.legs import Leg
from pbx.ami_messages import HeaderValue
from pbx.ports import AmiHeaders
from tongdai.errors import AmiError

log = logging.getLogger(__name__)


class CallbackHost(Protocol):
    """What the callback dialer needs of the voice adapter."""

    async def originate(self, **headers: HeaderValue) -> None:
        """Send AMI ``Originate``; raises ``AmiError`` (or ``ValueError``) when it fails."""

    def leg(self, call_id: str) -> Leg | None:
        """The call's legs (None: the call is gone)."""

    def callback_answered(self, call_id: str, channel: str) -> None:
        """The citizen answered on ``channel``: ring the agent reserved for them."""

    def callback_failed(self, call_id: str) -> None:
        """The citizen could not be called: retry later, or end the call."""


class CallbackDialer:
    def __init__(self, host: CallbackHost, channel_template: str, greeting: str) -> None:
        self.host = host
        self.channel_template = channel_template
        self.greeting = greeting
        self.legs: dict[str, str] = {}  # citizen leg uniqueid -> the call's original uniqueid

    def call_id_of(self, channel_uid: str) -> str:
        """The call a channel belongs to (a callback leg maps to the original call)."""
        return self.legs.get(channel_uid, channel_uid)

    def citizen_channel(self, number: str) -> str:
        return self.channel_template.format(number=number)

    def forget_call(self, call_id: str) -> None:
        """The call is over: its citizen legs no longer stand for it."""
        self.legs = {k: v for k, v in self.legs.items() if v != call_id}

    async def dial(self, offer: Offer) -> None:
        uid, call = offer.call_id, offer.call
        leg = self.host.leg(uid)
        if leg is None or not call.callback_number:
            return
        cb_uid = f"tongdai-cb-{secrets.token_hex(6)}"
        self.legs[cb_uid] = uid
        try:
            await self.host.originate(
                Channel=self.citizen_channel(call.callback_number),
                Context="tongdai-callback",
                Exten="s",
                Priority="1",
                Timeout="30000",
                CallerID='"1022" <1022>',
                ChannelId=cb_uid,
                Async="true",
                Variable=[
                    f"TONGDAI_CALL={uid}",
                    f"TONGDAI_TICKET={leg.ticket or ''}",
                    f"TONGDAI_QUEUE={call.queue}",
                    f"TONGDAI_GREETING={self.greeting}",
                ],
            )
            log.info("calling back %s for %s", call.callback_number, uid)
        except (AmiError, ValueError) as exc:
            log.warning("could not call back %s: %s", uid, exc)
            self.legs.pop(cb_uid, None)
            self.host.callback_failed(uid)

    def originate_response(self, ev: AmiHeaders) -> bool:
        """Handle the OriginateResponse of a citizen leg; False if it is not one of ours."""
        cb_uid = ev.get("Uniqueid") or ""
        uid = self.legs.get(cb_uid)
        if uid is None:
            return False
        if (ev.get("Response") or "").lower() == "success":
            self.host.callback_answered(uid, ev.get("Channel") or "")
        else:
            self.legs.pop(cb_uid, None)
            self.host.callback_failed(uid)
        return True
