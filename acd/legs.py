"""What the voice adapter knows of a call's Asterisk channels (its legs).

A call is keyed by the caller channel's uniqueid (the IVR's ``agi_uniqueid``). Its agent leg is
either an ``Originate`` we sent, whose uniqueid we chose (``ChannelId``), or the channel the
caller's own ``Dial()`` created (learnt from ``DialBegin``). ``Legs`` maps both ways and
remembers, per conversation, which side hung up first (AMI ``HangupRequest``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


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


class Legs:
    def __init__(self) -> None:
        #: caller uniqueid -> its legs
        self.calls: dict[str, Leg] = {}
        #: agent leg uniqueid -> caller uniqueid
        self.agent_legs: dict[str, str] = {}
        #: agent leg uniqueid -> its channel name (to hang up a ringing agent)
        self.names: dict[str, str] = {}
        #: who hung up first in a conversation ("caller"/"agent"), from AMI HangupRequest (the
        #: side whose phone sent the BYE); the Hangup events' order does not tell it
        self.first_gone: dict[str, str] = {}

    def get(self, uid: str) -> Leg | None:
        return self.calls.get(uid)

    def __contains__(self, uid: object) -> bool:
        return uid in self.calls

    def add(self, uid: str, leg: Leg) -> Leg:
        return self.calls.setdefault(uid, leg)

    def link_agent(self, uid: str, agent_uid: str, name: str | None = None) -> None:
        """``agent_uid`` is the agent leg of call ``uid``."""
        leg = self.calls[uid]
        leg.agent_uid = agent_uid
        self.agent_legs[agent_uid] = uid
        if name is not None:
            self.names[agent_uid] = name

    def forget_offer(self, uid: str) -> None:
        """The agent leg of ``uid`` is no more (rang out, refused, cancelled)."""
        leg = self.calls.get(uid)
        if leg is None:
            return
        self.agent_legs.pop(leg.agent_uid or "", None)
        self.names.pop(leg.agent_uid or "", None)
        leg.agent_uid = None

    def drop_agent_leg(self, agent_uid: str) -> str:
        """The agent leg ended: returns the call it belonged to."""
        self.names.pop(agent_uid, None)
        return self.agent_legs.pop(agent_uid)

    def drop(self, uid: str) -> None:
        """The call is over: forget it."""
        self.calls.pop(uid, None)
        self.first_gone.pop(uid, None)
