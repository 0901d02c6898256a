"""Working days on the office calendar (``ivr/schedule.toml``, read by ``ivr.schedule``): a
working day is a weekday with opening hours that is not a public holiday (Tết included).

An agency's deadline of N working days runs from the day after the forward: forwarded on
Friday with 3 working days, it is due at the close of Wednesday (Monday, Tuesday,
Wednesday); forwarded the Friday before Tết, the days of Tết do not count. "Close" is the end
of that day's last opening interval (17:00 in Quảng Nam), in the office's time zone. The
schedule's ``always_open`` (the lab's switch for calls) does not change the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from ivr.schedule import Schedule, load_schedule
from tongdai.clock import as_utc

#: the close of a working day when the schedule gives no hours (a schedule with no week)
DEFAULT_CLOSE = time(17, 0)
#: a deadline this close (or closer) is "nearly due"
NEARLY_DUE = timedelta(days=1)


@dataclass(frozen=True)
class WorkCalendar:
    schedule: Schedule

    @classmethod
    def from_file(cls, path: str | Path) -> WorkCalendar:
        return cls(load_schedule(path))

    def _hours(self, day: date) -> tuple[tuple[time, time], ...]:
        if not self.schedule.week:  # no week table at all: Monday to Friday
            return ((time(0), DEFAULT_CLOSE),) if day.weekday() < 5 else ()
        return self.schedule.week.get(day.weekday(), ())

    def is_working_day(self, day: date) -> bool:
        return day not in self.schedule.holidays and bool(self._hours(day))

    def close_of(self, day: date) -> datetime:
        """The end of ``day``'s office hours, in UTC."""
        hours = self._hours(day)
        end = max((e for _, e in hours), default=DEFAULT_CLOSE)
        return datetime.combine(day, end, self.schedule.tz).astimezone(UTC)

    def local_day(self, at: datetime) -> date:
        return as_utc(at, "at").astimezone(self.schedule.tz).date()

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
        if days < 1:
            raise ValueError(f"working days: need at least 1, got {days}")
        day, left = start, days
        for _ in range(days * 7 + 400):  # a year of holidays cannot stop it
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
                if left == 0:
                    return day
        raise ValueError("the calendar has no working day in the coming year")

    def due(self, forwarded_at: datetime, days: int) -> datetime:
        """When an answer of ``days`` working days for a forward at ``forwarded_at`` is due."""
        return self.close_of(self.add_working_days(self.local_day(forwarded_at), days))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after ``start``'s day up to and including ``end``'s day."""
        a, b = self.local_day(start), self.local_day(end)
        n, day = 0, a
        while day < b:
            day += timedelta(days=1)
            n += self.is_working_day(day)
        return n
