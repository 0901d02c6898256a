"""The web app: ``create_app(WebDeps)`` builds the Starlette application, ``serve`` runs it on
uvicorn inside the engine's event loop (no threads, no second process).

    /login /logout /wallboard /console /tickets /tickets/{code} /reports   pages (Jinja2)
    /admin/users  accounts (administrators)                               web.pages_users
    /co-quan  the agency desk; /tickets/{code}/forward  the centre        web.pages_agency
    /buu-chinh  postal delivery registrations; /api/v1/postal           web.pages_postal, web.postal
    /tra-cuu  public look-up of a ticket (no login; rate-limited per IP)  web.lookup
    /api/v1/...  REST JSON (OpenAPI at /api/v1/openapi.json)              web.api
    /live        server-sent events (wallboard, console)                  web.live
    /console/conversations, /api/conversations  messages on every channel  web.conversations
    /console/conversations/{code}/resolve|transfer (and /api/...)  web.conversation_actions
    /metrics     Prometheus (the engine's ``MetricsView``)                hotline.metrics
    /api/health  what is down since when (JSON; the wallboard's banner)    web.health
    /recordings/{name}.wav  callers' messages, to logged-in users only
    /recordings/calls/{code}.wav  agents' call recordings, supervisors and admins only (audited)
    /static/...  CSS and the one small script

Everything but /login, /tra-cuu and /static needs a login (``web.security``). The lifespan owns
the live publisher task; ``serve`` stops uvicorn when the engine's ``stop`` event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts.store import AuthStore
from acd.dispatch import Event
from agencies.calendar import WorkCalendar
from agencies.desk import ForwardDesk
from agencies.model import load_agencies
from agencies.sql import SqlForwardStore
from conversations.outbox import Outbox
from dossiers.model import DossierLookup
from dossiers.procedures import ProcedureCatalogue
from dossiers.procedures_sql import SqlCatalogue
from dossiers.sql import SqlDossierLookup
from postal.desk import PostalDesk
from postal.places import load_places
from postal.sql import SqlPostalStore
from postal.store import PostalStore
from tickets.audit import SqlAuditLog
from tickets.kb import KnowledgeBase
from tickets.sql import SqlTicketStore
from tickets.sql_conversations import SqlConversationStore
from tickets.sql_kb import SqlKnowledgeBase
from tickets.store import TicketStore
from tongdai.clock import utcnow
from tongdai.errors import StoreError, TongdaiError
from tongdai.health import Health
from tongdai.settings import PROJECT_HOME, home_path
from web import (
    api,
    back_office,
    conversation_actions,
    conversations,
    kb,
    lookup,
    pages,
    pages_agency,
    pages_postal,
    pages_tickets,
    pages_users,
    postal,
    procedures,
    stats,
)
from web import health as web_health
from web.announce import Announcer, SqlAnnouncer
from web.control import AcdControl, NullControl
from web.errors import ApiError, error_response
from web.labels import FAILED
from web.limits import LoginLimiter, MemoryLimiter, Network
from web.live import LiveHub, LivePublisher
from web.render import render
from web.ticket_actions import CATEGORIES, TicketActions

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


class MetricsView(Protocol):
    """What the web app needs of the engine's metrics (``hotline.metrics.Metrics``): where
    the gauges read from, the ACD events, the text a scrape returns."""

    def bind(
        self,
        control: AcdControl,
        *,
        calls_in_ivr: Callable[[], int] | None = None,
        sse_clients: Callable[[], int] | None = None,
    ) -> None: ...

    def observe(self, event: Event) -> None: ...

    def render(self) -> bytes: ...


@dataclass
class WebDeps:
    engine: AsyncEngine
    tickets: TicketStore
    control: AcdControl = field(default_factory=NullControl)
    hub: LiveHub = field(default_factory=LiveHub)
    #: None: ``/metrics`` answers 404 (the engine passes its own)
    metrics: MetricsView | None = None
    announcer: Announcer | None = None
    dossiers: DossierLookup | None = None
    #: the knowledge base (default: on ``engine``)
    kb: KnowledgeBase | None = None
    #: the procedure catalogue (default: on ``engine``)
    procedures: ProcedureCatalogue | None = None
    #: the callers' messages (host path): ``/recordings/<name>.wav`` serves only these
    messages_dir: Path = field(default_factory=lambda: home_path("recordings/messages"))
    #: the agents' call recordings (host path): ``/recordings/calls/<code>.wav``, supervisors
    #: and admins only
    calls_dir: Path = field(default_factory=lambda: home_path("recordings/calls"))
    #: Secure flag on cookies (set when the app is behind https)
    cookie_secure: bool = False
    session_ttl: timedelta = timedelta(hours=12)
    hasher: PasswordHasher | None = None
    limiter: LoginLimiter = field(default_factory=MemoryLimiter)
    #: reverse proxies whose X-Forwarded-For is believed (``web.limits.client_address``)
    trusted_proxies: tuple[Network, ...] = ()
    categories: dict[str, str] = field(default_factory=lambda: dict(CATEGORIES))
    clock: Callable[[], datetime] = utcnow
    complaint_days: int = 10
    calls_in_ivr: Callable[[], int] | None = None
    stats_every: float = 10.0
    ping_s: float = 15.0
    #: routes the engine adds (the channels' webhooks); they do their own authentication
    extra_routes: list[BaseRoute] = field(default_factory=list)
    #: the message channels for the agents' conversation pages (None: those answer 503)
    conversations: conversations.ConversationDeps | None = None
    #: the back office (forwards to agencies); None: built on ``engine`` with the shipped
    #: agencies file and office calendar and an outbox without senders
    desk: ForwardDesk | None = None
    #: public look-ups (``/tra-cuu``) per client address: 20 per 10 minutes
    lookup_limiter: LoginLimiter = field(
        default_factory=lambda: MemoryLimiter(20, 600.0, max_per_ip=20, max_per_account=20)
    )

    #: what the engine depends on and what is down (``/api/health``, the wallboard's banner)
    health: Health | None = None
    #: postal delivery registrations (default: on ``engine``, the shipped places file)
    postal: PostalStore | None = None


def default_desk(deps: WebDeps) -> ForwardDesk:
    """The desk the web app uses when the engine gives none (tests, ``tongdai web``)."""
    tickets = SqlTicketStore(deps.engine)
    outbox = Outbox(tickets, SqlConversationStore(tickets), {}, clock=deps.clock)
    return ForwardDesk(
        tickets,
        SqlForwardStore(deps.engine),
        load_agencies(),
        WorkCalendar.from_file(PROJECT_HOME / "ivr/schedule.toml"),
        outbox,
        clock=deps.clock,
        kb=deps.kb or SqlKnowledgeBase(deps.engine),
    )


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/live", "/metrics")) or path == "/api"


def _error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", {"status": status, "message": message}, status)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if _wants_json(request):
        return exc.response(headers)
    return _error_page(request, exc.status, FAILED.get(exc.error_id, exc.message))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _wants_json(request):
        ids = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        return error_response(
            exc.status_code, ids.get(exc.status_code, "http_error"), str(exc.detail), None,
            dict(exc.headers or {}),
        )  # fmt: skip
    return _error_page(request, exc.status_code, str(exc.detail))


async def _store_error(request: Request, exc: Exception) -> Response:
    log.warning("web: %s", exc)
    if _wants_json(request):
        return error_response(503, "store_unavailable", "the database is not reachable now")
    return _error_page(request, 503, "Cơ sở dữ liệu tạm thời không truy cập được.")


class SecurityHeaders:
    """A content security policy (no inline script) and the usual hardening headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"x-frame-options": b"DENY",
                    b"cache-control": b"no-store",
                }
                own_csp = next(
                    (v for k, v in headers if k.lower() == b"content-security-policy"), b""
                )
                if b"frame-ancestors" in own_csp and b"frame-ancestors 'none'" not in own_csp:
                    # a page meant to be framed (the web chat) says by whom; no DENY
                    del extra[b"x-frame-options"]
                headers.extend((k, v) for k, v in extra.items() if k not in names)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _conversation_ended(deps: WebDeps, code: str) -> None:
    """A resolved or closed ticket leaves the ACD (its agent's conversation capacity frees)."""
    conv = deps.conversations
    routing = conv.routing if conv is not None else None
    if routing is not None:
        routing.finished(code)


