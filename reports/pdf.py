"""The monthly PDF report in Vietnamese for the provincial leadership (reportlab).

Title ``Báo cáo tháng MM/YYYY - Tổng đài 1022``, the headline figures, the per-channel and
per-agency tables (forwards to agencies: answered on time, late, overdue, sent back, hours to
answer), charts (volume and service level per day, the hour x weekday heatmap, categories),
tables, the staffing forecast
(agents per hour of the week) and the KPI definitions. Text uses DejaVu Sans from
matplotlib's data folder (it has every Vietnamese glyph), embedded in the PDF, so no system
font is needed. Names from the data are escaped before they reach reportlab's markup.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from reports.charts import CHARTS, render_all
from reports.definitions import DEFINITIONS
from reports.model import UNITS, WEEKDAYS_SHORT_VI, Metric, Report, Table, fmt
from tongdai.clock import VN_TZ

FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"
WIDTH = A4[0] - 3 * cm
#: columns of the KPI tables in the PDF (the XLSX/CSV have them all)
PDF_COLUMNS = (
    "offered",
    "entered_queue",
    "answered",
    "abandoned_queue",
    "service_level",
    "asa_seconds",
    "aht_seconds",
    "abandon_rate",
)
#: the per-channel table's columns in the PDF (all but the key, which ``_view`` adds)
CHANNEL_COLUMNS = (
    "contacts",
    "answered",
    "self_service",
    "abandoned",
    "first_response_seconds",
    "first_response_median_seconds",
    "resolve_hours",
)
#: the per-agency table's columns (all of them: the leadership reads this one closely)
AGENCY_COLUMNS = (
    "forwarded",
    "answered_on_time",
    "answered_late",
    "overdue_open",
    "sent_back",
    "answer_hours",
    "answer_median_hours",
)
AGENT_COLUMNS = (
    "answered",
    "service_level",
    "asa_seconds",
    "aht_seconds",
    "satisfaction_mean",
    "occupancy",
)
#: the by-day table is left out of longer reports (the chart shows the days)
MAX_DAY_ROWS = 62


def font_dir() -> Path:
    """matplotlib's bundled TTF folder (DejaVu Sans)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    pdfmetrics.registerFont(TTFont(FONT, str(font_dir() / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(font_dir() / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


_STYLES = {
    "title": ParagraphStyle("title", fontName=BOLD, fontSize=17, leading=22, spaceAfter=6),
    "h2": ParagraphStyle(
        "h2",
        fontName=BOLD,
        fontSize=12.5,
        leading=16,
        spaceBefore=12,
        spaceAfter=5,
        textColor=colors.HexColor("#1f4e79"),
    ),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12),
    "small": ParagraphStyle(
        "small", fontName=FONT, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#444444")
    ),
    "cell": ParagraphStyle("cell", fontName=FONT, fontSize=7.5, leading=9),
}


def _p(text: str, style: str = "body") -> Paragraph:
    return Paragraph(escape(text), _STYLES[style])


