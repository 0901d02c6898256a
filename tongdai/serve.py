"""``tongdai serve``: the engine process. Wires the stores, the menu, the FastAGI server and the
AMI queue tracker together and runs until SIGTERM/SIGINT.

    Asterisk ──FastAGI──▶ ivr.fastagi ──▶ ivr.runner ──▶ tickets (SQL)
        └──────AMI──────▶ pbx.ami ──▶ pbx.tracker ──────▶ tickets (SQL)

Every task here is owned by one TaskGroup; stopping cancels them and closes the FastAGI
server (calls in progress finish their tickets in their ``finally``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from acd import agi as acd_agi
from acd.callbacks import CallbackDialer
from acd.config import load_acd
from acd.dispatch import Dispatcher
from acd.distributor import WANTED_EVENTS, Distributor
from acd.queue_log import QueueLogWriter
from dossiers.sql import SqlDossierLookup
from ivr import agi
from ivr.agi import AgiChannel
from ivr.fastagi import FastAgiServer
from ivr.menu import check_prompts, load_menu
from ivr.prompts import load_catalogue
from ivr.runner import IvrContext, run_call
from ivr.schedule import load_schedule
from pbx.ami import AmiClient, AmiSubscription
from pbx.reconcile import OFFSET_FILE, reconcile
from pbx.tracker import QueueTracker
from tickets.spool import SpoolingTicketStore
from tickets.sql import SqlTicketStore
from tickets.store import TicketStore
from tongdai.announcements import active_announcement
from tongdai.db import make_engine, upgrade_engine, utcnow
from tongdai.errors import AmiError, ConfigError, StoreError
from tongdai.settings import Settings, home_path, load_settings
from web.app import engine_web, listen
from web.app import serve as serve_web
from web.metrics import QUEUE_OUTCOMES, CountingTicketStore, Metrics

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the engine: FastAGI IVR and AMI queue tracker")
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
            tickets = SqlTicketStore(engine)
            ctx = build_context(settings, engine, tickets)

            async def handle(channel: AgiChannel, script: str) -> None:
                await run_call(channel, ctx)

            await run_stdio(
                handle,
                header_timeout=settings.fastagi.header_timeout,
                command_timeout=settings.fastagi.command_timeout,
            )
        finally:
            await engine.dispose()

    asyncio.run(one_call())
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    asyncio.run(run_engine(settings))
    return 0


def announcement_source(engine: Any, ttl: float = 2.0) -> Callable[[], Awaitable[str | None]]:
    """The active announcement's audio, asked of the database at most every ``ttl`` seconds."""
    cache: dict[str, Any] = {"at": -1e9, "value": None}

    async def current() -> str | None:
        if time.monotonic() - cache["at"] > ttl:
            try:
                a = await active_announcement(engine, utcnow())
                cache["value"] = a.prompt_file if a else None
            except StoreError as exc:
                log.warning("announcement unavailable: %s", exc)
            cache["at"] = time.monotonic()
        value: str | None = cache["value"]
        return value

    return current


def read_ami_secret(settings: Settings) -> str | None:
    path = home_path(settings.ami.secret_file)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def make_ami(settings: Settings) -> AmiClient | None:
    secret = read_ami_secret(settings)
    if secret is None:
        log.warning("no AMI secret at %s: queues will not be followed", settings.ami.secret_file)
        return None
    return AmiClient(
        settings.ami.host,
        settings.ami.port,
        settings.ami.username,
        secret,
        connect_timeout=settings.ami.connect_timeout,
        action_timeout=settings.ami.action_timeout,
        server_filter=True,  # Asterisk sends only the events the engine subscribes to
    )


