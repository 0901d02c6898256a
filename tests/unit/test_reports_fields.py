"""The ticket fields the reports need (migration 0002): satisfaction, after-call work, due
date, resolution time; on the memory store, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text

from reports.kpi import ReportQueries
from tickets.memory import MemoryTicketStore
from tickets.model import Status
from tickets.sql import SqlTicketStore, T, open_store
from tickets.store import TicketStore
from tongdai.db import alembic_config

T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NEW_COLUMNS = {"satisfaction", "acw_seconds", "due_at", "resolved_at"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BACKENDS)
async def clocked(
    request: pytest.FixtureRequest, make_db_url: Callable[[str], str]
) -> AsyncIterator[tuple[TicketStore, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryTicketStore(clock=clock), clock
        return
    opened = await open_store(make_db_url(request.param))
    store = SqlTicketStore(opened.engine, owns_engine=True, clock=clock)
    try:
        yield store, clock
    finally:
        await store.close()


async def test_the_new_fields_are_stored_and_read_back(
    clocked: tuple[TicketStore, Clock],
) -> None:
    store, _ = clocked
    code = (await store.open(channel="voice", caller=None, uniqueid="u1", started_at=T0)).code
    due = T0 + timedelta(days=15)
    await store.update(code, satisfaction=4, acw_seconds=35, due_at=due)
    ticket = await store.get(code)
    assert ticket is not None
    assert (ticket.satisfaction, ticket.acw_seconds, ticket.due_at) == (4, 35, due)
    assert ticket.resolved_at is None
    listed = await store.list(since=T0)
    assert listed[0].due_at == due and listed[0].satisfaction == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"satisfaction": 0}, "satisfaction: 0 is out of range"),
        ({"satisfaction": 6}, "satisfaction: 6 is out of range"),
        ({"satisfaction": "5"}, "satisfaction: expected a whole number"),
        ({"satisfaction": True}, "satisfaction: expected a whole number"),
        ({"acw_seconds": -1}, "acw_seconds: -1 is out of range"),
        ({"acw_seconds": 2.5}, "acw_seconds: expected a whole number"),
        ({"due_at": datetime(2026, 5, 20)}, "due_at: naive datetime"),
        ({"resolved_at": "2026-05-20"}, "resolved_at: expected a datetime"),
    ],
)
async def test_bad_values_are_refused_with_the_field_named(
    clocked: tuple[TicketStore, Clock], changes: dict[str, object], message: str
) -> None:
    store, _ = clocked
    code = (await store.open(channel="voice", caller=None, uniqueid=None, started_at=T0)).code
    with pytest.raises(ValueError, match=message):
        await store.update(code, **changes)


async def test_resolving_sets_resolved_at_and_reopening_clears_it(
    clocked: tuple[TicketStore, Clock],
) -> None:
    store, clock = clocked
    code = (await store.open(channel="voice", caller=None, uniqueid=None, started_at=T0)).code
    clock.now = T0 + timedelta(hours=5)
    resolved = await store.set_status(code, Status.RESOLVED, by="an")
    assert resolved.resolved_at == T0 + timedelta(hours=5)
    clock.now = T0 + timedelta(hours=6)
    reopened = await store.set_status(code, Status.IN_PROGRESS, by="an")
    assert reopened.resolved_at is None
    clock.now = T0 + timedelta(hours=9)
    await store.set_status(code, Status.RESOLVED, by="an")
    clock.now = T0 + timedelta(hours=10)
    closed = await store.set_status(code, Status.CLOSED, by="an")
    assert closed.resolved_at == T0 + timedelta(hours=9)  # closing keeps when it was resolved


def _columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("tickets")}


def _indexes(connection: Connection) -> set[str]:
    return {str(i["name"]) for i in inspect(connection).get_indexes("tickets")}


def _move(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    if revision == "head":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


async def test_migration_0002_goes_down_and_up_again(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        code = (await store.open(channel="voice", caller=None, uniqueid=None, started_at=T0)).code
        async with store.engine.begin() as conn:
            assert await conn.run_sync(_columns) >= NEW_COLUMNS
            assert "ix_tickets_category_started_at" in await conn.run_sync(_indexes)
            await conn.run_sync(_move, "0001")
            assert not NEW_COLUMNS & await conn.run_sync(_columns)
            assert "ix_tickets_category_started_at" not in await conn.run_sync(_indexes)
            await conn.run_sync(_move, "head")
            assert await conn.run_sync(_columns) >= NEW_COLUMNS
        ticket = await store.get(code)  # the ticket survived both ways
        assert ticket is not None and ticket.satisfaction is None
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_knows_how_many_days_hours_and_weeks_to_expect(
    make_db_url: Callable[[str], str],
) -> None:
    # 60 calls over 3 days: without the statistics of migration 0002 the planner expects one
    # group per distinct started_at (60), and on a real year sorts a million rows on disk
    store = await open_store(make_db_url("postgres"))
    try:
        for i in range(60):
            at = T0 + timedelta(days=i % 3, minutes=i)
            await store.open(channel="voice", caller=None, uniqueid=None, started_at=at)
        q = ReportQueries("postgresql", T0 - timedelta(days=1), T0 + timedelta(days=5), 20)
        ts = q.ts
        grouped = {
            "day": q.grouped(ts.day(T.c.started_at).label("key")),
            "week": q.grouped(ts.week(T.c.started_at).label("key")),
            "hour_of_week": q.grouped(
                ts.weekday(T.c.started_at).label("w"), ts.hour(T.c.started_at).label("h")
            ),
        }
        async with store.engine.connect() as conn:
            await conn.execute(text("ANALYZE tickets"))
            for name, query in grouped.items():
                sql = query.compile(dialect=store.engine.dialect,
                                    compile_kwargs={"literal_binds": True})  # fmt: skip
                plan = (await conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"))).scalar_one()
                assert plan[0]["Plan"]["Plan Rows"] <= 6, name
    finally:
        await store.close()
