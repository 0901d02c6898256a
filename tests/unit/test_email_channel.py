"""The email channel as the engine assembles it: ``[channels.email]`` gives the Outbox an SMTP
sender, the Inbox a Vietnamese acknowledgement (with the sender's name) and ``Messaging.run``
the IMAP reader as a task; bad settings stop the start with the field named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.email.channel import CHECKPOINT_FILE, EmailChannel
from channels.email.checkpoint import FileCheckpoint
from channels.email.sender import EmailSender
from conversations.model import Identity, IdentityKind, InboundMessage, Received
from hotline.messaging import build_messaging
from tickets.model import Channel, Ticket
from tongdai.db import make_engine
from tongdai.errors import ConfigError
from tongdai.settings import ChannelsSettings, DatabaseSettings, Settings

T0 = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # 08:30 in Vietnam


@pytest.fixture
def table(tmp_path: Path) -> dict[str, Any]:
    secret = tmp_path / "imap.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o600)
    return {
        "imap_url": "imaps://mail.quangnam.gov.vn:993",
        "username": "1022@quangnam.gov.vn",
        "password_file": str(secret),
        "smtp_url": "smtp://mail.quangnam.gov.vn:587?starttls",
        "from_address": "1022@quangnam.gov.vn",
        "domain": "quangnam.gov.vn",
    }


def ticket(code: str = "1022-20261207-000001") -> Ticket:
    return Ticket(
        id=1,
        code=code,
        channel="email",
        caller="dan@example.vn",
        uniqueid=None,
        started_at=T0,
        subject="Hỏi về hồ sơ đất",
    )


def mail(name: str | None, date: str = "Mon, 7 Dec 2026 08:00:00 +0700") -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id="m1@example.vn",
        sender=Identity(IdentityKind.EMAIL, "dan@example.vn"),
        received_at=T0,
        sender_name=name,
        subject="Hỏi về hồ sơ đất",
        meta={"date": date} if date else {},
    )


class AckingSink:
    """An Inbox stand-in that asks for the acknowledgement while it receives, as Inbox does."""

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel
        self.texts: list[str | None] = []

    async def receive(self, message: InboundMessage) -> Received:
        self.texts.append(self.channel.acknowledge(ticket()))
        return Received("1022-20261207-000001", created=True, duplicate=False)


async def test_given_a_first_mail_then_the_acknowledgement_names_the_sender_and_the_code(
    table: dict[str, Any], tmp_path: Path
) -> None:
    channel = EmailChannel.from_settings("tongdai.toml", table, tmp_path / "state")
    assert isinstance(channel.sender, EmailSender)
    assert isinstance(channel.checkpoint, FileCheckpoint)
    assert channel.checkpoint.path == tmp_path / "state" / CHECKPOINT_FILE
    sink = AckingSink(channel)
    reader = channel.reader(sink)
    await reader.sink.receive(mail("Nguyễn Văn Dân"))
    await reader.sink.receive(mail(None))
    named, plain = sink.texts
    assert named is not None and plain is not None
    assert named.startswith("Kính gửi Nguyễn Văn Dân,")
    assert "Mã phiếu của ông/bà là: 1022-20261207-000001" in named
    assert "08:30 ngày 07/12/2026" in named and '"Hỏi về hồ sơ đất"' in named
    assert plain.startswith("Kính gửi ông/bà,")
    # outside a receive (an agent re-sending, a later call) no name is left behind
    later = channel.acknowledge(ticket())
    assert later is not None and later.startswith("Kính gửi ông/bà,")


@pytest.mark.parametrize(
    ("date", "limit", "acknowledged"),
    [
        ("Mon, 7 Dec 2026 08:00:00 +0700", 72, True),  # half an hour ago
        ("Fri, 4 Dec 2026 09:00:00 +0700", 72, True),  # 71.5 h ago
        ("Fri, 4 Dec 2026 08:00:00 +0700", 72, False),  # 72.5 h ago
        ("Mon, 1 Jun 2026 08:00:00 +0700", 72, False),  # an old mail of a first back-fill
        ("Mon, 1 Jun 2026 08:00:00 +0700", 0, True),  # 0: every mail is acknowledged
        ("", 72, True),  # no Date
        ("hôm qua", 72, True),  # a Date nobody can read
        ("Mon, 1 Jun 2026 08:00:00 -0000", 72, False),  # -0000: UTC, source unknown
    ],
)
async def test_given_an_old_mail_then_no_acknowledgement(
    table: dict[str, Any], tmp_path: Path, date: str, limit: float, acknowledged: bool
) -> None:
    table = {**table, "ack_max_age_h": limit}
    channel = EmailChannel.from_settings("tongdai.toml", table, tmp_path)
    sink = AckingSink(channel)
    await channel.reader(sink).sink.receive(mail("Dân", date))
    (text,) = sink.texts
    assert (text is not None) is acknowledged


def test_given_an_own_template_then_it_is_used(table: dict[str, Any], tmp_path: Path) -> None:
    own = tmp_path / "ack.toml"
    own.write_text('[acknowledgement]\ntext = "Đã nhận. Mã: {code}"\n', encoding="utf-8")
    channel = EmailChannel.from_settings("t.toml", {**table, "ack_file": str(own)}, tmp_path)
    assert channel.acknowledge(ticket()) == "Đã nhận. Mã: 1022-20261207-000001\n"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password_file": "/nonexistent/imap.secret"}, "channels.email.password_file"),
        ({"smtp_password_file": "/nonexistent/smtp"}, "channels.email.smtp_password_file"),
        ({"ack_file": "/nonexistent/ack.toml"}, "/nonexistent/ack.toml"),
        ({"smtp_url": "http://mail"}, "channels.email.smtp_url"),
    ],
)
def test_given_bad_settings_then_the_start_stops_naming_the_field(
    table: dict[str, Any], tmp_path: Path, change: dict[str, str], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        EmailChannel.from_settings("tongdai.toml", {**table, **change}, tmp_path)
    assert field in str(caught.value)


async def test_given_channels_email_then_messaging_has_its_sender_ack_and_reader(
    table: dict[str, Any], tmp_path: Path
) -> None:
    base = Settings(
        database=DatabaseSettings(state_dir=str(tmp_path / "state")),
        channels=ChannelsSettings(attachments_dir=str(tmp_path / "files")),
    )
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        without = build_messaging(base, engine)
        assert Channel.EMAIL not in without.outbox.senders and without.tasks == []
        with_email = Settings(
            database=base.database,
            channels=ChannelsSettings(
                attachments_dir=base.channels.attachments_dir, tables={"email": table}
            ),
        )
        m = build_messaging(with_email, engine)
        assert isinstance(m.outbox.senders[Channel.EMAIL], EmailSender)
        assert Channel.EMAIL in m.inbox.acknowledgement
        assert len(m.tasks) == 1
        text = m.inbox.acknowledgement[Channel.EMAIL](ticket())
        assert text is not None and "1022-20261207-000001" in text
    finally:
        await engine.dispose()
