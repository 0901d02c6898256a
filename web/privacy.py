"""Confidential complaints and the audit log, in the web app.

A complaint about officials (``complaint_type = "can_bo"``) hides the caller's identity,
number and recording from everybody but supervisors and admins (``Perm.CONFIDENTIAL``); each
time one of those sees them, the view is written to the audit log (``tickets.audit``) *before*
the data is sent. Every play of a recording is audited too. Administrators read the log at
``GET /api/v1/audit``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm
from tickets.audit import AuditAction, AuditEntry, SqlAuditLog
from tickets.model import Ticket
from web import errors as v
from web.security import Principal, guard
from web.views import ticket_json


def audit_log(request: Request) -> SqlAuditLog:
    return request.app.state.audit  # type: ignore[no-any-return]


async def record(
    request: Request, p: Principal, action: AuditAction, code: str | None, detail: str
) -> None:
    await audit_log(request).record(
        actor=p.user.name, role=p.user.role.value, action=action, ticket_code=code, detail=detail
    )


async def shown(request: Request, p: Principal, t: Ticket, where: str) -> Ticket:
    """The ticket as ``p`` may see it: a confidential one without caller, contact and
    recording, unless ``p`` may see them, and then the view is audited first."""
    if not t.confidential:
        return t
    if p.user.can(Perm.CONFIDENTIAL):
        await record(request, p, AuditAction.VIEW_TICKET, t.code, where)
        return t
    return replace(t, caller=None, contact_id=None, recording=None)


async def ticket_view(request: Request, p: Principal, t: Ticket, where: str) -> dict[str, Any]:
    """``web.views.ticket_json`` of what ``p`` may see (``shown``)."""
    seen = await shown(request, p, t, where)
    out = ticket_json(seen)
    out["complaint_type"] = t.complaint_type
    out["confidential"] = t.confidential
    out["identity_hidden"] = t.confidential and seen.caller is None and t.caller is not None
    return out


async def conversation_view(
    request: Request, p: Principal, t: Ticket, data: dict[str, Any]
) -> dict[str, Any]:
    """A message conversation (``web.conversations``) as ``p`` may see it: for a confidential
    ticket, supervisors and admins get the contact (audited first), others see the messages
    without the citizen's identity, contact, reach details or other tickets."""
    if not t.confidential:
        return data
    if p.user.can(Perm.CONFIDENTIAL):
        await record(request, p, AuditAction.VIEW_TICKET, t.code, "conversation")
        data["ticket"] = {**data["ticket"], "caller": t.caller, "contact_id": t.contact_id}
        return data
    hidden = dict(data)
    hidden["contact"] = None
    hidden["tickets"] = []
    hidden["messages"] = [
        {**m, "author_id": None, "reach": None} if m.get("author") == "citizen" else m
        for m in data["messages"]
    ]
    return hidden


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "role": e.role,
        "action": e.action.value,
        "ticket": e.ticket_code,
        "detail": e.detail,
    }


@guard(Perm.AUDIT, api=True)
async def audit(request: Request, p: Principal) -> Response:
    """The audit log, newest first; filters: ticket, actor, since, until, limit."""
    qp = request.query_params
    found = await audit_log(request).entries(
        ticket_code=v.opt_text(qp.get("ticket"), "ticket", max_len=32),
        actor=v.opt_text(qp.get("actor"), "actor", max_len=64),
        since=v.when(qp.get("since"), "since"),
        until=v.when(qp.get("until"), "until", end_of_day=True),
        limit=v.integer(qp.get("limit"), "limit", default=100, lo=1, hi=1000),
    )
    return JSONResponse({"entries": [entry_json(e) for e in found]})


def routes(prefix: str) -> list[BaseRoute]:
    return [Route(f"{prefix}/audit", audit, methods=["GET"])]