async def connect_ami(client: AmiClient) -> None:
    """Log in, retrying with backoff while Asterisk is not up yet."""
    delay = 0.5
    while True:
        try:
            await client.start()
            return
        except AmiError as exc:
            log.info("AMI not ready (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def follow_queues(settings: Settings, tracker: QueueTracker, events: AmiSubscription) -> None:
    """Feed app_queue's AMI events to the tracker in order; catch up from queue_log after
    every (re)connection."""
    watermark = home_path(settings.database.state_dir) / "queue_log.watermark"

    async def catch_up() -> None:
        # calls that entered a queue since the engine last watched get tickets from the
        # queue_log; on a first start there is no history to invent
        now = utcnow()
        try:
            since = datetime.fromisoformat(watermark.read_text().strip())
        except (FileNotFoundError, ValueError):
            since = now
        await reconcile(
            tracker.tickets,
            Path(settings.lab.queue_log),
            since - timedelta(minutes=1),
            offset_file=watermark.with_name(OFFSET_FILE),
        )
        watermark.parent.mkdir(parents=True, exist_ok=True)
        watermark.write_text(now.isoformat())
        await tracker.resync()

    await catch_up()
    async for event in events:
        if event.name in ("__connected__", "__overflow__"):  # missed events: catch up
            await catch_up()
        await tracker.handle(event.name, event)


def build_context(
    settings: Settings,
    engine: AsyncEngine,
    tickets: TicketStore,
    *,
    on_queued: Callable[[str, str], None] | None = None,
    now: Callable[[], datetime] = utcnow,
    enqueue: Callable[[str, str, str, str | None, str | None], bool] | None = None,
    ivr_done: Callable[[str], None] | None = None,
    dial_now: Callable[[str], str | None] | None = None,
    queue_announce: Mapping[str, int] | None = None,
) -> IvrContext:
    """Load and check the menu, prompts and office hours; everything a call needs."""
    menu = load_menu(home_path(settings.ivr.menu))
    missing = check_prompts(menu, set(load_catalogue(home_path(settings.ivr.prompts))))
    if missing:
        raise ConfigError(menu.source, "prompts", "; ".join(missing))
    messages = home_path(settings.ivr.messages_dir)
    messages.mkdir(parents=True, exist_ok=True)
    return IvrContext(
        menu=menu,
        tickets=tickets,
        dossiers=SqlDossierLookup(engine),
        schedule=load_schedule(home_path(settings.ivr.schedule)),
        sounds=settings.ivr.asterisk_sounds_dir,
        messages_asterisk=settings.ivr.asterisk_messages_dir,
        messages_host=messages,
        announcement=announcement_source(engine),
        on_queued=on_queued,
        now=now,
        distribution=settings.acd.distribution,
        announce_every_s=settings.acd.announce_every_s,
        enqueue=enqueue,
        ivr_done=ivr_done,
        dial_now=dial_now,
        queue_announce=dict(queue_announce or {}),
    )


def _dial_args(dist: Distributor) -> Callable[[str], str | None]:
    """The IVR's hook for the ACD's direct dial: Dial() arguments or None."""

    def dial_now(uniqueid: str) -> str | None:
        direct = dist.dial_now(uniqueid)
        return direct.dial_args if direct is not None else None

    return dial_now


async def run_engine(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    now: Callable[[], datetime] = utcnow,
) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    engine = make_engine(settings.database.resolved_url())
    try:
        await upgrade_engine(engine)
        # while the database is away, tickets go to a durable local journal and are replayed
        state = home_path(settings.database.state_dir)
        tickets = SpoolingTicketStore(SqlTicketStore(engine), state / "spool")
        metrics = Metrics()
        # app_queue's outcomes (and fallback calls') reach the metrics through the tracker
        tracker = QueueTracker(
            CountingTicketStore(tickets, metrics, QUEUE_OUTCOMES),
            now=now,
            adopt_open=settings.acd.distribution != "engine",
        )
        ami = make_ami(settings)
        dist = make_distributor(settings, ami, tickets) if ami is not None else None
        ctx = build_context(
            settings,
            engine,
            CountingTicketStore(tickets, metrics),
            # with our own ACD, app_queue only sees fallback calls (the tracker finds those)
            on_queued=tracker.queued if dist is None else None,
            now=now,
            enqueue=dist.enqueue if dist is not None else None,
            ivr_done=dist.ivr_done if dist is not None else None,
            dial_now=_dial_args(dist) if dist is not None else None,
            queue_announce={
                name: round(q.announce_every_s)
                for name, q in dist.d.cfg.queues.items()
                if q.announce_every_s > 0
            }
            if dist is not None
            else None,
        )
        sounds = settings.ivr.asterisk_sounds_dir

        ivr_calls = 0

        async def handle(channel: AgiChannel, script: str) -> None:
            nonlocal ivr_calls
            if script == "ivr":
                ivr_calls += 1
                try:
                    await run_call(channel, ctx)
                finally:
                    ivr_calls -= 1
            elif script == "acd_wait" and dist is not None:
                await acd_agi.acd_wait(channel, dist, sounds)
            elif script == "acd_enter":  # `tongdai bench acd` (both modes): no menu
                from bench.acd_bench import acd_enter

                await acd_enter(channel, dist, settings.acd.announce_every_s)
            elif script == "survey" and dist is not None:
                await acd_agi.survey(channel, tickets, sounds, dist.ticket_of)
            else:
                log.warning("unknown AGI script %r: nothing to run", script)

        server = FastAgiServer(
            handle,
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
                dist,
                metrics=metrics,
                calls_in_ivr=lambda: ivr_calls,
                cookie_secure=settings.web.cookie_secure,
                session_hours=settings.web.session_hours,
            )
            web_sock = listen(settings.web.host, settings.web.port)  # a taken port fails now
        agi.COMMAND_OBSERVERS.append(metrics.fastagi_command)
        stop = stop or _signal_event()
        await server.start()
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(tickets.run_replayer(5.0))]
                if ami is not None:
                    tasks.append(
                        tg.create_task(metrics.watch_ami(ami.subscribe(["__connected__"])))
                    )
                    tasks.append(tg.create_task(follow_ami(settings, ami, tracker, dist)))
                if web_app is not None and web_sock is not None:
                    # not in `tasks`: it ends by itself on `stop` (live streams, then uvicorn)
                    tg.create_task(serve_web(web_app, web_sock, stop))
                # everything loaded at start-up (config, menus, modules) is long-lived: keep it
                # out of the collector's full passes, which otherwise stall the event loop for
                # tens of ms with 1,000 calls in the system
                gc.freeze()
                if ready is not None:
                    ready.set()
                log.info("engine ready: FastAGI %s:%d", settings.fastagi.host, server.port)
                if web_app is not None:
                    log.info("web: http://%s:%d", settings.web.host, settings.web.port)
                await stop.wait()
                if dist is not None:
                    dist.dump_decisions(state / "acd_decisions.json")
                for t in tasks:
                    t.cancel()
        finally:
            await server.close()
    finally:
        await engine.dispose()


