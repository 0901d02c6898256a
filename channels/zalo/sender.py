"""Replies to Zalo users through the OA customer-service ("tư vấn") message API v3.

    POST {api_base}/v3.0/oa/message/cs            header access_token: <OA access token>
    {"recipient": {"user_id": "..."}, "message": {"text": "..."}}
    {"recipient": ..., "message": {"attachment": {"type": "template", "payload":
        {"template_type": "media", "elements": [{"media_type": "image",
                                                 "attachment_id" | "url": "..."}]}}}}
    -> HTTP 200 {"error": 0, "message": "Success", "data": {"message_id": "...", ...}}
    -> HTTP 200 {"error": -216, "message": "Access token is invalid"} (and other codes)

Source: Zalo's Official Account API documentation ("Gửi tin Tư vấn", "Upload hình ảnh") and
Chatwoot's client (``app/models/channel/zalo_oa.rb``: ``message_body``, ``image_body``,
``upload_file_to_zalo_api``; ``app/services/zalo/send_on_zalo_service.rb``: refresh on -216
and send again).

Images: a JPEG or PNG file of at most 1 MB (Zalo's upload limit) is uploaded
(``POST {api_base}/v2.0/oa/upload/image``, multipart ``file``) and sent by ``attachment_id``;
any other image is sent by its public ``url`` when it has one, else the reply is refused up
front. Text is cut at 2000 characters (Zalo's limit) into several messages.

Answers: ``error`` 0 is SENT; an expired/invalid token (-216, -124) renews the token
(``channels.zalo.tokens``) and sends once more; HTTP 429/5xx, a network failure or Zalo's
rate limit (-32) is RETRY; the user out of the 7-day window (-213, -230) is FAILED with the
window message; anything else FAILED with Zalo's own message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from channels.outbound import (
    ImagePart,
    Part,
    Progress,
    TextPart,
    one_line,
    plan_parts,
    retry_after,
    window_closed_message,
)
from channels.webhooks import as_text, load_json
from channels.zalo.settings import ZaloSettings
from channels.zalo.tokens import RefreshFailed, ZaloTokens
from conversations.model import IdentityKind, OutboundMessage, SendResult, SendStatus
from tickets.model import Channel
from tongdai.errors import ConfigError

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000
UPLOAD_MAX_BYTES = 1 << 20
UPLOADABLE = frozenset({"image/jpeg", "image/png"})
EXPIRED_TOKEN = frozenset({-216, -124})
RATE_LIMITED = frozenset({-32})
OUT_OF_WINDOW = frozenset({-213, -230})


def _result(status: SendStatus, error: str, wait: float | None = None) -> SendResult:
    return SendResult(status, error=error, retry_after_s=wait)


class ZaloSender:
    """``ChannelSender`` for Zalo. Give it a shared ``httpx.AsyncClient`` or let it own one
    (then ``aclose`` it)."""

    channel = Channel.ZALO

    def __init__(
        self,
        cfg: ZaloSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(cfg.http_timeout_s))
        self.tokens = ZaloTokens(cfg, self.client, clock=clock)
        self.progress = Progress()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.recipient.kind is not IdentityKind.ZALO:
            return _result(SendStatus.FAILED, f"not a Zalo user: {message.recipient.kind}")
        planned = self._plan(message)
        if isinstance(planned, str):
            return _result(SendStatus.FAILED, planned)
        user_id = message.recipient.value

        async def send_one(part: Part) -> SendResult:
            return await self._send_part(user_id, part)

        return await self.progress.send(message.message_id, planned, send_one)

    def _plan(self, message: OutboundMessage) -> list[Part] | str:
        planned = plan_parts(message, TEXT_LIMIT)
        if isinstance(planned, str):
            return planned
        for part in planned:
            if isinstance(part, ImagePart) and not (_uploadable(part) or part.image.url):
                return (
                    f"Zalo chỉ nhận ảnh JPG/PNG tối đa 1 MB hoặc ảnh có URL công khai "
                    f"({part.image.filename}) / Zalo takes JPG/PNG images up to 1 MB or images "
                    f"with a public URL ({part.image.filename})"
                )
        return planned

    async def _send_part(self, user_id: str, part: Part) -> SendResult:
        recipient = {"user_id": user_id}
        if isinstance(part, TextPart):
            body: dict[str, Any] = {"recipient": recipient, "message": {"text": part.text}}
        else:
            element: dict[str, str] = {"media_type": "image"}
            if _uploadable(part):
                uploaded = await self._upload(part)
                if isinstance(uploaded, SendResult):
                    return uploaded
                element["attachment_id"] = uploaded
            else:
                element["url"] = part.image.url or ""
            payload = {"template_type": "media", "elements": [element]}
            body = {
                "recipient": recipient,
                "message": {"attachment": {"type": "template", "payload": payload}},
            }
        answer = await self._call("/v3.0/oa/message/cs", json=body)
        if isinstance(answer, SendResult):
            return answer
        data = answer.get("data")
        msg_id = as_text(data.get("message_id")) if isinstance(data, dict) else None
        return SendResult(SendStatus.SENT, external_id=msg_id)

    async def _upload(self, part: ImagePart) -> str | SendResult:
        att = part.image
        try:
            content = await asyncio.to_thread(Path(att.path).read_bytes)
        except OSError as exc:
            return _result(SendStatus.FAILED, one_line(f"{att.filename}: {exc.strerror}"))
        files = {"file": (att.filename, content, att.content_type.lower())}
        answer = await self._call("/v2.0/oa/upload/image", files=files)
        if isinstance(answer, SendResult):
            return answer
        data = answer.get("data")
        found = as_text(data.get("attachment_id")) if isinstance(data, dict) else None
        if found is None:
            return _result(SendStatus.RETRY, "Zalo upload answered without an attachment_id")
        return found

    async def _call(self, path: str, **kwargs: Any) -> dict[str, Any] | SendResult:
        """POST to the OA API with the access token; renew it once if Zalo says it expired."""
        try:
            token = await self.tokens.access_token()
        except (OSError, ConfigError) as exc:  # token files gone, unreadable or empty
            return _result(SendStatus.FAILED, one_line(f"Zalo token files: {exc}"))
        url = f"{self.cfg.api_base}{path}"
        for attempt in range(2):
            try:
                resp = await self.client.post(
                    url, headers={"access_token": token}, timeout=self.cfg.http_timeout_s, **kwargs
                )
            except httpx.HTTPError as exc:
                return _result(SendStatus.RETRY, f"Zalo unreachable: {type(exc).__name__}")
            if resp.status_code == 429 or resp.status_code >= 500:
                wait = retry_after(resp.headers)
                return _result(SendStatus.RETRY, f"Zalo HTTP {resp.status_code}", wait)
            doc = load_json(resp.content)
            doc = doc if isinstance(doc, dict) else None
            if resp.status_code >= 400:
                said = f": {doc.get('message')}" if doc and doc.get("message") else ""
                return _result(SendStatus.FAILED, one_line(f"Zalo HTTP {resp.status_code}{said}"))
            if doc is None:
                return _result(SendStatus.RETRY, "Zalo answered something that is not JSON")
            code = _code(doc.get("error"))
            if code == 0:
                return doc
            if code in EXPIRED_TOKEN and attempt == 0:
                try:
                    token = await self.tokens.renew(token)
                except RefreshFailed as exc:
                    status = SendStatus.RETRY if exc.retry else SendStatus.FAILED
                    return _result(status, exc.reason, exc.retry_after_s)
                except (OSError, ConfigError) as exc:
                    return _result(SendStatus.FAILED, one_line(f"Zalo token files: {exc}"))
                continue
            return self._refused(code, doc.get("message"))
        return _result(SendStatus.FAILED, "Zalo refused the renewed access token")

    def _refused(self, code: object, message: object) -> SendResult:
        if code in RATE_LIMITED:
            return _result(SendStatus.RETRY, f"Zalo rate limit ({code})")
        if code in OUT_OF_WINDOW:
            return _result(
                SendStatus.FAILED, window_closed_message("Zalo", self.cfg.reply_window_h)
            )
        return _result(SendStatus.FAILED, one_line(f"Zalo: {message} (error {code})"))


def _code(value: object) -> int | None:
    text = as_text(value)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _uploadable(part: ImagePart) -> bool:
    att = part.image
    if att.content_type.lower() not in UPLOADABLE:
        return False
    try:
        return 0 < os.stat(att.path).st_size <= UPLOAD_MAX_BYTES
    except OSError:
        return False
