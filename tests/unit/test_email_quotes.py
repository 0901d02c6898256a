"""trim_quoted: the new words of a reply, for display (the full text stays stored)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.email.parse import parse_mail
from channels.email.quotes import trim_quoted

SAMPLES = Path(__file__).resolve().parent.parent / "mail_samples"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Cảm ơn.\n\nVào Th 2, 6 thg 12, 2026 lúc 09:15 Tổng đài 1022 <1022@x.vn> đã viết:\n"
            "> Kính gửi\n> ông",
            "Cảm ơn.",
        ),
        ("Thanks\n\nOn Mon, Dec 6, 2026 at 9:15 AM 1022 <1022@x.vn> wrote:\n> hi", "Thanks"),
        ("Thanks\nOn Mon, Dec 6, 2026 at 9:15 AM 1022 <1022@x.vn>\nwrote:\n> hi", "Thanks"),
        ("Dạ\n\n-----Original Message-----\nFrom: x\nold", "Dạ"),
        ("Dạ\n\n-----Thư gốc-----\nold", "Dạ"),
        ("Dạ vâng\n\nTừ: 1022 <1022@x.vn>\nGửi: Thứ Hai\nTiêu đề: Re\n\ncũ", "Dạ vâng"),
        ("Ý kiến\n\n> dòng trích\n> dòng nữa\n\n", "Ý kiến"),
    ],
)
def test_given_a_quoted_reply_then_only_the_new_words_show(text: str, kept: str) -> None:
    assert trim_quoted(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "Không có trích dẫn nào.\nHai dòng.",
        # one ">" line inside the citizen's own words is not a quote block
        "Xem:\n> một dòng\ntôi nói tiếp\nvà tiếp\nvà tiếp nữa\nhết",
        # a mail that is only a quote: show it all rather than nothing
        "> all quoted\n> yes",
        # "From:" without the rest of Outlook's block is the citizen's own line
        "From: tôi, gửi từ xã Tam Kỳ\nNội dung",
    ],
)
def test_given_no_quote_block_then_the_text_is_whole(text: str) -> None:
    assert trim_quoted(text) == text.strip()


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("reply_gmail_vi.eml", "Dạ, tôi xin bổ sung số điện thoại: 0905 123 456."),
        ("reply_outlook.eml", "Đã có điện lại, cảm ơn."),
    ],
)
def test_given_real_replies_then_trimmed_for_display_but_stored_whole(name: str, kept: str) -> None:
    m = parse_mail((SAMPLES / name).read_bytes(), datetime(2026, 12, 7, tzinfo=UTC))
    assert trim_quoted(m.text) == kept
    assert len(m.text) > len(kept) + 40