def make_distributor(
    settings: Settings, ami: AmiClient, tickets: TicketStore
) -> Distributor | None:
    """Our own ACD, when ``acd.distribution = "engine"``."""
    if settings.acd.distribution != "engine":
        return None
    cfg = load_acd(home_path(settings.acd.config))
    dispatcher = Dispatcher(cfg, clock=time.time)
    qlog = QueueLogWriter(home_path(settings.acd.queue_log), cfg)
    dist = Distributor(dispatcher, ami, tickets, qlog)
    greeting = f"{settings.ivr.asterisk_sounds_dir}/goi_lai_chao"
    dist.callbacks = CallbackDialer(dist, settings.acd.callback_channel, greeting)
    if settings.acd.state_store:
        from acd.redis_store import RedisStore

        dist.store = RedisStore.from_url(settings.acd.state_store, prefix=settings.acd.state_prefix)
    return dist


async def follow_ami(
    settings: Settings, ami: AmiClient, tracker: QueueTracker, dist: Distributor | None
) -> None:
    """Connect to AMI and feed the queue tracker and, if configured, our own ACD."""
    # subscribe before logging in so no event between login and the first read is missed
    queue_events = ami.subscribe(
        ["QueueCallerJoin", "AgentConnect", "QueueCallerAbandon", "Hangup", "__connected__"]
    )
    acd_events = ami.subscribe(WANTED_EVENTS) if dist is not None else None
    await connect_ami(ami)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(follow_queues(settings, tracker, queue_events))
            if dist is not None and acd_events is not None:
                await dist.start(login_all=settings.acd.auto_login)
                tg.create_task(dist.run(acd_events))
    finally:
        await ami.close()
        if dist is not None and dist.store is not None:
            await dist.store.close()


def _signal_event() -> asyncio.Event:
    ev = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ev.set)
    return ev
