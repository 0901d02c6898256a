"""Live updates: an in-process hub fanning ACD and ticket events out to server-sent-event clients.

    acd Router.flush   ──listener──▶ LiveHub.on_acd_event ──(dirty)──▶ LivePublisher
    web ticket actions ──────────────▶ LiveHub.ticket_changed ─────────────┐   │ state(), stats
                                                                          ▼   ▼
                                        LiveHub.publish ──▶ one bounded queue per SSE client

The listener only sets a flag (the ACD must never wait for the web). The publisher wakes
on the flag, takes one snapshot of the distribution and serialises it once for all supervisors
and once per connected agent (an agent's console sees only its own agent, its queues' counts
and its own open conversations: no other caller's number). Bursts are coalesced (at most one
snapshot per ``min_interval``). Today's figures come from SQL, refreshed shortly after a call
ends and every ``stats_every`` seconds. A slow client's queue drops its oldest message
(snapshots supersede one another) instead of slowing anyone down.

A stream belongs to a login: logging out ends the streams of that session at once
(``LiveHub.end_session``), disabling an account or changing its role ends all of the account's
(``LiveHub.end_user``), and at every keep-alive ping the stream asks again whether its
credentials still hold (an expired session, or one ended by another process, stops within
``ping_s``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from acd.calls import CallTransition
from acd.dispatch import Event
from tongdai.errors import StoreError
from web.control import AcdControl, LiveState

log = logging.getLogger(__name__)

#: message kinds a new client gets at once (the latest of each), then every new one
LATEST = ("state", "stats", "health")
#: call events after which today's figures change
_STATS_EVENTS = frozenset({"connect", "complete", "abandon", "timeout", "callback_failed"})


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Message:
    kind: str
    #: JSON for supervisors; agents get ``by_agent[their id]`` or else ``public`` (None: skip)
    full: str
    by_agent: Mapping[str, str] | None = None
    public: str | None = None

    def for_agent(self, agent: str | None) -> str | None:
        if agent is None:
            return self.full
        if self.by_agent is not None and agent in self.by_agent:
            return self.by_agent[agent]
        return self.public


class Subscription:
    """One SSE client: ``agent`` None for a supervisor's full view; ``session`` and ``user_id``
    say whose login it runs under (to end it at logout)."""

    def __init__(
        self,
        agent: str | None,
        maxsize: int,
        *,
        session: str | None = None,
        user_id: int | None = None,
    ) -> None:
        self.agent = agent
        self.session = session
        self.user_id = user_id
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, msg: Message | None) -> None:
        while True:
            try:
                self.queue.put_nowait(msg)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # the oldest goes: newer snapshots replace it
                self.dropped += 1


class LiveHub:
    def __init__(self, *, maxsize: int = 32) -> None:
        self.maxsize = maxsize
        self._subs: set[Subscription] = set()
        self.latest: dict[str, Message] = {}
        self.dirty = asyncio.Event()
        self.stats_dirty = asyncio.Event()
        self.closed = False
        self.published = 0
        #: called with every ACD event too (metrics)
        self.observers: list[Callable[[Event], None]] = []

    # -- inputs ------------------------------------------------------------------------------

    def on_acd_event(self, event: Event) -> None:
        """The ACD router's listener: cheap, never blocks, never raises on its own."""
        self.dirty.set()
        if isinstance(event, CallTransition) and event.event in _STATS_EVENTS:
            self.stats_dirty.set()
        for observe in self.observers:
            observe(event)

    def ticket_changed(
        self, code: str, status: str, agent: str | None, category: str | None
    ) -> None:
        data = dumps({"code": code, "status": status, "agent": agent, "category": category})
        self.publish(Message("ticket", data, public=data))
        self.stats_dirty.set()

    # -- fan-out -----------------------------------------------------------------------------

    @property
    def clients(self) -> int:
        return len(self._subs)

    def agent_ids(self) -> set[str]:
        return {s.agent for s in self._subs if s.agent is not None}

    def subscribe(
        self, agent: str | None, *, session: str | None = None, user_id: int | None = None
    ) -> Subscription:
        sub = Subscription(agent, self.maxsize, session=session, user_id=user_id)
        if self.closed:
            sub.put(None)
            return sub
        self._subs.add(sub)
        if agent is not None:
            self.dirty.set()  # the publisher makes this agent's own view
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, msg: Message) -> None:
        if msg.kind in LATEST:
            self.latest[msg.kind] = msg
        self.published += 1
        for sub in list(self._subs):
            sub.put(msg)

    def _end(self, subs: list[Subscription]) -> int:
        for sub in subs:
            self._subs.discard(sub)
            sub.put(None)  # the stream's generator returns when it reads this
        return len(subs)

    def end_session(self, session: str) -> int:
        """End the streams opened under one session (logout); how many there were."""
        return self._end([s for s in self._subs if s.session == session])

    def end_user(self, user_id: int) -> int:
        """End every stream of one account (disabled, role changed, password reset)."""
        return self._end([s for s in self._subs if s.user_id == user_id])

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closed = True
        for sub in list(self._subs):
            sub.put(None)
        self._subs.clear()


