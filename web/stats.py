"""Today's figures for the wallboard, aggregated in SQL from the tickets (Vietnam day).

Per queue: answered, abandoned, service level (answered within T seconds /
answered with a known wait: the same definition and the same SQL as the reports, via
``reports.kpi.ReportQueries``), callbacks pending. Per agent: calls handled and average handle
time ((talk + after-call work) / handled). "Callbacks pending" are tickets still ``new`` whose
caller hung up in the queue or the menu, or left a message: the agent console's call-back list.
Forwards to agencies still unanswered are counted past their deadline and due within a day.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agencies.calendar import NEARLY_DUE
from agencies.forwards import OPEN_STATES
from agencies.sql import F
from reports.kpi import ReportQueries
from tickets.sql import T
from tongdai.clock import VN_TZ, as_utc
from tongdai.db import DB_ERRORS, describe, store_error

#: outcomes whose tickets go to the call-back list while their status is ``new``
CALLBACK_OUTCOMES = ("abandoned_queue", "abandoned_ivr", "message_left")
SL_SECONDS = 20
#: the service level the hotline aims for (as in the reports: 80 % within 20 s)
SL_TARGET = 0.8


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Start and end of ``now``'s day in Vietnam time."""
    local = as_utc(now, "now").astimezone(VN_TZ)
    start = datetime.combine(local.date(), time(0), VN_TZ)
    return start, start + timedelta(days=1)


def _ratio(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


async def today(
    engine: AsyncEngine, now: datetime, *, sl_seconds: int = SL_SECONDS
) -> dict[str, Any]:
    """``{"day", "sl_seconds", "queues": {name: {...}}, "agents": {id: {...}}, "total": {...}}``."""
    start, end = day_bounds(now)
    q = ReportQueries(engine.dialect.name, start, end, sl_seconds)
    c = T.c
    pending = and_(
        c.started_at >= start,
        c.started_at < end,
        c.status == "new",
        c.outcome.in_(CALLBACK_OUTCOMES),
    )
    queries = {
        "queues": q.grouped(c.queue.label("key")),
        "agents": q.grouped(c.agent.label("key"), where=c.agent.is_not(None)),
        "callbacks": select(c.queue.label("key"), func.count().label("n"))
        .where(pending)
        .group_by(c.queue),
        # forwards the agencies still owe: past the deadline, or due within a day
        "forwards": select(
            func.count().filter(F.c.due_at < now).label("overdue"),
            func.count().filter(F.c.due_at >= now, F.c.due_at <= now + NEARLY_DUE).label("near"),
        ).where(F.c.state.in_([st.value for st in OPEN_STATES])),
    }
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        async with engine.connect() as conn:
            for name, query in queries.items():
                rows[name] = [dict(r) for r in (await conn.execute(query)).mappings()]
    except DB_ERRORS as exc:
        raise store_error(f"wallboard figures ({describe(engine.url)})", exc) from exc

    callbacks = {r["key"]: int(r["n"]) for r in rows["callbacks"]}
    queues: dict[str, dict[str, Any]] = {}
    total = {"answered": 0, "abandoned": 0, "in_sl": 0, "timed": 0}
    for r in rows["queues"]:
        figures = {
            "answered": int(r["answered"] or 0),
            "abandoned": int(r["abandoned_queue"] or 0),
            "in_sl": int(r["in_sl"] or 0),
            "timed": int(r["wait_count"] or 0),
        }
        for k in total:
            total[k] += figures[k]
        if r["key"] is None:
            continue  # calls that never reached a queue
        queues[str(r["key"])] = {
            **figures,
            "service_level": _ratio(figures["in_sl"], figures["timed"]),
            "callbacks": callbacks.get(r["key"], 0),
        }
    for name, n in callbacks.items():
        if name is not None and name not in queues:
            queues[str(name)] = {**dict.fromkeys(total, 0), "service_level": None, "callbacks": n}
    agents: dict[str, dict[str, Any]] = {}
    for r in rows["agents"]:
        handled = int(r["handled"] or 0)
        work = float(r["talk_sum"] or 0) + float(r["acw_sum"] or 0)
        agents[str(r["key"])] = {
            "handled": handled,
            "aht_s": round(work / handled, 1) if handled else None,
        }
    return {
        "day": start.date().isoformat(),
        "sl_seconds": sl_seconds,
        "sl_target": SL_TARGET,
        "queues": queues,
        "agents": agents,
        "total": {
            **total,
            "service_level": _ratio(total["in_sl"], total["timed"]),
            "callbacks": sum(callbacks.values()),
            "forwards_overdue": int(rows["forwards"][0]["overdue"] or 0),
            "forwards_nearly_due": int(rows["forwards"][0]["near"] or 0),
        },
    }
