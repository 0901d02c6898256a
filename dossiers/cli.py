"""``tongdai dossiers``: import the province's dossier CSV and look one up."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from dossiers.importer import read_dossiers
from dossiers.model import CODE_RE, MAX_CODE_DIGITS, Dossier
from dossiers.sql import SqlDossierLookup, upsert_dossiers
from tongdai.clock import VN_TZ
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import ConfigError
from tongdai.settings import load_settings


def register(sub: Any) -> None:
    """Add ``dossiers import`` and ``dossiers show`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "dossiers", help="dossier (hồ sơ) look-up data"
    )
    commands = parser.add_subparsers(dest="dossiers_command", required=True)

    imp = commands.add_parser("import", help="import (upsert) dossiers from a CSV file")
    imp.add_argument("file", help="CSV: code,procedure,agency,status,received_date,due_date")
    imp.set_defaults(func=cmd_import)

    show = commands.add_parser("show", help="show one dossier")
    show.add_argument("code", help=f"dossier code (4 to {MAX_CODE_DIGITS} digits)")
    show.set_defaults(func=cmd_show)


def _url(args: argparse.Namespace) -> str:
    return load_settings(args.config).database.resolved_url()


def cmd_import(args: argparse.Namespace) -> int:
    dossiers = read_dossiers(args.file)  # DossierFileError lists every bad row
    count = asyncio.run(_import(_url(args), dossiers))
    print(f"imported {count} dossiers from {args.file}")
    return 0


async def _import(url: str, dossiers: list[Dossier]) -> int:
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        return await upsert_dossiers(engine, dossiers)
    finally:
        await engine.dispose()


def cmd_show(args: argparse.Namespace) -> int:
    if not CODE_RE.match(args.code):
        raise ConfigError(
            "<command line>", "code", f"{args.code!r} is not 4 to {MAX_CODE_DIGITS} digits"
        )
    dossier = asyncio.run(_find(_url(args), args.code))
    console = Console()
    if dossier is None:
        console.print(f"no dossier {args.code}")
        return 1
    today = datetime.now(VN_TZ).date()
    table = Table(show_header=False, title=f"Dossier {dossier.code}")
    table.add_row("procedure", dossier.procedure)
    table.add_row("agency", dossier.agency)
    table.add_row("status", dossier.status.value)
    table.add_row("received", dossier.received_date.isoformat())
    due = dossier.due_date.isoformat() if dossier.due_date else "-"
    table.add_row("due", due + (" (OVERDUE)" if dossier.is_overdue(today) else ""))
    console.print(table)
    return 0


async def _find(url: str, code: str) -> Dossier | None:
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        return await SqlDossierLookup(engine).find(code)
    finally:
        await engine.dispose()
