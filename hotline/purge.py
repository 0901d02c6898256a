"""``tongdai purge [--dry-run]``: delete what is older than the retention periods
(``[retention]``; ``conversations.retention``): recordings, message bodies and attachments."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from conversations.retention import PurgeReport, purge
from tickets.sql import open_store
from tongdai.clock import utcnow
from tongdai.settings import home_path, load_settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "purge",
        help="delete recordings and message contents older than the retention periods",
    )
    parser.add_argument("--dry-run", action="store_true", help="only say what would go")
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    parser.set_defaults(func=cmd_purge)


def report_json(r: PurgeReport) -> dict[str, Any]:
    return {
        "dry_run": r.dry_run,
        "recordings_before": r.recordings_before.isoformat(),
        "messages_before": r.messages_before.isoformat(),
        "recordings": r.recordings,
        "messages": len(r.messages),
        "events": r.events,
        "files": [str(f) for f in r.files],
        "bytes": r.bytes,
        "refused": r.refused,
    }


def cmd_purge(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)

    async def run() -> PurgeReport:
        store = await open_store(settings.database.resolved_url())  # migrated
        try:
            return await purge(
                store.engine,
                now=utcnow(),
                recordings_days=settings.retention.recordings_days,
                messages_days=settings.retention.messages_days,
                recording_dirs=[
                    home_path(settings.ivr.messages_dir),
                    home_path(settings.ivr.calls_dir),
                ],
                attachments_dir=home_path(settings.channels.attachments_dir),
                dry_run=args.dry_run,
            )
        finally:
            await store.close()

    report = asyncio.run(run())
    if args.json:
        print(json.dumps(report_json(report), ensure_ascii=False))
    else:
        print(report.summary())
        for f in report.files:
            print(f"  {'would delete' if report.dry_run else 'deleted'} {f}")
        for path in report.refused:
            print(f"  left alone (outside its folder): {path}")
    return 0
