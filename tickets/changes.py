"""Value rules both ticket stores share, so the memory fake and SQL behave the same.

``check_changes`` validates the keyword arguments of ``TicketStore.update``; ``as_utc``
normalises every timestamp a store is given; ``status_fields`` is what a status change sets
besides the status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tickets.model import UPDATABLE_FIELDS, ComplaintType, Outcome, Status
from tongdai.clock import as_utc

#: updatable fields holding a timestamp (the spool turns these back from ISO text)
TIME_FIELDS = frozenset({"queued_at", "answered_at", "ended_at", "due_at", "resolved_at"})
#: updatable fields holding a whole number, with their allowed range (inclusive)
INT_FIELDS: dict[str, tuple[int, int | None]] = {
    "satisfaction": (1, 5),
    "acw_seconds": (0, None),
    "contact_id": (1, None),
}


def _check_int(name: str, value: Any) -> int:
    low, high = INT_FIELDS[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected a whole number, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}: {value} is out of range ({allowed})")
    return value


def check_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes with timestamps in UTC and ``outcome`` as an ``Outcome``.

    Unknown field names, naive timestamps, unknown outcomes and whole numbers out of range
    (``satisfaction`` 1-5, ``acw_seconds`` >= 0) raise ValueError.
    """
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(
            f"cannot update {', '.join(unknown)} (allowed: {', '.join(sorted(UPDATABLE_FIELDS))})"
        )
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if value is not None and name in TIME_FIELDS:
            value = as_utc(value, name)
        elif value is not None and name in INT_FIELDS:
            value = _check_int(name, value)
        elif value is not None and name == "outcome":
            try:
                value = Outcome(value)
            except ValueError:
                raise ValueError(f"outcome: unknown value {value!r}") from None
        elif value is not None and name == "complaint_type":
            try:
                value = ComplaintType(value).value
            except ValueError:
                raise ValueError(f"complaint_type: unknown value {value!r}") from None
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
        checked[name] = value
    return checked


def status_fields(new: Status, at: datetime) -> dict[str, Any]:
    """Fields a move to ``new`` at ``at`` sets besides ``status``: resolving stamps
    ``resolved_at``, reopening (back to in_progress) clears it, closing keeps it."""
    if new is Status.RESOLVED:
        return {"resolved_at": at}
    if new is Status.IN_PROGRESS:
        return {"resolved_at": None}
    return {}
