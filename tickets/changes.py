"""Value rules both ticket stores share, so the memory fake and SQL behave the same.

``check_changes`` validates the keyword arguments of ``TicketStore.update``; ``as_utc``
normalises every timestamp a store is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tickets.model import UPDATABLE_FIELDS, Outcome

_TIME_FIELDS = frozenset({"queued_at", "answered_at", "ended_at"})


def as_utc(value: datetime, name: str = "time") -> datetime:
    """``value`` in UTC; a naive datetime raises ValueError."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value.isoformat()} (give a time zone)")
    return value.astimezone(UTC)


def check_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes with timestamps in UTC and ``outcome`` as an ``Outcome``.

    Unknown field names, naive timestamps and unknown outcomes raise ValueError.
    """
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(
            f"cannot update {', '.join(unknown)} (allowed: {', '.join(sorted(UPDATABLE_FIELDS))})"
        )
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if value is not None and name in _TIME_FIELDS:
            value = as_utc(value, name)
        elif value is not None and name == "outcome":
            try:
                value = Outcome(value)
            except ValueError:
                raise ValueError(f"outcome: unknown value {value!r}") from None
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
        checked[name] = value
    return checked
