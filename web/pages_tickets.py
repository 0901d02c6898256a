"""Ticket pages (search, detail with timeline and recording, the status workflow form),
recordings for logged-in users, and the manager's report pages.

Recordings: only ``<messages_dir>/<name>.wav`` where the name is letters, digits, ``-_.`` and
the resolved file is inside the folder (no ``..``, no symlink out of it). Agents' call
recordings (``/recordings/calls/<ticket code>.wav``, ``hotline.recordings``) are for supervisors
and admins only (``Perm.CALL_RECORDINGS``); a confidential complaint's also needs
``Perm.CONFIDENTIAL``. Every play is written to the audit log before the file is sent.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm
from reports.html import render_html
from reports.kpi import compute
from reports.xlsx import render_xlsx
from tickets.audit import AuditAction
from tickets.codes import CODE_RE
from tickets.model import Status
from tongdai.clock import VN_TZ
from web import errors as v
from web import pages_postal, privacy, ticket_query
from web.api import ticket_filter
from web.errors import ApiError
from web.pages_agency import forward_context
from web.render import back, form, render
from web.security import Principal, guard
from web.ticket_actions import ACTIONS, COMPLAINT_TYPES, MAX_NOTES, Change, may_write
from web.views import is_call_recording, recording_url

P = Perm
RECORDING_RE = re.compile(r"^[A-Za-z0-9_.-]{1,120}\.wav$")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
PAGE_SIZE = 50


def _back_target(value: str | None, code: str) -> str:
    return f"/console?ticket={quote(code)}" if value == "console" else f"/tickets/{quote(code)}"


@guard(P.TICKETS_READ, api=False)
async def tickets(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    q = request.query_params
    try:
        f = ticket_filter(q, deps.categories)
    except ApiError as exc:
        return render(request, "tickets.html", _list_context(q, [], 0, exc.message), 422)
    page = v.integer(q.get("page"), "page", default=1, lo=1, hi=10_000)
    f = ticket_query.TicketFilter(
        **{**f.__dict__, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE}
    )
    found, total = await ticket_query.search(deps.engine, f, deps.clock())
    ctx = _list_context(q, found, total, None)
    ctx["page"] = page
    ctx["pages"] = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    return render(request, "tickets.html", ctx)


def _list_context(q: Any, found: list[Any], total: int, error: str | None) -> dict[str, Any]:
    keys = ("since", "until", "category", "outcome", "status", "caller", "agent")
    filters = {k: (q.get(k) or "")[:64] for k in keys}
    query = urlencode({k: value for k, value in filters.items() if value})
    return {
        "tickets": found,
        "total": total,
        "filters": filters,
        "query": query,
        "error": error,
        "page": 1,
        "pages": 1,
    }


@guard(P.TICKETS_READ, api=False)
async def ticket(request: Request, p: Principal) -> Response:
    actions = request.app.state.actions
    stored = await actions.get(str(request.path_params["code"]))
    found = await privacy.shown(request, p, stored, "page")
    timeline: list[tuple[datetime, str, str]] = [
        (found.started_at, "Cuộc gọi đến", found.caller or "")
    ]
    for s in found.ivr_path:
        what = f"Menu: {s.node}" + (f" (phím {s.key})" if s.key else "")
        timeline.append((s.at, what, s.detail or ""))
    for label, at, who in (
        ("Vào hàng đợi", found.queued_at, found.queue),
        ("Tổng đài viên nghe máy", found.answered_at, found.agent),
        ("Kết thúc cuộc gọi", found.ended_at, None),
    ):
        if at is not None:
            timeline.append((at, label, who or ""))
    for h in found.history:
        before = h.from_status.value if h.from_status else ""
        timeline.append(
            (h.at, f"Trạng thái: {before} → {h.to_status.value}", f"{h.by}: {h.note or ''}")
        )
    postal, postal_rows = await pages_postal.ticket_part(request, p.user, found.code)
    timeline += postal_rows
    timeline.sort(key=lambda row: row[0])
    deps = request.app.state.deps
    agents = sorted(a.id for a in deps.control.state().agents)
    now = deps.clock()
    overdue = (
        found.category == "phan_anh"
        and found.due_at is not None
        and found.due_at < now
        and found.status in (Status.NEW, Status.IN_PROGRESS)
    )
    return render(
        request,
        "ticket.html",
        {
            "t": found,
            "timeline": timeline,
            "audio": recording_url(found)
            if not is_call_recording(found) or p.user.can(P.CALL_RECORDINGS)
            else None,
            "call_audio": is_call_recording(found),
            "can_write": may_write(p.user, stored),
            "hidden": stored.confidential and found.caller is None,
            "complaint_types": COMPLAINT_TYPES,
            "agents": agents,
            "overdue": overdue,
            **await forward_context(request, p, found),
            "postal": postal,
            "postal_link": pages_postal.link_for(found.code, found.dossier_code),
        },
    )


@guard(P.TICKETS_WRITE_OWN, P.TICKETS_WRITE_ALL, api=False)
async def ticket_post(request: Request, p: Principal) -> Response:
    code = str(request.path_params["code"])[:32]
    data = await form(request)
    target = _back_target(data.get("back"), code)
    deps = request.app.state.deps
    try:
        notes = data.get("notes")
        change = Change(
            action=v.choice(data.get("action") or "save", "action", ACTIONS),
            notes=None
            if notes is None
            else v.text(notes.replace("\r\n", "\n"), "notes", max_len=MAX_NOTES, multiline=True),
            category=v.opt_choice(data.get("category"), "category", tuple(deps.categories)),
            note=v.opt_text(data.get("note"), "note", max_len=500, multiline=True),
            agent=v.opt_text(data.get("agent"), "agent", max_len=64),
            complaint_type=v.opt_choice(
                data.get("complaint_type"), "complaint_type", tuple(COMPLAINT_TYPES)
            ),
        )
        await request.app.state.actions.apply(p.user, code, change)
    except ApiError as exc:
        return back(target, err=exc.error_id)
    return back(target, ok="saved")


@guard(P.TICKETS_READ, P.CONSOLE, api=False)
async def recording(request: Request, p: Principal) -> Response:
    name = str(request.path_params["name"])
    if not RECORDING_RE.match(name) or name.startswith("."):
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    path = await asyncio.to_thread(_recording_path, Path(request.app.state.deps.messages_dir), name)
    if path is None:
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    # a message is saved as <ticket code>.wav: a confidential complaint's is not for everyone
    code = name.removesuffix(".wav")
    owner = await request.app.state.deps.tickets.get(code) if CODE_RE.match(code) else None
    if owner is not None and owner.confidential and not p.user.can(P.CONFIDENTIAL):
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    await privacy.record(
        request, p, AuditAction.PLAY_RECORDING, owner.code if owner else None, name
    )
    headers = {"Cache-Control": "private, no-store"}
    return FileResponse(path, media_type="audio/wav", headers=headers)


@guard(P.CALL_RECORDINGS, api=False)
async def call_recording(request: Request, p: Principal) -> Response:
    """An agent call's recording, named by its ticket code (supervisors and admins)."""
    name = str(request.path_params["name"])
    code = name.removesuffix(".wav")
    if not name.endswith(".wav") or not CODE_RE.match(code):
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    owner = await request.app.state.deps.tickets.get(code)
    # only the file linked to the ticket (hotline.recordings): not one left without a link
    if owner is None or not is_call_recording(owner) or Path(owner.recording or "").name != name:
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    if owner.confidential and not p.user.can(P.CONFIDENTIAL):
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    path = await asyncio.to_thread(_recording_path, Path(request.app.state.deps.calls_dir), name)
    if path is None:
        raise ApiError(404, "not_found", "Không tìm thấy bản ghi.")
    await privacy.record(request, p, AuditAction.PLAY_RECORDING, code, f"calls/{name}")
    headers = {"Cache-Control": "private, no-store"}
    return FileResponse(path, media_type="audio/wav", headers=headers)


