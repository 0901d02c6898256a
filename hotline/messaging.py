"""The message channels, assembled: the conversation core (inbox, outbox, bot, journal and its
processor) and the channel adapters configured in ``[channels.*]`` (their webhook routes,
their senders). ``hotline.serve`` runs ``Messaging.run`` beside the calls and mounts
``Messaging.routes`` on the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from channels.email.channel import EmailChannel
from channels.facebook.events import parse_facebook
from channels.facebook.routes import facebook_routes
from channels.facebook.sender import FacebookSender
from channels.facebook.settings import FacebookSettings
from channels.outbound import window_open
from channels.webchat.events import parse_webchat
from channels.webchat.routes import Webchat, webchat_routes
from channels.webchat.settings import WebchatSettings
from channels.webchat.wiring import build_webchat, connect
from channels.zalo.events import parse_zalo
from channels.zalo.routes import zalo_routes
from channels.zalo.sender import ZaloSender
from channels.zalo.settings import ZaloSettings
from conversations.bot import Bot
from conversations.canned import CannedAnswers
from conversations.files import AttachmentStore
from conversations.inbox import Inbox
from conversations.journal import SpoolingJournal, SqlEventJournal
from conversations.model import ChannelSender, ConversationRouting
from conversations.outbox import Outbox, WindowCheck
from conversations.process import JournalProcessor, Parser
from conversations.texts import DEFAULT as DEFAULT_TEXTS
from conversations.texts import load_texts
from dossiers.procedures_sql import SqlCatalogue
from dossiers.sql import SqlDossierLookup
from ivr.prompts import load_catalogue
from ivr.schedule import load_schedule
from tickets.model import Channel
from tickets.sql import SqlTicketStore
from tickets.sql_conversations import SqlConversationStore
from tickets.sql_kb import SqlKnowledgeBase
from tongdai.clock import VN_TZ, utcnow
from tongdai.settings import Settings, home_path

log = logging.getLogger(__name__)


class Closable(Protocol):
    async def aclose(self) -> None: ...


@dataclass
class Messaging:
    tickets: SqlTicketStore
    conversations: SqlConversationStore
    inbox: Inbox
    outbox: Outbox
    journal: SpoolingJournal
    processor: JournalProcessor
    files: AttachmentStore
    canned: CannedAnswers
    routes: list[BaseRoute] = field(default_factory=list)
    closables: list[Closable] = field(default_factory=list)
    #: extra tasks a channel needs (the email reader, ...), run beside the core's
    tasks: list[Callable[[], Any]] = field(default_factory=list)
    #: the portal's live chat, when ``[channels.webchat]`` is configured
    webchat: Webchat | None = None

    async def run(self) -> None:
        """Deliver replies, process journaled events, replay the event spool; until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.outbox.run())
                tg.create_task(self.processor.run())
                tg.create_task(self.journal.run_replayer())
                for task in self.tasks:
                    tg.create_task(task())
        finally:
            for c in self.closables:
                with contextlib.suppress(Exception):
                    await c.aclose()


def _window(cfg: ZaloSettings | FacebookSettings) -> WindowCheck:
    def check(last_inbound_at: datetime, now: datetime) -> bool:
        return window_open(last_inbound_at, now, cfg)

    return check


def build_messaging(
    settings: Settings,
    engine: AsyncEngine,
    *,
    routing: ConversationRouting | None = None,
    queue_of: Callable[[str], str] | None = None,
) -> Messaging:
    """The message channels on ``engine``'s database; ``routing``: our ACD's messaging side
    (None: conversations are never handed to agents live, the citizen gets the offline
    answer and the ticket waits in the back office)."""
    ch = settings.channels
    source = settings.source
    tickets = SqlTicketStore(engine)
    conv = SqlConversationStore(tickets)
    files = AttachmentStore(home_path(ch.attachments_dir), max_bytes=ch.max_attachment_bytes)
    texts = load_texts(home_path(ch.texts) if ch.texts else DEFAULT_TEXTS)
    senders: dict[Channel, ChannelSender] = {}
    windows: dict[Channel, WindowCheck] = {}
    parsers: dict[Channel, Parser] = {}
    journal = SpoolingJournal(
        SqlEventJournal(engine), home_path(settings.database.state_dir) / "events-spool"
    )
    routes: list[BaseRoute] = []
    closables: list[Closable] = []
    tasks: list[Callable[[], Any]] = []
    email: EmailChannel | None = None
    if "email" in ch.tables:
        state_dir = home_path(settings.database.state_dir)
        email = EmailChannel.from_settings(source, ch.tables["email"], state_dir)
        senders[Channel.EMAIL] = email.sender
    if "zalo" in ch.tables:
        zcfg = ZaloSettings.from_table(source, ch.tables["zalo"])
        zalo = ZaloSender(zcfg)
        senders[Channel.ZALO], windows[Channel.ZALO] = zalo, _window(zcfg)
        parsers[Channel.ZALO] = parse_zalo
        routes += zalo_routes(zcfg, journal)
        closables.append(zalo)
    if "facebook" in ch.tables:
        fcfg = FacebookSettings.from_table(source, ch.tables["facebook"])
        fb = FacebookSender(fcfg)
        senders[Channel.FACEBOOK], windows[Channel.FACEBOOK] = fb, _window(fcfg)
        parsers[Channel.FACEBOOK] = parse_facebook
        routes += facebook_routes(fcfg, journal)
        closables.append(fb)
    chat: Webchat | None = None
    if "webchat" in ch.tables:
        wcfg = WebchatSettings.from_table(source, ch.tables["webchat"])
        chat, senders[Channel.WEBCHAT] = build_webchat(
            wcfg, conv, journal, home_path(settings.database.state_dir)
        )
        parsers[Channel.WEBCHAT] = parse_webchat
        routes += webchat_routes(chat)
    outbox = Outbox(
        tickets,
        conv,
        senders,
        windows=windows,
        attachment_path=lambda a: str(files.path_of(a)),
    )
    schedule = load_schedule(home_path(settings.ivr.schedule))
    phrases = dict(load_catalogue(home_path(settings.ivr.prompts)).items())
    bot = Bot(
        texts,
        SqlDossierLookup(engine),
        phrases,
        lambda: utcnow().astimezone(VN_TZ).date(),
        kb=SqlKnowledgeBase(engine),
        procedures=SqlCatalogue(engine),
    )
    inbox = Inbox(
        tickets,
        conv,
        outbox,
        files,
        texts,
        bot=bot,
        routing=routing,
        is_open=schedule.is_open,
        queue_of=queue_of or (lambda category: category),
    )
    if email is not None:  # the IMAP folder is mail's journal: the reader feeds the Inbox
        inbox.acknowledgement[Channel.EMAIL] = email.acknowledge
        tasks.append(email.reader(inbox).run)
    processor = JournalProcessor(journal.inner, parsers, inbox)
    if chat is not None:
        connect(chat, conv, inbox, outbox)
    return Messaging(
        tickets=tickets,
        conversations=conv,
        inbox=inbox,
        outbox=outbox,
        journal=journal,
        processor=processor,
        files=files,
        canned=CannedAnswers(engine),
        routes=routes,
        closables=closables,
        webchat=chat,
        tasks=tasks,
    )


def attachments_root(settings: Settings) -> Path:
    return home_path(settings.channels.attachments_dir)
