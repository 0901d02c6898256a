"""OutboundMessage -> the reply mail (pure: no I/O; the sender reads attachment files).

Threading, so the citizen's mail client shows one conversation and their answer finds its
ticket again: ``Message-ID`` = ``<message_id@domain>``; ``In-Reply-To`` = the citizen's mail
being answered (``reply_to``: their newest before the reply, not our own acknowledgement or
an earlier reply of ours; the newest id of the conversation when unknown); ``References`` =
the conversation's ids (the first and the newest ``MAX_REFERENCES - 1`` of a long thread, as
RFC 5322 suggests), the parent always among them. The subject is
``Re: <subject> [<ticket code>]`` with earlier ``Re:``/``TL:`` prefixes and copies of the
code removed, so the code appears exactly once however long the exchange.

An automatic acknowledgement carries ``Auto-Submitted: auto-replied`` (RFC 3834) and
``X-Auto-Response-Suppress: All`` so that well-behaved responders (out-of-office, Exchange)
do not answer it: no mail loops.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from conversations.model import OutboundMessage

MAX_REFERENCES = 20
NO_SUBJECT = "Tổng đài 1022"
_PREFIX_RE = re.compile(
    r"^\s*((re|fw|fwd|tl|trả lời|tr|aw|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_ID_CHARS_RE = re.compile(r"[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]")


@dataclass(frozen=True)
class FileData:
    filename: str
    content_type: str
    data: bytes


def reply_subject(subject: str | None, code: str) -> str:
    """``Re: <subject> [<code>]``: prefixes and earlier copies of the code stripped."""
    base = (subject or "").replace(f"[{code}]", " ")
    base = " ".join(base.split())
    base = _PREFIX_RE.sub("", base).strip()
    if not base:
        return f"{NO_SUBJECT} [{code}]"
    return f"Re: {base} [{code}]"


def local_id(message_id: str) -> str:
    """The left part of our Message-ID: ``message_id`` with unsafe characters replaced."""
    cleaned = _ID_CHARS_RE.sub("-", message_id)[:120]
    return cleaned or uuid.uuid4().hex


def build_reply(
    message: OutboundMessage,
    *,
    from_address: str,
    domain: str,
    date: datetime,
    from_name: str = "",
    automatic: bool = False,
    files: Sequence[FileData] = (),
) -> EmailMessage:
    """The mail to send for ``message`` (its Message-ID is ``mail["Message-ID"]``)."""
    mail = EmailMessage()
    mail["From"] = formataddr((from_name, from_address)) if from_name else from_address
    mail["To"] = message.recipient.value
    mail["Subject"] = reply_subject(message.subject, message.ticket_code)
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = f"<{local_id(message.message_id)}@{domain}>"
    thread = [i for i in message.thread if i]
    if thread:
        parent = message.reply_to or thread[-1]
        mail["In-Reply-To"] = f"<{parent}>"
        kept = list(thread)
        if len(thread) > MAX_REFERENCES:
            tail = thread[-(MAX_REFERENCES - 1) :]
            if parent not in tail and parent != thread[0]:  # an old mail answered late
                tail = [parent, *thread[-(MAX_REFERENCES - 2) :]]
            kept = [thread[0], *tail]
        mail["References"] = " ".join(f"<{i}>" for i in kept)
    if automatic:
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    mail["X-Tongdai-Ticket"] = message.ticket_code
    mail.set_content(message.text or "")
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    for item in files:
        maintype, _, subtype = item.content_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return mail


def message_id_of(mail: EmailMessage) -> str:
    """Our Message-ID without brackets: the ``external_id`` of the sent message."""
    return str(mail["Message-ID"]).strip().strip("<>")