def create_app(deps: WebDeps) -> Starlette:
    auth = AuthStore(
        deps.engine, hasher=deps.hasher, session_ttl=deps.session_ttl, clock=deps.clock
    )
    audit = SqlAuditLog(deps.engine, clock=deps.clock)
    desk = deps.desk or default_desk(deps)
    actions = TicketActions(
        deps.tickets,
        deps.hub,
        deps.categories,
        agent_ids=lambda: {a.id for a in deps.control.state().agents},
        clock=deps.clock,
        complaint_days=deps.complaint_days,
        ended=lambda code: _conversation_ended(deps, code),
        audit=audit,
        forward_of=desk.current,
        agency_name=desk.book.name,
    )
    engine, clock = deps.engine, deps.clock

    async def figures() -> dict[str, Any]:
        return await stats.today(engine, clock())

    publisher = LivePublisher(deps.hub, deps.control, figures, stats_every=deps.stats_every)
    if deps.metrics is not None:
        deps.metrics.bind(
            deps.control, calls_in_ivr=deps.calls_in_ivr, sse_clients=lambda: deps.hub.clients
        )
        if deps.metrics.observe not in deps.hub.observers:
            deps.hub.observers.append(deps.metrics.observe)

    if deps.health is not None:
        web_health.follow(deps.health, deps.hub)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(publisher.run(), name="web-live-publisher")
        try:
            yield
        finally:
            deps.hub.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(
        routes=[
            *deps.extra_routes,
            *api.routes(),
            *web_health.routes(),
            *pages.routes(),
            *pages_tickets.routes(),
            *pages_users.routes(),
            *conversation_actions.routes(),
            *conversations.routes(),
            *back_office.routes(),
            *pages_agency.routes(),
            *postal.routes(),
            *pages_postal.routes(),
            *lookup.routes(),
            *kb.page_routes(),
            *procedures.page_routes(),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreError: _store_error,
        },
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.state.auth = auth
    app.state.actions = actions
    app.state.publisher = publisher
    app.state.announcer = deps.announcer or SqlAnnouncer(deps.engine, synthesize=False)
    app.state.dossiers = deps.dossiers or SqlDossierLookup(deps.engine)
    app.state.desk = desk
    app.state.kb = deps.kb or SqlKnowledgeBase(deps.engine)
    app.state.procedures = deps.procedures or SqlCatalogue(deps.engine)
    app.state.audit = audit
    app.state.postal = PostalDesk(
        deps.postal or SqlPostalStore(deps.engine), load_places(), clock=deps.clock
    )
    return app


class _EngineServer(uvicorn.Server):
    """uvicorn without its own signal handlers (the engine owns SIGTERM/SIGINT) that says
    when it listens."""

    def __init__(self, config: uvicorn.Config, ready: asyncio.Event | None) -> None:
        super().__init__(config)
        self.ready = ready

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.ready is not None:
            self.ready.set()


def listen(host: str, port: int) -> socket.socket:
    """Bind the web port now, so a taken port is a clear error at start (TongdaiError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise TongdaiError(f"web: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


async def serve(
    app: Starlette,
    sock: socket.socket,
    stop: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
) -> None:
    """Run ``app`` on ``sock`` until ``stop`` is set (then live streams end and uvicorn stops,
    waiting at most 5 s for requests in flight)."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        ws="websockets-sansio",  # the web chat's sockets (/chat/ws)
        ws_max_size=1 << 20,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    server = _EngineServer(config, ready)

    async def stopper() -> None:
        await stop.wait()
        app.state.deps.hub.close()
        server.should_exit = True

    async with asyncio.TaskGroup() as tg:
        watch = tg.create_task(stopper())
        try:
            await server.serve(sockets=[sock])
        finally:
            watch.cancel()
