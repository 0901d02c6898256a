"""Every output format carries the same hand-computed figures (see ``test_reports_kpi``):
XLSX cells, CSV fields, PDF text, HTML; names from the data are escaped; empty and one-call
periods render; ``tongdai report`` writes the file."""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from pypdf import PdfReader
from test_reports_data import AS_OF, END, START, Call, open_loaded, vn

from reports import cli as report_cli
from reports.csv_out import render_csv_zip
from reports.definitions import DEFINITIONS
from reports.html import render_html
from reports.kpi import compute
from reports.model import Report, fmt
from reports.pdf import render_pdf
from reports.xlsx import DEFINITIONS_SHEET, SHEETS, SUMMARY_SHEET, render_xlsx

#: the hand-computed figures and how the Vietnamese HTML/PDF show them
SHOWN = {
    "offered": (17, "17"),
    "service_level": (0.6667, "66,7%"),  # 4 / 6
    "asa_seconds": (19.7, "19,7 giây"),  # 118 / 6
    "aht_seconds": (165.0, "165,0 giây"),  # 990 / 6
    "abandon_rate": (0.2222, "22,2%"),  # 2 / 9
    "resolve_hours_median": (48.0, "48,00 giờ"),
    "satisfaction_mean": (3.6, "3,60"),
}
EVIL_CATEGORY = "<script>alert('x')</script>"
EVIL_AGENT = '<img src=x onerror="alert(1)">&amp;'


@pytest.fixture
async def report(db_url: str) -> AsyncIterator[Report]:
    store = await open_loaded(db_url)
    try:
        yield await compute(store.engine, START, END, as_of=AS_OF)
    finally:
        await store.close()


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _find(ws: Worksheet, label: str) -> int:
    for row in ws.iter_rows(min_col=1, max_col=1):
        if row[0].value == label:
            return int(row[0].row)
    raise AssertionError(f"{label!r} not in sheet {ws.title}")


def test_xlsx_has_real_numbers_with_formats(report: Report) -> None:
    wb = load_workbook(io.BytesIO(render_xlsx(report)))
    assert wb.sheetnames == [SUMMARY_SHEET, *SHEETS.values(), DEFINITIONS_SHEET]
    summary = wb[SUMMARY_SHEET]
    assert summary["A1"].value == "Báo cáo tháng 05/2026 - Tổng đài 1022"
    for name, (value, _) in SHOWN.items():
        label = next(m.vi for group in report.metrics() for m in group[1] if m.name == name)
        cell = summary.cell(row=_find(summary, label), column=3)
        assert cell.value == value and isinstance(cell.value, int | float), name
    sl = summary.cell(row=_find(summary, "Mức phục vụ (SL)"), column=3)
    assert sl.number_format == "0.0%"
    assert summary.cell(row=_find(summary, "Tỷ lệ chiếm dụng"), column=3).value is None  # n/a
    queues = wb[SHEETS["by_queue"]]
    header = [c.value for c in queues[1]]
    chung = [c.value for c in queues[_find(queues, "chung")]]
    assert chung[header.index("Mức phục vụ (SL)")] == 0.75
    assert chung[header.index("Thời gian chờ TB (ASA)")] == 17.0
    assert (
        queues.cell(row=2, column=header.index("Thời gian chờ TB (ASA)") + 1).number_format == "0.0"
    )
    days = wb[SHEETS["by_day"]]
    assert days.max_row == 32 and days["B5"].value == 11  # 2026-05-04
    labels = {row[0].value for row in wb[DEFINITIONS_SHEET].iter_rows(min_row=2)}
    assert labels == {d.vi for d in DEFINITIONS.values()}


