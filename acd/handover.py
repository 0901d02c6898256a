"""The IVR's hand-over to the engine's own ACD (``ivr.handover.QueueHandover``).

``admit`` puts the caller in line while the IVR still speaks to them (their place is kept but
no agent is rung); ``hand_over`` is the IVR's last step: if an agent is free this instant the
caller's own channel dials them (``[tongdai-acd-dial]``), else the dialplan holds them in the
wait loop (``[tongdai-acd-wait]``) with position announcements every ``announce_every_s``.
"""

from __future__ import annotations

from collections.abc import Mapping

from acd.voice import VoiceAdapter
from ivr.handover import QueuedCaller
from pbx.channels import channel_started


class AcdHandover:
    def __init__(self, dist: VoiceAdapter, announce_every_s: int) -> None:
        self.dist = dist
        self.announce_every_s = announce_every_s
        #: queues with their own announcement period (the ACD file), in seconds
        self.per_queue = {
            q.name: round(q.announce_every_s)
            for q in dist.router.queues()
            if q.announce_every_s > 0
        }

    def admit(self, caller: QueuedCaller, queue: str) -> bool:
        return self.dist.enqueue(
            caller.uniqueid, caller.channel, queue, caller.number, caller.ticket
        )

    def variables(self, queue: str) -> Mapping[str, str]:
        every = self.per_queue.get(queue, self.announce_every_s)
        return {"TONGDAI_ANNOUNCE": str(every), "TONGDAI_ACTION": "acd"}

    def hand_over(self, caller: QueuedCaller) -> str | None:
        direct = self.dist.dial_now(caller.uniqueid)
        return direct.dial_args if direct is not None else None

    def release(self, uniqueid: str) -> None:
        self.dist.ivr_done(uniqueid)

    def ready(self) -> bool:
        return self.dist.started

    def rejoin(self, caller: QueuedCaller, queue: str) -> bool:
        """Back in line by the channel's creation time (``pbx.channels``), so callers lost in
        one crash keep their order among themselves and ahead of those who called later."""
        uid = caller.uniqueid
        if not self.dist.waiting(uid):
            arrived = channel_started(uid)
            number, ticket = caller.number, caller.ticket
            if not self.dist.enqueue(
                uid, caller.channel, queue, number, ticket, arrived_at=arrived
            ):
                return False
        self.dist.ivr_done(uid)
        return True
