"""Callbacks that keep the caller's place: dialling the citizen back when their turn comes.

Caller first (``mode = "caller_first"``): the dispatcher reserves an agent, we ``Originate`` the
citizen's number (``acd.callback_channel``, e.g. ``PJSIP/{number}@citizens``) into
``[tongdai-callback]``, which greets them and puts them in the ACD wait loop; once they answer,
the reserved agent is rung and bridged like any waiting caller. No answer: the call goes back to
its place and is retried after ``retry_after_s``, up to ``max_attempts``.
The citizen's new channel has its own uniqueid; everything else keys calls by the original one,
so this module maps one to the other.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import TYPE_CHECKING

from acd.agent import AcdError
from acd.calls import Offer
from tongdai.errors import AmiError

if TYPE_CHECKING:
    from acd.distributor import Distributor, Headers

log = logging.getLogger(__name__)


class CallbackDialer:
    def __init__(self, dist: Distributor, channel_template: str, greeting: str) -> None:
        self.dist = dist
        self.channel_template = channel_template
        self.greeting = greeting
        self.legs: dict[str, str] = {}  # citizen leg uniqueid -> the call's original uniqueid

    def call_id_of(self, channel_uid: str) -> str:
        """The call a channel belongs to (a callback leg maps to the original call)."""
        return self.legs.get(channel_uid, channel_uid)

    async def dial(self, offer: Offer) -> None:
        d, uid = self.dist.d, offer.call_id
        call = d.calls.get(uid)
        leg = self.dist.legs.get(uid)
        if call is None or leg is None or not call.callback_number:
            return
        cb_uid = f"tongdai-cb-{secrets.token_hex(6)}"
        self.legs[cb_uid] = uid
        try:
            await self.dist.ami.action(
                "Originate",
                Channel=self.channel_template.format(number=call.callback_number),
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
            with contextlib.suppress(AcdError):
                d.callback_failed(uid)
            self.dist.flush()

    def originate_response(self, ev: Headers) -> bool:
        """Handle the OriginateResponse of a citizen leg; False if it is not one of ours."""
        cb_uid = ev.get("Uniqueid") or ""
        uid = self.legs.get(cb_uid)
        if uid is None:
            return False
        d = self.dist.d
        if (ev.get("Response") or "").lower() == "success":
            leg = self.dist.legs.get(uid)
            if leg is not None:
                leg.caller_channel = ev.get("Channel") or leg.caller_channel
                leg.ready.set()
            d.callback_answered(uid)
            call = d.calls.get(uid)
            if call is not None and call.offered_to is not None:
                self.dist.ring_agent(uid, d.agents[call.offered_to], call.queue)
        else:
            self.legs.pop(cb_uid, None)
            d.callback_failed(uid)
        return True