def _recording_path(folder: Path, name: str) -> Path | None:
    """The file, if it really is inside ``folder`` (after resolving links)."""
    base = folder.resolve()
    path = (base / name).resolve()
    return path if path.parent == base and path.is_file() else None


def _period(q: Any, now: datetime) -> tuple[datetime, datetime]:
    local = now.astimezone(VN_TZ)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = v.when(q.get("from"), "from") or first
    end = v.when(q.get("to"), "to", end_of_day=True) or (
        local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    )
    if end <= start:
        raise v.invalid("to", "must be after from")
    if end - start > timedelta(days=400):
        raise v.invalid("to", "at most 400 days")
    return start, end


@guard(P.REPORTS, api=False)
async def reports(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    try:
        start, end = _period(request.query_params, deps.clock())
    except ApiError as exc:
        return render(request, "reports.html", {"error": exc.message, "start": "", "end": ""}, 422)
    return render(
        request,
        "reports.html",
        {
            "error": None,
            "start": start.astimezone(VN_TZ).date().isoformat(),
            "end": (end - timedelta(days=1)).astimezone(VN_TZ).date().isoformat(),
        },
    )


@guard(P.REPORTS, api=False)
async def report_view(request: Request, p: Principal) -> Response:
    deps = request.app.state.deps
    start, end = _period(request.query_params, deps.clock())
    names = {a.id: a.name for a in request.app.state.desk.book}
    report = await compute(deps.engine, start, end, as_of=deps.clock(), agency_names=names)
    if request.query_params.get("format") == "xlsx":
        data = await asyncio.to_thread(render_xlsx, report)
        name = f"bao_cao_1022_{start:%Y%m%d}.xlsx"
        return Response(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    html = await asyncio.to_thread(render_html, report)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})


def routes() -> list[BaseRoute]:
    return [
        Route("/tickets", tickets, methods=["GET"]),
        Route("/tickets/{code}", ticket, methods=["GET"]),
        Route("/tickets/{code}", ticket_post, methods=["POST"]),
        Route("/recordings/calls/{name}", call_recording, methods=["GET"]),
        Route("/recordings/{name}", recording, methods=["GET"]),
        Route("/reports", reports, methods=["GET"]),
        Route("/reports/view", report_view, methods=["GET"]),
    ]
