"""The engine's own ACD as one unit: the router, its two adapters, the recorder and the
persister, built together and started in the right order.

    acd = AcdService.build(cfg, ami, tickets, queue_log=..., store=...)
    acd.voice.enable_callbacks(...)            # optional
    acd.conversation_loader = loader           # the conversation core's (optional)
    await acd.start(login_all=...)             # after the AMI login
    await acd.run(acd_events)                  # until cancelled
    await acd.close()

``start``: the stored calls and agents come back from the state store (and the calls get their
legs); the lab logs every agent in; the open conversations are rebuilt from the tickets (after
the agents, so they find theirs); then Asterisk is asked what is still up (``resync``).

Who uses what: the IVR's hand-over, the AGI scripts and the benchmark use ``voice``; the
conversation core uses ``messaging`` (a ``conversations.model.ConversationRouting``); the web
app uses ``router`` (agent operations, views, listeners).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from acd.agent import AgentState, Clock
from acd.config import AcdConfig
from acd.dispatch import Dispatcher
from acd.messaging import ConversationLoader, MessagingAdapter
from acd.persistence import Persister
from acd.queue_log import QueueLogWriter
from acd.recorder import Recorder
from acd.router import Router
from acd.store import StateStore
from acd.voice import VoiceAdapter
from pbx.ports import AmiActions, AmiHeaders
from tickets.store import TicketStore

log = logging.getLogger(__name__)


@dataclass
class AcdService:
    router: Router
    voice: VoiceAdapter
    messaging: MessagingAdapter
    recorder: Recorder
    persister: Persister | None = None
    #: reads the open conversations back at start (None: none are rebuilt)
    conversation_loader: ConversationLoader | None = None

    @classmethod
    def build(
        cls,
        cfg: AcdConfig,
        ami: AmiActions,
        tickets: TicketStore,
        *,
        queue_log: QueueLogWriter | None = None,
        store: StateStore | None = None,
        clock: Clock = time.time,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick_s: float = 0.5,
    ) -> AcdService:
        dispatcher = Dispatcher(cfg, clock=clock)
        recorder = Recorder(tickets, queue_log, wall=wall)
        persister = Persister(store, dispatcher) if store is not None else None
        router = Router(dispatcher, recorder, tick_s=tick_s, persister=persister)
        return cls(router, VoiceAdapter(router, ami, recorder), MessagingAdapter(router), recorder,
                   persister)  # fmt: skip

    async def start(self, *, login_all: bool) -> None:
        """After the AMI login (see the module's docstring for the order)."""
        if self.persister is not None:
            n = await self.persister.restore()
            if n is not None:
                self.voice.restored()
                log.info("ACD state restored: %d calls", n)
        if login_all:
            for a in list(self.router.agents()):
                if a.state is AgentState.LOGGED_OUT:
                    self.router.d.agent_login(a.id)
            self.router.flush()
        if self.conversation_loader is not None:
            await self.messaging.rebuild(self.conversation_loader)
        await self.voice.resync()
        self.voice.started = True

    async def run(self, events: AsyncIterable[AmiHeaders]) -> None:
        """The router's loops and the voice adapter's AMI events, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.voice.run(events))
            tg.create_task(self.router.run())

    async def close(self) -> None:
        if self.persister is not None:
            await self.persister.close()
