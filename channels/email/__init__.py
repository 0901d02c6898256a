"""The email channel: the province's mailbox read over IMAP, answered over SMTP submission.

Rooms: ``parse`` (raw mail -> ``InboundMessage``; with ``charsets``, ``headers``,
``automated``, ``sanitize`` for safe HTML and ``quotes`` for trimming replies), ``reader``
(the IMAP loop, exactly once with ``checkpoint``; ``imap`` wraps aioimaplib), ``compose`` +
``sender`` (``EmailSender``, the channel's ``ChannelSender``), ``ack`` (the Vietnamese
acknowledgement, ``ack_vi.toml``) and ``settings`` (``[channels.email]``).
"""

from channels.email.ack import AckTemplate, acknowledgement, load_template
from channels.email.checkpoint import FileCheckpoint, MailCheckpoint, MemoryCheckpoint, Position
from channels.email.parse import parse_mail
from channels.email.quotes import trim_quoted
from channels.email.reader import MailReader
from channels.email.sanitize import html_to_text, safe_html
from channels.email.sender import EmailSender
from channels.email.settings import EmailChannelSettings

__all__ = [
    "AckTemplate",
    "EmailChannelSettings",
    "EmailSender",
    "FileCheckpoint",
    "MailCheckpoint",
    "MailReader",
    "MemoryCheckpoint",
    "Position",
    "acknowledgement",
    "html_to_text",
    "load_template",
    "parse_mail",
    "safe_html",
    "trim_quoted",
]