def agent_view(state: LiveState, agent_id: str) -> dict[str, Any]:
    """What one agent's console may see: itself, how many calls and conversations wait in its
    queues, and the conversations it holds."""
    me = state.agent(agent_id)
    mine = set(me.queues) if me else set()
    return {
        "at": state.at,
        "available": state.available,
        "me": asdict(me) if me else None,
        "queues": [
            {
                "name": q.name,
                "waiting": q.waiting,
                "oldest_at": q.oldest_at,
                "conversations_waiting": sum(q.conversations_waiting.values()),
            }
            for q in state.queues
            if q.name in mine
        ],
        "conversations": [asdict(c) for c in state.conversations if c.agent == agent_id],
    }


StatsSource = Callable[[], Awaitable[dict[str, Any]]]


class LivePublisher:
    """Owned by the web app's lifespan: turns the hub's flags into published snapshots."""

    def __init__(
        self,
        hub: LiveHub,
        control: AcdControl,
        stats: StatsSource | None = None,
        *,
        min_interval: float = 0.1,
        stats_every: float = 10.0,
        stats_delay: float = 1.0,
    ) -> None:
        self.hub = hub
        self.control = control
        self.stats = stats
        self.min_interval = min_interval
        self.stats_every = stats_every
        self.stats_delay = stats_delay

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._state_loop())
            if self.stats is not None:
                tg.create_task(self._stats_loop())

    def publish_state(self) -> None:
        state = self.control.state()
        full = dumps({"server_now": state.at, **state.to_dict()})
        by_agent = {a: dumps(agent_view(state, a)) for a in self.hub.agent_ids()}
        self.hub.publish(Message("state", full, by_agent=by_agent))

    async def _state_loop(self) -> None:
        self.hub.dirty.set()  # a first snapshot for whoever connects
        while True:
            await self.hub.dirty.wait()
            self.hub.dirty.clear()
            try:
                self.publish_state()
            except Exception:  # a bad snapshot must not end live updates for good
                log.exception("live state not published")
            await asyncio.sleep(self.min_interval)

    async def publish_stats(self) -> None:
        assert self.stats is not None
        try:
            figures = await self.stats()
        except StoreError as exc:
            log.warning("wallboard figures unavailable: %s", exc)
            return
        except Exception:  # a bug in one query must not end live updates for good
            log.exception("wallboard figures failed")
            return
        agents = figures.get("agents", {})
        by_agent = {a: dumps({"agent": agents.get(a)}) for a in self.hub.agent_ids()}
        self.hub.publish(Message("stats", dumps(figures), by_agent=by_agent))

    async def _stats_loop(self) -> None:
        await self.publish_stats()
        while True:
            try:
                async with asyncio.timeout(self.stats_every):
                    await self.hub.stats_dirty.wait()
                # the distributor writes tickets in its own task: give the write a moment
                await asyncio.sleep(self.stats_delay)
            except TimeoutError:
                pass
            self.hub.stats_dirty.clear()
            await self.publish_stats()


async def _holds(still_valid: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await still_valid()
    except StoreError as exc:  # the database is away: keep serving what we have
        log.warning("live stream: cannot check the login: %s", exc)
        return True


def sse(kind: str, data: str) -> str:
    return f"event: {kind}\ndata: {data}\n\n"


async def stream(
    hub: LiveHub,
    sub: Subscription,
    *,
    ping_s: float = 15.0,
    still_valid: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[str]:
    """The text/event-stream of one client: the latest state first, then every message.

    It ends when the hub says so (``None``: shutdown, logout) or when ``still_valid``, asked
    at every ping, says the login no longer holds (a database error keeps the stream)."""
    try:
        yield "retry: 2000\n\n"
        for kind in LATEST:
            latest = hub.latest.get(kind)
            data = latest.for_agent(sub.agent) if latest else None
            if data is not None:
                yield sse(kind, data)
        while True:
            try:
                async with asyncio.timeout(ping_s):
                    msg = await sub.queue.get()
            except TimeoutError:
                if still_valid is not None and not await _holds(still_valid):
                    return
                yield ": ping\n\n"
                continue
            if msg is None:
                return
            data = msg.for_agent(sub.agent)
            if data is not None:
                yield sse(msg.kind, data)
    finally:
        hub.unsubscribe(sub)
