"""Header helpers for the parser: raw values, message ids, the sender's address.

Values are read raw (``Message.raw_items``) and decoded by ``charsets``, so a header with
8-bit bytes or a broken encoded word never raises. Message ids are kept without their angle
brackets (``abc@host``): that is the ``external_id`` of an email message, and what
``in_reply_to`` holds; ``compose`` puts the brackets back.
"""

from __future__ import annotations

import hashlib
import re
from email.message import Message
from email.utils import getaddresses

from channels.email.charsets import decode_header_value

#: the domain of ids we make up (a mail without Message-ID, an id too long to keep)
SYNTH_DOMAIN = "tongdai.invalid"
#: the sender of a mail without a usable From (RFC 2606 reserves ``.invalid``)
UNKNOWN_SENDER = "unknown@invalid"
MAX_ID_LENGTH = 250
_ID_RE = re.compile(r"<([^<>\s]+)>")
_BARE_ID_RE = re.compile(r"^[^<>\s]+@[^<>\s]+$")
_ADDRESS_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+$")


def raw_header(msg: Message, name: str) -> str | None:
    """The first ``name`` header as sent (folded, encoded words intact), or None."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def header_text(msg: Message, name: str) -> str | None:
    """The first ``name`` header decoded for people, or None when absent."""
    raw = raw_header(msg, name)
    return None if raw is None else decode_header_value(raw)


def synthetic_id(data: bytes, kind: str = "sha256") -> str:
    """A stable id made from bytes: the same mail always gets the same id."""
    return f"{kind}-{hashlib.sha256(data).hexdigest()[:40]}@{SYNTH_DOMAIN}"


def _clean_id(candidate: str) -> str | None:
    candidate = candidate.strip()
    if not candidate or not candidate.isprintable():
        return None
    if len(candidate) > MAX_ID_LENGTH:
        return synthetic_id(candidate.encode("utf-8", "surrogateescape"), "long")
    if not candidate.isascii():
        return synthetic_id(candidate.encode("utf-8", "surrogateescape"), "8bit")
    return candidate


def message_ids(value: str | None) -> list[str]:
    """The ids in a Message-ID / In-Reply-To / References value, in order, without brackets."""
    if not value:
        return []
    found = _ID_RE.findall(value)
    if not found and _BARE_ID_RE.match(value.strip()):
        found = [value.strip()]
    ids: list[str] = []
    for raw in found:
        cleaned = _clean_id(raw)
        if cleaned is not None and cleaned not in ids:
            ids.append(cleaned)
    return ids


def thread_ids(msg: Message) -> tuple[str, ...]:
    """``References`` then ``In-Reply-To`` (the parent), each id once, newest last."""
    ids = message_ids(raw_header(msg, "References"))
    for parent in message_ids(raw_header(msg, "In-Reply-To")):
        if parent in ids:
            ids.remove(parent)
        ids.append(parent)
    return tuple(ids)


def sender_of(msg: Message) -> tuple[str, str | None]:
    """``(address, display name)`` of the author: From, else Sender, else Return-Path.

    The address is lower-cased; ``UNKNOWN_SENDER`` when no header holds a usable one."""
    for name in ("From", "Sender", "Return-Path"):
        raw = raw_header(msg, name)
        if raw is None:
            continue
        try:
            pairs = getaddresses([raw.replace("\r", " ").replace("\n", " ")])
        except (ValueError, IndexError, TypeError):
            continue
        for display, address in pairs:
            address = decode_header_value(address).strip().lower()
            if _ADDRESS_RE.match(address):
                shown = decode_header_value(display).strip().strip('"').strip() if display else ""
                return address, shown or None
    return UNKNOWN_SENDER, None
