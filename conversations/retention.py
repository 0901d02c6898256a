"""Retention of personal data (Vietnam's Decree 13/2023/ND-CP): what is older than the
configured period is purged, and nothing else.

``purge`` finds, with ``now`` and ``[retention]`` (``recordings_days``, ``messages_days``):

* **recordings** of tickets that started before the recordings cut-off: the file is deleted
  (only if it lies inside one of the recording folders) and the ticket's ``recording`` is
  cleared; audio files in those folders older than the cut-off (by modification time) that
  no younger ticket points at are deleted too (a call whose ticket never got the link);
* **messages** written before the messages cut-off: the body and HTML are emptied, the
  attachment files deleted (only inside the attachments folder) and the list cleared;
  processed inbound events (the raw webhook bodies) received before it lose their payload
  (the row stays, so a late retry of the platform is still recognised as a duplicate).

Tickets themselves stay (dates, category, outcome: the reports), as do the message rows'
times, directions and delivery states. With ``dry_run`` nothing is changed and the report says
what would go. Running it twice purges nothing the second time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conversations.journal import E
from tickets.sql import T
from tickets.sql_conversations import M
from tongdai.clock import as_utc
from tongdai.db import DB_ERRORS, describe, store_error
from tongdai.errors import TongdaiError

log = logging.getLogger(__name__)

#: audio files the orphan sweep considers (Asterisk's formats)
AUDIO_SUFFIXES = frozenset({".wav", ".wav49", ".gsm", ".ulaw", ".alaw", ".sln", ".mp3", ".ogg"})


@dataclass
class PurgeReport:
    dry_run: bool
    recordings_before: datetime
    messages_before: datetime
    #: ticket codes whose recording was (or would be) removed
    recordings: list[str] = field(default_factory=list)
    #: files deleted (or to delete): recordings, orphan audio, attachments
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    #: message ids whose body/attachments were (or would be) emptied
    messages: list[int] = field(default_factory=list)
    #: inbound events whose payload was (or would be) emptied
    events: int = 0
    #: recordings or attachments named outside their folders: left alone, reported
    refused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        return (
            f"{verb}: {len(self.recordings)} ticket recordings, {len(self.messages)} messages, "
            f"{self.events} inbound events, {len(self.files)} files ({self.bytes} bytes); "
            f"recordings before {self.recordings_before.isoformat()}, "
            f"messages before {self.messages_before.isoformat()}"
            + (f"; refused {len(self.refused)} paths outside their folders" if self.refused else "")
        )


def _inside(path: Path, folders: list[Path]) -> bool:
    try:
        real = path.resolve()
    except OSError:
        return False
    return any(real.is_relative_to(f.resolve()) and real != f.resolve() for f in folders)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


class _Files:
    """Deletes (or, dry, only counts) files; the same file is counted once."""

    def __init__(self, report: PurgeReport) -> None:
        self.report = report
        self.seen: set[Path] = set()

    def remove(self, path: Path) -> None:
        real = path.resolve()
        if real in self.seen or not real.is_file():
            return
        self.seen.add(real)
        self.report.files.append(real)
        self.report.bytes += _size(real)
        if not self.report.dry_run:
            real.unlink(missing_ok=True)


async def purge(
    engine: AsyncEngine,
    *,
    now: datetime,
    recordings_days: int,
    messages_days: int,
    recording_dirs: list[Path],
    attachments_dir: Path,
    dry_run: bool,
) -> PurgeReport:
    """Purge what is older than the periods (see the module docstring)."""
    for name, days in (("recordings_days", recordings_days), ("messages_days", messages_days)):
        if days < 1:
            raise TongdaiError(f"retention.{name} must be at least 1 day, got {days}")
    now = as_utc(now, "now")
    report = PurgeReport(
        dry_run=dry_run,
        recordings_before=now - timedelta(days=recordings_days),
        messages_before=now - timedelta(days=messages_days),
    )
    files = _Files(report)
    try:
        async with engine.begin() as conn:
            await _recordings(conn, report, files, recording_dirs)
            await _messages(conn, report, files, attachments_dir)
            await _events(conn, report)
    except DB_ERRORS as exc:
        raise store_error(f"purge ({describe(engine.url)})", exc) from exc
    log.info("retention: %s", report.summary())
    return report


async def _recordings(
    conn: AsyncConnection, report: PurgeReport, files: _Files, folders: list[Path]
) -> None:
    cutoff = report.recordings_before
    old = (
        await conn.execute(
            select(T.c.id, T.c.code, T.c.recording)
            .where(T.c.started_at < cutoff, T.c.recording.is_not(None))
            .order_by(T.c.id)
        )
    ).all()
    young = (
        await conn.execute(
            select(T.c.recording).where(T.c.started_at >= cutoff, T.c.recording.is_not(None))
        )
    ).scalars()
    linked = [(int(r.id), str(r.code), str(r.recording)) for r in old]
    cleared = await asyncio.to_thread(
        _recording_files, report, files, folders, linked, [str(y) for y in young]
    )
    if not report.dry_run:
        for part in _chunks(cleared):
            await conn.execute(update(T).where(T.c.id.in_(part)).values(recording=None))


def _recording_files(
    report: PurgeReport,
    files: _Files,
    folders: list[Path],
    linked: list[tuple[int, str, str]],
    young: list[str],
) -> list[int]:
    """Delete the old tickets' recordings and the orphan audio; the tickets to unlink."""
    cleared: list[int] = []
    for ticket_id, code, recording in linked:
        path = Path(recording)
        if path.exists() and not _inside(path, folders):
            report.refused.append(str(path))
            continue
        files.remove(path)
        report.recordings.append(code)
        cleared.append(ticket_id)
    # audio nobody younger points at, older than the cut-off by its own time
    kept = {Path(r).resolve() for r in young}
    cutoff = report.recordings_before
    for folder in folders:
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in AUDIO_SUFFIXES or f.is_symlink() or not f.is_file():
                continue
            if f.resolve() in kept:
                continue
            if datetime.fromtimestamp(f.stat().st_mtime, cutoff.tzinfo) < cutoff:
                files.remove(f)
    return cleared


