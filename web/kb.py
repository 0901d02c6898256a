"""The knowledge base in the API and the console: agents search it (``GET /api/v1/kb?q=``,
the page ``/kb``), supervisors publish a public answer into it and withdraw one
(``tickets.kb``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm
from tickets.codes import CODE_RE
from tickets.kb import MAX_ANSWER, MAX_QUESTION, KbDraft, KbEntry
from web import errors as v
from web.errors import ApiError
from web.render import render
from web.security import Principal, guard


def entry_json(e: KbEntry, score: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "question": e.question,
        "answer": e.answer,
        "category": e.category,
        "procedure": e.procedure,
        "ticket": e.ticket_code,
        "updated_by": e.updated_by,
        "updated_at": e.updated_at.isoformat(),
    }
    if score is not None:
        out["score"] = round(score, 3)
    return out


@guard(Perm.TICKETS_READ, api=True)
async def kb_search(request: Request, p: Principal) -> Response:
    """Entries holding every word of ``q`` (``loose=1``: most of them), diacritics ignored."""
    qp = request.query_params
    q = v.text(qp.get("q", ""), "q", max_len=300)
    loose = v.opt_choice(qp.get("loose"), "loose", ("0", "1")) == "1"
    limit = v.integer(qp.get("limit"), "limit", default=10, lo=1, hi=50)
    hits = await request.app.state.kb.search(q, strict=not loose, limit=limit)
    return JSONResponse({"query": q, "entries": [entry_json(h.entry, h.score) for h in hits]})


@guard(Perm.TICKETS_WRITE_ALL, api=True)
async def kb_publish(request: Request, p: Principal) -> Response:
    body = await v.json_object(request)
    v.no_unknown(body, {"question", "answer", "category", "procedure", "ticket"})
    draft = KbDraft(
        question=v.text(body.get("question"), "question", max_len=MAX_QUESTION, multiline=True),
        answer=v.text(body.get("answer"), "answer", max_len=MAX_ANSWER, multiline=True),
        category=v.opt_choice(
            body.get("category"), "category", tuple(request.app.state.deps.categories)
        ),
        procedure=v.opt_text(body.get("procedure"), "procedure", max_len=200),
        ticket_code=v.opt_text(body.get("ticket"), "ticket", max_len=32),
    )
    if draft.ticket_code is not None:
        if not CODE_RE.match(draft.ticket_code):
            raise v.invalid("ticket", "a ticket code looks like 1022-20261128-000123")
        if await request.app.state.deps.tickets.get(draft.ticket_code) is None:
            raise ApiError(404, "not_found", f"no ticket {draft.ticket_code}")
    try:
        made = await request.app.state.kb.publish(draft, by=p.user.name)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    return JSONResponse(entry_json(made), status_code=201)


@guard(Perm.TICKETS_WRITE_ALL, api=True)
async def kb_withdraw(request: Request, p: Principal) -> Response:
    entry_id = v.integer(request.path_params["entry_id"], "entry_id", default=0, lo=1, hi=2**31 - 1)
    if not await request.app.state.kb.withdraw(entry_id):
        raise ApiError(404, "not_found", f"no knowledge-base entry {entry_id}")
    return JSONResponse({"withdrawn": entry_id})


@guard(Perm.TICKETS_READ, api=False)
async def kb_page(request: Request, p: Principal) -> Response:
    """The search page: the same search as the API, answers shown as text (escaped)."""
    qp = request.query_params
    q = (qp.get("q") or "")[:300]
    loose = qp.get("loose") == "1"
    hits = await request.app.state.kb.search(q, strict=not loose, limit=20) if q.strip() else []
    return render(request, "kb.html", {"q": q, "loose": loose, "hits": hits})


def page_routes() -> list[BaseRoute]:
    """The page, and the console's short path to the search (beside ``/api/canned``)."""
    return [Route("/kb", kb_page, methods=["GET"]), Route("/api/kb", kb_search, methods=["GET"])]


def routes(prefix: str) -> list[BaseRoute]:
    return [
        Route(f"{prefix}/kb", kb_search, methods=["GET"]),
        Route(f"{prefix}/kb", kb_publish, methods=["POST"]),
        Route(f"{prefix}/kb/{{entry_id}}", kb_withdraw, methods=["DELETE"]),
    ]
