"""Raw RFC 5322 bytes -> one ``InboundMessage`` (pure: no I/O, no clock).

``parse_mail`` never raises: a mail it cannot read still becomes a message whose text says
so, with the raw bytes attached (``thu-goc.eml``), so nothing the citizen sent is lost.

What it reads:

- ``external_id``: the Message-ID without brackets; a mail without one gets a stable id made
  from a hash of its bytes (the same mail delivered twice gets the same id);
- ``sender``: the From address lower-cased (``headers.sender_of``), ``sender_name`` decoded;
- ``subject``: RFC 2047 decoded; ``ticket_code``: a ``[1022-YYYYMMDD-NNNNNN]`` in it;
- ``text``: the inline text/plain parts (joined); from the HTML when only HTML came;
  ``html``: the first inline text/html part, raw (pages show it through
  ``sanitize.safe_html``);
- ``attachments``: every other leaf part (files, inline images, forwarded mails, delivery
  reports) with its decoded file name, content type and bytes;
- ``in_reply_to``: References + In-Reply-To ids, newest last;
- ``automated``: auto-replies, bounces, list mail (``automated.automated_reason``).

A mail with MIME defects (a header line without a colon, a boundary never closed, ...) is
read as far as it goes and its raw bytes are attached too, so whatever the parser had to
skip stays available.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import PurePosixPath, PureWindowsPath

from channels.email.automated import automated_reason
from channels.email.charsets import decode_bytes, decode_header_value, known_charset
from channels.email.headers import (
    UNKNOWN_SENDER,
    header_text,
    message_ids,
    raw_header,
    sender_of,
    synthetic_id,
    thread_ids,
)
from channels.email.sanitize import html_to_text
from conversations.model import Identity, IdentityKind, InboundMessage, IncomingAttachment
from tickets.model import Channel

log = logging.getLogger(__name__)

TICKET_CODE_RE = re.compile(r"\[\s*(1022-[0-9]{8}-[0-9]{6,})\s*\]")
#: deeper MIME nesting than this is not descended into (the part is kept as a file)
MAX_DEPTH = 30
MAX_FILENAME = 180
RAW_FILENAME = "thu-goc.eml"
UNREADABLE_TEXT = "[Không đọc được thư này ({reason}). Thư gốc được đính kèm: {filename}]"
_TEXT_TYPES = ("text/plain", "text/html")
_UNSAFE_NAME_RE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


@dataclass
class _Body:
    texts: list[str] = field(default_factory=list)
    html: str | None = None
    attachments: list[IncomingAttachment] = field(default_factory=list)
    decodings: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def parse_mail(raw: bytes, received_at: datetime) -> InboundMessage:
    """The message a citizen sent in ``raw`` (see the module docstring). Never raises."""
    try:
        return _parse(raw, received_at)
    except Exception as exc:  # a mail is data: whatever breaks, keep it whole
        reason = f"{type(exc).__name__}: {exc}"[:200]
        log.warning("unreadable mail (%d bytes) kept as an attachment: %s", len(raw), reason)
        return unreadable_mail(raw, received_at, reason)


def unreadable_mail(raw: bytes, received_at: datetime, reason: str) -> InboundMessage:
    """A message standing for a mail that could not be parsed: its bytes attached."""
    found = re.search(rb"(?im)^message-id:[ \t]*<([!-;=?-~]{1,250})>", raw[:65536])
    external_id = found.group(1).decode("ascii") if found else synthetic_id(raw)
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=external_id,
        sender=Identity(IdentityKind.EMAIL, UNKNOWN_SENDER),
        received_at=received_at,
        text=UNREADABLE_TEXT.format(reason=reason, filename=RAW_FILENAME),
        attachments=(IncomingAttachment(RAW_FILENAME, "message/rfc822", raw),),
        # nobody can tell who wrote it: never acknowledged, an agent looks at it
        automated=True,
        meta={"unreadable": reason, "size": str(len(raw))},
    )


def _parse(raw: bytes, received_at: datetime) -> InboundMessage:
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    ids = message_ids(raw_header(msg, "Message-ID"))
    external_id = ids[0] if ids else synthetic_id(raw)
    address, name = sender_of(msg)
    subject = header_text(msg, "Subject")
    body = _Body()
    _walk(msg, body, depth=0)
    text = "\n\n".join(t for t in body.texts if t.strip())
    if not text and body.html:
        text = html_to_text(body.html)
    code = TICKET_CODE_RE.search(subject or "")
    reason = automated_reason(msg, address)
    meta: dict[str, str] = {"message_id": external_id, "size": str(len(raw))}
    if not ids:
        meta["message_id_synthesised"] = "yes"
    for key, header in (("to", "To"), ("cc", "Cc"), ("date", "Date"), ("reply_to", "Reply-To")):
        value = header_text(msg, header)
        if value:
            meta[key] = value[:1000]
    if reason:
        meta["automated"] = reason
    if body.decodings:
        meta["charset_fallback"] = ", ".join(sorted(set(body.decodings)))[:200]
    if body.defects:
        # the parser had to guess: keep the mail as it came, so nothing it skipped is lost
        meta["mime_defects"] = ", ".join(sorted(set(body.defects)))[:200]
        body.attachments.append(IncomingAttachment(RAW_FILENAME, "message/rfc822", raw))
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=external_id,
        sender=Identity(IdentityKind.EMAIL, address),
        received_at=received_at,
        sender_name=name,
        text=text,
        html=body.html,
        attachments=tuple(body.attachments),
        subject=subject,
        in_reply_to=thread_ids(msg),
        ticket_code=code.group(1) if code else None,
        automated=reason is not None,
        meta=meta,
    )


def _walk(part: Message, body: _Body, depth: int) -> None:
    body.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
    ctype = part.get_content_type()
    if part.is_multipart() and ctype.startswith("multipart/") and depth < MAX_DEPTH:
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    _walk(child, body, depth + 1)
        return
    filename = _filename(part)
    disposition = (raw_header(part, "Content-Disposition") or "").split(";")[0].strip().lower()
    if ctype in _TEXT_TYPES and filename is None and disposition != "attachment":
        data = _payload_bytes(part)
        declared = part.get_content_charset()
        text, how = decode_bytes(data, declared)
        if how != (known_charset(declared) or "ascii"):
            body.decodings.append(f"{declared or 'none'} -> {how}")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if ctype == "text/plain":
            body.texts.append(text)
            return
        if body.html is None:
            body.html = text
            return
    body.attachments.append(
        IncomingAttachment(
            filename=filename or _default_name(ctype, len(body.attachments) + 1),
            content_type=ctype,
            data=_payload_bytes(part),
        )
    )


def _payload_bytes(part: Message) -> bytes:
    """The decoded bytes of a leaf part (an attached mail: the mail as bytes)."""
    if part.is_multipart():
        return part.as_bytes()
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _filename(part: Message) -> str | None:
    raw = part.get_filename()
    if raw is None:
        return None
    name = decode_header_value(str(raw))
    # a name is a name, never a path: keep the last component, drop control characters
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = _UNSAFE_NAME_RE.sub("_", name).strip(" .")
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        name = (
            (stem[: MAX_FILENAME - len(ext) - 1] + dot + ext)
            if dot and len(ext) < 10
            else name[:MAX_FILENAME]
        )
    return name or None


def _default_name(ctype: str, n: int) -> str:
    if ctype == "message/rfc822":
        return f"thu-dinh-kem-{n}.eml"
    ext = mimetypes.guess_extension(ctype) or ".bin"
    return f"tep-{n}{ext}"