async def _messages(
    conn: AsyncConnection, report: PurgeReport, files: _Files, attachments_dir: Path
) -> None:
    old = (
        await conn.execute(
            select(M.c.id, M.c.attachments)
            .where(M.c.at < report.messages_before)
            .where(or_(M.c.body != "", M.c.html.is_not(None), M.c.attachments.is_not(None)))
            .order_by(M.c.id)
        )
    ).all()
    rows = [(int(r.id), r.attachments) for r in old]
    await asyncio.to_thread(_attachment_files, report, files, attachments_dir, rows)
    report.messages.extend(i for i, _ in rows)
    ids = [i for i, _ in rows]
    if not report.dry_run:
        for part in _chunks(ids):
            await conn.execute(
                update(M).where(M.c.id.in_(part)).values(body="", html=None, attachments=None)
            )


def _attachment_files(
    report: PurgeReport, files: _Files, folder: Path, rows: list[tuple[int, str | None]]
) -> None:
    for _, raw in rows:
        for item in _attachment_paths(raw):
            path = folder / item
            if not _inside(path, [folder]):
                report.refused.append(item)
                continue
            files.remove(path)


def _attachment_paths(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        items: Any = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [str(a.get("path") or "") for a in items if isinstance(a, dict) and a.get("path")]


async def _events(conn: AsyncConnection, report: PurgeReport) -> None:
    where = and_(
        E.c.received_at < report.messages_before,
        E.c.processed_at.is_not(None),
        E.c.payload != b"",
    )
    found = (await conn.execute(select(E.c.id).where(where))).scalars().all()
    report.events = len(found)
    if not report.dry_run:
        for part in _chunks(list(found)):
            await conn.execute(update(E).where(E.c.id.in_(part)).values(payload=b""))


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    """``ids`` in slices small enough for any database's bound-parameter limit."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]
