"""Rebuilds what the engine missed from Asterisk's queue_log, so every call leaves a ticket.

When the engine is down, the dialplan still sends callers to the general queue (the IVR's
FastAGI fails, ``AGISTATUS=FAILURE``), and nobody hears the AMI events of calls already queued.
Asterisk keeps writing its queue_log (``epoch|callid|queue|agent|EVENT|data...``), so at start
the engine reads it back: a call with no ticket gets one (``fallback`` in its path), and a
queued ticket left open is completed from ENTERQUEUE / CONNECT / ABANDON / EXIT* / COMPLETE*.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickets.model import IvrStep, Outcome
from tickets.store import TicketStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

FINAL = {
    "ABANDON",
    "EXITWITHTIMEOUT",
    "EXITEMPTY",
    "EXITWITHKEY",
    "COMPLETECALLER",
    "COMPLETEAGENT",
}


@dataclass
class QueuedCall:
    callid: str
    queue: str = ""
    caller: str | None = None
    entered: datetime | None = None
    answered: datetime | None = None
    agent: str | None = None
    ended: datetime | None = None
    outcome: Outcome | None = None
    events: list[str] = field(default_factory=list)


def parse_queue_log(lines: list[str], since: datetime) -> dict[str, QueuedCall]:
    """Queue calls by callid from queue_log lines at or after ``since`` (bad lines skipped).

    ``since`` should reach back past the longest queue wait, so a call's ENTERQUEUE is seen."""
    calls: dict[str, QueuedCall] = {}
    floor = since.timestamp()
    for line in lines:
        parts = line.rstrip("\n").split("|")
        if len(parts) < 5 or not parts[0].isdigit() or int(parts[0]) < floor:
            continue
        at = datetime.fromtimestamp(int(parts[0]), UTC)
        callid, queue, agent, event, data = parts[1], parts[2], parts[3], parts[4], parts[5:]
        if callid in ("", "NONE"):
            continue
        c = calls.setdefault(callid, QueuedCall(callid))
        c.events.append(event)
        if event == "ENTERQUEUE":
            c.queue, c.entered = queue, at
            c.caller = (data[1] if len(data) > 1 else "") or None
        elif event == "CONNECT":
            c.answered, c.agent, c.outcome = at, agent.split("/", 1)[-1], Outcome.ANSWERED
        elif event in FINAL:
            c.ended = at
            if c.answered is None:
                c.outcome = Outcome.ABANDONED_QUEUE
    return calls


async def reconcile(
    tickets: TicketStore,
    queue_log: Path,
    since: datetime,
    *,
    context: timedelta = timedelta(hours=6),
) -> int:
    """Create tickets for calls that entered a queue at or after ``since`` and have none, and
    complete open tickets from the queue_log; returns how many tickets changed. Lines from
    ``context`` before ``since`` are read too, to find the start of calls still waiting then."""
    try:
        text = await asyncio.to_thread(queue_log.read_text, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    lines = text.splitlines()
    changed = 0
    for c in parse_queue_log(lines, since - context).values():
        if c.entered is None:
            continue
        try:
            changed += await _apply(tickets, c, since)
        except StoreError as exc:
            log.error("reconcile %s: %s", c.callid, exc)
    if changed:
        log.info("reconciled %d ticket(s) from %s", changed, queue_log)
    return changed


async def _apply(tickets: TicketStore, c: QueuedCall, since: datetime) -> int:
    assert c.entered is not None
    ticket = await tickets.find_by_uniqueid(c.callid)
    if ticket is None and c.entered < since:
        return 0  # before this engine's watch began: not ours to invent
    if ticket is None:
        caller = c.caller if c.caller not in (None, "unknown", "anonymous") else None
        ticket = await tickets.open(
            channel="voice", caller=caller, uniqueid=c.callid, started_at=c.entered
        )
        await tickets.append_steps(
            ticket.code, [IvrStep(at=c.entered, node="fallback", detail="ivr_unreachable")]
        )
        await tickets.update(ticket.code, category="chung")
    elif ticket.ended_at is not None:
        return 0
    changes: dict[str, object] = {"queue": c.queue, "queued_at": ticket.queued_at or c.entered}
    if c.answered is not None:
        changes.update(answered_at=c.answered, agent=c.agent)
    if c.ended is not None:
        changes.update(ended_at=c.ended, outcome=c.outcome)
    await tickets.update(ticket.code, **changes)
    return 1
