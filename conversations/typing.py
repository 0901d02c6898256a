"""Who is typing in a web chat right now: the visitor (shown to the agent) and the agent (shown
to the visitor). Never stored, throttled, forgotten after a few seconds.

- ``seen(visitor, code)``: the visitor's latest conversation (the inbox's and the outbox's
  listeners tell it), so a typing frame from the visitor's socket finds its ticket.
- ``citizen(visitor)``: the visitor types; at most one notice per ``gap_s`` per visitor reaches
  ``to_agents`` (the console's long poll wakes); ``citizen_typing(code)`` is true for
  ``ttl_s`` after the last one.
- ``agent(code, visitor)``: an agent types in the reply box; at most one notice per ``gap_s``
  per conversation reaches ``to_visitor`` (the visitor's sockets).

Memory is bounded: at most ``MAX_ENTRIES`` visitors, conversations and throttles each, the
oldest forgotten first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
V = TypeVar("V")

MAX_ENTRIES = 10_000


def _bounded_set(d: dict[str, V], key: str, value: V) -> None:
    d.pop(key, None)  # re-inserted last: the dict's order is the age
    d[key] = value
    while len(d) > MAX_ENTRIES:
        del d[next(iter(d))]


class Typing:
    def __init__(
        self, ttl_s: float = 6.0, gap_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.gap_s = gap_s
        self.clock = clock
        self._code_of: dict[str, str] = {}
        self._citizen_until: dict[str, float] = {}
        self._told: dict[str, float] = {}
        #: told the code of a conversation whose citizen types (quick, never awaits)
        self.to_agents: list[Callable[[str], None]] = []
        #: told the visitor whose agent types (quick, never awaits)
        self.to_visitor: list[Callable[[str], None]] = []

    def seen(self, visitor: str, code: str) -> None:
        if self._code_of.get(visitor) != code:
            _bounded_set(self._code_of, visitor, code)

    def code_of(self, visitor: str) -> str | None:
        return self._code_of.get(visitor)

    def _throttled(self, key: str) -> bool:
        now = self.clock()
        last = self._told.get(key)
        if last is not None and now - last < self.gap_s:
            return True
        _bounded_set(self._told, key, now)
        return False

    def citizen(self, visitor: str) -> str | None:
        """The visitor types: the code of their conversation if the agents were told (None:
        no conversation yet, or told less than ``gap_s`` ago)."""
        code = self._code_of.get(visitor)
        if code is None or self._throttled(f"c:{visitor}"):
            return None
        _bounded_set(self._citizen_until, code, self.clock() + self.ttl_s)
        self._tell(self.to_agents, code)
        return code

    def citizen_typing(self, code: str) -> bool:
        until = self._citizen_until.get(code)
        return until is not None and self.clock() < until

    def citizen_stopped(self, code: str) -> None:
        """The citizen's message arrived: they are no longer typing it."""
        self._citizen_until.pop(code, None)

    def agent(self, code: str, visitor: str) -> bool:
        """An agent types in ``code`` (whose visitor is ``visitor``): True if the visitor was
        told."""
        if self._throttled(f"a:{code}"):
            return False
        self._tell(self.to_visitor, visitor)
        return True

    def _tell(self, listeners: list[Callable[[str], None]], value: str) -> None:
        for tell in listeners:
            try:
                tell(value)
            except Exception:  # a broken view must not stop the chat
                log.exception("typing listener %r failed", tell)
