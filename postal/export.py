"""The post office's daily list: the registrations that became ``registered`` on one day
(Vietnam time) and were not cancelled, as CSV (UTF-8 with a BOM, so Excel reads the
Vietnamese) or XLSX, with Vietnamese headers.

What people typed is never run as a formula: in the CSV a cell that starts with ``= + - @``
(or a tab or carriage return) gets a leading ``'`` (OWASP's advice against CSV injection); in
the XLSX every cell is written as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from openpyxl import Workbook
from openpyxl.styles import Font

from postal.model import PREFERRED_TIMES, STATE_LABELS, Registration
from postal.store import PostalStore
from tongdai.clock import VN_TZ

HEADERS = (
    "STT",
    "Mã hồ sơ",
    "Mã phiếu tổng đài",
    "Người nhận",
    "Điện thoại",
    "Tỉnh",
    "Huyện, thị xã, thành phố",
    "Xã, phường, thị trấn",
    "Số nhà, đường, thôn",
    "Thời gian nhận",
    "Trạng thái",
    "Ngày giờ đăng ký",
    "Ghi chú",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day in Vietnam time as [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=VN_TZ)
    return start, start + timedelta(days=1)


async def day_list(store: PostalStore, day: date) -> list[Registration]:
    return await store.for_post(*day_bounds(day))


def rows(found: Sequence[Registration]) -> list[list[str]]:
    out: list[list[str]] = []
    for n, r in enumerate(found, 1):
        at = r.registered_at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M") if r.registered_at else ""
        out.append(
            [
                str(n), r.dossier_code, r.ticket_code, r.recipient or "", r.phone or "",
                r.province or "", r.district or "", r.ward or "", r.street or "",
                PREFERRED_TIMES.get(r.preferred_time or "", r.preferred_time or ""),
                STATE_LABELS[r.state], at, (r.note or "").replace("\n", " "),
            ]
        )  # fmt: skip
    return out


def safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(found: Sequence[Registration]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in rows(found):
        writer.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(found: Sequence[Registration], day: date) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"Buu chinh {day.isoformat()}"
    ws.append(list(HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows(found):
        ws.append(row)
        for cell in ws[ws.max_row]:
            cell.data_type = "s"  # text typed by people stays text, never a formula
    widths = (5, 18, 22, 24, 14, 16, 24, 24, 32, 24, 16, 17, 30)
    for col, width in zip("ABCDEFGHIJKLM", widths, strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def file_name(day: date, fmt: str) -> str:
    return f"buu-chinh-{day.isoformat()}.{fmt}"
