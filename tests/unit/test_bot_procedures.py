"""The chat bot answers from the procedure catalogue: a procedure code (written, or its seven
digits when no dossier has them) or a procedure's whole name gets its time limit, fee and
level of online service; an unknown code says so; a catalogue that is down is skipped."""

from __future__ import annotations

from datetime import date

from conversations.bot import Bot
from conversations.texts import load_texts
from dossiers.memory import MemoryDossierLookup
from dossiers.model import Dossier, DossierStatus
from dossiers.procedures import MemoryCatalogue, OnlineLevel, Procedure
from ivr.prompts import load_catalogue
from tickets.kb import KbDraft, MemoryKnowledgeBase
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

PHRASES = dict(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml").items())
PERMIT = Procedure(
    "1.001045", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "ubnd_dien_ban", "Đơn", 15, 75_000,
    OnlineLevel.PARTIAL,
)  # fmt: skip
BIRTH = Procedure("1.001612", "Đăng ký khai sinh", "ubnd_tam_ky", "", 0, 0, OnlineLevel.FULL)
#: a dossier whose code is also seven digits: the dossier wins
DOSSIER = Dossier(
    "1001612", "Đăng ký khai sinh", "UBND", DossierStatus.IN_PROGRESS, date(2026, 12, 1), None
)


def bot(catalogue: object = None, kb: MemoryKnowledgeBase | None = None) -> Bot:
    return Bot(
        load_texts(),
        MemoryDossierLookup([DOSSIER]),
        PHRASES,
        lambda: date(2026, 12, 7),
        kb=kb,
        procedures=catalogue or MemoryCatalogue([PERMIT, BIRTH]),  # type: ignore[arg-type]
    )


async def test_a_written_code_gets_time_limit_fee_and_online_level() -> None:
    a = await bot().answer("cho hỏi thủ tục 1.001045 mất bao lâu, phí bao nhiêu", helped_before=0)
    assert (a.self_served, a.to_agent, a.procedure) == (True, False, "1.001045")
    (reply,) = a.replies
    assert "Thủ tục 1.001045: Cấp giấy phép xây dựng nhà ở riêng lẻ." in reply
    assert "Thời hạn giải quyết: 15 ngày làm việc. Phí, lệ phí: 75.000 đồng." in reply
    assert "Dịch vụ công trực tuyến một phần" in reply


async def test_seven_digits_are_a_dossier_first_then_a_procedure() -> None:
    dossier = await bot().answer("1001612", helped_before=0)
    assert dossier.dossier_code == "1001612" and dossier.procedure is None
    proc = await bot().answer("1001045", helped_before=0)
    assert proc.procedure == "1.001045" and "75.000 đồng" in proc.replies[0]
    nothing = await bot().answer("1009999", helped_before=0)
    assert nothing.procedure is None and "Không tìm thấy hồ sơ" in nothing.replies[0]


async def test_a_whole_name_without_diacritics_is_answered_and_same_day_free_is_said() -> None:
    a = await bot().answer("dang ky khai sinh cho con het bao nhieu tien", helped_before=1)
    assert a.procedure == "1.001612" and not a.to_agent
    assert "Thời hạn giải quyết: trong ngày. Phí, lệ phí: không thu." in a.replies[0]


async def test_an_unknown_written_code_says_so_and_a_published_answer_comes_first() -> None:
    a = await bot().answer("thủ tục 2.999999", helped_before=0)
    assert a.procedure is None and "Không tìm thấy thủ tục có mã số 2.999999" in a.replies[0]
    kb = MemoryKnowledgeBase()
    entry = await kb.publish(
        KbDraft("Đăng ký khai sinh cho con cần giấy tờ gì?", "Tờ khai và giấy chứng sinh."),
        by="sup1",
    )
    a = await bot(kb=kb).answer("đăng ký khai sinh cho con cần gì", helped_before=0)
    assert a.kb_entry == entry.id and a.procedure is None


async def test_a_catalogue_that_is_down_is_skipped() -> None:
    class Down:
        async def find(self, code: str) -> Procedure | None:
            raise StoreError("database away")

        async def all(self) -> list[Procedure]:
            raise StoreError("database away")

    b = bot(Down())
    a = await b.answer("thủ tục 1.001045", helped_before=0)
    assert a.procedure is None and not a.self_served and "tạm thời gián đoạn" in a.replies[0]
    a = await b.answer("dang ky khai sinh cho con", helped_before=0)
    assert a.helped and a.procedure is None
