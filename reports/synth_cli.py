"""``tongdai synth``: fill the configured database with a synthetic year of calls.

    tongdai synth --calls 1000000 --year 2026 [--seed 1] [--batch 20000]

The database is migrated first; rows are added to what is there (ticket codes continue each
day's counter). See ``reports.synth`` for what the calls look like.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from reports.synth import SynthResult, synthesize
from tongdai.db import describe, make_engine, migrate
from tongdai.settings import load_settings


def _whole(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {low}")
        return value

    return parse


def register(sub: Any) -> None:
    """Add ``synth`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "synth", help="write a synthetic year of calls into the database (benchmarks, demos)"
    )
    parser.add_argument("--calls", type=_whole(0), default=1_000_000, help="how many (1000000)")
    parser.add_argument("--year", type=_whole(1971), default=2026, help="which year (2026)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same rows)")
    parser.add_argument("--batch", type=_whole(1), default=20_000, help="rows per write (20000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_synth)


async def fill(
    url: str, calls: int, year: int, *, seed: int, batch: int, progress: bool
) -> SynthResult:
    """Migrate ``url`` and write the synthetic year into it, with a progress bar on stderr."""
    await migrate(url)
    engine = make_engine(url)
    bar = Progress(
        TextColumn("[bold]synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
    )
    try:
        with bar:
            task = bar.add_task("calls", total=calls)
            return await synthesize(
                engine,
                calls,
                year,
                seed=seed,
                batch=batch,
                on_progress=lambda n: bar.advance(task, n),
            )
    finally:
        await engine.dispose()


def cmd_synth(args: argparse.Namespace) -> int:
    url = load_settings(args.config).database.resolved_url()
    result = asyncio.run(
        fill(
            url,
            args.calls,
            args.year,
            seed=args.seed,
            batch=args.batch,
            progress=not args.no_progress,
        )
    )
    extras = "with" if result.extras else "without"
    print(
        f"{result.calls:,} calls of {result.year} written to {describe(url)} in "
        f"{result.seconds:.1f} s ({result.method}, {extras} the report columns)"
    )
    return 0
