"""EmailSender through the real Postfix: the reply arrives in the citizen's mailbox with its
threading headers, the citizen's answer finds the conversation again, and every failure is a
SendResult (never an exception)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailtools import eventually, fetch_all, mailbox_count, reader_settings, submit
from memory_sink import MemorySink

from channels.email.ack import acknowledgement, load_template
from channels.email.checkpoint import MemoryCheckpoint
from channels.email.parse import parse_mail
from channels.email.reader import MailReader
from channels.email.sender import EmailSender
from conversations.model import (
    Identity,
    IdentityKind,
    OutboundMessage,
    OutgoingAttachment,
    SendStatus,
)
from lab.mail import MailLab
from tickets.model import Channel

CODE = "1022-20261206-000012"


def reply(to: str, **kw: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "channel": Channel.EMAIL,
        "ticket_code": CODE,
        "recipient": Identity(IdentityKind.EMAIL, to),
        "text": "Kính gửi ông/bà,\nHồ sơ đã có kết quả.",
        "subject": "Hỏi về hồ sơ",
        "thread": ("first@lab.test", "ack-12@lab.test", "second@lab.test"),
        "message_id": f"reply-{datetime.now(UTC).timestamp()}",
    }
    fields.update(kw)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


async def test_given_an_agent_reply_then_it_arrives_threaded_and_the_answer_finds_it(
    mail_lab: MailLab, tmp_path: Path
) -> None:
    sender = EmailSender(reader_settings(mail_lab))
    attachment = tmp_path / "ket-qua.pdf"
    attachment.write_bytes(b"%PDF-1.4 ket qua")
    message = reply(
        mail_lab.citizen.address,
        html="<p>Hồ sơ đã có <b>kết quả</b>.</p>",
        attachments=(OutgoingAttachment("Kết quả.pdf", "application/pdf", str(attachment)),),
    )
    result = await sender.send(message)
    assert result.status is SendStatus.SENT, result.error
    assert result.external_id == f"{message.message_id}@lab.test"
    await eventually(lambda: mailbox_count(mail_lab, mail_lab.citizen) == 1, what="delivery")
    (got,) = await asyncio.to_thread(fetch_all, mail_lab, mail_lab.citizen)
    assert got["Message-ID"] == f"<{result.external_id}>"
    assert got["In-Reply-To"] == "<second@lab.test>"
    references = ["<first@lab.test>", "<ack-12@lab.test>", "<second@lab.test>"]
    assert got["References"].split() == references
    assert got["Subject"] == f"Re: Hỏi về hồ sơ [{CODE}]"
    assert got["From"] == "Tổng đài 1022 Quảng Nam <1022@lab.test>"
    assert got["Auto-Submitted"] is None
    body = got.get_body(preferencelist=("plain",))
    assert body is not None and "Hồ sơ đã có kết quả." in body.get_content()
    (pdf,) = list(got.iter_attachments())
    assert pdf.get_filename() == "Kết quả.pdf" and pdf.get_content() == b"%PDF-1.4 ket qua"

    # the citizen answers from their mail client: the reader sees the thread and the code
    answer = EmailMessage()
    answer["From"] = mail_lab.citizen.address
    answer["To"] = mail_lab.province.address
    answer["Subject"] = got["Subject"]  # clients keep an existing "Re:"
    answer["Message-ID"] = "<answer-1@lab.test>"
    answer["In-Reply-To"] = got["Message-ID"]
    answer["References"] = f"{got['References']} {got['Message-ID']}"
    answer.set_content("Cảm ơn tổng đài.")
    sink = MemorySink()
    await submit(mail_lab, [answer])
    await eventually(lambda: mailbox_count(mail_lab, mail_lab.province) == 1, what="answer")
    reader = MailReader(reader_settings(mail_lab), sink, MemoryCheckpoint())
    assert await reader.sync_once() == 1
    (inbound,) = sink.stored.values()
    assert inbound.in_reply_to[-1] == result.external_id
    assert inbound.ticket_code == CODE
    assert inbound.subject == f"Re: Hỏi về hồ sơ [{CODE}]"  # the code once, not twice


async def test_given_an_acknowledgement_then_it_is_marked_automatic(mail_lab: MailLab) -> None:
    inbound = parse_mail(
        (
            "From: =?utf-8?b?Q8O0bmcgRMOibg==?= <congdan@lab.test>\r\nSubject: Xin hỏi\r\n"
            "Message-ID: <first-mail@lab.test>\r\n\r\nNội dung\r\n"
        ).encode(),
        datetime.now(UTC),
    )
    ack = acknowledgement(inbound, code=CODE, message_id="ack-000012", template=load_template())
    result = await EmailSender(reader_settings(mail_lab)).send(ack, automatic=True)
    assert result.status is SendStatus.SENT, result.error
    await eventually(lambda: mailbox_count(mail_lab, mail_lab.citizen) == 1, what="delivery")
    (got,) = await asyncio.to_thread(fetch_all, mail_lab, mail_lab.citizen)
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["In-Reply-To"] == "<first-mail@lab.test>"
    assert got["Subject"] == f"Re: Xin hỏi [{CODE}]"
    text = got.get_body(preferencelist=("plain",))
    assert text is not None
    assert "Kính gửi Công Dân," in text.get_content() and CODE in text.get_content()


@pytest.mark.parametrize(
    ("to", "status", "words"),
    [
        ("nobody@lab.test", SendStatus.FAILED, "550"),
        ("busy@lab.test", SendStatus.RETRY, "450"),
    ],
)
async def test_given_a_refused_recipient_then_failed_or_retry(
    mail_lab: MailLab, to: str, status: SendStatus, words: str
) -> None:
    result = await EmailSender(reader_settings(mail_lab)).send(reply(to))
    assert result.status is status
    assert result.error is not None and words in result.error and result.external_id is None


async def test_given_no_server_or_a_wrong_password_then_retry(mail_lab: MailLab) -> None:
    closed = reader_settings(mail_lab, smtp_url="smtp://127.0.0.1:9?starttls", timeout_s=3.0)
    down = await EmailSender(closed).send(reply(mail_lab.citizen.address))
    assert down.status is SendStatus.RETRY and down.error
    wrong = EmailSender(reader_settings(mail_lab), password="not-the-password")
    refused = await wrong.send(reply(mail_lab.citizen.address))
    assert refused.status is SendStatus.RETRY
    assert refused.error is not None and "đăng nhập SMTP bị từ chối" in refused.error
    assert "not-the-password" not in refused.error


async def test_given_a_missing_attachment_then_failed(mail_lab: MailLab, tmp_path: Path) -> None:
    gone = OutgoingAttachment("x.pdf", "application/pdf", str(tmp_path / "gone.pdf"))
    result = await EmailSender(reader_settings(mail_lab)).send(
        reply(mail_lab.citizen.address, attachments=(gone,))
    )
    assert result.status is SendStatus.FAILED and result.error and "gone.pdf" in result.error
