"""How pages are drawn: the Jinja2 environment (autoescaped, strict) with the Vietnamese
formatting filters, ``render`` (a template with the caller, CSRF token and the ?ok=/?err=
message keys), ``back`` (303 to a page with a fixed message key: nothing typed is reflected)
and ``form`` (a posted form's text fields). Every page module uses these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from accounts.model import ROLE_LABELS
from web import labels
from web.security import Principal

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = labels.vn_datetime
    env.filters["isodt"] = labels.vn_iso
    env.filters["num"] = labels.vn_number
    env.filters["dur"] = labels.duration
    env.filters["pct"] = labels.percent
    env.globals["L"] = labels
    env.globals["ROLE_LABELS"] = ROLE_LABELS
    return env


ENV = _environment()


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    principal: Principal | None = getattr(request.state, "principal", None)
    deps = getattr(request.app.state, "deps", None)
    categories = deps.categories if deps is not None else {}
    ctx = {
        "me": principal.user if principal else None,
        "csrf": principal.csrf if principal else None,
        "path": request.url.path,
        "ok": labels.DONE.get(request.query_params.get("ok", "")),
        "err": labels.FAILED.get(request.query_params.get("err", ""))
        if request.query_params.get("err")
        else None,
        "categories": categories,
        "labels": labels.labels_data(categories),
        **(context or {}),
    }
    return HTMLResponse(ENV.get_template(name).render(ctx), status_code=status)


def back(path: str, *, ok: str | None = None, err: str | None = None) -> RedirectResponse:
    key = f"ok={ok}" if ok else f"err={quote(err or 'failed')}"
    return RedirectResponse(f"{path}{'&' if '?' in path else '?'}{key}", 303)


async def form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}
