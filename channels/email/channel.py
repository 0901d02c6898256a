"""The email channel as the engine assembles it (``hotline.messaging.build_messaging``).

``EmailChannel.from_settings`` reads ``[channels.email]`` (and the acknowledgement template it
names) once at start, so a bad table, URL, password file or template stops the engine with a
clear error. It gives the engine three things:

- ``sender``: the ``ChannelSender`` registered for ``Channel.EMAIL`` in the Outbox (agents'
  replies and the acknowledgement go out over SMTP submission, threaded);
- ``acknowledge``: the text of the automatic first reply, for the Inbox's acknowledgement path
  (Vietnamese, carrying the ticket code; the Inbox never acknowledges an automated mail);
- ``reader(sink)``: the IMAP reader, run as a task of ``Messaging.run``.

The reader hands each mail straight to the Inbox, not through the event journal: the IMAP
folder is the durable journal of mail. The checkpoint (UIDVALIDITY + last UID, a file in the
engine's state folder) only advances after the Inbox has stored the mail, and the Inbox stores
each Message-ID once, so a restart, an outage or a lost checkpoint neither loses nor
duplicates a mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    #: the display name of each sender whose mail is being received (for ``{name}``)
    _names: dict[str, str] = field(default_factory=dict, repr=False)

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

    def acknowledge(self, ticket: Ticket) -> str:
        """The acknowledgement of the mail that opened ``ticket`` (its code, in Vietnamese)."""
        return self.template.render(
            code=ticket.code,
            name=self._names.get(ticket.caller or ""),
            subject=ticket.subject,
            received=ticket.started_at,
        )

    def reader(self, sink: InboundSink) -> MailReader:
        """The mailbox reader feeding ``sink`` (the Inbox); run it as an owned task."""
        return MailReader(self.settings, _NamingSink(self, sink), self.checkpoint)


@dataclass
class _NamingSink:
    """Passes mails to the Inbox, keeping the sender's display name for the acknowledgement
    the Inbox asks for while it receives (the reader hands one mail at a time)."""

    channel: EmailChannel
    inner: InboundSink

    async def receive(self, message: InboundMessage) -> Received:
        names = self.channel._names
        if message.sender_name:
            names[message.sender.value] = message.sender_name
        try:
            return await self.inner.receive(message)
        finally:
            names.pop(message.sender.value, None)
