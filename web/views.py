"""JSON views shared by the API and the pages: a ticket, a dossier, the agent's current call.

The current call is what the console pops up: the caller's number, the IVR path and category
(from the ticket the IVR opened), the dossier the caller asked about, and the caller's earlier
tickets. Everything a caller or an agent typed stays data here; the console's script puts it in
the page with ``textContent`` only.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from starlette.applications import Starlette

from dossiers.model import CODE_RE as DOSSIER_RE
from dossiers.model import Dossier
from tickets.model import Ticket
from web.ticket_query import caller_history


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


#: the folder (last part of the path) of the agents' call recordings (``[ivr] calls_dir``)
CALLS_FOLDER = "calls"


def is_call_recording(ticket: Ticket) -> bool:
    """Is the ticket's recording an agent call's (not a caller's message)?"""
    parts = (ticket.recording or "").replace("\\", "/").rsplit("/", 2)
    return len(parts) >= 2 and parts[-2] == CALLS_FOLDER


def recording_url(ticket: Ticket) -> str | None:
    """``/recordings/<name>.wav`` for a ticket with a recorded message,
    ``/recordings/calls/<name>.wav`` for a recorded agent call."""
    if not ticket.recording:
        return None
    name = ticket.recording.replace("\\", "/").rsplit("/", 1)[-1]
    if not name.endswith(".wav"):
        return None
    return (
        f"/recordings/{CALLS_FOLDER}/{name}" if is_call_recording(ticket) else f"/recordings/{name}"
    )


def ticket_json(t: Ticket) -> dict[str, Any]:
    return {
        "code": t.code,
        "channel": t.channel,
        "caller": t.caller,
        "started_at": _iso(t.started_at),
        "queued_at": _iso(t.queued_at),
        "answered_at": _iso(t.answered_at),
        "ended_at": _iso(t.ended_at),
        "category": t.category,
        "queue": t.queue,
        "agent": t.agent,
        "outcome": t.outcome.value if t.outcome else None,
        "dossier_code": t.dossier_code,
        "notes": t.notes,
        "status": t.status.value,
        "due_at": _iso(t.due_at),
        "resolved_at": _iso(t.resolved_at),
        "satisfaction": t.satisfaction,
        "recording_url": recording_url(t),
        "ivr_path": [
            {"at": _iso(s.at), "node": s.node, "key": s.key, "detail": s.detail} for s in t.ivr_path
        ],
        "history": [
            {
                "at": _iso(h.at),
                "from": h.from_status.value if h.from_status else None,
                "to": h.to_status.value,
                "by": h.by,
                "note": h.note,
            }
            for h in t.history
        ],
    }


def dossier_json(d: Dossier) -> dict[str, Any]:
    data = asdict(d)
    data["status"] = d.status.value
    data["received_date"] = d.received_date.isoformat()
    data["due_date"] = d.due_date.isoformat() if d.due_date else None
    return data


async def current_call(app: Starlette, agent_id: str) -> dict[str, Any]:
    """``{"at", "me", "call"}``; ``call`` is None when the agent has none."""
    deps = app.state.deps
    state = deps.control.state()
    me = state.agent(agent_id)
    out: dict[str, Any] = {"at": state.at, "me": asdict(me) if me else None, "call": None}
    if me is None or me.call_id is None:
        return out
    call: dict[str, Any] = {
        "id": me.call_id,
        "caller": me.caller,
        "queue": me.queue,
        "ticket": None,
        "dossier": None,
        "earlier": [],
    }
    ticket = await deps.tickets.get(me.ticket) if me.ticket else None
    if ticket is not None:
        call["ticket"] = ticket_json(ticket)
        code = ticket.dossier_code
        if code and DOSSIER_RE.match(code):
            found = await app.state.dossiers.find(code)
            call["dossier"] = dossier_json(found) if found else None
    number = me.caller or (ticket.caller if ticket else None)
    if number:
        earlier = await caller_history(deps.engine, number, deps.clock(), exclude=me.ticket)
        call["earlier"] = [t.to_dict() for t in earlier]
    out["call"] = call
    return out
