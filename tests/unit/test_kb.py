"""Contract tests of the knowledge base on memory, SQLite (FTS5) and PostgreSQL (full-text
with unaccent): diacritics- and order-insensitive search, strict and loose matches,
one entry per ticket, withdrawal, validation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from alembic import command
from sqlalchemy import Connection, inspect

from tickets.kb import KbDraft, KnowledgeBase, MemoryKnowledgeBase, fold, words
from tickets.sql import open_store
from tickets.sql_kb import SqlKnowledgeBase
from tongdai.db import alembic_config

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

CCCD = KbDraft(
    question="Thủ tục cấp lại căn cước khi bị mất?",
    answer="Công dân nộp tờ khai tại Công an cấp xã; lệ phí 70.000 đồng.",
    category="thu_tuc",
    procedure="Cấp lại thẻ căn cước",
    ticket_code="1022-20261201-000001",
)
DKKD = KbDraft(
    question="Đăng ký kinh doanh hộ cá thể ở đâu?",
    answer="Tại Phòng Tài chính - Kế hoạch cấp huyện, trong 3 ngày làm việc.",
    category="thu_tuc",
    procedure="Đăng ký hộ kinh doanh",
    ticket_code="1022-20261201-000002",
)
DIEN = KbDraft(
    question="Mất điện kéo dài ở phường Tân Thạnh",
    answer="Điện lực Tam Kỳ đã khắc phục sự cố.",
    category="chung",
)


@pytest.fixture(params=BACKENDS)
async def kb(
    request: pytest.FixtureRequest, make_db_url: Callable[[str], str]
) -> AsyncIterator[KnowledgeBase]:
    if request.param == "memory":
        yield MemoryKnowledgeBase()
        return
    tickets = await open_store(make_db_url(request.param))  # migrates
    store = SqlKnowledgeBase(tickets.engine, owns_engine=True)
    try:
        yield store
    finally:
        await store.close()


async def _seed(kb: KnowledgeBase) -> None:
    for d in (CCCD, DKKD, DIEN):
        await kb.publish(d, by="sup1")


def test_fold_removes_diacritics_case_and_the_stroke_of_d() -> None:
    assert fold("Thủ tục CẤP LẠI Căn cước, Đăng ký") == "thu tuc cap lai can cuoc, dang ky"
    assert words("Đăng ký, đăng ký 2026!") == ["dang", "ky", "2026"]


@pytest.mark.parametrize(
    "query",
    [
        "thu tuc cap lai can cuoc",  # no diacritics
        "Thủ tục cấp lại căn cước",  # with them
        "can cuoc cap lai",  # another order
        "CĂN CƯỚC",
        "the can cuoc",  # the procedure's words count
    ],
)
async def test_search_ignores_diacritics_case_and_word_order(kb: KnowledgeBase, query: str) -> None:
    await _seed(kb)
    hits = await kb.search(query)
    assert [h.entry.ticket_code for h in hits] == [CCCD.ticket_code]
    assert hits[0].score == 1.0


async def test_d_with_stroke_matches_plain_d(kb: KnowledgeBase) -> None:
    await _seed(kb)
    assert [h.entry.procedure for h in await kb.search("dang ky kinh doanh")] == [
        "Đăng ký hộ kinh doanh"
    ]
    assert [h.entry.question for h in await kb.search("mat dien tan thanh")] == [DIEN.question]


async def test_strict_needs_every_word_loose_most_of_them(kb: KnowledgeBase) -> None:
    await _seed(kb)
    sentence = "cho hỏi thủ tục cấp lại căn cước"  # "cho hoi" is in no entry
    assert await kb.search(sentence) == []
    loose = await kb.search(sentence, strict=False)
    assert [h.entry.ticket_code for h in loose] == [CCCD.ticket_code]
    assert loose[0].score == pytest.approx(6 / 8)
    assert await kb.search("cho hoi gi vay", strict=False) == []
    assert await kb.search("   ,,, ") == []


async def test_results_are_the_entries_as_published(kb: KnowledgeBase) -> None:
    await kb.publish(KbDraft("  Giờ làm việc?  ", " 7h30-17h ", " ", None), by="sup1")
    (hit,) = await kb.search("gio lam viec")
    e = hit.entry
    assert (e.question, e.answer, e.category, e.procedure, e.ticket_code, e.updated_by) == (
        "Giờ làm việc?", "7h30-17h", None, None, None, "sup1",
    )  # fmt: skip
    assert e.updated_at.tzinfo is not None
    assert await kb.get(e.id) == e


async def test_a_ticket_has_one_entry_republishing_replaces_it(kb: KnowledgeBase) -> None:
    first = await kb.publish(CCCD, by="sup1")
    again = await kb.publish(
        KbDraft("Làm lại căn cước bị hỏng", "Nộp tại Công an xã.", ticket_code=CCCD.ticket_code),
        by="sup2",
    )
    assert again.id == first.id and again.updated_by == "sup2"
    assert await kb.search("cap lai can cuoc") == []  # the old words are gone from the index
    assert [h.entry.id for h in await kb.search("can cuoc bi hong")] == [first.id]


async def test_withdrawn_entries_are_no_longer_found(kb: KnowledgeBase) -> None:
    await _seed(kb)
    (hit,) = await kb.search("can cuoc")
    assert await kb.withdraw(hit.entry.id) is True
    assert await kb.withdraw(hit.entry.id) is False
    assert await kb.search("can cuoc") == []
    assert await kb.get(hit.entry.id) is None
    assert len(await kb.search("dang ky")) == 1


async def test_limit_and_order_best_first(kb: KnowledgeBase) -> None:
    for i in range(5):
        await kb.publish(KbDraft(f"Lệ phí trước bạ xe máy {i}", "Theo Nghị định."), by="a")
    await kb.publish(KbDraft("Lệ phí", "Xem bảng phí."), by="a")
    hits = await kb.search("le phi truoc ba", strict=False, limit=3)
    assert len(hits) == 3 and all(h.score == 1.0 for h in hits)
    assert len(await kb.search("le phi")) == 6


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (KbDraft("", "x"), "needs a question and an answer"),
        (KbDraft("x", "   "), "needs a question and an answer"),
        (KbDraft("x" * 2001, "x"), "at most 2000"),
    ],
)
async def test_empty_or_oversized_entries_are_refused(
    kb: KnowledgeBase, draft: KbDraft, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await kb.publish(draft, by="sup1")


async def test_query_words_that_look_like_search_syntax_are_plain_words(kb: KnowledgeBase) -> None:
    await _seed(kb)
    for q in ('"can" OR cuoc*', "can & cuoc | !", "NEAR(can cuoc)", "can' cuoc\\"):
        assert [h.entry.ticket_code for h in await kb.search(q, strict=False)] == [
            CCCD.ticket_code
        ], q


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _ticket_columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("tickets")}


def _move(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    if revision == "head":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


async def test_migration_0006_goes_down_and_up_again(db_url: str) -> None:
    tickets = await open_store(db_url)
    try:
        kb = SqlKnowledgeBase(tickets.engine)
        await kb.publish(CCCD, by="sup1")
        async with tickets.engine.begin() as conn:
            await conn.run_sync(_move, "0005")  # below 0006 (and what came after it)
            assert not {"kb_entries", "audit_log"} & await conn.run_sync(_tables)
            assert "complaint_type" not in await conn.run_sync(_ticket_columns)
            await conn.run_sync(_move, "head")
            assert {"kb_entries", "audit_log"} <= await conn.run_sync(_tables)
        await kb.publish(DKKD, by="sup1")  # the search works again after the round trip
        assert [h.entry.ticket_code for h in await kb.search("kinh doanh")] == [DKKD.ticket_code]
    finally:
        await tickets.close()
