"""Time arithmetic in SQL that works the same on SQLite and PostgreSQL.

Timestamps are stored in UTC (``tongdai.db.UtcDateTime``: ``timestamptz`` on PostgreSQL,
naive UTC text on SQLite). Reports group by Vietnam time: Asia/Ho_Chi_Minh has had no daylight
saving since 1975, so SQLite's fixed ``+7 hours`` is exact and PostgreSQL uses the zone name.
Every key comes back as the same text or integer on both backends (``2026-05-01``,
``2026-W18``, ``2026-05``, hour 0-23, ISO weekday 1 = Monday .. 7 = Sunday).

Constants are inlined as SQL literals, not bound parameters: PostgreSQL only accepts a
``GROUP BY`` expression that is textually the same as the selected one, and two bound
parameters with the same value are not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String, cast, extract, func, literal_column
from sqlalchemy.sql.elements import ColumnElement

ZONE = "Asia/Ho_Chi_Minh"
SQLITE_SHIFT = "+7 hours"

Expr = ColumnElement[Any]


def _text(value: str) -> ColumnElement[str]:
    if "'" in value:
        raise ValueError(f"SQL literal with a quote: {value!r}")
    return literal_column(f"'{value}'", String)


def _int(value: int) -> ColumnElement[int]:
    return literal_column(str(int(value)), Integer)


class TimeSql:
    """Builds the dialect's expressions; ``dialect`` is ``sqlite`` or ``postgresql``."""

    def __init__(self, dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"reports support sqlite and postgresql, not {dialect!r}")
        self.pg = dialect == "postgresql"

    def seconds(self, later: Expr, earlier: Expr) -> ColumnElement[float]:
        """``later - earlier`` in seconds (float; NULL if either is NULL).

        SQLite's julianday is a double with ~10 µs resolution, so the result is rounded to
        milliseconds: a wait of exactly 20 s must compare ``<= 20`` as true.
        """
        if self.pg:
            return cast(extract("epoch", later - earlier), Float)
        diff = (func.julianday(later) - func.julianday(earlier)) * literal_column("86400.0")
        return cast(func.round(diff, _int(3)), Float)

    def _local(self, column: Expr) -> Expr:
        return func.timezone(_text(ZONE), column)

    def hour(self, column: Expr) -> ColumnElement[int]:
        """Hour of day 0-23 in Vietnam time."""
        if self.pg:
            return cast(extract("hour", self._local(column)), Integer)
        return cast(func.strftime(_text("%H"), column, _text(SQLITE_SHIFT)), Integer)

    def weekday(self, column: Expr) -> ColumnElement[int]:
        """ISO weekday in Vietnam time: 1 = Monday .. 7 = Sunday."""
        if self.pg:
            return cast(extract("isodow", self._local(column)), Integer)
        sunday0 = cast(func.strftime(_text("%w"), column, _text(SQLITE_SHIFT)), Integer)
        return (sunday0 + _int(6)) % _int(7) + _int(1)

    def day(self, column: Expr) -> ColumnElement[str]:
        """``YYYY-MM-DD`` in Vietnam time."""
        if self.pg:
            return func.to_char(self._local(column), _text("YYYY-MM-DD"))
        return func.date(column, _text(SQLITE_SHIFT))

    def week(self, column: Expr) -> ColumnElement[str]:
        """ISO week ``YYYY-Www`` in Vietnam time (the year is the ISO year)."""
        if self.pg:
            return func.to_char(self._local(column), _text('IYYY-"W"IW'))
        # the Thursday of the ISO week decides its year; its day of year gives the week number
        thursday = func.date(column, _text(SQLITE_SHIFT), _text("weekday 0"), _text("-3 days"))
        day_of_year = cast(func.strftime(_text("%j"), thursday), Integer)
        number = (day_of_year - _int(1)) // _int(7) + _int(1)  # integer division
        return func.printf(_text("%s-W%02d"), func.strftime(_text("%Y"), thursday), number)

    def month(self, column: Expr) -> ColumnElement[str]:
        """``YYYY-MM`` in Vietnam time."""
        if self.pg:
            return func.to_char(self._local(column), _text("YYYY-MM"))
        return func.strftime(_text("%Y-%m"), column, _text(SQLITE_SHIFT))
