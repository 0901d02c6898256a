"""Dossier import (whole-file validation, upsert), look-up (SQL and memory) and the CLI."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from pathlib import Path

import pytest

from dossiers import cli as dossiers_cli
from dossiers.importer import HEADER, DossierFileError, read_dossiers
from dossiers.memory import MemoryDossierLookup
from dossiers.model import Dossier, DossierStatus
from dossiers.sql import SqlDossierLookup, upsert_dossiers
from hotline import cli as tongdai_cli
from tongdai.db import make_engine, migrate
from tongdai.errors import ConfigError

SAMPLE = Path(dossiers_cli.__file__).parent / "sample_dossiers.csv"
GOOD_ROW = "2026100,Đăng ký khai sinh,UBND xã Tam Thăng,received,2026-05-01,2026-05-06"


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``hotline.cli.main`` with only the dossiers command registered."""

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="tongdai")
        parser.add_argument("--config")
        parser.add_argument("-v", "--verbose", action="store_true")
        dossiers_cli.register(parser.add_subparsers(dest="command", required=True))
        return parser

    monkeypatch.setattr(tongdai_cli, "build_parser", build_parser)
    return tongdai_cli.main(argv)


@pytest.fixture
def cli_config(db_url: str, tmp_path: Path) -> str:
    path = tmp_path / "tongdai.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return str(path)


async def _find(url: str, code: str) -> Dossier | None:
    await migrate(url)
    engine = make_engine(url)
    try:
        return await SqlDossierLookup(engine).find(code)
    finally:
        await engine.dispose()


def test_sample_file_has_every_status_and_the_documented_codes() -> None:
    dossiers = {d.code: d for d in read_dossiers(SAMPLE)}
    assert 18 <= len(dossiers) <= 25
    assert {d.status for d in dossiers.values()} == set(DossierStatus)
    assert dossiers["123456"].status is DossierStatus.IN_PROGRESS
    assert dossiers["123456"].due_date is not None and dossiers["123456"].due_date.year == 2027
    assert dossiers["2026001"].status is DossierStatus.RESULT_READY
    today = date(2026, 11, 28)
    assert any(d.is_overdue(today) for d in dossiers.values())
    assert any(d.due_date and d.due_date > today for d in dossiers.values())
    assert any(d.due_date is None for d in dossiers.values())


def test_given_bom_and_blank_lines_when_reading_then_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("\ufeff" + ",".join(HEADER) + "\n\n" + GOOD_ROW + "\n", encoding="utf-8")
    (dossier,) = read_dossiers(path)
    assert dossier == Dossier(
        "2026100",
        "Đăng ký khai sinh",
        "UBND xã Tam Thăng",
        DossierStatus.RECEIVED,
        date(2026, 5, 1),
        date(2026, 5, 6),
    )


