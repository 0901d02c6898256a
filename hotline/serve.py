"""``tongdai serve``: the engine process, and ``tongdai agi``: one call on stdin/stdout.

    Asterisk ──FastAGI──▶ ivr.fastagi (AgiScripts) ──▶ ivr.runner ──▶ tickets (SQL, spool)
        │                                          └─▶ acd.agi (wait loop, survey)
        └──────AMI──────▶ pbx.ami ──▶ appqueue.follow (app_queue) / acd.voice (our ACD)
    web (Starlette, same event loop) ◀── ACD transitions (acd.router), tickets, metrics

Every task here is owned by one TaskGroup; stopping cancels them and closes the FastAGI
server (calls in progress finish their tickets in their ``finally``).

With ``acd.failover`` (``hotline.failover``), the ACD runs only while this engine holds the
leader lease; a standby serves FastAGI and the web and keeps its AMI session. A leader that
loses the lease stops the process (exit status 75) and is restarted as a standby.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from acd import agi as acd_agi
from acd.arrivals import RedisArrivals
from acd.handover import AcdHandover
from acd.messaging import tickets_loader
from acd.service import AcdService
from acd.voice_events import WANTED_EVENTS
from appqueue.follow import QUEUE_EVENTS, follow_queues
from appqueue.tracker import QueueTracker
from bench import acd_bench
from hotline.back_office import build_desk, build_digest
from hotline.failover import STEPPED_DOWN, AcdRole, arrivals_for, lead_when_elected, node_name
from hotline.messaging import build_messaging
from hotline.metrics import QUEUE_OUTCOMES, CountingTicketStore, Metrics
from hotline.parts import (
    build_context,
    connect_ami,
    engine_web,
    make_ami,
    make_distributor,
    make_more_amis,
)
from hotline.recordings import link_recordings
from hotline.sdnotify import notify, watchdog
from hotline.watch import HEALTH_FILE, Probe, database_probe, health_file, redis_probe, watch_probes
from hotline.watch import watch_ami as watch_ami_health
from ivr import agi, rejoin, runner
from ivr.fastagi import AgiScripts, FastAgiServer
from ivr.handover import AppQueueHandover, QueueHandover
from pbx.ami import AmiClient
from tickets.spool import SpoolingTicketStore
from tickets.sql import SqlTicketStore
from tickets.store import TicketStore
from tongdai.clock import utcnow
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import StoreError
from tongdai.health import Health
from tongdai.settings import Settings, home_path, load_settings
from web.app import listen
from web.app import serve as serve_web
from web.conversations import ConversationDeps

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the engine: FastAGI IVR, AMI, our ACD, the web app")
    p.set_defaults(func=_serve)
    a = sub.add_parser("agi", help="run one call as a plain AGI on stdin/stdout")
    a.set_defaults(func=_agi)


def _agi(args: argparse.Namespace) -> int:
    """``AGI(tongdai agi)``: the IVR for one call, over stdin/stdout (logs go to stderr)."""
    from ivr.stdio import run_stdio

    settings = load_settings(args.config)

    async def one_call() -> None:
        engine = make_engine(settings.database.resolved_url())
        try:
            await upgrade_engine(engine)
            ctx = build_context(settings, engine, SqlTicketStore(engine))
            scripts = AgiScripts()
            runner.register_scripts(scripts, ctx)
            await run_stdio(
                lambda channel, _script: scripts(channel, "ivr"),
                header_timeout=settings.fastagi.header_timeout,
                command_timeout=settings.fastagi.command_timeout,
            )
        finally:
            await engine.dispose()

    asyncio.run(one_call())
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    return asyncio.run(run_engine(settings))


async def run_engine(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None); the exit status
    (``STEPPED_DOWN`` when this engine led the ACD and lost the lease)."""
    engine = make_engine(settings.database.resolved_url())
    try:
        health = Health()
        # the database may be away at start: calls are still answered (tickets spooled) and
        # the schema is brought up to date as soon as it is back
        schema = asyncio.Event()
        if await _migrate_once(engine, health):
            schema.set()
        # while the database is away, tickets go to a durable local journal and are replayed
        state = home_path(settings.database.state_dir)
        # `tongdai lab status` reads what is down from this file
        health_file(health, state / HEALTH_FILE)
        # what is watched while running: the database, Redis, the AMI session (below)
        probes: dict[str, Probe] = {"database": database_probe(engine, schema.is_set)}
        closers = []
        redis_url = settings.acd.state_store or settings.web.limits_store
        if redis_url:
            probes["redis"], close_redis = redis_probe(redis_url)
            closers.append(close_redis)
        tickets = SpoolingTicketStore(SqlTicketStore(engine), state / "spool")
        metrics = Metrics()
        metrics.watch_health(health)
        # app_queue's outcomes (and fallback calls') reach the metrics through the tracker
        tracker = QueueTracker(
            CountingTicketStore(tickets, metrics, QUEUE_OUTCOMES),
            now=now,
            adopt_open=settings.acd.distribution != "engine",
        )
        ami = make_ami(settings)
        # further Asterisk nodes behind Kamailio: their queue events feed the same tracker
        more_amis = make_more_amis(settings)
        acd = make_distributor(settings, ami, tickets) if ami is not None else None
        if acd is not None and more_amis:
            log.warning(
                "our own ACD follows the first Asterisk node only (%s:%d); calls handed to "
                "it from %s are not distributed (one ACD over several nodes: not built yet)",
                settings.ami.host,
                settings.ami.port,
                ", ".join(more_amis),
            )
        role = (
            AcdRole(node_name(settings), health, on_role=metrics.acd_role)
            if acd is not None and settings.acd.failover
            else None
        )
        # failover: a standby hands its callers to the leader through Redis
        arrivals = arrivals_for(acd) if acd is not None and role is not None else None
        # with our own ACD, app_queue only sees fallback calls (the tracker finds those)
        handover: QueueHandover = (
            AcdHandover(
                acd.voice,
                settings.acd.announce_every_s,
                leading=(lambda: role.leading) if role is not None else None,
                forward=arrivals.forward if arrivals is not None else None,
            )
            if acd is not None
            else AppQueueHandover(tracker.queued)
        )
        ctx = build_context(
            settings, engine, CountingTicketStore(tickets, metrics), handover=handover, now=now
        )
        # with our own ACD, conversations wait for agents in its queues (and come back at start)
        messaging = build_messaging(
            settings,
            engine,
            routing=acd.messaging if acd is not None else None,
            queue_of=acd.messaging.queue_of if acd is not None else None,
        )
        if acd is not None:
            acd.conversation_loader = tickets_loader(messaging.conversations)
        desk = build_desk(settings, engine, messaging.outbox)
        scripts = AgiScripts()
        runner.register_scripts(scripts, ctx)
        rejoin.register_scripts(scripts, ctx)  # callers a crashed engine lost come back here
        acd_bench.register_scripts(
            scripts, acd.voice if acd is not None else None, settings.acd.announce_every_s
        )
        if acd is not None:
            acd_agi.register_scripts(
                scripts,
                acd.voice,
                tickets,
                settings.ivr.asterisk_sounds_dir,
                leading=(lambda: role.leading) if role is not None else None,
                arrivals=arrivals,
            )
        server = FastAgiServer(
            scripts,
            host=settings.fastagi.host,
            port=settings.fastagi.port,
            header_timeout=settings.fastagi.header_timeout,
            command_timeout=settings.fastagi.command_timeout,
            max_connections=settings.fastagi.max_connections,
        )
        web_app = web_sock = None
        if settings.web.enabled:
            web_app = engine_web(
                settings,
                engine,
                tickets,
                acd,
                metrics=metrics,
                calls_in_ivr=lambda: scripts.running("ivr"),
                routes=messaging.routes,
                conversations=ConversationDeps(
                    messaging.conversations,
                    messaging.outbox,
                    messaging.canned,
                    messaging.files,
                    inbox=messaging.inbox,
                    typing=messaging.webchat.typing if messaging.webchat else None,
                ),
                desk=desk,
                health=health,
            )
            web_sock = listen(settings.web.host, settings.web.port)  # a taken port fails now
        agi.COMMAND_OBSERVERS.append(metrics.fastagi_command)
        stop = stop or _signal_event()
        await server.start()
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(_migrate_until_done(engine, health, schema)),
                    tg.create_task(watch_probes(health, probes)),
                    tg.create_task(watchdog()),
                    tg.create_task(tickets.run_replayer(5.0)),
                    tg.create_task(messaging.run()),
                    tg.create_task(desk.run(settings.back_office.notify_every_s)),
                    tg.create_task(build_digest(settings, desk, engine).run()),
                ]
                if ami is not None:
                    tasks.append(
                        tg.create_task(metrics.watch_ami(ami.subscribe(["__connected__"])))
                    )
                    tasks.append(
                        tg.create_task(
                            watch_ami_health(
                                health, ami.subscribe(["__connected__", "__disconnected__"])
                            )
                        )
                    )
                    tasks.append(
                        tg.create_task(
                            follow_ami(settings, ami, tracker, acd, tickets, role, arrivals)
                        )
                    )
                for name, node in more_amis.items():
                    tasks.append(
                        tg.create_task(
                            watch_ami_health(
                                health,
                                node.subscribe(["__connected__", "__disconnected__"]),
                                name=name,
                            )
                        )
                    )
                    tasks.append(tg.create_task(follow_node_queues(node, tracker)))
                if arrivals is not None:
                    tasks.append(tg.create_task(arrivals.run()))
                if web_app is not None and web_sock is not None:
                    # not in `tasks`: it ends by itself on `stop` (live streams, then uvicorn)
                    tg.create_task(serve_web(web_app, web_sock, stop))
                # everything loaded at start-up (config, menus, modules) is long-lived: keep it
                # out of the collector's full passes, which otherwise stall the event loop for
                # tens of ms with 1,000 calls in the system
                gc.freeze()
                if ready is not None:
                    ready.set()
                notify("READY=1")  # systemd Type=notify (nothing outside systemd)
                log.info("engine ready: FastAGI %s:%d", settings.fastagi.host, server.port)
                if web_app is not None:
                    log.info("web: http://%s:%d", settings.web.host, settings.web.port)
                await _first(stop, role.stepped_down if role is not None else None)
                notify("STOPPING=1")
                if acd is not None:
                    acd.router.dump_decisions(state / "acd_decisions.json")
                for t in tasks:
                    t.cancel()
        finally:
            await server.close()
            for close in closers:
                await close()
    finally:
        await engine.dispose()
    return STEPPED_DOWN if role is not None and role.stepped_down.is_set() else 0


