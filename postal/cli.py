"""``tongdai postal export --date D``: the post office's list of one day, as CSV or XLSX."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from postal.export import day_list, file_name, to_csv, to_xlsx
from postal.sql import SqlPostalStore
from tongdai.clock import VN_TZ
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import ConfigError
from tongdai.settings import load_settings


def register(sub: Any) -> None:
    """Add ``postal export`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "postal", help="postal delivery registrations (bưu chính công ích)"
    )
    commands = parser.add_subparsers(dest="postal_command", required=True)
    exp = commands.add_parser("export", help="the post office's list of one day")
    exp.add_argument("--date", help="YYYY-MM-DD, Vietnam time (default: today)")
    exp.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    exp.add_argument("--out", help="file to write (default: buu-chinh-DATE.FORMAT; - for stdout)")
    exp.set_defaults(func=cmd_export)


def _day(raw: str | None) -> date:
    if raw is None:
        return datetime.now(VN_TZ).date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError("<command line>", "--date", f"{raw!r} is not YYYY-MM-DD") from None


def cmd_export(args: argparse.Namespace) -> int:
    day = _day(args.date)
    url = load_settings(args.config).database.resolved_url()
    count, data = asyncio.run(_export(url, day, args.format))
    out = args.out or file_name(day, args.format)
    if out == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(out).write_bytes(data)
        print(f"{count} registrations of {day.isoformat()} written to {out}")
    return 0


async def _export(url: str, day: date, fmt: str) -> tuple[int, bytes]:
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        found = await day_list(SqlPostalStore(engine), day)
    finally:
        await engine.dispose()
    return len(found), to_csv(found) if fmt == "csv" else to_xlsx(found, day)
