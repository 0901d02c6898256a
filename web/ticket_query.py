"""Ticket searches the web app needs beyond ``TicketStore``: filters, the call-back list, a
caller's earlier tickets. Read-only SQL on the tickets table (``tickets.sql.T``).

Complaints about officials are confidential (``tickets.model.CONFIDENTIAL_TYPES``): lists
never show their caller (the audited ticket view does, to supervisors and admins), and a
search by number or a caller's history never finds them.

Ordering of a search: open complaints (``phan_anh``) past their due date first, then other
open complaints by due date, then everything else newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tickets.model import CONFIDENTIAL_TYPES
from tickets.sql import T
from tongdai.db import DB_ERRORS, describe, store_error
from web.stats import CALLBACK_OUTCOMES

COMPLAINT = "phan_anh"
OPEN = ("new", "in_progress")


@dataclass(frozen=True)
class TicketFilter:
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    outcome: str | None = None
    status: str | None = None
    caller: str | None = None
    agent: str | None = None
    queue: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class TicketSummary:
    code: str
    started_at: datetime
    channel: str
    caller: str | None
    category: str | None
    queue: str | None
    agent: str | None
    outcome: str | None
    status: str
    due_at: datetime | None
    overdue: bool
    notes: str | None
    recording: bool
    #: a complaint about officials: ``caller`` is withheld
    confidential: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "started_at": self.started_at.isoformat(),
            "channel": self.channel,
            "caller": self.caller,
            "category": self.category,
            "queue": self.queue,
            "agent": self.agent,
            "outcome": self.outcome,
            "status": self.status,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "overdue": self.overdue,
            "has_recording": self.recording,
            "confidential": self.confidential,
        }


def _columns() -> list[Any]:
    c = T.c
    return [
        c.code, c.started_at, c.channel, c.caller, c.category, c.queue, c.agent, c.outcome,
        c.status, c.due_at, c.notes, c.recording, c.complaint_type,
    ]  # fmt: skip


def _not_confidential() -> Any:
    c = T.c
    return or_(c.complaint_type.is_(None), c.complaint_type.not_in(sorted(CONFIDENTIAL_TYPES)))


def _summary(row: Any, now: datetime) -> TicketSummary:
    overdue = (
        row.category == COMPLAINT
        and row.due_at is not None
        and row.due_at < now
        and row.status in OPEN
    )
    secret = row.complaint_type in CONFIDENTIAL_TYPES
    return TicketSummary(
        row.code, row.started_at, row.channel, None if secret else row.caller, row.category,
        row.queue, row.agent, row.outcome, row.status, row.due_at, overdue, row.notes,
        bool(row.recording), secret,
    )  # fmt: skip


def _where(f: TicketFilter) -> list[Any]:
    c = T.c
    cond: list[Any] = []
    if f.since is not None:
        cond.append(c.started_at >= f.since)
    if f.until is not None:
        cond.append(c.started_at < f.until)
    for column, value in (
        (c.category, f.category),
        (c.outcome, f.outcome),
        (c.status, f.status),
        (c.agent, f.agent),
        (c.queue, f.queue),
    ):
        if value is not None:
            cond.append(column == value)
    if f.caller:
        # a number or its tail: "0905123456" or "123456" (LIKE wildcards taken literally)
        tail = f.caller.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        cond.append(c.caller.like("%" + tail, escape="\\"))
        cond.append(_not_confidential())
    return cond


def _ordered(query: Select[Any], now: datetime) -> Select[Any]:
    c = T.c
    complaint_open = and_(c.category == COMPLAINT, c.status.in_(OPEN), c.due_at.is_not(None))
    rank = case(
        (and_(complaint_open, c.due_at < now), literal(0)),
        (complaint_open, literal(1)),
        else_=literal(2),
    )
    due_first = case((complaint_open, c.due_at), else_=None)
    return query.order_by(rank, due_first, c.started_at.desc(), c.id.desc())


async def _fetch(engine: AsyncEngine, query: Select[Any], count: Select[Any] | None) -> Any:
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total = (await conn.execute(count)).scalar_one() if count is not None else len(rows)
    except DB_ERRORS as exc:
        raise store_error(f"ticket search ({describe(engine.url)})", exc) from exc
    return rows, int(total)


async def search(
    engine: AsyncEngine, f: TicketFilter, now: datetime
) -> tuple[list[TicketSummary], int]:
    """One page of tickets matching ``f`` and how many match in all."""
    cond = _where(f)
    query = _ordered(select(*_columns()).where(*cond), now).limit(f.limit).offset(f.offset)
    count = select(func.count()).select_from(T).where(*cond)
    rows, total = await _fetch(engine, query, count)
    return [_summary(r, now) for r in rows], total


async def callbacks(engine: AsyncEngine, now: datetime, *, limit: int = 50) -> list[TicketSummary]:
    """Abandoned calls and messages still ``new`` with a number to call, newest first."""
    c = T.c
    query = (
        select(*_columns())
        .where(c.status == "new", c.outcome.in_(CALLBACK_OUTCOMES), c.caller.is_not(None))
        .where(c.caller != "")
        .order_by(c.started_at.desc(), c.id.desc())
        .limit(limit)
    )
    rows, _ = await _fetch(engine, query, None)
    return [_summary(r, now) for r in rows]


async def caller_history(
    engine: AsyncEngine, caller: str, now: datetime, *, exclude: str | None = None, limit: int = 10
) -> list[TicketSummary]:
    """The caller's earlier tickets, newest first (not ``exclude``, the current one)."""
    c = T.c
    query = select(*_columns()).where(c.caller == caller, _not_confidential())
    if exclude is not None:
        query = query.where(c.code != exclude)
    query = query.order_by(c.started_at.desc(), c.id.desc()).limit(limit)
    rows, _ = await _fetch(engine, query, None)
    return [_summary(r, now) for r in rows]
