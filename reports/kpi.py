"""The report's figures, aggregated in SQL: one ``GROUP BY`` query per view, no Python loop
over ticket rows (``compute`` is what the CLI, the web app and the benchmark call).

Every view uses the same aggregate list (``_aggregates``): counts with ``FILTER`` clauses per
outcome, and sums of waits and handle times, so a view row and the summary are built the same
way (``reports.views``) and agree with each other. Calls are ``channel = 'voice'`` tickets with
``started_at`` in [start, end). Complaints count tickets of category ``phan_anh`` on every
channel. Indexes: ``ix_tickets_started_at`` for the period's calls (a sequential scan for a
year), ``ix_tickets_category_started_at`` for complaints; on PostgreSQL the extended statistics
of migration 0002 let the planner hash the day/week/month/hour groups.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement, Label
from sqlalchemy.sql.selectable import Subquery

from agencies.forwards import OPEN_STATES
from agencies.sql import F
from reports.model import Report
from reports.sqltime import Expr, TimeSql
from reports.views import (
    agency_table,
    agent_table,
    channel_table,
    complaint_metrics,
    period_tables,
    satisfaction_parts,
    summary_metrics,
    table_by_key,
)
from tickets.sql import H, T
from tongdai.clock import as_utc
from tongdai.db import DB_ERRORS, describe, store_error

#: the channel of calls (``tickets.channel``); other channels are messages
VOICE = "voice"
#: the category of complaints
COMPLAINT = "phan_anh"
#: outcome counted as a callback once the ACD offers them (not in ``tickets.model.Outcome`` yet)
CALLBACK = "callback"

#: ``progress(step_name)`` is called after each query (for the CLI's progress bar)
Progress = Callable[[str], None]
#: the queries ``compute`` runs, in order (``len(STEPS)`` progress calls)
STEPS = (
    "summary",
    "by_queue",
    "by_category",
    "by_agent",
    "by_hour",
    "by_day",
    "by_week",
    "by_month",
    "hour_of_week",
    "complaints",
    "complaint_median",
    "satisfaction",
    "by_channel",
    "channel_median",
    "by_agency",
    "agency_median",
)


def _count(condition: ColumnElement[bool] | None = None) -> ColumnElement[int]:
    return func.count() if condition is None else func.count().filter(condition)


def _aggregates(ts: TimeSql, sl_seconds: int) -> list[Label[Any]]:
    """The figures of a group of calls; ``reports.views.figures`` turns them into KPIs."""
    c = T.c
    answered = c.outcome == "answered"
    # calls whose queue wait is known: the ASA/SL denominators (= answered in normal data)
    timed = and_(answered, c.queued_at.is_not(None), c.answered_at.is_not(None))
    handled = and_(answered, c.answered_at.is_not(None), c.ended_at.is_not(None))
    wait = ts.seconds(c.answered_at, c.queued_at)
    talk = ts.seconds(c.ended_at, c.answered_at)
    by_outcome = {
        name: _count(c.outcome == name)
        for name in (
            "self_service",
            "answered",
            "abandoned_ivr",
            "abandoned_queue",
            "message_left",
            "closed_hours",
            "rejected_busy",
        )
    }
    return [
        _count().label("offered"),
        _count(c.queued_at.is_not(None)).label("entered_queue"),
        *(count.label(name) for name, count in by_outcome.items()),
        _count(c.outcome == CALLBACK).label("callbacks"),
        _count(timed).label("wait_count"),
        func.sum(wait).filter(timed).label("wait_sum"),
        _count(and_(timed, wait <= literal_column(str(int(sl_seconds))))).label("in_sl"),
        _count(handled).label("handled"),
        func.sum(talk).filter(handled).label("talk_sum"),
        func.sum(c.acw_seconds).filter(handled).label("acw_sum"),
        func.count(c.satisfaction).label("sat_count"),
        func.sum(c.satisfaction).label("sat_sum"),
    ]


def _resolved_at() -> Expr:
    """When a resolved/closed ticket was resolved: the column, else its status history."""
    last_resolved = (
        select(func.max(H.c.at))
        .where(H.c.ticket_id == T.c.id, H.c.to_status == "resolved")
        .scalar_subquery()
    )
    first_closed = (
        select(func.min(H.c.at))
        .where(H.c.ticket_id == T.c.id, H.c.to_status == "closed")
        .scalar_subquery()
    )
    return case(
        (
            T.c.status.in_(("resolved", "closed")),
            func.coalesce(T.c.resolved_at, last_resolved, first_closed),
        ),
        else_=None,
    )


class ReportQueries:
    """The SQL of one report: period, dialect, service-level threshold (public so tests and
    benchmarks can ``EXPLAIN`` the very queries ``compute`` runs)."""

    def __init__(self, dialect: str, start: datetime, end: datetime, sl_seconds: int) -> None:
        self.ts = TimeSql(dialect)
        self.start, self.end = start, end
        self.aggs = _aggregates(self.ts, sl_seconds)
        started = T.c.started_at
        self.in_period = and_(started >= start, started < end)
        self.calls = and_(self.in_period, T.c.channel == VOICE)

    def grouped(self, *keys: Label[Any], where: ColumnElement[bool] | None = None) -> Select[Any]:
        condition = self.calls if where is None else and_(self.calls, where)
        query = select(*keys, *self.aggs).where(condition)
        return query.group_by(*keys) if keys else query

    def complaints(self, as_of: datetime) -> Select[Any]:
        resolved = _resolved_at()
        due = T.c.due_at
        return select(
            _count().label("count"),
            func.count(resolved).label("resolved"),
            _count(due.is_(None)).label("no_due"),
            _count(and_(due.is_not(None), resolved.is_(None), due < as_of)).label("overdue_open"),
            _count(and_(due.is_not(None), resolved > due)).label("resolved_late"),
            func.avg(self.ts.seconds(resolved, T.c.started_at)).label("mean_s"),
        ).where(self.in_period, T.c.category == COMPLAINT)

    def complaint_median(self) -> Select[Any]:
        """Median time to resolve, in SQL on both backends (SQLite has no percentile_cont):
        the mean of the middle one or two values by ``row_number``."""
        resolved = _resolved_at()
        values = (
            select(self.ts.seconds(resolved, T.c.started_at).label("v"))
            .where(self.in_period, T.c.category == COMPLAINT, resolved.is_not(None))
            .subquery()
        )
        ranked = select(
            values.c.v,
            func.row_number().over(order_by=values.c.v).label("rn"),
            func.count().over().label("n"),
        ).subquery()
        one, two = literal_column("1", Integer), literal_column("2", Integer)
        middle = ((ranked.c.n + one) // two, (ranked.c.n + two) // two)
        return select(func.avg(ranked.c.v).label("median_s")).where(ranked.c.rn.in_(middle))

    def _first_response(self) -> Expr:
        """Seconds to the first answer by a person: for a call, its wait in the queue; for a
        message conversation, from its first message to the first agent reply."""
        c = T.c
        return case(
            (c.channel == VOICE, self.ts.seconds(c.answered_at, c.queued_at)),
            else_=self.ts.seconds(c.answered_at, c.started_at),
        )

    def by_channel(self) -> Select[Any]:
        """Every channel's contacts: volume, answered by a person, self-served, abandoned
        (calls: hung up in the menu or the queue; messages: left before any reply), messages
        left, first response (mean), resolved and time to resolve (mean)."""
        c = T.c
        resolved = _resolved_at()
        first = self._first_response()
        answered = c.answered_at.is_not(None)
        timed = and_(answered, first.is_not(None))
        abandoned = or_(
            c.outcome.in_(("abandoned_ivr", "abandoned_queue")),
            and_(
                c.channel != VOICE,
                c.answered_at.is_(None),
                c.outcome.is_(None),
                c.status == "closed",
            ),
        )
        return (
            select(
                c.channel.label("key"),
                _count().label("contacts"),
                _count(answered).label("answered"),
                _count(c.outcome == "self_service").label("self_service"),
                _count(abandoned).label("abandoned"),
                _count(c.outcome == "message_left").label("message_left"),
                _count(timed).label("first_count"),
                func.sum(first).filter(timed).label("first_sum"),
                func.count(resolved).label("resolved"),
                func.sum(self.ts.seconds(resolved, c.started_at)).label("resolve_sum"),
            )
            .where(self.in_period)
            .group_by(c.channel)
        )

    def channel_median(self) -> Select[Any]:
        """The median first response per channel (as ``complaint_median``, partitioned)."""
        first = self._first_response()
        values = (
            select(T.c.channel.label("key"), first.label("v"))
            .where(self.in_period, T.c.answered_at.is_not(None), first.is_not(None))
            .subquery()
        )
        return _median_per_key(values)

    def by_agency(self, now: datetime) -> Select[Any]:
        """Per agency, the forwards made in the period: answered (on time or late), sent
        back, still open past their deadline at ``now``; the sum of hours to answer."""
        f = F.c
        answered = f.answered_at.is_not(None)
        open_late = and_(f.state.in_([s.value for s in OPEN_STATES]), f.due_at < now)
        took = self.ts.seconds(f.answered_at, f.forwarded_at)
        return (
            select(
                f.agency_id.label("key"),
                _count().label("forwarded"),
                _count(answered).label("answered"),
                _count(and_(answered, f.answered_at <= f.due_at)).label("on_time"),
                _count(and_(answered, f.answered_at > f.due_at)).label("late"),
                _count(open_late).label("overdue_open"),
                _count(f.state == "sent_back").label("sent_back"),
                func.sum(took).filter(answered).label("answer_sum"),
            )
            .where(f.forwarded_at >= self.start, f.forwarded_at < self.end)
            .group_by(f.agency_id)
        )

    def agency_median(self) -> Select[Any]:
        """The median time to answer per agency (as ``channel_median``)."""
        f = F.c
        values = (
            select(
                f.agency_id.label("key"), self.ts.seconds(f.answered_at, f.forwarded_at).label("v")
            )
            .where(f.forwarded_at >= self.start, f.forwarded_at < self.end)
            .where(f.answered_at.is_not(None))
            .subquery()
        )
        return _median_per_key(values)

    def satisfaction(self) -> Select[Any]:
        score = T.c.satisfaction
        columns: list[ColumnElement[Any]] = [
            func.count(score).label("count"),
            func.sum(score).label("total"),
            *(_count(score == n).label(f"s{n}") for n in range(1, 6)),
        ]
        return select(*columns).where(self.calls)


async def _rows(conn: AsyncConnection, query: Select[Any]) -> list[dict[str, Any]]:
    """The rows of an aggregate query (a few hundred at most), as plain dicts."""
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def compute(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    *,
    sl_seconds: int = 20,
    sl_target: float = 0.8,
    max_occupancy: float | None = 0.85,
    shrinkage: float = 0.3,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    agency_names: Mapping[str, str] | None = None,
) -> Report:
    """The report of calls started in [start, end) (timezone-aware datetimes).

    ``sl_seconds``/``sl_target``: the service level's T and target. ``max_occupancy`` and
    ``shrinkage`` go to the Erlang C staffing forecast. ``as_of`` (default now) decides
    which complaint due dates have passed. ``agency_names``: the agencies' names for the
    per-agency table (ids when missing). Raises ``StoreError`` if the database fails and
    ``ValueError`` for an empty or inverted period or a bad threshold.
    """
    start, end = as_utc(start, "start"), as_utc(end, "end")
    if end <= start:
        raise ValueError(f"the period is empty: {start.isoformat()} .. {end.isoformat()}")
    if sl_seconds < 0 or not 0 < sl_target <= 1:
        raise ValueError(f"service level: need T >= 0 s and 0 < target <= 1 ({sl_target})")
    now = as_utc(as_of, "as_of") if as_of is not None else datetime.now(UTC)
    q = ReportQueries(engine.dialect.name, start, end, sl_seconds)
    ts, c = q.ts, T.c
    timings: dict[str, float] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    queries: dict[str, Select[Any]] = {
        "summary": q.grouped(),
        "by_queue": q.grouped(c.queue.label("key")),
        "by_category": q.grouped(c.category.label("key")),
        "by_agent": q.grouped(c.agent.label("key"), where=c.agent.is_not(None)),
        "by_hour": q.grouped(ts.hour(c.started_at).label("key")),
        "by_day": q.grouped(ts.day(c.started_at).label("key")),
        "by_week": q.grouped(ts.week(c.started_at).label("key")),
        "by_month": q.grouped(ts.month(c.started_at).label("key")),
        "hour_of_week": q.grouped(
            ts.weekday(c.started_at).label("weekday"), ts.hour(c.started_at).label("hour")
        ),
        "complaints": q.complaints(now),
        "complaint_median": q.complaint_median(),
        "satisfaction": q.satisfaction(),
        "by_channel": q.by_channel(),
        "channel_median": q.channel_median(),
        "by_agency": q.by_agency(now),
        "agency_median": q.agency_median(),
    }
    try:
        async with engine.connect() as conn:
            for name, query in queries.items():
                began = time.perf_counter()
                results[name] = await _rows(conn, query)
                timings[name] = time.perf_counter() - began
                if progress is not None:
                    progress(name)
    except DB_ERRORS as exc:
        raise store_error(f"report ({describe(engine.url)})", exc) from exc

    summary = summary_metrics(results["summary"][0], sl_seconds)
    views = {
        "by_queue": table_by_key("by_queue", results["by_queue"], sl_seconds),
        "by_category": table_by_key("by_category", results["by_category"], sl_seconds),
        "by_agent": agent_table(results["by_agent"], sl_seconds),
        **period_tables(results, start, end, sl_seconds),
    }
    sat_metrics, sat_table = satisfaction_parts(results["satisfaction"][0])
    views["satisfaction"] = sat_table
    views["by_channel"] = channel_table(results["by_channel"], results["channel_median"])
    views["by_agency"] = agency_table(
        results["by_agency"], results["agency_median"], agency_names or {}
    )

    from reports.forecast import staffing_table  # needs reports.staffing (Erlang C)

    began = time.perf_counter()
    staffing, note = staffing_table(
        results["hour_of_week"],
        start,
        end,
        sl_seconds=sl_seconds,
        sl_target=sl_target,
        max_occupancy=max_occupancy,
        shrinkage=shrinkage,
    )
    timings["staffing"] = time.perf_counter() - began
    if staffing is not None:
        views["staffing"] = staffing
    return Report(
        start=start,
        end=end,
        as_of=now,
        sl_seconds=sl_seconds,
        sl_target=sl_target,
        summary=summary,
        complaints=complaint_metrics(results["complaints"][0], results["complaint_median"][0]),
        satisfaction=sat_metrics,
        views=views,
        staffing_note=note,
        max_occupancy=max_occupancy,
        shrinkage=shrinkage,
        timings=timings,
    )


def _median_per_key(values: Subquery) -> Select[Any]:
    """``median_s`` of ``values.v`` per ``values.key``: the middle row (or the mean of the two
    middle rows) by window functions, the same SQL on SQLite and PostgreSQL."""
    ranked = select(
        values.c.key,
        values.c.v,
        func.row_number().over(partition_by=values.c.key, order_by=values.c.v).label("rn"),
        func.count().over(partition_by=values.c.key).label("n"),
    ).subquery()
    one, two = literal_column("1", Integer), literal_column("2", Integer)
    middle = or_(ranked.c.rn == (ranked.c.n + one) // two, ranked.c.rn == (ranked.c.n + two) // two)
    return (
        select(ranked.c.key, func.avg(ranked.c.v).label("median_s"))
        .where(middle)
        .group_by(ranked.c.key)
    )
