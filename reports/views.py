"""Turns the aggregate rows of ``reports.kpi`` into the report's tables and metrics.

Only group rows pass through here (one per queue, day, hour ...), never ticket rows. Ratios
and means are derived from the SQL sums (``figures``); periods with no calls get rows of
zeros so days, weeks and months without calls still show; a division by zero gives None
(shown as ``n/a``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from reports.definitions import DEFINITIONS
from reports.model import (
    NONE_KEY,
    WEEKDAYS_SHORT_VI,
    Cell,
    Column,
    Kind,
    Metric,
    Table,
    mean,
    ratio,
    rounded,
)
from tongdai.clock import VN_TZ

Row = Mapping[str, Any]


def _col(name: str, kind: Kind, vi: str | None = None, en: str | None = None) -> Column:
    d = DEFINITIONS.get(name)
    return Column(name, vi or (d.vi if d else name), en or (d.en if d else name), kind)


#: the KPI columns of every call view, in order (``figures`` returns them in this order)
KPI_COLUMNS: tuple[Column, ...] = (
    _col("offered", "int"),
    _col("self_service", "int"),
    _col("entered_queue", "int"),
    _col("answered", "int"),
    _col("abandoned_ivr", "int"),
    _col("abandoned_queue", "int"),
    _col("message_left", "int"),
    _col("closed_hours", "int"),
    _col("rejected_busy", "int"),
    _col("callbacks", "int"),
    _col("answered_in_sl", "int"),
    _col("service_level", "ratio"),
    _col("asa_seconds", "seconds"),
    _col("aht_seconds", "seconds"),
    _col("abandon_rate", "ratio"),
)
_COUNTS = {c.name: c.name for c in KPI_COLUMNS if c.kind == "int"} | {"answered_in_sl": "in_sl"}

OCCUPANCY_NOTE = (
    "Tỷ lệ chiếm dụng: n/a - phiếu cuộc gọi không ghi thời gian rảnh của tổng đài viên; "
    "cần dữ liệu trạng thái tổng đài viên từ ACD."
)

#: view name -> (Vietnamese title, English title, key column)
_TITLES: dict[str, tuple[str, str, Column]] = {
    "by_queue": ("Theo hàng đợi", "By queue", Column("queue", "Hàng đợi", "Queue", "text")),
    "by_category": (
        "Theo lĩnh vực",
        "By category",
        Column("category", "Lĩnh vực", "Category", "text"),
    ),
    "by_hour": ("Theo giờ trong ngày", "By hour of day", Column("hour", "Giờ", "Hour", "int")),
    "by_day": ("Theo ngày", "By day", Column("day", "Ngày", "Day", "text")),
    "by_week": ("Theo tuần (ISO)", "By ISO week", Column("week", "Tuần", "Week", "text")),
    "by_month": ("Theo tháng", "By month", Column("month", "Tháng", "Month", "text")),
}


def figures(row: Row) -> tuple[Cell, ...]:
    """The KPI values of one aggregate row, in the order of ``KPI_COLUMNS``."""
    counts = {name: int(row[src] or 0) for name, src in _COUNTS.items()}
    wait_count, handled = int(row["wait_count"] or 0), int(row["handled"] or 0)
    handle_sum = None
    if row["talk_sum"] is not None:
        handle_sum = float(row["talk_sum"]) + float(row["acw_sum"] or 0)
    derived: dict[str, Cell] = {
        "service_level": ratio(row["in_sl"], wait_count),
        "asa_seconds": mean(row["wait_sum"], wait_count, "seconds"),
        "aht_seconds": mean(handle_sum, handled, "seconds"),
        "abandon_rate": ratio(counts["abandoned_queue"], counts["entered_queue"]),
    }
    values = counts | derived
    return tuple(values[c.name] for c in KPI_COLUMNS)


_EMPTY: Row = (
    {"wait_count": 0, "handled": 0, "talk_sum": None, "acw_sum": None}
    | {src: 0 for src in _COUNTS.values()}
    | {"wait_sum": None, "in_sl": 0}
)


def summary_metrics(row: Row, sl_seconds: int) -> list[Metric]:
    """The headline call figures (KPI columns plus occupancy, which is n/a)."""
    values = figures(row)
    metrics = [
        Metric(c.name, c.vi, c.en, v, c.kind) for c, v in zip(KPI_COLUMNS, values, strict=True)
    ]
    occupancy = DEFINITIONS["occupancy"]
    metrics.append(
        Metric("occupancy", occupancy.vi, occupancy.en, None, "ratio", note=OCCUPANCY_NOTE)
    )
    return [_with_t(m, sl_seconds) for m in metrics]


def _with_t(metric: Metric, sl_seconds: int) -> Metric:
    if metric.name != "answered_in_sl":
        return metric
    vi = metric.vi.replace("T giây", f"{sl_seconds} giây")
    en = metric.en.replace("T s", f"{sl_seconds} s")
    return Metric(metric.name, vi, en, metric.value, metric.kind, metric.note)


def _key_columns(view: str, sl_seconds: int) -> tuple[Column, ...]:
    return tuple(_with_t_col(c, sl_seconds) for c in (_TITLES[view][2], *KPI_COLUMNS))


def _with_t_col(column: Column, sl_seconds: int) -> Column:
    if column.name != "answered_in_sl":
        return column
    return Column(
        column.name,
        column.vi.replace("T giây", f"{sl_seconds} giây"),
        column.en.replace("T s", f"{sl_seconds} s"),
        column.kind,
    )


def table_by_key(view: str, rows: Sequence[Row], sl_seconds: int) -> Table:
    """A view grouped by a text key (queue, category): busiest first, NULL as ``NONE_KEY``."""
    ordered = sorted(rows, key=lambda r: (-int(r["offered"]), r["key"] is None, r["key"] or ""))
    vi, en, _ = _TITLES[view]
    return Table(
        view,
        vi,
        en,
        _key_columns(view, sl_seconds),
        [(r["key"] if r["key"] is not None else NONE_KEY, *figures(r)) for r in ordered],
    )


def agent_table(rows: Sequence[Row], sl_seconds: int) -> Table:
    """Per agent: answered calls, SL, ASA, AHT, talk and wrap-up totals, satisfaction,
    occupancy (n/a, see ``OCCUPANCY_NOTE``)."""
    columns = (
        Column("agent", "Tổng đài viên", "Agent", "text"),
        _col("answered", "int"),
        _with_t_col(_col("answered_in_sl", "int"), sl_seconds),
        _col("service_level", "ratio"),
        _col("asa_seconds", "seconds"),
        _col("aht_seconds", "seconds"),
        _col("talk_seconds", "seconds", "Tổng thời gian đàm thoại", "Total talk time"),
        _col("acw_seconds", "seconds", "Tổng thời gian sau cuộc gọi", "Total after-call work"),
        _col("satisfaction_count", "int", "Số lượt chấm điểm", "Scores given"),
        _col("satisfaction_mean", "number", "Điểm hài lòng TB", "Mean satisfaction"),
        _col("occupancy", "ratio"),
    )
    names = [c.name for c in KPI_COLUMNS]
    out: list[tuple[Cell, ...]] = []
    for r in sorted(rows, key=lambda r: (-int(r["answered"]), str(r["key"]))):
        kpi = dict(zip(names, figures(r), strict=True))
        talk = round(float(r["talk_sum"]), 1) if r["talk_sum"] is not None else 0.0
        acw = round(float(r["acw_sum"]), 1) if r["acw_sum"] is not None else 0.0
        out.append(
            (
                r["key"],
                kpi["answered"],
                kpi["answered_in_sl"],
                kpi["service_level"],
                kpi["asa_seconds"],
                kpi["aht_seconds"],
                talk,
                acw,
                int(r["sat_count"]),
                mean(r["sat_sum"], int(r["sat_count"]), "number"),
                None,
            )
        )
    return Table("by_agent", "Theo tổng đài viên", "By agent", columns, out, OCCUPANCY_NOTE)


def local_days(start: datetime, end: datetime) -> list[datetime]:
    """Midnight (Vietnam time) of every local day that [start, end) touches."""
    first = start.astimezone(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    last = (end - timedelta(microseconds=1)).astimezone(VN_TZ)
    days, day = [], first
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


def _filled(view: str, rows: Sequence[Row], keys: Sequence[Cell], sl_seconds: int) -> Table:
    found = {r["key"]: r for r in rows}
    vi, en, _ = _TITLES[view]
    # a key SQL returns outside the expected list (none should) is kept, so no call is lost
    extra = sorted((k for k in found if k not in set(keys)), key=str)
    body = [(k, *figures(found.get(k, _EMPTY))) for k in [*keys, *extra]]
    return Table(view, vi, en, _key_columns(view, sl_seconds), body)


def period_tables(
    results: Mapping[str, Sequence[Row]], start: datetime, end: datetime, sl_seconds: int
) -> dict[str, Table]:
    """by_hour, by_day, by_week, by_month (every period key, zeros where no calls) and the
    hour x weekday heatmap of calls offered."""
    days = local_days(start, end)
    day_keys = [d.strftime("%Y-%m-%d") for d in days]
    week_keys = list(dict.fromkeys(f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}" for d in days))
    month_keys = list(dict.fromkeys(d.strftime("%Y-%m") for d in days))
    cells = {
        (int(r["weekday"]), int(r["hour"])): int(r["offered"]) for r in results["hour_of_week"]
    }
    heat_columns = (
        Column("hour", "Giờ", "Hour", "int"),
        *(Column(f"d{i}", WEEKDAYS_SHORT_VI[i - 1], f"ISO day {i}", "int") for i in range(1, 8)),
    )
    heat_rows: list[tuple[Cell, ...]] = [
        (h, *(cells.get((d, h), 0) for d in range(1, 8))) for h in range(24)
    ]
    return {
        "by_hour": _filled("by_hour", results["by_hour"], list(range(24)), sl_seconds),
        "by_day": _filled("by_day", results["by_day"], day_keys, sl_seconds),
        "by_week": _filled("by_week", results["by_week"], week_keys, sl_seconds),
        "by_month": _filled("by_month", results["by_month"], month_keys, sl_seconds),
        "heatmap": Table(
            "heatmap",
            "Cuộc gọi đến theo giờ và thứ",
            "Calls offered by hour and weekday",
            heat_columns,
            heat_rows,
        ),
    }


def complaint_metrics(row: Row, median: Row) -> list[Metric]:
    """Complaint figures: count, resolved, open, median/mean hours to resolve, due dates."""
    count, resolved = int(row["count"]), int(row["resolved"])
    overdue_open, late = int(row["overdue_open"]), int(row["resolved_late"])

    def hours(seconds: Any) -> float | None:
        return round(float(seconds) / 3600, 2) if seconds is not None else None

    items: list[tuple[str, str, str, Cell, Kind]] = [
        ("complaints", "Số phản ánh", "Complaints", count, "int"),
        ("complaints_resolved", "Đã giải quyết", "Resolved", resolved, "int"),
        ("complaints_open", "Chưa giải quyết", "Not resolved", count - resolved, "int"),
        (
            "resolve_hours_median",
            "Thời gian giải quyết (trung vị)",
            "Time to resolve (median)",
            hours(median["median_s"]),
            "hours",
        ),
        (
            "resolve_hours_mean",
            "Thời gian giải quyết (trung bình)",
            "Time to resolve (mean)",
            hours(row["mean_s"]),
            "hours",
        ),
        ("complaints_no_due", "Chưa có hạn", "No due date", int(row["no_due"]), "int"),
        ("overdue_open", "Quá hạn, chưa giải quyết", "Overdue, open", overdue_open, "int"),
        ("resolved_late", "Giải quyết sau hạn", "Resolved late", late, "int"),
        ("overdue", "Tổng quá hạn", "Overdue in all", overdue_open + late, "int"),
    ]
    return [Metric(*item) for item in items]


def satisfaction_parts(row: Row) -> tuple[list[Metric], Table]:
    """Satisfaction: count and mean as metrics, and the 1-5 distribution as a table."""
    count = int(row["count"])
    metrics = [
        Metric("satisfaction_count", "Số lượt chấm điểm", "Scores given", count, "int"),
        Metric(
            "satisfaction_mean",
            "Điểm hài lòng trung bình (1-5)",
            "Mean satisfaction (1-5)",
            mean(row["total"], count, "number"),
            "number",
        ),
    ]
    columns = (
        Column("score", "Điểm", "Score", "int"),
        Column("count", "Số lượt", "Count", "int"),
        Column("share", "Tỷ lệ", "Share", "ratio"),
    )
    rows: list[tuple[Cell, ...]] = [
        (n, int(row[f"s{n}"]), ratio(int(row[f"s{n}"]), count)) for n in range(1, 6)
    ]
    return metrics, Table("satisfaction", "Mức hài lòng", "Satisfaction", columns, rows)


#: the channels in the order reports list them (others after, by name)
CHANNEL_ORDER = ("voice", "webchat", "zalo", "facebook", "email")
CHANNEL_LABELS = {
    "voice": "Điện thoại 1022",
    "webchat": "Trò chuyện trên cổng",
    "zalo": "Zalo",
    "facebook": "Facebook",
    "email": "Thư điện tử",
}


def channel_table(rows: Sequence[Row], medians: Sequence[Row]) -> Table:
    """Per channel: contacts, answered by a person, self-served, abandoned, messages left,
    first response (mean and median seconds), resolved and mean hours to resolve."""
    columns = (
        Column("channel", "Kênh", "Channel", "text"),
        _col("contacts", "int", "Lượt liên hệ", "Contacts"),
        _col("answered", "int", "Được trả lời", "Answered by a person"),
        _col("self_service", "int", "Tự phục vụ", "Self-served"),
        _col("abandoned", "int", "Bỏ dở", "Abandoned"),
        _col("message_left", "int"),
        _col("first_response_seconds", "seconds"),
        _col("first_response_median_seconds", "seconds"),
        _col("resolved", "int", "Đã giải quyết", "Resolved"),
        _col("resolve_hours", "number"),
    )
    median = {r["key"]: r["median_s"] for r in medians}
    rank = {name: i for i, name in enumerate(CHANNEL_ORDER)}
    out: list[tuple[Cell, ...]] = []
    for r in sorted(rows, key=lambda r: (rank.get(r["key"], 99), str(r["key"]))):
        first = mean(r["first_sum"], int(r["first_count"] or 0), "seconds")
        resolve_h = mean(
            float(r["resolve_sum"]) / 3600 if r["resolve_sum"] is not None else None,
            int(r["resolved"] or 0),
            "number",
        )
        med = median.get(r["key"])
        out.append(
            (
                CHANNEL_LABELS.get(r["key"], r["key"]),
                int(r["contacts"] or 0),
                int(r["answered"] or 0),
                int(r["self_service"] or 0),
                int(r["abandoned"] or 0),
                int(r["message_left"] or 0),
                first,
                rounded(float(med), "seconds") if med is not None else None,
                int(r["resolved"] or 0),
                resolve_h,
            )
        )
    return Table("by_channel", "Theo kênh tiếp nhận", "By channel", columns, out)


def agency_table(rows: Sequence[Row], medians: Sequence[Row], names: Mapping[str, str]) -> Table:
    """Per agency, the forwards made in the period: forwarded, answered on time, answered
    late, still open past the deadline, sent back, mean and median hours to answer."""
    columns = (
        Column("agency", "Cơ quan", "Agency", "text"),
        _col("forwarded", "int"),
        _col("answered_on_time", "int"),
        _col("answered_late", "int"),
        _col("overdue_open", "int"),
        _col("sent_back", "int"),
        _col("answer_hours", "number"),
        _col("answer_median_hours", "number"),
    )
    median = {r["key"]: r["median_s"] for r in medians}
    out: list[tuple[Cell, ...]] = []
    for r in sorted(rows, key=lambda r: str(names.get(r["key"], r["key"]))):
        answered = int(r["answered"] or 0)
        total = float(r["answer_sum"]) / 3600 if r["answer_sum"] is not None else None
        med = median.get(r["key"])
        out.append(
            (
                names.get(r["key"], r["key"]),
                int(r["forwarded"] or 0),
                int(r["on_time"] or 0),
                int(r["late"] or 0),
                int(r["overdue_open"] or 0),
                int(r["sent_back"] or 0),
                mean(total, answered, "number"),
                rounded(float(med) / 3600, "number") if med is not None else None,
            )
        )
    return Table("by_agency", "Theo cơ quan xử lý", "By agency", columns, out)
