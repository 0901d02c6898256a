"""What waiting callers are told: position and estimated wait, only when the data backs it.

With ``n`` agents serving the queue (logged in, not paused, with the skills) and a recent
average handle time ``aht`` (talk + wrap-up, rolling window of the last handled calls), an
agent frees up every ``aht / n`` seconds on average, so the caller at ``position`` waits about
``position * aht / n``. With fewer than ``min_samples`` recent calls, or nobody serving the
queue, there is nothing honest to say: the estimate is None and the caller hears only the
position. ``announcements`` lists the waiting callers due for an announcement now.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from acd.calls import Announcement, CallState

if TYPE_CHECKING:
    from acd.dispatch import Dispatcher


class WaitEstimator:
    def __init__(
        self, *, window: int = 20, min_samples: int = 5, max_age_s: float = 3600.0
    ) -> None:
        self.window = window
        self.min_samples = min_samples
        self.max_age_s = max_age_s
        self._handled: dict[str, deque[tuple[float, float]]] = {}

    def record_handled(self, queue: str, handle_s: float, at: float) -> None:
        """A call of ``queue`` took ``handle_s`` seconds (talk + wrap-up), ending at ``at``."""
        d = self._handled.setdefault(queue, deque(maxlen=self.window))
        d.append((at, max(0.0, handle_s)))

    def average_handle_s(self, queue: str, now: float) -> float | None:
        """Mean handle time over the recent window, or None below ``min_samples``."""
        recent = [h for at, h in self._handled.get(queue, ()) if now - at <= self.max_age_s]
        if len(recent) < self.min_samples:
            return None
        return sum(recent) / len(recent)

    def estimate(self, queue: str, position: int, serving: int, now: float) -> float | None:
        """Seconds the caller at ``position`` (1 = next) should expect, or None: do not say."""
        if serving <= 0 or position <= 0:
            return None
        aht = self.average_handle_s(queue, now)
        if aht is None:
            return None
        return position * aht / serving


def minutes_for_speech(seconds: float) -> int:
    """Whole minutes to say, rounded up (never "0 minutes")."""
    return max(1, math.ceil(seconds / 60.0))


def estimated_wait(d: Dispatcher, uniqueid: str, now: float | None = None) -> float | None:
    """Seconds the call ``uniqueid`` should still expect, or None (do not announce)."""
    pos = d.position(uniqueid)
    if pos is None:
        return None
    q = d.calls[uniqueid].queue
    t = d.clock() if now is None else now
    return d.estimator.estimate(q, pos, d.serving_agents(q), t)


def announcements(d: Dispatcher, now: float | None = None) -> list[Announcement]:
    """Waiting callers due for "you are number N, about M minutes" (marks them announced).

    Due every ``announce_every_s`` of the call's queue (0 = never), counted from entering it."""
    now = d.clock() if now is None else now
    due: list[Announcement] = []
    for c in d.calls.values():
        q = d.cfg.queues[c.queue]
        if c.state is not CallState.WAITING or q.announce_every_s <= 0:
            continue
        if now - max(c.last_announced_at, c.queue_entered_at) < q.announce_every_s:
            continue
        d.touch(c)
        c.last_announced_at = now
        est = estimated_wait(d, c.uniqueid, now)
        position = d.position(c.uniqueid) if q.announce_position else None
        minutes = minutes_for_speech(est) if est is not None else None
        due.append(Announcement(c.uniqueid, c.queue, position, minutes))
    return due
