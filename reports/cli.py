"""``tongdai report``: the manager report of a period as HTML, XLSX, CSV (ZIP) or PDF.

``--from``/``--to`` are days in Vietnam time, both included (``--from 2026-05-01 --to
2026-05-31`` is May). The file goes to ``--out`` (default ``report-<from>-<to>.<ext>`` in the
current folder), written whole or not at all; its path is printed on stdout, the progress bar
on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from agencies.model import load_agencies
from reports.kpi import STEPS, compute
from reports.model import Report
from tongdai.clock import VN_TZ
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import ConfigError
from tongdai.settings import home_path, load_settings

#: format -> file extension
EXTENSIONS = {"html": "html", "xlsx": "xlsx", "csv": "zip", "pdf": "pdf"}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-05-01") from None


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a ratio in (0, 1], e.g. 0.8")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in [0, 1), e.g. 0.3")
    return value


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds")
    return int(text)


def register(sub: Any) -> None:
    """Add ``report`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "report", help="manager report of a period (KPIs, charts, staffing forecast)"
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=_day,
        required=True,
        help="first day (Vietnam time), e.g. 2026-05-01",
    )
    parser.add_argument(
        "--to", dest="until", type=_day, required=True, help="last day, included, e.g. 2026-05-31"
    )
    parser.add_argument(
        "--format",
        choices=sorted(EXTENSIONS),
        required=True,
        help="html, xlsx, csv (a ZIP of one CSV per view) or pdf",
    )
    parser.add_argument("--out", type=Path, help="output file (default report-FROM-TO.EXT)")
    parser.add_argument(
        "--sl-seconds",
        type=_seconds,
        default=20,
        help="service level: answered within this many seconds (default 20)",
    )
    parser.add_argument(
        "--sl-target", type=_ratio, default=0.8, help="service level target (default 0.8)"
    )
    parser.add_argument(
        "--max-occupancy",
        type=_ratio,
        default=0.85,
        help="staffing forecast: occupancy cap (default 0.85)",
    )
    parser.add_argument(
        "--shrinkage",
        type=_share,
        default=0.3,
        help="staffing forecast: share of paid time off the phones (default 0.3)",
    )
    parser.set_defaults(func=cmd_report)


def period(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in Vietnam time."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    start = datetime(first.year, first.month, first.day, tzinfo=VN_TZ)
    return start, datetime(last.year, last.month, last.day, tzinfo=VN_TZ) + timedelta(days=1)


def render(report: Report, fmt: str) -> bytes:
    """The report in ``fmt`` (a key of ``EXTENSIONS``)."""
    if fmt == "html":
        from reports.html import render_html

        return render_html(report).encode("utf-8")
    if fmt == "xlsx":
        from reports.xlsx import render_xlsx

        return render_xlsx(report)
    if fmt == "csv":
        from reports.csv_out import render_csv_zip

        return render_csv_zip(report)
    from reports.pdf import render_pdf

    return render_pdf(report)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _agency_names(args: argparse.Namespace) -> dict[str, str]:
    """The agencies' names of the configured agencies file (ids only if it is broken)."""
    try:
        book = load_agencies(home_path(load_settings(args.config).back_office.agencies))
    except ConfigError:
        return {}
    return {a.id: a.name for a in book}


async def _compute(url: str, args: argparse.Namespace, step: Callable[[str], None]) -> Report:
    start, end = period(args.start, args.until)
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        return await compute(
            engine,
            start,
            end,
            sl_seconds=args.sl_seconds,
            sl_target=args.sl_target,
            max_occupancy=args.max_occupancy,
            shrinkage=args.shrinkage,
            progress=step,
            agency_names=_agency_names(args),
        )
    finally:
        await engine.dispose()


def cmd_report(args: argparse.Namespace) -> int:
    if args.until < args.start:
        print(f"tongdai report: --to {args.until} is before --from {args.start}", file=sys.stderr)
        return 2
    url = load_settings(args.config).database.resolved_url()
    out: Path = args.out or Path(
        f"report-{args.start:%Y%m%d}-{args.until:%Y%m%d}.{EXTENSIONS[args.format]}"
    )
    began = time.perf_counter()
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("truy vấn", total=len(STEPS) + 2)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=f"truy vấn {name}")

        report = asyncio.run(_compute(url, args, step))
        bar.update(task, description=f"tạo {args.format}")
        data = render(report, args.format)
        bar.update(task, advance=1, description="ghi tệp")
        write_atomic(out, data)
        bar.update(task, advance=1)
    console.print(f"{report.title()}: {len(data):,} bytes in {time.perf_counter() - began:.1f} s")
    print(out)
    return 0
