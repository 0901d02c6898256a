"""Spoken Vietnamese numbers, digit strings, dates and ticket codes, as lists of prompt names.

Pure functions, no I/O: each returns the names of word prompts (``so_5``, ``muoi``, ``tram``...)
that the IVR plays one after another. Every name they can return is in ``WORD_PROMPTS`` and
must exist in the prompt catalogue (``ivr/prompts_vi.toml``).

Conventions (Northern/Central, as read on the radio and at a public-service counter):

* 10 is "mười", 20..90 are "hai mươi".. "chín mươi";
* a final 1 after "mươi" is "mốt" (hai mươi mốt), but "một" after "mười" (mười một) and "linh";
* a final 5 after "mười"/"mươi" is "lăm" (mười lăm, hai mươi lăm), but "năm" after "linh";
* a final 4 after "mươi" is "tư" (hai mươi tư), but "bốn" after "mười" and "linh";
* a zero tens digit before a unit is "linh" (một trăm linh năm);
* a group of three after a larger group says its hundreds even when zero
  (một nghìn không trăm linh năm, hai nghìn không trăm hai mươi sáu);
* groups are "nghìn", "triệu", "tỷ"; an all-zero group is skipped (một triệu không trăm linh năm).
"""

from __future__ import annotations

from datetime import date

#: largest number ``number`` reads (just under a thousand billion, "nghìn tỷ")
MAX_NUMBER = 999_999_999_999

DIGIT = tuple(f"so_{d}" for d in range(10))
MUOI_10 = "muoi_10"  # mười (ten, and the tens word of 10..19)
MUOI = "muoi"  # mươi (the tens word of 20..90)
TRAM = "tram"  # trăm
NGHIN = "nghin"  # nghìn
TRIEU = "trieu"  # triệu
TY = "ty"  # tỷ
LINH = "linh"  # linh (zero tens before a unit)
MOT_DAU = "mot_dau"  # mốt (final 1 after mươi)
LAM = "lam"  # lăm (final 5 after mười/mươi)
TU = "tu"  # tư (final 4 after mươi; the month of April)
NGAY = "ngay"  # ngày
THANG = "thang"  # tháng
NAM_YEAR = "nam_year"  # năm (year; the digit 5 is so_5)
GACH = "gach"  # gạch (the dash in a ticket code)

WORD_PROMPTS: frozenset[str] = frozenset(
    {
        *DIGIT,
        MUOI_10,
        MUOI,
        TRAM,
        NGHIN,
        TRIEU,
        TY,
        LINH,
        MOT_DAU,
        LAM,
        TU,
        NGAY,
        THANG,
        NAM_YEAR,
        GACH,
    }
)

_SCALES = (TY, TRIEU, NGHIN, None)  # 10^9, 10^6, 10^3, 10^0


def _tens_and_units(tens: int, units: int) -> list[str]:
    """The last two digits of a group; ``[]`` for 00."""
    if tens == 0:
        return [] if units == 0 else [DIGIT[units]]
    words = [MUOI_10] if tens == 1 else [DIGIT[tens], MUOI]
    if units == 0:
        return words
    if units == 5:
        words.append(LAM)
    elif units == 1 and tens >= 2:
        words.append(MOT_DAU)
    elif units == 4 and tens >= 2:
        words.append(TU)
    else:
        words.append(DIGIT[units])
    return words


def _group(value: int, *, leading: bool) -> list[str]:
    """Read 1..999; a non-leading group always says its hundreds ("không trăm")."""
    hundreds, rest = divmod(value, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or not leading:
        words += [DIGIT[hundreds], TRAM]
    if tens == 0 and units != 0 and words:
        words += [LINH, DIGIT[units]]
    else:
        words += _tens_and_units(tens, units)
    return words


def number(n: int) -> list[str]:
    """The Vietnamese reading of ``0 <= n <= MAX_NUMBER``, e.g. 105 -> một trăm linh năm."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number() needs an int, got {type(n).__name__}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"number() reads 0..{MAX_NUMBER}, got {n}")
    if n == 0:
        return [DIGIT[0]]
    groups = [(n // 10**9) % 1000, (n // 10**6) % 1000, (n // 10**3) % 1000, n % 1000]
    words: list[str] = []
    for value, scale in zip(groups, _SCALES, strict=True):
        if value == 0:
            continue
        words += _group(value, leading=not words)
        if scale is not None:
            words.append(scale)
    return words


def digits(s: str) -> list[str]:
    """Each digit of ``s`` one by one (a dossier code, a phone number); only 0-9 allowed."""
    if not s:
        raise ValueError("digits() needs at least one digit")
    bad = sorted({c for c in s if c not in "0123456789"})
    if bad:
        raise ValueError(f"digits() reads only 0-9, got {''.join(bad)!r} in {s!r}")
    return [DIGIT[int(c)] for c in s]


def date_vi(d: date) -> list[str]:
    """ "ngày 28 tháng 11 năm 2026"; April is "tháng tư" as Vietnamese say it."""
    month = [TU] if d.month == 4 else number(d.month)
    return [NGAY, *number(d.day), THANG, *month, NAM_YEAR, *number(d.year)]


def ticket_code(code: str) -> list[str]:
    """A code like ``1022-20261128-000123``: each group digit by digit, "gạch" between groups."""
    groups = code.split("-")
    words: list[str] = []
    for i, group in enumerate(groups):
        if not group:
            raise ValueError(f"ticket code {code!r} has an empty group")
        if i:
            words.append(GACH)
        words += digits(group)
    return words
