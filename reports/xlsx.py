"""The XLSX workbook: a summary sheet, one sheet per view and a definitions sheet.

Numbers are real numeric cells with number formats (``0.0%`` for ratios, ``0.0`` for seconds,
``#,##0`` for counts), so the figures can be summed and charted; a figure that cannot be
computed (nothing to divide by) is an empty cell. Text is always stored as text (a queue
named ``=1+1`` is not a formula). Headers are Vietnamese; the definitions sheet has both
languages.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.definitions import DEFINITIONS
from reports.model import Cell, Kind, Metric, Report, Table
from tongdai.clock import VN_TZ

NUMBER_FORMATS: dict[Kind, str] = {
    "int": "#,##0",
    "ratio": "0.0%",
    "seconds": "0.0",
    "hours": "0.00",
    "number": "0.00",
    "text": "@",
}
#: sheet name of each view (Excel allows 31 characters, no []:*?/\)
SHEETS = {
    "by_channel": "Theo kênh",
    "by_agency": "Theo cơ quan",
    "by_queue": "Hàng đợi",
    "by_category": "Lĩnh vực",
    "by_agent": "Tổng đài viên",
    "by_hour": "Theo giờ",
    "by_day": "Theo ngày",
    "by_week": "Theo tuần",
    "by_month": "Theo tháng",
    "heatmap": "Giờ x thứ",
    "satisfaction": "Hài lòng",
    "staffing": "Dự báo nhân lực",
}
SUMMARY_SHEET = "Tổng quan"
DEFINITIONS_SHEET = "Định nghĩa"
_HEADER = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")


def _put(ws: Worksheet, row: int, col: int, value: Cell, kind: Kind) -> None:
    cell = ws.cell(row=row, column=col, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # a name like "=1+1" stays text, never a formula
    if value is not None:
        cell.number_format = NUMBER_FORMATS[kind]


def _header(ws: Worksheet, row: int, labels: list[str]) -> None:
    for col, label in enumerate(labels, start=1):
        cell = ws.cell(row=row, column=col, value=label)
        cell.font, cell.fill = _HEADER, _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _widths(ws: Worksheet, widths: list[int]) -> None:
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width


def _metrics(ws: Worksheet, row: int, title: str, metrics: list[Metric]) -> int:
    ws.cell(row=row, column=1, value=title).font = _HEADER
    _header(ws, row + 1, ["Chỉ số", "Metric", "Giá trị", "Ghi chú"])
    row += 2
    for m in metrics:
        ws.cell(row=row, column=1, value=m.vi)
        ws.cell(row=row, column=2, value=m.en)
        _put(ws, row, 3, m.value, m.kind)
        ws.cell(row=row, column=4, value=m.note)
        row += 1
    return row + 1


def _summary(ws: Worksheet, report: Report, generated: datetime) -> None:
    ws.cell(row=1, column=1, value=report.title()).font = Font(bold=True, size=14)
    facts: list[tuple[str, Cell, Kind]] = [
        ("Kỳ báo cáo (giờ Việt Nam)", report.period_text(), "text"),
        ("T của mức phục vụ (giây)", report.sl_seconds, "int"),
        ("Chỉ tiêu mức phục vụ", report.sl_target, "ratio"),
        ("Lập lúc", f"{generated.astimezone(VN_TZ):%d/%m/%Y %H:%M}", "text"),
    ]
    for i, (label, value, kind) in enumerate(facts, start=2):
        ws.cell(row=i, column=1, value=label)
        _put(ws, i, 3, value, kind)
    row = len(facts) + 3
    for title, metrics in report.metrics():
        row = _metrics(ws, row, title, metrics)
    _widths(ws, [38, 34, 14, 60])


def _table(ws: Worksheet, table: Table) -> None:
    _header(ws, 1, [c.vi for c in table.columns])
    for r, values in enumerate(table.rows, start=2):
        for col, (column, value) in enumerate(zip(table.columns, values, strict=True), start=1):
            _put(ws, r, col, value, column.kind)
    ws.freeze_panes = "B2"
    _widths(ws, [max(12, len(c.vi) + 2) if i else 22 for i, c in enumerate(table.columns)])
    if table.note:
        ws.cell(row=len(table.rows) + 3, column=1, value=table.note).font = Font(italic=True)
    if table.name == "heatmap" and table.rows:
        area = f"B2:{get_column_letter(len(table.columns))}{len(table.rows) + 1}"
        ws.conditional_formatting.add(
            area,
            ColorScaleRule(  # type: ignore[no-untyped-call]  # untyped in openpyxl
                start_type="min", start_color="FFFFFF", end_type="max", end_color="F03B20"
            ),
        )


def _definitions(ws: Worksheet) -> None:
    _header(ws, 1, ["Chỉ số", "Định nghĩa", "Metric", "Definition"])
    for r, d in enumerate(DEFINITIONS.values(), start=2):
        for col, text in enumerate((d.vi, d.text_vi, d.en, d.text_en), start=1):
            ws.cell(row=r, column=col, value=text).alignment = Alignment(
                wrap_text=True, vertical="top"
            )
    _widths(ws, [26, 70, 26, 70])


def build_workbook(report: Report, *, generated: datetime | None = None) -> Workbook:
    """The workbook (summary, one sheet per view present, definitions)."""
    wb = Workbook()
    summary = wb.active
    assert isinstance(summary, Worksheet)
    summary.title = SUMMARY_SHEET
    _summary(summary, report, generated or datetime.now(UTC))
    for name, sheet in SHEETS.items():
        if name in report.views:
            _table(wb.create_sheet(sheet), report.views[name])
    if "staffing" not in report.views:
        wb.create_sheet(SHEETS["staffing"]).cell(row=1, column=1, value=report.staffing_note)
    _definitions(wb.create_sheet(DEFINITIONS_SHEET))
    return wb


def render_xlsx(report: Report, *, generated: datetime | None = None) -> bytes:
    """The workbook as XLSX bytes."""
    buffer = io.BytesIO()
    build_workbook(report, generated=generated).save(buffer)
    return buffer.getvalue()
