"""Engine failover (``acd.failover = true``, docs/failover.md): which engine distributes calls.

    role = AcdRole(node_id, health, metrics)
    await run_as_leader(lease_for(settings, client, node_id), lead, on_change=role.changed)

Both engines serve FastAGI and the web and keep an AMI session; only the holder of the Redis
lease (``hotline.lease``) runs the ACD (``lead``: the state back from Redis, reconciled with
Asterisk, then the router's loops), with its writes fenced by the lease's epoch
(``acd.redis_store``). ``AcdRole`` is what the rest of the process sees: ``leading`` for the
FastAGI scripts (a standby takes no caller into its own distribution), ``/metrics``
(``tongdai_acd_leader``, ``tongdai_acd_epoch``), ``/api/health`` (``"acd": {"role", "epoch",
"node"}``) and a log line at each change.

Stepping down is fail-stop: a leader that lost its lease stops the whole process (exit status
``STEPPED_DOWN``, systemd restarts it as a standby), because its in-memory distribution can
no longer be trusted and a fresh start rebuilds it from the shared state anyway.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from acd.arrivals import Arrival, RedisArrivals
from acd.calls import CallOutcome, CallTransition
from acd.dispatch import Event
from acd.redis_store import RedisStore
from acd.service import AcdService
from acd.voice_events import WANTED_EVENTS
from hotline.lease import RedisLease, run_as_leader
from pbx.ami import AmiClient
from tongdai.health import Health
from tongdai.settings import Settings

log = logging.getLogger(__name__)

#: the exit status of an engine that lost the ACD lead (EX_TEMPFAIL: restart me)
STEPPED_DOWN = 75


def node_name(settings: Settings) -> str:
    """This engine's name in the lease: ``acd.node_id``, else host name and FastAGI port."""
    return settings.acd.node_id or f"{socket.gethostname()}:{settings.fastagi.port}"


def lease_for(settings: Settings, client: object, node_id: str) -> RedisLease:
    """The lease beside the ACD's keys (same hash tag), so the store's Lua scripts can read
    its epoch: ``{<acd.state_prefix>}:leader``."""
    ttl = settings.acd.lease_ttl_s
    return RedisLease(
        client,
        "{" + settings.acd.state_prefix + "}:leader",
        node_id,
        ttl_s=ttl,
        renew_every_s=ttl / 3,
        margin_s=min(0.2, ttl / 5),
        timeout_s=ttl / 3,
    )


class AcdRole:
    """Leader or standby, and since when; told by ``run_as_leader``'s ``on_change``."""

    def __init__(
        self,
        node_id: str,
        health: Health | None = None,
        *,
        on_role: Callable[[bool, int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_id = node_id
        self.health = health
        self.on_role = on_role
        self.clock = clock
        self.leading = False
        self.epoch = 0
        self.since = clock()
        #: set when this node led and then lost the lease (the engine stops: fail-stop)
        self.stepped_down = asyncio.Event()
        log.warning("ACD role: %s stands by (another engine may lead)", node_id)
        self._show()

    def changed(self, leading: bool, epoch: int) -> None:
        self.leading, self.epoch, self.since = leading, epoch, self.clock()
        if leading:
            log.warning("ACD role: %s is now the LEADER (epoch %d)", self.node_id, epoch)
        else:
            log.error("ACD role: %s lost the lead (epoch %d): stopping", self.node_id, epoch)
            self.stepped_down.set()
        self._show()

    def view(self) -> dict[str, object]:
        return {
            "role": "leader" if self.leading else "standby",
            "epoch": self.epoch,
            "node": self.node_id,
            "since": self.since,
        }

    def _show(self) -> None:
        if self.health is not None:
            self.health.facts["acd"] = self.view()
        if self.on_role is not None:
            self.on_role(self.leading, self.epoch)


def arrivals_for(acd: AcdService) -> RedisArrivals:
    """The Redis path between a standby's IVR and the leader (``acd.arrivals``)."""
    store = acd.persister.store if acd.persister is not None else None
    if not isinstance(store, RedisStore):
        raise TypeError("acd.failover needs the ACD state in Redis (acd.state_store)")
    return RedisArrivals(store)


def take_arrival(acd: AcdService, arrivals: RedisArrivals, a: Arrival) -> None:
    """The leader puts a caller handed over on a standby in line, at their place."""
    voice = acd.voice
    if voice.waiting(a.uniqueid):
        return  # already ours (the arrival is dropped once our state is stored)
    if voice.enqueue(
        a.uniqueid, a.channel, a.queue, a.caller, a.ticket, entered_at=a.entered_at, seq=a.seq
    ):
        voice.ivr_done(a.uniqueid)
        log.info("took in %s, handed over on a standby (arrival %d)", a.uniqueid, a.seq)
    else:  # full: the standby's wait loop sends the caller to the general queue
        arrivals.mark_done(a.uniqueid, "fallback")
        arrivals.drop(a.uniqueid)


def done_marker(arrivals: RedisArrivals) -> Callable[[Event], None]:
    """A router listener: how a call left the line, for a standby's wait loop."""

    def on_event(event: Event) -> None:
        if isinstance(event, CallTransition):
            if event.event == "complete":
                arrivals.mark_done(event.call_id, "survey")
            elif event.outcome is CallOutcome.TIMEOUT_QUEUE:
                arrivals.mark_done(event.call_id, "timeout")

    return on_event


async def lead_when_elected(
    settings: Settings,
    ami: AmiClient,
    acd: AcdService,
    role: AcdRole,
    arrivals: RedisArrivals | None = None,
) -> None:
    """Wait for the lease; while holding it, run the ACD from the shared state (after the AMI
    login) and take in the callers standbys hand over (``arrivals``). Runs until cancelled,
    or until the lease is lost (``role.stepped_down``)."""
    timeout = settings.acd.lease_ttl_s / 3
    client = aioredis.Redis.from_url(
        settings.acd.state_store,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    lease = lease_for(settings, client, role.node_id)

    async def lead(epoch: int) -> None:
        # subscribed before the rebuild: no event between the AMI snapshot and the loop is lost
        events = ami.subscribe(WANTED_EVENTS)
        try:
            store = acd.persister.store if acd.persister is not None else None
            if isinstance(store, RedisStore):
                store.epoch = epoch  # every write from now on is fenced by this term
            # whatever touched this node's idle distribution while it stood by (its web, a
            # conversation) is not the shared state: never written over what comes from Redis
            acd.router.d.take_dirty()
            await acd.start(login_all=settings.acd.auto_login)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(acd.run(events))
                if arrivals is not None:
                    acd.router.listeners.append(done_marker(arrivals))
                    tg.create_task(arrivals.follow(lambda a: take_arrival(acd, arrivals, a)))
        finally:
            events.close()

    try:
        await run_as_leader(lease, lead, on_change=role.changed)
    finally:
        await client.aclose()
