"""Replies out: stored first, then delivered by the channel's sender, retried until they go.

``reply`` stores the message as ``pending`` (so it survives a restart and shows in the
history at once) and wakes the delivery loop. The loop hands due messages to the channel's
``ChannelSender``: SENT is recorded with the platform's id (an email's Message-ID, so the
citizen's answer threads back); RETRY waits with exponential backoff (or the platform's
Retry-After) up to ``max_attempts``; FAILED is shown on the message, with its reason, in the
console and the ticket's history. A channel whose platform limits how long after the
citizen's last message we may answer (Zalo, Facebook) is checked up front: ``ReplyRefused``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from conversations.lanes import KeyedPool
from conversations.model import (
    ChannelSender,
    Identity,
    IdentityKind,
    OutboundMessage,
    OutgoingAttachment,
    SendResult,
    SendStatus,
)
from tickets.messages import Attachment, Author, Delivery, Direction, Message, NewMessage
from tickets.model import Channel, Ticket
from tickets.store import ConversationStore, TicketStore
from tongdai.clock import utcnow
from tongdai.errors import StoreError, TongdaiError

log = logging.getLogger(__name__)

#: identity kind of the citizen on each message channel
RECIPIENT_KIND = {
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.WEBCHAT: IdentityKind.WEBCHAT,
    Channel.ZALO: IdentityKind.ZALO,
    Channel.FACEBOOK: IdentityKind.FACEBOOK,
}
#: a reply's longest text (characters)
MAX_TEXT = 20_000

WindowCheck = Callable[[datetime, datetime], bool]
MessageListener = Callable[[Message], None]


class ReplyRefused(TongdaiError):
    """The reply cannot be sent at all (window closed, no channel, empty text): the message
    says why, for the agent."""


class Outbox:
    def __init__(
        self,
        tickets: TicketStore,
        conv: ConversationStore,
        senders: Mapping[Channel, ChannelSender],
        *,
        windows: Mapping[Channel, WindowCheck] | None = None,
        attachment_path: Callable[[Attachment], str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = 8,
        base_delay_s: float = 2.0,
        workers: int = 4,
    ) -> None:
        self.tickets = tickets
        self.conv = conv
        self.senders = dict(senders)
        self.windows = dict(windows or {})
        self.attachment_path = attachment_path or (lambda a: a.path)
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.kick = asyncio.Event()
        self._pool = KeyedPool(workers)
        #: told of every message stored here (live views, the web chat's sockets)
        self.listeners: list[MessageListener] = []

    async def reply(
        self,
        code: str,
        text: str,
        *,
        author: Author = Author.AGENT,
        author_id: str | None = None,
        html: str | None = None,
        attachments: tuple[Attachment, ...] = (),
        automatic: bool = False,
        meta: Mapping[str, str] | None = None,
        ticket: Ticket | None = None,
    ) -> Message:
        """Store a reply for delivery; ``ReplyRefused`` when it cannot go (say why).
        ``ticket``: the ticket ``code`` as the caller has it in hand (not read again)."""
        text = text.strip()
        if not text and not attachments:
            raise ReplyRefused("Nội dung trả lời trống. / The reply is empty.")
        if len(text) > MAX_TEXT:
            raise ReplyRefused(f"Nội dung quá dài (tối đa {MAX_TEXT} ký tự).")
        if ticket is None or ticket.code != code:
            ticket = await self.tickets.get(code)
        if ticket is None:
            raise KeyError(code)
        channel = Channel(ticket.channel)
        if channel not in RECIPIENT_KIND:
            raise ReplyRefused(f"Phiếu kênh {channel} không trả lời bằng tin nhắn.")
        now = self.clock()
        window = self.windows.get(channel)
        if window is not None and author is Author.AGENT:
            last_in = await self._last_inbound(code)
            if last_in is not None and not window(last_in, now):
                raise ReplyRefused(
                    f"Đã quá thời hạn {channel} cho phép trả lời người dân (tính từ tin nhắn "
                    "cuối của họ). / The platform's reply window has closed for this citizen."
                )
        meta = {**(meta or {}), "message_id": f"1022.{secrets.token_hex(10)}"}
        if automatic:
            meta["automatic"] = "1"
        delivery = Delivery.PENDING if channel in self.senders else Delivery.SENT
        msg, _ = await self.conv.add_message(
            code,
            NewMessage(
                channel=channel,
                direction=Direction.OUT,
                author=author,
                body=text,
                at=now,
                author_id=author_id,
                html=html,
                attachments=attachments,
                delivery=delivery,
                meta=meta,
            ),
        )
        self._tell(msg)
        self.kick.set()
        return msg

    async def _last_inbound(self, code: str) -> datetime | None:
        ins = [m.at for m in await self.conv.messages(code) if m.direction is Direction.IN]
        return max(ins) if ins else None

    def _tell(self, msg: Message) -> None:
        for listener in self.listeners:
            try:
                listener(msg)
            except Exception:  # a broken view must not stop delivery
                log.exception("message listener %r failed", listener)

    # -- delivery ----------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """One pass over the due messages; returns how many were handed to a sender. Messages
        of different tickets go side by side (``workers`` at once), a ticket's in order."""
        due = await self.conv.due_deliveries(self.clock())
        if due:
            # a ticket is read once per pass, whatever the number of its replies due: they go
            # one after the other in the ticket's lane, so the first read serves the others
            tickets: dict[str, Ticket | None] = {}
            jobs = [
                self._pool.submit([m.ticket_code], partial(self._deliver, m, tickets)) for m in due
            ]
            await asyncio.gather(*jobs)
        return len(due)

    async def _outbound(self, msg: Message, ticket: Ticket) -> OutboundMessage:
        channel = Channel(msg.channel)
        thread: tuple[str, ...] = ()
        reply_to: str | None = None
        if channel is Channel.EMAIL:  # threading headers: only mail has them
            earlier = [
                m
                for m in await self.conv.messages(msg.ticket_code)
                if m.external_id and m.id != msg.id
            ]
            thread = tuple(m.external_id for m in earlier if m.external_id)
            # the answer goes under the citizen's newest message before it, never under our own
            # acknowledgement or an earlier reply of ours (those stay in ``thread``)
            reply_to = next(
                (m.external_id for m in reversed(earlier)
                 if m.direction is Direction.IN and m.id < msg.id),
                None,
            )  # fmt: skip
        return OutboundMessage(
            channel=channel,
            ticket_code=msg.ticket_code,
            recipient=Identity(RECIPIENT_KIND[channel], ticket.caller or ""),
            text=msg.body,
            html=msg.html,
            attachments=tuple(
                OutgoingAttachment(a.filename, a.content_type, self.attachment_path(a), a.url)
                for a in msg.attachments
            ),
            subject=ticket.subject,
            thread=thread,
            reply_to=reply_to,
            message_id=msg.meta.get("message_id", f"1022.{msg.id}"),
            automatic=msg.meta.get("automatic") == "1",
        )

    async def _deliver(self, msg: Message, tickets: dict[str, Ticket | None]) -> None:
        sender = self.senders.get(Channel(msg.channel))
        if msg.ticket_code in tickets:
            ticket = tickets[msg.ticket_code]
        else:
            ticket = tickets[msg.ticket_code] = await self.tickets.get(msg.ticket_code)
        if sender is None or ticket is None or not ticket.caller:
            await self.conv.set_delivery(
                msg.id, Delivery.FAILED, error="không có kênh gửi hoặc người nhận"
            )
            return
        try:
            result = await sender.send(await self._outbound(msg, ticket))
        except (OSError, TongdaiError) as exc:  # a sender must not raise, but be safe
            result = SendResult(SendStatus.RETRY, error=str(exc)[:300])
        await self._record(msg, result)

    async def _record(self, msg: Message, result: SendResult) -> None:
        error: str | None
        when: datetime | None = None
        if result.status is SendStatus.SENT:
            delivery, error = Delivery.SENT, None
            await self.conv.set_delivery(msg.id, delivery, external_id=result.external_id)
            log.info("message %s of %s sent", msg.id, msg.ticket_code)
        elif result.status is SendStatus.RETRY and msg.attempts + 1 < self.max_attempts:
            delay = result.retry_after_s or self.base_delay_s * 2**msg.attempts
            when = self.clock() + timedelta(seconds=min(delay, 3600))
            delivery, error = Delivery.PENDING, result.error
            await self.conv.set_delivery(msg.id, delivery, error=error, next_attempt_at=when)
            log.warning("message %s: retry in %.0f s (%s)", msg.id, delay, result.error)
        else:
            delivery, error = Delivery.FAILED, result.error or "gửi không thành công"
            await self.conv.set_delivery(msg.id, delivery, error=error)
            log.error("message %s of %s failed: %s", msg.id, msg.ticket_code, result.error)
        # the message as set_delivery left it, without reading the ticket's messages again
        self._tell(
            replace(
                msg,
                delivery=delivery,
                delivery_error=error,
                next_attempt_at=when,
                attempts=msg.attempts + 1,
                external_id=result.external_id
                if delivery is Delivery.SENT and result.external_id is not None
                else msg.external_id,
            )
        )

    async def run(self, interval_s: float = 1.0) -> None:
        """Deliver until cancelled: at once when woken, and every ``interval_s`` for retries."""
        while True:
            self.kick.clear()
            try:
                await self.deliver_due()
            except StoreError as exc:
                log.warning("outbox: %s", exc)
            try:
                async with asyncio.timeout(interval_s):
                    await self.kick.wait()
            except TimeoutError:
                pass
