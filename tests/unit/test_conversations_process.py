"""The journal's processor under concurrency: events go side by side through a bounded pool,
one citizen's messages stay in journal order, a message is stored once however often and
however concurrently it is delivered (SQLite and PostgreSQL), and stopping loses nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from conversations.files import AttachmentStore
from conversations.inbox import Inbox
from conversations.journal import SqlEventJournal
from conversations.lanes import KeyedPool
from conversations.model import Identity, IdentityKind, InboundMessage, Received
from conversations.outbox import Outbox
from conversations.process import JournalProcessor, lane_keys
from conversations.texts import load_texts
from tickets.messages import Direction
from tickets.model import Channel
from tickets.sql import SqlTicketStore
from tickets.sql_conversations import SqlConversationStore
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import StoreError

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
DEADLINE_S = 10.0


def payload(*msgs: tuple[str, str]) -> bytes:
    """An event carrying messages ``(sender, message id)``."""
    return json.dumps([{"from": s, "id": i} for s, i in msgs]).encode()


def parse(body: bytes) -> list[InboundMessage]:
    return [
        InboundMessage(
            channel=Channel.ZALO,
            external_id=m["id"],
            sender=Identity(IdentityKind.ZALO, m["from"]),
            received_at=T0,
            text=f"tin {m['id']}",
        )
        for m in json.loads(body)
    ]


class SlowSink:
    """Records the order messages arrive in; ``gate`` holds every receive until set; a
    message's work yields to the loop a number of times that varies with its id."""

    def __init__(self) -> None:
        self.got: list[InboundMessage] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = 0

    async def receive(self, message: InboundMessage) -> Received:
        self.entered += 1
        await self.gate.wait()
        for _ in range(hash(message.external_id) % 7):
            await asyncio.sleep(0)
        self.got.append(message)
        return Received("1022-20261207-000001", created=True, duplicate=False)