def test_csv_zip_has_one_file_per_view_with_the_figures(report: Report) -> None:
    archive = zipfile.ZipFile(io.BytesIO(render_csv_zip(report)))
    names = archive.namelist()
    assert names[0] == "summary.csv" and names[-1] == "definitions.csv"
    assert {f"{view}.csv" for view in report.views} <= set(names)

    def rows(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))

    summary = {r["metric"]: r["value"] for r in rows("summary.csv")}
    for name, (value, _) in SHOWN.items():
        assert float(summary[name]) == value, name
    assert summary["occupancy"] == ""  # n/a is an empty field
    chung = next(r for r in rows("by_queue.csv") if r["queue"] == "chung")
    assert (chung["answered"], chung["service_level"], chung["aht_seconds"]) == (
        "4", "0.75", "142.5"
    )  # fmt: skip
    staffing = next(r for r in rows("staffing.csv") if (r["weekday"], r["hour"]) == ("1", "9"))
    assert (staffing["agents"], staffing["agents_with_shrinkage"]) == ("1", "2")


def test_pdf_is_vietnamese_and_contains_the_figures(report: Report, tmp_path: Path) -> None:
    data = render_pdf(report)
    (tmp_path / "report.pdf").write_bytes(data)
    text = _pdf_text(data)
    assert "Báo cáo tháng 05/2026 - Tổng đài 1022" in text
    for name, (_, shown) in SHOWN.items():
        assert shown in text, name
    for heading in ("Tổng quan", "Biểu đồ", "Dự báo nhân lực", "Định nghĩa chỉ số"):
        assert heading in text
    assert DEFINITIONS["service_level"].text_vi[:40] in text.replace("\n", " ")
    assert "1/2" in text  # Monday 09:00: 1 agent on the phones, 2 to schedule
    assert len(PdfReader(io.BytesIO(data)).pages) >= 4


def test_html_contains_the_figures_charts_and_definitions(report: Report) -> None:
    page = render_html(report)
    assert "<title>Báo cáo tháng 05/2026 - Tổng đài 1022</title>" in page
    for name, (_, shown) in SHOWN.items():
        assert shown in page, name
    assert page.count('src="data:image/svg+xml;base64,') == 4
    assert DEFINITIONS["abandon_rate"].text_en in page


def _csv_value(text: str, kind: str) -> object:
    if text == "":
        return None
    if kind == "text":
        return text
    return int(text) if kind == "int" else float(text)


def test_every_figure_of_every_view_is_the_same_in_xlsx_csv_html_and_pdf(report: Report) -> None:
    wb = load_workbook(io.BytesIO(render_xlsx(report)))
    archive = zipfile.ZipFile(io.BytesIO(render_csv_zip(report)))
    page = render_html(report)
    pdf = _pdf_text(render_pdf(report))
    for name, table in report.views.items():
        sheet = [[c.value for c in row] for row in wb[SHEETS[name]].iter_rows(min_row=2)]
        assert [tuple(r[: len(table.columns)]) for r in sheet[: len(table.rows)]] == table.rows
        lines = list(csv.reader(io.StringIO(archive.read(f"{name}.csv").decode("utf-8-sig"))))
        assert lines[0] == [c.name for c in table.columns]
        parsed = [
            tuple(_csv_value(v, c.kind) for c, v in zip(table.columns, line, strict=True))
            for line in lines[1:]
        ]
        assert parsed == table.rows, name
        for row in table.rows:  # every cell, as the HTML shows it
            for column, value in zip(table.columns, row, strict=True):
                assert f">{fmt(value, column.kind)}</td>" in page.replace("&amp;", "&"), name
    for _, metrics in report.metrics():
        for m in metrics:
            assert fmt(m.value, m.kind) in pdf, m.name


async def test_names_from_the_data_are_escaped_in_every_format(db_url: str) -> None:
    call = Call(1, vn(4, 9, 0), "answered", queue="a&b", agent=EVIL_AGENT, category=EVIL_CATEGORY,
                queued=30, wait=5, talk=60)  # fmt: skip
    store = await open_loaded(db_url, (call,))
    try:
        report = await compute(store.engine, START, END, as_of=AS_OF)
    finally:
        await store.close()
    page = render_html(report)
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;" in page
    assert "a&amp;b" in page
    text = _pdf_text(render_pdf(report))  # reportlab markup would choke on unescaped names
    assert EVIL_CATEGORY in text and "a&b" in text
    wb = load_workbook(io.BytesIO(render_xlsx(report)))
    assert wb[SHEETS["by_category"]]["A2"].value == EVIL_CATEGORY
    archive = zipfile.ZipFile(io.BytesIO(render_csv_zip(report)))
    agents = list(csv.reader(io.StringIO(archive.read("by_agent.csv").decode("utf-8-sig"))))
    assert agents[1][0] == EVIL_AGENT
    queues = list(csv.reader(io.StringIO(archive.read("by_queue.csv").decode("utf-8-sig"))))
    assert queues[1][0] == "a&b"


