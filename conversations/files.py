"""Attachments on disk: a size limit and a content-type allow-list, names never trusted.

Files go to ``<root>/<yyyy>/<mm>/<random>-<safe name>``; the stored ``Attachment.path`` is
relative to ``root``. A file refused (too big, type not allowed) is not written: the message
keeps a line saying so, so the agent knows something was sent.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from conversations.model import IncomingAttachment
from tickets.messages import Attachment

DEFAULT_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/zip",
        "audio/mpeg",
        "audio/aac",
        "audio/wav",
        "video/mp4",
        "message/rfc822",
    }
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file name safe on any disk: ASCII letters, digits, ``._-``; never empty or hidden."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name.replace("/", "_").replace("\\", "_")).strip("._")
    return (cleaned or "file")[-100:]


@dataclass(frozen=True)
class Saved:
    attachments: tuple[Attachment, ...]
    #: lines for the message text about files refused
    refused: tuple[str, ...]


class AttachmentStore:
    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        allowed_types: frozenset[str] = DEFAULT_TYPES,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.allowed_types = allowed_types

    def path_of(self, a: Attachment) -> Path:
        """The file on disk (ValueError for a path that would leave the folder)."""
        p = (self.root / a.path).resolve()
        if not a.path or not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"attachment path {a.path!r} is outside the attachments folder")
        return p

    async def save(self, items: tuple[IncomingAttachment, ...], at: datetime) -> Saved:
        kept: list[Attachment] = []
        refused: list[str] = []
        for item in items:
            ctype = item.content_type.split(";")[0].strip().lower() or "application/octet-stream"
            if item.data is None:  # hosted by the platform: keep the link
                kept.append(Attachment(item.filename, ctype, 0, "", item.url))
                continue
            if len(item.data) > self.max_bytes:
                refused.append(
                    f"[Tệp {item.filename!r} bị từ chối: lớn hơn {self.max_bytes // 1024} KB]"
                )
                continue
            if ctype not in self.allowed_types:
                refused.append(f"[Tệp {item.filename!r} bị từ chối: loại {ctype} không được nhận]")
                continue
            rel = f"{at:%Y}/{at:%m}/{secrets.token_hex(8)}-{safe_name(item.filename)}"
            await asyncio.to_thread(self._write, rel, item.data)
            kept.append(Attachment(item.filename[:200], ctype, len(item.data), rel, item.url))
        return Saved(tuple(kept), tuple(refused))

    def _write(self, rel: str, data: bytes) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
