"""``tongdai bench``: benchmarks; ``tongdai bench reports`` times the manager reports,
``tongdai bench acd`` runs the same SIPp load through our ACD and through app_queue."""

from __future__ import annotations

import argparse
from typing import Any

from bench import acd_bench
from bench.reports_bench import add_arguments, cmd_bench_reports


def register(sub: Any) -> None:
    """Add ``bench reports`` and ``bench acd`` to the ``tongdai`` command."""
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
    acd = commands.add_parser(
        "acd",
        help="our ACD against app_queue: same SIPp load, one run, JSON report",
        description="Run --concurrent SIPp callers through our own ACD, then through "
        "app_queue, each on a fresh lab Asterisk with --agents SIPp agent phones; print "
        "calls completed/lost, time to agent, decision latency, CPU and RSS, and ratios.",
    )
    acd_bench.add_arguments(acd)
    acd.set_defaults(func=acd_bench.cmd_bench_acd)
