"""Replies to Messenger users through the Send API.

    POST {graph_base}/{graph_version}/me/messages?access_token=<page token>
    {"recipient": {"id": "<PSID>"}, "messaging_type": "RESPONSE", "message": {"text": "..."}}
    {... "message": {"attachment": {"type": "image", "payload": {"url": "...",
                                                                 "is_reusable": false}}}}
    -> 200 {"recipient_id": "...", "message_id": "m_..."}
    -> 4xx/5xx {"error": {"message": "...", "code": 613, "error_subcode": ..., ...}}

Source: Meta's Messenger Platform documentation (developers.facebook.com, "Send API",
"Sending messages: attachments", "Error codes"). A text and an attachment cannot share one
message, so a reply is its text (cut at Messenger's 2000 characters), then one message per
image: by URL when the attachment has one, else the file itself as multipart ``filedata``
(at most 25 MB).

Answers: 200 with a ``message_id`` is SENT; HTTP 429/5xx, a network failure, Meta's rate
limits (codes 4, 17, 32, 613) or an error flagged ``is_transient`` (codes 1, 2) is RETRY; the
24-hour window (code 10 / subcode 2018278) is FAILED with the window message; an invalid page
token (190) or an unavailable user (551) FAILED with a reason an agent understands; any other
error FAILED with Meta's message. The page token travels in the query string as documented,
so it is redacted from httpx's request log (``channels.outbound.hide_tokens_in_http_log``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx

from channels.facebook.settings import FacebookSettings
from channels.outbound import (
    ImagePart,
    Part,
    Progress,
    TextPart,
    hide_tokens_in_http_log,
    one_line,
    plan_parts,
    retry_after,
    window_closed_message,
)
from channels.webhooks import as_text, load_json, read_secret
from conversations.model import IdentityKind, OutboundMessage, SendResult, SendStatus
from tickets.model import Channel
from tongdai.errors import ConfigError

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000
UPLOAD_MAX_BYTES = 25 << 20
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
TRANSIENT_CODES = frozenset({1, 2})
WINDOW_SUBCODES = frozenset({2018278})


def _result(status: SendStatus, error: str, wait: float | None = None) -> SendResult:
    return SendResult(status, error=error, retry_after_s=wait)


class FacebookSender:
    """``ChannelSender`` for Messenger. Give it a shared ``httpx.AsyncClient`` or let it own
    one (then ``aclose`` it). The page token file is re-read when it changes."""

    channel = Channel.FACEBOOK

    def __init__(self, cfg: FacebookSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.cfg = cfg
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(cfg.http_timeout_s))
        self.progress = Progress()
        self._token: tuple[tuple[int, int], str] | None = None
        hide_tokens_in_http_log()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    def _page_token(self) -> str:
        st = os.stat(self.cfg.page_token_file)
        stamp = (st.st_mtime_ns, st.st_size)
        if self._token is None or self._token[0] != stamp:
            self._token = (stamp, read_secret(self.cfg.page_token_file))
        return self._token[1]

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.recipient.kind is not IdentityKind.FACEBOOK:
            return _result(SendStatus.FAILED, f"not a Messenger user: {message.recipient.kind}")
        planned = self._plan(message)
        if isinstance(planned, str):
            return _result(SendStatus.FAILED, planned)
        try:
            token = self._page_token()
        except (OSError, ConfigError) as exc:
            return _result(SendStatus.FAILED, one_line(f"Facebook page token: {exc}"))
        psid = message.recipient.value

        async def send_one(part: Part) -> SendResult:
            return await self._send_part(token, psid, part)

        return await self.progress.send(message.message_id, planned, send_one)

    def _plan(self, message: OutboundMessage) -> list[Part] | str:
        planned = plan_parts(message, TEXT_LIMIT)
        if isinstance(planned, str):
            return planned
        for part in planned:
            if isinstance(part, ImagePart) and not part.image.url and not _uploadable(part):
                return (
                    f"Messenger nhận ảnh có URL hoặc tệp ảnh tối đa 25 MB "
                    f"({part.image.filename}) / Messenger takes images by URL or files up to "
                    f"25 MB ({part.image.filename})"
                )
        return planned

    async def _send_part(self, token: str, psid: str, part: Part) -> SendResult:
        recipient = {"id": psid}
        kwargs: dict[str, Any]
        if isinstance(part, TextPart):
            kwargs = {
                "json": {
                    "recipient": recipient,
                    "messaging_type": "RESPONSE",
                    "message": {"text": part.text},
                }
            }
        elif part.image.url:
            payload = {"url": part.image.url, "is_reusable": False}
            kwargs = {
                "json": {
                    "recipient": recipient,
                    "messaging_type": "RESPONSE",
                    "message": {"attachment": {"type": "image", "payload": payload}},
                }
            }
        else:
            try:
                content = await asyncio.to_thread(Path(part.image.path).read_bytes)
            except OSError as exc:
                return _result(SendStatus.FAILED, one_line(f"{part.image.filename}: {exc}"))
            attachment = {"type": "image", "payload": {"is_reusable": False}}
            kwargs = {
                "data": {
                    "recipient": json.dumps(recipient),
                    "messaging_type": "RESPONSE",
                    "message": json.dumps({"attachment": attachment}),
                },
                "files": {"filedata": (part.image.filename, content, part.image.content_type)},
            }
        return await self._post(token, kwargs)

    async def _post(self, token: str, kwargs: dict[str, Any]) -> SendResult:
        url = f"{self.cfg.graph_base}/{self.cfg.graph_version}/me/messages"
        try:
            resp = await self.client.post(
                url, params={"access_token": token}, timeout=self.cfg.http_timeout_s, **kwargs
            )
        except httpx.HTTPError as exc:
            return _result(SendStatus.RETRY, f"Facebook unreachable: {type(exc).__name__}")
        doc = load_json(resp.content)
        doc = doc if isinstance(doc, dict) else {}
        if resp.status_code == 200 and "error" not in doc:
            return SendResult(SendStatus.SENT, external_id=as_text(doc.get("message_id")))
        wait = retry_after(resp.headers)
        error = doc.get("error")
        return self._refused(resp.status_code, error if isinstance(error, dict) else {}, wait)

    def _refused(self, status: int, error: dict[str, Any], wait: float | None) -> SendResult:
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        said = one_line(f"Facebook: {error.get('message') or f'HTTP {status}'} (code {code})")
        if status == 429 or status >= 500 or code in RATE_LIMIT_CODES:
            return _result(SendStatus.RETRY, said, wait)
        if error.get("is_transient") is True or code in TRANSIENT_CODES:
            return _result(SendStatus.RETRY, said, wait)
        if subcode in WINDOW_SUBCODES:
            hours = self.cfg.reply_window_h
            return _result(SendStatus.FAILED, window_closed_message("Messenger", hours))
        if code == 190:
            return _result(
                SendStatus.FAILED,
                "Mã truy cập trang Facebook không hợp lệ hoặc đã hết hạn: quản trị viên cần cấp "
                "lại / the Facebook page token is invalid or expired: an administrator must "
                "renew page_token_file",
            )
        if code == 551:
            return _result(
                SendStatus.FAILED,
                "Người dùng này hiện không nhận được tin nhắn / this person is not available "
                "on Messenger right now",
            )
        return _result(SendStatus.FAILED, said)


def _int(value: object) -> int | None:
    text = as_text(value)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _uploadable(part: ImagePart) -> bool:
    try:
        return 0 < os.stat(part.image.path).st_size <= UPLOAD_MAX_BYTES
    except OSError:
        return False
