"""A synthetic year of call history for benchmarks and demos (``tongdai synth``).

Calls follow the shape of a provincial hotline: office-hour peaks (08-11 and 14-16 Vietnam
time), quiet nights, weekends at about a fifth of a weekday, dips on public holidays (Tết, 30/4,
1/5, 2/9), a rush before and after Tết, Mondays busier than Fridays and a slow growth over
the year. Outcomes, categories, queue waits (longer when busy), talk times (lognormal around
180 s), agents ``agent101``..``agent140``, caller numbers (some callers call again and again)
and ticket codes ``1022-YYYYMMDD-NNNNNN`` (per-day sequences that continue
``ticket_counters``, which is updated, so later real calls get fresh codes) are all drawn from
one seeded generator: the same seed gives the same rows. The synthetic centre takes calls
07:00-21:00 every day; outside, callers hear the closed message (or leave a message).

Rows go in by batches: PostgreSQL through asyncpg's binary ``COPY`` on the raw connection,
SQLite through SQLAlchemy Core ``insert()`` executemany; generation of the next batch overlaps
the write of the current one. Synthetic tickets have no IVR steps and no status history. The
report columns of migration 0002 (satisfaction, acw_seconds, due_at, resolved_at) are filled
when the table has them.
"""

from __future__ import annotations

import asyncio
import calendar
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any, cast

from sqlalchemy import Table, func, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tickets.codes import CounterRow, format_code
from tickets.sql import T

#: columns every synthetic row fills, in tuple order
BASE_COLUMNS = (
    "code", "channel", "caller", "uniqueid", "started_at", "queued_at", "answered_at",
    "ended_at", "category", "queue", "agent", "outcome", "status",
)  # fmt: skip
#: migration 0002's report columns, filled when present
EXTRA_COLUMNS = ("satisfaction", "acw_seconds", "due_at", "resolved_at")
CATEGORIES = {
    "thu_tuc": 0.30, "tra_cuu_ho_so": 0.22, "phan_anh": 0.12, "dau_tu": 0.05,
    "du_lich": 0.04, "buu_chinh": 0.09, "chung": 0.18,
}  # fmt: skip
#: outcome mix while agents work, and outside those hours
OPEN_MIX = {
    "self_service": 0.20, "answered": 0.626, "abandoned_queue": 0.085, "abandoned_ivr": 0.065,
    "message_left": 0.02, "rejected_busy": 0.003, "error": 0.001,
}  # fmt: skip
CLOSED_MIX = {"self_service": 0.25, "abandoned_ivr": 0.15, "closed_hours": 0.4, "message_left": 0.2}
AGENTS = tuple(f"agent{n}" for n in range(101, 141))
#: relative calls per hour (Vietnam time) on a working day and on a weekend or holiday
WEEKDAY_HOURS = (
    0.3, 0.2, 0.15, 0.15, 0.2, 0.5, 1.5, 5, 10, 11, 10.5, 7,
    3.5, 5, 9, 9.5, 8, 4, 2, 1.5, 1.2, 0.9, 0.6, 0.4,
)  # fmt: skip
WEEKEND_HOURS = (
    0.4, 0.3, 0.2, 0.2, 0.3, 0.6, 1.5, 3, 5, 6, 6, 5,
    3.5, 3.5, 4.5, 5, 4.5, 3.5, 2.5, 2, 1.5, 1.2, 0.8, 0.5,
)  # fmt: skip
#: Monday .. Sunday
WEEKDAY_FACTOR = (1.15, 1.05, 1.0, 0.98, 0.92, 0.22, 0.18)
OPEN_FROM, OPEN_UNTIL = 7, 21
#: public holidays (day factor 0.15); Tết by year (lunar calendar), the rest fixed dates
TET = {2025: (date(2025, 1, 25), 9), 2026: (date(2026, 2, 14), 9), 2027: (date(2027, 2, 3), 9)}
HUNG_KINGS = {2025: date(2025, 4, 7), 2026: date(2026, 4, 27), 2027: date(2027, 4, 16)}
FIXED_HOLIDAYS = ((1, 1), (4, 30), (5, 1), (9, 2))
HOLIDAY_FACTOR = 0.15
#: how long a phan_anh complaint may take (its ``due_at``)
COMPLAINT_DAYS = 10
SATISFACTION = (1, 2, 3, 4, 5)
SATISFACTION_WEIGHTS = (0.06, 0.08, 0.14, 0.30, 0.42)
MOBILE_PREFIXES = (
    "090", "091", "093", "094", "096", "097", "098", "086", "088", "089", "032", "033", "034",
    "035", "036", "037", "038", "039", "070", "076", "077", "078", "079", "081", "082", "083",
)  # fmt: skip
VN_OFFSET = 7 * 3600

