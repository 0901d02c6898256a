"""Zalo OA webhook events -> ``InboundMessage``: pure functions, no I/O, never raise.

One webhook request carries one event (a JSON object). The shapes, from Zalo's webhook
documentation (developers.zalo.me, Official Account API, "Webhook", event list) and as
Chatwoot reads them (``app/services/zalo/incoming_message_service.rb``,
``app/services/zalo/messages/*_service.rb``)::

    {"app_id": "...", "event_name": "user_send_text", "timestamp": "1733456789123",
     "sender": {"id": "<user id>"}, "recipient": {"id": "<oa id>"}, "user_id_by_app": "...",
     "message": {"msg_id": "...", "text": "...", "attachments": [
       {"type": "image", "payload": {"url": "...", "thumbnail": "..."}},
       {"type": "file", "payload": {"url": "...", "name": "a.pdf", "size": "1234", "type": "pdf"}},
       {"type": "location",
        "payload": {"coordinates": {"latitude": "15.57", "longitude": "108.47"}}},
       {"type": "sticker", "payload": {"id": "...", "url": "..."}}]}}
    {"app_id": "...", "event_name": "follow", "timestamp": "...", "oa_id": "...",
     "follower": {"id": "<user id>"}, "user_id_by_app": "...", "source": "..."}

``zalo_event_id`` is what the webhook route journals the event under (``message.msg_id``; for
follow/unfollow ``event:user:timestamp``; a hash of the body when a message has no id), or
None for what we do not keep: our own sends echoed back (``oa_send_*``), delivery and seen
receipts, and event names we do not know (a logged skip). ``parse_zalo`` gives the same id.
Besides the seven events of the issue we keep ``user_send_gif/audio/video/link`` as messages
with a link: dropping a citizen's voice message would lose it.
"""

from __future__ import annotations

import logging
import math
import mimetypes
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from channels.webhooks import as_text, clean, load_json, ms_time, stable_id
from conversations.model import (
    Identity,
    IdentityKind,
    InboundKind,
    InboundMessage,
    IncomingAttachment,
)
from tickets.model import Channel

log = logging.getLogger(__name__)

MESSAGE_EVENTS = frozenset(
    {
        "user_send_text",
        "user_send_image",
        "user_send_file",
        "user_send_location",
        "user_send_sticker",
        "user_send_gif",
        "user_send_audio",
        "user_send_video",
        "user_send_link",
    }
)
FOLLOW_EVENTS = {"follow": InboundKind.FOLLOW, "unfollow": InboundKind.UNFOLLOW}
#: receipts and our own sends: expected, dropped without a word
QUIET_EVENTS = frozenset({"user_received_message", "user_seen_message"})

_DEFAULT_TYPES = {
    "image": "image/jpeg",
    "gif": "image/gif",
    "sticker": "image/png",
    "audio": "audio/aac",
    "video": "video/mp4",
}


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _user(doc: Mapping[str, Any], event: str) -> str | None:
    if event in FOLLOW_EVENTS:
        return as_text(_obj(doc.get("follower")).get("id")) or as_text(
            _obj(doc.get("sender")).get("id")
        )
    return as_text(_obj(doc.get("sender")).get("id"))


def zalo_event_id(doc: Mapping[str, Any], raw: bytes) -> str | None:
    """The journal id of this event, or None when it is not one we keep (see the module)."""
    event = doc.get("event_name")
    if not isinstance(event, str):
        log.info("zalo: skipped an event without event_name")
        return None
    if event.startswith("oa_send_") or event in QUIET_EVENTS:
        return None
    if event in FOLLOW_EVENTS:
        user = _user(doc, event)
        ts = as_text(doc.get("timestamp"))
        if user is None or ts is None:
            log.info("zalo: skipped a %s event without follower or timestamp", event)
            return None
        return f"{event}:{user}:{ts}"
    if event in MESSAGE_EVENTS:
        msg_id = as_text(_obj(doc.get("message")).get("msg_id"))
        return msg_id or stable_id("zalo", raw.hex())
    log.info("zalo: skipped unknown event %r", event[:60])
    return None


