"""Is this webhook from Zalo, for our app, and fresh?

Zalo signs each OA webhook with the header ``X-ZEvent-Signature: mac=<hex>``, where ``<hex>``
is the SHA-256 (a plain digest, not an HMAC) of ``app_id + raw body + timestamp +
OA secret key``, ``app_id`` and ``timestamp`` (milliseconds, a string in Zalo's samples) taken
from the JSON body itself. Source: Zalo's webhook documentation
(developers.zalo.me, Official Account API, "Webhook" / "Xác thực webhook"), and the same check
in Chatwoot (``app/jobs/webhooks/zalo_events_job.rb``, ``validate_signature``).

The signature says nothing about age, so a captured request could be replayed: we also refuse
a ``timestamp`` further than ``window_s`` from now, in the past or the future (a legitimate
redelivery later than that is refused too; the journal would have kept the first one).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from channels.webhooks import as_text


class Refusal(StrEnum):
    """Why a Zalo webhook was refused (logged; the platform only sees 401)."""

    NO_SIGNATURE = "no signature"
    UNKNOWN_APP = "unknown app_id"
    BAD_TIMESTAMP = "no usable timestamp"
    WRONG_SIGNATURE = "wrong signature"
    STALE = "timestamp too old"
    FUTURE = "timestamp in the future"


def zalo_mac(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The hex digest Zalo puts after ``mac=``."""
    h = hashlib.sha256()
    h.update(app_id.encode())
    h.update(body)
    h.update(timestamp.encode())
    h.update(oa_secret_key.encode())
    return h.hexdigest()


def check_zalo(
    header: str | None,
    body: bytes,
    doc: Mapping[str, Any],
    *,
    app_id: str,
    oa_secret_key: str,
    now_ms: int,
    window_s: float,
) -> Refusal | None:
    """None when the request is Zalo's, for ``app_id``, and within the window; else why not.
    ``doc`` is ``body`` parsed."""
    sent = (header or "").strip()
    if not sent.lower().startswith("mac="):
        return Refusal.NO_SIGNATURE
    sent_app = as_text(doc.get("app_id"))
    if sent_app is None or not secrets.compare_digest(sent_app.encode(), app_id.encode()):
        return Refusal.UNKNOWN_APP
    ts = as_text(doc.get("timestamp"))
    if ts is None or not (ts.isascii() and ts.isdigit()) or len(ts) > 15:
        return Refusal.BAD_TIMESTAMP
    expected = zalo_mac(sent_app, body, ts, oa_secret_key)
    if not secrets.compare_digest(sent[4:].lower().encode(), expected.encode()):
        return Refusal.WRONG_SIGNATURE
    age_ms = now_ms - int(ts)
    if age_ms > window_s * 1000:
        return Refusal.STALE
    if -age_ms > window_s * 1000:
        return Refusal.FUTURE
    return None
