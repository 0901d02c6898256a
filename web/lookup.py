"""``/tra-cuu``: a citizen follows their ticket without logging in.

They give the ticket code and either the last 4 digits of the phone number or the e-mail
address the ticket was opened with. The page then shows the status, the agency handling it,
the dates and, once resolved, the agency's answer if it was marked public - nothing else (no
number, no notes, no name). A wrong code and wrong digits get the same answer, so the page
does not say which codes exist. Every look-up counts against the client's address (``web.limits``
through ``WebDeps.lookup_limiter``): past the limit, 429 with Retry-After, even with the right
digits. The form is a POST so codes and digits stay out of addresses and logs.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agencies.desk import ForwardDesk
from agencies.forwards import ForwardState
from tickets.model import Channel, Status, Ticket
from web import labels
from web.render import form, render
from web.security import client_ip

CODE_RE = re.compile(r"^1022-\d{8}-\d{6}$")
DIGITS_RE = re.compile(r"^\d{4}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
NOT_FOUND = "Không tìm thấy phiếu khớp với mã và thông tin đã nhập."
FORWARD_LABELS = {
    ForwardState.FORWARDED: "Đang chờ cơ quan trả lời",
    ForwardState.EXTENDED: "Cơ quan đã xin gia hạn",
    ForwardState.ANSWERED: "Cơ quan đã trả lời",
    ForwardState.SENT_BACK: "Tổng đài 1022 đang xử lý",
}


def matches(ticket: Ticket, proof: str) -> bool:
    """The last 4 digits of the caller's number (calls), or the whole e-mail address the
    ticket was opened with (any case)."""
    caller = (ticket.caller or "").strip()
    if not caller:
        return False
    if DIGITS_RE.match(proof):
        # a phone number only on calls: a chat's caller is a platform id, digits or not
        digits = re.sub(r"\D", "", caller)
        if ticket.channel != Channel.VOICE or "@" in caller or len(digits) < 4:
            return False
        return secrets.compare_digest(digits[-4:], proof)
    return "@" in proof and secrets.compare_digest(caller.lower().encode(), proof.lower().encode())


async def public_view(desk: ForwardDesk, ticket: Ticket) -> dict[str, Any]:
    fwd = await desk.current(ticket.code)
    done = ticket.status in (Status.RESOLVED, Status.CLOSED)
    answer = None
    if done and fwd is not None and fwd.answer_public and fwd.replied_at is not None:
        answer = fwd.answer
    dates: list[tuple[str, datetime]] = [("Tiếp nhận", ticket.started_at)]
    if fwd is not None:
        dates.append(("Chuyển cơ quan", fwd.forwarded_at))
        if fwd.open:
            dates.append(("Hạn trả lời", fwd.due_at))
        if fwd.answered_at is not None:
            dates.append(("Cơ quan trả lời", fwd.answered_at))
    if done and ticket.resolved_at is not None:
        dates.append(("Hoàn thành", ticket.resolved_at))
    return {
        "code": ticket.code,
        "status": labels.STATUSES.get(ticket.status.value, ticket.status.value),
        "agency": desk.book.name(fwd.agency_id) if fwd is not None else None,
        "progress": FORWARD_LABELS[fwd.state] if fwd is not None else None,
        "dates": dates,
        "answer": answer,
    }


async def lookup(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "lookup.html", {"found": None, "problem": None, "code": ""})
    deps = request.app.state.deps
    ip = client_ip(request)
    key = f"tra-cuu|{ip}"
    wait = await deps.lookup_limiter.retry_after(ip, key)
    if wait is not None:
        ctx = {
            "found": None,
            "code": "",
            "problem": "Bạn đã tra cứu quá nhiều lần, xin thử lại sau.",
        }
        response = render(request, "lookup.html", ctx, 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    await deps.lookup_limiter.failed(ip, key)  # every look-up counts
    data = await form(request)
    code = (data.get("code") or "").strip().upper()[:40]
    proof = (data.get("proof") or "").strip()[:320]
    shown_code = code if CODE_RE.match(code) else ""
    if not CODE_RE.match(code) or not (DIGITS_RE.match(proof) or EMAIL_RE.match(proof)):
        problem = "Nhập mã phiếu (1022-YYYYMMDD-NNNNNN) và 4 số cuối điện thoại hoặc email."
        return render(request, "lookup.html", {"found": None, "problem": problem,
                                               "code": shown_code}, 422)  # fmt: skip
    desk: ForwardDesk = request.app.state.desk
    ticket = await deps.tickets.get(code)
    if ticket is None or not matches(ticket, proof):
        ctx = {"found": None, "problem": NOT_FOUND, "code": shown_code}
        return render(request, "lookup.html", ctx, 404)
    found = await public_view(desk, ticket)
    return render(request, "lookup.html", {"found": found, "problem": None, "code": shown_code})


def routes() -> list[BaseRoute]:
    return [Route("/tra-cuu", lookup, methods=["GET", "POST"])]
