"""The procedure catalogue (thủ tục hành chính): the type, its search and the interface callers use.

A procedure has the national code of the public-service portal (``1.004227``: one digit, a dot,
six digits), a Vietnamese name, the agency that handles it (an id of
``agencies/agencies_quangnam.toml``), the documents required, a time limit in working days
(0: the same day), a fee in đồng (0: free) and its level of online service (``toan_trinh``
fully online, ``mot_phan`` partly online, ``truc_tiep`` in person only).

The catalogue is imported from the province's CSV (``dossiers.procedures_csv``, ``tongdai
procedures import``) into the ``procedures`` table (``dossiers.procedures_sql``). A caller on the
phone keys the code without its dot (``1004227``): ``code_of_keys``. Search ignores diacritics,
case and word order like the knowledge base (``tickets.kb.words``), and a code matches itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from tickets.kb import words

#: the national procedure code as written: 1.004227
CODE_RE = re.compile(r"^[0-9]\.[0-9]{6}$")
#: what a caller keys for it: the seven digits without the dot
KEYED_RE = re.compile(r"^[0-9]{7}$")
KEYED_DIGITS = 7
MAX_TIME_LIMIT_DAYS = 365
MAX_FEE_VND = 100_000_000
MAX_NAME = 300
MAX_DOCUMENTS = 4000


class OnlineLevel(StrEnum):
    FULL = "toan_trinh"  # dịch vụ công trực tuyến toàn trình
    PARTIAL = "mot_phan"  # dịch vụ công trực tuyến một phần
    NONE = "truc_tiep"  # nộp trực tiếp (or by post)


ONLINE_LABELS: dict[OnlineLevel, str] = {
    OnlineLevel.FULL: "Dịch vụ công trực tuyến toàn trình",
    OnlineLevel.PARTIAL: "Dịch vụ công trực tuyến một phần",
    OnlineLevel.NONE: "Nộp trực tiếp hoặc qua bưu chính",
}


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    agency: str
    documents: str
    time_limit_days: int
    fee_vnd: int
    online_level: OnlineLevel

    @property
    def keyed(self) -> str:
        """What a caller keys for it: ``1.004227`` -> ``1004227``."""
        return self.code.replace(".", "")

    def text(self) -> str:
        """Everything searchable, one string."""
        return f"{self.code} {self.keyed} {self.name} {self.agency} {self.documents}"


def code_of_keys(keys: str) -> str | None:
    """``1004227`` (or ``1.004227``) -> ``1.004227``; None if it is not a procedure code."""
    keys = keys.strip()
    if CODE_RE.match(keys):
        return keys
    if KEYED_RE.match(keys):
        return f"{keys[0]}.{keys[1:]}"
    return None


def rank(query: str, candidates: Iterable[Procedure], *, limit: int = 20) -> list[Procedure]:
    """Procedures holding every folded word of ``query`` (a code finds its procedure), the
    ones whose name holds them first, then by code."""
    code = code_of_keys(query)
    wanted = words(query)
    if not wanted:
        return []
    hits: list[tuple[int, str, Procedure]] = []
    for p in candidates:
        if code is not None and p.code == code:
            hits.append((0, p.code, p))
            continue
        have = set(words(p.text()))
        if all(w in have for w in wanted):
            in_name = set(words(p.name))
            hits.append((1 if all(w in in_name for w in wanted) else 2, p.code, p))
    hits.sort(key=lambda h: (h[0], h[1]))
    return [p for _, _, p in hits[:limit]]


#: a procedure code written in a sentence
CODE_IN_TEXT = re.compile(r"(?<![0-9.])([0-9]\.[0-9]{6})(?![0-9])")
#: the fewest words of a name ``mentioned`` accepts (shorter names are too common to be meant)
MIN_NAME_WORDS = 3


def code_in(text: str) -> str | None:
    """A procedure code (``1.004227``) written anywhere in ``text``."""
    m = CODE_IN_TEXT.search(text)
    return m.group(1) if m else None


def mentioned(text: str, candidates: Iterable[Procedure]) -> Procedure | None:
    """The procedure whose whole name is in ``text`` (every folded word of it, any order),
    the longest such name if several: "thủ tục đăng ký khai sinh mất bao lâu" names "Đăng
    ký khai sinh". Names of fewer than ``MIN_NAME_WORDS`` words are not matched."""
    have = set(words(text))
    best: tuple[int, Procedure] | None = None
    for p in candidates:
        name = words(p.name)
        fits = len(name) >= MIN_NAME_WORDS and all(w in have for w in name)
        if fits and (best is None or len(name) > best[0]):
            best = (len(name), p)
    return best[1] if best else None


class ProcedureCatalogue(Protocol):
    async def find(self, code: str) -> Procedure | None:
        """The procedure with this code (``1.004227``), or None."""

    async def all(self) -> list[Procedure]:
        """Every procedure, by code."""

    async def search(self, query: str, *, limit: int = 20) -> list[Procedure]:
        """Procedures matching ``query`` (``rank``), best first."""


class MemoryCatalogue:
    """``ProcedureCatalogue`` in memory (unit tests of its users)."""

    def __init__(self, procedures: Iterable[Procedure] = ()) -> None:
        self._by_code = {p.code: p for p in procedures}

    async def find(self, code: str) -> Procedure | None:
        return self._by_code.get(code)

    async def all(self) -> list[Procedure]:
        return sorted(self._by_code.values(), key=lambda p: p.code)

    async def search(self, query: str, *, limit: int = 20) -> list[Procedure]:
        return rank(query, self._by_code.values(), limit=limit)
