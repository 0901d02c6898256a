"""The procedure catalogue: the CSV (whole-file validation naming file, line and field), the
upsert (idempotent), the search (diacritics, case and word order ignored; a code finds its
procedure) on SQLite and PostgreSQL, and ``tongdai procedures import``."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from agencies.model import load_agencies
from dossiers import procedures_cli
from dossiers.importer import DossierFileError
from dossiers.procedures import (
    MemoryCatalogue,
    OnlineLevel,
    Procedure,
    code_in,
    code_of_keys,
    mentioned,
)
from dossiers.procedures_csv import HEADER, read_procedures
from dossiers.procedures_sql import SqlCatalogue, upsert_procedures
from hotline import cli as tongdai_cli
from lab import engine
from tongdai.db import make_engine, migrate
from tongdai.errors import ConfigError
from tongdai.settings import DatabaseSettings, IvrSettings, Settings

SAMPLE = Path(procedures_cli.__file__).parent / "sample_procedures_quangnam.csv"
AGENCIES = {a.id for a in load_agencies()}
GOOD = "1.001612,Đăng ký khai sinh,ubnd_tam_ky,Tờ khai; Giấy chứng sinh,0,0,toan_trinh"


def write(tmp_path: Path, *rows: str, name: str = "p.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([",".join(HEADER), *rows]) + "\n", encoding="utf-8")
    return path


def test_the_sample_is_valid_for_the_agencies_file_and_uses_every_online_level() -> None:
    procs = read_procedures(SAMPLE, AGENCIES)
    assert 10 <= len(procs) <= 20
    assert {p.online_level for p in procs} == set(OnlineLevel)
    assert any(p.fee_vnd == 0 for p in procs) and any(p.fee_vnd >= 100_000 for p in procs)
    assert any(p.time_limit_days == 0 for p in procs)


def test_every_bad_row_is_named_by_file_line_and_field_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        GOOD,
        "1001612,Tên,ubnd_tam_ky,,1,0,toan_trinh",  # code without its dot
        "1.000002,,so_nowhere,,ba,-5,online",  # empty name, unknown agency, bad numbers
        "1.000003,Tên,so_tu_phap,,366,1.000.000,mot_phan",  # too long a time limit
        "",
        "1.001612,Trùng mã,so_tu_phap,,1,0,truc_tiep",  # the same code again
        "1.000004,Tên,so_tu_phap",  # too few fields
    )
    with pytest.raises(DossierFileError) as caught:
        read_procedures(path, AGENCIES)
    got = [(p.file, p.field) for p in caught.value.problems]
    assert got == [
        (f"{path}:3", "code"),
        (f"{path}:4", "name"),
        (f"{path}:4", "agency"),
        (f"{path}:4", "time_limit_days"),
        (f"{path}:4", "fee_vnd"),
        (f"{path}:4", "online_level"),
        (f"{path}:5", "time_limit_days"),
        (f"{path}:7", "code"),
        (f"{path}:8", "row"),
    ]
    text = str(caught.value)
    assert "'so_nowhere' is not an agency id" in text and "repeats line 2" in text
    assert "nothing imported" in text


def test_the_file_itself_wrong_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        read_procedures(tmp_path / "absent.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("code,name\n1.000001,x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected code,name,agency,documents"):
        read_procedures(wrong)
    with pytest.raises(ConfigError, match="no procedures after the header"):
        read_procedures(write(tmp_path, name="empty.csv"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(HEADER).encode() + b"\n1.000001,\xd0\xe3ng k\xfd,x,,1,0,mot_phan\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_procedures(latin)


def test_fees_may_group_thousands_and_agencies_are_free_without_a_book(tmp_path: Path) -> None:
    path = write(tmp_path, '1.000001,Cấp phép,Sở Y tế,"A; B",7,"1.500.000",mot_phan')
    (p,) = read_procedures(path)
    assert (p.fee_vnd, p.time_limit_days, p.agency) == (1_500_000, 7, "Sở Y tế")


def test_codes_keyed_written_and_in_sentences() -> None:
    assert code_of_keys("1004227") == code_of_keys("1.004227") == "1.004227"
    for bad in ("100422", "10042270", "1.00422", "a004227", ""):
        assert code_of_keys(bad) is None, bad
    assert code_in("cho hỏi thủ tục 2.000488 phí bao nhiêu?") == "2.000488"
    assert code_in("số 12.0004881 và 1.0000") is None


def test_a_whole_name_in_a_sentence_is_mentioned_the_longest_wins() -> None:
    procs = read_procedures(SAMPLE)
    found = mentioned("cho em hỏi dang ky khai sinh cho con mất bao lâu ạ", procs)
    assert found is not None and found.code == "1.001612"
    found = mentioned("Lệ phí cấp giấy phép xây dựng nhà ở riêng lẻ?", procs)
    assert found is not None and found.code == "1.001045"
    assert mentioned("giấy phép là gì", procs) is None


async def _catalogue_search(url: str, procs: list[Procedure]) -> list[list[str]]:
    await migrate(url)
    engine = make_engine(url)
    try:
        assert await upsert_procedures(engine, procs) == len(procs)
        assert await upsert_procedures(engine, procs) == len(procs)  # idempotent
        sql = SqlCatalogue(engine)
        assert await sql.all() == sorted(procs, key=lambda p: p.code)
        out = []
        for catalogue in (sql, MemoryCatalogue(procs)):
            for q in ("giay phep LAI xe", "xe lái phép", "1002809", "2.000488", "zzz", ""):
                out.append([p.code for p in await catalogue.search(q)])
            assert await catalogue.find("1.001612") is not None
            assert await catalogue.find("9.999999") is None
        assert await sql.find("1001612") is None  # a keyed code is not a stored code
        return out
    finally:
        await engine.dispose()


def test_search_ignores_diacritics_case_and_order_alike_on_each_database(db_url: str) -> None:
    procs = read_procedures(SAMPLE)
    out = asyncio.run(_catalogue_search(db_url, procs))
    sql, memory = out[:6], out[6:]
    assert sql == memory
    assert sql[0] == sql[1] == ["1.002809"]
    assert sql[2] == ["1.002809"] and sql[3] == ["2.000488"]
    assert sql[4] == [] and sql[5] == []


def run_cli(argv: list[str]) -> int:
    return tongdai_cli.main(argv)


async def _all(url: str) -> list[Procedure]:
    engine = make_engine(url)
    try:
        return await SqlCatalogue(engine).all()
    finally:
        await engine.dispose()


def test_cli_import_is_an_idempotent_upsert_and_a_bad_file_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tongdai.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    base = ["--config", str(config), "procedures"]
    assert run_cli([*base, "import", "--no-prompts", str(SAMPLE)]) == 0
    first = asyncio.run(_all(db_url))
    assert run_cli([*base, "import", "--no-prompts", str(SAMPLE)]) == 0
    assert asyncio.run(_all(db_url)) == first and len(first) == len(read_procedures(SAMPLE))
    assert "imported 17 procedures" in capsys.readouterr().out

    changed = GOOD.replace("0,0,toan_trinh", "1,8000,mot_phan")
    bad = write(tmp_path, changed, "1.000009,Tên,so_nowhere,,1,0,mot_phan", name="bad.csv")
    assert run_cli([*base, "import", "--no-prompts", str(bad)]) == 2
    assert f"{bad}:3: agency" in capsys.readouterr().err
    assert asyncio.run(_all(db_url)) == first  # the good row of a bad file is not kept

    one = write(tmp_path, changed, name="one.csv")
    assert run_cli([*base, "import", "--no-prompts", str(one)]) == 0
    now = {p.code: p for p in asyncio.run(_all(db_url))}
    assert (now["1.001612"].fee_vnd, now["1.001612"].online_level) == (8000, OnlineLevel.PARTIAL)
    assert len(now) == len(first)
    capsys.readouterr()
    assert run_cli([*base, "search", "dang ky khai sinh"]) == 0
    assert "1.001612" in capsys.readouterr().out
    assert run_cli([*base, "search", "khong co thu tuc nay"]) == 1


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="needs espeak-ng and sox",
)
def test_cli_import_speaks_every_name_for_the_ivr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sounds = tmp_path / "sounds"
    config = tmp_path / "tongdai.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "t.db"}"\n'
        f'[ivr]\nsounds_dir = "{sounds}"\n',
        encoding="utf-8",
    )
    one = write(tmp_path, GOOD)
    assert run_cli(["--config", str(config), "procedures", "import", str(one)]) == 0
    assert (sounds / "thu_tuc" / "tt_1001612.wav").stat().st_size > 1000


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="needs espeak-ng and sox",
)
def test_lab_up_seeds_the_sample_catalogue_once_with_its_names(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    settings = replace(
        Settings(),
        database=replace(DatabaseSettings(), url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}"),
        ivr=replace(IvrSettings(), sounds_dir=str(sounds)),
    )
    assert engine.seed_procedures(settings) == len(read_procedures(SAMPLE))
    assert len(list((sounds / "thu_tuc").glob("tt_*.wav"))) == len(read_procedures(SAMPLE))
    assert engine.seed_procedures(settings) == 0  # not empty: the province's data is kept
