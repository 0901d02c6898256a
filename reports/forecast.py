"""The report's staffing forecast: agents needed in each hour of the week (Erlang C).

For each (weekday, hour) in Vietnam time, the arrival rate is the calls that entered a queue
in that hour of the week divided by how many times that hour occurs in the period (e.g. the
Mondays 09:00-10:00 of a month), and the AHT is the one measured in that hour (the period's
AHT where no call was handled in it). ``reports.staffing.erlang_c`` gives the agents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from reports.model import WEEKDAYS_VI, Cell, Column, Table, mean, rounded
from tongdai.clock import VN_TZ

HOUR_S = 3600

COLUMNS = (
    Column("weekday", "Thứ (1 = Thứ Hai)", "ISO weekday", "int"),
    Column("weekday_name", "Thứ", "Weekday", "text"),
    Column("hour", "Giờ", "Hour", "int"),
    Column("calls_per_hour", "Cuộc vào hàng đợi/giờ", "Queued calls per hour", "number"),
    Column("aht_seconds", "AHT", "AHT", "seconds"),
    Column("traffic_erlangs", "Lưu lượng (Erlang)", "Traffic (Erlangs)", "number"),
    Column("agents", "Tổng đài viên trực", "Agents on the phones", "int"),
    Column("agents_with_shrinkage", "Tổng đài viên cần xếp lịch", "Agents to schedule", "int"),
    Column("service_level", "SL dự kiến", "Expected SL", "ratio"),
    Column("asa_seconds", "ASA dự kiến", "Expected ASA", "seconds"),
    Column("occupancy", "Tỷ lệ chiếm dụng dự kiến", "Expected occupancy", "ratio"),
)


def hour_occurrences(start: datetime, end: datetime) -> Counter[tuple[int, int]]:
    """How many times each (ISO weekday, hour) of Vietnam time starts in [start, end)
    (a partial first hour counts)."""
    seen: Counter[tuple[int, int]] = Counter()
    at = start.astimezone(VN_TZ).replace(minute=0, second=0, microsecond=0)
    while at < end:
        seen[(at.isoweekday(), at.hour)] += 1
        at += timedelta(hours=1)
    return seen


def staffing_table(
    rows: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    *,
    sl_seconds: int,
    sl_target: float,
    max_occupancy: float | None,
    shrinkage: float,
) -> tuple[Table | None, str]:
    """The 168-row forecast table (Monday 00:00 first) and a note on its assumptions; no
    table (and the reason) when calls queued but none was ever handled (no AHT)."""
    from reports.staffing import erlang_c  # written alongside (Erlang C, R2)

    cells = {(int(r["weekday"]), int(r["hour"])): r for r in rows}
    handled = sum(int(r["handled"]) for r in rows)
    handle_total = sum(_handle_sum(r) for r in rows)
    overall_aht = handle_total / handled if handled else None
    queued = sum(int(r["entered_queue"]) for r in rows)
    assumptions = (
        f"Mục tiêu SL {sl_target * 100:.0f}% trong {sl_seconds} giây; tỷ lệ chiếm dụng tối đa "
        + (f"{max_occupancy * 100:.0f}%" if max_occupancy is not None else "không giới hạn")
        + f"; tỷ lệ vắng mặt (shrinkage) {shrinkage * 100:.0f}%."
    )
    if queued and overall_aht is None:
        return None, "Không dự báo được: chưa có cuộc gọi nào được trả lời để đo AHT."
    occurrences = hour_occurrences(start, end)
    out: list[tuple[Cell, ...]] = []
    for weekday in range(1, 8):
        for hour in range(24):
            row = cells.get((weekday, hour))
            times = occurrences.get((weekday, hour), 0)
            entered = int(row["entered_queue"]) if row is not None else 0
            rate = entered / times if times else 0.0
            aht = (
                mean(_handle_sum(row), int(row["handled"]), "seconds") if row is not None else None
            ) or overall_aht
            name = WEEKDAYS_VI[weekday - 1]
            if rate == 0.0 or aht is None:
                out.append((weekday, name, hour, 0.0, None, 0.0, 0, 0, None, None, None))
                continue
            r = erlang_c(
                rate,
                HOUR_S,
                aht,
                sl_target,
                sl_seconds,
                max_occupancy=max_occupancy,
                shrinkage=shrinkage,
            )
            out.append(
                (
                    weekday,
                    name,
                    hour,
                    rounded(rate, "number"),
                    rounded(aht, "seconds"),
                    rounded(r.traffic_erlangs, "number"),
                    r.agents,
                    r.agents_with_shrinkage,
                    rounded(r.service_level, "ratio"),
                    rounded(r.asa_seconds, "seconds"),
                    rounded(r.occupancy, "ratio"),
                )
            )
    table = Table(
        "staffing",
        "Dự báo nhân lực theo giờ trong tuần (Erlang C)",
        "Staffing forecast per hour of the week (Erlang C)",
        COLUMNS,
        out,
        assumptions,
    )
    return table, assumptions


def _handle_sum(row: Mapping[str, Any]) -> float:
    if row["talk_sum"] is None:
        return 0.0
    return float(row["talk_sum"]) + float(row["acw_sum"] or 0)
