"""Retention: ``tongdai purge`` removes recordings, message bodies, attachments and raw
webhook bodies older than the periods - and nothing else - on SQLite and PostgreSQL; the dry
run changes nothing and says the same; a second run finds nothing."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conversations.journal import E, SqlEventJournal
from conversations.retention import purge
from hotline import cli as tongdai_cli
from tickets.messages import Attachment, Author, Direction, NewMessage
from tickets.model import Channel
from tickets.sql import SqlTicketStore, open_store
from tickets.sql_conversations import SqlConversationStore
from tongdai.errors import TongdaiError

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
YOUNG = NOW - timedelta(days=10)


@dataclass
class World:
    store: SqlTicketStore
    rec: Path
    att: Path
    tmp: Path
    codes: dict[str, str]
    messages: dict[str, int]

    async def run(self, *, dry_run: bool, days: int = 365):  # type: ignore[no-untyped-def]
        return await purge(
            self.store.engine, now=NOW, recordings_days=days, messages_days=days,
            recording_dirs=[self.rec], attachments_dir=self.att, dry_run=dry_run,
        )  # fmt: skip

    async def bodies(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        conv = SqlConversationStore(self.store)
        out = {}
        for name in ("old_msg", "young_msg"):
            (m,) = await conv.messages(self.codes[name])
            out[name] = (m.body, tuple(a.path for a in m.attachments))
        return out

    async def payloads(self) -> list[bytes]:
        async with self.store.engine.connect() as conn:
            return list((await conn.execute(E.select().order_by(E.c.id))).scalars("payload"))


def _aged(path: Path, at: datetime, data: bytes = b"RIFF" + b"\0" * 100) -> Path:
    path.write_bytes(data)
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def _exists(path: str) -> bool:
    return Path(path).exists()


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    store = await open_store(db_url)
    rec, att, elsewhere = tmp_path / "rec", tmp_path / "att", tmp_path / "elsewhere"
    for d in (rec, att, elsewhere):
        d.mkdir()
    codes: dict[str, str] = {}
    for name, at, where in (
        ("old_call", OLD, rec),
        ("young_call", YOUNG, rec),
        ("old_outside", OLD, elsewhere),
    ):
        t = await store.open(channel="voice", caller="0905", uniqueid=None, started_at=at)
        f = _aged(where / f"{t.code}.wav", at)
        await store.update(t.code, recording=str(f), outcome="message_left")
        codes[name] = t.code
    _aged(rec / "orphan-old.wav", OLD)
    _aged(rec / "orphan-young.wav", YOUNG)
    _aged(rec / "readme.txt", OLD, b"not audio")
    conv = SqlConversationStore(store)
    messages: dict[str, int] = {}
    for name, at in (("old_msg", OLD), ("young_msg", YOUNG)):
        (att / name).mkdir()
        _aged(att / name / "cccd.jpg", at, b"\xff\xd8 photo of an ID card")
        ticket, m, _ = await conv.start_conversation(
            channel="zalo", contact_id=None, caller=None, subject=None,
            first=NewMessage(
                channel="zalo", direction=Direction.IN, author=Author.CITIZEN,
                body=f"Tôi tên Nguyễn Văn A, CCCD 0491 ({name})", at=at, external_id=name,
                attachments=(Attachment("cccd.jpg", "image/jpeg", 24, f"{name}/cccd.jpg"),),
            ),
        )  # fmt: skip
        codes[name], messages[name] = ticket.code, m.id
    journal = SqlEventJournal(store.engine)
    for ext, at, processed in (("e-old", OLD, True), ("e-old-pending", OLD, False),
                               ("e-young", YOUNG, True)):  # fmt: skip
        await journal.append_at(Channel.ZALO, ext, b'{"text": "secret"}', at)
        if processed:
            (event,) = [e for e in await journal.pending() if e.external_id == ext]
            await journal.done(event.id)
    try:
        yield World(store, rec, att, tmp_path, codes, messages)
    finally:
        await store.close()


async def test_the_dry_run_changes_nothing_and_says_what_the_purge_then_does(
    world: World,
) -> None:
    before = sorted(p.name for p in world.tmp.rglob("*"))
    dry = await world.run(dry_run=True)
    assert sorted(p.name for p in world.tmp.rglob("*")) == before
    assert (await world.store.get(world.codes["old_call"])).recording is not None  # type: ignore[union-attr]
    real = await world.run(dry_run=False)
    assert (dry.recordings, dry.files, dry.messages, dry.events, dry.refused) == (
        real.recordings, real.files, real.messages, real.events, real.refused,
    )  # fmt: skip
    assert dry.summary().startswith("would purge: 1 ticket recordings, 1 messages, 1 inbound")
    assert real.summary().startswith("purged: ")


async def test_the_purge_removes_what_is_old_and_nothing_else(world: World) -> None:
    r = await world.run(dry_run=False)
    old_call, young_call = world.codes["old_call"], world.codes["young_call"]
    assert r.recordings == [old_call]
    assert sorted(f.name for f in r.files) == sorted(
        [f"{old_call}.wav", "orphan-old.wav", "cccd.jpg"]
    )
    assert r.bytes == 104 + 104 + len(b"\xff\xd8 photo of an ID card")
    # recordings: the old ticket lost its file and link, and still exists for the reports
    gone = await world.store.get(old_call)
    assert gone is not None and gone.recording is None and gone.outcome == "message_left"
    assert sorted(p.name for p in world.rec.iterdir()) == sorted(
        [f"{young_call}.wav", "orphan-young.wav", "readme.txt"]
    )
    kept = await world.store.get(young_call)
    assert kept is not None and kept.recording == str(world.rec / f"{young_call}.wav")
    # a recording outside the recordings folder is left alone and reported
    outside = await world.store.get(world.codes["old_outside"])
    assert outside is not None and outside.recording is not None
    assert _exists(outside.recording) and r.refused == [outside.recording]
    # messages: the old one's body and attachment are gone, the young one is whole
    assert await world.bodies() == {
        "old_msg": ("", ()),
        "young_msg": ("Tôi tên Nguyễn Văn A, CCCD 0491 (young_msg)", ("young_msg/cccd.jpg",)),
    }
    assert not (world.att / "old_msg" / "cccd.jpg").exists()
    assert (world.att / "young_msg" / "cccd.jpg").exists()
    # raw webhook bodies: only the old processed one (pending ones are still to be read)
    assert await world.payloads() == [b"", b'{"text": "secret"}', b'{"text": "secret"}']
    again = await world.run(dry_run=False)
    assert (again.recordings, again.files, again.messages, again.events) == ([], [], [], 0)


async def test_a_longer_period_purges_nothing(world: World) -> None:
    r = await world.run(dry_run=False, days=500)
    assert (r.recordings, r.files, r.messages, r.events) == ([], [], [], 0)


async def test_a_period_under_one_day_is_refused(world: World) -> None:
    with pytest.raises(TongdaiError, match="at least 1 day"):
        await world.run(dry_run=True, days=0)


def test_the_command_dry_run_reports_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tongdai.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/t.db"\n'
        f'[ivr]\nmessages_dir = "{tmp_path}/rec"\ncalls_dir = "{tmp_path}/calls"\n'
        f'[channels]\nattachments_dir = "{tmp_path}/att"\n'
        "[retention]\nrecordings_days = 30\nmessages_days = 90\n",
        encoding="utf-8",
    )
    (tmp_path / "rec").mkdir()
    (tmp_path / "calls").mkdir()
    _aged(tmp_path / "rec" / "old.wav", datetime.now(UTC) - timedelta(days=31))
    # an agent call's recording (``[ivr] calls_dir``) is purged like a message
    _aged(tmp_path / "calls" / "old_call.wav", datetime.now(UTC) - timedelta(days=31))
    young_call = _aged(tmp_path / "calls" / "young_call.wav", datetime.now(UTC))
    assert tongdai_cli.main(["--config", str(config), "purge", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and sorted(out["files"]) == sorted(
        [str(tmp_path / "rec" / "old.wav"), str(tmp_path / "calls" / "old_call.wav")]
    )
    assert (tmp_path / "rec" / "old.wav").exists()
    assert tongdai_cli.main(["--config", str(config), "purge"]) == 0
    assert "purged: 0 ticket recordings" in capsys.readouterr().out
    assert not (tmp_path / "rec" / "old.wav").exists()
    assert not (tmp_path / "calls" / "old_call.wav").exists() and young_call.exists()
