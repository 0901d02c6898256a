"""The report's figures from the known calls of ``test_reports_data``, worked out by hand,
on SQLite and PostgreSQL; empty and one-call periods; Vietnam-time bucketing in SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from test_reports_data import AS_OF, CALLS, END, START, VN, Call, open_loaded, vn

from reports.definitions import DEFINITIONS, markdown
from reports.kpi import STEPS, compute
from reports.model import NONE_KEY, Report
from reports.sqltime import TimeSql
from reports.staffing import erlang_c
from tickets.sql import SqlTicketStore, open_store


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlTicketStore]:
    loaded = await open_loaded(db_url)
    try:
        yield loaded
    finally:
        await loaded.close()


@pytest.fixture
async def report(store: SqlTicketStore) -> Report:
    return await compute(store.engine, START, END, as_of=AS_OF)


# Voice calls started in [2026-05-01 00:00, 2026-06-01 00:00) Vietnam time: calls 1-16 and 21
# (17 is an email, 18 starts a second before the period, 19 exactly at its end, 20 the day
# before).
SUMMARY = {
    "offered": 17,
    "self_service": 2,  # 1, 2
    "entered_queue": 9,  # answered 4 5 6 7 8 15 + abandoned 9 10 + message 11
    "answered": 6,  # 4 5 6 7 8 15
    "abandoned_ivr": 2,  # 3, 21
    "abandoned_queue": 2,  # 9, 10
    "message_left": 1,  # 11
    "closed_hours": 1,  # 12
    "rejected_busy": 1,  # 13 (never entered the queue)
    "callbacks": 0,
    # waits 10 20 30 5 45 8: <= 20 s are 10, 20 (the boundary counts), 5, 8
    "answered_in_sl": 4,
    "service_level": 0.6667,  # 4 / 6
    "asa_seconds": 19.7,  # (10 + 20 + 30 + 5 + 45 + 8) / 6 = 118 / 6 = 19.67
    # talk 120 + 200 + 100 + 60 + 300 + 90 = 870, wrap-up 30 + 0 + 20 + 0 + 60 + 10 = 120
    "aht_seconds": 165.0,  # (870 + 120) / 6
    "abandon_rate": 0.2222,  # 2 / 9
    "occupancy": None,  # no agent state data: n/a
}
COMPLAINTS = {  # phan_anh: calls 6, 8, 15 and the email 17
    "complaints": 4,
    "complaints_resolved": 3,  # 6 (resolved at 24 h), 15 (48 h, then closed), 17 (closed at 96 h)
    "complaints_open": 1,  # 8
    "resolve_hours_median": 48.0,  # 24, 48, 96
    "resolve_hours_mean": 56.0,  # (24 + 48 + 96) / 3
    "complaints_no_due": 1,  # 15
    "overdue_open": 1,  # 8: due 24 h after 2026-05-04 10:30, still open on 2026-06-01
    "resolved_late": 1,  # 17: due at 48 h, closed at 96 h
    "overdue": 2,
}
SATISFACTION = {"satisfaction_count": 5, "satisfaction_mean": 3.6}  # 5 4 2 4 3: 18 / 5


def test_given_the_known_calls_then_the_summary_matches_the_hand_count(report: Report) -> None:
    assert {m.name: m.value for m in report.summary} == SUMMARY
    assert {m.name: m.value for m in report.complaints} == COMPLAINTS
    assert {m.name: m.value for m in report.satisfaction} == SATISFACTION
    assert [r[1:] for r in report.views["satisfaction"].rows] == [
        (0, 0.0), (1, 0.2), (1, 0.2), (2, 0.4), (1, 0.2)
    ]  # fmt: skip
    assert report.figure("occupancy") is None
    assert "ACD" in (report.summary[-1].note or "")
    assert set(report.timings) == {*STEPS, "staffing"}


def test_views_by_queue_category_and_agent(report: Report) -> None:
    queue = report.views["by_queue"]
    assert queue.column("queue") == ["chung", NONE_KEY, "dvc"]  # 7, 7, 3 calls
    chung = queue.row("chung")
    # 4 5 6 9 11 13 15; answered 4 5 6 15 (waits 10 20 30 8); queued all but 13
    assert (chung["offered"], chung["entered_queue"], chung["answered"]) == (7, 6, 4)
    assert (chung["answered_in_sl"], chung["service_level"]) == (3, 0.75)
    assert chung["asa_seconds"] == 17.0  # 68 / 4
    assert chung["aht_seconds"] == 142.5  # (510 talk + 60 wrap-up) / 4
    assert chung["abandon_rate"] == 0.1667  # 1 / 6
    dvc = queue.row("dvc")  # 7 8 10
    assert (dvc["service_level"], dvc["asa_seconds"], dvc["aht_seconds"]) == (0.5, 25.0, 210.0)
    assert dvc["abandon_rate"] == 0.3333
    none = queue.row(NONE_KEY)
    assert (none["offered"], none["service_level"], none["abandon_rate"]) == (7, None, None)

    category = report.views["by_category"]
    assert category.row("phan_anh")["offered"] == 3  # voice only: 6 8 15
    assert category.row("thu_tuc")["aht_seconds"] == 175.0  # (150 + 200) / 2
    assert category.row(NONE_KEY)["offered"] == 9

    agent = report.views["by_agent"]
    an, binh = agent.row("an"), agent.row("binh")
    # an: 4 5 8, waits 10 20 45, handle 150 200 360
    assert (an["answered"], an["answered_in_sl"], an["asa_seconds"]) == (3, 2, 25.0)
    assert (an["aht_seconds"], an["talk_seconds"], an["acw_seconds"]) == (236.7, 620.0, 90.0)
    assert (an["satisfaction_count"], an["satisfaction_mean"], an["occupancy"]) == (2, 4.5, None)
    # binh: 6 7 15, waits 30 5 8, handle 120 60 100
    assert (binh["asa_seconds"], binh["aht_seconds"], binh["satisfaction_mean"]) == (
        14.3, 93.3, 3.0
    )  # fmt: skip


def test_periods_are_grouped_in_vietnam_time(report: Report) -> None:
    by_day = report.views["by_day"]
    assert len(by_day.rows) == 31 and by_day.rows[0][0] == "2026-05-01"
    offered = dict(zip(by_day.column("day"), by_day.column("offered"), strict=True))
    # call 15 starts 2026-05-04 23:30 UTC = 05-05 06:30 in Vietnam; 16 at 05-01 00:00 Vietnam
    assert {d: n for d, n in offered.items() if n} == {
        "2026-05-01": 1, "2026-05-04": 11, "2026-05-05": 1, "2026-05-10": 1, "2026-05-11": 2,
        "2026-05-31": 1,
    }  # fmt: skip
    weeks = report.views["by_week"]
    assert list(zip(weeks.column("week"), weeks.column("offered"), strict=True)) == [
        ("2026-W18", 1), ("2026-W19", 13), ("2026-W20", 2), ("2026-W21", 0), ("2026-W22", 1)
    ]  # fmt: skip
    assert report.views["by_month"].rows[0][:2] == ("2026-05", 17)
    hours = report.views["by_hour"]
    assert hours.row(6)["offered"] == 1 and hours.row(8)["offered"] == 4
    assert sum(int(v or 0) for v in hours.column("offered")) == 17
    heat = report.views["heatmap"]  # rows: hours; columns d1 (Monday) .. d7 (Sunday)
    assert heat.row(9)["d1"] == 4  # 5, 6 on 05-04 and 13, 14 on 05-11
    assert heat.row(6)["d2"] == 1  # call 15, Tuesday in Vietnam (Monday in UTC)
    assert heat.row(23)["d7"] == 1 and heat.row(0)["d5"] == 1  # 21 (Sunday), 16 (Friday)
    assert sum(int(v or 0) for row in heat.rows for v in row[1:]) == 17


def test_staffing_per_hour_of_week_uses_erlang_c(report: Report) -> None:
    staffing = report.views["staffing"]
    assert len(staffing.rows) == 168
    rows = {(r["weekday"], r["hour"]): r for r in staffing.records()}
    monday9 = rows[(1, 9)]
    # Mondays 09:00-10:00 in May 2026: 4 (4, 11, 18, 25); calls 5 and 6 queued: 2 / 4 = 0.5/h
    # AHT (200 + 0 + 100 + 20) / 2 = 160 s -> A = 0.5 * 160 / 3600 = 0.022 Erlang: 1 agent
    # (SL 1 - 0.022 e^(-0.978 * 20/160) = 0.98), 1 / (1 - 0.3 shrinkage) -> 2 to schedule
    assert (monday9["calls_per_hour"], monday9["aht_seconds"]) == (0.5, 160.0)
    assert (monday9["agents"], monday9["agents_with_shrinkage"]) == (1, 2)
    expected = erlang_c(0.5, 3600, 160.0, 0.8, 20, max_occupancy=0.85, shrinkage=0.3)
    assert monday9["service_level"] == round(expected.service_level, 4)
    # Monday 14:00: only a message was left (no handled call) -> the period's AHT, 165 s
    assert rows[(1, 14)]["aht_seconds"] == 165.0 and rows[(1, 14)]["agents"] == 1
    assert rows[(3, 9)]["agents"] == 0  # no call on Wednesdays
    assert "80%" in report.staffing_note and "30%" in report.staffing_note


async def test_given_no_call_in_the_period_then_every_ratio_is_none(
    store: SqlTicketStore,
) -> None:
    report = await compute(store.engine, vn(20, 0), vn(21, 0), as_of=AS_OF)
    figures = {m.name: m.value for m in report.summary}
    assert figures["offered"] == 0
    for name in ("service_level", "asa_seconds", "aht_seconds", "abandon_rate"):
        assert figures[name] is None
    assert report.figure("resolve_hours_median") is None
    assert report.figure("satisfaction_mean") is None
    assert report.views["by_queue"].rows == [] and len(report.views["by_hour"].rows) == 24
    assert {r["agents"] for r in report.views["staffing"].records()} == {0}


async def test_given_one_call_then_its_own_figures(db_url: str) -> None:
    call = Call(1, vn(4, 9, 0), "answered", queue="chung", agent="an", queued=30, wait=12,
                talk=100, category="phan_anh")  # fmt: skip
    store = await open_loaded(db_url, (call,))
    try:
        report = await compute(store.engine, START, END, as_of=AS_OF)
    finally:
        await store.close()
    assert report.figure("offered") == 1 and report.figure("service_level") == 1.0
    assert (report.figure("asa_seconds"), report.figure("aht_seconds")) == (12.0, 100.0)
    assert report.figure("abandon_rate") == 0.0
    assert report.figure("complaints") == 1 and report.figure("resolve_hours_median") is None
    assert report.figure("complaints_no_due") == 1 and report.figure("overdue") == 0


async def test_a_bad_period_or_threshold_is_refused(store: SqlTicketStore) -> None:
    with pytest.raises(ValueError, match="empty"):
        await compute(store.engine, END, START)
    with pytest.raises(ValueError, match="naive"):
        await compute(store.engine, datetime(2026, 5, 1), END)
    with pytest.raises(ValueError, match="target"):
        await compute(store.engine, START, END, sl_target=1.5)


async def _keys(engine: AsyncEngine, at: datetime) -> tuple[object, ...]:
    ts = TimeSql(engine.dialect.name)
    from tickets.sql import T

    query = select(
        ts.day(T.c.started_at), ts.week(T.c.started_at), ts.month(T.c.started_at),
        ts.hour(T.c.started_at), ts.weekday(T.c.started_at),
    ).where(T.c.started_at == at)  # fmt: skip
    async with engine.connect() as conn:
        return tuple((await conn.execute(query)).one())


async def test_sql_time_keys_match_python_for_year_boundaries(db_url: str) -> None:
    # ISO weeks are tricky around new year: 2026-12-31 is in 2026-W53, 2027-01-03 too
    days = [date(2020, 12, 31), date(2021, 1, 3), date(2021, 1, 4), date(2024, 12, 30),
            date(2026, 12, 31), date(2027, 1, 3), date(2027, 1, 4), date(2028, 1, 1)]  # fmt: skip
    store = await open_store(db_url)
    try:
        stamps = [datetime(d.year, d.month, d.day, h, 59, tzinfo=VN) for d in days for h in (0, 23)]
        for at in stamps:
            await store.open(channel="voice", caller=None, uniqueid=None, started_at=at)
        for at in stamps:
            local = at.astimezone(VN)
            iso = local.isocalendar()
            assert await _keys(store.engine, at.astimezone(UTC)) == (
                f"{local:%Y-%m-%d}", f"{iso.year}-W{iso.week:02d}", f"{local:%Y-%m}",
                local.hour, local.isoweekday(),
            ), at  # fmt: skip
    finally:
        await store.close()


def test_every_kpi_column_has_a_published_definition(report: Report) -> None:
    names = {m.name for m in report.summary}
    assert names - {"answered_in_sl"} <= set(DEFINITIONS)
    for d in DEFINITIONS.values():
        assert d.vi and d.en and d.text_vi and d.text_en
    assert "Asterisk" in DEFINITIONS["service_level"].text_en
    table = markdown().splitlines()
    assert len(table) == 2 + len(DEFINITIONS)
    assert table[2].startswith("| **Cuộc gọi đến** / Calls offered | Mọi cuộc gọi thoại")


def test_the_period_end_is_exclusive_and_the_start_inclusive() -> None:
    included = [c.n for c in CALLS if c.channel == "voice" and START <= c.started < END]
    assert 16 in included and 21 in included
    assert not {18, 19, 20} & set(included)
    assert len(included) == SUMMARY["offered"]
    assert timedelta(days=31) == END - START
