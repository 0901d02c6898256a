"""Ticket domain types: what a call or a message conversation leaves behind.

A ticket is opened when a call starts and written durably before the caller hears its code.
``outcome`` says how the contact ended; ``status`` is the follow-up workflow
(new -> in_progress -> resolved -> closed) whose every change is kept in ``history``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    """Where a contact came in (``tickets.channel``)."""

    VOICE = "voice"
    EMAIL = "email"
    WEBCHAT = "webchat"
    ZALO = "zalo"
    FACEBOOK = "facebook"


class Outcome(StrEnum):
    SELF_SERVICE = "self_service"
    ANSWERED = "answered"
    ABANDONED_IVR = "abandoned_ivr"
    ABANDONED_QUEUE = "abandoned_queue"
    MESSAGE_LEFT = "message_left"
    CLOSED_HOURS = "closed_hours"
    REJECTED_BUSY = "rejected_busy"
    ERROR = "error"
    # the engine's own call distribution (kept apart from abandons in the reports)
    TIMEOUT_QUEUE = "timeout_queue"
    CALLBACK_FAILED = "callback_failed"
    CALLBACK_CANCELLED = "callback_cancelled"


class Status(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ComplaintType(StrEnum):
    """What a complaint (``phan_anh``) is about. Complaints about officials are confidential:
    the caller's identity, number and recording are for supervisors and admins only, and
    every view of them is written to the audit log (``tickets.audit``)."""

    PROCEDURES = "thu_tuc"  # about administrative procedures
    OFFICIALS = "can_bo"  # about officials' conduct (delays, harassment)
    PROPOSALS = "kien_nghi"  # initiatives and proposals


#: complaint sub-types whose caller is confidential
CONFIDENTIAL_TYPES = frozenset({ComplaintType.OFFICIALS.value})


#: allowed status transitions (the workflow); reopening a resolved ticket is allowed
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.IN_PROGRESS, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class IvrStep:
    """One step of the caller's path through the menu: the node entered and the key pressed."""

    at: datetime
    node: str
    key: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    from_status: Status | None
    to_status: Status
    by: str
    note: str | None = None


@dataclass
class Ticket:
    id: int
    code: str
    channel: str
    caller: str | None
    uniqueid: str | None
    started_at: datetime
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    category: str | None = None
    queue: str | None = None
    agent: str | None = None
    outcome: Outcome | None = None
    dossier_code: str | None = None
    recording: str | None = None
    notes: str | None = None
    status: Status = Status.NEW
    ivr_path: list[IvrStep] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)
    #: the caller's score after the call, 1 (bad) to 5 (good); filled by the ACD
    satisfaction: int | None = None
    #: after-call work (wrap-up) seconds of the agent; filled by the ACD
    acw_seconds: int | None = None
    #: when a complaint (``phan_anh``) must be resolved; set by whoever classifies it
    due_at: datetime | None = None
    #: when the status last became ``resolved`` (set by ``set_status``, cleared on reopening)
    resolved_at: datetime | None = None
    #: the citizen (``tickets.messages.Contact``), when known
    contact_id: int | None = None
    #: a message conversation's title (an email's subject)
    subject: str | None = None
    #: a complaint's sub-type (``ComplaintType``); ``can_bo`` makes the ticket confidential
    complaint_type: str | None = None

    @property
    def confidential(self) -> bool:
        """The caller's identity, number and recording are for supervisors and admins only."""
        return self.complaint_type in CONFIDENTIAL_TYPES


#: fields ``TicketStore.update`` may change (everything else is set by the store itself)
UPDATABLE_FIELDS = frozenset(
    {
        "queued_at",
        "answered_at",
        "ended_at",
        "category",
        "queue",
        "agent",
        "outcome",
        "dossier_code",
        "recording",
        "notes",
        "satisfaction",
        "acw_seconds",
        "due_at",
        "resolved_at",
        "contact_id",
        "subject",
        "complaint_type",
    }
)
