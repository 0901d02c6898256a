"""A test and demo rig for the web chat and the agents' conversation pages: the web app
(``bench.web_rig``) with the conversation core on the same database (journal, processor,
inbox with the bot, outbox with the web chat's sender) and a scripted ACD messaging side
that hands every conversation to one agent. No Asterisk, no network.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from acd.agent import AcdError
from bench.web_rig import WebRig, web_rig
from channels.webchat.events import parse_webchat
from channels.webchat.routes import Webchat, webchat_routes
from channels.webchat.settings import WebchatSettings
from channels.webchat.wiring import build_webchat, connect
from conversations.bot import Bot
from conversations.canned import CannedAnswers
from conversations.files import AttachmentStore
from conversations.inbox import Inbox
from conversations.journal import SqlEventJournal
from conversations.model import ChannelSender
from conversations.outbox import Outbox, WindowCheck
from conversations.process import JournalProcessor, Parser
from conversations.texts import load_texts
from dossiers.memory import MemoryDossierLookup
from ivr.prompts import load_catalogue
from tickets.model import Channel
from tickets.sql_conversations import SqlConversationStore
from tongdai.settings import PROJECT_HOME
from web.app import create_app
from web.conversations import ConversationDeps

#: the key of the rig's visitor tokens (tests only)
TEST_KEY = b"webchat-test-key-0123456789abcdef"


class OneAgentRouting:
    """The ACD's messaging side, scripted: every conversation goes to ``agent`` (None:
    nobody is logged in: the citizen gets the offline answer)."""

    def __init__(self, agent: str | None = "agent101") -> None:
        self.agent = agent
        #: agents who cannot take a conversation now (a transfer to them is refused)
        self.refuse: set[str] = set()
        self.held: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def enqueue(self, code: str, queue: str, channel: Channel, *, agent: str | None = None) -> bool:
        self.calls.append(("enqueue", code))
        if self.agent is None:
            return False
        self.held[code] = agent or self.agent
        return True

    def citizen_wrote(self, code: str) -> None:
        self.calls.append(("citizen_wrote", code))

    def agent_replied(self, code: str, agent: str) -> None:
        self.calls.append(("agent_replied", code))

    def transfer(self, code: str, *, queue: str | None = None, agent: str | None = None) -> None:
        """To ``agent`` (any name the rig's accounts use), or back in ``queue`` (nobody's)."""
        self.calls.append(("transfer", code))
        if agent in self.refuse:
            raise AcdError(f"agent {agent} cannot take another conversation now")
        if agent is not None:
            self.held[code] = agent
        else:
            self.held.pop(code, None)

    def finished(self, code: str) -> None:
        self.held.pop(code, None)

    def assigned_to(self, code: str) -> str | None:
        return self.held.get(code)


@dataclass
class ChatRig:
    web: WebRig
    app: Any
    chat: Webchat
    conv: SqlConversationStore
    inbox: Inbox
    outbox: Outbox
    journal: SqlEventJournal
    canned: CannedAnswers
    routing: OneAgentRouting
    processor: JournalProcessor
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def chat_rig(
    db_url: str,
    tmp: Path,
    *,
    cfg: WebchatSettings | None = None,
    routing: OneAgentRouting | None = None,
    windows: dict[Channel, WindowCheck] | None = None,
    extra_senders: dict[Channel, ChannelSender] | None = None,
    extra_parsers: dict[Channel, Parser] | None = None,
    lifespan: bool = True,
) -> AsyncIterator[ChatRig]:
    """The app with ``/chat`` and the conversation pages, the journal's processor and the
    outbox running (``lifespan=False``: uvicorn runs the app's lifespan)."""
    cfg = cfg or WebchatSettings(allowed_origins=("https://portal.example",))
    routing = routing if routing is not None else OneAgentRouting()
    async with web_rig(db_url, lifespan=False) as web:
        engine = web.deps.engine
        tickets = web.deps.tickets
        conv = SqlConversationStore(tickets)  # type: ignore[arg-type]
        journal = SqlEventJournal(engine)
        chat, sender = build_webchat(cfg, conv, journal, tmp, key=TEST_KEY)
        senders: dict[Channel, ChannelSender] = {Channel.WEBCHAT: sender, **(extra_senders or {})}
        outbox = Outbox(tickets, conv, senders, windows=windows, base_delay_s=0.2)
        texts = load_texts()
        phrases = dict(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml").items())
        bot = Bot(texts, MemoryDossierLookup([]), phrases, lambda: date(2026, 12, 7))
        files = AttachmentStore(tmp / "attachments")
        inbox = Inbox(tickets, conv, outbox, files, texts, bot=bot, routing=routing)
        parsers: dict[Channel, Parser] = {Channel.WEBCHAT: parse_webchat, **(extra_parsers or {})}
        processor = JournalProcessor(journal, parsers, inbox)
        connect(chat, conv, inbox, outbox)
        canned = CannedAnswers(engine)
        web.deps.extra_routes = webchat_routes(chat)
        web.deps.conversations = ConversationDeps(
            conv, outbox, canned, files, inbox=inbox, typing=chat.typing
        )
        app = create_app(web.deps)
        rig = ChatRig(web, app, chat, conv, inbox, outbox, journal, canned, routing, processor)
        rig.tasks = [
            asyncio.create_task(outbox.run(0.2), name="rig-outbox"),
            asyncio.create_task(processor.run(0.2), name="rig-processor"),
        ]
        try:
            if lifespan:
                async with app.router.lifespan_context(app):
                    yield rig
            else:
                yield rig
        finally:
            for t in rig.tasks:
                t.cancel()
            for t in rig.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t


def api_client(rig: ChatRig, who: str | None) -> httpx.AsyncClient:
    """An API client of the rig's app, in process, with ``who``'s token (None: anonymous)."""
    headers = {"Authorization": f"Bearer {rig.web.tokens[who]}"} if who else {}
    transport = httpx.ASGITransport(app=rig.app)
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)
