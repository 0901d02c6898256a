"""``EmailSender``: the ``ChannelSender`` of the email channel, over SMTP submission.

One connection per message (replies are rare: tens a day), TLS when the URL says
(``smtps://``, or ``smtp://...?starttls``), AUTH with the password from a file, every wait
bounded by ``timeout_s``. ``send`` never raises for what the server or the network does:

- ``SENT`` with the Message-ID we gave the mail (the citizen's answer will quote it);
- ``RETRY`` for 4xx answers, refused or dropped connections, timeouts, TLS failures and a
  refused login (our account, not the message: it will go once the province fixes it);
- ``FAILED`` for 5xx answers about this message (recipient unknown, message refused) and
  for an attachment file that cannot be read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiosmtplib

from channels.email.compose import FileData, build_reply, message_id_of
from channels.email.settings import EmailChannelSettings
from conversations.model import OutboundMessage, SendResult, SendStatus
from tickets.model import Channel
from tongdai.errors import ConfigError

log = logging.getLogger(__name__)


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _read_files(message: OutboundMessage) -> list[FileData]:
    return [
        FileData(item.filename, item.content_type, Path(item.path).read_bytes())
        for item in message.attachments
    ]


def _status_of(code: int) -> SendStatus:
    return SendStatus.FAILED if 500 <= code < 600 else SendStatus.RETRY


class EmailSender:
    channel = Channel.EMAIL

    def __init__(
        self,
        settings: EmailChannelSettings,
        *,
        password: str | None = None,
        clock: Callable[[], datetime] = _local_now,
    ) -> None:
        self.settings = settings
        self._password = password
        self._clock = clock

    async def send(self, message: OutboundMessage, *, automatic: bool = False) -> SendResult:
        """Deliver ``message``; an acknowledgement (``message.automatic``, as the Outbox sends
        it, or ``automatic``) is marked ``Auto-Submitted``."""
        automatic = automatic or message.automatic
        try:
            files = await asyncio.to_thread(_read_files, message)
        except OSError as exc:
            return self._result(SendStatus.FAILED, message, f"tệp đính kèm: {exc}")
        mail = build_reply(
            message,
            from_address=self.settings.from_address,
            from_name=self.settings.from_name,
            domain=self.settings.domain,
            date=self._clock(),
            automatic=automatic,
            files=files,
        )
        external_id = message_id_of(mail)
        try:
            endpoint = self.settings.smtp
            user, password = self.settings.smtp_login()
        except ConfigError as exc:
            return SendResult(SendStatus.RETRY, error=str(exc))
        if self._password is not None:
            password = self._password
        try:
            await aiosmtplib.send(
                mail,
                hostname=endpoint.host,
                port=endpoint.port,
                username=user or None,
                password=password if user else None,
                use_tls=endpoint.tls,
                start_tls=endpoint.starttls,
                tls_context=endpoint.ssl_context(),
                timeout=self.settings.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients] or [550]
            status = SendStatus.RETRY if all(400 <= c < 500 for c in codes) else SendStatus.FAILED
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            return self._result(status, message, f"người nhận bị từ chối: {reason}")
        except aiosmtplib.SMTPAuthenticationError as exc:
            return self._result(SendStatus.RETRY, message, f"đăng nhập SMTP bị từ chối: {exc.code}")
        except aiosmtplib.SMTPResponseException as exc:
            return self._result(_status_of(exc.code), message, f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            return self._result(SendStatus.RETRY, message, f"{type(exc).__name__}: {exc}")
        log.info("mail for ticket %s sent as <%s>", message.ticket_code, external_id)
        return SendResult(SendStatus.SENT, external_id=external_id)

    def _result(self, status: SendStatus, message: OutboundMessage, error: str) -> SendResult:
        error = " ".join(error.split())[:300]
        log.warning("mail for ticket %s: %s (%s)", message.ticket_code, status.value, error)
        return SendResult(status, error=error)