Row = tuple[Any, ...]


def holidays(year: int) -> set[date]:
    """Days the offices are closed in ``year`` (Tết known for 2025-2027)."""
    days = {date(year, m, d) for m, d in FIXED_HOLIDAYS}
    if year in TET:
        first, length = TET[year]
        days.update(first + timedelta(days=i) for i in range(length))
    if year in HUNG_KINGS:
        days.add(HUNG_KINGS[year])
    if year == 2026:
        days.add(date(2026, 9, 1))  # bridge day before National Day
    return days


def day_weights(year: int) -> list[tuple[date, float]]:
    """Every day of ``year`` with its relative call volume."""
    closed = holidays(year)
    tet = TET.get(year)
    out: list[tuple[date, float]] = []
    day = date(year, 1, 1)
    while day.year == year:
        weight = WEEKDAY_FACTOR[day.weekday()] * (0.9 + 0.02 * (day.month - 1))
        if day in closed:
            weight = HOLIDAY_FACTOR
        elif tet is not None and 0 < (tet[0] - day).days <= 10:
            weight *= 1.25  # procedures before Tết
        elif tet is not None and 0 <= (day - tet[0]).days - tet[1] < 7:
            weight *= 1.3  # the backlog after Tết
        out.append((day, weight))
        day += timedelta(days=1)
    return out


