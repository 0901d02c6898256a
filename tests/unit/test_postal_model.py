"""Postal registration input: the address checks (clear Vietnamese errors, every problem at
once), the places file's validation, and the post office's CSV/XLSX list (content, dates in
Vietnam time, nothing typed becomes a formula)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from hotline import cli as tongdai_cli
from postal.export import HEADERS, safe_cell, to_csv, to_xlsx
from postal.model import (
    Address,
    PostalInvalid,
    PostalState,
    Registration,
    check_address,
    check_dossier_code,
    normalise_phone,
)
from postal.places import load_places
from postal.sql import SqlPostalStore
from tickets.sql import open_store
from tongdai.errors import ConfigError

PLACES = load_places()
GOOD = {
    "recipient": "  Trần   Văn Nam ",
    "phone": "+84 905.111.222",
    "district": "hoi_an",
    "ward": "Phường Minh An",
    "street": "45 Nguyễn Thái Học",
    "preferred_time": "chieu",
}


def test_given_the_shipped_places_then_quang_nam_has_its_18_districts_with_wards() -> None:
    assert PLACES.province == "Tỉnh Quảng Nam"
    assert len(PLACES.districts) == 18
    tam_ky = PLACES.district("tam_ky")
    assert tam_ky is not None and tam_ky.name == "Thành phố Tam Kỳ"
    assert "Phường An Mỹ" in tam_ky.wards
    assert all(len(d.wards) >= 4 for d in PLACES)


def test_given_good_input_then_the_address_is_normalised() -> None:
    a = check_address(GOOD, PLACES)
    assert (a.recipient, a.phone, a.district, a.ward, a.province) == (
        "Trần Văn Nam", "0905111222", "Thành phố Hội An", "Phường Minh An", "Tỉnh Quảng Nam",
    )  # fmt: skip
    assert a.preferred_time == "chieu"
    assert check_address({**GOOD, "preferred_time": ""}, PLACES).preferred_time == "ca_ngay"


def test_given_bad_input_then_every_field_gets_its_vietnamese_message() -> None:
    bad = {"recipient": "A", "phone": "12345", "district": "da_nang", "ward": "x", "street": ""}
    with pytest.raises(PostalInvalid) as err:
        check_address({**bad, "preferred_time": "dem"}, PLACES)
    errors = err.value.errors
    assert set(errors) == {"recipient", "phone", "district", "street", "preferred_time"}
    assert errors["phone"] == "Số điện thoại phải có 10 hoặc 11 chữ số và bắt đầu bằng số 0."
    assert "quận, huyện" in errors["district"]


def test_given_a_ward_of_another_district_then_refused_naming_the_district() -> None:
    with pytest.raises(PostalInvalid) as err:
        check_address({**GOOD, "ward": "Phường An Mỹ"}, PLACES)  # Tam Kỳ's, not Hội An's
    assert err.value.errors == {"ward": "Xin chọn xã, phường, thị trấn thuộc Thành phố Hội An."}


def test_given_control_characters_or_non_text_then_refused() -> None:
    with pytest.raises(PostalInvalid) as err:
        check_address({**GOOD, "street": "12 Lê Lợi\x00", "recipient": 42}, PLACES)
    assert set(err.value.errors) == {"street", "recipient"}


@pytest.mark.parametrize(
    ("raw", "phone"),
    [("0905 111 222", "0905111222"), ("84905111222", "0905111222"),
     ("(0235) 3812 345", "02353812345")],
)  # fmt: skip
def test_phone_numbers_are_normalised(raw: str, phone: str) -> None:
    assert normalise_phone(raw) == phone


def test_dossier_codes_are_digits() -> None:
    assert check_dossier_code(" 123456 ") == "123456"
    for bad in ("12a456", "123", "1" * 17, None):
        with pytest.raises(PostalInvalid):
            check_dossier_code(bad)


def test_given_a_broken_places_file_then_the_error_names_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        '[province]\nid = "qn"\nname = "Q"\n[districts.tam_ky]\nname = "T"\nwards = []\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_places(f)
    assert "districts.tam_ky.wards" in str(err.value) and "p.toml" in str(err.value)
    f.write_text('[province]\nid = "qn"\nname = "Q"\n[districts.X]\nname = "T"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"districts\.X"):
        load_places(f)


def _reg(n: int, **kw: object) -> Registration:
    at = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)  # 23:30 in Vietnam
    base = dict(
        id=n, ticket_code=f"1022-20261207-00000{n}", dossier_code="123456",
        state=PostalState.REGISTERED, phone="0905111222", created_at=at, created_by="tdv101",
        updated_at=at, recipient="Lê Thị Lan", province="Tỉnh Quảng Nam",
        district="Thành phố Tam Kỳ", ward="Phường An Mỹ", street="12 Trần Cao Vân",
        preferred_time="sang", registered_at=at,
    )  # fmt: skip
    return Registration(**{**base, **kw})  # type: ignore[arg-type]


def test_given_registrations_then_the_csv_has_vietnamese_headers_and_rows() -> None:
    data = to_csv([_reg(1), _reg(2, recipient='=HYPERLINK("http://x")', note="-1+2")])
    assert data.startswith("\ufeff".encode())  # Excel reads UTF-8 with a BOM
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(HEADERS)
    assert rows[1][:5] == ["1", "123456", "1022-20261207-000001", "Lê Thị Lan", "0905111222"]
    assert rows[1][6:12] == [
        "Thành phố Tam Kỳ", "Phường An Mỹ", "12 Trần Cao Vân", "Buổi sáng (7h30 - 11h30)",
        "Đã đăng ký", "07/12/2026 23:30",
    ]  # fmt: skip
    assert rows[2][3] == '\'=HYPERLINK("http://x")' and rows[2][12] == "'-1+2"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)" and safe_cell("Lê") == "Lê"


def test_given_registrations_then_the_xlsx_holds_the_same_cells_as_text() -> None:
    data = to_xlsx([_reg(1, recipient="=1+1")], date(2026, 12, 7))
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    assert [c.value for c in ws[1]] == list(HEADERS)
    row = [c for c in ws[2]]
    assert row[3].value == "=1+1" and row[3].data_type == "s"  # text, never a formula
    assert row[7].value == "Phường An Mỹ"
    assert ws.max_row == 2


async def _seed_registration(url: str) -> str:
    tickets = await open_store(url)
    try:
        at = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
        t = await tickets.open(channel="voice", caller=None, uniqueid=None, started_at=at)
        address = Address("Lê Văn Tám", "0905111222", "Tỉnh Quảng Nam", "Huyện Núi Thành",
                          "Thị trấn Núi Thành", "Khối 3", "ca_ngay")  # fmt: skip
        await SqlPostalStore(tickets.engine).register(
            ticket_code=t.code, dossier_code="424242", address=address, by="tdv101", at=at
        )
        return t.code
    finally:
        await tickets.close()


def test_tongdai_postal_export_writes_the_days_csv_and_xlsx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tongdai.db'}"
    config = tmp_path / "tongdai.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    code = asyncio.run(_seed_registration(url))
    out = tmp_path / "d.csv"
    argv = ["--config", str(config), "postal", "export", "--date", "2026-12-07", "--out", str(out)]
    assert tongdai_cli.main(argv) == 0
    assert "1 registrations of 2026-12-07 written to" in capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[1][1:4] == ["424242", code, "Lê Văn Tám"]
    xlsx = tmp_path / "d.xlsx"
    base = ["--config", str(config), "postal", "export", "--format", "xlsx", "--out", str(xlsx)]
    assert tongdai_cli.main([*base, "--date", "2026-12-08"]) == 0  # another day: header only
    ws = load_workbook(xlsx).active
    assert ws is not None and ws.max_row == 1
    assert tongdai_cli.main([*base, "--date", "07/12/2026"]) == 2  # a clear error
    assert "--date" in capsys.readouterr().err
