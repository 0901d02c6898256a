"""The engine's parts, built from the settings: stores, the IVR context, AMI, our ACD and the
web app. ``hotline.serve`` assembles them into the running process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from acd.config import load_acd
from acd.messaging import ConversationLoader
from acd.queue_log import QueueLogWriter
from acd.service import AcdService
from acd.store import StateStore
from agencies.desk import ForwardDesk
from agencies.forwards import current
from agencies.sql import SqlForwardStore
from agencies.store import ForwardStore
from dossiers.procedures_sql import SqlCatalogue
from dossiers.sql import SqlDossierLookup
from hotline.metrics import Metrics
from ivr.announcements import active_announcement
from ivr.handover import AppQueueHandover, QueueHandover
from ivr.menu import check_prompts, load_menu
from ivr.prompts import load_catalogue
from ivr.runner import IvrContext
from ivr.schedule import load_schedule
from pbx.ami import AmiClient
from postal.sql import SqlPostalStore
from tickets.store import TicketStore
from tongdai.clock import utcnow
from tongdai.errors import AmiError, ConfigError, StoreError
from tongdai.health import Health
from tongdai.settings import Settings, home_path
from web.announce import SqlAnnouncer
from web.app import WebDeps, create_app
from web.control import AcdControl, NullControl, RouterControl
from web.conversations import ConversationDeps
from web.limits import LoginLimiter, MemoryLimiter, RedisLimiter, parse_proxies
from web.live import LiveHub

log = logging.getLogger(__name__)


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


def build_context(
    settings: Settings,
    engine: AsyncEngine,
    tickets: TicketStore,
    *,
    handover: QueueHandover | None = None,
    now: Callable[[], datetime] = utcnow,
) -> IvrContext:
    """Load and check the menu, prompts and office hours; everything a call needs."""
    menu = load_menu(home_path(settings.ivr.menu))
    missing = check_prompts(menu, set(load_catalogue(home_path(settings.ivr.prompts))))
    if missing:
        raise ConfigError(menu.source, "prompts", "; ".join(missing))
    messages = home_path(settings.ivr.messages_dir)
    messages.mkdir(parents=True, exist_ok=True)
    home_path(settings.ivr.calls_dir).mkdir(parents=True, exist_ok=True)
    return IvrContext(
        menu=menu,
        tickets=tickets,
        dossiers=SqlDossierLookup(engine),
        schedule=load_schedule(home_path(settings.ivr.schedule)),
        sounds=settings.ivr.asterisk_sounds_dir,
        messages_asterisk=settings.ivr.asterisk_messages_dir,
        messages_host=messages,
        announcement=announcement_source(engine),
        now=now,
        handover=handover or AppQueueHandover(),
        postal=SqlPostalStore(engine),
        records=recording_queues(settings).__contains__,
        calls_asterisk=settings.ivr.asterisk_calls_dir,
        recording_notice=settings.ivr.recording_notice,
        procedures=SqlCatalogue(engine),
        agency_of=agency_source(SqlForwardStore(engine)),
        sounds_host=home_path(settings.ivr.sounds_dir),
    )


def recording_queues(settings: Settings) -> frozenset[str]:
    """The queues whose agents' calls are recorded: ``record = true`` in the ACD file, which
    names app_queue's queues too (so the switch is the same for both distributions). No file
    (a deployment on app_queue alone): nothing is recorded, and the log says so."""
    path = home_path(settings.acd.config)
    if not path.exists():
        log.warning("no ACD file at %s: no queue records its calls", path)
        return frozenset()
    return frozenset(q.name for q in load_acd(path).queues.values() if q.record)


def agency_source(forwards: ForwardStore) -> Callable[[str], Awaitable[str | None]]:
    """The agency a ticket is with: its latest forward not sent back (``ForwardDesk.current``)."""

    async def agency_of(code: str) -> str | None:
        fwd = current(await forwards.of_ticket(code))
        return fwd.agency_id if fwd is not None else None

    return agency_of


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
    return _ami_client(settings, settings.ami.host, settings.ami.port, secret)


def _ami_client(settings: Settings, host: str, port: int, secret: str) -> AmiClient:
    return AmiClient(
        host,
        port,
        settings.ami.username,
        secret,
        connect_timeout=settings.ami.connect_timeout,
        action_timeout=settings.ami.action_timeout,
        server_filter=True,  # Asterisk sends only the events the engine subscribes to
    )


def make_more_amis(settings: Settings) -> dict[str, AmiClient]:
    """One AMI client per further Asterisk node (``[ami] more_nodes``), by the name its health
    is reported under (``asterisk@host:port``); the same account as the first node's."""
    secret = read_ami_secret(settings)
    if secret is None:
        return {}
    return {
        f"asterisk@{host}:{port}": _ami_client(settings, host, port, secret)
        for host, port in settings.ami.more_addresses()
    }


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


