"""The knowledge base: questions answered with an answer marked public (question, answer,
category, procedure), searched by agents (``/api/kb``) and by the chat bot.

Search ignores diacritics, case and word order: "thu tuc cap lai can cuoc" finds "Thủ tục cấp
lại căn cước". Both text and query are *folded* (lower case, no diacritics, đ -> d) and cut
into words; an entry matches when it holds every word of the query (``strict``), or, for the
bot's free sentences ("cho hỏi thủ tục cấp lại căn cước cần gì"), at least ``LOOSE_SHARE`` of
them. The backends only find candidates: PostgreSQL with full-text search over ``unaccent``
(``tickets.sql_kb``), SQLite with an FTS5 table of folded text, memory by scanning; the same
scoring here ranks them, so all three answer alike (one contract suite, tests/unit/test_kb.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from tongdai.clock import as_utc, utcnow

#: share of the query's words a loose match must hold
LOOSE_SHARE = 0.6
MAX_QUERY_WORDS = 20
MAX_QUESTION = 2000
MAX_ANSWER = 20000
_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lower case, no diacritics (đ -> d): "Thủ tục Đăng ký" -> "thu tuc dang ky"."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order, each once."""
    return list(dict.fromkeys(_WORD.findall(fold(text))))


@dataclass(frozen=True)
class KbEntry:
    id: int
    question: str
    answer: str
    category: str | None
    procedure: str | None
    #: the ticket whose public answer this is (None: written directly by a supervisor)
    ticket_code: str | None
    updated_by: str
    updated_at: datetime

    def text(self) -> str:
        """Everything searchable, one string."""
        return " ".join(p for p in (self.question, self.procedure, self.category, self.answer) if p)


@dataclass(frozen=True)
class KbHit:
    entry: KbEntry
    #: share of the query's words the entry holds (1.0: all of them)
    score: float


@dataclass(frozen=True)
class KbDraft:
    """What ``publish`` stores; validated by ``check``."""

    question: str
    answer: str
    category: str | None = None
    procedure: str | None = None
    ticket_code: str | None = None

    def check(self) -> KbDraft:
        q, a = self.question.strip(), self.answer.strip()
        if not q or not a:
            raise ValueError("a knowledge-base entry needs a question and an answer")
        if len(q) > MAX_QUESTION or len(a) > MAX_ANSWER:
            raise ValueError(
                f"question at most {MAX_QUESTION} characters, answer at most {MAX_ANSWER}"
            )
        return replace(
            self,
            question=q,
            answer=a,
            category=(self.category or "").strip() or None,
            procedure=(self.procedure or "").strip() or None,
        )


def rank(query: str, candidates: Iterable[KbEntry], *, strict: bool, limit: int) -> list[KbHit]:
    """Score candidates on the query's folded words; best first, ties newest first."""
    wanted = words(query)[:MAX_QUERY_WORDS]
    if not wanted:
        return []
    need = 1.0 if strict else LOOSE_SHARE
    hits = []
    for e in candidates:
        have = set(words(e.text()))
        score = sum(w in have for w in wanted) / len(wanted)
        if score >= need:
            hits.append(KbHit(e, score))
    hits.sort(key=lambda h: (-h.score, -h.entry.updated_at.timestamp(), -h.entry.id))
    return hits[:limit]


class KnowledgeBase(Protocol):
    async def publish(self, draft: KbDraft, *, by: str) -> KbEntry:
        """Store an entry; with a ``ticket_code`` already in the base, replace that entry
        (a ticket has one public answer). ValueError for an empty or oversized entry."""

    async def withdraw(self, entry_id: int) -> bool:
        """Remove an entry (the answer is no longer public); False if there was none."""

    async def get(self, entry_id: int) -> KbEntry | None: ...

    async def search(self, query: str, *, strict: bool = True, limit: int = 10) -> list[KbHit]:
        """Entries holding the query's words (see the module docstring), best first."""

    async def close(self) -> None: ...


class MemoryKnowledgeBase:
    """``KnowledgeBase`` in memory (unit tests of its users)."""

    def __init__(self) -> None:
        self._entries: dict[int, KbEntry] = {}
        self._next = 1

    async def publish(self, draft: KbDraft, *, by: str) -> KbEntry:
        d = draft.check()
        old = next(
            (e for e in self._entries.values() if d.ticket_code and e.ticket_code == d.ticket_code),
            None,
        )
        entry_id = old.id if old else self._next
        if old is None:
            self._next += 1
        entry = KbEntry(
            entry_id, d.question, d.answer, d.category, d.procedure, d.ticket_code, by,
            as_utc(utcnow()),
        )  # fmt: skip
        self._entries[entry_id] = entry
        return entry

    async def withdraw(self, entry_id: int) -> bool:
        return self._entries.pop(entry_id, None) is not None

    async def get(self, entry_id: int) -> KbEntry | None:
        return self._entries.get(entry_id)

    async def search(self, query: str, *, strict: bool = True, limit: int = 10) -> list[KbHit]:
        return rank(query, self._entries.values(), strict=strict, limit=limit)

    async def close(self) -> None:
        return None
