"""Raw mail -> InboundMessage, on a corpus of mails as people and machines send them
(``tests/mail_samples``): charsets, RFC 2047, MIME structures, threading, automatic mail."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.email.headers import UNKNOWN_SENDER
from channels.email.parse import RAW_FILENAME, parse_mail
from conversations.model import IdentityKind, InboundMessage
from tickets.model import Channel

SAMPLES = Path(__file__).resolve().parent.parent / "mail_samples"
AT = datetime(2026, 12, 6, 2, 15, tzinfo=UTC)


def sample(name: str) -> InboundMessage:
    return parse_mail((SAMPLES / name).read_bytes(), AT)


def test_given_a_gmail_mail_then_subject_name_and_text_are_vietnamese() -> None:
    m = sample("rfc2047_alternative.eml")
    assert m.channel is Channel.EMAIL
    assert m.external_id == "CAF1x=abc123@mail.gmail.com"
    assert m.sender.kind is IdentityKind.EMAIL
    assert m.sender.value == "nguyenvanan@gmail.com"  # lower-cased
    assert m.sender_name == "Nguyễn Văn An"
    assert m.subject == "Hỏi về hồ sơ cấp giấy phép xây dựng"
    assert m.received_at == AT
    # text/plain preferred over the HTML alternative; the HTML is kept raw beside it
    assert m.text.startswith("Kính gửi Tổng đài 1022,\n\nTôi nộp hồ sơ")
    assert "<b>" not in m.text
    assert m.html is not None and "<b>giấy phép xây dựng</b>" in m.html
    assert m.attachments == ()
    assert m.automated is False
    assert m.ticket_code is None


def test_given_windows_1258_then_text_equals_the_utf8_spelling() -> None:
    m = sample("windows1258.eml")
    # windows-1258 writes tones as combining marks: the parser composes them (NFC)
    assert m.subject == "Phản ánh: đường bị sạt lở"
    assert m.sender_name == "Trần Thị Bích Ngọc"
    assert "Đường thôn Phú Mỹ bị sạt lở sau mưa lũ" in m.text
    assert "charset_fallback" not in m.meta


@pytest.mark.parametrize(
    ("name", "expected", "fallback"),
    [
        ("latin1.eml", "café, crème, Ngô", None),
        ("ascii_label_utf8_bytes.eml", "Tôi muốn hỏi về thuế đất.", "us-ascii -> utf-8"),
        ("unknown_charset.eml", "Xin chào", "x-viet-vps -> cp1258"),
    ],
)
def test_given_odd_charsets_then_text_is_readable_and_fallback_noted(
    name: str, expected: str, fallback: str | None
) -> None:
    m = sample(name)
    assert expected in m.text
    assert m.meta.get("charset_fallback") == fallback


def test_given_attachments_then_names_are_decoded_and_never_paths() -> None:
    m = sample("attachments.eml")
    assert m.text.strip() == "Gửi kèm đơn và ảnh chụp."
    got = {a.filename: a for a in m.attachments}
    assert set(got) == {"Đơn đề nghị.pdf", "ảnh hiện trường.png", "passwd", "thu-dinh-kem-4.eml"}
    pdf = got["Đơn đề nghị.pdf"]
    assert pdf.content_type == "application/pdf"
    assert pdf.data is not None and pdf.data.startswith(b"%PDF-1.4")
    assert got["ảnh hiện trường.png"].content_type == "image/png"
    forwarded = got["thu-dinh-kem-4.eml"]
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.data is not None and b"Noi dung thu cu" in forwarded.data


def test_given_html_only_then_text_comes_from_the_html() -> None:
    m = sample("html_only.eml")
    assert m.text.splitlines()[0] == "Xin chào,"
    assert "Đèn đường ở đây bị hỏng." in m.text
    assert "- Thôn 1" in m.text
    assert "alert" not in m.text and "color:red" not in m.text
    assert m.html is not None and "<script>" in m.html  # kept raw; pages use safe_html


def test_given_a_reply_then_thread_ids_and_ticket_code_are_found() -> None:
    m = sample("reply_gmail_vi.eml")
    assert m.ticket_code == "1022-20261206-000012"
    assert m.in_reply_to == ("CAF1x=abc123@mail.gmail.com", "ack-20261206-000012@quangnam.gov.vn")
    assert "Vào Th 2" in m.text  # the full text is stored; trimming is for display


def test_given_in_reply_to_outside_references_then_it_comes_last() -> None:
    raw = (
        b"From: a@b.vn\r\nMessage-ID: <m3@b.vn>\r\nReferences: <m1@x> <m2@x>\r\n"
        b"In-Reply-To: <m0@x>\r\n\r\nhi\r\n"
    )
    assert parse_mail(raw, AT).in_reply_to == ("m1@x", "m2@x", "m0@x")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("autoreply.eml", "Auto-Submitted: auto-replied"),
        ("bounce.eml", "empty Return-Path"),
        ("mailing_list.eml", "Precedence: list"),
    ],
)
def test_given_machine_mail_then_it_is_automated(name: str, reason: str) -> None:
    m = sample(name)
    assert m.automated is True
    assert m.meta["automated"] == reason


@pytest.mark.parametrize(
    ("headers", "automated"),
    [
        ("Auto-Submitted: no\r\n", False),
        ("Auto-Submitted: auto-generated\r\n", True),
        ("Precedence: bulk\r\n", True),
        ("Precedence: junk\r\n", True),
        ("Precedence: first-class\r\n", False),
        ("List-Unsubscribe: <mailto:x@y>\r\n", True),
        ("Return-Path: <>\r\n", True),
        ("Return-Path: <a@b.vn>\r\n", False),
        ("X-Autorespond: yes\r\n", True),
        ("Content-Type: multipart/report; boundary=x\r\n", True),
    ],
)
def test_given_each_loop_rule_then_automated_matches(headers: str, automated: bool) -> None:
    raw = f"From: a@b.vn\r\nMessage-ID: <x@b.vn>\r\n{headers}\r\nhi\r\n".encode()
    assert parse_mail(raw, AT).automated is automated


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.vn", "postmaster@example.vn"])
def test_given_a_robot_sender_then_automated(sender: str) -> None:
    raw = f"From: {sender}\r\nSubject: x\r\n\r\nhi\r\n".encode()
    assert parse_mail(raw, AT).automated is True


def test_given_no_message_id_then_a_stable_id_from_the_bytes() -> None:
    raw = (SAMPLES / "no_message_id.eml").read_bytes()
    first, again = parse_mail(raw, AT), parse_mail(raw, datetime.now(UTC))
    assert first.external_id == again.external_id
    assert first.external_id.endswith("@tongdai.invalid")
    assert first.meta["message_id_synthesised"] == "yes"
    other = parse_mail(raw.replace(b"hello", b"hello!"), AT)
    assert other.external_id != first.external_id


def test_given_malformed_mime_then_read_as_far_as_possible_and_raw_kept() -> None:
    raw = (SAMPLES / "malformed.eml").read_bytes()
    m = parse_mail(raw, AT)
    assert m.sender.value == "broken@example.vn"
    assert m.subject == "=?utf-8?B?!!!notbase64?= still here"  # undecodable: shown as sent
    assert "Hello world" in m.text
    assert "CloseBoundaryNotFoundDefect" in m.meta["mime_defects"]
    kept = [a for a in m.attachments if a.filename == RAW_FILENAME]
    assert kept and kept[0].data == raw


def test_given_no_usable_from_then_unknown_sender() -> None:
    m = parse_mail(b"From: not an address\r\nSubject: x\r\n\r\nbody\r\n", AT)
    assert m.sender.value == UNKNOWN_SENDER
    assert m.text.strip() == "body"


def test_given_a_parser_crash_then_the_mail_is_kept_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = b"From: a@b.vn\r\nMessage-ID: <crash@b.vn>\r\n\r\nbody\r\n"

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("channels.email.parse._walk", explode)
    m = parse_mail(raw, AT)
    assert m.external_id == "crash@b.vn"  # still de-duplicated by its Message-ID
    assert "Không đọc được thư này" in m.text and "boom" in m.text
    assert m.attachments[0].filename == RAW_FILENAME and m.attachments[0].data == raw
    assert m.automated is True  # nobody can tell who wrote it: no acknowledgement


def test_given_a_huge_mail_then_every_byte_of_the_attachment_arrives() -> None:
    data = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # 8 MiB
    mail = EmailMessage()
    mail["From"] = "Lớn <big@example.vn>"
    mail["Subject"] = "Tệp lớn"
    mail["Message-ID"] = "<huge@example.vn>"
    mail.set_content("Gửi bản vẽ.\n" * 20000)
    mail.add_attachment(data, maintype="application", subtype="zip", filename="bản vẽ.zip")
    raw = mail.as_bytes()
    assert len(raw) > 11_000_000
    m = parse_mail(raw, AT)
    assert m.sender_name == "Lớn" and m.subject == "Tệp lớn"
    assert m.text.count("Gửi bản vẽ.") == 20000
    (zipped,) = m.attachments
    assert zipped.filename == "bản vẽ.zip" and zipped.data == data


def test_given_a_dangerous_or_long_file_name_then_it_is_made_safe() -> None:
    long_name = "đơn " * 100 + ".pdf"
    encoded = base64.b64encode(b"x").decode()
    raw = (
        "From: a@b.vn\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        f'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="{long_name}"'
        f"\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b\r\n"
        "Content-Type: text/plain\r\n"
        'Content-Disposition: attachment; filename="C:\\\\x\\\\a\x01b.txt"'
        "\r\n\r\nnot the body\r\n--b--\r\n"
    ).encode()
    m = parse_mail(raw, AT)
    names = [a.filename for a in m.attachments]
    assert len(names[0]) <= 180 and names[0].endswith(".pdf")
    assert names[1] == "a_b.txt"
    assert m.text == ""  # an attached text file is not the body
