"""Forwards to agencies: the store's contract on SQLite and PostgreSQL, and the desk's
workflow with a frozen clock (due dates across a weekend and Tết, the agency's notice by
e-mail or pending, once-only extension, sending back, the answer back to the citizen)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from agencies.calendar import WorkCalendar
from agencies.desk import CALLBACK, DeskError, ForwardDesk
from agencies.digest import Digest
from agencies.forwards import ForwardState, IllegalForward, Notify
from agencies.model import load_agencies
from agencies.sql import DD, SqlDigestLog, SqlForwardStore
from conversations.model import OutboundMessage, SendResult, SendStatus
from conversations.outbox import Outbox
from tickets.messages import Direction
from tickets.model import Channel, Status
from tickets.sql import SqlTicketStore, open_store
from tickets.sql_conversations import SqlConversationStore
from tongdai.clock import VN_TZ
from tongdai.settings import PROJECT_HOME

CAL = WorkCalendar.from_file(PROJECT_HOME / "ivr/schedule.toml")
BOOK = load_agencies()
FRIDAY = datetime(2026, 12, 4, 15, 30, tzinfo=VN_TZ)


def vn(y: int, m: int, d: int, h: int = 17, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=VN_TZ)


class Sender:
    def __init__(self, results: list[SendStatus] | None = None) -> None:
        self.channel = Channel.EMAIL
        self.results = results or []
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        status = self.results.pop(0) if self.results else SendStatus.SENT
        return SendResult(status, f"<out-{len(self.sent)}>", None if status == "sent" else "x")


@dataclass
class Rig:
    tickets: SqlTicketStore
    store: SqlForwardStore
    outbox: Outbox
    desk: ForwardDesk
    now: list[datetime] = field(default_factory=lambda: [FRIDAY])

    async def ticket(self, channel: str = "voice", caller: str = "0905111222") -> str:
        t = await self.tickets.open(
            channel=channel, caller=caller, uniqueid=None, started_at=self.now[0]
        )
        return t.code


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    tickets = await open_store(db_url)
    now = [FRIDAY]
    outbox = Outbox(tickets, SqlConversationStore(tickets), {}, clock=lambda: now[0])
    store = SqlForwardStore(tickets.engine)
    desk = ForwardDesk(tickets, store, BOOK, CAL, outbox, clock=lambda: now[0])
    try:
        yield Rig(tickets, store, outbox, desk, now)
    finally:
        await tickets.close()


async def test_store_contract_create_move_and_refuse(rig: Rig) -> None:
    code = await rig.ticket()
    s = rig.store
    f = await s.create(ticket_code=code, agency_id="so_gtvt", due_at=vn(2026, 12, 9), by="tdv101",
                       at=FRIDAY, note="Đèn đường hỏng")  # fmt: skip
    assert (f.state, f.notify, f.due_at, f.note) == (
        ForwardState.FORWARDED, Notify.PENDING, vn(2026, 12, 9), "Đèn đường hỏng",
    )  # fmt: skip
    with pytest.raises(ValueError, match="already with so_gtvt"):
        await s.create(ticket_code=code, agency_id="so_xay_dung", due_at=FRIDAY, by="x", at=FRIDAY)
    with pytest.raises(KeyError):
        await s.create(
            ticket_code="1022-0-0", agency_id="so_gtvt", due_at=FRIDAY, by="x", at=FRIDAY
        )
    e = await s.extend(f.id, reason="Cần khảo sát", due_at=vn(2026, 12, 14), at=FRIDAY)
    assert (e.state, e.extension_reason, e.due_at) == (
        ForwardState.EXTENDED, "Cần khảo sát", vn(2026, 12, 14),
    )  # fmt: skip
    with pytest.raises(IllegalForward, match="extended: cannot become extended"):
        await s.extend(f.id, reason="again", due_at=vn(2026, 12, 20), at=FRIDAY)
    a = await s.answer(f.id, text="Đã sửa", public=True, by="gtvt1", at=vn(2026, 12, 10))
    assert (a.state, a.answer, a.answer_public, a.late()) == (
        ForwardState.ANSWERED, "Đã sửa", True, False,
    )  # fmt: skip
    with pytest.raises(IllegalForward):
        await s.send_back(f.id, reason="x", by="gtvt1", at=FRIDAY)
    with pytest.raises(KeyError):
        await s.answer(99999, text="x", public=False, by="x", at=FRIDAY)
    assert [x.id for x in await s.of_ticket(code)] == [f.id]
    assert [x.id for x in await s.listing(agency_id="so_gtvt")] == [f.id]
    assert await s.listing(agency_id="so_gtvt", states=[ForwardState.FORWARDED]) == []
    # a final forward frees the ticket for a new one
    g = await s.create(ticket_code=code, agency_id="so_xay_dung", due_at=FRIDAY, by="x", at=FRIDAY)
    await s.set_notify(g.id, Notify.SENT, at=FRIDAY)
    assert [x.id for x in await s.pending_notifications()] == [f.id]
    r = await s.replied(f.id, via=CALLBACK, at=FRIDAY)
    assert [x.id for x in await s.callbacks()] == [r.id]
    await s.callback_done(f.id, at=FRIDAY)
    assert await s.callbacks() == []


async def test_given_two_agencies_answering_at_once_then_only_one_transition_wins(
    rig: Rig,
) -> None:
    f = await rig.store.create(ticket_code=await rig.ticket(), agency_id="so_gtvt",
                               due_at=FRIDAY, by="x", at=FRIDAY)  # fmt: skip
    results = await asyncio.gather(
        rig.store.answer(f.id, text="a", public=False, by="a", at=FRIDAY),
        rig.store.send_back(f.id, reason="b", by="b", at=FRIDAY),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Forward", "IllegalForward"]


async def test_given_a_friday_forward_then_due_after_the_weekend_and_the_ticket_follows(
    rig: Rig,
) -> None:
    code = await rig.ticket()
    f = await rig.desk.forward(code, "so_gtvt", by="tdv101", note="Ổ gà QL1A")
    assert f.due_at == vn(2026, 12, 9)  # 3 working days: Mon, Tue, Wed
    t = await rig.tickets.get(code)
    assert t is not None and t.status is Status.IN_PROGRESS and t.due_at == vn(2026, 12, 9)
    assert f.notify is Notify.PENDING  # no e-mail channel configured: recorded as pending
    assert f.flag(vn(2026, 12, 8, 18)) == "nearly_due" and f.flag(vn(2026, 12, 10)) == "overdue"
    assert f.flag(FRIDAY) is None


async def test_given_a_forward_before_tet_then_due_after_tet(rig: Rig) -> None:
    rig.now[0] = vn(2026, 2, 13, 9)
    code = await rig.ticket()
    f = await rig.desk.forward(code, "so_tu_phap", by="tdv101")
    assert f.due_at == vn(2026, 2, 25)
    # more time once: the deadline moves by 3 working days again (Thu 26, Fri 27, Mon 2/3)
    e = await rig.desk.extend("so_tu_phap", f.id, reason="Chờ hồ sơ gốc")
    assert e.due_at == vn(2026, 3, 2)
    with pytest.raises(IllegalForward):
        await rig.desk.extend("so_tu_phap", f.id, reason="Lần nữa")


async def test_given_an_email_sender_then_the_agency_is_mailed_and_pending_ones_follow(
    rig: Rig,
) -> None:
    code = await rig.ticket()
    f = await rig.desk.forward(code, "buu_dien", by="tdv101")
    assert f.notify is Notify.PENDING
    sender = Sender([SendStatus.RETRY])
    rig.outbox.senders[Channel.EMAIL] = sender
    assert await rig.desk.notify_pending() == 0  # the platform said "later"
    assert (await rig.store.get(f.id)).notify is Notify.PENDING  # type: ignore[union-attr]
    assert await rig.desk.notify_pending() == 1
    got = await rig.store.get(f.id)
    assert got is not None and got.notify is Notify.SENT and got.notified_at == FRIDAY
    mail = sender.sent[-1]
    assert mail.recipient.value == "buudien@quangnam.vnpost.vn" and code in (mail.subject or "")
    assert "Bưu điện tỉnh Quảng Nam" in mail.text and "08/12/2026" in mail.text
    other = await rig.desk.forward(await rig.ticket(), "so_gtvt", by="tdv101")
    assert other.notify is Notify.SENT  # mailed at once now


async def test_given_an_agency_then_it_acts_only_on_its_own_forwards(rig: Rig) -> None:
    code = await rig.ticket()
    f = await rig.desk.forward(code, "so_gtvt", by="tdv101")
    with pytest.raises(KeyError):
        await rig.desk.answer("so_tu_phap", f.id, text="x", public=True, by="stp")
    with pytest.raises(KeyError):
        await rig.desk.agency_ticket("so_tu_phap", code)
    with pytest.raises(DeskError, match="reason: required"):
        await rig.desk.send_back("so_gtvt", f.id, reason=" ", by="gtvt1")
    back = await rig.desk.send_back("so_gtvt", f.id, reason="Thuộc thẩm quyền UBND", by="gtvt1")
    assert back.state is ForwardState.SENT_BACK
    t = await rig.tickets.get(code)
    assert t is not None and "trả lại: Thuộc thẩm quyền UBND" in (t.notes or "")
    assert await rig.desk.current(code) is None
    again = await rig.desk.forward(code, "ubnd_tam_ky", by="giamsat")
    assert again.state is ForwardState.FORWARDED


async def test_given_an_answered_email_ticket_when_resolved_then_the_answer_goes_back(
    rig: Rig,
) -> None:
    code = await rig.ticket("email", "dan@example.vn")
    f = await rig.desk.forward(code, "so_xay_dung", by="tdv101")
    with pytest.raises(DeskError, match="no answer"):
        await rig.desk.resolve(code, by="tdv101")
    rig.now[0] = vn(2026, 12, 8, 9)
    await rig.desk.answer("so_xay_dung", f.id, text="Giấy phép đã cấp", public=True, by="sxd1")
    done = await rig.desk.resolve(code, by="tdv101")
    assert (done.reply_via, done.replied_at) == ("email", vn(2026, 12, 8, 9))
    msgs = await rig.outbox.conv.messages(code)
    assert msgs[-1].direction is Direction.OUT and "Giấy phép đã cấp" in msgs[-1].body
    t = await rig.tickets.get(code)
    assert t is not None and t.status is Status.RESOLVED
    with pytest.raises(DeskError, match="already"):
        await rig.desk.resolve(code, by="tdv101")


async def test_given_an_answered_call_when_resolved_then_a_callback_task_waits(rig: Rig) -> None:
    code = await rig.ticket()
    f = await rig.desk.forward(code, "so_gtvt", by="tdv101")
    await rig.desk.answer("so_gtvt", f.id, text="Đã vá", public=False, by="gtvt1")
    done = await rig.desk.resolve(code, by="tdv101")
    assert done.reply_via == CALLBACK
    assert [x.ticket_code for x in await rig.store.callbacks()] == [code]
    await rig.desk.callback_done(f.id)
    assert await rig.store.callbacks() == []
    assert datetime.now(UTC) > FRIDAY  # the frozen clock is not the real one


async def test_the_daily_digest_mails_each_agency_its_late_forwards_and_the_supervisors_all(
    rig: Rig,
) -> None:
    late = await rig.desk.forward(await rig.ticket(), "so_gtvt", by="tdv101")  # due Wed 9/12
    near = await rig.desk.forward(await rig.ticket(), "buu_dien", by="tdv101")  # due Tue 8/12
    await rig.desk.forward(await rig.ticket(), "so_khdt", by="tdv101")  # 5 days: due Fri 11/12
    digest = Digest(rig.desk, supervisors=["giamsat@quangnam.gov.vn"], hour=7)
    assert not await digest.due(vn(2026, 12, 5, 8))  # Saturday
    now = vn(2026, 12, 10, 6, 59)  # Thursday, before the hour
    assert not await digest.due(now)
    now = vn(2026, 12, 10, 7, 30)
    assert await digest.due(now)
    assert await digest.send(now) == 0 and await digest.due(now)  # no e-mail sender yet
    sender = Sender()
    rig.outbox.senders[Channel.EMAIL] = sender
    sender.sent.clear()
    rig.now[0] = now
    assert await digest.send(now) == 3  # so_gtvt, buu_dien (both overdue now), supervisors
    assert not await digest.due(vn(2026, 12, 10, 16))
    to = {m.recipient.value: m for m in sender.sent}
    assert set(to) == {"sogtvt@quangnam.gov.vn", "buudien@quangnam.vnpost.vn",
                       "giamsat@quangnam.gov.vn"}  # fmt: skip
    assert late.ticket_code in to["sogtvt@quangnam.gov.vn"].text
    assert near.ticket_code not in to["sogtvt@quangnam.gov.vn"].text
    assert "QUÁ HẠN" in to["buudien@quangnam.vnpost.vn"].text
    boss = to["giamsat@quangnam.gov.vn"].text
    assert late.ticket_code in boss and near.ticket_code in boss and "Sở Kế hoạch" not in boss


async def test_the_digest_day_is_kept_in_the_database_so_a_restart_does_not_resend(
    rig: Rig,
) -> None:
    await rig.desk.forward(await rig.ticket(), "so_gtvt", by="tdv101")  # due Wed 9/12
    sender = Sender()
    rig.outbox.senders[Channel.EMAIL] = sender
    now = vn(2026, 12, 10, 7, 30)  # Thursday, past the hour: overdue
    rig.now[0] = now
    first = Digest(rig.desk, hour=7, days=SqlDigestLog(rig.tickets.engine))
    assert await first.due(now) and await first.send(now) == 1
    # the engine restarts at 9:00: a new Digest on the same database sends nothing today
    later = vn(2026, 12, 10, 9)
    restarted = Digest(rig.desk, hour=7, days=SqlDigestLog(rig.tickets.engine))
    assert not await restarted.due(later)
    assert await restarted.send(later) == 0  # even if asked: the day is taken
    assert len(sender.sent) == 1
    # the next working day it goes again
    friday = vn(2026, 12, 11, 7, 5)
    assert await restarted.due(friday) and await restarted.send(friday) == 1
    assert len(sender.sent) == 2
    async with rig.tickets.engine.connect() as conn:
        rows = (await conn.execute(select(DD).order_by(DD.c.day))).all()
    assert [(r.day, r.mails) for r in rows] == [(date(2026, 12, 10), 1), (date(2026, 12, 11), 1)]
