"""What crosses the seam between a channel adapter (``channels/*``) and the conversation core.

Inbound: an adapter verifies and parses what a platform sent and hands the core one
``InboundMessage`` per citizen event (``InboundSink.receive``). Webhook adapters first append
the raw event to the ``EventJournal`` (durable, de-duplicated by ``(channel, external_id)``)
and answer the platform; the journal's processor parses and receives it afterwards.

Outbound: the core stores an agent's (or the bot's) reply, then asks the channel's
``ChannelSender`` to deliver an ``OutboundMessage``; the ``SendResult`` says sent, or failed
for good (shown on the message), or failed for now (retried by the core with backoff).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from tickets.model import Channel


class IdentityKind(StrEnum):
    """How a citizen is known on a channel; a contact links several."""

    PHONE = "phone"
    EMAIL = "email"
    WEBCHAT = "webchat"  # the widget's visitor id
    ZALO = "zalo"  # Zalo user id (follower of the OA)
    FACEBOOK = "facebook"  # page-scoped id (PSID)


@dataclass(frozen=True)
class Identity:
    kind: IdentityKind
    value: str  # normalised by the adapter: email lower-cased, phone digits only


class InboundKind(StrEnum):
    MESSAGE = "message"  # text and/or attachments
    POSTBACK = "postback"  # a button the citizen pressed (text = its payload/title)
    LOCATION = "location"  # text = "lat,lon" (+ address when given)
    STICKER = "sticker"
    FOLLOW = "follow"  # followed the OA / opened the chat: no ticket by itself
    UNFOLLOW = "unfollow"


@dataclass(frozen=True)
class IncomingAttachment:
    """A file the citizen sent: its bytes (mail, chat upload) or a platform URL (Zalo,
    Facebook host the file; the core may fetch and keep it)."""

    filename: str
    content_type: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    #: unique per channel: Message-ID, Zalo ``msg_id``, Facebook ``mid``, widget message id;
    #: a redelivered message carries the same id and is stored once
    external_id: str
    sender: Identity
    received_at: datetime  # timezone-aware
    kind: InboundKind = InboundKind.MESSAGE
    sender_name: str | None = None
    text: str = ""
    #: as sent (email); the core stores it, pages show it only sanitised
    html: str | None = None
    attachments: tuple[IncomingAttachment, ...] = ()
    subject: str | None = None
    #: external ids this message answers (email In-Reply-To + References, newest last)
    in_reply_to: tuple[str, ...] = ()
    #: a ticket code the adapter found (e.g. ``[1022-20261206-000012]`` in a subject)
    ticket_code: str | None = None
    #: an auto-reply, bounce or mailing-list mail: stored, never acknowledged
    automated: bool = False
    #: channel details worth keeping (Message-ID, recipient address, ...)
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """What the core did with an inbound message."""

    ticket_code: str | None  # None for events that open nothing (follow/unfollow)
    created: bool  # a new conversation (ticket) was opened
    duplicate: bool  # already stored: nothing changed


class InboundSink(Protocol):
    async def receive(self, message: InboundMessage) -> Received:
        """Store the message durably (ticket, contact, message), then route it. Returns only
        once it is stored; raises ``tongdai.errors.StoreError`` when it could not be."""


class EventJournal(Protocol):
    async def append(self, channel: Channel, external_id: str, payload: bytes) -> bool:
        """Keep one raw platform event durably (database, or the disk spool while the
        database is away). False: an event with this id was already kept (a redelivery)."""


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    path: str  # a file on the engine's disk
    url: str | None = None  # where the platform can fetch it, when it needs a URL


@dataclass(frozen=True)
class OutboundMessage:
    channel: Channel
    ticket_code: str
    recipient: Identity
    text: str
    html: str | None = None
    attachments: tuple[OutgoingAttachment, ...] = ()
    subject: str | None = None
    #: threading: the external ids of the conversation's messages (email References)
    thread: tuple[str, ...] = ()
    #: the citizen's message this one answers (their newest before it; email In-Reply-To);
    #: None: the newest id of ``thread``
    reply_to: str | None = None
    #: our id for this message (email Message-ID is built from it)
    message_id: str = ""
    #: sent by the system, not a person (an acknowledgement): email adds Auto-Submitted
    automatic: bool = False


class SendStatus(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # 429, 5xx, network: try again later
    FAILED = "failed"  # permanent: shown to the agent


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    external_id: str | None = None  # the platform's id of the sent message
    error: str | None = None  # a one-line reason for the agent (never a secret)
    retry_after_s: float | None = None


class ChannelSender(Protocol):
    channel: Channel

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message; never raises for platform answers (they are a SendResult)."""


class ConversationRouting(Protocol):
    """The ACD's messaging side (``acd.messaging``) as the conversation core uses it: a
    conversation (keyed by its ticket code) waits in the same queues as calls, with the same
    strategies and skills, and is assigned to an agent with spare conversation capacity. The
    ACD writes the queue and the agent on the ticket and tells the live views; it never
    writes Asterisk's queue_log for conversations."""

    def enqueue(self, code: str, queue: str, channel: Channel, *, agent: str | None = None) -> bool:
        """The conversation needs an agent: it waits in ``queue`` (a category's queue; an
        unknown name falls back to the general queue), or goes straight to ``agent`` when
        given and able. Idempotent for a conversation already waiting or assigned. False:
        no agent is logged in to serve it (the core offers the offline form)."""

    def citizen_wrote(self, code: str) -> None:
        """A new citizen message: the "no agent reply" escalation clock starts (if stopped)."""

    def agent_replied(self, code: str, agent: str) -> None:
        """An agent replied: the escalation clock stops."""

    def transfer(self, code: str, *, queue: str | None = None, agent: str | None = None) -> None:
        """Hand the conversation to another queue (back in line) or a named colleague."""

    def finished(self, code: str) -> None:
        """Resolved or closed: it leaves the line or frees its agent's capacity."""

    def assigned_to(self, code: str) -> str | None:
        """The agent holding the conversation now, if any."""
