"""[channels.email] settings and the acknowledgement template: errors name file and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.email.ack import DEFAULT_TEMPLATE, AckTemplate, acknowledgement, load_template
from channels.email.settings import EmailChannelSettings
from conversations.model import Identity, IdentityKind, InboundMessage
from tickets.model import Channel
from tongdai.errors import ConfigError

FILE = "tongdai.toml"
GOOD: dict[str, Any] = {
    "imap_url": "imaps://mail.quangnam.gov.vn:993",
    "username": "1022@quangnam.gov.vn",
    "smtp_url": "smtp://mail.quangnam.gov.vn:587?starttls",
    "from_address": "1022@quangnam.gov.vn",
    "from_name": "Tổng đài 1022 Quảng Nam",
    "domain": "quangnam.gov.vn",
    "poll_s": 60,
    "idle": True,
    "batch": 25,
}


@pytest.fixture
def good(tmp_path: Path) -> dict[str, Any]:
    secret = tmp_path / "imap.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o600)
    return {**GOOD, "password_file": str(secret)}


def test_given_a_good_table_then_settings_and_endpoints(good: dict[str, Any]) -> None:
    s = EmailChannelSettings.from_table(FILE, good)
    assert s.poll_s == 60.0 and s.batch == 25 and s.mailbox == "INBOX"
    imap, smtp = s.imap, s.smtp
    assert (imap.host, imap.port, imap.tls, imap.starttls) == (
        "mail.quangnam.gov.vn",
        993,
        True,
        False,
    )
    assert (smtp.port, smtp.tls, smtp.starttls) == (587, False, True)
    assert (
        EmailChannelSettings.from_table(FILE, {**good, "imap_url": "imap://127.0.0.1"}).imap.port
        == 143
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"colour": "red"}, "channels.email.colour", "unknown field"),
        ({"poll_s": "often"}, "channels.email.poll_s", "must be a number"),
        ({"idle": 1}, "channels.email.idle", "must be true or false"),
        ({"batch": True}, "channels.email.batch", "must be a number"),
        ({"batch": 0}, "channels.email.batch", "between 1 and 200"),
        ({"batch": 2.5}, "channels.email.batch", "whole number"),
        ({"poll_s": 0}, "channels.email.poll_s", "between 0.1 and 3600"),
        ({"password_file": "/nonexistent/x"}, "channels.email.password_file", "no such file"),
        ({"imap_url": "http://x"}, "channels.email.imap_url", "imap:// or imaps://"),
        ({"imap_url": "imap://x:99999"}, "channels.email.imap_url", "not a valid URL"),
        ({"imap_url": "imap://u:p@x"}, "channels.email.imap_url", "no user or password"),
        ({"imap_url": "imap://x?starttls"}, "channels.email.imap_url", "use imaps://"),
        ({"smtp_url": "smtps://x?starttls"}, "channels.email.smtp_url", "TLS already"),
        ({"smtp_url": "smtp://x?tls=1"}, "channels.email.smtp_url", "unknown URL parameter"),
        ({"smtp_url": "smtp://x?cafile=/nope.pem"}, "channels.email.smtp_url", "does not exist"),
        ({"username": ""}, "channels.email.username", "non-empty text"),
        ({"smtp_username": 5}, "channels.email.smtp_username", "non-empty text"),
        ({"mailbox": "Hộp thư"}, "channels.email.mailbox", "ASCII"),
        ({"from_address": "Tổng đài <1022@x.vn>"}, "channels.email.from_address", "bare address"),
        ({"domain": "quang nam"}, "channels.email.domain", "domain like"),
    ],
)
def test_given_a_bad_value_then_error_names_file_and_field(
    good: dict[str, Any], change: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        EmailChannelSettings.from_table(FILE, {**good, **change})
    assert err.value.file == FILE and err.value.field == field
    assert words in err.value.problem


def test_given_password_files_then_read_or_a_clear_error(
    good: dict[str, Any], tmp_path: Path
) -> None:
    s = EmailChannelSettings.from_table(FILE, good)
    assert s.imap_password() == "s3cret"
    assert s.smtp_login() == ("1022@quangnam.gov.vn", "s3cret")  # the IMAP login by default
    open_to_all = tmp_path / "smtp.secret"
    open_to_all.write_text("x\n", encoding="utf-8")
    open_to_all.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        EmailChannelSettings.from_table(FILE, {**good, "smtp_password_file": str(open_to_all)})
    assert (err.value.file, err.value.field) == (FILE, "channels.email.smtp_password_file")
    assert "chmod 600" in err.value.problem
    Path(good["password_file"]).write_text("\n", encoding="utf-8")  # emptied after loading
    with pytest.raises(ConfigError) as err:
        s.imap_password()
    assert (err.value.file, err.value.field) == (FILE, "channels.email.password_file")
    assert "is empty" in err.value.problem


def test_the_shipped_acknowledgement_carries_the_code_in_vietnamese() -> None:
    template = load_template()
    inbound = InboundMessage(
        channel=Channel.EMAIL,
        external_id="CAF1@mail.gmail.com",
        sender=Identity(IdentityKind.EMAIL, "an@gmail.com"),
        received_at=datetime(2026, 12, 6, 2, 15, tzinfo=UTC),
        sender_name="Nguyễn Văn An",
        subject="Hỏi về hồ sơ",
        in_reply_to=("older@x.vn",),
    )
    out = acknowledgement(
        inbound, code="1022-20261206-000012", message_id="ack-12", template=template
    )
    assert "Kính gửi Nguyễn Văn An," in out.text
    assert "Mã phiếu của ông/bà là: 1022-20261206-000012" in out.text
    assert "09:15 ngày 06/12/2026" in out.text  # Vietnam time
    assert out.recipient.value == "an@gmail.com" and out.subject == "Hỏi về hồ sơ"
    assert out.thread == ("older@x.vn", "CAF1@mail.gmail.com")
    anonymous = acknowledgement(
        InboundMessage(
            Channel.EMAIL, "x@y", Identity(IdentityKind.EMAIL, "a@b.vn"), inbound.received_at
        ),
        code="1022-20261206-000013",
        message_id="ack-13",
        template=template,
    )
    assert "Kính gửi ông/bà," in anonymous.text and "(không có tiêu đề)" in anonymous.text


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        ('[acknowledgement]\ntext = "Xin chào"\n', "acknowledgement.text", "must contain {code}"),
        (
            '[acknowledgement]\ntext = "Mã {code} {ten}"\n',
            "acknowledgement.text",
            "unknown placeholder {ten}",
        ),
        ('[acknowledgement]\ntext = "Mã {code"\n', "acknowledgement.text", "bad placeholder"),
        ("[acknowledgement]\ntext = 5\n", "acknowledgement.text", "must be a string"),
        (
            '[acknowledgement]\ntext = "{code}"\nsubject = "x"\n',
            "acknowledgement.subject",
            "unknown",
        ),
        ('[other]\ntext = "{code}"\n', "other", "unknown key"),
        ("[acknowledgement\n", "line 1", "not valid TOML"),
        ("", "acknowledgement", "missing"),
    ],
)
def test_given_a_bad_template_then_error_names_the_field(
    tmp_path: Path, content: str, field: str, words: str
) -> None:
    path = tmp_path / "ack.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_template(path)
    assert err.value.file == str(path) and err.value.field == field
    assert words in err.value.problem


def test_the_default_template_is_the_shipped_file() -> None:
    assert DEFAULT_TEMPLATE.name == "ack_vi.toml" and DEFAULT_TEMPLATE.is_file()
    assert isinstance(load_template(DEFAULT_TEMPLATE), AckTemplate)
