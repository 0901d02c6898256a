"""The reply mail: threading headers, subject with the code once, loop-proof acknowledgements,
HTML alternative and attachments; and the reader's checkpoint file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.email.checkpoint import FileCheckpoint, Position
from channels.email.compose import FileData, build_reply, message_id_of, reply_subject
from channels.email.imap import uid_set
from channels.email.parse import parse_mail
from channels.email.reader import size_batches
from conversations.model import Identity, IdentityKind, OutboundMessage
from tickets.model import Channel
from tongdai.errors import StoreError

CODE = "1022-20261206-000012"
AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def outbound(**kw: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "channel": Channel.EMAIL,
        "ticket_code": CODE,
        "recipient": Identity(IdentityKind.EMAIL, "an@gmail.com"),
        "text": "Kính gửi ông,\nHồ sơ của ông đang được xử lý.",
        "subject": "Hỏi về hồ sơ",
        "thread": ("CAF1@mail.gmail.com", "ack-12@quangnam.gov.vn", "CAF2@mail.gmail.com"),
        "message_id": "msg-42",
    }
    fields.update(kw)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


def reparse(mail: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hỏi về hồ sơ", f"Re: Hỏi về hồ sơ [{CODE}]"),
        (f"Re: Hỏi về hồ sơ [{CODE}]", f"Re: Hỏi về hồ sơ [{CODE}]"),
        (f"RE: Re: TL: Fwd: Hỏi [{CODE}] về [{CODE}]", f"Re: Hỏi về [{CODE}]"),
        ("Trả lời: Điện", f"Re: Điện [{CODE}]"),
        ("", f"Tổng đài 1022 [{CODE}]"),
        (None, f"Tổng đài 1022 [{CODE}]"),
    ],
)
def test_reply_subject_has_the_code_once(subject: str | None, expected: str) -> None:
    assert reply_subject(subject, CODE) == expected


def test_given_a_reply_then_threading_headers_point_at_the_conversation() -> None:
    mail = reparse(
        build_reply(
            outbound(),
            from_address="1022@quangnam.gov.vn",
            from_name="Tổng đài 1022",
            domain="quangnam.gov.vn",
            date=AT,
        )
    )
    assert mail["Message-ID"] == "<msg-42@quangnam.gov.vn>"
    assert mail["In-Reply-To"] == "<CAF2@mail.gmail.com>"
    assert mail["References"].split() == [
        "<CAF1@mail.gmail.com>",
        "<ack-12@quangnam.gov.vn>",
        "<CAF2@mail.gmail.com>",
    ]
    assert mail["Subject"] == f"Re: Hỏi về hồ sơ [{CODE}]"
    assert mail["From"] == "Tổng đài 1022 <1022@quangnam.gov.vn>"
    assert mail["To"] == "an@gmail.com"
    assert mail["Auto-Submitted"] is None
    assert mail.get_content().strip() == "Kính gửi ông,\nHồ sơ của ông đang được xử lý."
    # and our own parser reads back what the citizen's reply will quote
    back = parse_mail(mail.as_bytes(), AT)
    assert back.external_id == "msg-42@quangnam.gov.vn"
    assert back.ticket_code == CODE and back.automated is False


def test_given_an_acknowledgement_then_it_says_it_is_automatic() -> None:
    mail = build_reply(outbound(), from_address="1022@x.vn", domain="x.vn", date=AT, automatic=True)
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    # our own acknowledgement coming back (e.g. a copy) is never acknowledged
    assert parse_mail(mail.as_bytes(), AT).automated is True


def test_given_html_and_files_then_alternative_and_attachments() -> None:
    mail = reparse(
        build_reply(
            outbound(html="<p>Kính gửi ông</p>", thread=()),
            from_address="1022@x.vn",
            domain="x.vn",
            date=AT,
            files=[
                FileData("Kết quả.pdf", "application/pdf", b"%PDF-1.4 x"),
                FileData("odd", "nonsense", b"\x00\x01"),
            ],
        )
    )
    assert mail["In-Reply-To"] is None and mail["References"] is None
    assert mail.get_content_type() == "multipart/mixed"
    body = mail.get_body(preferencelist=("html",))
    assert body is not None and "<p>Kính gửi ông</p>" in body.get_content()
    files = {p.get_filename(): p for p in mail.iter_attachments()}
    assert files["Kết quả.pdf"].get_content() == b"%PDF-1.4 x"
    assert files["odd"].get_content_type() == "application/octet-stream"


def test_given_a_long_thread_then_references_keep_the_first_and_the_newest() -> None:
    thread = tuple(f"m{i}@x" for i in range(50))
    mail = build_reply(outbound(thread=thread), from_address="a@x.vn", domain="x.vn", date=AT)
    refs = str(mail["References"]).split()
    assert len(refs) == 20 and refs[0] == "<m0@x>" and refs[-1] == "<m49@x>"


def test_given_an_unsafe_message_id_then_it_is_cleaned() -> None:
    mail = build_reply(
        outbound(message_id="a b<c>@d"), from_address="a@x.vn", domain="x.vn", date=AT
    )
    assert message_id_of(mail) == "a-b-c--d@x.vn"
    blank = build_reply(outbound(message_id=""), from_address="a@x.vn", domain="x.vn", date=AT)
    assert message_id_of(blank).endswith("@x.vn") and len(message_id_of(blank)) > 20


async def test_file_checkpoint_survives_a_restart_and_refuses_garbage(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mail.json"
    first = FileCheckpoint(path)
    assert await first.load("1022@x/INBOX") is None
    await first.save("1022@x/INBOX", Position(7, 41))
    await first.save("1022@x/Khac", Position(9, 3))
    again = FileCheckpoint(path)
    assert await again.load("1022@x/INBOX") == Position(7, 41)
    assert json.loads(path.read_text()) == {"1022@x/INBOX": [7, 41], "1022@x/Khac": [9, 3]}
    assert [p.name for p in path.parent.iterdir()] == ["mail.json"]  # no temporary left
    path.write_text('{"1022@x/INBOX": [7, "x"]}')
    with pytest.raises(StoreError, match="bad entry"):
        await again.load("1022@x/INBOX")


def test_uid_sets_and_size_batches() -> None:
    assert uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"
    sizes = {1: 10, 2: 10, 3: 100, 4: 1, 5: 1}
    assert size_batches([1, 2, 3, 4, 5], sizes, 25) == [[1, 2], [3], [4, 5]]
    assert size_batches([], sizes, 25) == []


def test_given_the_citizens_mail_to_answer_then_in_reply_to_points_at_it() -> None:
    thread = ("CAF1@mail.gmail.com", "ack-12@quangnam.gov.vn")
    mail = build_reply(
        outbound(thread=thread, reply_to="CAF1@mail.gmail.com"),
        from_address="a@x.vn", domain="x.vn", date=AT,
    )  # fmt: skip
    # not our own acknowledgement, the newest of the thread
    assert mail["In-Reply-To"] == "<CAF1@mail.gmail.com>"
    assert str(mail["References"]).split() == ["<CAF1@mail.gmail.com>", "<ack-12@quangnam.gov.vn>"]


def test_given_a_long_thread_and_an_old_parent_then_references_still_hold_the_parent() -> None:
    thread = tuple(f"m{i}@x" for i in range(50))
    mail = build_reply(
        outbound(thread=thread, reply_to="m5@x"), from_address="a@x.vn", domain="x.vn", date=AT
    )
    refs = str(mail["References"]).split()
    assert len(refs) == 20 and refs[:2] == ["<m0@x>", "<m5@x>"] and refs[-1] == "<m49@x>"
    assert mail["In-Reply-To"] == "<m5@x>"
