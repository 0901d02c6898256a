"""The email channel as the engine assembles it (``hotline.messaging.build_messaging``).

``EmailChannel.from_settings`` reads ``[channels.email]`` (and the acknowledgement template it
names) once at start, so a bad table, URL, password file or template stops the engine with a
clear error. It gives the engine three things:

- ``sender``: the ``ChannelSender`` registered for ``Channel.EMAIL`` in the Outbox (agents'
  replies and the acknowledgement go out over SMTP submission, threaded);
- ``acknowledge``: the text of the automatic first reply, for the Inbox's acknowledgement path
  (Vietnamese, carrying the ticket code and the sender's name; the Inbox never acknowledges an
  automated mail), or None for a mail dated more than ``ack_max_age_h`` before it was read:
  the first start on a mailbox of 10,000 old mails opens their tickets and answers none;
- ``reader(sink)``: the IMAP reader, run as a task of ``Messaging.run``.

The reader hands each mail straight to the Inbox, not through the event journal: the IMAP
folder is the durable journal of mail. The checkpoint (UIDVALIDITY + last UID, a file in the
engine's state folder) only advances after the Inbox has stored the mail, and the Inbox stores
each Message-ID once, so a restart, an outage or a lost checkpoint neither loses nor
duplicates a mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from channels.email.ack import DEFAULT_TEMPLATE, AckTemplate, load_template
from channels.email.checkpoint import FileCheckpoint, MailCheckpoint
from channels.email.reader import MailReader
from channels.email.sender import EmailSender
from channels.email.settings import EmailChannelSettings
from conversations.model import InboundMessage, InboundSink, Received
from tickets.model import Ticket
from tongdai.settings import home_path

#: the checkpoint's file name in the engine's state folder
CHECKPOINT_FILE = "email-checkpoint.json"


@dataclass
class EmailChannel:
    settings: EmailChannelSettings
    sender: EmailSender
    template: AckTemplate
    checkpoint: MailCheckpoint
    #: the mail being received from each sender (the Inbox asks for its acknowledgement)
    _receiving: dict[str, InboundMessage] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, file: str, table: object, state_dir: Path) -> EmailChannel:
        settings = EmailChannelSettings.from_table(file, table)
        settings.imap_password()  # a missing or world-readable password file stops the start
        settings.smtp_login()
        template = load_template(
            home_path(settings.ack_file) if settings.ack_file else DEFAULT_TEMPLATE
        )
        return cls(
            settings=settings,
            sender=EmailSender(settings),
            template=template,
            checkpoint=FileCheckpoint(state_dir / CHECKPOINT_FILE),
        )

    def acknowledge(self, ticket: Ticket) -> str | None:
        """The acknowledgement of the mail that opened ``ticket`` (its code, in Vietnamese);
        None when that mail is too old to be answered automatically."""
        mail = self._receiving.get(ticket.caller or "")
        if mail is not None and self._too_old(mail):
            return None
        return self.template.render(
            code=ticket.code,
            name=mail.sender_name if mail is not None else None,
            subject=ticket.subject,
            received=ticket.started_at,
        )

    def _too_old(self, mail: InboundMessage) -> bool:
        limit = self.settings.ack_max_age_h
        try:
            sent = parsedate_to_datetime(mail.meta.get("date", ""))
        except (TypeError, ValueError):
            return False  # no usable Date: a new mail
        if not limit:
            return False
        if sent.tzinfo is None:  # "-0000": UTC, the sender's zone unknown (RFC 5322)
            sent = sent.replace(tzinfo=UTC)
        return mail.received_at - sent > timedelta(hours=limit)

    def reader(self, sink: InboundSink) -> MailReader:
        """The mailbox reader feeding ``sink`` (the Inbox); run it as an owned task."""
        return MailReader(self.settings, _NamingSink(self, sink), self.checkpoint)


@dataclass
class _NamingSink:
    """Passes mails to the Inbox, keeping the mail at hand for the acknowledgement the Inbox
    asks for while it receives (the reader hands one mail at a time)."""

    channel: EmailChannel
    inner: InboundSink

    async def receive(self, message: InboundMessage) -> Received:
        receiving = self.channel._receiving
        receiving[message.sender.value] = message
        try:
            return await self.inner.receive(message)
        finally:
            receiving.pop(message.sender.value, None)