async def _first(stop: asyncio.Event, stepped_down: asyncio.Event | None) -> None:
    """Until ``stop`` is set, or this engine lost the ACD lead (failover: fail-stop)."""
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, stepped_down) if e is not None]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def follow_ami(
    settings: Settings,
    ami: AmiClient,
    tracker: QueueTracker,
    acd: AcdService | None,
    tickets: TicketStore,
    role: AcdRole | None = None,
    arrivals: RedisArrivals | None = None,
) -> None:
    """Connect to AMI and feed the app_queue follower, the recordings' linker and, if
    configured, our own ACD (with ``role``: only while this engine holds the leader lease)."""
    # subscribe before logging in so no event between login and the first read is missed
    queue_events = ami.subscribe(QUEUE_EVENTS)
    acd_events = ami.subscribe(WANTED_EVENTS) if acd is not None else None
    recording_events = ami.subscribe(["UserEvent"])
    if role is not None and acd_events is not None:
        # a standby must not queue events for a distribution it does not run: the leader's
        # term subscribes afresh (the names stay in the login's event filter)
        acd_events.close()
    await connect_ami(ami)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(
                link_recordings(
                    recording_events,
                    tickets,
                    settings.ivr.asterisk_calls_dir,
                    home_path(settings.ivr.calls_dir),
                )
            )
            tg.create_task(
                follow_queues(
                    tracker,
                    queue_events,
                    queue_log=Path(settings.lab.queue_log),
                    watermark=home_path(settings.database.state_dir) / "queue_log.watermark",
                )
            )
            if acd is not None and role is not None:
                tg.create_task(lead_when_elected(settings, ami, acd, role, arrivals))
            elif acd is not None and acd_events is not None:
                await acd.start(login_all=settings.acd.auto_login)
                tg.create_task(acd.run(acd_events))
    finally:
        await ami.close()
        if acd is not None:
            await acd.close()


