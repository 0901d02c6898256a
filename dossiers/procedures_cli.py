"""``tongdai procedures``: import the province's procedure catalogue and search it.

``import FILE`` checks every row (``dossiers.procedures_csv``: errors name the file, the line
and the field; nothing is stored when one row is bad), upserts by code (importing the same
file twice changes nothing), then speaks every procedure's name into the IVR's sounds folder
(``ivr.prompts.procedure_prompt``; ``--no-prompts`` skips it, e.g. without espeak-ng).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from agencies.model import load_agencies
from dossiers.procedures import ONLINE_LABELS, Procedure
from dossiers.procedures_csv import HEADER, read_procedures
from dossiers.procedures_sql import SqlCatalogue, upsert_procedures
from ivr.prompts import PROCEDURE_DIR, build_names, procedure_names
from tongdai.db import make_engine, upgrade_engine
from tongdai.settings import Settings, home_path, load_settings


def register(sub: Any) -> None:
    """Add ``procedures import`` and ``procedures search`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "procedures", help="the procedure catalogue (thủ tục hành chính)"
    )
    commands = parser.add_subparsers(dest="procedures_command", required=True)
    imp = commands.add_parser("import", help="import (upsert) procedures from a CSV file")
    imp.add_argument("file", help=f"CSV: {','.join(HEADER)}")
    imp.add_argument("--no-prompts", action="store_true", help="do not speak the names for the IVR")
    imp.set_defaults(func=cmd_import)
    find = commands.add_parser("search", help="search by code or words (diacritics ignored)")
    find.add_argument("query")
    find.set_defaults(func=cmd_search)


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    book = load_agencies(home_path(settings.back_office.agencies))
    procedures = read_procedures(args.file, {a.id for a in book})
    count, everything = asyncio.run(_import(settings, procedures))
    print(f"imported {count} procedures from {args.file} ({len(everything)} in the catalogue)")
    if not args.no_prompts:
        report = build_names(procedure_names(everything), settings, PROCEDURE_DIR, args.file)
        print(f"names: {report.summary()}")
    return 0


async def _import(settings: Settings, procedures: list[Procedure]) -> tuple[int, list[Procedure]]:
    engine = make_engine(settings.database.resolved_url())
    try:
        await upgrade_engine(engine)
        count = await upsert_procedures(engine, procedures)
        return count, await SqlCatalogue(engine).all()
    finally:
        await engine.dispose()


def cmd_search(args: argparse.Namespace) -> int:
    found = asyncio.run(_search(load_settings(args.config).database.resolved_url(), args.query))
    console = Console()
    if not found:
        console.print(f"no procedure matches {args.query!r}")
        return 1
    table = Table("code", "name", "agency", "days", "fee (đồng)", "online")
    for p in found:
        table.add_row(
            p.code, p.name, p.agency, str(p.time_limit_days), f"{p.fee_vnd:,}".replace(",", "."),
            ONLINE_LABELS[p.online_level],
        )  # fmt: skip
    console.print(table)
    return 0


async def _search(url: str, query: str) -> list[Procedure]:
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        return await SqlCatalogue(engine).search(query)
    finally:
        await engine.dispose()