async def wait_for(fact: object, what: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not fact():  # type: ignore[operator]
            await asyncio.sleep(0.005)
    assert fact(), what  # type: ignore[operator]


@pytest.fixture
async def journal(db_url: str) -> SqlEventJournal:
    engine = make_engine(db_url)
    await upgrade_engine(engine)
    yield SqlEventJournal(engine)  # type: ignore[misc]
    await engine.dispose()


async def test_given_interleaved_citizens_then_each_ones_messages_keep_journal_order(
    journal: SqlEventJournal,
) -> None:
    order: dict[str, list[str]] = {}
    for n in range(8):
        for who in ("an", "binh", "chi"):
            await journal.append(Channel.ZALO, f"{who}-e{n}", payload((who, f"{who}-{n}")))
            order.setdefault(who, []).append(f"{who}-{n}")
    sink = SlowSink()
    proc = JournalProcessor(journal, {Channel.ZALO: parse}, sink, workers=4)
    assert await proc.process_pending() == 24
    for who, expected in order.items():
        assert [m.external_id for m in sink.got if m.sender.value == who] == expected
    assert proc.pool.peak == 3  # the three citizens side by side, never one citizen twice
    assert await journal.pending() == []


async def test_given_more_citizens_than_workers_then_exactly_workers_run_at_once(
    journal: SqlEventJournal,
) -> None:
    for n in range(12):
        await journal.append(Channel.ZALO, f"e{n}", payload((f"c{n}", f"m{n}")))
    sink = SlowSink()
    sink.gate.clear()
    proc = JournalProcessor(journal, {Channel.ZALO: parse}, sink, workers=5)
    started = await proc.dispatch()
    assert len(started) == 12
    await wait_for(lambda: sink.entered == 5, "five receive at once")
    assert proc.pool.running == 5 and proc.in_flight == 12
    # events under way are not read again
    assert await proc.dispatch() == []
    sink.gate.set()
    await asyncio.wait(started)
    assert proc.pool.peak == 5 and len(sink.got) == 12
    assert await journal.pending() == []


async def test_an_email_reply_waits_for_the_mail_it_answers() -> None:
    first = InboundMessage(
        channel=Channel.EMAIL,
        external_id="<a@x>",
        sender=Identity(IdentityKind.EMAIL, "an@x.vn"),
        received_at=T0,
    )
    reply = InboundMessage(
        channel=Channel.EMAIL,
        external_id="<b@y>",
        sender=Identity(IdentityKind.EMAIL, "binh@y.vn"),  # someone else, in copy
        received_at=T0,
        in_reply_to=("<a@x>",),
    )
    assert set(lane_keys(first)) & set(lane_keys(reply)) == {("message", "email", "<a@x>")}
    pool = KeyedPool(4)
    done: list[str] = []
    gate = asyncio.Event()

    async def job(name: str) -> None:
        if name == "first":
            await gate.wait()
        done.append(name)

    a = pool.submit(lane_keys(first), lambda: job("first"))
    b = pool.submit(lane_keys(reply), lambda: job("reply"))
    other = pool.submit([("sender", "email", "chi@z.vn")], lambda: job("other"))
    await other  # an unrelated mail is not held up
    assert done == ["other"] and not b.done()
    gate.set()
    await asyncio.gather(a, b)
    assert done == ["other", "first", "reply"]
    assert pool.lanes == 0


async def test_a_failing_message_does_not_stop_its_lane() -> None:
    pool = KeyedPool(2)

    async def boom() -> None:
        raise RuntimeError("bug")

    async def fine() -> str:
        return "ok"

    bad = pool.submit(["k"], boom)
    good = pool.submit(["k"], fine)
    assert await good == "ok"
    with pytest.raises(RuntimeError):
        await bad
    with pytest.raises(ValueError):
        KeyedPool(0)


def sql_inbox(journal: SqlEventJournal, tmp: Path) -> tuple[Inbox, SqlConversationStore]:
    tickets = SqlTicketStore(journal.engine)
    conv = SqlConversationStore(tickets)
    texts = load_texts()
    outbox = Outbox(tickets, conv, {})
    inbox = Inbox(tickets, conv, outbox, AttachmentStore(tmp / "files"), texts)
    return inbox, conv


async def test_given_the_same_message_in_many_events_and_two_processors_then_it_is_stored_once(
    journal: SqlEventJournal, tmp_path: Path
) -> None:
    """A platform's redelivery under another event id, taken by two engines at once: the
    lanes serialise it in one process, the unique key decides between the two."""
    for n in range(6):
        await journal.append(Channel.ZALO, f"e{n}", payload(("an", "m1"), ("binh", f"b{n}")))
    inbox, conv = sql_inbox(journal, tmp_path)
    one = JournalProcessor(journal, {Channel.ZALO: parse}, inbox, workers=4)
    two = JournalProcessor(journal, {Channel.ZALO: parse}, inbox, workers=4)
    handled = await asyncio.gather(one.process_pending(), two.process_pending())
    assert handled[0] + handled[1] >= 6  # no lease between processes: both may take one
    assert await journal.pending() == []  # none failed: the duplicates were recognised
    stored: list[str] = []
    an_tickets = 0
    for t in await conv.open_conversations():
        ins = [
            m.external_id or "" for m in await conv.messages(t.code) if m.direction is Direction.IN
        ]
        stored += ins
        an_tickets += t.caller == "an"
    assert sorted(stored) == sorted(["m1", *(f"b{n}" for n in range(6))])  # each once
    assert an_tickets == 1


async def test_an_integrity_race_escaping_the_store_is_received_again_as_a_duplicate(
    journal: SqlEventJournal,
) -> None:
    class RacingSink(SlowSink):
        async def receive(self, message: InboundMessage) -> Received:
            if not self.got:
                self.got.append(message)
                raise IntegrityError("INSERT INTO messages", {}, Exception("unique violation"))
            self.got.append(message)
            return Received("1022-20261207-000001", created=False, duplicate=True)

    await journal.append(Channel.ZALO, "e1", payload(("an", "m1")))
    sink = RacingSink()
    proc = JournalProcessor(journal, {Channel.ZALO: parse}, sink)
    assert await proc.process_pending() == 1
    assert [m.external_id for m in sink.got] == ["m1", "m1"]
    assert await journal.pending() == []


async def test_stopping_lets_events_under_way_finish_and_leaves_the_rest_pending(
    journal: SqlEventJournal,
) -> None:
    for n in range(3):
        await journal.append(Channel.ZALO, f"e{n}", payload((f"c{n}", f"m{n}")))
    sink = SlowSink()
    sink.gate.clear()
    proc = JournalProcessor(journal, {Channel.ZALO: parse}, sink)
    runner = asyncio.create_task(proc.run(interval_s=0.05, grace_s=DEADLINE_S))
    await wait_for(lambda: sink.entered == 3, "three under way")
    runner.cancel()
    await asyncio.sleep(0)
    sink.gate.set()  # they finish within the grace
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert len(sink.got) == 3 and await journal.pending() == []

    await journal.append(Channel.ZALO, "e9", payload(("c9", "m9")))
    stuck = SlowSink()
    stuck.gate.clear()
    proc = JournalProcessor(journal, {Channel.ZALO: parse}, stuck)
    runner = asyncio.create_task(proc.run(interval_s=0.05, grace_s=0.01))
    await wait_for(lambda: stuck.entered == 1, "one under way")
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert proc.in_flight == 0 and stuck.got == []
    # never marked done: the next start takes it again
    assert [e.external_id for e in await journal.pending()] == ["e9"]
    again = SlowSink()
    assert await JournalProcessor(journal, {Channel.ZALO: parse}, again).process_pending() == 1
    assert [m.external_id for m in again.got] == ["m9"]


class GatedJournal(SqlEventJournal):
    """A journal whose marks wait for ``gate`` (the first one only when ``first_only``) and
    whose batches are recorded; ``fail`` makes a mark fail as when the database is away."""

    def __init__(self, inner: SqlEventJournal) -> None:
        super().__init__(inner.engine)
        self.gate = asyncio.Event()
        self.batches: list[list[int]] = []
        self.fail = False

    async def done_many(self, event_ids: Iterable[int]) -> None:
        ids = list(event_ids)
        self.batches.append(ids)
        await self.gate.wait()
        if self.fail:
            raise StoreError("event journal: the database is away")
        await super().done_many(ids)


async def test_given_events_finishing_while_one_is_marked_then_they_are_marked_in_one_batch(
    journal: SqlEventJournal,
) -> None:
    for n in range(6):
        await journal.append(Channel.ZALO, f"e{n}", payload((f"c{n}", f"m{n}")))
    gated = GatedJournal(journal)
    proc = JournalProcessor(gated, {Channel.ZALO: parse}, SlowSink(), workers=6)
    started = await proc.dispatch()
    # the first to finish writes its mark alone; the five others wait behind it
    await wait_for(lambda: sum(map(len, gated.batches)) + len(proc._done_ids) == 6, "all done")
    assert len(gated.batches) == 1 and len(gated.batches[0]) == 1
    gated.gate.set()
    await asyncio.wait(started)
    assert all(t.result() for t in started)
    assert [len(b) for b in gated.batches] == [1, 5]
    assert len({i for b in gated.batches for i in b}) == 6
    assert await journal.pending() == []


async def test_given_a_batch_that_cannot_be_marked_then_all_its_events_stay_pending(
    journal: SqlEventJournal,
) -> None:
    for n in range(4):
        await journal.append(Channel.ZALO, f"e{n}", payload((f"c{n}", f"m{n}")))
    gated = GatedJournal(journal)
    gated.fail = True
    sink = SlowSink()
    proc = JournalProcessor(gated, {Channel.ZALO: parse}, sink, workers=4)
    started = await proc.dispatch()
    await wait_for(lambda: len(sink.got) == 4, "all four received")
    gated.gate.set()
    await asyncio.wait(started)
    assert [t.result() for t in started] == [False] * 4
    assert len(await journal.pending()) == 4  # taken again later, found stored by the inbox
    gated.fail = False
    assert await proc.process_pending() == 4
    assert await journal.pending() == []
