"""API errors and input checks: every 4xx is ``{"error": {"id", "message", "details"}}``.

Input from the network is checked here before it reaches a store: text must be a string
without control characters or lone surrogates (PostgreSQL refuses NUL bytes, and a driver error
would be a 500), within a length; dates are ISO; numbers within a range. A failed check raises
``ApiError`` (422 unless said otherwise), which the app turns into the JSON above, or into a
message on an HTML page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tongdai.clock import VN_TZ

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f]")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error_id: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.details = dict(details or {})

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return error_response(self.status, self.error_id, self.message, self.details, headers)


def error_response(
    status: int,
    error_id: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"id": error_id, "message": message, "details": dict(details or {})}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def invalid(field: str, problem: str) -> ApiError:
    return ApiError(422, "invalid_input", f"{field}: {problem}", {"field": field})


def text(value: Any, field: str, *, max_len: int, multiline: bool = False) -> str:
    """A clean string from the network (see the module docstring)."""
    if not isinstance(value, str):
        raise invalid(field, f"expected a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise invalid(field, f"longer than {max_len} characters")
    if (_CONTROL if multiline else _CONTROL_ONE_LINE).search(value):
        raise invalid(field, "contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(field, "is not valid Unicode text") from None
    return value


def opt_text(value: Any, field: str, *, max_len: int, multiline: bool = False) -> str | None:
    if value is None or value == "":
        return None
    return text(value, field, max_len=max_len, multiline=multiline)


def choice(value: Any, field: str, allowed: tuple[str, ...] | frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ApiError(
            422,
            "invalid_input",
            f"{field}: expected one of {', '.join(sorted(allowed))}",
            {"field": field, "allowed": sorted(allowed)},
        )
    return value


def opt_choice(value: Any, field: str, allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    return None if value is None or value == "" else choice(value, field, allowed)


def when(value: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (a day in Vietnam time; its start, or the next day's with ``end_of_day``)
    or an ISO date-time with an offset."""
    if value is None or value == "":
        return None
    text(value, field, max_len=40)
    try:
        if len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time(0), VN_TZ)
            return start + timedelta(days=1) if end_of_day else start
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(field, "expected YYYY-MM-DD or an ISO date-time with offset") from None
    if parsed.tzinfo is None:
        raise invalid(field, "a date-time needs an offset, e.g. +07:00")
    return parsed


def integer(value: str | None, field: str, *, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise invalid(field, "expected a whole number") from None
    if not lo <= n <= hi:
        raise invalid(field, f"must be between {lo} and {hi}")
    return n


async def json_object(request: Request, *, max_bytes: int = 64_000) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError(413, "too_large", f"body larger than {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_input", "the body must be a JSON object")
    return data


def no_unknown(data: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ApiError(
            422,
            "invalid_input",
            f"unknown field(s): {', '.join(extra)}",
            {"unknown": extra, "allowed": sorted(allowed)},
        )
