"""The automatic acknowledgement: Vietnamese text the province edits (``ack_vi.toml``).

``load_template`` validates the file (errors name the file and the field, as every file the
province edits); ``acknowledgement`` fills it in for a citizen's first mail and returns the
``OutboundMessage`` the core sends with ``EmailSender.send(..., automatic=True)``. The core
decides whether to acknowledge at all: never for an ``automated`` mail (no mail loops), only
when the mail opened a new ticket.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from conversations.model import InboundMessage, OutboundMessage
from tickets.model import Channel
from tongdai.clock import VN_TZ
from tongdai.config_file import read_toml
from tongdai.errors import ConfigError

DEFAULT_TEMPLATE = Path(__file__).with_name("ack_vi.toml")
PLACEHOLDERS = frozenset({"code", "name", "subject", "received"})
DEFAULT_NAME = "ông/bà"
NO_SUBJECT = "(không có tiêu đề)"


@dataclass(frozen=True)
class AckTemplate:
    text: str
    source: str = "<memory>"

    def render(
        self, *, code: str, name: str | None, subject: str | None, received: datetime
    ) -> str:
        return self.text.format(
            code=code,
            name=name or DEFAULT_NAME,
            subject=subject or NO_SUBJECT,
            received=received.astimezone(VN_TZ).strftime("%H:%M ngày %d/%m/%Y"),
        )


def check_text(source: str, field: str, text: object) -> str:
    if not isinstance(text, str):
        raise ConfigError(source, field, f"must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ConfigError(source, field, "text is empty")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        problem = f"bad placeholder: {exc} (write {{{{ or }}}}}} for a brace)"
        raise ConfigError(source, field, problem) from None
    for name in sorted(names):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ConfigError(source, field, f"unknown placeholder {{{name}}} (known: {known})")
    if "code" not in names:
        raise ConfigError(source, field, "must contain {code}: the citizen needs the ticket code")
    return text.strip() + "\n"


def load_template(path: str | Path = DEFAULT_TEMPLATE) -> AckTemplate:
    source = str(Path(path))
    raw = read_toml(path)
    for key in raw:
        if key != "acknowledgement":
            raise ConfigError(source, key, "unknown key (the file holds [acknowledgement])")
    table = raw.get("acknowledgement")
    if not isinstance(table, dict):
        raise ConfigError(source, "acknowledgement", "missing [acknowledgement] table")
    for key in table:
        if key != "text":
            raise ConfigError(source, f"acknowledgement.{key}", "unknown setting (known: text)")
    if "text" not in table:
        raise ConfigError(source, "acknowledgement.text", "missing")
    return AckTemplate(check_text(source, "acknowledgement.text", table["text"]), source)


def acknowledgement(
    inbound: InboundMessage, *, code: str, message_id: str, template: AckTemplate
) -> OutboundMessage:
    """The first reply to ``inbound`` (which opened ticket ``code``), threaded under it."""
    if inbound.channel is not Channel.EMAIL:
        raise ValueError(f"an email acknowledgement for a {inbound.channel} message")
    return OutboundMessage(
        channel=Channel.EMAIL,
        ticket_code=code,
        recipient=inbound.sender,
        text=template.render(
            code=code,
            name=inbound.sender_name,
            subject=inbound.subject,
            received=inbound.received_at,
        ),
        subject=inbound.subject,
        thread=(*inbound.in_reply_to, inbound.external_id),
        message_id=message_id,
    )
