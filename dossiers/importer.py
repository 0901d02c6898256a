"""Read a dossier CSV exported by the province and check every row before anything is stored.

The file is UTF-8 (a BOM is fine) with the header ``code,procedure,agency,status,
received_date,due_date``; dates are ISO ``YYYY-MM-DD``; ``due_date`` may be empty. One bad row
rejects the whole file, and every problem is reported as ``FILE:LINE: field: problem``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

from dossiers.model import CODE_RE, MAX_CODE_DIGITS, Dossier, DossierStatus
from tongdai.errors import ConfigError

T = TypeVar("T")
HEADER = ("code", "procedure", "agency", "status", "received_date", "due_date")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_STATUS_VALUES = frozenset(s.value for s in DossierStatus)
_STATUSES = ", ".join(s.value for s in DossierStatus)


class DossierFileError(ConfigError):
    """A dossier file has problems; ``problems`` lists every one, ``str()`` shows them all."""

    def __init__(self, file: str, problems: list[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.file, first.field, first.problem)
        self.problems = problems
        lines = [str(p) for p in problems]
        lines.append(f"{file}: {len(problems)} problem(s); nothing imported")
        self.args = ("\n".join(lines),)


def _date(text: str) -> date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _check_row(where: str, cells: list[str], problems: list[ConfigError]) -> Dossier | None:
    def bad(field: str, problem: str) -> None:
        problems.append(ConfigError(where, field, problem))

    if len(cells) != len(HEADER):
        bad("row", f"expected {len(HEADER)} fields, found {len(cells)}")
        return None
    code, procedure, agency, status, received, due = (c.strip() for c in cells)
    before = len(problems)
    if not CODE_RE.match(code):
        bad("code", f"{code!r} is not 4 to {MAX_CODE_DIGITS} digits")
    if not procedure:
        bad("procedure", "empty")
    if not agency:
        bad("agency", "empty")
    if status not in _STATUS_VALUES:
        bad("status", f"{status!r} is not one of {_STATUSES}")
    received_date = _date(received)
    if received_date is None:
        bad("received_date", f"{received!r} is not a date YYYY-MM-DD")
    due_date = _date(due) if due else None
    if due and due_date is None:
        bad("due_date", f"{due!r} is not a date YYYY-MM-DD (or leave it empty)")
    elif due_date is not None and received_date is not None and due_date < received_date:
        bad("due_date", f"{due} is before received_date {received}")
    if len(problems) > before or received_date is None:
        return None
    return Dossier(code, procedure, agency, DossierStatus(status), received_date, due_date)


def open_csv(path: str | Path, header: tuple[str, ...]) -> Iterator[tuple[str, list[str]]]:
    """The rows of a UTF-8 CSV file with exactly ``header``, as ``("FILE:LINE", cells)``;
    blank rows are skipped. A missing, unreadable or empty file, a wrong header and bad CSV
    quoting are ``ConfigError`` naming the file and the line."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(name, "-", "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "-", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(name, "-", f"cannot read: {exc.strerror}") from None
    if not text.strip():
        raise ConfigError(f"{name}:1", "header", f"file is empty; expected {','.join(header)}")
    reader = csv.reader(text.splitlines(keepends=True))
    found = [cell.strip() for cell in next(reader)]
    if tuple(found) != header:
        raise ConfigError(
            f"{name}:1", "header", f"expected {','.join(header)}, found {','.join(found)}"
        )
    line = reader.line_num
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if any(c.strip() for c in cells):
                yield f"{name}:{start}", cells
    except csv.Error as exc:
        raise ConfigError(f"{name}:{reader.line_num}", "row", f"bad CSV: {exc}") from None


def read_checked(
    path: str | Path,
    header: tuple[str, ...],
    check: Callable[[str, list[str], list[ConfigError]], T | None],
    code: Callable[[T], str],
    what: str,
) -> list[T]:
    """Every row of a CSV file that ``check`` accepts (it appends its problems), each ``code``
    once; ``DossierFileError`` listing every problem if there is one."""
    name = str(path)
    problems: list[ConfigError] = []
    out: list[T] = []
    first_line: dict[str, str] = {}
    try:
        for where, cells in open_csv(path, header):
            item = check(where, cells, problems)
            if item is None:
                continue
            key = code(item)
            if key in first_line:
                problems.append(ConfigError(where, "code", f"{key} repeats line {first_line[key]}"))
                continue
            first_line[key] = where.rsplit(":", 1)[1]
            out.append(item)
    except ConfigError as exc:
        if exc.field != "row":  # the file itself: missing, unreadable, empty, wrong header
            raise
        problems.append(exc)  # bad CSV quoting: reported with the bad rows before it
    if problems:
        raise DossierFileError(name, problems)
    if not out:
        raise ConfigError(f"{name}:2", "row", f"no {what} after the header")
    return out


def read_dossiers(path: str | Path) -> list[Dossier]:
    """Every dossier of the CSV file, or ``DossierFileError`` listing every bad row."""
    return read_checked(path, HEADER, _check_row, lambda d: d.code, "dossiers")
