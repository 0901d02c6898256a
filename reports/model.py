"""What a report is made of, independent of its output format: typed tables and metrics.

``reports.kpi.compute`` fills a ``Report``; the writers (``xlsx``, ``csv_out``, ``html``,
``pdf``) only lay it out. Every number is rounded once, here, so all formats show the same
figures: ratios to 4 decimals (0.8333 = 83.3%), seconds to 1 decimal, hours to 2.
``fmt`` is the one Vietnamese display form (decimal comma, ``.`` between thousands) used by
the HTML and PDF reports; a missing value (a division by zero) shows as ``n/a``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from tongdai.clock import VN_TZ

#: how a value is stored and shown: text, a count, a ratio 0-1 (shown as %), seconds,
#: hours, or a plain decimal number
Kind = Literal["text", "int", "ratio", "seconds", "hours", "number"]
Cell = str | int | float | None

#: the hotline's name in titles
HOTLINE = "Tổng đài 1022"
#: shown for a figure that cannot be computed (nothing to divide by, or no data source)
NA = "n/a"
#: the key shown for calls without a queue / category
NONE_KEY = "(không có)"
#: ISO weekday 1..7 -> Vietnamese name
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
WEEKDAYS_SHORT_VI = ("T2", "T3", "T4", "T5", "T6", "T7", "CN")

_DIGITS: dict[Kind, int] = {"ratio": 4, "seconds": 1, "hours": 2, "number": 2}


def rounded(value: float | int | None, kind: Kind) -> Cell:
    """``value`` rounded for ``kind`` (see the module docstring); None stays None."""
    if value is None:
        return None
    if kind == "int":
        return int(value)
    digits = _DIGITS.get(kind)
    return round(float(value), digits) if digits is not None else value


def ratio(part: float | int | None, whole: float | int | None) -> float | None:
    """``part / whole`` rounded as a ratio, or None when ``whole`` is 0 or unknown."""
    if part is None or not whole:
        return None
    return round(float(part) / float(whole), _DIGITS["ratio"])


def mean(total: float | int | None, count: int | None, kind: Kind) -> float | None:
    """``total / count`` rounded for ``kind``, or None when ``count`` is 0."""
    if total is None or not count:
        return None
    value = rounded(float(total) / count, kind)
    return float(value) if value is not None else None


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"  # 1,234.5
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")  # 1.234,5


#: the unit after a duration (``fmt(..., unit=True)``)
UNITS: dict[Kind, str] = {"seconds": " giây", "hours": " giờ"}


def fmt(value: Cell, kind: Kind, *, unit: bool = True) -> str:
    """The Vietnamese display text of a value: ``83,3%``, ``12,5 giây``, ``1.234``, ``n/a``
    (``unit=False`` leaves out ``giây``/``giờ``, for table columns that name the unit)."""
    if value is None:
        return NA
    if isinstance(value, str) or kind == "text":
        return str(value)
    if kind == "int":
        return _number(value, 0)
    if kind == "ratio":
        return _number(value * 100, 1) + "%"
    suffix = UNITS.get(kind, "") if unit else ""
    return _number(value, {"seconds": 1, "hours": 2}.get(kind, 2)) + suffix


@dataclass(frozen=True)
class Column:
    """A column of a table: machine name (CSV header), Vietnamese and English labels, kind."""

    name: str
    vi: str
    en: str
    kind: Kind


@dataclass(frozen=True)
class Table:
    """One view of the report: rows of plain values in the order of ``columns``."""

    name: str
    vi: str
    en: str
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]]
    #: a remark shown under the table (Vietnamese), e.g. why a column is n/a
    note: str | None = None

    def column(self, name: str) -> list[Cell]:
        """The values of the column called ``name``, top to bottom."""
        index = [c.name for c in self.columns].index(name)
        return [row[index] for row in self.rows]

    def records(self) -> list[dict[str, Cell]]:
        """Every row as a dict by column name."""
        names = [c.name for c in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]

    def row(self, key: Cell) -> dict[str, Cell]:
        """The first row whose first cell is ``key``, by column name (KeyError if none)."""
        for row in self.rows:
            if row[0] == key:
                return {c.name: v for c, v in zip(self.columns, row, strict=True)}
        raise KeyError(key)


@dataclass(frozen=True)
class Metric:
    """One headline figure with its own kind (the summary mixes counts, ratios, seconds)."""

    name: str
    vi: str
    en: str
    value: Cell
    kind: Kind
    note: str | None = None


@dataclass(frozen=True)
class Report:
    """Everything a report shows. ``start``/``end`` bound ``started_at`` as [start, end)."""

    start: datetime
    end: datetime
    as_of: datetime
    sl_seconds: int
    sl_target: float
    #: headline call figures (KPI name -> value), see ``reports.definitions``
    summary: list[Metric]
    complaints: list[Metric]
    satisfaction: list[Metric]
    #: by_queue, by_category, by_agent, by_hour, by_day, by_week, by_month, heatmap,
    #: satisfaction, staffing (in that order)
    views: dict[str, Table]
    #: why the staffing forecast is missing or what it assumes (Vietnamese)
    staffing_note: str
    max_occupancy: float | None = None
    shrinkage: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def figure(self, name: str) -> Cell:
        """A headline figure by name, from the summary, complaints or satisfaction."""
        for metric in (*self.summary, *self.complaints, *self.satisfaction):
            if metric.name == name:
                return metric.value
        raise KeyError(name)

    def metrics(self) -> Sequence[tuple[str, list[Metric]]]:
        """The three metric groups with their Vietnamese titles, in display order."""
        return (
            ("Tổng quan cuộc gọi", self.summary),
            ("Phản ánh", self.complaints),
            ("Mức hài lòng", self.satisfaction),
        )

    def first_day(self) -> datetime:
        """The first day of the period, Vietnam time."""
        return self.start.astimezone(VN_TZ)

    def last_day(self) -> datetime:
        """The last day the period touches (``end`` is exclusive), Vietnam time."""
        return (self.end - timedelta(microseconds=1)).astimezone(VN_TZ)

    def is_month(self) -> bool:
        """Whether the period is exactly one calendar month in Vietnam time."""
        first, after = self.first_day(), self.end.astimezone(VN_TZ)
        month_start = datetime(first.year, first.month, 1, tzinfo=first.tzinfo)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        return first == month_start and after == next_month

    def period_text(self) -> str:
        """``01/05/2026 - 31/05/2026`` (both days included)."""
        return f"{self.first_day():%d/%m/%Y} - {self.last_day():%d/%m/%Y}"

    def title(self) -> str:
        """``Báo cáo tháng 05/2026 - Tổng đài 1022`` for a month, else with both dates."""
        if self.is_month():
            return f"Báo cáo tháng {self.first_day():%m/%Y} - {HOTLINE}"
        return f"Báo cáo từ {self.first_day():%d/%m/%Y} đến {self.last_day():%d/%m/%Y} - {HOTLINE}"

    def sl_missed(self) -> bool:
        """Whether the period's service level is below its target (False when n/a)."""
        value = self.figure("service_level")
        return isinstance(value, float) and value < self.sl_target
