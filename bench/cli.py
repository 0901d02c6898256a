"""``tongdai bench``: benchmarks; ``tongdai bench reports`` times the manager reports."""

from __future__ import annotations

import argparse
from typing import Any

from bench.reports_bench import add_arguments, cmd_bench_reports


def register(sub: Any) -> None:
    """Add ``bench reports`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser("bench", help="benchmarks")
    commands = parser.add_subparsers(dest="bench_command", required=True)
    reports = commands.add_parser(
        "reports",
        help="time the reports on a synthetic year in fresh databases",
        description="Generate a synthetic year in new PostgreSQL/SQLite databases and time "
        "reports.kpi.compute for a month and for the year (median and min of --runs).",
    )
    add_arguments(reports)
    reports.set_defaults(func=cmd_bench_reports)
