"""``tongdai tickets``: list, show and move tickets along the follow-up workflow.

``tickets list --json`` prints one JSON object per line (the format scripts and tests read);
``tickets show CODE`` prints a ticket with its IVR path, history and, for a message channel
(Zalo, Facebook, web chat, email), its messages both ways with their delivery status
(``--json``: one object, ``messages`` included); times are ISO 8601 in Vietnam time
(``+07:00``). ``--since``/``--until`` take a date or a date-time; without an offset they
mean Vietnam time, and ``until`` is exclusive.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import date, datetime, time
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tickets.messages import Delivery, Direction, Message, message_dict
from tickets.model import Status, Ticket
from tickets.sql import SqlTicketStore, open_store
from tickets.sql_conversations import SqlConversationStore
from tongdai.clock import VN_TZ
from tongdai.settings import load_settings

#: the keys of a ``tickets list --json`` line, in order
JSON_KEYS = (
    "code",
    "channel",
    "caller",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "ivr_path",
    "category",
    "queue",
    "agent",
    "outcome",
    "dossier_code",
    "recording",
    "status",
)


def parse_when(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight) or an ISO date-time; without an offset, Vietnam time."""
    try:
        if len(text) == 10:
            value = datetime.combine(date.fromisoformat(text), time())
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-05-01) or date-time (2026-05-01T08:00+07:00)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=VN_TZ)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def register(sub: Any) -> None:
    """Add ``tickets list|show|status`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser("tickets", help="tickets left by calls")
    commands = parser.add_subparsers(dest="tickets_command", required=True)

    ls = commands.add_parser("list", help="tickets started in a period, oldest first")
    ls.add_argument("--since", type=parse_when, help="from this date/time (inclusive)")
    ls.add_argument("--until", type=parse_when, help="up to this date/time (exclusive)")
    ls.add_argument("--limit", type=_positive, help="at most N tickets")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=cmd_list)

    show = commands.add_parser(
        "show", help="one ticket with its IVR path, history and messages (both ways)"
    )
    show.add_argument("code")
    show.add_argument("--json", action="store_true", help="one JSON object, messages included")
    show.set_defaults(func=cmd_show)

    status = commands.add_parser("status", help="move a ticket along the workflow")
    status.add_argument("code")
    status.add_argument("status", choices=[s.value for s in Status])
    status.add_argument("--note", help="why (kept in the history)")
    status.add_argument("--by", default=None, help="who (default: the login name)")
    status.set_defaults(func=cmd_status)


def _local(value: datetime | None) -> str | None:
    return value.astimezone(VN_TZ).isoformat() if value is not None else None


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """The ``--json`` form of a ticket (exactly ``JSON_KEYS``)."""
    return {
        "code": ticket.code,
        "channel": ticket.channel,
        "caller": ticket.caller,
        "started_at": _local(ticket.started_at),
        "queued_at": _local(ticket.queued_at),
        "answered_at": _local(ticket.answered_at),
        "ended_at": _local(ticket.ended_at),
        "ivr_path": [
            {"at": _local(s.at), "node": s.node, "key": s.key, "detail": s.detail}
            for s in ticket.ivr_path
        ],
        "category": ticket.category,
        "queue": ticket.queue,
        "agent": ticket.agent,
        "outcome": ticket.outcome.value if ticket.outcome else None,
        "dossier_code": ticket.dossier_code,
        "recording": ticket.recording,
        "status": ticket.status.value,
    }


async def _store(args: argparse.Namespace) -> SqlTicketStore:
    return await open_store(load_settings(args.config).database.resolved_url())


def _short(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def cmd_list(args: argparse.Namespace) -> int:
    async def run() -> list[Ticket]:
        store = await _store(args)
        try:
            return await store.list(since=args.since, until=args.until, limit=args.limit)
        finally:
            await store.close()

    tickets = asyncio.run(run())
    if args.json:
        for ticket in tickets:
            print(json.dumps(ticket_json(ticket), ensure_ascii=False))
        return 0
    table = Table(title=f"{len(tickets)} ticket(s), times in Vietnam (UTC+7)")
    table.add_column("code", no_wrap=True)
    table.add_column("started", no_wrap=True)
    for column in ("channel", "caller", "path", "category", "queue", "agent", "outcome", "status"):
        table.add_column(column, overflow="fold")
    for t in tickets:
        path = " > ".join(s.node + (f"[{s.key}]" if s.key else "") for s in t.ivr_path)
        table.add_row(
            t.code,
            _short(t.started_at),
            t.channel,
            t.caller or "-",
            path or "-",
            t.category or "-",
            t.queue or "-",
            t.agent or "-",
            t.outcome.value if t.outcome else "-",
            t.status.value,
        )
    Console().print(table)
    return 0


#: how a message's delivery reads in the table
_DELIVERY = {
    Delivery.RECEIVED: "received",
    Delivery.PENDING: "pending (to send)",
    Delivery.SENT: "sent",
    Delivery.FAILED: "FAILED",
}


def _delivery(m: Message) -> str:
    text = _DELIVERY[m.delivery]
    if m.delivery is Delivery.PENDING and m.attempts:
        retry = f", next try {_short(m.next_attempt_at)}" if m.next_attempt_at else ""
        text += f" after {m.attempts} failed tr{'y' if m.attempts == 1 else 'ies'}{retry}"
    if m.delivery_error and m.delivery is not Delivery.SENT:
        text += f": {m.delivery_error}"
    return text


def _print_messages(messages: list[Message]) -> None:
    table = Table("at", "", "author", "text", "delivery", title="Messages")
    for m in messages:
        arrow = "→ in" if m.direction is Direction.IN else "← out"
        body = m.body + "".join(f"\n[{a.filename}: {a.url or a.path}]" for a in m.attachments)
        who = m.author.value + (f" {m.author_id}" if m.author_id else "")
        # Text: what citizens type is shown as typed, never read as rich markup
        table.add_row(_short(m.at), arrow, Text(who), Text(body), Text(_delivery(m)))
    Console().print(table)


def _print_ticket(ticket: Ticket) -> None:
    console = Console()
    info = Table(show_header=False, title=f"Ticket {ticket.code}")
    for key, value in ticket_json(ticket).items():
        if key not in ("ivr_path", "code"):
            info.add_row(key, "-" if value is None else str(value))
    info.add_row("uniqueid", ticket.uniqueid or "-")
    info.add_row("notes", ticket.notes or "-")
    console.print(info)
    path = Table("at", "node", "key", "detail", title="IVR path")
    for s in ticket.ivr_path:
        path.add_row(_short(s.at), s.node, s.key or "", s.detail or "")
    console.print(path)
    history = Table("at", "from", "to", "by", "note", title="Status history")
    for h in ticket.history:
        history.add_row(_short(h.at), h.from_status or "-", h.to_status.value, h.by, h.note or "")
    console.print(history)


def cmd_show(args: argparse.Namespace) -> int:
    async def run() -> tuple[Ticket | None, list[Message]]:
        store = await _store(args)
        try:
            ticket = await store.get(args.code)
            if ticket is None:
                return None, []
            return ticket, await SqlConversationStore(store).messages(args.code)
        finally:
            await store.close()

    ticket, messages = asyncio.run(run())
    if ticket is None:
        print(f"tongdai: no ticket {args.code}", file=sys.stderr)
        return 1
    if args.json:
        doc = ticket_json(ticket) | {
            "subject": ticket.subject,
            "messages": [message_dict(m, VN_TZ) for m in messages],
        }
        print(json.dumps(doc, ensure_ascii=False))
        return 0
    _print_ticket(ticket)
    if messages:
        _print_messages(messages)
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no $USER and no passwd entry (containers)
        return "cli"


def cmd_status(args: argparse.Namespace) -> int:
    by = args.by or _login()

    async def run() -> Ticket:
        store = await _store(args)
        try:
            return await store.set_status(args.code, Status(args.status), by=by, note=args.note)
        finally:
            await store.close()

    try:
        ticket = asyncio.run(run())
    except KeyError:
        print(f"tongdai: no ticket {args.code}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"tongdai: error: {exc}", file=sys.stderr)
        return 2
    print(f"{ticket.code}: {ticket.history[-1].from_status} -> {ticket.status.value} (by {by})")
    return 0
