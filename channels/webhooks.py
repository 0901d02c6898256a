"""What the webhook channels (Zalo OA, Facebook Messenger) share.

Inbound, in the order a request meets them: ``read_body`` (the size limit is enforced while
reading: a body over it is refused before it is all read), ``load_json`` (never raises),
``keep_events`` (each verified event into the ``EventJournal``; a store failure or a stuck
store is 503 so the platform retries, never a 500). ``stable_id`` names an event that carries
no id of its own.

Secrets: ``check_secret_file`` (exists, a regular file, not world-readable), ``read_secret``,
``write_secret`` (temp file + rename in the same folder, mode 0600: a reader sees the old
secret or the new one, never half of one). What the senders share is in ``channels.outbound``.

Settings: ``channel_fields``, ``url_field``, ``secret_field`` on ``tongdai.config_file.Fields``
(errors name the file and the field).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from conversations.model import EventJournal
from tickets.model import Channel
from tongdai.config_file import Fields
from tongdai.errors import ConfigError, StoreError
from tongdai.settings import home_path

log = logging.getLogger(__name__)

#: how long one request may wait for the journal before the platform is told to retry (503)
JOURNAL_TIMEOUT_S = 10.0


# -- inbound ------------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` bytes: a declared
    Content-Length over the limit is refused unread, a streamed body as soon as the limit is
    passed (at most one chunk more is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def load_json(body: bytes) -> Any:
    """The parsed body, or None when it is not JSON (bad UTF-8, bad syntax, absurd nesting)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def answer(status: int, text: str) -> Response:
    return PlainTextResponse(text, status)


async def keep_events(
    journal: EventJournal, channel: Channel, events: Sequence[tuple[str, bytes]]
) -> Response:
    """Append each ``(external_id, payload)`` to the journal, then 200 (a redelivery too: it
    is a no-op). A ``StoreError`` or a journal slower than ``JOURNAL_TIMEOUT_S`` is 503: the
    platform retries the whole delivery, and what was already kept is de-duplicated."""
    fresh = 0
    try:
        async with asyncio.timeout(JOURNAL_TIMEOUT_S):
            for external_id, payload in events:
                if await journal.append(channel, external_id, payload):
                    fresh += 1
    except StoreError as exc:
        log.warning(
            "%s webhook: event not kept (%s): answered 503, the platform retries", channel, exc
        )
        return answer(503, "store unavailable, retry later")
    except TimeoutError:
        log.warning(
            "%s webhook: the journal took over %.0f s: answered 503", channel, JOURNAL_TIMEOUT_S
        )
        return answer(503, "store too slow, retry later")
    log.debug("%s webhook: %d event(s), %d new", channel, len(events), fresh)
    return answer(200, "ok")


def stable_id(*parts: str) -> str:
    """An id for an event the platform gave none: the same parts give the same id, so a
    redelivery is still recognised."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return "h:" + digest[:40]


def clean(text: str) -> str:
    """``text`` safe to store: lone surrogates (possible in JSON escapes, never in real
    messages) become U+FFFD; everything else is kept as sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def as_text(value: object) -> str | None:
    """A platform id or timestamp as text: strings as they are, integers in decimal; anything
    else (booleans, floats, objects, empty strings) is None."""
    if isinstance(value, str):
        return clean(value) or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def ms_time(value: object) -> datetime | None:
    """A platform timestamp in milliseconds since the epoch (number or digits), or None."""
    text = as_text(value)
    if text is None:
        return None
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 15:
        return None
    try:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


# -- secrets ------------------------------------------------------------------------------


def check_secret_file(path: Path, file: str, field: str) -> None:
    """``path`` exists, is a regular file and only its owner (and group) may read it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        problem = f"{path}: no such file (put the secret there, mode 600)"
        raise ConfigError(file, field, problem) from None
    except OSError as exc:
        raise ConfigError(file, field, f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(file, field, f"{path}: not a regular file")
    if st.st_mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError(file, field, f"{path}: every user may read it: chmod 600 {path}")


def read_secret(path: str | Path) -> str:
    """The secret in ``path`` (surrounding whitespace removed); a missing, world-readable or
    empty file is a ``ConfigError`` naming the file (never the secret)."""
    p = Path(path)
    check_secret_file(p, str(p), "-")
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "-", f"cannot read: {exc}") from None
    if not text:
        raise ConfigError(str(p), "-", "empty")
    return text


def write_secret(path: str | Path, text: str) -> None:
    """Replace the secret in ``path`` atomically: a temp file (mode 0600) in the same folder,
    flushed to disk, renamed over the old one, then the folder flushed."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)  # mkstemp: mode 0600
    done = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        done = True
    finally:
        if not done:
            Path(tmp).unlink(missing_ok=True)
    dir_fd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- settings -----------------------------------------------------------------------------


def channel_fields(file: str, name: str, raw: object, allowed: Iterable[str]) -> Fields:
    """The ``[channels.*]`` table ``name`` of ``file`` (``tongdai.config_file.Fields``)."""
    if not isinstance(raw, dict):
        raise ConfigError(file, name, "must be a table")
    return Fields(file, f"{name}.", raw, allowed)


def url_field(f: Fields, key: str, default: str) -> str:
    value = f.text(key, default).strip()
    if not value.startswith(("https://", "http://")):
        raise f.err(key, "must be an http:// or https:// URL")
    return value.rstrip("/")


def secret_field(f: Fields, key: str) -> str:
    """A path to a secret (relative: against the project home), checked now."""
    path = home_path(f.text(key))
    check_secret_file(path, f.file, f"{f.prefix}{key}")
    return str(path)
