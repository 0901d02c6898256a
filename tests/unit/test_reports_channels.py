"""The per-channel view of the report: known tickets on every channel, worked out by hand,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reports.kpi import compute
from tickets.model import Outcome, Status
from tickets.sql import open_store

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
S = timedelta(seconds=1)


async def test_given_calls_chats_and_mails_then_each_channel_has_its_figures(db_url: str) -> None:
    store = await open_store(db_url)
    try:

        async def ticket(channel: str, **changes: object) -> str:
            t = await store.open(channel=channel, caller="x", uniqueid=None, started_at=T0)
            if changes:
                await store.update(t.code, **changes)
            return t.code

        # calls: answered after waits of 10 s and 30 s, one abandoned in the queue
        await ticket("voice", queued_at=T0, answered_at=T0 + 10 * S, outcome=Outcome.ANSWERED)
        await ticket("voice", queued_at=T0, answered_at=T0 + 30 * S, outcome=Outcome.ANSWERED)
        await ticket("voice", queued_at=T0, outcome=Outcome.ABANDONED_QUEUE)
        # chats: first replies after 60, 120 and 300 s; one self-served; one left unanswered
        for wait in (60, 120, 300):
            await ticket("zalo", answered_at=T0 + wait * S, outcome=Outcome.ANSWERED)
        await ticket("zalo", outcome=Outcome.SELF_SERVICE)
        gone = await ticket("zalo")
        await store.set_status(gone, Status.CLOSED, by="agent101")
        # an email answered after an hour, resolved (the clock of the store: now)
        mail = await ticket("email", answered_at=T0 + 3600 * S, outcome=Outcome.ANSWERED)
        await store.set_status(mail, Status.RESOLVED, by="agent101")
        report = await compute(store.engine, T0 - timedelta(days=1), T0 + timedelta(days=1))
    finally:
        await store.close()
    table = report.views["by_channel"]
    assert [r[0] for r in table.rows] == ["Điện thoại 1022", "Zalo", "Thư điện tử"]
    voice, zalo, email = table.records()
    assert (voice["contacts"], voice["answered"], voice["abandoned"]) == (3, 2, 1)
    assert voice["first_response_seconds"] == 20.0
    assert voice["first_response_median_seconds"] == 20.0
    assert (zalo["contacts"], zalo["answered"], zalo["self_service"], zalo["abandoned"]) == (
        5, 3, 1, 1,
    )  # fmt: skip
    assert zalo["first_response_seconds"] == 160.0  # (60 + 120 + 300) / 3
    assert zalo["first_response_median_seconds"] == 120.0
    assert zalo["resolved"] == 1  # the unanswered one was closed
    assert (email["contacts"], email["answered"], email["resolved"]) == (1, 1, 1)
    assert email["first_response_seconds"] == 3600.0
    assert email["resolve_hours"] is not None and email["resolve_hours"] >= 0
