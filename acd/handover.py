"""The IVR's hand-over to the engine's own ACD (``ivr.handover.QueueHandover``).

``admit`` puts the caller in line while the IVR still speaks to them (their place is kept but
no agent is rung); ``hand_over`` is the IVR's last step: if an agent is free this instant the
caller's own channel dials them (``[tongdai-acd-dial]``), else the dialplan holds them in the
wait loop (``[tongdai-acd-wait]``) with position announcements every ``announce_every_s``.

Engine failover (``leading`` given and false: this engine stands by): the caller is not put in
this engine's line; ``hand_over`` forwards them to the leader through Redis
(``acd.arrivals``) with the time they were admitted, and they wait in the music loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from acd.arrivals import Arrival
from acd.voice import VoiceAdapter
from ivr.handover import QueuedCaller
from pbx.channels import channel_started


class AcdHandover:
    def __init__(
        self,
        dist: VoiceAdapter,
        announce_every_s: int,
        *,
        leading: Callable[[], bool] | None = None,
        forward: Callable[[Arrival], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dist = dist
        #: failover: whether this engine distributes now, and how a standby hands callers on
        self.leading = leading
        self.forward = forward
        self.clock = clock
        #: callers admitted while standing by, until the IVR hands them over
        self._standby: dict[str, Arrival] = {}
        self.announce_every_s = announce_every_s
        #: queues with their own announcement period (the ACD file), in seconds
        self.per_queue = {
            q.name: round(q.announce_every_s)
            for q in dist.router.queues()
            if q.announce_every_s > 0
        }

    def _standing_by(self) -> bool:
        return self.leading is not None and self.forward is not None and not self.leading()

    def admit(self, caller: QueuedCaller, queue: str) -> bool:
        if self._standing_by():
            name = self.dist.d.cfg.queue_or_general(queue)
            self._standby[caller.uniqueid] = Arrival(
                caller.uniqueid, caller.channel, name, caller.number, caller.ticket, self.clock()
            )
            return True
        return self.dist.enqueue(
            caller.uniqueid, caller.channel, queue, caller.number, caller.ticket
        )

    def variables(self, queue: str) -> Mapping[str, str]:
        every = self.per_queue.get(queue, self.announce_every_s)
        return {"TONGDAI_ANNOUNCE": str(every), "TONGDAI_ACTION": "acd"}

    def hand_over(self, caller: QueuedCaller) -> str | None:
        arrival = self._standby.pop(caller.uniqueid, None)
        if arrival is not None and self.forward is not None:
            self.forward(arrival)  # to the leader; the caller waits in the music loop
            return None
        direct = self.dist.dial_now(caller.uniqueid)
        return direct.dial_args if direct is not None else None

    def release(self, uniqueid: str) -> None:
        if self._standby.pop(uniqueid, None) is not None:
            return  # left the IVR before the hand-over (hung up, or sent to the general queue)
        self.dist.ivr_done(uniqueid)

    def ready(self) -> bool:
        # a standby hands rejoining callers to the leader: nothing of its own to wait for
        return self._standing_by() or self.dist.started

    def rejoin(self, caller: QueuedCaller, queue: str) -> bool:
        """Back in line by the channel's creation time (``pbx.channels``), so callers lost in
        one crash keep their order among themselves and ahead of those who called later."""
        uid = caller.uniqueid
        if self._standing_by() and self.forward is not None:
            # failover: the leader takes them back, in their place (the wait loop reads Redis)
            entered = channel_started(uid) or self.clock()
            name = self.dist.d.cfg.queue_or_general(queue)
            self.forward(Arrival(uid, caller.channel, name, caller.number, caller.ticket, entered))
            return True
        if not self.dist.waiting(uid):
            arrived = channel_started(uid)
            number, ticket = caller.number, caller.ticket
            if not self.dist.enqueue(
                uid, caller.channel, queue, number, ticket, entered_at=arrived
            ):
                return False
        self.dist.ivr_done(uid)
        return True
