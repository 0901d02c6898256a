"""The menu engine on every branch, with a scripted caller and in-memory stores."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dossiers.memory import MemoryDossierLookup
from dossiers.model import Dossier, DossierStatus
from ivr import followup, say
from ivr.fake import FakeAgiSession
from ivr.handover import AppQueueHandover, QueuedCaller
from ivr.menu import load_menu
from ivr.runner import IvrContext, run_call
from ivr.schedule import ALWAYS_OPEN, load_schedule
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome, Status, Ticket
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

MENU = load_menu(PROJECT_HOME / "ivr/menu_1022.toml")
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 10:00 in Quang Nam, a Saturday
DOSSIERS = [
    Dossier("123456", "Cấp giấy phép xây dựng", "Sở Xây dựng", DossierStatus.IN_PROGRESS,
            date(2026, 11, 1), date(2027, 1, 15)),
    Dossier("2026001", "Đăng ký kinh doanh", "Sở KH&ĐT", DossierStatus.RESULT_READY,
            date(2026, 10, 1), date(2026, 10, 20)),
    Dossier("55555", "Cấp đổi GPLX", "Sở GTVT", DossierStatus.RECEIVED,
            date(2026, 9, 1), date(2026, 10, 1)),
]  # fmt: skip


class Harness:
    def __init__(
        self, tmp: Path, *, schedule: object = ALWAYS_OPEN, announcement: str | None = None
    ):
        self.tickets = MemoryTicketStore()
        self.queued: list[tuple[str, str]] = []

        async def ann() -> str | None:
            return announcement

        self.ctx = IvrContext(
            menu=MENU,
            tickets=self.tickets,
            dossiers=MemoryDossierLookup(DOSSIERS),
            schedule=schedule,  # type: ignore[arg-type]
            sounds="/snd",
            messages_asterisk="/msg",
            messages_host=tmp,
            announcement=ann,
            handover=AppQueueHandover(lambda uid, code: self.queued.append((uid, code))),
            now=lambda: NOW,
        )
        self.tmp = tmp

    async def call(self, *inputs: str) -> tuple[FakeAgiSession, Ticket]:
        s = FakeAgiSession(inputs, record_dir=self.tmp)
        await run_call(s, self.ctx)
        tickets = await self.tickets.list()
        assert tickets, "every call leaves a ticket"
        return s, tickets[-1]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def keys(t: Ticket) -> list[tuple[str, str | None]]:
    return [(s.node, s.key) for s in t.ivr_path if s.key is not None]


@pytest.mark.parametrize(
    ("inputs", "queue", "category"),
    [
        (["4"], "dau_tu", "dau_tu"),
        (["5"], "du_lich", "du_lich"),
        (["6"], "buu_chinh", "buu_chinh"),
        (["0"], "chung", "chung"),
        (["1", "1"], "thu_tuc", "thu_tuc"),
        (["1", "2"], "thu_tuc", "thu_tuc"),
        (["1", "3"], "thu_tuc", "thu_tuc"),
        (["1", "4"], "thu_tuc", "thu_tuc"),
        (["3", "1"], "phan_anh", "phan_anh"),
    ],
)
async def test_given_a_top_level_choice_when_pressed_then_the_call_goes_to_its_queue(
    h: Harness, inputs: list[str], queue: str, category: str
) -> None:
    s, t = await h.call(*inputs)
    assert s.variables["TONGDAI_ACTION"] == "queue"
    assert s.variables["TONGDAI_QUEUE"] == queue
    assert s.variables["TONGDAI_TICKET"] == t.code
    assert (t.queue, t.category, t.outcome, t.ended_at) == (queue, category, None, None)
    assert t.queued_at == NOW
    assert h.queued == [("1700000000.1", t.code)]
    assert s.prompts[0] == "chao_mung"


async def test_given_a_complaint_to_an_agent_then_the_caller_hears_the_ticket_code(
    h: Harness,
) -> None:
    s, t = await h.call("3", "1")
    assert "ma_phieu_cua_ban" in s.prompts
    assert t.category == "phan_anh"


async def test_given_barge_in_when_a_key_is_pressed_during_the_menu_prompt_then_it_counts(
    h: Harness,
) -> None:
    s, t = await h.call("~4")  # pressed during the greeting: callers who know the menu
    assert s.variables["TONGDAI_QUEUE"] == "dau_tu"
    assert "menu_chinh" not in s.prompts
    s, t = await h.call("1", "~2")  # pressed while the procedures menu plays
    assert s.prompts.count("menu_thu_tuc") == 1
    assert t.notes == "topic: thanh_phan_ho_so"


async def test_given_a_known_dossier_when_the_caller_hangs_up_after_the_status_then_self_service(
    h: Harness,
) -> None:
    s, t = await h.call("2", "123456#", "H")
    assert t.outcome == Outcome.SELF_SERVICE
    assert t.dossier_code == "123456"
    assert t.category == "tra_cuu_ho_so"
    assert "trang_thai_in_progress" in s.prompts and "ngay_hen_tra" in s.prompts
    assert "ho_so_qua_han" not in s.prompts
    assert t.ended_at == NOW


async def test_given_an_overdue_dossier_then_the_caller_hears_it_is_overdue(h: Harness) -> None:
    s, _ = await h.call("2", "55555#", "H")
    assert "trang_thai_received" in s.prompts and "ho_so_qua_han" in s.prompts


async def test_given_an_unknown_dossier_then_not_found_then_agent(h: Harness) -> None:
    s, t = await h.call("2", "999999#", "0")
    assert "ho_so_khong_tim_thay" in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "tra_cuu_ho_so"
    assert t.dossier_code == "999999"


async def test_given_a_malformed_then_a_too_long_code_then_each_is_told_apart(h: Harness) -> None:
    s, t = await h.call("2", "12#", "1" * 30 + "#", "123456#", "H")
    assert "ma_ho_so_khong_hop_le" in s.prompts
    assert "ma_ho_so_qua_dai" in s.prompts
    assert t.outcome == Outcome.SELF_SERVICE


async def test_after_a_lookup_1_repeats_2_asks_another_star_goes_back(h: Harness) -> None:
    s, t = await h.call("2", "123456#", "1", "2", "2026001#", "*", "4")
    assert s.prompts.count("trang_thai_in_progress") == 2
    assert "trang_thai_result_ready" in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "dau_tu"


async def test_given_three_invalid_keys_then_the_general_queue(h: Harness) -> None:
    s, t = await h.call("#", "#", "#")  # every digit of the main menu is an option
    assert s.prompts.count("lua_chon_khong_hop_le") == 2
    assert s.variables["TONGDAI_QUEUE"] == "chung"
    assert t.queue == "chung"
    assert [x.detail for x in t.ivr_path].count("invalid") == 3


async def test_given_silence_then_the_level_repeats_then_the_general_queue(h: Harness) -> None:
    s, t = await h.call("", "", "")
    assert s.prompts.count("menu_chinh") == 3
    assert s.variables["TONGDAI_QUEUE"] == "chung"


async def test_nine_repeats_and_star_goes_back_one_level(h: Harness) -> None:
    s, t = await h.call("1", "9", "*", "9", "5")
    assert s.prompts.count("menu_thu_tuc") == 2
    assert s.prompts.count("menu_chinh") == 3
    assert s.variables["TONGDAI_QUEUE"] == "du_lich"
    assert ("thu_tuc", "*") in keys(t)


async def test_given_a_hang_up_mid_menu_then_abandoned_ivr(h: Harness) -> None:
    s, t = await h.call("1", "H")
    assert t.outcome == Outcome.ABANDONED_IVR
    assert t.ended_at == NOW
    assert keys(t) == [("main", "1")]
    assert "TONGDAI_ACTION" not in s.variables


async def test_given_a_recorded_message_then_message_left_with_the_code_said(h: Harness) -> None:
    s, t = await h.call("3", "2", "rec", "H")
    assert t.outcome == Outcome.MESSAGE_LEFT
    assert t.recording == str(h.tmp / f"{t.code}.wav")
    assert "ma_phieu_cua_ban" in s.prompts
    assert t.category == "phan_anh"


async def test_given_a_hang_up_during_recording_then_the_message_is_kept(h: Harness) -> None:
    _, t = await h.call("3", "2", "recH")
    assert t.outcome == Outcome.MESSAGE_LEFT
    assert t.recording is not None


async def test_given_no_audio_recorded_then_not_a_message(h: Harness) -> None:
    _, t = await h.call("3", "2", "", "H")
    assert t.outcome == Outcome.ABANDONED_IVR and t.recording is None


async def test_given_closed_hours_then_closed_message_or_a_recorded_message(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[schedule]\nalways_open = false\n[schedule.week]\nmon = ["07:30-17:00"]\n')
    h = Harness(tmp_path, schedule=load_schedule(f))
    s, t = await h.call("")
    assert "ngoai_gio" in s.prompts and "menu_chinh" not in s.prompts
    assert t.outcome == Outcome.CLOSED_HOURS
    s, t = await h.call("1", "rec")
    assert t.outcome == Outcome.MESSAGE_LEFT


async def test_given_an_active_announcement_then_it_plays_before_the_menu(tmp_path: Path) -> None:
    h = Harness(tmp_path, announcement="/ann/lu_lut")
    s, _ = await h.call("0")
    assert s.played[:3] == ["/snd/chao_mung", "/ann/lu_lut", "/snd/menu_chinh"]


async def test_given_the_ticket_store_down_then_the_caller_still_reaches_a_person(
    h: Harness,
) -> None:
    async def broken(**_: object) -> Ticket:
        raise StoreError("database unreachable")

    h.tickets.open = broken  # type: ignore[method-assign]
    s = FakeAgiSession(["1"])
    await run_call(s, h.ctx)
    assert s.variables["TONGDAI_QUEUE"] == "chung"
    assert s.prompts == ["loi_he_thong"]


# -- our own ACD (distribution = "engine"): the IVR's hand-over --------------------------------


class ScriptedHandover:
    """Our ACD's side of the hand-over, scripted: ``dial`` is what ``hand_over`` answers."""

    def __init__(self, dial: str | None, log: list[str]) -> None:
        self.dial = dial
        self.log = log

    def admit(self, caller: QueuedCaller, queue: str) -> bool:
        self.log.append(f"enqueue {queue}")
        return True

    def variables(self, queue: str) -> dict[str, str]:
        every = {"du_lich": 45}.get(queue, 30)
        return {"TONGDAI_ANNOUNCE": str(every), "TONGDAI_ACTION": "acd"}

    def hand_over(self, caller: QueuedCaller) -> str | None:
        self.log.append("dial_now")
        return self.dial

    def release(self, uniqueid: str) -> None:
        self.log.append("ivr_done")


