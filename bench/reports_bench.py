"""The reports benchmark: a synthetic year in fresh databases, then each report timed.

    tongdai bench reports [--calls 1000000] [--db postgres|sqlite|both] [--json]
    python -m bench.reports_bench ...            (the same, without the ``tongdai`` command)

For each database kind: a new empty database (PostgreSQL: ``tongdai_bench_<hex>`` on the
server of ``--pg-admin``, dropped at the end; SQLite: a file in a temporary folder), the
migrations, ``--calls`` synthetic calls of ``--year`` (``reports.synth``), ``VACUUM ANALYZE``
(what autovacuum would have done on a live server), then ``reports.kpi.compute`` for one
month and for the whole year, ``--runs`` times each; the median and the fastest are reported.
The issue's targets on PostgreSQL: a month under 5 s, the year under 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from reports.synth_cli import fill
from tongdai.clock import VN_TZ
from tongdai.db import make_engine
from tongdai.errors import TongdaiError

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_TIMEOUT = 30.0
KINDS = ("postgres", "sqlite")
#: the issue's targets (seconds) on PostgreSQL
TARGETS = {"month_s": 5.0, "year_s": 30.0}

Compute = Callable[..., Awaitable[Any]]


class BenchError(TongdaiError):
    """The benchmark cannot run (no report code yet, no PostgreSQL server, ...)."""


@dataclass(frozen=True)
class Timing:
    median: float
    min: float


@dataclass(frozen=True)
class BenchResult:
    db: str
    calls: int
    generate_s: float
    vacuum_s: float
    month_s: Timing
    year_s: Timing

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_compute() -> Compute:
    """``reports.kpi.compute``, or ``BenchError`` saying it is not there yet."""
    try:
        from reports.kpi import compute
    except ImportError as exc:
        raise BenchError(f"the reports are not there yet (reports.kpi.compute): {exc}") from None
    return compute


async def _pg_admin(sql: str, dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=PG_TIMEOUT)
    try:
        await conn.execute(sql, timeout=PG_TIMEOUT)
    finally:
        await conn.close(timeout=PG_TIMEOUT)


@asynccontextmanager
async def fresh_database(kind: str, pg_admin_dsn: str = PG_ADMIN_DSN) -> AsyncIterator[str]:
    """The URL of a new empty database of ``kind``, removed on exit."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tongdai_bench_") as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    name = f"tongdai_bench_{secrets.token_hex(4)}"
    try:
        await _pg_admin(f'CREATE DATABASE "{name}"', pg_admin_dsn)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BenchError(f"cannot create database {name} via {pg_admin_dsn}: {exc}") from None
    try:
        base = pg_admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', pg_admin_dsn)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of ``month``, Vietnam time."""
    start = datetime(year, month, 1, tzinfo=VN_TZ)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=VN_TZ)
    return start, end


async def timed(run: Callable[[], Awaitable[Any]], runs: int) -> Timing:
    """Median and fastest wall time of ``runs`` awaits of ``run()``."""
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    return Timing(median=round(statistics.median(times), 3), min=round(min(times), 3))


async def _vacuum(url: str) -> float:
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE" if "postgresql" in url else "ANALYZE"))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def bench_one(
    kind: str,
    calls: int,
    *,
    year: int = 2026,
    month: int = 3,
    runs: int = 3,
    seed: int = 1,
    progress: bool = True,
    pg_admin_dsn: str = PG_ADMIN_DSN,
    compute: Compute | None = None,
) -> BenchResult:
    """Benchmark the reports on a fresh database of ``kind`` (``postgres`` or ``sqlite``)."""
    compute = compute or load_compute()
    async with fresh_database(kind, pg_admin_dsn) as url:
        made = await fill(url, calls, year, seed=seed, batch=20_000, progress=progress)
        vacuum_s = await _vacuum(url)
        engine = make_engine(url)
        try:
            m_start, m_end = month_bounds(year, month)
            y_start, y_end = month_bounds(year, 1)[0], month_bounds(year, 12)[1]
            month_s = await timed(lambda: compute(engine, m_start, m_end), runs)
            year_s = await timed(lambda: compute(engine, y_start, y_end), runs)
        finally:
            await engine.dispose()
    return BenchResult(
        db=kind,
        calls=calls,
        generate_s=round(made.seconds, 2),
        vacuum_s=round(vacuum_s, 2),
        month_s=month_s,
        year_s=year_s,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls in the year (1e6)")
    parser.add_argument("--db", choices=(*KINDS, "both"), default="both", help="which database")
    parser.add_argument("--year", type=int, default=2026, help="year to generate (2026)")
    parser.add_argument("--month", type=int, default=3, help="month of the month report (3)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each report (3)")
    parser.add_argument("--seed", type=int, default=1, help="synthetic data seed (1)")
    parser.add_argument("--pg-admin", default=PG_ADMIN_DSN, help="PostgreSQL admin DSN")
    parser.add_argument("--json", action="store_true", help="one JSON object per database")


def _check(args: argparse.Namespace) -> None:
    if args.calls < 1 or args.runs < 1 or not 1 <= args.month <= 12:
        raise BenchError("--calls and --runs must be >= 1 and --month 1-12")


def _print_table(results: Sequence[BenchResult]) -> None:
    table = Table(title=f"Reports benchmark ({os.cpu_count()} CPUs), seconds")
    table.add_column("")
    for r in results:
        table.add_column(f"{r.db} ({r.calls:,} calls)", justify="right")
    table.add_row("generate", *(f"{r.generate_s:.1f}" for r in results))
    table.add_row("vacuum/analyze", *(f"{r.vacuum_s:.1f}" for r in results))
    for key, label in (("month_s", "month report"), ("year_s", "year report")):
        cells = []
        for r in results:
            t: Timing = getattr(r, key)
            flag = " [red](over target)" if r.db == "postgres" and t.median > TARGETS[key] else ""
            cells.append(f"{t.median:.2f} (min {t.min:.2f}){flag}")
        table.add_row(f"{label}, median", *cells)
    Console().print(table)


def cmd_bench_reports(args: argparse.Namespace) -> int:
    _check(args)
    compute = load_compute()
    kinds = KINDS if args.db == "both" else (args.db,)
    results: list[BenchResult] = []
    for kind in kinds:
        result = asyncio.run(
            bench_one(
                kind,
                args.calls,
                year=args.year,
                month=args.month,
                runs=args.runs,
                seed=args.seed,
                progress=not args.json and sys.stderr.isatty(),
                pg_admin_dsn=args.pg_admin,
                compute=compute,
            )
        )
        results.append(result)
        if args.json:
            print(json.dumps(result.as_dict()), flush=True)
    if not args.json:
        _print_table(results)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports_bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_bench_reports(args)
    except TongdaiError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