def make_distributor(
    settings: Settings,
    ami: AmiClient,
    tickets: TicketStore,
    *,
    conversation_loader: ConversationLoader | None = None,
) -> AcdService | None:
    """Our own ACD, when ``acd.distribution = "engine"``: the router, the voice adapter on
    ``ami`` (with callbacks), the messaging adapter (``.messaging``, the conversation core's
    ``ConversationRouting``), the recorder and, with ``acd.state_store``, the persister.
    ``conversation_loader`` reads the open conversations back at start."""
    if settings.acd.distribution != "engine":
        return None
    cfg = load_acd(home_path(settings.acd.config))
    store: StateStore | None = None
    if settings.acd.state_store:
        from acd.redis_store import RedisStore

        store = RedisStore.from_url(settings.acd.state_store, prefix=settings.acd.state_prefix)
    acd = AcdService.build(
        cfg,
        ami,
        tickets,
        queue_log=QueueLogWriter(home_path(settings.acd.queue_log), cfg),
        store=store,
        clock=time.time,
    )
    greeting = f"{settings.ivr.asterisk_sounds_dir}/goi_lai_chao"
    acd.voice.enable_callbacks(settings.acd.callback_channel, greeting)
    acd.conversation_loader = conversation_loader
    return acd


def engine_web(
    settings: Settings,
    engine: AsyncEngine,
    tickets: TicketStore,
    acd: AcdService | None,
    *,
    metrics: Metrics | None = None,
    calls_in_ivr: Callable[[], int] | None = None,
    routes: list[BaseRoute] | None = None,
    conversations: ConversationDeps | None = None,
    desk: ForwardDesk | None = None,
    health: Health | None = None,
) -> Starlette:
    """The web app as ``tongdai serve`` runs it: our ACD if the engine distributes calls (its
    router's listener feeds the live hub), announcements synthesised like ``tongdai announce
    set``."""
    hub = LiveHub()
    control: AcdControl = NullControl()
    if acd is not None:
        control = RouterControl(acd.router, acd.voice.ami)
        acd.router.listeners.append(hub.on_acd_event)
    redis_url = settings.web.limits_store or settings.acd.state_store
    limiter: LoginLimiter = MemoryLimiter()
    if redis_url:
        import redis.asyncio as aioredis

        limiter = RedisLimiter(
            aioredis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2),
            prefix=f"{settings.acd.state_prefix}:login",
        )
    try:
        proxies = parse_proxies(settings.web.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(settings.source, "web.trusted_proxies", str(exc)) from None
    deps = WebDeps(
        engine,
        tickets,
        control=control,
        hub=hub,
        metrics=metrics,
        announcer=SqlAnnouncer(
            engine,
            home_path(settings.ivr.announcements_dir),
            settings.ivr.asterisk_announcements_dir,
        ),
        messages_dir=home_path(settings.ivr.messages_dir),
        calls_dir=home_path(settings.ivr.calls_dir),
        cookie_secure=settings.web.cookie_secure
        or settings.web.public_url.lower().startswith("https://"),
        limiter=limiter,
        trusted_proxies=proxies,
        session_ttl=timedelta(hours=settings.web.session_hours),
        calls_in_ivr=calls_in_ivr,
        extra_routes=list(routes or []),
        conversations=conversations,
        desk=desk,
        health=health,
    )
    return create_app(deps)
