"""Messages in: every citizen message becomes part of a ticket, stored before anything else.

``Inbox.receive`` (the ``InboundSink`` every channel adapter hands messages to):

1. a message already stored (same channel and external id) changes nothing;
2. the citizen's contact is found or created from the sender's identity;
3. attachments are kept on disk (size limit, type allow-list);
4. the message joins its conversation: for email by the threading headers or a ticket code in
   the subject (a new thread is a new ticket); for the chat channels, the contact's open
   conversation on that channel; otherwise a new ticket is opened with the message, in one
   transaction;
5. then it is routed: a new ticket gets its code (an acknowledgement; never for an
   auto-reply); a conversation already handed to agents goes to the ACD (the "no reply"
   clock starts); email goes to the agents; the chat channels meet the bot first, which
   answers a dossier code, hands over on request (or when it cannot help twice), and outside
   office hours or with nobody logged in tells the hours and the ticket code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from conversations.bot import Bot
from conversations.files import AttachmentStore
from conversations.model import (
    ConversationRouting,
    InboundKind,
    InboundMessage,
    Received,
)
from conversations.outbox import Outbox, ReplyRefused
from conversations.texts import Texts
from tickets.messages import Author, Direction, Message, NewMessage
from tickets.model import Channel, Outcome, Status, Ticket
from tickets.store import ConversationStore, TicketStore
from tongdai.clock import utcnow
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

#: channels whose citizens meet the bot first
BOT_CHANNELS = frozenset({Channel.WEBCHAT, Channel.ZALO, Channel.FACEBOOK})
_OPEN = (Status.NEW, Status.IN_PROGRESS)


class Inbox:
    def __init__(
        self,
        tickets: TicketStore,
        conv: ConversationStore,
        outbox: Outbox,
        files: AttachmentStore,
        texts: Texts,
        *,
        bot: Bot | None = None,
        routing: ConversationRouting | None = None,
        is_open: Callable[[datetime], bool] = lambda _now: True,
        queue_of: Callable[[str], str] = lambda category: category,
        acknowledgement: Mapping[Channel, Callable[[Ticket], str | None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.tickets = tickets
        self.conv = conv
        self.outbox = outbox
        self.files = files
        self.texts = texts
        self.bot = bot
        self.routing = routing
        self.is_open = is_open
        self.queue_of = queue_of
        self.acknowledgement = dict(acknowledgement or {})
        self.clock = clock
        #: told of every citizen message stored (live views, the web chat's sockets)
        self.listeners: list[Callable[[Message], None]] = []

    async def receive(self, message: InboundMessage) -> Received:
        m = message
        if m.kind in (InboundKind.FOLLOW, InboundKind.UNFOLLOW):
            await self.conv.contact_for(m.sender.kind.value, m.sender.value, m.sender_name)
            return Received(None, created=False, duplicate=False)
        if m.attachments:
            # a redelivery must not keep its files twice: look before saving them. Without
            # attachments the store's own check (same channel and external id) is enough.
            found = await self.conv.find_message(m.channel, m.external_id)
            if found is not None:
                return Received(found.ticket_code, created=False, duplicate=True)
        contact = await self.conv.contact_for(m.sender.kind.value, m.sender.value, m.sender_name)
        saved = await self.files.save(m.attachments, m.received_at)
        body = "\n".join(x for x in (m.text, *saved.refused) if x)
        new = NewMessage(
            channel=m.channel,
            direction=Direction.IN,
            author=Author.CITIZEN,
            body=body,
            at=m.received_at,
            author_id=m.sender.value,
            html=m.html,
            external_id=m.external_id,
            attachments=saved.attachments,
            meta={k: str(v) for k, v in m.meta.items()} | ({"kind": m.kind.value}),
        )
        ticket: Ticket | None = await self._thread(m, contact.id)
        if ticket is not None:
            stored, added = await self.conv.add_message(ticket.code, new)
            created = False
        else:
            ticket, stored, created = await self.conv.start_conversation(
                channel=m.channel,
                contact_id=contact.id,
                caller=m.sender.value,
                subject=(m.subject or "")[:500] or None,
                first=new,
            )
            added = created
        if not added:
            return Received(stored.ticket_code, created=False, duplicate=True)
        self._tell(stored)
        try:
            await self._route(ticket, stored, m, created)
        except (StoreError, ReplyRefused) as exc:
            # the message is stored: routing again is a person's job now, nothing is lost
            log.error("ticket %s: message stored, routing failed: %s", ticket.code, exc)
        return Received(ticket.code, created=created, duplicate=False)

    def _tell(self, msg: Message) -> None:
        for listener in self.listeners:
            try:
                listener(msg)
            except Exception:
                log.exception("message listener %r failed", listener)

    async def _thread(self, m: InboundMessage, contact_id: int) -> Ticket | None:
        """The open ticket this message belongs to, if any (as read now: the caller keeps it
        in hand instead of reading it again)."""
        if m.channel is Channel.EMAIL:
            code = await self.conv.ticket_of_external(m.channel, m.in_reply_to)
            if code is None and m.ticket_code:
                code = m.ticket_code
                hinted = await self.tickets.get(code)
                if hinted is None or hinted.contact_id != contact_id:
                    return None
                ticket: Ticket | None = hinted
            else:
                ticket = await self.tickets.get(code) if code is not None else None
            if ticket is not None and ticket.status is Status.CLOSED:
                return None  # a closed case is not reopened by mail: a new ticket
            return ticket
        return await self.conv.open_conversation(contact_id, m.channel)

    # -- routing -----------------------------------------------------------------------------

    async def _route(
        self, ticket: Ticket, stored: Message, m: InboundMessage, created: bool
    ) -> None:
        if created and not m.automated:
            ack = self.acknowledgement.get(m.channel)
            text = ack(ticket) if ack else self.texts("ticket_code", code=ticket.code)
            if text:  # a channel's acknowledgement may decline (email: a months-old mail)
                await self.outbox.reply(
                    ticket.code, text, author=Author.SYSTEM, automatic=True, ticket=ticket
                )
        if ticket.queued_at is not None and ticket.status in _OPEN:
            # already with the agents: (back) in the ACD, the "no reply" clock starts
            await self._to_agents(ticket, quiet=True)
            if self.routing is not None:
                self.routing.citizen_wrote(ticket.code)
            return
        if m.channel not in BOT_CHANNELS or self.bot is None:
            if not m.automated:
                await self._to_agents(ticket, quiet=True)
            return
        if m.kind is InboundKind.STICKER and not m.text:
            return
        helped = 0  # a ticket opened by this very message has no help answer yet
        if not created:
            helped = sum(
                1 for x in await self.conv.messages(ticket.code) if x.meta.get("bot") == "help"
            )
        answer = await self.bot.answer(m.text, helped_before=helped)
        for reply in answer.replies:
            meta = {"bot": "help"} if answer.helped else None
            await self.outbox.reply(
                ticket.code, reply, author=Author.SYSTEM, meta=meta, ticket=ticket
            )
        changes: dict[str, object] = {}
        if answer.dossier_code:
            changes["dossier_code"] = answer.dossier_code[:32]
        if answer.self_served and ticket.outcome is None:
            changes["outcome"] = Outcome.SELF_SERVICE
        if changes:
            await self.tickets.update(ticket.code, **changes)
        if answer.to_agent:
            await self._to_agents(ticket, quiet=False)

    async def _to_agents(self, ticket: Ticket, *, quiet: bool) -> None:
        queue = self.queue_of(ticket.category or "chung")
        now = self.clock()
        taken = (
            self.routing is not None
            and self.is_open(now)
            and self.routing.enqueue(ticket.code, queue, Channel(ticket.channel))
        )
        if taken:
            if not quiet:
                await self.outbox.reply(
                    ticket.code,
                    self.texts("queued_no_position"),
                    author=Author.SYSTEM,
                    ticket=ticket,
                )
            return
        if ticket.outcome is None:
            await self.tickets.update(ticket.code, outcome=Outcome.MESSAGE_LEFT)
        if not quiet:
            await self.outbox.reply(
                ticket.code,
                self.texts("offline", code=ticket.code),
                author=Author.SYSTEM,
                ticket=ticket,
            )
