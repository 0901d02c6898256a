"""The ticket spool: calls keep their tickets while the database is away, and replay puts every
spooled operation into the database exactly once, across interruptions and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ivr import say
from tickets.codes import CODE_RE
from tickets.memory import MemoryTicketStore
from tickets.model import IvrStep, Outcome, Status, StatusChange, Ticket
from tickets.spool import JOURNAL, REJECTED, SPOOL_CODE_RE, ImportingStore, SpoolingTicketStore
from tickets.sql import SqlTicketStore, open_store
from tongdai.db import make_engine
from tongdai.errors import StoreError

T0 = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
R = TypeVar("R")


class Flaky:
    """A store wrapper whose database can go away: while ``down``, or after ``break_after(n)``
    lets ``n`` more calls through. With ``lose_reply`` the breaking call is done, then fails
    (the commit happened but the answer was lost)."""

    def __init__(self, inner: ImportingStore) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0
        self._budget: int | None = None
        self._lose_reply = False

    def break_after(self, n: int, *, lose_reply: bool = False) -> None:
        self._budget, self._lose_reply = n, lose_reply

    async def _do(self, call: Callable[[], Awaitable[R]]) -> R:
        self.calls += 1
        if self.down:
            raise StoreError("ticket store: database away")
        if self._budget is not None:
            if self._budget == 0:
                self.down, self._budget = True, None
                if self._lose_reply:
                    await call()
                raise StoreError("ticket store: connection lost")
            self._budget -= 1
        return await call()

    async def open(self, **kw: Any) -> Ticket:
        return await self._do(lambda: self.inner.open(**kw))

    async def update(self, code: str, **changes: Any) -> None:
        await self._do(lambda: self.inner.update(code, **changes))

    async def append_steps(self, code: str, steps: Any) -> None:
        await self._do(lambda: self.inner.append_steps(code, steps))

    async def get(self, code: str) -> Ticket | None:
        return await self._do(lambda: self.inner.get(code))

    async def find_by_uniqueid(self, uniqueid: str) -> Ticket | None:
        return await self._do(lambda: self.inner.find_by_uniqueid(uniqueid))

    async def list(self, **kw: Any) -> list[Ticket]:
        return await self._do(lambda: self.inner.list(**kw))

    async def set_status(self, code: str, status: Status, **kw: Any) -> Ticket:
        return await self._do(lambda: self.inner.set_status(code, status, **kw))

    async def import_ticket(self, ticket: Ticket) -> bool:
        return await self._do(lambda: self.inner.import_ticket(ticket))

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
def flaky() -> Flaky:
    return Flaky(MemoryTicketStore())


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def journal(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / JOURNAL).read_text().splitlines()]


async def spooled_call(store: SpoolingTicketStore, uniqueid: str = "1714.1") -> str:
    """A call the IVR would make: open, steps, queue, more steps, outcome."""
    t = await store.open(channel="voice", caller="0905123456", uniqueid=uniqueid, started_at=at(0))
    await store.append_steps(t.code, [IvrStep(at(0.1), "main", "1"), IvrStep(at(0.2), "dossier")])
    await store.update(t.code, queue="hanh_chinh", queued_at=at(1), category="dossier")
    await store.append_steps(t.code, [IvrStep(at(1.5), "general_queue", detail="queue:x")])
    await store.update(t.code, outcome=Outcome.ANSWERED, answered_at=at(2), ended_at=at(3))
    return t.code


def expected(code: str, uniqueid: str = "1714.1") -> Ticket:
    return Ticket(
        id=0,
        code=code,
        channel="voice",
        caller="0905123456",
        uniqueid=uniqueid,
        started_at=at(0),
        queued_at=at(1),
        answered_at=at(2),
        ended_at=at(3),
        category="dossier",
        queue="hanh_chinh",
        outcome=Outcome.ANSWERED,
        ivr_path=[
            IvrStep(at(0.1), "main", "1"),
            IvrStep(at(0.2), "dossier"),
            IvrStep(at(1.5), "general_queue", detail="queue:x"),
        ],
        history=[StatusChange(at(0), None, Status.NEW, "system")],
    )


async def test_given_unreachable_postgres_when_a_call_opens_then_code_is_spooled_and_speakable(
    tmp_path: Path,
) -> None:
    dead = SqlTicketStore(
        make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/x"), owns_engine=True
    )
    store = SpoolingTicketStore(dead, tmp_path)
    try:
        t = await store.open(channel="voice", caller="0905", uniqueid="1.1", started_at=at(0))
        assert t.code == "1022-20260501-0000001"
        assert SPOOL_CODE_RE.match(t.code) and CODE_RE.match(t.code)
        assert say.ticket_code(t.code)[-7:] == [*say.digits("000000"), *say.digits("1")]
        assert [r["code"] for r in journal(tmp_path)] == [t.code]
        assert await store.get(t.code) == t
        assert await store.find_by_uniqueid("1.1") == t
        with pytest.raises(StoreError):
            await store.get("1022-20260501-000001")  # a database ticket: cannot know
        with pytest.raises(StoreError):
            await store.list()
    finally:
        await store.close()


async def test_given_db_down_when_a_call_runs_then_every_operation_is_spooled_in_order(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    store = SpoolingTicketStore(flaky, tmp_path)
    code = await spooled_call(store)
    assert [r["op"] for r in journal(tmp_path)] == ["open", "steps", "update", "steps", "update"]
    assert store.pending == 5
    assert await store.get(code) == expected(code)
    assert await store.find_by_uniqueid("1714.1") == expected(code)
    with pytest.raises(StoreError, match="waiting in the spool"):
        await store.set_status(code, Status.RESOLVED, by="agent1")


async def test_given_db_down_when_given_bad_changes_then_value_error_and_nothing_spooled(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    store = SpoolingTicketStore(flaky, tmp_path)
    code = (await store.open(channel="voice", caller=None, uniqueid=None, started_at=at(0))).code
    with pytest.raises(ValueError, match="cannot update"):
        await store.update(code, status="closed")
    with pytest.raises(ValueError, match="naive"):
        await store.update(code, ended_at=datetime(2026, 5, 1, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        await store.append_steps(code, [IvrStep(datetime(2026, 5, 1, 9, 0), "main")])
    assert store.pending == 1


async def test_given_many_calls_at_once_when_db_down_then_codes_are_distinct_and_sequential(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    store = SpoolingTicketStore(flaky, tmp_path)
    opened = await asyncio.gather(
        *(
            store.open(channel="voice", caller=None, uniqueid=f"u{i}", started_at=at(i))
            for i in range(20)
        )
    )
    assert sorted(t.code for t in opened) == [f"1022-20260501-{i:07d}" for i in range(1, 21)]


async def test_given_spooled_call_when_db_is_back_then_replay_reproduces_it_exactly_once(
    db_url: str, tmp_path: Path
) -> None:
    sql = await open_store(db_url)
    flaky = Flaky(sql)
    store = SpoolingTicketStore(flaky, tmp_path)
    try:
        before = await store.open(channel="voice", caller="09", uniqueid="0.1", started_at=at(-1))
        flaky.down = True
        code = await spooled_call(store)
        flaky.down = False
        assert await store.replay() == 5
        assert store.pending == 0 and (tmp_path / JOURNAL).read_text() == ""
        assert await store.replay() == 0
        stored = await sql.get(code)
        assert stored is not None and stored.id > before.id
        assert replace(stored, id=0) == expected(code)
        assert [t.code for t in await sql.list()] == [before.code, code]
        assert (
            await store.set_status(code, Status.RESOLVED, by="agent1")
        ).status is Status.RESOLVED
    finally:
        await store.close()


@pytest.mark.parametrize("lose_reply", [False, True], ids=["before_commit", "reply_lost"])
@pytest.mark.parametrize("calls_before_break", range(7))
async def test_given_replay_interrupted_when_restarted_and_replayed_then_ticket_is_exact(
    flaky: Flaky, tmp_path: Path, calls_before_break: int, lose_reply: bool
) -> None:
    flaky.down = True
    code = await spooled_call(SpoolingTicketStore(flaky, tmp_path))
    flaky.down = False
    flaky.break_after(calls_before_break, lose_reply=lose_reply)
    with pytest.raises(StoreError):
        await SpoolingTicketStore(flaky, tmp_path).replay()
    flaky.down = False
    restarted = SpoolingTicketStore(flaky, tmp_path)
    # inner calls per operation: import 1, steps 2 (get, append), update 1: ops end after
    # calls 1, 3, 4, 6, 7; the restart resumes after the last operation that finished
    assert restarted.pending == 5 - sum(end <= calls_before_break for end in (1, 3, 4, 6, 7))
    await restarted.replay()
    await restarted.replay()
    stored = await flaky.inner.get(code)
    assert stored is not None and replace(stored, id=0) == expected(code)
    assert len(await flaky.inner.list()) == 1


async def test_given_restart_when_db_still_down_then_counter_and_pending_ops_are_kept(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    first = SpoolingTicketStore(flaky, tmp_path)
    code = await spooled_call(first, "a")
    second = SpoolingTicketStore(flaky, tmp_path)
    assert second.pending == 5
    assert await second.get(code) == expected(code, "a")
    nxt = await second.open(channel="voice", caller=None, uniqueid="b", started_at=at(5))
    assert nxt.code == "1022-20260501-0000002"
    flaky.down = False
    assert await second.replay() == 6
    flaky.down = True
    third = SpoolingTicketStore(flaky, tmp_path)
    assert third.pending == 0
    later = await third.open(channel="voice", caller=None, uniqueid="c", started_at=at(6))
    assert later.code == "1022-20260501-0000003"  # never reuses a code already replayed


async def test_given_a_line_cut_by_a_crash_when_restarted_then_it_is_dropped_and_spool_works(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    code = await spooled_call(SpoolingTicketStore(flaky, tmp_path))
    with (tmp_path / JOURNAL).open("ab") as f:
        f.write(b'{"op":"update","co')
    store = SpoolingTicketStore(flaky, tmp_path)
    assert store.pending == 5
    await store.update(code, notes="after restart")
    assert SpoolingTicketStore(flaky, tmp_path).pending == 6
    flaky.down = False
    await store.replay()
    assert replace(await flaky.inner.get(code) or expected(""), id=0) == replace(
        expected(code), notes="after restart"
    )


async def test_given_db_ticket_when_db_blips_then_later_writes_wait_in_the_spool_for_order(
    flaky: Flaky, tmp_path: Path
) -> None:
    store = SpoolingTicketStore(flaky, tmp_path)
    t = await store.open(channel="voice", caller=None, uniqueid="x", started_at=at(0))
    assert SPOOL_CODE_RE.match(t.code) is None  # the database gave this one
    flaky.down = True
    await store.update(t.code, queue="q1", queued_at=at(1))
    with pytest.raises(StoreError):
        await store.get(t.code)
    flaky.down = False
    await store.append_steps(t.code, [IvrStep(at(1.5), "queue")])
    await store.update(t.code, outcome=Outcome.ABANDONED_QUEUE, ended_at=at(2))
    in_db = await flaky.inner.get(t.code)
    assert in_db is not None and in_db.queue is None  # nothing overtook the spooled update
    seen = await store.get(t.code)
    assert seen is not None and (seen.queue, seen.outcome) == ("q1", Outcome.ABANDONED_QUEUE)
    assert [x.code for x in await store.list()] == [t.code]
    assert await store.replay() == 3
    assert await flaky.inner.get(t.code) == seen
    await store.update(t.code, notes="direct")
    assert store.pending == 0
    assert (await flaky.inner.get(t.code) or t).notes == "direct"


async def test_given_update_of_unknown_code_spooled_when_replayed_then_it_is_rejected_not_retried(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    store = SpoolingTicketStore(flaky, tmp_path)
    await store.update("1022-20260501-000099", notes="lost?")
    flaky.down = False
    assert await store.replay() == 1
    assert store.pending == 0
    rejected = [json.loads(line) for line in (tmp_path / REJECTED).read_text().splitlines()]
    assert [(r["code"], r["reason"]) for r in rejected] == [
        ("1022-20260501-000099", "unknown ticket 1022-20260501-000099")
    ]


async def test_given_replayer_running_when_db_comes_back_then_spool_drains(
    flaky: Flaky, tmp_path: Path
) -> None:
    flaky.down = True
    store = SpoolingTicketStore(flaky, tmp_path)
    code = await spooled_call(store)
    task = asyncio.create_task(store.run_replayer(0.01))
    try:
        await until(lambda: flaky.calls >= 3)  # it keeps trying while the database is away
        assert not task.done() and store.pending == 5
        flaky.down = False
        await until(lambda: store.pending == 0)
        stored = await flaky.inner.get(code)
        assert stored is not None and replace(stored, id=0) == expected(code)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def importer(
    request: pytest.FixtureRequest, make_db_url: Callable[[str], str]
) -> AsyncIterator[ImportingStore]:
    if request.param == "memory":
        yield MemoryTicketStore()
        return
    sql = await open_store(make_db_url(request.param))
    try:
        yield sql
    finally:
        await sql.close()


async def test_given_a_ticket_when_imported_twice_then_stored_once_with_everything(
    importer: ImportingStore,
) -> None:
    ticket = replace(expected("1022-20260501-0000007"), status=Status.IN_PROGRESS)
    ticket.history.append(StatusChange(at(4), Status.NEW, Status.IN_PROGRESS, "agent1", "called"))
    assert await importer.import_ticket(ticket) is True
    assert await importer.import_ticket(replace(ticket, caller="other")) is False
    stored = await importer.get(ticket.code)
    assert stored is not None and stored.id > 0 and replace(stored, id=0) == ticket
    following = await importer.open(channel="voice", caller=None, uniqueid=None, started_at=at(9))
    assert following.code == "1022-20260501-000001"  # day counters untouched by the import


async def test_given_disk_fails_once_when_spooling_then_store_error_and_journal_stays_clean(
    flaky: Flaky, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky.down = True
    store = SpoolingTicketStore(flaky, tmp_path)
    code = (await store.open(channel="voice", caller=None, uniqueid=None, started_at=at(0))).code
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        monkeypatch.setattr(os, "fsync", real_fsync)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StoreError, match="No space left"):
        await store.update(code, notes="lost")
    assert store.pending == 1
    await store.update(code, notes="kept")
    restarted = SpoolingTicketStore(flaky, tmp_path)
    assert [r["op"] for r in journal(tmp_path)] == ["open", "update"]
    assert (await restarted.get(code) or expected("")).notes == "kept"
