"""Menu key 8 (incidents and socio-economic issues), the procedure look-up (1 then 5) and the
agency's name in the key-7 follow-up, with a scripted caller and in-memory stores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from acd.config import load_acd
from dossiers.memory import MemoryDossierLookup
from dossiers.procedures import MemoryCatalogue, OnlineLevel, Procedure
from ivr import procedure, say
from ivr.fake import FakeAgiSession
from ivr.handover import AppQueueHandover
from ivr.menu import load_menu
from ivr.prompts import load_catalogue
from ivr.runner import IvrContext, run_call
from ivr.schedule import ALWAYS_OPEN
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome, Ticket
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

MENU = load_menu(PROJECT_HOME / "ivr/menu_1022.toml")
CATALOGUE = load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml")
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
BIRTH = Procedure(
    "1.001612", "Đăng ký khai sinh", "ubnd_tam_ky", "Tờ khai; Giấy chứng sinh", 0, 0,
    OnlineLevel.FULL,
)  # fmt: skip
PERMIT = Procedure(
    "1.001045", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "ubnd_dien_ban", "Đơn", 15, 75_000,
    OnlineLevel.PARTIAL,
)  # fmt: skip


class Harness:
    def __init__(self, tmp: Path, sounds_host: Path | None = None) -> None:
        self.tickets = MemoryTicketStore()
        self.agencies: dict[str, str] = {}
        self.catalogue = MemoryCatalogue([BIRTH, PERMIT])

        async def agency_of(code: str) -> str | None:
            return self.agencies.get(code)

        self.ctx = IvrContext(
            menu=MENU,
            tickets=self.tickets,
            dossiers=MemoryDossierLookup([]),
            schedule=ALWAYS_OPEN,
            sounds="/snd",
            messages_asterisk="/msg",
            messages_host=tmp,
            handover=AppQueueHandover(lambda uid, code: None),
            now=lambda: NOW,
            procedures=self.catalogue,
            agency_of=agency_of,
            sounds_host=sounds_host,
        )
        self.tmp = tmp

    async def call(self, *inputs: str) -> tuple[FakeAgiSession, Ticket]:
        s = FakeAgiSession(inputs, record_dir=self.tmp)
        await run_call(s, self.ctx)
        return s, (await self.tickets.list())[-1]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.parametrize(("sub", "topic"), [("1", "ha_tang"), ("2", "kinh_te_xa_hoi")])
async def test_key_8_then_a_topic_goes_to_the_incidents_queue_and_says_the_code(
    h: Harness, sub: str, topic: str
) -> None:
    s, t = await h.call("8", sub)
    assert "menu_su_co" in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "su_co"
    assert (t.queue, t.category, t.notes) == ("su_co", "su_co", f"topic: {topic}")
    assert "ma_phieu_cua_ban" in s.prompts  # incidents are followed up by their code
    assert [(x.node, x.key) for x in t.ivr_path if x.key] == [("main", "8"), ("su_co", sub)]


def test_every_service_is_within_two_keys_of_the_main_menu() -> None:
    """The rule the menu keeps (README): every queue and look-up is reached in two keys."""
    reached: dict[str, int] = {}
    level = [(MENU.start, 0)]
    while level:
        nid, depth = level.pop(0)
        if nid in reached:
            continue
        reached[nid] = depth
        level += [(dest, depth + 1) for dest in MENU.nodes[nid].options.values()]
    services = [n.id for n in MENU.nodes.values() if n.type != "menu" and n.id in reached]
    assert "q_su_co_ha_tang" in services and "tra_cuu_thu_tuc" in services
    assert max(reached[n] for n in services) <= 2, reached


def test_every_prompt_the_new_branches_can_say_is_in_the_catalogue() -> None:
    assert sorted(procedure.PROMPTS - set(CATALOGUE)) == []
    assert {"menu_su_co", "co_quan_xu_ly", "nhap_ma_thu_tuc"} <= set(CATALOGUE)


async def test_a_procedure_code_tells_name_time_limit_and_fee_then_self_service(
    h: Harness,
) -> None:
    s, t = await h.call("1", "5", "1001045#", "H")
    assert "nhap_ma_thu_tuc" in s.prompts
    spoken = s.played[s.prompts.index("thu_tuc_ma") :]
    assert [p.rsplit("/", 1)[-1] for p in spoken] == [
        "thu_tuc_ma", *say.digits("1001045"), "tt_1001045",
        "thoi_han_giai_quyet", *say.number(15), "ngay_lam_viec",
        "le_phi", *say.number(75_000), "dong",
        "menu_sau_tra_cuu_thu_tuc",
    ]  # fmt: skip
    assert "/snd/thu_tuc/tt_1001045" in s.played  # the name, from its own folder
    assert (t.category, t.outcome) == ("thu_tuc", Outcome.SELF_SERVICE)
    assert [x.detail for x in t.ivr_path if x.key == "1.001045"] == ["found"]


async def test_a_same_day_free_procedure_says_so(h: Harness) -> None:
    s, _ = await h.call("1", "5", "1001612#", "H")
    assert "giai_quyet_trong_ngay" in s.prompts and "khong_thu_le_phi" in s.prompts
    assert "le_phi" not in s.prompts and "thoi_han_giai_quyet" not in s.prompts


async def test_an_unknown_code_is_not_found_then_0_reaches_the_fees_agents(h: Harness) -> None:
    s, t = await h.call("1", "5", "9999999#", "0")
    assert "thu_tuc_khong_tim_thay" in s.prompts and "thu_tuc_ma" not in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "thu_tuc"
    assert t.notes == "topic: thoi_han_le_phi"
    assert [x.detail for x in t.ivr_path if x.key == "9.999999"] == ["not_found"]


async def test_malformed_codes_are_told_then_another_code_and_back(h: Harness) -> None:
    s, t = await h.call("1", "5", "12#", "12345678#", "1001612#", "1", "2", "1001045#", "*", "4")
    assert s.prompts.count("ma_thu_tuc_khong_hop_le") == 2  # too short; too long
    assert s.prompts.count("giai_quyet_trong_ngay") == 2  # 1 hears it again
    assert "ngay_lam_viec" in s.prompts  # 2: another code
    assert s.variables["TONGDAI_QUEUE"] == "thu_tuc"  # * back to the procedures menu, 4
    details = [x.detail for x in t.ivr_path if x.node == "tra_cuu_thu_tuc"]
    assert details.count("malformed") == 2 and details.count("found") == 2


async def test_a_name_whose_audio_was_not_built_is_skipped(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    (sounds / "thu_tuc").mkdir(parents=True)
    (sounds / "thu_tuc" / "tt_1001612.wav").write_bytes(b"RIFF")
    h = Harness(tmp_path, sounds_host=sounds)
    s, _ = await h.call("1", "5", "1001045#", "2", "1001612#", "H")
    assert "tt_1001045" not in s.prompts and "tt_1001612" in s.prompts
    assert "le_phi" in s.prompts  # the rest is said all the same


async def test_a_broken_catalogue_sends_the_caller_to_an_agent(h: Harness) -> None:
    async def broken(code: str) -> Procedure | None:
        raise StoreError("database down")

    h.catalogue.find = broken  # type: ignore[method-assign]
    s, t = await h.call("1", "5", "1001612#")
    assert "loi_he_thong" in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "thu_tuc"
    assert [x.detail for x in t.ivr_path if x.node == "tra_cuu_thu_tuc"] == ["lookup_error"]


async def _old_ticket(h: Harness, caller: str) -> str:
    t = await h.tickets.open(
        channel="voice", caller=caller, uniqueid=None,
        started_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
    )  # fmt: skip
    return t.code


def keyed(code: str) -> str:
    return code.removeprefix("1022-").replace("-", "")


async def test_key_7_the_owner_hears_the_agency_handling_the_ticket(h: Harness) -> None:
    code = await _old_ticket(h, "0905123456")  # the fake caller's own number
    h.agencies[code] = "so_xay_dung"
    s, _ = await h.call("7", keyed(code) + "#", "H")
    at = s.prompts.index("co_quan_xu_ly")
    assert s.played[at + 1] == "/snd/co_quan/so_xay_dung"
    assert s.prompts[at - 1] == "phieu_trang_thai_new" and s.prompts[at + 2] == "ngay_tiep_nhan"


async def test_key_7_another_caller_and_an_unforwarded_ticket_hear_no_agency(h: Harness) -> None:
    other = await _old_ticket(h, "0912000111")
    h.agencies[other] = "so_xay_dung"
    s, _ = await h.call("7", keyed(other) + "#", "H")
    assert "co_quan_xu_ly" not in s.prompts and "so_xay_dung" not in s.prompts
    mine = await _old_ticket(h, "0905123456")  # not forwarded: with the centre
    s, _ = await h.call("7", keyed(mine) + "#", "H")
    assert "co_quan_xu_ly" not in s.prompts and "ngay_tiep_nhan" in s.prompts


async def test_key_7_an_agency_store_down_still_tells_the_status(h: Harness) -> None:
    code = await _old_ticket(h, "0905123456")

    async def broken(c: str) -> str | None:
        raise StoreError("database down")

    h.ctx = IvrContext(**{**h.ctx.__dict__, "agency_of": broken})
    s, t = await h.call("7", keyed(code) + "#", "H")
    assert "phieu_trang_thai_new" in s.prompts and "co_quan_xu_ly" not in s.prompts
    assert t.outcome == Outcome.SELF_SERVICE


def test_every_queue_the_menu_names_is_served_by_our_acd_and_by_app_queue() -> None:
    named = {n.queue for n in MENU.nodes.values() if n.queue} | {MENU.general_queue}
    assert "su_co" in named
    assert named <= set(load_acd(PROJECT_HOME / "acd/agents_1022.toml").queues)
    conf = (PROJECT_HOME / "asterisk_conf/queues.conf").read_text(encoding="utf-8")
    assert all(f"\n[{q}](tongdai-queue)" in conf for q in named), named
