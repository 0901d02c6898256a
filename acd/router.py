"""The ACD's media-independent shell: runs the dispatcher's rounds and hands out what they decide.

    adapters (voice, messaging) ──events──▶ Dispatcher (pure) ──outbox──▶ flush()
          ▲                                      │ assign_round                 │ in order
          └── Offer (ring) / ConversationOffer ──┘               Recorder, the work item's
                                                                 adapter, then listeners

- The assign loop: a round runs when something changed (``flush`` kicks it) and every
  ``tick_s`` (wrap-ups ending, overflow, escalations). Voice is matched first, then
  conversations. Each round's duration goes to ``decisions`` (wall clock) and
  ``decisions_cpu`` (this thread's CPU time: the engine's own work, apart from the host running
  something else mid-round), dumped for ``tongdai bench acd`` by ``dump_decisions``.
- Offers go to the adapter of their medium: a call's to the voice adapter (``ring``), a
  conversation's to the messaging adapter (``assigned``).
- ``flush`` drains the outbox in order: the recorder (tickets, queue_log), the adapter of the
  event's medium (``on_event``), then the listeners (the web's live hub, metrics: quick, never
  awaiting; a broken one is logged, not fatal); then the persister and the assigner are kicked.
- The public interface for agents and views (the web's ``RouterControl`` uses only this):
  ``login``, ``logout``, ``pause`` (with a reason and an optional colleague to hand the open
  conversations to), ``unpause``, and read-only views of agents, queues, calls, lines and
  conversations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from acd.agent import Agent, PauseReason, Transition
from acd.calls import CallTransition, Offer, QueuedCall
from acd.config import AcdConfig, QueueConfig
from acd.conversations import Conversation, ConversationOffer, ConversationTransition
from acd.dispatch import Dispatcher, Event
from acd.persistence import Persister
from acd.recorder import Recorder

log = logging.getLogger(__name__)


class VoiceSide(Protocol):
    def ring(self, offer: Offer) -> None:
        """Carry out an offer: ring the agent (or dial the citizen back)."""

    def on_event(self, event: Transition | CallTransition) -> None:
        """A call's or an agent's transition, after the recorder."""


class MessagingSide(Protocol):
    def assigned(self, offer: ConversationOffer) -> None:
        """A conversation was given to an agent in a round."""

    def on_event(self, event: ConversationTransition) -> None: ...


class Router:
    def __init__(
        self,
        dispatcher: Dispatcher,
        recorder: Recorder | None = None,
        *,
        tick_s: float = 0.5,
        persister: Persister | None = None,
    ) -> None:
        self.d = dispatcher
        self.recorder = recorder
        self.persister = persister
        self.tick_s = tick_s
        self.voice: VoiceSide | None = None
        self.messaging: MessagingSide | None = None
        #: called with every transition, in order, after the recorder and the adapters
        self.listeners: list[Callable[[Event], None]] = []
        #: seconds spent in each round (the benchmark's decision latency); bounded
        self.decisions: deque[float] = deque(maxlen=100_000)
        self.decisions_cpu: deque[float] = deque(maxlen=100_000)
        self._kick = asyncio.Event()
        self._flush_scheduled = False

    # -- agents (the web's and the phones' operations) ---------------------------------------

    def login(self, agent_id: str) -> Transition:
        return self._apply(lambda: self.d.agent_login(agent_id))

    def logout(self, agent_id: str, hand_to: str | None = None) -> Transition:
        return self._apply(lambda: self.d.agent_logout(agent_id, hand_to))

    def pause(
        self, agent_id: str, reason: PauseReason | str, hand_to: str | None = None
    ) -> Transition:
        return self._apply(lambda: self.d.agent_pause(agent_id, reason, hand_to))

    def unpause(self, agent_id: str) -> Transition:
        return self._apply(lambda: self.d.agent_unpause(agent_id))

    def _apply(self, op: Callable[[], Transition]) -> Transition:
        try:
            return op()
        finally:  # the queue_log, tickets and live views see it now (not at the next tick)
            self.flush()

    # -- views (read only) -------------------------------------------------------------------

    @property
    def config(self) -> AcdConfig:
        return self.d.cfg

    def agents(self) -> Iterable[Agent]:
        return self.d.agents.values()

    def agent(self, agent_id: str) -> Agent:
        """Raises ``UnknownAgent``."""
        return self.d.agent(agent_id)

    def agent_queues(self, agent_id: str) -> list[str]:
        return self.d.agent_queues(agent_id)

    def queues(self) -> Iterable[QueueConfig]:
        return self.d.cfg.queues.values()

    def serving_agents(self, queue: str) -> int:
        return self.d.serving_agents(queue)

    def calls(self) -> Iterable[QueuedCall]:
        return self.d.calls.values()

    def call(self, uniqueid: str) -> QueuedCall | None:
        return self.d.calls.get(uniqueid)

    def lines(self) -> Mapping[str, list[QueuedCall]]:
        """Each queue's calls holding a place, in order."""
        return {q: self.d.line(q) for q in self.d.cfg.queues}

    def position(self, uniqueid: str) -> int | None:
        return self.d.position(uniqueid)

    def conversations(self) -> Iterable[Conversation]:
        return self.d.conversations.items.values()

    def conversation_position(self, code: str) -> int | None:
        return self.d.conversations.position(code)

    def open_conversations(self, agent_id: str) -> list[str]:
        """Codes of the conversations the agent holds, in the order they got them."""
        return self.d.conversations.open_of(agent_id)

    def snapshot(self) -> Mapping[str, object]:
        """A small view for logs and the status command."""
        return {
            "waiting": sum(1 for c in self.d.calls.values() if c.in_line),
            "conversations": len(self.d.conversations.items),
            "agents": {a.id: a.state.value for a in self.d.agents.values()},
        }

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """The assigner, the ticker, and (when there are) the ticket writer and the persister,
        until cancelled."""
        async with asyncio.TaskGroup() as tg:
            if self.recorder is not None:
                tg.create_task(self.recorder.run())
            if self.persister is not None:
                tg.create_task(self.persister.run())
            tg.create_task(self._ticker())
            tg.create_task(self._assigner())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self._kick.set()

    async def _assigner(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            self.assign_now()

    def assign_now(self, *, defer: bool = False) -> None:
        """One round; its offers go to the adapters. ``defer``: write the transitions out at
        the event loop's next turn (an AGI handler answers Asterisk first: ``dial_now``)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        done = self.d.assign_round()
        self.decisions.append(time.perf_counter() - t0)
        self.decisions_cpu.append(time.thread_time() - c0)
        if defer:
            self.flush_soon()
        else:
            self.flush(kick=False)
        if self.voice is not None:
            for offer in done.voice:
                self.voice.ring(offer)
        if self.messaging is not None:
            for given in done.conversations:
                self.messaging.assigned(given)

    def kick(self) -> None:
        """Run a round soon."""
        self._kick.set()

    # -- outputs -----------------------------------------------------------------------------

    def flush(self, *, kick: bool = True) -> None:
        """The outbox, in order, to the recorder, the adapters and the listeners; ``kick``
        wakes the assigner (something changed that may let work reach an agent)."""
        events = self.d.drain_events()
        if events and self.recorder is not None:
            self.recorder.record(events)
        for e in events:
            if isinstance(e, ConversationTransition):
                if self.messaging is not None:
                    self.messaging.on_event(e)
            elif self.voice is not None:
                self.voice.on_event(e)
            for listener in self.listeners:
                try:
                    listener(e)
                except Exception:  # a broken observer must not stop the distribution
                    log.exception("ACD listener %r failed", listener)
        if self.persister is not None:
            self.persister.kick()
        if kick:
            self._kick.set()

    def flush_soon(self) -> None:
        """``flush`` at the event loop's next turn (once per turn). Transitions keep their
        order: every flush drains the outbox in sequence."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): now
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def dump_decisions(self, path: Path) -> None:
        """Write ``decisions`` (seconds per round) as JSON for ``tongdai bench acd``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        body = {"decisions_s": list(self.decisions), "decisions_cpu_s": list(self.decisions_cpu)}
        tmp.write_text(json.dumps(body), encoding="utf-8")
        tmp.replace(path)