def allocate(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders): sums exactly."""
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass(frozen=True)
class _Mix:
    names: tuple[str, ...]
    cum: list[float]

    @classmethod
    def of(cls, weights: dict[str, float]) -> _Mix:
        return cls(tuple(weights), list(accumulate(weights.values())))

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.names, cum_weights=self.cum)[0]


class SynthYear:
    """Draws the calls of one year, day by day, from one seeded generator.

    ``batches()`` yields the rows, each a tuple in ``columns(extras)`` order, oldest first;
    ``offsets`` maps ``YYYYMMDD`` to the last ticket number already given out that day (codes
    continue after it) and ``last`` to the last one this generator gave out.
    """

    def __init__(
        self,
        calls: int,
        year: int,
        *,
        seed: int = 1,
        batch: int = 20_000,
        extras: bool = True,
        offsets: dict[str, int] | None = None,
    ) -> None:
        if calls < 0 or batch < 1:
            raise ValueError(f"calls must be >= 0 and batch >= 1, got calls={calls} batch={batch}")
        self.calls, self.year, self.batch = calls, year, batch
        self.rng = random.Random(seed)
        self.extras = extras
        self.offsets = offsets or {}
        self.last: dict[str, int] = {}
        self.year_end = datetime(year + 1, 1, 1, tzinfo=UTC) - timedelta(seconds=VN_OFFSET)
        self.open_mix = _Mix.of(OPEN_MIX)
        self.closed_mix = _Mix.of(CLOSED_MIX)
        self.categories = _Mix.of(CATEGORIES)
        agent_weights = [self.rng.uniform(0.5, 1.5) for _ in AGENTS]
        self.agent_cum = list(accumulate(agent_weights))
        self.regulars = [self._new_number() for _ in range(5000)]
        self.uid = 0

    def _new_number(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return f"0235{rng.randrange(10**7):07d}"  # Quảng Nam landline
        return f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"

    def _caller(self) -> str | None:
        r = self.rng.random()
        if r < 0.01:
            return None  # withheld
        if r < 0.25:
            return self.rng.choice(self.regulars)
        return self._new_number()

    def batches(self) -> Iterator[list[Row]]:
        weights = day_weights(self.year)
        counts = allocate(self.calls, [w for _, w in weights])
        pending: list[Row] = []
        for (day, weight), n in zip(weights, counts, strict=True):
            pending.extend(self.day(day, weight, n))
            while len(pending) >= self.batch:
                yield pending[: self.batch]
                pending = pending[self.batch :]
        if pending:
            yield pending

    def day(self, day: date, weight: float, calls: int) -> list[Row]:
        """The ``calls`` rows of ``day`` (a day factor of 1 is an average weekday)."""
        rng = self.rng
        is_holiday = weight == HOLIDAY_FACTOR
        profile = WEEKEND_HOURS if day.weekday() >= 5 or is_holiday else WEEKDAY_HOURS
        peak = max(profile)
        hours = rng.choices(range(24), cum_weights=list(accumulate(profile)), k=calls)
        seconds = sorted(h * 3600 + rng.randrange(3600) for h in hours)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(seconds=VN_OFFSET)
        epoch0 = calendar.timegm(day.timetuple()) - VN_OFFSET
        stamp = day.strftime("%Y%m%d")
        first = self.offsets.get(stamp, 0) + 1
        rows: list[Row] = []
        for i, sec in enumerate(seconds):
            hour = sec // 3600
            load = profile[hour] / peak * (weight if not is_holiday else 0.3)
            call = self._call(midnight, epoch0, sec, load, OPEN_FROM <= hour < OPEN_UNTIL)
            rows.append((format_code(stamp, first + i), *call))
        if calls:
            self.last[stamp] = first + calls - 1
        return rows

    def _call(self, midnight: datetime, epoch0: int, sec: int, load: float, open_: bool) -> Row:
        """One call without its code: (BASE_COLUMNS[1:] [+ EXTRA_COLUMNS])."""
        rng = self.rng
        self.uid += 1
        started = midnight + timedelta(seconds=sec)
        outcome = (self.open_mix if open_ else self.closed_mix).draw(rng)
        category: str | None = self.categories.draw(rng)
        queue: str | None = None
        queued = answered = None
        agent: str | None = None
        satisfaction = acw = None
        due = resolved = None
        status = "closed"
        if outcome in ("answered", "abandoned_queue", "rejected_busy") or (
            outcome == "message_left" and open_
        ):
            queue = category
            queued = started + timedelta(seconds=12 + int(rng.lognormvariate(3.2, 0.5)))
            end = queued
            if outcome == "answered":
                wait = int(rng.expovariate(1.0 / (3.0 + 9.0 * load)))
                answered = queued + timedelta(seconds=wait)
                talk = min(3600, 15 + int(rng.lognormvariate(5.05, 0.55)))
                end = answered + timedelta(seconds=talk)
                agent = rng.choices(AGENTS, cum_weights=self.agent_cum)[0]
                if self.extras:
                    acw = 10 + int(rng.lognormvariate(3.2, 0.5))
                    if rng.random() < 0.3:
                        satisfaction = rng.choices(SATISFACTION, SATISFACTION_WEIGHTS)[0]
            elif outcome != "rejected_busy":
                end = queued + timedelta(seconds=2 + int(rng.expovariate(1.0 / 45.0)))
        else:
            if outcome == "self_service":
                category = "tra_cuu_ho_so" if rng.random() < 0.8 else "thu_tuc"
                ivr = 30 + rng.lognormvariate(3.9, 0.5)
            elif outcome == "error":
                category, ivr = None, rng.uniform(0, 5)
            else:
                if outcome == "abandoned_ivr" and rng.random() < 0.6:
                    category = None
                ivr = 5 + rng.lognormvariate(3.0, 0.6)
            end = started + timedelta(seconds=int(ivr))
        if category == "phan_anh" and outcome in ("answered", "message_left"):
            took = timedelta(days=rng.lognormvariate(1.1, 0.9))
            if self.extras:
                due = started + timedelta(days=COMPLAINT_DAYS)
            if started + took >= self.year_end:
                status = "in_progress" if rng.random() < 0.7 else "new"
            else:
                resolved = started + took if self.extras else None
                status = (
                    "resolved" if self.year_end - (started + took) < timedelta(days=7) else status
                )
        row: Row = (
            "voice", self._caller(), f"{epoch0 + sec}.{self.uid}", started, queued, answered,
            end, category, queue, agent, outcome, status,
        )  # fmt: skip
        return (*row, satisfaction, acw, due, resolved) if self.extras else row


def columns(extras: bool) -> tuple[str, ...]:
    """The column order of generated rows."""
    return BASE_COLUMNS + EXTRA_COLUMNS if extras else BASE_COLUMNS


@dataclass(frozen=True)
class SynthResult:
    calls: int
    year: int
    seconds: float
    method: str  # "copy" (PostgreSQL) or "insert" (SQLite)
    extras: bool  # whether migration 0002's columns were filled


async def _table_columns(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        cols = await conn.run_sync(lambda c: inspect(c).get_columns("tickets"))
    return {str(c["name"]) for c in cols}


async def _day_offsets(engine: AsyncEngine, year: int) -> dict[str, int]:
    counters = cast(Table, CounterRow.__table__)
    query = select(counters.c.day, counters.c.last).where(
        counters.c.day.between(f"{year}0101", f"{year}1231")
    )
    async with engine.connect() as conn:
        return {str(day): int(last) for day, last in (await conn.execute(query)).all()}


async def _save_counters(engine: AsyncEngine, last: dict[str, int]) -> None:
    """Raise each day's counter to at least ``last[day]`` (codes handed out from then on)."""
    if not last:
        return
    counters = cast(Table, CounterRow.__table__)
    values = [{"day": d, "last": n} for d, n in sorted(last.items())]
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            pg = postgresql.insert(counters)
            await conn.execute(
                pg.on_conflict_do_update(
                    index_elements=[counters.c.day],
                    set_={"last": func.greatest(counters.c.last, pg.excluded.last)},
                ),
                values,
            )
        else:
            lite = sqlite.insert(counters)
            await conn.execute(
                lite.on_conflict_do_update(
                    index_elements=[counters.c.day],
                    set_={"last": func.max(counters.c.last, lite.excluded.last)},
                ),
                values,
            )


