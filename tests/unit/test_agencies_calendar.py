"""The agencies file and working-day deadlines on the office calendar (``ivr/schedule.toml``):
weekends and public holidays, Tết included, do not count."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from agencies.calendar import WorkCalendar
from agencies.model import load_agencies
from tongdai.clock import VN_TZ
from tongdai.errors import ConfigError
from tongdai.settings import PROJECT_HOME

CAL = WorkCalendar.from_file(PROJECT_HOME / "ivr/schedule.toml")


def vn(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=VN_TZ)


def test_the_shipped_file_lists_quang_nam_agencies_with_deadlines() -> None:
    book = load_agencies()
    ids = [a.id for a in book]
    for expected in ("so_tu_phap", "so_khdt", "so_xay_dung", "so_gtvt", "so_vhttdl"):
        assert expected in ids
    assert "bql_kkt_kcn" in book and "buu_dien" in book
    assert sum(a.id.startswith("ubnd_") for a in book) >= 3
    assert book.name("so_tu_phap") == "Sở Tư pháp"
    assert all(1 <= a.deadline_days <= 60 and "@" in a.email for a in book)
    assert "bql_kkt_kcn" in [a.id for a in book.for_category("dau_tu")]


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ('[agencies.so_x]\nname = "X"\nemail = "x@a.vn"\n', "agencies.so_x.deadline_days",
         "required"),
        ('[agencies.so_x]\nname = "X"\nemail = "x@a.vn"\ndeadline_days = 0\n',
         "agencies.so_x.deadline_days", "between 1 and 60"),
        ('[agencies.so_x]\nname = "X"\nemail = "không-thư"\ndeadline_days = 3\n',
         "agencies.so_x.email", "not an e-mail"),
        ('[agencies.so_x]\nname = "X"\nemail = "x@a.vn"\ndeadline_days = 3\nfax = "1"\n',
         "agencies.so_x.fax", "unknown field"),
        ('[agencies.so_x]\nname = "X"\nemail = "x@a.vn"\ndeadline_days = 3\n'
         'categories = ["Phản ánh"]\n', "agencies.so_x.categories", "category ids"),
        ('[agencies."Sở X"]\nname = "X"\nemail = "x@a.vn"\ndeadline_days = 3\n',
         "agencies.Sở X", "id"),
        ("[agencies]\n", "agencies", "no agency"),
    ],
)  # fmt: skip
def test_given_a_broken_agencies_file_then_the_error_names_file_and_field(
    tmp_path: Path, body: str, field: str, problem: str
) -> None:
    f = tmp_path / "agencies.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_agencies(f)
    assert (e.value.file, e.value.field) == (str(f), field)
    assert problem in e.value.problem


def test_given_a_friday_forward_then_three_working_days_skip_the_weekend() -> None:
    due = CAL.due(vn(2026, 12, 4, 15, 30), 3)  # Friday afternoon
    assert due == vn(2026, 12, 9, 17, 0)  # Wednesday at the office's close
    assert due.tzinfo is UTC
    assert CAL.working_days_between(vn(2026, 12, 4), vn(2026, 12, 9)) == 3


def test_given_a_forward_before_tet_then_the_days_of_tet_do_not_count() -> None:
    # Friday 13/2/2026; Tết holidays 14-22/2 (Monday 16 to Friday 20 are holidays)
    assert CAL.due(vn(2026, 2, 13, 9), 3) == vn(2026, 2, 25, 17, 0)
    for day in range(16, 21):
        assert not CAL.is_working_day(date(2026, 2, day))
    assert CAL.is_working_day(date(2026, 2, 23))


def test_given_a_forward_before_tet_2027_then_its_provisional_days_do_not_count() -> None:
    # Thursday 4/2/2027; Tết Đinh Mùi (mùng 1 Saturday 6/2), provisionally Friday 5/2 to
    # Thursday 11/2: three working days are Friday 12/2, Monday 15/2 and Tuesday 16/2
    assert CAL.due(vn(2027, 2, 4, 9), 3) == vn(2027, 2, 16, 17, 0)
    for day in range(5, 12):
        assert not CAL.is_working_day(date(2027, 2, day))
    assert CAL.is_working_day(date(2027, 2, 4)) and CAL.is_working_day(date(2027, 2, 12))


def test_given_new_year_and_a_weekend_then_they_are_skipped() -> None:
    # Thursday 31/12/2026 + 2: Friday 1/1 holiday, weekend, Monday 4/1, Tuesday 5/1
    assert CAL.due(vn(2026, 12, 31, 16), 2) == vn(2027, 1, 5, 17, 0)


def test_a_late_evening_forward_counts_from_its_local_day() -> None:
    # 23:30 on Monday in Vietnam is 16:30 UTC the same day: due Tuesday's close + 0
    late = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
    assert CAL.due(late, 1) == vn(2026, 12, 8, 17, 0)
    with pytest.raises(ValueError, match="at least 1"):
        CAL.add_working_days(date(2026, 12, 7), 0)
