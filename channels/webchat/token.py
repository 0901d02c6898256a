"""Visitor tokens: ``<visitor id>.<HMAC-SHA256(key, visitor id), 32 hex>``.

The visitor id is 16 random URL-safe characters (96 bits) made by the server; the browser
keeps the token (localStorage) and shows it on every connection. Without the key nobody can
make a token for a visitor id they saw (agents see visitor ids; citizens never see others'),
and an altered token is refused. The key lives in a secret file (``secret_file``) or, when
none is configured, in ``<state>/webchat_secret`` (made once, mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from channels.webhooks import read_secret, write_secret

_TOKEN_RE = re.compile(r"^([A-Za-z0-9_-]{16})\.([0-9a-f]{32})$")


class VisitorTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the visitor token key must have at least 16 bytes")
        self._key = key

    def _mac(self, visitor: str) -> str:
        return hmac.new(self._key, visitor.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def new(self) -> tuple[str, str]:
        """A new visitor: (visitor id, token)."""
        visitor = secrets.token_urlsafe(12)
        return visitor, f"{visitor}.{self._mac(visitor)}"

    def token_of(self, visitor: str) -> str:
        return f"{visitor}.{self._mac(visitor)}"

    def visitor(self, token: object) -> str | None:
        """The visitor id a genuine token names; None for anything else."""
        if not isinstance(token, str) or len(token) > 64:
            return None
        m = _TOKEN_RE.match(token)
        if m is None or not hmac.compare_digest(m.group(2), self._mac(m.group(1))):
            return None
        return m.group(1)


def load_key(secret_file: str, state_dir: Path) -> bytes:
    """The configured key, or the one kept in the state folder (made on first use)."""
    if secret_file:
        return read_secret(secret_file).encode("utf-8")
    path = state_dir / "webchat_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_secret(path, secrets.token_hex(32))
        os.chmod(path, 0o600)
    return read_secret(path).encode("utf-8")
