"""A conversation's messages and a citizen's contact record: the types the stores keep.

A ticket is a conversation: a call leaves an IVR path, a message channel leaves ``Message``s
(in from the citizen, out from an agent or the system), each with its channel's external id
(unique per channel, so a redelivered message is stored once), optional HTML as sent, and
attachments stored on disk. A ``Contact`` links the identities one citizen uses (phone
number, email address, chat visitor id, Zalo and Facebook ids); agents merge contacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


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
