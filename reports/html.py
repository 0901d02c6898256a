"""The HTML report: one self-contained page (Jinja2, autoescape on) with the charts inline as
base64 SVG images, for the web app's manager pages or to open from disk.

Every text from the data (queue, category and agent names) goes through Jinja2's escaping;
the charts are ``<img>`` data URLs, where a browser runs no script.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from reports.charts import CHARTS, render_all
from reports.definitions import DEFINITIONS
from reports.model import Cell, Kind, Report, fmt
from tongdai.clock import VN_TZ

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: the views shown as tables, in order (the heatmap is also a chart)
HTML_TABLES = (
    "by_channel",
    "by_agency",
    "by_queue",
    "by_category",
    "by_agent",
    "by_month",
    "by_week",
    "by_day",
    "by_hour",
    "heatmap",
    "satisfaction",
    "staffing",
)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def format_filter(value: Cell, kind: Kind) -> str:
        return fmt(value, kind)

    env.filters["fmt"] = format_filter
    env.globals["zip"] = zip
    return env


def render_html(report: Report, *, generated: datetime | None = None) -> str:
    """The report as an HTML page (a string)."""
    charts = {
        name: base64.b64encode(data).decode("ascii")
        for name, data in render_all(report, "svg").items()
    }
    made = (generated or datetime.now(UTC)).astimezone(VN_TZ)
    template = _environment().get_template("report.html")
    return template.render(
        report=report,
        title=report.title(),
        period=report.period_text(),
        target=fmt(report.sl_target, "ratio"),
        generated=f"{made:%d/%m/%Y %H:%M}",
        sl_missed=report.sl_missed(),
        charts=charts,
        captions=CHARTS,
        tables=[report.views[name] for name in HTML_TABLES if name in report.views],
        definitions=DEFINITIONS,
    )
