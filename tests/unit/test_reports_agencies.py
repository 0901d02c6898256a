"""The per-agency view of the report: forwards with known answer times, worked out by hand,
on SQLite and PostgreSQL; and the table's place in the HTML and XLSX reports."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader

from agencies.sql import SqlForwardStore
from reports.html import HTML_TABLES
from reports.kpi import compute
from reports.model import fmt
from reports.pdf import render_pdf
from reports.xlsx import SHEETS
from tickets.sql import open_store

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 09:00 in Vietnam
H = timedelta(hours=1)


async def test_given_forwards_then_each_agency_has_on_time_late_and_median(db_url: str) -> None:
    store = await open_store(db_url)
    fwd = SqlForwardStore(store.engine)

    async def forward(agency: str, due_h: int, answer_h: int | None, *, back: bool = False) -> None:
        t = await store.open(channel="voice", caller="x", uniqueid=None, started_at=T0)
        f = await fwd.create(ticket_code=t.code, agency_id=agency, due_at=T0 + due_h * H, by="a",
                             at=T0)  # fmt: skip
        if answer_h is not None:
            await fwd.answer(f.id, text="ok", public=False, by="b", at=T0 + answer_h * H)
        elif back:
            await fwd.send_back(f.id, reason="không thuộc", by="b", at=T0 + H)

    try:
        # Sở GTVT: answered after 2 h and 10 h (due 24 h), 30 h (late), one still open and
        # overdue, one sent back
        for answer in (2, 10, 30):
            await forward("so_gtvt", 24, answer)
        await forward("so_gtvt", 24, None)
        await forward("so_gtvt", 24, None, back=True)
        # Sở Tư pháp: one answered after 4 h, one open but not yet due
        await forward("so_tu_phap", 72, 4)
        await forward("so_tu_phap", 72 * 10, None)
        report = await compute(
            store.engine, T0 - timedelta(days=1), T0 + timedelta(days=1),
            as_of=T0 + 48 * H, agency_names={"so_gtvt": "Sở Giao thông vận tải"},
        )  # fmt: skip
    finally:
        await store.close()
    table = report.views["by_agency"]
    gtvt, stp = table.records()
    assert (gtvt["agency"], stp["agency"]) == ("Sở Giao thông vận tải", "so_tu_phap")
    assert (gtvt["forwarded"], gtvt["answered_on_time"], gtvt["answered_late"]) == (5, 2, 1)
    assert (gtvt["overdue_open"], gtvt["sent_back"]) == (1, 1)
    assert gtvt["answer_hours"] == 14.0  # (2 + 10 + 30) / 3
    assert gtvt["answer_median_hours"] == 10.0
    assert (stp["forwarded"], stp["answered_on_time"], stp["overdue_open"]) == (2, 1, 0)
    assert stp["answer_median_hours"] == 4.0
    assert "by_agency" in HTML_TABLES and "by_agency" in SHEETS
    # the monthly PDF has the table too: its heading, both agencies and their figures
    text = _pdf_text(render_pdf(report))
    assert "Theo cơ quan xử lý" in text and "Sở Giao thông vận tải" in text
    figures = " ".join(fmt(gtvt[c.name], c.kind, unit=False) for c in table.columns[1:])
    flat = " ".join(text.split())
    assert f"Sở Giao thông vận tải {figures}" in flat, (figures, flat[:3000])
    assert "so_tu_phap" in text


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_a_period_without_forwards_says_so_in_the_pdf(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        report = await compute(store.engine, T0 - timedelta(days=1), T0, as_of=T0)
    finally:
        await store.close()
    assert report.views["by_agency"].rows == []
    assert "Không có phiếu chuyển cơ quan trong kỳ." in _pdf_text(render_pdf(report))
