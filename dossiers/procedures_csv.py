"""Read the province's procedure catalogue CSV and check every row before anything is stored.

UTF-8 (a BOM is fine) with the header
``code,name,agency,documents,time_limit_days,fee_vnd,online_level``:

* ``code``: the national code ``1.004227``;
* ``agency``: an agency id of the agencies file (``agencies/agencies_quangnam.toml``);
* ``documents``: the documents required, separated by ``;``;
* ``time_limit_days``: working days, 0 for the same day;
* ``fee_vnd``: đồng, digits only (``50000``; dots and spaces between thousands are allowed),
  0 for free;
* ``online_level``: ``toan_trinh``, ``mot_phan`` or ``truc_tiep``.

One bad row rejects the whole file; every problem is reported as ``FILE:LINE: field: problem``
(``dossiers.importer.DossierFileError`` lists them all).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from dossiers.importer import read_checked
from dossiers.procedures import (
    CODE_RE,
    MAX_DOCUMENTS,
    MAX_FEE_VND,
    MAX_NAME,
    MAX_TIME_LIMIT_DAYS,
    OnlineLevel,
    Procedure,
)
from tongdai.errors import ConfigError

HEADER = ("code", "name", "agency", "documents", "time_limit_days", "fee_vnd", "online_level")
_LEVELS = ", ".join(level.value for level in OnlineLevel)
_THOUSANDS = re.compile(r"[.\s]")


def _whole(text: str, hi: int) -> int | None:
    digits = _THOUSANDS.sub("", text)
    if not digits.isascii() or not digits.isdigit():
        return None
    value = int(digits)
    return value if value <= hi else None


def _check_row(
    where: str, cells: list[str], agencies: Collection[str] | None, problems: list[ConfigError]
) -> Procedure | None:
    def bad(field: str, problem: str) -> None:
        problems.append(ConfigError(where, field, problem))

    if len(cells) != len(HEADER):
        bad("row", f"expected {len(HEADER)} fields, found {len(cells)}")
        return None
    code, name, agency, documents, days, fee, level = (c.strip() for c in cells)
    before = len(problems)
    if not CODE_RE.match(code):
        bad("code", f"{code!r} is not a national procedure code like 1.004227")
    if not name:
        bad("name", "empty")
    elif len(name) > MAX_NAME:
        bad("name", f"longer than {MAX_NAME} characters")
    if not agency:
        bad("agency", "empty")
    elif agencies is not None and agency not in agencies:
        bad("agency", f"{agency!r} is not an agency id of the agencies file")
    if len(documents) > MAX_DOCUMENTS:
        bad("documents", f"longer than {MAX_DOCUMENTS} characters")
    time_limit = _whole(days, MAX_TIME_LIMIT_DAYS)
    if time_limit is None:
        bad("time_limit_days", f"{days!r} is not a number of working days 0-{MAX_TIME_LIMIT_DAYS}")
    fee_vnd = _whole(fee, MAX_FEE_VND)
    if fee_vnd is None:
        bad("fee_vnd", f"{fee!r} is not an amount in đồng (digits, 0 for free)")
    if level not in {lv.value for lv in OnlineLevel}:
        bad("online_level", f"{level!r} is not one of {_LEVELS}")
    if len(problems) > before or time_limit is None or fee_vnd is None:
        return None
    return Procedure(code, name, agency, documents, time_limit, fee_vnd, OnlineLevel(level))


def read_procedures(path: str | Path, agencies: Collection[str] | None = None) -> list[Procedure]:
    """Every procedure of the CSV file, or ``DossierFileError`` listing every bad row;
    with ``agencies``, an agency outside it is a bad row."""

    def check(where: str, cells: list[str], problems: list[ConfigError]) -> Procedure | None:
        return _check_row(where, cells, agencies, problems)

    return read_checked(path, HEADER, check, lambda p: p.code, "procedures")
