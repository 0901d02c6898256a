"""What waiting callers are told: position and estimated wait, only when the data backs it.

With ``n`` agents serving the queue (logged in, not paused, with the skills) and a recent
average handle time ``aht`` (talk + wrap-up, rolling window of the last handled calls), an
agent frees up every ``aht / n`` seconds on average, so the caller at ``position`` waits about
``position * aht / n``. With fewer than ``min_samples`` recent calls, or nobody serving the
queue, there is nothing honest to say: the estimate is None and the caller hears only the
position. (``acd.waits`` applies it to a dispatcher's callers.)
"""

from __future__ import annotations

import math
from collections import deque


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
