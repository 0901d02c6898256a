"""An in-memory AMI implementing ``pbx.ports.AmiPort``, for fast unit tests of AMI logic.

- Every action is recorded in ``actions`` (name, headers) and answered ``Response: Success``;
  ``lists[name]`` gives a list action's events (e.g. ``CoreShowChannels`` rows), and
  ``fail = True`` makes every action raise ``AmiError`` (Asterisk away).
- ``emit(name, **headers)`` delivers an event to every subscriber whose names include it (and
  to ``events``, the single queue ``stream()`` reads, for code that consumes one stream).
- ``originates()`` lists the headers of the ``Originate`` actions sent, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from pbx.ports import AmiHeaders
from tongdai.errors import AmiError


class FakeEvent(dict[str, str]):
    """An AMI event or response: headers and a ``name`` (case-sensitive keys, as sent)."""

    def __init__(self, name: str, /, **headers: str) -> None:
        super().__init__(headers)
        self.name = name
        self.events: list[FakeEvent] = []

    def get(self, key: str, default: str | None = None, /) -> str | None:  # type: ignore[override]
        return super().get(key, default)


class FakeSubscription:
    """Like ``pbx.ami.AmiSubscription``: iterate the events; ``close`` stops receiving."""

    def __init__(self, queue: asyncio.Queue[FakeEvent], on_close: Callable[[], None]) -> None:
        self._queue = queue
        self._on_close: Callable[[], None] | None = on_close

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __aiter__(self) -> AsyncIterator[AmiHeaders]:
        return self

    async def __anext__(self) -> AmiHeaders:
        return await self._queue.get()


class FakeAmi:
    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []
        self.lists: dict[str, list[FakeEvent]] = {}
        self.events: asyncio.Queue[FakeEvent] = asyncio.Queue()
        self.fail = False
        self._subscribers: list[tuple[frozenset[str] | None, asyncio.Queue[FakeEvent]]] = []

    async def action(self, name: str, /, **headers: Any) -> FakeEvent:
        if self.fail:
            raise AmiError("fake AMI: not connected")
        self.actions.append((name, headers))
        reply = FakeEvent("Success", Response="Success")
        reply.events = list(self.lists.get(name, []))
        return reply

    def originates(self) -> list[dict[str, Any]]:
        return [h for n, h in self.actions if n == "Originate"]

    def sent(self, name: str) -> list[dict[str, Any]]:
        """Headers of every ``name`` action sent, in order."""
        return [h for n, h in self.actions if n == name]

    def emit(self, name: str, /, **headers: str) -> FakeEvent:
        ev = FakeEvent(name, **headers)
        self.events.put_nowait(ev)
        for names, queue in self._subscribers:
            if names is None or name.lower() in names:
                queue.put_nowait(ev)
        return ev

    def subscribe(self, names: Sequence[str] | None = None) -> FakeSubscription:
        wanted = frozenset(n.lower() for n in names) if names is not None else None
        queue: asyncio.Queue[FakeEvent] = asyncio.Queue()
        entry = (wanted, queue)
        self._subscribers.append(entry)
        return FakeSubscription(queue, lambda: self._subscribers.remove(entry))

    async def stream(self) -> AsyncIterator[FakeEvent]:
        """Every emitted (or directly queued) event, in order."""
        while True:
            yield await self.events.get()
