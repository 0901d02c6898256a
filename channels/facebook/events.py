"""Messenger webhook deliveries -> ``InboundMessage``: pure functions, no I/O, never raise.

One delivery may batch several events (Meta's Messenger Platform "Webhook Events" reference,
developers.facebook.com; Chatwoot reads the same fields in
``lib/integrations/facebook/message_parser.rb`` and ``app/jobs/webhooks/facebook_*_job.rb``)::

    {"object": "page", "entry": [{"id": "<page id>", "time": 1733456789123, "messaging": [
      {"sender": {"id": "<PSID>"}, "recipient": {"id": "<page id>"}, "timestamp": 1733456789000,
       "message": {"mid": "m_...", "text": "...", "is_echo": false,
                   "reply_to": {"mid": "m_..."}, "quick_reply": {"payload": "..."},
                   "attachments": [
                     {"type": "image|file|audio|video", "payload": {"url": "..."}},
                     {"type": "location", "payload": {"coordinates": {"lat": 15.5, "long": 108.4}}},
                     {"type": "fallback", "payload": {"url": "...", "title": "..."}}]}},
      {"sender": ..., "postback": {"mid": "m_...", "title": "Gặp tổng đài viên",
                                   "payload": "AGENT"}},
      {"sender": ..., "delivery": {...}}, {"sender": ..., "read": {...}}]}]}

``split_facebook`` keeps citizen messages and postbacks, each as its own journal entry
(``FbEvent``: the id and a one-event delivery of the same shape); echoes of our own sends
(``is_echo``), delivery and read receipts and other kinds are skipped. The id is
``message.mid`` (``postback.mid`` when present), else a hash of the event. ``parse_facebook``
reads a journal entry (or any delivery) back into messages with the same ids.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

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

MEDIA_DEFAULT_TYPES = {
    "image": "image/jpeg",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "file": "application/octet-stream",
}


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class FbEvent:
    external_id: str
    page_id: str
    event: Mapping[str, Any]  # one ``entry[].messaging[]`` item

    def payload(self) -> bytes:
        """The journal entry: a delivery holding only this event."""
        doc = {"object": "page", "entry": [{"id": self.page_id, "messaging": [self.event]}]}
        return json.dumps(doc, separators=(",", ":")).encode()


def _event_id(event: Mapping[str, Any]) -> str | None:
    """The id to keep a citizen event under, or None when it is not one we keep."""
    message = event.get("message")
    if isinstance(message, Mapping):
        if message.get("is_echo") is True:
            return None
        mid = as_text(message.get("mid"))
    elif isinstance(event.get("postback"), Mapping):
        mid = as_text(event["postback"].get("mid"))
    else:
        return None  # delivery, read, reaction, optin, referral...: not a citizen message
    if mid:
        return mid
    try:
        canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return None
    return stable_id("facebook", canonical)


def split_facebook(doc: object) -> tuple[list[FbEvent], int]:
    """The citizen events of one delivery, and how many other events were skipped."""
    root = _obj(doc)
    if root.get("object") != "page":
        log.info("facebook: skipped a delivery for object %r", str(root.get("object"))[:40])
        return [], 0
    kept: list[FbEvent] = []
    skipped = 0
    for entry in _list(root.get("entry")):
        page_id = as_text(_obj(entry).get("id")) or ""
        for event in _list(_obj(entry).get("messaging")):
            found = _event_id(event) if isinstance(event, Mapping) else None
            if found is None:
                skipped += 1
            else:
                kept.append(FbEvent(found, page_id, event))
    return kept, skipped


def _guess_type(kind: str, url: str) -> tuple[str, str]:
    path = urlsplit(url).path if url.isascii() else ""
    name = path.rsplit("/", 1)[-1] or f"facebook-{kind}"
    guessed = mimetypes.guess_type(name)[0]
    return name[:200], guessed or MEDIA_DEFAULT_TYPES.get(kind, "application/octet-stream")


def _coordinate(value: object, bound: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and abs(number) <= bound else None


def _message(event: Mapping[str, Any], base: dict[str, Any]) -> InboundMessage | None:
    message = _obj(event.get("message"))
    raw_text = message.get("text")
    text = clean(raw_text) if isinstance(raw_text, str) else ""
    kind = InboundKind.MESSAGE
    attachments: list[IncomingAttachment] = []
    lines: list[str] = []
    meta: dict[str, str] = base.pop("meta")
    for att in map(_obj, _list(message.get("attachments"))):
        raw_type = att.get("type")  # any JSON value: only a string names a type
        att_type, payload = (
            raw_type if isinstance(raw_type, str) else None,
            _obj(att.get("payload")),
        )
        url = as_text(payload.get("url")) or as_text(att.get("url"))
        if att_type in MEDIA_DEFAULT_TYPES and url:
            filename, content_type = _guess_type(str(att_type), url)
            attachments.append(IncomingAttachment(filename, content_type, url=url))
        elif att_type == "location":
            coords = _obj(payload.get("coordinates"))
            lat, lon = _coordinate(coords.get("lat"), 90.0), _coordinate(coords.get("long"), 180.0)
            if lat is not None and lon is not None:
                kind = InboundKind.LOCATION
                lines.append(f"{lat:g},{lon:g}")
                meta.update(latitude=f"{lat:g}", longitude=f"{lon:g}")
        elif att_type == "fallback":
            title = as_text(payload.get("title")) or as_text(att.get("title"))
            link = " ".join(x for x in (title, url) if x)
            if link:
                lines.append(link)
    if as_text(message.get("sticker_id")) is not None:
        meta["sticker_id"] = str(as_text(message.get("sticker_id")))
        if not text:
            kind = InboundKind.STICKER
    quick = as_text(_obj(message.get("quick_reply")).get("payload"))
    if quick is not None:
        meta["quick_reply"] = quick
    full = "\n".join(x for x in (text, *lines) if x)
    if not full and not attachments:
        return None
    reply_to = as_text(_obj(message.get("reply_to")).get("mid"))
    return InboundMessage(
        **base,
        kind=kind,
        text=full,
        attachments=tuple(attachments),
        in_reply_to=(reply_to,) if reply_to else (),
        meta=meta,
    )


def _postback(event: Mapping[str, Any], base: dict[str, Any]) -> InboundMessage | None:
    postback = _obj(event.get("postback"))
    payload, title = as_text(postback.get("payload")), as_text(postback.get("title"))
    meta: dict[str, str] = base.pop("meta")
    if title is not None:
        meta["title"] = title
    text = payload or title
    if text is None:
        return None
    return InboundMessage(**base, kind=InboundKind.POSTBACK, text=text, meta=meta)


def parse_facebook(payload: bytes, *, now: datetime | None = None) -> list[InboundMessage]:
    """The citizen messages and postbacks in a journal entry (or a whole delivery), in order.
    ``now`` stands in for a missing timestamp (Meta always sends one)."""
    events, _ = split_facebook(load_json(payload))
    found: list[InboundMessage] = []
    for ev in events:
        sender = as_text(_obj(ev.event.get("sender")).get("id"))
        received_at = ms_time(ev.event.get("timestamp")) or now
        if sender is None or received_at is None:
            log.info("facebook: skipped event %s without sender or timestamp", ev.external_id)
            continue
        meta = {"page_id": ev.page_id} if ev.page_id else {}
        base: dict[str, Any] = {
            "channel": Channel.FACEBOOK,
            "external_id": ev.external_id,
            "sender": Identity(IdentityKind.FACEBOOK, sender),
            "received_at": received_at,
            "meta": meta,
        }
        is_message = isinstance(ev.event.get("message"), Mapping)
        made = _message(ev.event, base) if is_message else _postback(ev.event, base)
        if made is None:
            log.info("facebook: skipped empty event %s", ev.external_id)
        else:
            found.append(made)
    return found