def _grid(
    data: list[list[str | Paragraph]],
    widths: list[float] | None = None,
    *,
    first_col_left: bool = True,
    highlight: tuple[tuple[int, int], ...] = (),
) -> PdfTable:
    table = PdfTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style: list[Any] = [
        ("FONT", (0, 0), (-1, -1), FONT, 7.5),
        ("FONT", (0, 0), (-1, 0), BOLD, 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b0b0")),
        ("ALIGN", (1 if first_col_left else 0, 1), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for col, row in highlight:
        style.append(("TEXTCOLOR", (col, row), (col, row), colors.HexColor("#c00000")))
    table.setStyle(TableStyle(style))
    return table


def _header_cell(text: str) -> Paragraph:
    return Paragraph(escape(text), ParagraphStyle("hc", parent=_STYLES["cell"], fontName=BOLD))


def _metrics_table(report: Report, metrics: list[Metric]) -> PdfTable:
    rows: list[list[str | Paragraph]] = [["Chỉ số", "Giá trị"]]
    highlight = []
    for i, m in enumerate(metrics, start=1):
        rows.append([_p(m.vi, "cell"), fmt(m.value, m.kind)])
        if m.name == "service_level" and report.sl_missed():
            highlight.append((1, i))
    return _grid(rows, [9 * cm, 4 * cm], highlight=tuple(highlight))


def _view(table: Table, names: tuple[str, ...]) -> PdfTable:
    index = {c.name: i for i, c in enumerate(table.columns)}
    chosen = [table.columns[0], *(table.columns[index[n]] for n in names if n in index)]
    header = [
        _header_cell(c.vi + (f" ({UNITS[c.kind].strip()})" if c.kind in UNITS else ""))
        for c in chosen
    ]
    rows: list[list[str | Paragraph]] = [list(header)]
    for row in table.rows:
        cells = [row[index[c.name]] for c in chosen]
        first = _p(fmt(cells[0], chosen[0].kind), "cell")
        rows.append(
            [
                first,
                *(fmt(v, c.kind, unit=False) for c, v in zip(chosen[1:], cells[1:], strict=True)),
            ]
        )
    first_width = 4.2 * cm
    rest = (WIDTH - first_width) / max(1, len(chosen) - 1)
    return _grid(rows, [first_width] + [rest] * (len(chosen) - 1))


def _staffing_grid(table: Table) -> PdfTable:
    """24 hours x 7 weekdays: ``on the phones / to schedule``."""
    cells: dict[tuple[int, int], str] = {}
    for row in table.rows:
        values = dict(zip((c.name for c in table.columns), row, strict=True))
        weekday, hour = int(values["weekday"] or 0), int(values["hour"] or 0)
        cells[(weekday, hour)] = f"{values['agents']}/{values['agents_with_shrinkage']}"
    data: list[list[str | Paragraph]] = [["Giờ", *WEEKDAYS_SHORT_VI]]
    for hour in range(24):
        data.append([f"{hour:02d}:00", *(cells.get((d, hour), "0/0") for d in range(1, 8))])
    return _grid(data, [2.2 * cm] + [2.0 * cm] * 7, first_col_left=False)


def _chart(png: bytes, caption: str) -> KeepTogether:
    image = Image(io.BytesIO(png))
    ratio = image.imageHeight / image.imageWidth
    image.drawWidth, image.drawHeight = WIDTH, WIDTH * ratio
    return KeepTogether([_p(caption, "body"), image, Spacer(1, 6)])


def _story(report: Report, generated: datetime) -> list[Flowable]:
    made = generated.astimezone(VN_TZ)
    story: list[Flowable] = [
        Paragraph(escape(report.title()), _STYLES["title"]),
        _p(
            f"Kỳ báo cáo: {report.period_text()} (giờ Việt Nam, UTC+7). Mức phục vụ (SL): tỷ "
            f"lệ cuộc được trả lời trong {report.sl_seconds} giây, chỉ tiêu "
            f"{fmt(report.sl_target, 'ratio')}. Lập lúc {made:%d/%m/%Y %H:%M}."
        ),
        Paragraph("1. Tổng quan", _STYLES["h2"]),
        _metrics_table(report, report.summary),
    ]
    story += [_p(m.note, "small") for m in report.summary if m.note]
    for title, metrics in report.metrics()[1:]:
        story += [Paragraph(escape(title), _STYLES["h2"]), _metrics_table(report, metrics)]
    channels = report.views["by_channel"]
    story += [Paragraph(escape(channels.vi), _STYLES["h2"]), _view(channels, CHANNEL_COLUMNS)]
    agencies = report.views["by_agency"]
    story.append(Paragraph(escape(agencies.vi), _STYLES["h2"]))
    if agencies.rows:
        story.append(_view(agencies, AGENCY_COLUMNS))
    else:
        story.append(_p("Không có phiếu chuyển cơ quan trong kỳ."))
    story += [PageBreak(), Paragraph("2. Biểu đồ", _STYLES["h2"])]
    charts = render_all(report, "png")
    story += [_chart(charts[name], caption) for name, caption in CHARTS.items()]
    story += [PageBreak(), Paragraph("3. Số liệu chi tiết", _STYLES["h2"])]
    views = ["by_queue", "by_category", "by_week"]
    if len(report.views["by_day"].rows) <= MAX_DAY_ROWS:
        views.append("by_day")
    else:
        views.insert(2, "by_month")
    for name in views:
        table = report.views[name]
        story += [_p(table.vi, "body"), _view(table, PDF_COLUMNS), Spacer(1, 8)]
    agents = report.views["by_agent"]
    story += [_p(agents.vi, "body"), _view(agents, AGENT_COLUMNS)]
    story += [_p(agents.note or "", "small"), Spacer(1, 8)]
    sat = report.views["satisfaction"]
    story += [_p(sat.vi, "body"), _view(sat, ("count", "share"))]
    story += [PageBreak(), Paragraph("4. Dự báo nhân lực (Erlang C)", _STYLES["h2"])]
    staffing = report.views.get("staffing")
    if staffing is None:
        story.append(_p(report.staffing_note))
    else:
        story += [
            _p(
                "Số tổng đài viên cần cho mỗi giờ trong tuần: trực điện thoại / cần xếp lịch "
                "(đã tính tỷ lệ vắng mặt). " + report.staffing_note
            ),
            Spacer(1, 4),
            _staffing_grid(staffing),
        ]
    story += [PageBreak(), Paragraph("5. Định nghĩa chỉ số", _STYLES["h2"])]
    for d in DEFINITIONS.values():
        story.append(Paragraph(f"<b>{escape(d.vi)}</b>: {escape(d.text_vi)}", _STYLES["body"]))
        story.append(Spacer(1, 3))
    return story


def render_pdf(report: Report, *, generated: datetime | None = None) -> bytes:
    """The report as PDF bytes."""
    _register_fonts()
    buffer = io.BytesIO()
    title = report.title()

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.drawString(1.5 * cm, 1 * cm, title)
        canvas.drawRightString(A4[0] - 1.5 * cm, 1 * cm, f"Trang {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
        topMargin=1.5 * cm,
        bottomMargin=1.8 * cm,
        title=title,
        author="Tổng đài 1022",
        invariant=True,
    )
    doc.build(
        _story(report, generated or datetime.now(UTC)), onFirstPage=footer, onLaterPages=footer
    )
    return buffer.getvalue()
