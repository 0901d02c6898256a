"""The open sockets of the web chat's visitors, and the channel's sender.

``WebchatHub`` keeps, per visitor id, one outgoing queue per open socket (a visitor may have
the chat open in several tabs). ``push`` hands an event to every one of them at once (never
blocking: a socket too slow to keep up is dropped and the browser reconnects).

``WebchatSender`` is the outbox's ``ChannelSender`` for ``webchat``: an agent's or the bot's
reply is pushed to the visitor's open sockets (SENT; also for a visitor polling the HTTP
fallback, who reads it on their next poll); a visitor with no page open is told
later: RETRY (the outbox keeps it ``pending``), and when the visitor comes back the socket asks
the outbox to deliver what is pending at once (``WebchatHub.on_return``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from conversations.model import OutboundMessage, SendResult, SendStatus
from tickets.messages import Author, Direction, Message
from tickets.model import Channel
from tongdai.clock import utcnow

log = logging.getLogger(__name__)

Event = dict[str, Any]
QUEUE_SIZE = 256
#: a visitor on the HTTP fallback who asked this recently still reads what is sent
POLL_GRACE_S = 15.0


def message_event(m: Message) -> Event:
    """A stored message as the visitor's page shows it (nothing about agents but "staff")."""
    inbound = m.direction is Direction.IN
    return {
        "type": "message",
        "key": m.meta.get("cid", m.external_id or "") if inbound else m.meta.get("message_id", ""),
        "dir": m.direction.value,
        "author": "citizen" if m.author is Author.CITIZEN else "staff",
        "text": m.body,
        "at": m.at.isoformat(),
        "files": [a.filename for a in m.attachments],
    }


class WebchatHub:
    def __init__(self) -> None:
        self._sockets: dict[str, set[asyncio.Queue[Event | None]]] = {}
        #: called when a visitor opens a socket (the outbox delivers what waits for them)
        self.on_return: Callable[[str], Awaitable[None]] | None = None
        #: visitors on the HTTP fallback: when they last asked (monotonic seconds)
        self._polled: dict[str, float] = {}

    def mark_polled(self, visitor: str) -> None:
        """A visitor without a socket read the conversation over HTTP: replies count as
        delivered while they keep polling (every few seconds)."""
        now = time.monotonic()
        if len(self._polled) > 10_000:
            self._polled = {v: t for v, t in self._polled.items() if now - t < POLL_GRACE_S}
        self._polled[visitor] = now

    def reachable(self, visitor: str) -> bool:
        """An open socket, or polling over HTTP lately."""
        at = self._polled.get(visitor)
        return self.connected(visitor) or (at is not None and time.monotonic() - at < POLL_GRACE_S)

    @property
    def sockets(self) -> int:
        return sum(len(s) for s in self._sockets.values())

    def attach(self, visitor: str) -> asyncio.Queue[Event | None]:
        q: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self._sockets.setdefault(visitor, set()).add(q)
        return q

    def detach(self, visitor: str, q: asyncio.Queue[Event | None]) -> None:
        found = self._sockets.get(visitor)
        if found is not None:
            found.discard(q)
            if not found:
                del self._sockets[visitor]

    def connected(self, visitor: str) -> bool:
        return bool(self._sockets.get(visitor))

    def push(self, visitor: str, event: Event) -> int:
        """Queue ``event`` for every open socket of ``visitor``; returns how many took it."""
        took = 0
        for q in list(self._sockets.get(visitor, ())):
            try:
                q.put_nowait(event)
                took += 1
            except asyncio.QueueFull:  # a socket that does not read: drop it
                log.warning("webchat: a socket of visitor %s is too slow, dropped", visitor)
                self.detach(visitor, q)
                q.get_nowait()  # room for the end marker: the socket closes
                q.put_nowait(None)
        return took

    def on_inbound(self, m: Message) -> None:
        """Inbox listener: a visitor's own message, stored, shown in all their tabs."""
        if m.channel == Channel.WEBCHAT and m.direction is Direction.IN and m.author_id:
            self.push(m.author_id, message_event(m))


class WebchatSender:
    channel = Channel.WEBCHAT

    def __init__(self, hub: WebchatHub, absent_retry_s: float = 3600.0) -> None:
        self.hub = hub
        self.absent_retry_s = absent_retry_s

    async def send(self, message: OutboundMessage) -> SendResult:
        visitor = message.recipient.value
        event: Event = {
            "type": "message",
            "key": message.message_id,
            "dir": "out",
            "author": "staff",
            "text": message.text,
            "at": utcnow().isoformat(),
            "files": [a.filename for a in message.attachments],
        }
        if self.hub.push(visitor, event) or self.hub.reachable(visitor):
            return SendResult(SendStatus.SENT, external_id=f"webchat.{message.message_id}")
        return SendResult(
            SendStatus.RETRY,
            error="người dân đã rời trang chat: sẽ gửi khi họ mở lại",
            retry_after_s=self.absent_retry_s,
        )