async def follow_node_queues(ami: AmiClient, tracker: QueueTracker) -> None:
    """A further Asterisk node's app_queue events into the shared tracker (tickets are keyed
    by uniqueid, which each node prefixes with its own systemname). Its queue_log is not read:
    what a node did while the engine was away is not recovered (the first node's is)."""
    events = ami.subscribe(QUEUE_EVENTS)
    await connect_ami(ami)
    try:
        async for event in events:
            if event.name in ("__connected__", "__overflow__"):
                await tracker.resync()
            await tracker.handle(event.name, event)
    finally:
        await ami.close()


async def _migrate_once(engine: AsyncEngine, health: Health) -> bool:
    try:
        await upgrade_engine(engine)
    except StoreError as exc:
        health.down("database", str(exc))
        return False
    health.up("database")
    return True


async def _migrate_until_done(engine: AsyncEngine, health: Health, schema: asyncio.Event) -> None:
    """Retry the migration while the database is away at start; ``schema`` is set once done
    (then the ``database`` probe of ``hotline.watch`` takes over the watching)."""
    delay = 1.0
    while not schema.is_set():
        await asyncio.sleep(delay)
        delay = min(delay * 2, 15.0)
        if await _migrate_once(engine, health):
            schema.set()


def _signal_event() -> asyncio.Event:
    ev = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ev.set)
    return ev
