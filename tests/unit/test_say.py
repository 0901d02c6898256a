"""Spoken Vietnamese numbers, digits, dates and ticket codes (ivr.say), checked word by word."""

from __future__ import annotations

import random
from datetime import date

import pytest

from ivr import say

# Prompt name -> the word it says, so the expectations below read as Vietnamese.
WORDS = {
    "so_0": "không",
    "so_1": "một",
    "so_2": "hai",
    "so_3": "ba",
    "so_4": "bốn",
    "so_5": "năm",
    "so_6": "sáu",
    "so_7": "bảy",
    "so_8": "tám",
    "so_9": "chín",
    "muoi_10": "mười",
    "muoi": "mươi",
    "tram": "trăm",
    "nghin": "nghìn",
    "trieu": "triệu",
    "ty": "tỷ",
    "linh": "linh",
    "mot_dau": "mốt",
    "lam": "lăm",
    "tu": "tư",
    "ngay": "ngày",
    "thang": "tháng",
    "nam_year": "năm",
    "gach": "gạch",
}


def spoken(names: list[str]) -> str:
    return " ".join(WORDS[n] for n in names)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "không"),
        (1, "một"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (100, "một trăm"),
        (101, "một trăm linh một"),
        (104, "một trăm linh bốn"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (1000, "một nghìn"),
        (1005, "một nghìn không trăm linh năm"),
        (1050, "một nghìn không trăm năm mươi"),
        (2026, "hai nghìn không trăm hai mươi sáu"),
        (10000, "mười nghìn"),
        (20300, "hai mươi nghìn ba trăm"),
        (100000, "một trăm nghìn"),
        (1000000, "một triệu"),
        (1000005, "một triệu không trăm linh năm"),
        (1001001, "một triệu không trăm linh một nghìn không trăm linh một"),
        (1000000000, "một tỷ"),
        (
            999_999_999_999,
            "chín trăm chín mươi chín tỷ chín trăm chín mươi chín triệu "
            "chín trăm chín mươi chín nghìn chín trăm chín mươi chín",
        ),
    ],
)
def test_given_number_when_read_then_vietnamese_words(n: int, expected: str) -> None:
    assert spoken(say.number(n)) == expected


@pytest.mark.parametrize("n", [-1, say.MAX_NUMBER + 1])
def test_given_number_out_of_range_when_read_then_value_error(n: int) -> None:
    with pytest.raises(ValueError, match=r"reads 0\.\.999999999999"):
        say.number(n)


def test_given_bool_when_read_then_type_error() -> None:
    with pytest.raises(TypeError):
        say.number(True)


def test_given_random_numbers_when_read_then_words_are_known_prompts_and_well_formed() -> None:
    rng = random.Random(1022)
    samples = [rng.randrange(0, say.MAX_NUMBER + 1) for _ in range(2000)]
    samples += [rng.randrange(0, 100_000) for _ in range(2000)]
    for n in samples:
        words = say.number(n)
        assert set(words) <= say.WORD_PROMPTS, n
        text = spoken(words)
        # the reading rules: these never appear in a correct reading
        assert "mười mốt" not in text, n
        assert "mươi một" not in text, n
        assert "linh lăm" not in text, n
        assert "mươi năm" not in text, n
        assert "mười năm" not in text, n
        assert not text.startswith("không") or n == 0, n
        # each scale word appears at most once below a billion, once per billion group
        assert text.count("triệu") <= 1 and text.count("tỷ") <= 1, n


def test_given_digit_string_when_read_then_one_word_per_digit() -> None:
    assert spoken(say.digits("0912305")) == "không chín một hai ba không năm"


@pytest.mark.parametrize("bad", ["", "12a4", "12 34", "-1", "١٢"])
def test_given_non_digits_when_read_as_digits_then_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        say.digits(bad)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (
            date(2026, 11, 28),
            "ngày hai mươi tám tháng mười một năm hai nghìn không trăm hai mươi sáu",
        ),
        (date(2025, 4, 1), "ngày một tháng tư năm hai nghìn không trăm hai mươi lăm"),
        (
            date(2024, 12, 31),
            "ngày ba mươi mốt tháng mười hai năm hai nghìn không trăm hai mươi tư",
        ),
        (date(2030, 5, 15), "ngày mười lăm tháng năm năm hai nghìn không trăm ba mươi"),
    ],
)
def test_given_date_when_read_then_day_month_year_in_words(d: date, expected: str) -> None:
    assert spoken(say.date_vi(d)) == expected


def test_given_ticket_code_when_read_then_digits_with_gach_between_groups() -> None:
    assert spoken(say.ticket_code("1022-20261128-000123")) == (
        "một không hai hai gạch hai không hai sáu một một hai tám gạch không không không một hai ba"
    )


@pytest.mark.parametrize("bad", ["", "1022--5", "1022-", "1022-2026x"])
def test_given_malformed_ticket_code_when_read_then_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        say.ticket_code(bad)


def test_word_prompts_lists_exactly_what_say_can_produce() -> None:
    produced: set[str] = set()
    for n in [*range(0, 1200), 10**6, 10**9, 2026]:
        produced |= set(say.number(n))
    produced |= set(say.date_vi(date(2026, 4, 24))) | set(say.ticket_code("1-2"))
    assert produced == set(say.WORD_PROMPTS)
    assert set(WORDS) == set(say.WORD_PROMPTS)
