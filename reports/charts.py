"""The report's charts (matplotlib, no pyplot state): volume and service level per day, the
hour x weekday heatmap, calls by category. SVG for the HTML page, PNG for the PDF.

Labels are Vietnamese; matplotlib's bundled DejaVu Sans has the Vietnamese glyphs, so no system
font is needed. SVG text is drawn as paths, so names from the data cannot inject markup.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from reports.model import WEEKDAYS_SHORT_VI, Report, Table

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn (it is slow to import)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ChartFormat = Literal["svg", "png"]
#: chart name -> Vietnamese caption, in display order
CHARTS = {
    "volume": "Cuộc gọi đến và được trả lời theo ngày",
    "service_level": "Mức phục vụ (SL) theo ngày",
    "heatmap": "Cuộc gọi đến theo giờ và thứ (giờ Việt Nam)",
    "categories": "Cuộc gọi theo lĩnh vực",
}
_COLORS = {"offered": "#9ecae1", "answered": "#3182bd", "sl": "#31a354", "target": "#de2d26"}
#: at most this many categories are drawn (the rest are in the tables)
TOP_CATEGORIES = 12


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def _save(fig: Figure, fmt: ChartFormat) -> bytes:
    from matplotlib import rc_context

    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "tongdai"}):
        fig.savefig(buffer, format=fmt, dpi=150, metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: ChartFormat) -> dict[str, str | None]:
    # no creation date: the same report gives the same bytes
    return {"Date": None} if fmt == "svg" else {}


def _day_labels(table: Table) -> list[str]:
    return [str(day)[5:] for day in table.column("day")]  # MM-DD


def _day_axis(ax: Axes, labels: list[str]) -> None:
    """Day labels under the bars, at most ~16 of them."""
    step = max(1, len(labels) // 16)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, fontsize=7)


def volume(report: Report, fmt: ChartFormat) -> bytes:
    table = report.views["by_day"]
    fig, ax = _figure(9, 2.7)
    labels = _day_labels(table)
    xs = range(len(labels))
    offered = [int(v or 0) for v in table.column("offered")]
    answered = [int(v or 0) for v in table.column("answered")]
    ax.bar(xs, offered, color=_COLORS["offered"], label="Cuộc gọi đến")
    ax.bar(xs, answered, color=_COLORS["answered"], width=0.5, label="Được trả lời")
    _day_axis(ax, labels)
    ax.set_ylabel("Số cuộc")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, fmt)


def service_level(report: Report, fmt: ChartFormat) -> bytes:
    table = report.views["by_day"]
    fig, ax = _figure(9, 2.7)
    labels = _day_labels(table)
    values = [
        float(v) * 100 if isinstance(v, int | float) else float("nan")
        for v in table.column("service_level")
    ]
    ax.plot(
        range(len(labels)),
        values,
        marker="o",
        markersize=3,
        color=_COLORS["sl"],
        label=f"SL (trả lời trong {report.sl_seconds} giây)",
    )
    ax.axhline(
        report.sl_target * 100,
        color=_COLORS["target"],
        linestyle="--",
        label=f"Chỉ tiêu {report.sl_target * 100:.0f}%",
    )
    _day_axis(ax, labels)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, fmt)


def heatmap(report: Report, fmt: ChartFormat) -> bytes:
    table = report.views["heatmap"]
    grid = [[int(v or 0) for v in row[1:]] for row in table.rows]  # 24 hours x 7 days
    fig, ax = _figure(9, 2.8)
    transposed = [list(day) for day in zip(*grid, strict=True)]  # 7 days x 24 hours
    image = ax.imshow(transposed, aspect="auto", cmap="YlOrRd", interpolation="nearest")
    ax.set_yticks(range(7), list(WEEKDAYS_SHORT_VI))
    ax.set_xticks(range(24), [str(h) for h in range(24)], fontsize=7)
    ax.set_xlabel("Giờ trong ngày")
    fig.colorbar(image, ax=ax, label="Số cuộc")
    return _save(fig, fmt)


def categories(report: Report, fmt: ChartFormat) -> bytes:
    table = report.views["by_category"]
    rows = table.rows[:TOP_CATEGORIES]
    names = [str(r[0]) for r in rows][::-1]
    offered = [int(r[1] or 0) for r in rows][::-1]
    fig, ax = _figure(9, max(1.8, 0.28 * len(rows) + 0.8))
    ax.barh(range(len(names)), offered, color=_COLORS["answered"])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("Cuộc gọi đến")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, fmt)


_RENDERERS: dict[str, Callable[[Report, ChartFormat], bytes]] = {
    "volume": volume,
    "service_level": service_level,
    "heatmap": heatmap,
    "categories": categories,
}


def render_all(report: Report, fmt: ChartFormat) -> dict[str, bytes]:
    """Every chart of ``CHARTS`` as ``fmt`` bytes, by name."""
    return {name: _RENDERERS[name](report, fmt) for name in CHARTS}
