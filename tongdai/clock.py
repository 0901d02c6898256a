"""Time for every domain: Vietnam's time zone and timezone-aware UTC.

Every timestamp the project stores is timezone-aware UTC (``as_utc`` refuses naive ones); days,
hours, weeks and months a person sees are in Vietnam time (``VN_TZ``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

#: Asia/Ho_Chi_Minh has had no daylight saving since 1975: a fixed UTC+7 is exact
VN_TZ = timezone(timedelta(hours=7), "ICT")


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the default clock of the stores)."""
    return datetime.now(UTC)


def as_utc(value: datetime, name: str = "time") -> datetime:
    """``value`` in UTC; a naive datetime raises ValueError."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value.isoformat()} (give a time zone)")
    return value.astimezone(UTC)
