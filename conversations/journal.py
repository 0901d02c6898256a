"""The inbound event journal: a platform's raw event is kept durably before we answer it.

``SqlEventJournal.append`` inserts the raw payload under ``(channel, external_id)`` (unique:
a platform's retry of an event already kept is a no-op and returns False). While the database
is away, ``SpoolingJournal`` appends the event to ``<spool_dir>/events.jsonl`` instead (fsync'd
before it returns) and replays the file into the database when it is back, exactly once (the
unique key absorbs a replay interrupted half-way). The processor (``conversations.process``)
reads pending events, parses them with the channel's parser and hands the messages to the
inbox; an event is marked processed only after that, so a crash in between reprocesses it,
and the inbox's own de-duplication makes that harmless.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy import (
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from tickets.model import Channel
from tongdai.clock import as_utc, utcnow
from tongdai.db import DB_ERRORS, Base, UtcDateTime, describe, store_error
from tongdai.errors import StoreError

log = logging.getLogger(__name__)


class InboundEventRow(Base):
    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_inbound_events_channel_external_id"),
        Index("ix_inbound_events_pending", "processed_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(512))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)


E = cast(Table, InboundEventRow.__table__)


@dataclass(frozen=True)
class JournalEvent:
    id: int
    channel: Channel
    external_id: str
    payload: bytes
    received_at: datetime
    attempts: int


class SqlEventJournal:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        #: set when an event is appended (the processor waits on it)
        self.kick = asyncio.Event()

    @asynccontextmanager
    async def _tx(self, what: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except DB_ERRORS as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise store_error(f"event journal ({describe(self.engine.url)}): {what}", exc) from exc

    async def append(self, channel: Channel, external_id: str, payload: bytes) -> bool:
        return await self.append_at(channel, external_id, payload, self._clock())

    async def append_at(
        self, channel: Channel, external_id: str, payload: bytes, at: datetime
    ) -> bool:
        try:
            async with self._tx(f"cannot keep a {channel} event") as conn:
                exists = (
                    await conn.execute(
                        select(E.c.id).where(
                            E.c.channel == Channel(channel).value, E.c.external_id == external_id
                        )
                    )
                ).first()
                if exists is not None:
                    return False
                await conn.execute(
                    insert(E).values(
                        channel=Channel(channel).value,
                        external_id=external_id,
                        payload=payload,
                        received_at=as_utc(at),
                        attempts=0,
                    )
                )
        except IntegrityError:  # the same event, kept concurrently by another request
            return False
        self.kick.set()
        return True

    async def pending(self, limit: int = 100, *, exclude: Iterable[int] = ()) -> list[JournalEvent]:
        """The oldest unprocessed events (fewer than ``MAX_ATTEMPTS`` failures), in the order
        they were kept, leaving out ``exclude`` (the processor's events under way)."""
        query = select(E).where(E.c.processed_at.is_(None), E.c.attempts < MAX_ATTEMPTS)
        skip = list(exclude)
        if skip:
            query = query.where(E.c.id.not_in(skip))
        query = query.order_by(E.c.id).limit(limit)
        async with self._tx("cannot read pending events") as conn:
            rows = (await conn.execute(query)).all()
        return [
            JournalEvent(
                int(r.id), Channel(r.channel), r.external_id, r.payload, r.received_at, r.attempts
            )
            for r in rows
        ]

    async def done(self, event_id: int) -> None:
        await self.done_many([event_id])

    async def done_many(self, event_ids: Iterable[int]) -> None:
        """Mark events processed, all in one statement."""
        ids = list(event_ids)
        if not ids:
            return
        async with self._tx(f"cannot mark {len(ids)} events processed") as conn:
            await conn.execute(
                update(E).where(E.c.id.in_(ids)).values(processed_at=as_utc(self._clock()))
            )

    async def failed(self, event_id: int, error: str) -> None:
        """Processing failed (kept for ``MAX_ATTEMPTS`` tries, then left for a person)."""
        async with self._tx("cannot record an event failure") as conn:
            await conn.execute(
                update(E)
                .where(E.c.id == event_id)
                .values(attempts=E.c.attempts + 1, error=error[:2000])
            )

    async def count(self, channel: Channel | None = None) -> int:
        query = select(E.c.id)
        if channel is not None:
            query = query.where(E.c.channel == Channel(channel).value)
        async with self._tx("cannot count events") as conn:
            return len((await conn.execute(query)).all())


#: an event whose processing failed this many times is left for a person (it stays stored)
MAX_ATTEMPTS = 5


def _fsync_append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolingJournal:
    """``SqlEventJournal`` with a disk spool for when the database is away. While the spool
    holds events, new ones go to the spool too (so order is kept) until ``replay`` empties
    it. A redelivery of a spooled event is spooled twice; the replay keeps it once. Appends
    to the database run concurrently; only spooling and the replay take the lock."""

    def __init__(self, inner: SqlEventJournal, spool_dir: Path) -> None:
        self.inner = inner
        self.path = spool_dir / "events.jsonl"
        self.kick = inner.kick
        self._lock = asyncio.Lock()

    @property
    def spooled(self) -> int:
        try:
            with self.path.open(encoding="utf-8") as f:
                return sum(1 for line in f if line.strip())
        except FileNotFoundError:
            return 0

    async def append(self, channel: Channel, external_id: str, payload: bytes) -> bool:
        # the database first, without the lock: webhook requests append concurrently (the
        # unique key keeps a redelivery once); the lock only orders the spool's writers and its
        # replay. Serialising every append on it capped acknowledgements at one commit at a
        # time (~35/s on the 2-core lab: ``tongdai bench webhooks``).
        if not self.path.exists():
            try:
                return await self.inner.append(channel, external_id, payload)
            except StoreError as exc:
                log.warning("event journal unavailable, spooling to %s: %s", self.path, exc)
        async with self._lock:
            record = {
                "channel": Channel(channel).value,
                "external_id": external_id,
                "payload": base64.b64encode(payload).decode("ascii"),
                "at": utcnow().isoformat(),
            }
            await asyncio.to_thread(_fsync_append, self.path, json.dumps(record) + "\n")
            return True

    async def replay(self) -> int:
        """Push spooled events into the database, oldest first; returns how many were new.
        Raises ``StoreError`` (leaving the spool in place) while the database is still away."""
        async with self._lock:
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                return 0
            new = 0
            for line in lines:
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    payload = base64.b64decode(r["payload"])
                    at = datetime.fromisoformat(r["at"])
                    channel = Channel(r["channel"])
                except (ValueError, KeyError, TypeError) as exc:  # a torn last line
                    log.error("spooled event unreadable, skipped: %s", exc)
                    continue
                if await self.inner.append_at(channel, r["external_id"], payload, at):
                    new += 1
            self.path.unlink()
            return new

    async def run_replayer(self, interval_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not self.spooled:
                continue
            try:
                n = await self.replay()
                log.info("event spool replayed: %d new events", n)
            except StoreError as exc:
                log.info("event spool not replayed yet: %s", exc)
