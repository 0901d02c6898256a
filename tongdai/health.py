"""What the engine depends on, and whether each is reachable now: the degraded states a
supervisor must see (``/metrics``, the wallboard's banner, ``tongdai lab status``, the log).

Components report with ``up(name)`` / ``down(name, why)``; a change is logged once, not at
every retry. Readers take ``snapshot()``: name -> (up, detail, since).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dependency:
    up: bool
    detail: str
    since: float


class Health:
    def __init__(self) -> None:
        self._deps: dict[str, Dependency] = {}

    def up(self, name: str, detail: str = "") -> None:
        self._set(name, True, detail)

    def down(self, name: str, detail: str) -> None:
        self._set(name, False, detail)

    def _set(self, name: str, ok: bool, detail: str) -> None:
        old = self._deps.get(name)
        if old is not None and old.up == ok:
            if not ok:
                self._deps[name] = Dependency(ok, detail, old.since)
            return
        self._deps[name] = Dependency(ok, detail, time.time())
        if ok and old is not None:
            log.warning("%s is back%s", name, f": {detail}" if detail else "")
        elif not ok:
            log.error("%s is DOWN: %s (working degraded)", name, detail)

    def snapshot(self) -> dict[str, Dependency]:
        return dict(self._deps)

    @property
    def degraded(self) -> list[str]:
        """Names of what is down now."""
        return sorted(n for n, d in self._deps.items() if not d.up)