def _engine_ctx(h: Harness, dial: str | None, log: list[str]) -> IvrContext:
    from dataclasses import replace

    return replace(h.ctx, handover=ScriptedHandover(dial, log))


async def test_given_a_free_agent_the_ivr_hands_the_channel_its_dial_string(h: Harness) -> None:
    log: list[str] = []
    h.ctx = _engine_ctx(h, "PJSIP/agent105,15", log)
    s, t = await h.call("5")
    assert s.variables["TONGDAI_ACTION"] == "acd"
    assert s.variables["TONGDAI_DIAL"] == "PJSIP/agent105,15"
    assert s.variables["TONGDAI_ANNOUNCE"] == "45"  # du_lich's own period
    assert log == ["enqueue du_lich", "dial_now", "ivr_done"]
    assert t.queue == "du_lich"


async def test_given_no_free_agent_the_caller_goes_to_the_wait_loop(h: Harness) -> None:
    log: list[str] = []
    h.ctx = _engine_ctx(h, None, log)
    s, _ = await h.call("0")
    assert s.variables["TONGDAI_ACTION"] == "acd"
    assert "TONGDAI_DIAL" not in s.variables
    assert s.variables["TONGDAI_ANNOUNCE"] == "30"  # the general period


# --- key 7: the result of a complaint or question, by its ticket code --------------------------
async def _earlier_ticket(h: Harness, caller: str | None, *, status: str | None = None) -> Ticket:
    """A ticket opened on 2026-11-20 by ``caller``, due 2026-12-01."""
    t = await h.tickets.open(
        channel="voice", caller=caller, uniqueid=None,
        started_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
    )  # fmt: skip
    await h.tickets.update(t.code, due_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    if status is not None:
        await h.tickets.set_status(t.code, Status(status), by="agent101")
    found = await h.tickets.get(t.code)
    assert found is not None
    return found


def keyed(code: str) -> str:
    return code.removeprefix("1022-").replace("-", "")


async def test_key_7_the_owner_hears_status_and_dates_and_both_paths_record_it(
    h: Harness,
) -> None:
    old = await _earlier_ticket(h, "0905123456")  # the fake caller's own number
    assert keyed(old.code) == "20261120000001"
    s, t = await h.call("7", keyed(old.code) + "#", "H")
    assert "nhap_ma_phieu" in s.prompts
    spoken = s.prompts[s.prompts.index("phieu_ma") :]
    # "phiếu mã số 2 0 2 6 1 1 2 0 0 0 0 0 0 1 đang chờ xử lý, tiếp nhận ngày 20 tháng 11 ..."
    assert spoken[:16] == ["phieu_ma", *say.digits("20261120000001"), "phieu_trang_thai_new"]
    assert spoken[16:] == [
        "ngay_tiep_nhan", *say.date_vi(date(2026, 11, 20)),
        "han_tra_loi", *say.date_vi(date(2026, 12, 1)),
        "menu_sau_tra_cuu_phieu",
    ]  # fmt: skip
    assert "phieu_qua_han" not in s.prompts
    assert (t.category, t.outcome) == ("tra_cuu_phan_anh", Outcome.SELF_SERVICE)
    assert ("main", "7") in keys(t)
    look = [x for x in t.ivr_path if x.node == "tra_cuu_phieu" and x.key == old.code]
    assert [x.detail for x in look] == ["found"]
    marked = await h.tickets.get(old.code)
    assert marked is not None
    assert [x.detail for x in marked.ivr_path] == [f"looked_up:{t.code}:found"]


async def test_key_7_another_callers_ticket_tells_the_status_only(h: Harness) -> None:
    old = await _earlier_ticket(h, "0912000111", status="in_progress")
    s, t = await h.call("7", keyed(old.code) + "#", "H")
    assert "phieu_trang_thai_in_progress" in s.prompts
    for private in ("ngay_tiep_nhan", "han_tra_loi", "ngay_tra_loi", "ngay", "thang"):
        assert private not in s.prompts, private
    assert [x.detail for x in t.ivr_path if x.key == old.code] == ["other_caller"]
    assert t.outcome == Outcome.SELF_SERVICE


async def test_key_7_the_same_number_written_as_plus_84_is_the_owner(h: Harness) -> None:
    old = await _earlier_ticket(h, "+84905123456")
    s, _ = await h.call("7", keyed(old.code) + "#", "H")
    assert "ngay_tiep_nhan" in s.prompts


async def test_key_7_an_anonymous_caller_hears_the_dates_of_a_resolved_ticket(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    old = await _earlier_ticket(h, "0912000111", status="resolved")
    s = FakeAgiSession(["7", keyed(old.code) + "#", "H"], env={"agi_callerid": "anonymous"})
    await run_call(s, h.ctx)
    assert "phieu_trang_thai_resolved" in s.prompts
    assert "ngay_tra_loi" in s.prompts and "han_tra_loi" not in s.prompts


async def test_key_7_an_overdue_open_ticket_is_said_overdue(h: Harness) -> None:
    old = await _earlier_ticket(h, "0905123456")
    await h.tickets.update(old.code, due_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    s, _ = await h.call("7", keyed(old.code) + "#", "H")
    assert "phieu_qua_han" in s.prompts


async def test_key_7_an_unknown_code_is_not_found_then_0_reaches_an_agent(h: Harness) -> None:
    s, t = await h.call("7", "20261127000099#", "0")
    assert "phieu_khong_tim_thay" in s.prompts and "phieu_ma" not in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "phan_anh"
    assert [x.detail for x in t.ivr_path if x.key == "1022-20261127-000099"] == ["not_found"]
    assert t.outcome is None  # the queue's follower completes it


async def test_key_7_malformed_codes_are_told_then_another_code_and_back(h: Harness) -> None:
    old = await _earlier_ticket(h, "0905123456")
    s, t = await h.call(
        "7", "12345#", "20261399000001#", "1022" + keyed(old.code) + "#",
        "1", "2", "*", "5",
    )  # fmt: skip
    assert s.prompts.count("ma_phieu_khong_hop_le") == 2  # too short; not a real day
    assert s.prompts.count("phieu_trang_thai_new") == 2  # the full 18 digits work, 1 repeats
    assert s.variables["TONGDAI_QUEUE"] == "du_lich"
    details = [x.detail for x in t.ivr_path if x.node == "tra_cuu_phieu"]
    assert details.count("malformed") == 2 and "found" in details


def test_key_7_keys_become_codes_including_spooled_ones() -> None:
    assert followup.code_of_keys("20261128000123") == "1022-20261128-000123"
    assert followup.code_of_keys("102220261128000123") == "1022-20261128-000123"
    assert followup.code_of_keys("202611280000123") == "1022-20261128-0000123"  # spooled
    for bad in ("2026112800012", "2026112800001234567", "20261131000123", "2026112800012a"):
        assert followup.code_of_keys(bad) is None, bad
    assert followup.phone_key("+84 905 123 456") == followup.phone_key("0905123456")
    assert followup.phone_key("anonymous") is None and followup.phone_key(None) is None


async def test_key_7_three_malformed_codes_send_the_caller_to_the_general_queue(
    h: Harness,
) -> None:
    s, t = await h.call("7", "1#", "2#", "3#")
    assert s.variables["TONGDAI_QUEUE"] == "chung"
    assert t.queue == "chung"


async def test_key_7_a_broken_store_sends_the_caller_to_an_agent(h: Harness) -> None:
    async def broken(code: str) -> Ticket | None:
        raise StoreError("database down")

    h.tickets.get = broken  # type: ignore[method-assign]
    s, t = await h.call("7", "20261120000001#")
    assert "loi_he_thong" in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "phan_anh"
