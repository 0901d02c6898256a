"""A conversation's messages and a citizen's contact record: the types the stores keep.

A ticket is a conversation: a call leaves an IVR path, a message channel leaves ``Message``s
(in from the citizen, out from an agent or the system), each with its channel's external id
(unique per channel, so a redelivered message is stored once), optional HTML as sent, and
attachments stored on disk. A ``Contact`` links the identities one citizen uses (phone
number, email address, chat visitor id, Zalo and Facebook ids); agents merge contacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Author(StrEnum):
    CITIZEN = "citizen"
    AGENT = "agent"
    SYSTEM = "system"  # the bot, acknowledgements, notices


class Delivery(StrEnum):
    """Where an outgoing message stands; incoming ones are ``received``."""

    RECEIVED = "received"
    PENDING = "pending"  # stored, not yet handed to the platform (or to retry)
    SENT = "sent"
    FAILED = "failed"  # permanently: the reason is in ``delivery_error``


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    #: where the bytes are, relative to the attachments folder ("" if only ``url``)
    path: str
    url: str | None = None


@dataclass(frozen=True)
class NewMessage:
    """A message to store (the store gives it an id and a ticket)."""

    channel: str
    direction: Direction
    author: Author
    body: str
    at: datetime
    author_id: str | None = None  # agent id, or the citizen's identity value
    html: str | None = None
    external_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    delivery: Delivery = Delivery.RECEIVED
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    id: int
    ticket_code: str
    channel: str
    direction: Direction
    author: Author
    body: str
    at: datetime
    author_id: str | None = None
    html: str | None = None
    external_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    delivery: Delivery = Delivery.RECEIVED
    delivery_error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    meta: dict[str, str] = field(default_factory=dict)


def message_dict(m: Message, tz: tzinfo = UTC) -> dict[str, Any]:
    """A message as JSON (times ISO 8601 in ``tz``): what the conversation API and
    ``tongdai tickets show --json`` print."""

    def when(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value is not None else None

    return {
        "id": m.id,
        "ticket": m.ticket_code,
        "channel": m.channel,
        "direction": m.direction.value,
        "author": m.author.value,
        "author_id": m.author_id,
        "at": when(m.at),
        "body": m.body,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "url": a.url}
            for a in m.attachments
        ],
        "external_id": m.external_id,
        "delivery": m.delivery.value,
        "delivery_error": m.delivery_error,
        "attempts": m.attempts,
        "next_attempt_at": when(m.next_attempt_at),
    }


@dataclass(frozen=True)
class ContactIdentity:
    kind: str  # phone, email, webchat, zalo, facebook
    value: str


@dataclass(frozen=True)
class Contact:
    id: int
    name: str | None
    created_at: datetime
    identities: tuple[ContactIdentity, ...] = ()
    #: set when an agent merged this contact into another
    merged_into: int | None = None
