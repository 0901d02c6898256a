"""The live state in the state store (``acd.store``): written as it changes, read back at start.

``Persister`` is the router's one writer: ``kick()`` after each batch of events wakes ``run()``,
which takes what changed since the last batch (``Dispatcher.take_dirty``), folds it into what is
not stored yet (``merge_dirty``: the latest call and agent win, an ended call is deleted rather
than saved) and writes it. A failed write (Redis away) is kept and retried a second later with
whatever changed meanwhile, so nothing is lost and bursts are coalesced.

``restore()`` loads the stored calls, agents and round-robin memory into a fresh dispatcher at
start; the voice adapter then reconciles them with Asterisk. Conversations are not stored here:
they are rebuilt from the tickets (``acd.messaging``).
"""

from __future__ import annotations

import asyncio
import logging

from acd.dispatch import Dispatcher
from acd.store import Dirty, StateStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)


def merge_dirty(into: Dirty, new: Dirty) -> None:
    """Fold ``new`` changes into ``into`` (not yet stored): latest call and agent wins, an
    ended call is deleted rather than saved."""
    calls = {c.uniqueid: c for c in into.calls}
    ended = dict.fromkeys(into.ended)
    for c in new.calls:
        calls[c.uniqueid] = c
        ended.pop(c.uniqueid, None)
    for uid in new.ended:
        calls.pop(uid, None)
        ended[uid] = None
    into.calls = list(calls.values())
    into.ended = list(ended)
    into.agents.update(new.agents)
    if new.rr is not None:
        into.rr = new.rr


async def persist(store: StateStore, dirty: Dirty) -> None:
    """Write what changed in the dispatcher since the last ``take_dirty``."""
    if dirty.calls:
        await store.save_calls(dirty.calls)
    if dirty.ended:
        await store.delete_calls(dirty.ended)
    if dirty.agents:
        await store.save_agents(dirty.agents)
    if dirty.rr is not None:
        await store.save_rr(dirty.rr)


async def rebuild(store: StateStore, d: Dispatcher) -> int:
    """Load the stored state into a fresh dispatcher; returns how many calls came back."""
    calls = await store.load_calls()
    d.restore(calls, await store.load_agents(), await store.load_rr())
    return len(calls)


class Persister:
    def __init__(self, store: StateStore, dispatcher: Dispatcher, *, retry_s: float = 1.0) -> None:
        self.store = store
        self.d = dispatcher
        self.retry_s = retry_s
        #: changes not yet stored (kept across a failed write)
        self.pending = Dirty()
        self._kick = asyncio.Event()

    def kick(self) -> None:
        """Something changed: store it soon."""
        self._kick.set()

    async def restore(self) -> int | None:
        """Load the stored state into the dispatcher; None if the store could not be read
        (the engine then rebuilds from Asterisk alone)."""
        try:
            return await rebuild(self.store, self.d)
        except StoreError as exc:
            log.error("ACD state not restored (%s): rebuilding from Asterisk only", exc)
            return None

    async def run(self) -> None:
        """Write what changed, coalescing bursts, until cancelled."""
        self._kick.set()
        while True:
            await self._kick.wait()
            self._kick.clear()
            merge_dirty(self.pending, self.d.take_dirty())
            try:
                await persist(self.store, self.pending)
            except StoreError as exc:
                log.warning("ACD state not stored yet (%s): retrying", exc)
                await asyncio.sleep(self.retry_s)
                self._kick.set()
                continue
            self.pending = Dirty()

    @property
    def settled(self) -> bool:
        """Nothing waits to be stored."""
        return self.pending == Dirty() and not self._kick.is_set()

    async def close(self) -> None:
        await self.store.close()