async def synthesize(
    engine: AsyncEngine,
    calls: int,
    year: int,
    *,
    seed: int = 1,
    batch: int = 20_000,
    on_progress: Callable[[int], None] | None = None,
    method: str = "auto",
) -> SynthResult:
    """Write ``calls`` synthetic calls of ``year`` into the (migrated) database of ``engine``.

    ``on_progress(n)`` is called after each batch with the number of rows just written.
    ``method`` is ``copy`` (PostgreSQL only), ``insert`` (Core executemany) or ``auto`` (copy
    on PostgreSQL, insert elsewhere).
    """
    is_pg = engine.dialect.name == "postgresql"
    if method == "auto":
        method = "copy" if is_pg else "insert"
    if method not in ("copy", "insert") or (method == "copy" and not is_pg):
        raise ValueError(f"method must be auto, insert or copy (PostgreSQL only), got {method!r}")
    started = time.perf_counter()
    extras = set(EXTRA_COLUMNS) <= await _table_columns(engine)
    offsets = await _day_offsets(engine, year)
    cols = columns(extras)
    gen = SynthYear(calls, year, seed=seed, batch=batch, extras=extras, offsets=offsets)
    batches = gen.batches()
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection if method == "copy" else None
        # the next batch is drawn in a worker thread while this one is written
        pending = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
        try:
            while (rows := await pending) is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
                if raw is not None:
                    await raw.copy_records_to_table(
                        "tickets", records=rows, columns=list(cols), timeout=600
                    )
                else:
                    await conn.execute(insert(T), [dict(zip(cols, r, strict=True)) for r in rows])
                    await conn.commit()
                if on_progress is not None:
                    on_progress(len(rows))
        finally:
            if not pending.done():
                await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the error that matters is already raised
    await _save_counters(engine, gen.last)
    return SynthResult(
        calls=calls,
        year=year,
        seconds=time.perf_counter() - started,
        method=method,
        extras=extras,
    )
