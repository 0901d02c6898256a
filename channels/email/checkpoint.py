"""Where the mailbox reader got to: UIDVALIDITY + the last UID handed to the core, per mailbox.

IMAP gives every mail in a folder a UID that only grows, valid as long as the folder's
UIDVALIDITY is unchanged. The reader saves ``(uidvalidity, last_uid)`` after the core has
stored a mail, so a restart resumes right after it. ``MailCheckpoint`` is the seam (the
coordinator may keep it in the database); ``FileCheckpoint`` keeps one small JSON file,
replaced atomically (write to a temporary file, fsync, rename), so a crash leaves either the
old position or the new one, never half a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tongdai.errors import StoreError


@dataclass(frozen=True)
class Position:
    uidvalidity: int
    last_uid: int  # 0: nothing read yet


class MailCheckpoint(Protocol):
    async def load(self, mailbox: str) -> Position | None:
        """The saved position for ``mailbox`` (account-qualified name), None if never saved."""

    async def save(self, mailbox: str, position: Position) -> None:
        """Durably remember ``position``; raises ``StoreError`` when it cannot."""


class MemoryCheckpoint:
    """For tests: positions in a dict."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}

    async def load(self, mailbox: str) -> Position | None:
        return self.positions.get(mailbox)

    async def save(self, mailbox: str, position: Position) -> None:
        self.positions[mailbox] = position


class FileCheckpoint:
    """All mailboxes' positions in one JSON file: ``{"mailbox": [uidvalidity, last_uid]}``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, list[int]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"mail checkpoint {self.path} is unreadable: {exc}") from exc
        if not isinstance(raw, dict):
            raise StoreError(f"mail checkpoint {self.path} is not a JSON object")
        table: dict[str, list[int]] = {}
        for key, value in raw.items():
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int) and v >= 0 for v in value)
            )
            if not ok:
                raise StoreError(f"mail checkpoint {self.path}: bad entry {key!r}: {value!r}")
            table[key] = value
        return table

    def _write(self, table: dict[str, list[int]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        done = False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(table, f, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            done = True
        finally:
            if not done:
                Path(tmp).unlink(missing_ok=True)

    async def load(self, mailbox: str) -> Position | None:
        async with self._lock:
            entry = self._read().get(mailbox)
        return None if entry is None else Position(entry[0], entry[1])

    async def save(self, mailbox: str, position: Position) -> None:
        async with self._lock:
            try:
                table = self._read()
                table[mailbox] = [position.uidvalidity, position.last_uid]
                self._write(table)
            except OSError as exc:
                raise StoreError(f"cannot save mail checkpoint {self.path}: {exc}") from exc
