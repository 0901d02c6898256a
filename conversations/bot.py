"""The self-service bot of the message channels (web chat, Zalo, Facebook): what the IVR does
by keys, in text. A dossier code gets its status in the IVR's own words (the same prompt
texts, the same dossier source); "gặp tổng đài viên" (with or without diacritics, or the
widget's button) asks for an agent; anything else gets the help text once, and the second
time goes to an agent (a person should read a question the bot cannot answer).

With the procedure catalogue (``dossiers.procedures``), a procedure code (``1.004227``, or its
seven digits alone when no dossier has them) or a procedure's whole name in the message gets
its time limit, fee and level of online service; a catalogue that is down is skipped. The name
is tried after the knowledge base (a published answer about that procedure says more).

With a knowledge base (``tickets.kb``), a question of at least ``KB_MIN_WORDS`` words that
holds most words of a published question gets that entry's public answer (with the question
it answers, and how to reach a person); a knowledge base that is down is skipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from conversations.texts import Texts
from dossiers.model import CODE_RE, Dossier, DossierLookup, DossierStatus
from dossiers.procedures import (
    ONLINE_LABELS,
    Procedure,
    ProcedureCatalogue,
    code_in,
    code_of_keys,
    mentioned,
)
from tickets.kb import KbHit, words
from tongdai.errors import StoreError

#: what a citizen writes (diacritics and case removed) to ask for a person
AGENT_WORDS = (
    "gap tong dai vien",
    "tong dai vien",
    "gap nhan vien",
    "nhan vien",
    "nguoi that",
    "gap can bo",
    "tu van vien",
    "ho tro truc tiep",
    "agent",
    "operator",
)
#: a widget button's or a platform postback's payload asking for a person
AGENT_PAYLOAD = "AGENT"
_SPACES = re.compile(r"\s+")
#: the fewest words a message needs before the bot looks it up in the knowledge base
KB_MIN_WORDS = 3


class KbSearch(Protocol):
    """What the bot needs of ``tickets.kb.KnowledgeBase``."""

    async def search(self, query: str, *, strict: bool = True, limit: int = 10) -> list[KbHit]: ...


def fold(text: str) -> str:
    """Lower case, no diacritics (đ -> d), single spaces: how the bot compares words."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _SPACES.sub(" ", bare).strip()


def wants_agent(text: str) -> bool:
    if text.strip().upper() == AGENT_PAYLOAD:
        return True
    folded = fold(text)
    return any(w in folded for w in AGENT_WORDS)


def dossier_code_in(text: str) -> str | None:
    """A dossier code written alone (spaces, dots and dashes between digits allowed)."""
    digits = re.sub(r"[\s.\-]", "", text.strip())
    return digits if CODE_RE.match(digits) else None


def _date(d: date) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def dossier_text(dossier: Dossier, today: date, phrases: Mapping[str, str]) -> str:
    """The IVR's sentence, as text: "Hồ sơ mã số 123 đang được giải quyết. ..."."""
    parts = [f"{phrases['ho_so_ma']} {dossier.code} {phrases['trang_thai_' + dossier.status]}"]
    dates = f"{phrases['ngay_tiep_nhan'].capitalize()} {_date(dossier.received_date)}"
    active = (DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS)
    if dossier.due_date is not None and dossier.status in active:
        dates += f", {phrases['ngay_hen_tra']} {_date(dossier.due_date)}"
    parts.append(dates + ".")
    if dossier.is_overdue(today):
        parts.append(phrases["ho_so_qua_han"])
    return " ".join(parts)


@dataclass(frozen=True)
class BotAnswer:
    replies: tuple[str, ...] = ()
    to_agent: bool = False
    dossier_code: str | None = None
    #: the help text was sent (count them: the second one hands over instead)
    helped: bool = False
    #: the citizen got what they asked without an agent
    self_served: bool = False
    #: the knowledge-base entry answered
    kb_entry: int | None = None
    #: the procedure answered (its code)
    procedure: str | None = None


class Bot:
    def __init__(
        self,
        texts: Texts,
        dossiers: DossierLookup,
        phrases: Mapping[str, str],
        today: Callable[[], date],
        kb: KbSearch | None = None,
        procedures: ProcedureCatalogue | None = None,
    ) -> None:
        self.texts = texts
        self.dossiers = dossiers
        self.phrases = phrases
        self.today = today
        self.kb = kb
        self.procedures = procedures

    async def answer(self, text: str, *, helped_before: int) -> BotAnswer:
        if wants_agent(text):
            return BotAnswer(to_agent=True)
        written = code_in(text)
        if written is not None and self.procedures is not None:
            return await self.procedure_by_code(written)
        code = dossier_code_in(text)
        if code is not None:
            try:
                dossier = await self.dossiers.find(code)
            except StoreError:
                return BotAnswer((self.texts("dossier_unavailable"),), dossier_code=code)
            if dossier is None:
                as_procedure = code_of_keys(code)
                if as_procedure is not None and (got := await self.procedure(as_procedure)):
                    return self.procedure_answer(got)
                return BotAnswer(
                    (self.texts("dossier_not_found", dossier=code),), dossier_code=code
                )
            reply = dossier_text(dossier, self.today(), self.phrases)
            return BotAnswer((reply,), dossier_code=code, self_served=True)
        found = await self.from_kb(text)
        if found is not None:
            return found
        named = await self.procedure_named(text)
        if named is not None:
            return self.procedure_answer(named)
        if helped_before >= 1:
            return BotAnswer(to_agent=True)
        return BotAnswer((self.texts("help"),), helped=True)

    async def from_kb(self, text: str) -> BotAnswer | None:
        """The knowledge base's best public answer to ``text``, if one fits."""
        if self.kb is None or len(words(text)) < KB_MIN_WORDS:
            return None
        try:
            hits = await self.kb.search(text, strict=False, limit=1)
        except StoreError:
            return None
        if not hits:
            return None
        e = hits[0].entry
        reply = self.texts("kb_answer", question=e.question, answer=e.answer)
        return BotAnswer((reply,), self_served=True, kb_entry=e.id)

    async def procedure(self, code: str) -> Procedure | None:
        """The catalogue's procedure ``code``; None when unknown or the catalogue is down."""
        if self.procedures is None:
            return None
        try:
            return await self.procedures.find(code)
        except StoreError:
            return None

    async def procedure_by_code(self, code: str) -> BotAnswer:
        try:
            found = await self.procedures.find(code) if self.procedures else None
        except StoreError:
            return BotAnswer((self.texts("procedure_unavailable"),))
        if found is None:
            return BotAnswer((self.texts("procedure_not_found", procedure=code),))
        return self.procedure_answer(found)

    async def procedure_named(self, text: str) -> Procedure | None:
        if self.procedures is None or len(words(text)) < KB_MIN_WORDS:
            return None
        try:
            return mentioned(text, await self.procedures.all())
        except StoreError:
            return None

    def procedure_answer(self, p: Procedure) -> BotAnswer:
        reply = self.texts(
            "procedure_answer",
            code=p.code,
            title=p.name,
            time_limit=procedure_time_limit(p),
            fee=procedure_fee(p),
            online=ONLINE_LABELS[p.online_level],
        )
        return BotAnswer((reply,), self_served=True, procedure=p.code)


def procedure_time_limit(p: Procedure) -> str:
    return f"{p.time_limit_days} ngày làm việc" if p.time_limit_days else "trong ngày"


def procedure_fee(p: Procedure) -> str:
    return f"{p.fee_vnd:,} đồng".replace(",", ".") if p.fee_vnd else "không thu"
