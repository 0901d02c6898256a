"""The synthetic year: exact counts, unique codes, a hotline's shape, seeds, both databases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reports_bench import PG_ADMIN_DSN, bench_one
from reports.synth import (
    BASE_COLUMNS,
    EXTRA_COLUMNS,
    Row,
    SynthYear,
    allocate,
    columns,
    day_weights,
    synthesize,
)
from tickets.codes import CODE_RE, CounterRow, format_code
from tickets.sql import SqlTicketStore, T
from tongdai.clock import VN_TZ
from tongdai.db import make_engine, migrate

COLS = columns(True)


def rows_of(calls: int, seed: int = 1) -> list[Row]:
    return [r for b in SynthYear(calls, 2026, seed=seed, batch=700).batches() for r in b]


@pytest.fixture(scope="module")
def year_rows() -> list[Row]:
    return rows_of(20_000)


def col(row: Row, name: str) -> object:
    return row[COLS.index(name)]


def test_given_weights_when_allocating_then_counts_sum_exactly() -> None:
    assert allocate(10, [1.0, 1.0, 1.0]) == [4, 3, 3]
    weights = [w for _, w in day_weights(2026)]
    for total in (0, 1, 365, 999_999):
        assert sum(allocate(total, weights)) == total


def test_given_a_count_when_generating_then_exactly_that_many_in_batches() -> None:
    batches = list(SynthYear(2_345, 2026, batch=1_000).batches())
    assert [len(b) for b in batches] == [1_000, 1_000, 345]
    assert all(len(r) == len(COLS) for b in batches for r in b)
    no_extras = next(SynthYear(10, 2026, extras=False).batches())
    assert len(no_extras[0]) == len(BASE_COLUMNS) == len(COLS) - len(EXTRA_COLUMNS)


def test_given_a_year_then_codes_are_unique_and_count_up_each_day(year_rows: list[Row]) -> None:
    codes = [str(r[0]) for r in year_rows]
    assert len(set(codes)) == len(codes)
    assert all(CODE_RE.match(c) for c in codes)
    by_day: dict[str, list[int]] = {}
    for row in year_rows:
        started = col(row, "started_at")
        assert isinstance(started, datetime)
        day = started.astimezone(VN_TZ).strftime("%Y%m%d")
        assert str(row[0]).startswith(f"1022-{day}-")  # the code's day is the Vietnam day
        by_day.setdefault(day, []).append(int(str(row[0])[14:]))
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_day.values())
    assert min(by_day) == "20260101" and max(by_day) == "20261231"


def test_given_a_year_then_weekdays_and_office_hours_dominate(year_rows: list[Row]) -> None:
    per_weekday: Counter[int] = Counter()
    per_hour: Counter[int] = Counter()
    for row in year_rows:
        started = col(row, "started_at")
        assert isinstance(started, datetime)
        local = started.astimezone(VN_TZ)
        per_weekday[local.weekday()] += 1
        per_hour[local.hour] += 1
    weekday_avg = sum(per_weekday[d] for d in range(5)) / 5
    weekend_avg = (per_weekday[5] + per_weekday[6]) / 2
    assert 0.1 < weekend_avg / weekday_avg < 0.35
    assert per_weekday[0] > per_weekday[4]  # Mondays are busier than Fridays
    for peak in (8, 9, 10, 14, 15):
        assert per_hour[peak] > 10 * max(per_hour[h] for h in range(0, 5))
    assert per_hour[9] > per_hour[12] and per_hour[15] > per_hour[12]  # lunch dip


def test_given_a_year_then_outcomes_and_times_are_plausible(year_rows: list[Row]) -> None:
    n = len(year_rows)
    outcomes = Counter(str(col(r, "outcome")) for r in year_rows)
    share = {k: v / n for k, v in outcomes.items()}
    assert 0.55 < share["answered"] < 0.65 and 0.17 < share["self_service"] < 0.23
    assert 0.06 < share["abandoned_queue"] < 0.10 and 0.05 < share["abandoned_ivr"] < 0.09
    assert 0.015 < share["message_left"] < 0.045 and 0 < share["closed_hours"] < 0.04
    answered = [r for r in year_rows if col(r, "outcome") == "answered"]
    waits = [
        (col(r, "answered_at") - col(r, "queued_at")).total_seconds()  # type: ignore[operator]
        for r in answered
    ]
    assert 0.75 < sum(w <= 20 for w in waits) / len(waits) < 0.97
    talks = sorted(
        (col(r, "ended_at") - col(r, "answered_at")).total_seconds()  # type: ignore[operator]
        for r in answered
    )
    assert 120 < talks[len(talks) // 2] < 240
    assert {col(r, "agent") for r in answered} == {f"agent{n}" for n in range(101, 141)}
    assert all(col(r, "queue") == col(r, "category") for r in answered)
    rated = [col(r, "satisfaction") for r in answered if col(r, "satisfaction") is not None]
    assert 0.25 < len(rated) / len(answered) < 0.35 and set(rated) <= {1, 2, 3, 4, 5}
    statuses = Counter(str(col(r, "status")) for r in year_rows)
    assert statuses["closed"] / n > 0.97
    complaints = [r for r in answered if col(r, "category") == "phan_anh"]
    assert complaints and all(col(r, "due_at") is not None for r in complaints)


def test_given_a_seed_then_the_same_rows_and_another_seed_differs() -> None:
    assert rows_of(1_500, seed=7) == rows_of(1_500, seed=7)
    assert rows_of(1_500, seed=7) != rows_of(1_500, seed=8)


async def test_given_a_database_when_synthesizing_twice_then_all_rows_and_fresh_codes(
    db_url: str,
) -> None:
    await migrate(db_url)
    engine = make_engine(db_url)
    try:
        seen: list[int] = []
        first = await synthesize(engine, 2_000, 2026, seed=3, batch=600, on_progress=seen.append)
        assert seen == [600, 600, 600, 200] and first.extras
        assert first.method == ("copy" if engine.dialect.name == "postgresql" else "insert")
        await synthesize(engine, 1_000, 2026, seed=4, batch=600)
        counters = CounterRow.__table__
        async with engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(T))).scalar_one()
            codes = (await conn.execute(select(func.count(T.c.code.distinct())))).scalar_one()
            rated = (
                await conn.execute(select(func.count()).where(T.c.satisfaction.is_not(None)))
            ).scalar_one()
            last = (
                await conn.execute(
                    select(counters.c.last).where(counters.c.day == "20260316")  # a Monday
                )
            ).scalar_one()
            stored = (
                await conn.execute(select(T).where(T.c.code == format_code("20260316", 1)))
            ).one()
        assert total == codes == 3_000 and rated > 0
        expected = next(r for r in rows_of_db(3) if r[0] == format_code("20260316", 1))
        assert tuple(getattr(stored, c) for c in COLS) == expected
        # a real call on that day gets the next code, not one the synthetic year used
        ticket = await SqlTicketStore(engine).open(
            channel="voice",
            caller=None,
            uniqueid=None,
            started_at=datetime(2026, 3, 16, 3, 0, tzinfo=UTC),
        )
        assert ticket.code == format_code("20260316", last + 1)
    finally:
        await engine.dispose()


def rows_of_db(seed: int) -> list[Row]:
    return [r for b in SynthYear(2_000, 2026, seed=seed, batch=600).batches() for r in b]


async def test_given_copy_on_sqlite_then_value_error() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        with pytest.raises(ValueError, match="method"):
            await synthesize(engine, 1, 2026, method="copy")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_given_a_stub_report_when_benchmarking_then_timed_and_database_removed(
    kind: str,
) -> None:
    periods: list[tuple[datetime, datetime]] = []
    databases: set[str | None] = set()

    async def compute(engine: AsyncEngine, start: datetime, end: datetime) -> int:
        periods.append((start, end))
        databases.add(engine.url.database)
        async with engine.connect() as conn:
            query = select(func.count()).where(T.c.started_at >= start, T.c.started_at < end)
            return int((await conn.execute(query)).scalar_one())

    result = await bench_one(kind, 400, runs=2, progress=False, compute=compute)
    assert (result.db, result.calls) == (kind, 400)
    assert 0 <= result.month_s.min <= result.month_s.median
    march = (datetime(2026, 3, 1, tzinfo=VN_TZ), datetime(2026, 4, 1, tzinfo=VN_TZ))
    year = (datetime(2026, 1, 1, tzinfo=VN_TZ), datetime(2027, 1, 1, tzinfo=VN_TZ))
    assert periods == [march, march, year, year]
    if kind == "postgres":
        (name,) = databases
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            left = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name)
        finally:
            await conn.close(timeout=10)
        assert str(name).startswith("tongdai_bench_") and left == 0
