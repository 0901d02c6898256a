"""Helpers for the mail tests: settings for the lab, sending mail through its Postfix,
waiting for facts with a deadline."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import time
from collections.abc import Callable, Iterable
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib
import pytest

from channels.email.settings import EmailChannelSettings
from lab.mail import MailLab, MailUser


def reader_settings(lab: MailLab, **changes: object) -> EmailChannelSettings:
    table: dict[str, object] = {
        "imap_url": lab.imap_url(),
        "username": lab.province.address,
        "password_file": str(lab.province.password_file),
        "smtp_url": lab.smtp_url(),
        "from_address": lab.province.address,
        "from_name": "Tổng đài 1022 Quảng Nam",
        "domain": lab.domain,
        "timeout_s": 10.0,
        "poll_s": 0.5,
    }
    table.update(changes)
    return EmailChannelSettings.from_table("tests/mail", table)


async def submit(
    lab: MailLab,
    mails: Iterable[EmailMessage | bytes],
    user: MailUser | None = None,
    to: str | None = None,
) -> int:
    """Send mails through the lab's Postfix (STARTTLS + AUTH as ``user``), one connection."""
    user = user or lab.citizen
    to = to or lab.province.address
    smtp = aiosmtplib.SMTP(
        hostname=lab.host,
        port=lab.ports.smtp,
        start_tls=True,
        timeout=20,
        tls_context=ssl.create_default_context(cafile=str(lab.cafile)),
    )
    count = 0
    async with smtp:
        await smtp.login(user.address, user.password)
        for mail in mails:
            if isinstance(mail, EmailMessage):
                await smtp.send_message(mail, sender=user.address, recipients=[to])
            else:
                await smtp.sendmail(user.address, [to], mail)
            count += 1
    return count


def citizen_mail(n: int, subject: str | None = None, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Công Dân <congdan@lab.test>"
    mail["To"] = "1022@lab.test"
    mail["Subject"] = subject or f"Phản ánh số {n}"
    mail["Message-ID"] = f"<test-{n}-{time.monotonic_ns()}@lab.test>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(f"Nội dung phản ánh số {n}: đường ở thôn {n} bị hỏng.")
    return mail


async def eventually(
    predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def mailbox_count(lab: MailLab, user: MailUser) -> int:
    out = lab.doveadm("mailbox", "status", "-u", user.address, "messages", "INBOX")
    return int(out.split("messages=")[1].split()[0])


def fetch_all(lab: MailLab, user: MailUser) -> list[EmailMessage]:
    """Every mail in ``user``'s INBOX, read with the standard library (an independent client)."""
    with imaplib.IMAP4(lab.host, lab.ports.imap, timeout=10) as client:
        client.login(user.address, user.password)
        client.select("INBOX", readonly=True)
        _, data = client.uid("SEARCH", "ALL")
        mails: list[EmailMessage] = []
        for uid in data[0].split():
            _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = parts[0][1] if isinstance(parts[0], tuple) else b""
            parsed = message_from_bytes(raw, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            mails.append(parsed)
        return mails


def old_mail(n: int) -> bytes:
    return (
        "From: =?utf-8?q?C=C3=B4ng_D=C3=A2n?= <congdan@lab.test>\r\nTo: 1022@lab.test\r\n"
        f"Subject: =?utf-8?q?Th=C6=B0_c=C5=A9?= {n}\r\nMessage-ID: <old-{n}@lab.test>\r\n"
        "Date: Mon, 1 Jun 2026 08:00:00 +0700\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        f"Nội dung thư cũ số {n}: xin hỏi về hồ sơ đất đai ở xã Tam Thăng.\r\n"
    ).encode()