def _attachment(item: object, index: int) -> IncomingAttachment | None:
    att = _obj(item)
    kind = att.get("type")
    payload = _obj(att.get("payload"))
    url = as_text(payload.get("url")) or as_text(payload.get("thumbnail"))
    if not isinstance(kind, str) or kind in ("location", "link") or url is None:
        return None
    filename = as_text(payload.get("name")) or f"zalo-{clean(kind)[:20]}-{index + 1}"
    guessed = mimetypes.guess_type(filename)[0]
    ext = payload.get("type")
    if guessed is None and isinstance(ext, str):
        guessed = mimetypes.guess_type(f"x.{ext}")[0]
    content_type = guessed or _DEFAULT_TYPES.get(kind, "application/octet-stream")
    return IncomingAttachment(filename=filename, content_type=content_type, url=url)


def _is_link(item: object) -> bool:
    return _obj(item).get("type") == "link"


def _coordinate(value: object, bound: float) -> float | None:
    try:
        if isinstance(value, str) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            number = float(value)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and abs(number) <= bound else None


def _location(message: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
    for item in _list(message.get("attachments")):
        att = _obj(item)
        if att.get("type") != "location":
            continue
        coords = _obj(_obj(att.get("payload")).get("coordinates"))
        lat = _coordinate(coords.get("latitude"), 90.0)
        lon = _coordinate(coords.get("longitude"), 180.0)
        if lat is None or lon is None:
            return None
        text = f"{lat:g},{lon:g}"
        address = as_text(message.get("text"))
        if address and address.strip():
            text += f" ({address.strip()})"
        return text, {"latitude": f"{lat:g}", "longitude": f"{lon:g}"}
    return None


def _meta(doc: Mapping[str, Any], event: str) -> dict[str, str]:
    meta = {"event_name": event}
    for key, value in (
        ("app_id", doc.get("app_id")),
        ("oa_id", doc.get("oa_id") or _obj(doc.get("recipient")).get("id")),
        ("user_id_by_app", doc.get("user_id_by_app")),
    ):
        if (text := as_text(value)) is not None:
            meta[key] = text
    return meta


def _one(doc: Mapping[str, Any], raw: bytes, now: datetime | None) -> InboundMessage | None:
    external_id = zalo_event_id(doc, raw)
    if external_id is None:
        return None
    event = str(doc["event_name"])
    user = _user(doc, event)
    received_at = ms_time(doc.get("timestamp")) or now
    if user is None or received_at is None:
        log.info("zalo: skipped a %s event without sender or timestamp", event)
        return None
    meta = _meta(doc, event)
    sender = Identity(IdentityKind.ZALO, user)
    if event in FOLLOW_EVENTS:
        kind = FOLLOW_EVENTS[event]
        return InboundMessage(Channel.ZALO, external_id, sender, received_at, kind, meta=meta)
    message = _obj(doc.get("message"))
    raw_text = message.get("text")
    text = clean(raw_text) if isinstance(raw_text, str) else ""
    if event == "user_send_location":
        found = _location(message)
        if found is None:
            log.info("zalo: skipped a location %s without usable coordinates", external_id)
            return None
        meta.update(found[1])
        return InboundMessage(
            Channel.ZALO, external_id, sender, received_at, InboundKind.LOCATION, text=found[0],
            meta=meta,
        )  # fmt: skip
    items = _list(message.get("attachments"))
    attachments = tuple(a for i, x in enumerate(items) if (a := _attachment(x, i)) is not None)
    kind = InboundKind.STICKER if event == "user_send_sticker" else InboundKind.MESSAGE
    if kind is InboundKind.STICKER and items:
        sticker = as_text(_obj(_obj(items[0]).get("payload")).get("id"))
        if sticker is not None:
            meta["sticker_id"] = sticker
    links = [as_text(_obj(_obj(x).get("payload")).get("url")) for x in items if _is_link(x)]
    urls = [u for u in links if u]
    if urls:
        text = "\n".join([text, *urls]) if text else "\n".join(urls)
    if not text and not attachments and kind is InboundKind.MESSAGE:
        log.info("zalo: skipped an empty %s %s", event, external_id)
        return None
    quote = as_text(message.get("quote_msg_id"))
    return InboundMessage(
        Channel.ZALO, external_id, sender, received_at, kind, text=text, attachments=attachments,
        in_reply_to=(quote,) if quote else (), meta=meta,
    )  # fmt: skip


def parse_zalo(payload: bytes, *, now: datetime | None = None) -> list[InboundMessage]:
    """The citizen messages in one journaled Zalo webhook body (zero or one). ``now`` stands
    in for a missing timestamp (signed events always have one)."""
    doc = load_json(payload)
    if not isinstance(doc, Mapping):
        log.info("zalo: skipped a payload that is not a JSON object")
        return []
    found = _one(doc, payload, now)
    return [found] if found is not None else []
