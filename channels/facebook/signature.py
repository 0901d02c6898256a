"""Is this request Meta's? The subscription check (GET) and the body signature (POST).

Source: Meta's Messenger Platform / Webhooks documentation (developers.facebook.com,
"Webhooks: Getting Started", "Validating Payloads"): the GET carries ``hub.mode=subscribe``,
``hub.verify_token`` (ours, set in the app dashboard) and ``hub.challenge`` to echo back;
every POST carries ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed with
the app secret>``. Compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

#: a challenge longer than this is not Meta's (theirs are short numbers)
MAX_CHALLENGE = 256


def hub_signature(app_secret: str, body: bytes) -> str:
    """The header value Meta would send for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(header: str | None, body: bytes, app_secret: str) -> bool:
    sent = (header or "").strip()
    if not sent.lower().startswith("sha256="):
        return False
    expected = hub_signature(app_secret, body)
    return secrets.compare_digest(("sha256=" + sent[7:].lower()).encode(), expected.encode())


def challenge_answer(query: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo when the subscription check is ours, else None (403)."""
    if query.get("hub.mode") != "subscribe":
        return None
    token = query.get("hub.verify_token", "")
    if not token or not secrets.compare_digest(token.encode(), verify_token.encode()):
        return None
    challenge = query.get("hub.challenge", "")
    if not challenge or len(challenge) > MAX_CHALLENGE:
        return None
    return challenge
