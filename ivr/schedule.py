"""Office hours: a weekly table with holidays decides whether the menu runs or the closed message
plays. Loaded from ``ivr/schedule.toml``; errors name the file and the field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from tongdai.config_file import read_toml
from tongdai.errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Schedule:
    always_open: bool
    tz: timezone
    week: dict[int, tuple[tuple[time, time], ...]]
    holidays: frozenset[date]

    def is_open(self, now: datetime) -> bool:
        if self.always_open:
            return True
        local = now.astimezone(self.tz)
        if local.date() in self.holidays:
            return False
        t = local.time()
        return any(start <= t < end for start, end in self.week.get(local.weekday(), ()))


ALWAYS_OPEN = Schedule(True, timezone(timedelta(hours=7)), {}, frozenset())


def _interval(file: str, fld: str, text: Any) -> tuple[time, time]:
    try:
        a, b = str(text).split("-")
        start, end = time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
    except ValueError:
        raise ConfigError(file, fld, f"expected 'HH:MM-HH:MM', got {text!r}") from None
    if not start < end:
        raise ConfigError(file, fld, f"interval ends before it starts: {text!r}")
    return start, end


def load_schedule(path: str | Path) -> Schedule:
    file = str(path)
    raw = read_toml(path)
    s = raw.get("schedule")
    if not isinstance(s, dict):
        raise ConfigError(file, "schedule", "missing [schedule] table")
    always = s.get("always_open", False)
    if not isinstance(always, bool):
        raise ConfigError(file, "schedule.always_open", "must be true or false")
    offset = s.get("utc_offset_hours", 7)
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not -12 <= offset <= 14:
        raise ConfigError(file, "schedule.utc_offset_hours", "must be a number from -12 to 14")
    holidays: set[date] = set()
    for i, h in enumerate(s.get("holidays", [])):
        try:
            holidays.add(h if isinstance(h, date) else date.fromisoformat(str(h)))
        except ValueError:
            raise ConfigError(file, f"schedule.holidays[{i}]", f"not an ISO date: {h!r}") from None
    week_raw = s.get("week", {})
    if not isinstance(week_raw, dict):
        raise ConfigError(file, "schedule.week", "must be a table of weekdays")
    week: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, intervals in week_raw.items():
        if day not in DAYS:
            raise ConfigError(file, f"schedule.week.{day}", f"unknown day (use {', '.join(DAYS)})")
        if not isinstance(intervals, list):
            raise ConfigError(file, f"schedule.week.{day}", "must be a list of 'HH:MM-HH:MM'")
        week[DAYS.index(day)] = tuple(
            _interval(file, f"schedule.week.{day}[{i}]", iv) for i, iv in enumerate(intervals)
        )
    return Schedule(always, timezone(timedelta(hours=float(offset))), week, frozenset(holidays))
