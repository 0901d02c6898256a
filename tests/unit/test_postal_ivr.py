"""Key 3 after a dossier's status: the caller's postal delivery request goes on the call's
ticket (the address is taken by an agent: it cannot be keyed), with a scripted caller and the
in-memory stores."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dossiers.memory import MemoryDossierLookup
from dossiers.model import Dossier, DossierStatus
from ivr import postal_offer
from ivr.fake import FakeAgiSession
from ivr.menu import load_menu
from ivr.prompts import load_catalogue
from ivr.runner import IvrContext, run_call
from ivr.schedule import ALWAYS_OPEN
from postal.memory import MemoryPostalStore
from postal.model import PostalState
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome, Ticket
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

MENU = load_menu(PROJECT_HOME / "ivr/menu_1022.toml")
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
DOSSIERS = [
    Dossier("123456", "Cấp giấy phép xây dựng", "Sở Xây dựng", DossierStatus.IN_PROGRESS,
            date(2026, 11, 1), date(2027, 1, 15)),
    Dossier("777777", "Cấp đổi GPLX", "Sở GTVT", DossierStatus.RETURNED,
            date(2026, 9, 1), date(2026, 10, 1)),
]  # fmt: skip


class BrokenPostal(MemoryPostalStore):
    async def request(self, **kw: object) -> object:  # type: ignore[override]
        raise StoreError("postal: database down")


class Harness:
    def __init__(self, tmp: Path, *, postal: bool = True, broken: bool = False) -> None:
        self.tickets = MemoryTicketStore()
        cls = BrokenPostal if broken else MemoryPostalStore
        self.postal = cls(self.tickets)
        self.ctx = IvrContext(
            menu=MENU, tickets=self.tickets, dossiers=MemoryDossierLookup(DOSSIERS),
            schedule=ALWAYS_OPEN, sounds="/snd", messages_asterisk="/msg", messages_host=tmp,
            now=lambda: NOW, postal=self.postal if postal else None,
        )  # fmt: skip

    async def call(self, *inputs: str, caller: str = "0905123456") -> tuple[FakeAgiSession, Ticket]:
        env = {"agi_callerid": caller, "agi_uniqueid": "1700000000.1"}
        s = FakeAgiSession(inputs, env=env)
        await run_call(s, self.ctx)
        return s, (await self.tickets.list())[-1]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def details(t: Ticket) -> list[str]:
    return [s.detail for s in t.ivr_path if s.detail and s.detail.startswith("postal:")]


async def test_given_a_dossier_when_3_is_pressed_then_a_request_is_on_the_ticket_and_told(
    h: Harness,
) -> None:
    s, t = await h.call("2", "123456#", "3", "H")
    assert "buu_chinh_bam_3" in s.prompts
    after = s.prompts[s.prompts.index("buu_chinh_da_ghi_nhan") :]
    assert after[:2] == ["buu_chinh_da_ghi_nhan", "ma_phieu_cua_ban"]  # then the ticket code
    (reg,) = await h.postal.of_ticket(t.code)
    assert (reg.state, reg.dossier_code, reg.phone, reg.created_by) == (
        PostalState.REQUESTED, "123456", "0905123456", "ivr",
    )  # fmt: skip
    assert details(t) == [f"postal:requested:{reg.id}"]
    assert (t.outcome, t.dossier_code, t.queue) == (Outcome.SELF_SERVICE, "123456", None)


async def test_given_a_request_when_3_is_pressed_again_then_already_and_nothing_new(
    h: Harness,
) -> None:
    s, t = await h.call("2", "123456#", "3", "3", "H")
    assert s.prompts.count("buu_chinh_da_dang_ky") == 1
    assert len(await h.postal.listing()) == 1
    assert details(t)[-1] == "postal:already:"


async def test_given_a_hidden_number_then_recorded_and_the_caller_goes_to_an_agent(
    h: Harness,
) -> None:
    s, t = await h.call("2", "123456#", "3", caller="anonymous")
    assert "buu_chinh_chuyen_tdv" in s.prompts
    assert s.variables["TONGDAI_QUEUE"] == "tra_cuu_ho_so" and t.queue == "tra_cuu_ho_so"
    (reg,) = await h.postal.of_ticket(t.code)
    assert reg.phone is None and reg.state is PostalState.REQUESTED


@pytest.mark.parametrize("code", ["777777", "999999"])  # returned already; not found
async def test_given_no_result_to_deliver_then_3_is_not_offered(h: Harness, code: str) -> None:
    s, t = await h.call("2", f"{code}#", "3", "H")
    assert "buu_chinh_bam_3" not in s.prompts
    assert MENU.invalid_prompt in s.prompts  # 3 is just a wrong key there
    assert await h.postal.listing() == []


async def test_given_no_postal_store_then_3_is_not_offered(tmp_path: Path) -> None:
    s, _ = await Harness(tmp_path, postal=False).call("2", "123456#", "H")
    assert "buu_chinh_bam_3" not in s.prompts


async def test_given_the_store_down_then_the_caller_hears_the_error_and_reaches_an_agent(
    tmp_path: Path,
) -> None:
    s, t = await Harness(tmp_path, broken=True).call("2", "123456#", "3")
    assert MENU.error_prompt in s.prompts and t.queue == "tra_cuu_ho_so"
    assert details(t) == ["postal:failed:"]


def test_the_postal_prompts_are_in_the_catalogue() -> None:
    names = set(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml"))
    wanted = {postal_offer.OFFER_PROMPT, *(p for ps in postal_offer.PROMPTS.values() for p in ps)}
    assert wanted <= names
    assert postal_offer.callback_number("sip:x") is None
    assert postal_offer.callback_number("+84905111222") == "+84905111222"
