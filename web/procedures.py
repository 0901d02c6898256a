"""The procedure catalogue in the API and the console: agents search it (``GET
/api/v1/procedures?q=``, the page ``/thu-tuc``) by code or by words, diacritics, case and word
order ignored (``dossiers.procedures.rank``), and read one (``GET /api/v1/procedures/{code}``).
The catalogue is imported with ``tongdai procedures import``, not through the web."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from accounts.model import Perm
from dossiers.procedures import CODE_RE, ONLINE_LABELS, Procedure
from web import errors as v
from web.errors import ApiError
from web.render import render
from web.security import Principal, guard

MAX_QUERY = 300


def procedure_json(p: Procedure) -> dict[str, Any]:
    return {
        "code": p.code,
        "name": p.name,
        "agency": p.agency,
        "documents": [d.strip() for d in p.documents.split(";") if d.strip()],
        "time_limit_days": p.time_limit_days,
        "fee_vnd": p.fee_vnd,
        "online_level": p.online_level.value,
    }


@guard(Perm.TICKETS_READ, api=True)
async def procedures_search(request: Request, p: Principal) -> Response:
    """Procedures whose code is ``q``, or holding every word of ``q``."""
    qp = request.query_params
    q = v.text(qp.get("q", ""), "q", max_len=MAX_QUERY)
    limit = v.integer(qp.get("limit"), "limit", default=20, lo=1, hi=100)
    found = await request.app.state.procedures.search(q, limit=limit)
    return JSONResponse({"query": q, "procedures": [procedure_json(x) for x in found]})


@guard(Perm.TICKETS_READ, api=True)
async def procedure_one(request: Request, p: Principal) -> Response:
    code = request.path_params["code"]
    if not CODE_RE.match(code):
        raise v.invalid("code", "a procedure code looks like 1.004227")
    found = await request.app.state.procedures.find(code)
    if found is None:
        raise ApiError(404, "not_found", f"no procedure {code}", {"code": code})
    return JSONResponse(procedure_json(found))


@guard(Perm.TICKETS_READ, api=False)
async def procedures_page(request: Request, p: Principal) -> Response:
    """The search page: the same search as the API, shown as text (escaped by the template)."""
    q = (request.query_params.get("q") or "")[:MAX_QUERY]
    found = await request.app.state.procedures.search(q, limit=50) if q.strip() else []
    book = request.app.state.desk.book
    rows = [
        {
            "p": x,
            "agency": book.name(x.agency),
            "documents": [d.strip() for d in x.documents.split(";") if d.strip()],
            "fee": f"{x.fee_vnd:,}".replace(",", ".") + " đồng" if x.fee_vnd else "Không thu",
            "online": ONLINE_LABELS[x.online_level],
        }
        for x in found
    ]
    return render(request, "procedures.html", {"q": q, "rows": rows})


def page_routes() -> list[BaseRoute]:
    return [Route("/thu-tuc", procedures_page, methods=["GET"])]


def routes(prefix: str) -> list[BaseRoute]:
    return [
        Route(f"{prefix}/procedures", procedures_search, methods=["GET"]),
        Route(f"{prefix}/procedures/{{code}}", procedure_one, methods=["GET"]),
    ]