@pytest.mark.parametrize("calls", [(), (Call(1, vn(4, 9, 0), "abandoned_ivr"),)])
async def test_empty_and_one_call_periods_render_in_every_format(
    db_url: str, calls: tuple[Call, ...]
) -> None:
    store = await open_loaded(db_url, calls)
    try:
        report = await compute(store.engine, START, END, as_of=AS_OF)
    finally:
        await store.close()
    assert report.figure("offered") == len(calls)
    assert "n/a" in render_html(report)
    assert "n/a" in _pdf_text(render_pdf(report))
    summary = load_workbook(io.BytesIO(render_xlsx(report)))[SUMMARY_SHEET]
    assert summary.cell(row=_find(summary, "Mức phục vụ (SL)"), column=3).value is None
    assert zipfile.ZipFile(io.BytesIO(render_csv_zip(report))).testzip() is None


@pytest.mark.parametrize("fmt", ["html", "xlsx", "csv", "pdf"])
def test_tongdai_report_writes_the_file(
    fmt: str, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    asyncio.run(_load_and_close(db_url))
    config = tmp_path / "tongdai.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    report_cli.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "out" / f"may.{fmt}"
    argv = ["--config", str(config), "report", "--from", "2026-05-01", "--to", "2026-05-31"]
    args = parser.parse_args([*argv, "--format", fmt, "--out", str(out)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    data = out.read_bytes()
    if fmt == "html":
        assert "66,7%" in data.decode()
    elif fmt == "pdf":
        assert "66,7%" in _pdf_text(data)
    elif fmt == "csv":
        summary = zipfile.ZipFile(io.BytesIO(data)).read("summary.csv").decode("utf-8-sig")
        assert "service_level," in summary and ",0.6667," in summary
    else:
        wb = load_workbook(io.BytesIO(data))
        assert wb[SHEETS["by_month"]]["B2"].value == 17
    assert not list(out.parent.glob(".*.tmp"))


async def _load_and_close(db_url: str) -> None:
    store = await open_loaded(db_url)
    await store.close()


async def test_formula_like_names_stay_text_in_xlsx_and_csv(db_url: str) -> None:
    call = Call(1, vn(4, 9, 0), "answered", queue="=1+1", agent="@sum", category="-2+3",
                queued=30, wait=5, talk=60)  # fmt: skip
    store = await open_loaded(db_url, (call,))
    try:
        report = await compute(store.engine, START, END, as_of=AS_OF)
    finally:
        await store.close()
    wb = load_workbook(io.BytesIO(render_xlsx(report)))
    cell = wb[SHEETS["by_queue"]]["A2"]
    assert (cell.value, cell.data_type) == ("=1+1", "s")
    archive = zipfile.ZipFile(io.BytesIO(render_csv_zip(report)))
    queues = list(csv.reader(io.StringIO(archive.read("by_queue.csv").decode("utf-8-sig"))))
    categories = archive.read("by_category.csv").decode("utf-8-sig")
    assert queues[1][0] == "'=1+1" and "'-2+3" in categories


def test_the_cli_refuses_a_period_ending_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    report_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "--from", "2026-05-31", "--to", "2026-05-01",
                              "--format", "csv", "--out", str(tmp_path / "x.zip")])  # fmt: skip
    assert args.func(args) == 2
    assert "before" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "--from", "2026-05-01", "--to", "2026-05-31",
                           "--format", "pdf", "--sl-target", "80"])  # fmt: skip
