"""The chat bot answers from the knowledge base: a citizen's free sentence, without
diacritics, gets the published public answer; too few words, no match or a knowledge base
that is down fall back to the bot's usual help and hand-over."""

from __future__ import annotations

from datetime import date

from conversations.bot import Bot
from conversations.texts import load_texts
from dossiers.memory import MemoryDossierLookup
from ivr.prompts import load_catalogue
from tickets.kb import KbDraft, KbHit, MemoryKnowledgeBase
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

PHRASES = dict(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml").items())


async def _bot(kb: object) -> Bot:
    return Bot(load_texts(), MemoryDossierLookup([]), PHRASES, lambda: date(2026, 12, 7), kb=kb)  # type: ignore[arg-type]


async def test_a_question_like_a_published_one_gets_its_public_answer() -> None:
    kb = MemoryKnowledgeBase()
    entry = await kb.publish(
        KbDraft("Thủ tục cấp lại căn cước?", "Nộp tại Công an cấp xã, lệ phí 70.000 đồng."),
        by="sup1",
    )
    bot = await _bot(kb)
    a = await bot.answer("cho hoi thu tuc cap lai can cuoc", helped_before=0)
    assert (a.self_served, a.to_agent, a.kb_entry) == (True, False, entry.id)
    (reply,) = a.replies
    assert "«Thủ tục cấp lại căn cước?»" in reply and "lệ phí 70.000 đồng" in reply
    assert "gặp tổng đài viên" in reply
    # even after the help text was sent once, a question the base answers is answered
    assert (await bot.answer("cấp lại căn cước thế nào", helped_before=1)).kb_entry == entry.id


async def test_short_or_unknown_questions_fall_back_to_help_then_an_agent() -> None:
    kb = MemoryKnowledgeBase()
    await kb.publish(KbDraft("Thủ tục cấp lại căn cước?", "Công an xã."), by="sup1")
    bot = await _bot(kb)
    short = await bot.answer("căn cước", helped_before=0)  # two words: too little to go on
    assert short.helped and short.kb_entry is None
    other = await bot.answer("tôi hỏi về đất đai ở xã", helped_before=0)
    assert other.helped and other.kb_entry is None
    assert (await bot.answer("tôi hỏi về đất đai ở xã", helped_before=1)).to_agent
    assert (await bot.answer("gặp tổng đài viên cấp lại căn cước", helped_before=0)).to_agent


async def test_a_knowledge_base_that_is_down_is_skipped() -> None:
    class Down:
        async def search(self, query: str, *, strict: bool = True, limit: int = 10) -> list[KbHit]:
            raise StoreError("database away")

    a = await (await _bot(Down())).answer("thu tuc cap lai can cuoc", helped_before=0)
    assert a.helped and not a.self_served
