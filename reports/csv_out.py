"""The CSV export: a ZIP holding one CSV file per view, for scripts and spreadsheets.

Files: ``summary.csv`` (every headline figure: ``metric,label_vi,label_en,value,kind``), one
``<view>.csv`` per view (``by_queue.csv``, ``by_day.csv``, ... ``staffing.csv``) whose header
is the columns' machine names, and ``definitions.csv``. UTF-8 with a byte-order mark (so
Excel shows Vietnamese), comma-separated, ``.`` as decimal point; ratios are 0-1
(``0.6667``), durations in seconds (hours for ``resolve_hours_*``); a figure that cannot be
computed is an empty field. A text field starting with ``= + - @`` (or a tab or carriage
return) gets a leading ``'`` so a spreadsheet shows it instead of running it as a formula
(CSV injection); numbers are never changed.
"""

from __future__ import annotations

import csv
import io
import zipfile

from reports.definitions import DEFINITIONS
from reports.model import Cell, Report

ENCODING = "utf-8-sig"
#: a fixed time for the ZIP entries, so the same report gives the same bytes
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _field(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(rows: list[list[Cell]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([[_field(v) for v in row] for row in rows])
    return buffer.getvalue().encode(ENCODING)


def csv_files(report: Report) -> dict[str, bytes]:
    """File name -> CSV bytes, in the ZIP's order."""
    summary: list[list[Cell]] = [["metric", "label_vi", "label_en", "value", "kind"]]
    for _, metrics in report.metrics():
        summary += [[m.name, m.vi, m.en, m.value, m.kind] for m in metrics]
    summary += [
        ["period_start", "Bắt đầu kỳ", "Period start", report.start.isoformat(), "text"],
        [
            "period_end",
            "Hết kỳ (không gồm)",
            "Period end (exclusive)",
            report.end.isoformat(),
            "text",
        ],
        ["sl_seconds", "T của mức phục vụ", "Service level T", report.sl_seconds, "int"],
        ["sl_target", "Chỉ tiêu mức phục vụ", "Service level target", report.sl_target, "ratio"],
    ]
    files = {"summary.csv": _csv(summary)}
    for name, table in report.views.items():
        files[f"{name}.csv"] = _csv([[c.name for c in table.columns], *map(list, table.rows)])
    definitions: list[list[Cell]] = [
        ["metric", "label_vi", "definition_vi", "label_en", "definition_en"]
    ]
    definitions += [[k, d.vi, d.text_vi, d.en, d.text_en] for k, d in DEFINITIONS.items()]
    files["definitions.csv"] = _csv(definitions)
    return files


def render_csv_zip(report: Report) -> bytes:
    """The ZIP of ``csv_files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in csv_files(report).items():
            archive.writestr(
                zipfile.ZipInfo(name, date_time=_ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED
            )
    return buffer.getvalue()
