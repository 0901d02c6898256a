"""What the Zalo and Facebook senders share: turning an ``OutboundMessage`` into the parts a
platform carries, remembering how far a multi-part reply got, and reading platform answers.

``plan_parts`` splits a reply into text pieces (``split_text``, at the platform's length
limit) and one part per image; any other file is sent as a link in the text when it has a URL,
else the whole reply is refused up front (nothing half-sent). ``Progress`` remembers, per
``message_id``, how many parts went out, so a reply retried after a 429 in its third part does
not send the first two again.

``retry_after`` reads a 429/503's headers, ``one_line`` makes a reason for the agent (tokens
redacted). The reply window: Zalo and Facebook only let a page/OA answer a citizen for some
hours after the citizen's last message; the core calls ``window_open`` before sending and
shows ``window_closed_message`` when it is shut. ``hide_tokens_in_http_log`` keeps the Graph
API's ``access_token`` query parameter out of httpx's request log.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

from conversations.model import OutboundMessage, OutgoingAttachment, SendResult, SendStatus

_TOKEN_IN_URL = re.compile(r"((?:access_token|appsecret_proof)=)[^&\s\"']+")


def redact(text: str) -> str:
    """``text`` with any ``access_token=...`` query value replaced by ``***``."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


class _RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact(str(a)) if "access_token" in str(a) else a for a in record.args
            )
        return True


def hide_tokens_in_http_log() -> None:
    """httpx logs every request's full URL at INFO; the Graph API takes the page token in the
    query string. Redact it there (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactTokens) for f in logger.filters):
        logger.addFilter(_RedactTokens())


# -- outbound -----------------------------------------------------------------------------


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), clamped to
    [0, 3600]; None when absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return min(float(value), 3600.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(wait, 0.0), 3600.0)


def one_line(text: str, limit: int = 200) -> str:
    """A reason for the agent: one line, at most ``limit`` characters, tokens redacted."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after a newline or a space when
    one is in the second half of a piece; the pieces joined give ``text`` back."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n"), window.rfind(" ")) + 1
        if cut <= limit // 2:
            cut = limit
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces


class ReplyWindow(Protocol):
    @property
    def reply_window_h(self) -> float: ...


def window_open(last_inbound_at: datetime | None, now: datetime, cfg: ReplyWindow) -> bool:
    """May the OA/page still answer this citizen? Only within ``cfg.reply_window_h`` hours of
    the citizen's last message (never when they have not written; 0 hours: no limit). The core
    asks before sending and shows ``window_closed_message`` when not."""
    if last_inbound_at is None:
        return False
    if cfg.reply_window_h <= 0:
        return True
    return now - last_inbound_at <= timedelta(hours=cfg.reply_window_h)


def window_closed_message(platform: str, hours: float) -> str:
    """What the agent reads when a reply is refused for the platform's window."""
    h = f"{hours:g}"
    return (
        f"Đã quá {h} giờ kể từ tin nhắn cuối của người dân: {platform} không cho phép trả lời "
        f"nữa; hãy gọi điện hoặc chờ người dân nhắn lại. / More than {h} h since the citizen's "
        f"last message: {platform} no longer allows a reply; call them or wait for them to write."
    )


# -- planning a reply ---------------------------------------------------------------------


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    image: OutgoingAttachment


Part = TextPart | ImagePart


def is_image(att: OutgoingAttachment) -> bool:
    return att.content_type.lower().startswith("image/")


def plan_parts(message: OutboundMessage, text_limit: int) -> list[Part] | str:
    """The parts to send in order (text pieces, then images), or why the reply cannot go.
    Non-image files travel as ``name: url`` lines of the text."""
    links: list[str] = []
    images: list[Part] = []
    for att in message.attachments:
        if is_image(att):
            images.append(ImagePart(att))
        elif att.url:
            links.append(f"{att.filename}: {att.url}")
        else:
            return (
                f"Không gửi được tệp {att.filename} qua kênh này (chỉ văn bản, ảnh hoặc liên kết)"
                f" / {att.filename} cannot be sent on this channel (text, images or links only)"
            )
    text = "\n".join(x for x in [message.text.strip(), *links] if x)
    parts: list[Part] = [TextPart(p) for p in split_text(text, text_limit)]
    parts += images
    if not parts:
        return "Tin nhắn rỗng / the reply is empty"
    return parts


class Progress:
    """How many parts of each reply went out, and the platform id of its first (in memory,
    the ``max_entries`` most recent replies; a reply without ``message_id`` is not tracked)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[str, tuple[int, str | None]] = OrderedDict()

    async def send(
        self,
        message_id: str,
        parts: Sequence[Part],
        send_one: Callable[[Part], Awaitable[SendResult]],
    ) -> SendResult:
        """Send the parts not yet sent, in order; stop at the first that is not SENT (its
        result is the reply's). SENT carries the platform id of the reply's first part."""
        done, first_id = self._done.get(message_id, (0, None)) if message_id else (0, None)
        for index in range(done, len(parts)):
            result = await send_one(parts[index])
            if result.status is not SendStatus.SENT:
                self._remember(message_id, index, first_id)
                return result
            first_id = first_id or result.external_id
        self._done.pop(message_id, None)
        return SendResult(SendStatus.SENT, external_id=first_id)

    def _remember(self, message_id: str, sent: int, first_id: str | None) -> None:
        if not message_id or sent == 0:
            return
        self._done[message_id] = (sent, first_id)
        self._done.move_to_end(message_id)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)
