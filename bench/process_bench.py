"""``tongdai bench process``: the conversation processor's round trips, counted.

No engine, no lab: the real processing stack (``SqlEventJournal`` -> ``JournalProcessor`` ->
``Inbox`` with the bot -> ``Outbox``) on a fresh SQLite or PostgreSQL database
(``bench.reports_bench.fresh_database``), in this process. ``--events`` web chat visitors
each send two messages, journaled beforehand (not counted):

- ``first``: every visitor's first message ("xin chào ..."): a contact, a ticket, the code
  acknowledgement and the bot's help answer;
- ``follow_up``: every visitor's second message ("gặp tổng đài viên"): joins the open
  ticket, the bot hands over, the conversation is queued (a scripted ACD that takes all)
  and the citizen is told;
- ``deliver``: the outbox hands every stored reply to a sender that accepts at once.

Per phase: wall seconds and events (or replies) per second, and per event the SQL
statements, transactions (commits) and pool checkouts, counted by SQLAlchemy event hooks
on the engine (``BEGIN`` is not counted as a statement; on PostgreSQL with ``pool_pre_ping``
every checkout is one more round trip, a ping). The statement counts do not depend on the
machine; the rates do (report the load beside them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reports_bench import PG_ADMIN_DSN, BenchError, fresh_database
from channels.webchat.events import event_id, event_payload, parse_webchat
from conversations.bot import Bot
from conversations.files import AttachmentStore
from conversations.inbox import Inbox
from conversations.journal import SqlEventJournal
from conversations.model import OutboundMessage, SendResult, SendStatus
from conversations.outbox import Outbox
from conversations.process import JournalProcessor
from conversations.texts import load_texts
from dossiers.memory import MemoryDossierLookup
from ivr.prompts import load_catalogue
from tickets.model import Channel
from tickets.sql import SqlTicketStore, T
from tickets.sql_conversations import M, SqlConversationStore
from tongdai.db import make_engine, upgrade_engine
from tongdai.settings import PROJECT_HOME

STORES = {"sqlite": "sqlite", "postgresql": "postgres"}
FIRST_TEXT = "Xin chào, tôi cần hỏi về thủ tục"
FOLLOW_TEXT = "gặp tổng đài viên"


class SqlCounter:
    """Statements, commits and pool checkouts on ``engine`` since the last ``reset``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements = 0
        self.commits = 0
        self.checkouts = 0
        self.kinds: Counter[str] = Counter()
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", self._commit)
        event.listen(sync.pool, "checkout", self._checkout)

    def _statement(self, _conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if verb == "BEGIN":  # SQLite's BEGIN IMMEDIATE goes through the cursor; asyncpg's not
            return
        self.statements += 1
        self.kinds[verb] += 1

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    def reset(self) -> None:
        self.statements = self.commits = self.checkouts = 0
        self.kinds.clear()


class AcceptingSender:
    """A web chat sender whose platform takes every message at once."""

    channel = Channel.WEBCHAT

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent += 1
        return SendResult(SendStatus.SENT, external_id=f"out-{message.message_id}")


class TakeAll:
    """The ACD's messaging side, scripted: every conversation is taken (no agent answers)."""

    def __init__(self) -> None:
        self.queued: set[str] = set()

    def enqueue(self, code: str, queue: str, channel: Channel, *, agent: str | None = None) -> bool:
        self.queued.add(code)
        return True

    def citizen_wrote(self, code: str) -> None:
        pass

    def agent_replied(self, code: str, agent: str) -> None:
        pass

    def transfer(self, code: str, *, queue: str | None = None, agent: str | None = None) -> None:
        pass

    def finished(self, code: str) -> None:
        self.queued.discard(code)

    def assigned_to(self, code: str) -> str | None:
        return None


@dataclass
class Phase:
    name: str
    items: int
    seconds: float
    per_s: float
    statements_per_item: float
    transactions_per_item: float
    checkouts_per_item: float
    #: statements per item by their first word (SELECT, INSERT, UPDATE, ...)
    statements_by_kind: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    store: str
    events: int
    pre_ping: bool
    phases: list[Phase]
    tickets: int
    messages: int
    queued: int
    sent: int
    correct: bool


def _phase(name: str, items: int, seconds: float, c: SqlCounter) -> Phase:
    n = max(items, 1)
    return Phase(
        name=name,
        items=items,
        seconds=round(seconds, 3),
        per_s=round(items / seconds, 1) if seconds > 0 else 0.0,
        statements_per_item=round(c.statements / n, 2),
        transactions_per_item=round(c.commits / n, 2),
        checkouts_per_item=round(c.checkouts / n, 2),
        statements_by_kind={k: round(v / n, 2) for k, v in sorted(c.kinds.items())},
    )


async def _journal_all(journal: SqlEventJournal, n: int, text: str, cid: str) -> None:
    at = datetime.now(UTC)
    for i in range(n):
        visitor = f"bench-v{i:05d}"
        payload = event_payload(visitor, cid, text, at, name=None, reach=None)
        await journal.append(Channel.WEBCHAT, event_id(visitor, cid), payload)


async def _drain(processor: JournalProcessor) -> None:
    while await processor.process_pending(processor.max_in_flight):
        pass


async def run_process(
    url: str, store: str, events: int, tmp: Path, *, pre_ping: bool = False
) -> Report:
    engine = make_engine(url, pre_ping=pre_ping)
    try:
        await upgrade_engine(engine)
        counter = SqlCounter(engine)
        tickets = SqlTicketStore(engine)
        conv = SqlConversationStore(tickets)
        journal = SqlEventJournal(engine)
        sender = AcceptingSender()
        outbox = Outbox(tickets, conv, {Channel.WEBCHAT: sender})
        texts = load_texts()
        phrases = dict(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml").items())
        bot = Bot(texts, MemoryDossierLookup([]), phrases, lambda: date(2026, 12, 7))
        routing = TakeAll()
        files = AttachmentStore(tmp)
        inbox = Inbox(tickets, conv, outbox, files, texts, bot=bot, routing=routing)
        processor = JournalProcessor(journal, {Channel.WEBCHAT: parse_webchat}, inbox)
        phases: list[Phase] = []
        for name, text, cid in (("first", FIRST_TEXT, "c1"), ("follow_up", FOLLOW_TEXT, "c2")):
            await _journal_all(journal, events, text, cid)
            counter.reset()
            t0 = time.perf_counter()
            await _drain(processor)
            phases.append(_phase(name, events, time.perf_counter() - t0, counter))
        counter.reset()
        t0 = time.perf_counter()
        while await outbox.deliver_due():
            pass
        phases.append(_phase("deliver", sender.sent, time.perf_counter() - t0, counter))
        async with engine.connect() as conn:
            n_tickets = (await conn.execute(select(func.count()).select_from(T))).scalar_one()
            n_messages = (await conn.execute(select(func.count()).select_from(M))).scalar_one()
        left = await journal.pending()
        correct = (
            n_tickets == events and not left and len(routing.queued) == events and sender.sent > 0
        )
        return Report(
            store=store,
            events=events,
            pre_ping=pre_ping,
            phases=phases,
            tickets=int(n_tickets),
            messages=int(n_messages),
            queued=len(routing.queued),
            sent=sender.sent,
            correct=correct,
        )
    finally:
        await engine.dispose()


async def bench_process(
    events: int, stores: list[str], pg_admin_dsn: str, pre_pings: list[bool]
) -> list[Report]:
    reports: list[Report] = []
    for store in stores:
        for pre_ping in pre_pings if store == "postgresql" else [False]:
            async with fresh_database(STORES[store], pg_admin_dsn) as url:
                with tempfile.TemporaryDirectory(prefix="tongdai_bench_files_") as tmp:
                    report = await run_process(url, store, events, Path(tmp), pre_ping=pre_ping)
                    reports.append(report)
    return reports


def summary(reports: list[Report]) -> str:
    lines = [
        f"{'store':<10} {'phase':<10} {'items':>6} {'per s':>8} {'stmts':>7} {'tx':>6} "
        f"{'checkouts':>9}"
    ]
    for r in reports:
        for p in r.phases:
            lines.append(
                f"{r.store:<10} {p.name:<10} {p.items:>6} {p.per_s:>8.1f} "
                f"{p.statements_per_item:>7.2f} {p.transactions_per_item:>6.2f} "
                f"{p.checkouts_per_item:>9.2f}"
            )
        lines.append(
            f"{r.store:<10} tickets {r.tickets}, messages {r.messages}, queued {r.queued}, "
            f"sent {r.sent}, pre-ping {'on' if r.pre_ping else 'off'}: "
            f"{'correct' if r.correct else 'WRONG'}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=300, help="visitors (two messages each)")
    parser.add_argument(
        "--store",
        action="append",
        choices=sorted(STORES),
        help="database to run on (repeatable; default both)",
    )
    parser.add_argument(
        "--pre-ping",
        choices=("off", "on", "both"),
        default="off",
        help="PostgreSQL pool pre-ping (the engine's default is off; both: a run of each)",
    )
    parser.add_argument("--pg-admin-dsn", default=PG_ADMIN_DSN)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def cmd_bench_process(args: argparse.Namespace) -> int:
    if args.events < 1:
        raise BenchError(f"--events must be at least 1 (got {args.events})")
    stores = list(dict.fromkeys(args.store or ["sqlite", "postgresql"]))
    for noisy in ("conversations", "tongdai.db", "alembic"):  # a line per message and migration
        logging.getLogger(noisy).setLevel(logging.WARNING)
    pre_pings = {"off": [False], "on": [True], "both": [False, True]}[args.pre_ping]
    reports = asyncio.run(bench_process(args.events, stores, args.pg_admin_dsn, pre_pings))
    if args.json:
        json.dump([asdict(r) for r in reports], sys.stdout, indent=2)
        print()
    else:
        print(summary(reports))
    return 0 if all(r.correct for r in reports) else 1