BAD_FILES = {
    "empty": ("", ":1: header: file is empty"),
    "bad header": ("code;procedure\n" + GOOD_ROW, ":1: header: expected code,procedure"),
    "header only": ("", ":2: row: no dossiers"),
    "bad date": (GOOD_ROW.replace("2026-05-01", "01/05/2026"), ":2: received_date: '01/05/2026'"),
    "impossible date": (GOOD_ROW.replace("2026-05-06", "2026-02-30"), ":2: due_date: '2026-02-30'"),
    "due before received": (
        GOOD_ROW.replace("2026-05-06", "2026-04-01"),
        ":2: due_date: 2026-04-01",
    ),
    "bad status": (GOOD_ROW.replace("received", "done"), ":2: status: 'done' is not one of"),
    "bad code": (GOOD_ROW.replace("2026100", "HS-12"), ":2: code: 'HS-12' is not 4 to 16 digits"),
    "long code": (GOOD_ROW.replace("2026100", "1" * 17), ":2: code:"),
    "short row": ("2026100,Đăng ký khai sinh,UBND", ":2: row: expected 6 fields, found 3"),
    "empty agency": (GOOD_ROW.replace("UBND xã Tam Thăng", ""), ":2: agency: empty"),
    "duplicate": (GOOD_ROW + "\n" + GOOD_ROW, ":3: code: 2026100 repeats line 2"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_given_bad_file_when_reading_then_error_names_file_line_and_field(
    case: str, tmp_path: Path
) -> None:
    body, expected = BAD_FILES[case]
    path = tmp_path / "d.csv"
    has_header = case in ("empty", "bad header")
    path.write_text(body if has_header else ",".join(HEADER) + "\n" + body, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_dossiers(path)
    assert f"{path}{expected}" in str(exc.value)


def test_given_several_bad_rows_then_every_one_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    rows = [
        GOOD_ROW,
        GOOD_ROW.replace("2026100", "x1").replace("received", "lost"),
        GOOD_ROW.replace("2026100", "2026101"),
        GOOD_ROW.replace("2026100", "2026102").replace("2026-05-01", "hôm qua"),
    ]
    path.write_text("\n".join([",".join(HEADER), *rows]) + "\n", encoding="utf-8")
    with pytest.raises(DossierFileError) as exc:
        read_dossiers(path)
    assert [(p.file, p.field) for p in exc.value.problems] == [
        (f"{path}:3", "code"),
        (f"{path}:3", "status"),
        (f"{path}:5", "received_date"),
    ]
    assert str(exc.value).splitlines()[-1] == f"{path}: 3 problem(s); nothing imported"


def test_given_bad_file_when_importing_then_nothing_is_imported(
    db_url: str,
    cli_config: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "d.csv"
    bad = GOOD_ROW.replace("2026100", "2026101").replace("received", "??")
    path.write_text(f"{','.join(HEADER)}\n{GOOD_ROW}\n{bad}\n", encoding="utf-8")
    assert run_cli(["--config", cli_config, "dossiers", "import", str(path)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: status: '??'" in err and "nothing imported" in err
    assert asyncio.run(_find(db_url, "2026100")) is None


def test_import_sample_then_reimport_upserts_and_show(
    db_url: str,
    cli_config: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    count = len(read_dossiers(SAMPLE))
    assert run_cli(["--config", cli_config, "dossiers", "import", str(SAMPLE)], monkeypatch) == 0
    assert f"imported {count} dossiers" in capsys.readouterr().out
    found = asyncio.run(_find(db_url, "123456"))
    assert found is not None and found.status is DossierStatus.IN_PROGRESS

    update = tmp_path / "update.csv"
    changed = "123456,Cấp GCN quyền sử dụng đất,VP Đăng ký đất đai,result_ready,2026-10-05,"
    update.write_text(f"{','.join(HEADER)}\n{changed}\n", encoding="utf-8")
    assert run_cli(["--config", cli_config, "dossiers", "import", str(update)], monkeypatch) == 0
    found = asyncio.run(_find(db_url, "123456"))
    assert found == Dossier(
        "123456",
        "Cấp GCN quyền sử dụng đất",
        "VP Đăng ký đất đai",
        DossierStatus.RESULT_READY,
        date(2026, 10, 5),
        None,
    )
    assert asyncio.run(_find(db_url, "2026001")) is not None  # others untouched
    capsys.readouterr()

    assert run_cli(["--config", cli_config, "dossiers", "show", "2026001"], monkeypatch) == 0
    assert "Đăng ký thành lập doanh nghiệp" in capsys.readouterr().out
    assert run_cli(["--config", cli_config, "dossiers", "show", "99999999"], monkeypatch) == 1
    assert run_cli(["--config", cli_config, "dossiers", "show", "12a"], monkeypatch) == 2


async def test_sql_lookup_finds_by_code_and_ignores_malformed(db_url: str) -> None:
    await migrate(db_url)
    engine = make_engine(db_url)
    try:
        assert await upsert_dossiers(engine, read_dossiers(SAMPLE)) == len(read_dossiers(SAMPLE))
        lookup = SqlDossierLookup(engine)
        found = await lookup.find("2026001")
        assert found is not None and found.status is DossierStatus.RESULT_READY
        assert await lookup.find("0000") is None
        assert await lookup.find("12 34") is None
    finally:
        await engine.dispose()


async def test_memory_lookup_behaves_like_sql() -> None:
    sample = read_dossiers(SAMPLE)
    for lookup in (MemoryDossierLookup(sample), MemoryDossierLookup({d.code: d for d in sample})):
        found = await lookup.find("123456")
        assert found is not None and found.status is DossierStatus.IN_PROGRESS
        assert await lookup.find("0000") is None
        assert await lookup.find("abc") is None
