"""The inbound event journal: kept once per (channel, external id), spooled to disk while the
database is away and replayed exactly once, processed into messages by the processor."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conversations.journal import MAX_ATTEMPTS, SpoolingJournal, SqlEventJournal
from conversations.model import Identity, IdentityKind, InboundMessage, Received
from conversations.process import JournalProcessor
from tickets.model import Channel
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import StoreError


class Sink:
    def __init__(self) -> None:
        self.got: dict[str, InboundMessage] = {}
        self.fail = False

    async def receive(self, message: InboundMessage) -> Received:
        if self.fail:
            raise StoreError("database away")
        dup = message.external_id in self.got
        self.got[message.external_id] = message
        return Received("1022-20261206-000001", created=not dup, duplicate=dup)


def parse(payload: bytes) -> list[InboundMessage]:
    body = json.loads(payload)
    return [
        InboundMessage(
            channel=Channel.ZALO,
            external_id=m,
            sender=Identity(IdentityKind.ZALO, "u1"),
            received_at=datetime(2026, 12, 6, tzinfo=UTC),
            text="x",
        )
        for m in body["ids"]
    ]


async def test_given_events_then_each_is_kept_once_and_processed_once(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        await upgrade_engine(engine)
        journal = SqlEventJournal(engine)
        assert await journal.append(Channel.ZALO, "e1", b'{"ids": ["m1", "m2"]}')
        assert not await journal.append(Channel.ZALO, "e1", b'{"ids": ["m1", "m2"]}')
        assert await journal.append(Channel.FACEBOOK, "e1", b'{"ids": []}')  # other channel
        assert await journal.append(Channel.ZALO, "e2", b"not json")
        sink = Sink()
        proc = JournalProcessor(journal, {Channel.ZALO: parse}, sink)
        await proc.process_pending()
        assert sorted(sink.got) == ["m1", "m2"]
        # e2 failed to parse (kept, retried a few times), facebook has no parser here
        for _ in range(MAX_ATTEMPTS):
            await proc.process_pending()
        assert await journal.pending() == []
        assert await journal.count() == 3
    finally:
        await engine.dispose()


async def test_a_store_failure_leaves_the_event_pending(
    make_db_url: Callable[[str], str],
) -> None:
    engine = make_engine(make_db_url("sqlite"))
    try:
        await upgrade_engine(engine)
        journal = SqlEventJournal(engine)
        await journal.append(Channel.ZALO, "e1", b'{"ids": ["m1"]}')
        sink = Sink()
        sink.fail = True
        proc = JournalProcessor(journal, {Channel.ZALO: parse}, sink)
        await proc.process_pending()
        assert [e.external_id for e in await journal.pending()] == ["e1"]
        sink.fail = False
        await proc.process_pending()
        assert list(sink.got) == ["m1"] and await journal.pending() == []
    finally:
        await engine.dispose()


async def test_given_the_database_away_then_events_are_spooled_and_replayed_once(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await upgrade_engine(engine)
    await engine.dispose()
    broken = SqlEventJournal(make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/x"))
    away = SpoolingJournal(broken, tmp_path / "spool")
    assert await away.append(Channel.ZALO, "e1", b"one")
    assert await away.append(Channel.ZALO, "e1", b"one")  # a platform retry, while away
    assert await away.append(Channel.ZALO, "e2", b"two")
    assert away.spooled == 3
    back = SpoolingJournal(SqlEventJournal(engine), tmp_path / "spool")
    with pytest.raises(StoreError):
        await away.replay()
    assert away.spooled == 3  # nothing lost by a failed replay
    assert await back.replay() == 2
    assert back.spooled == 0
    assert [e.payload for e in await back.inner.pending()] == [b"one", b"two"]
    await engine.dispose()
    await broken.engine.dispose()
