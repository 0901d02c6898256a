"""Per-visitor and per-address message limits (token buckets, in this process)."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``burst`` messages at once, then ``per_minute``; ``take(key)`` is None when allowed,
    else the seconds to wait. Buckets idle long enough to be full again are forgotten."""

    def __init__(
        self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float | None:
        now = self.clock()
        if len(self._buckets) > 10_000:
            self._forget(now)
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        return None

    def _forget(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key, (_, at) in list(self._buckets.items()):
            if now - at > full_after:
                del self._buckets[key]
