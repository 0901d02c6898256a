"""The web chat's journaled events: what a visitor sent, kept raw, parsed into a message.

A payload is the JSON the socket (or the HTTP fallback) journaled::

    {"visitor": "<visitor id>", "cid": "<the browser's id for this message>",
     "text": "...", "name": "..." | null, "reach": "phone or email" | null, "at": "<ISO>"}

The journal's key is ``<visitor>:<cid>``: a browser that sends a message again after a
reconnect (same cid) is stored once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from conversations.model import Identity, IdentityKind, InboundMessage
from tickets.model import Channel


def event_id(visitor: str, cid: str) -> str:
    return f"{visitor}:{cid}"


def event_payload(
    visitor: str, cid: str, text: str, at: datetime, *, name: str | None, reach: str | None
) -> bytes:
    doc = {
        "visitor": visitor,
        "cid": cid,
        "text": text,
        "name": name,
        "reach": reach,
        "at": at.astimezone(UTC).isoformat(),
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def parse_webchat(payload: bytes) -> Sequence[InboundMessage]:
    """The journaled payload as one inbound message (ValueError when it is not one of ours)."""
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError("webchat event: not a JSON object")
    visitor, cid, text = doc.get("visitor"), doc.get("cid"), doc.get("text")
    if not (isinstance(visitor, str) and isinstance(cid, str) and isinstance(text, str)):
        raise ValueError("webchat event: visitor, cid and text are required")
    at = datetime.fromisoformat(str(doc.get("at")))
    name, reach = doc.get("name"), doc.get("reach")
    meta = {"cid": cid}
    if isinstance(reach, str) and reach:
        meta["reach"] = reach
    return [
        InboundMessage(
            channel=Channel.WEBCHAT,
            external_id=event_id(visitor, cid),
            sender=Identity(IdentityKind.WEBCHAT, visitor),
            received_at=at if at.tzinfo else at.replace(tzinfo=UTC),
            sender_name=name if isinstance(name, str) and name else None,
            text=text,
            meta=meta,
        )
    ]
