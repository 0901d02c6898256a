"""The conversation core: messages in (inbox, bot, threading), replies out (outbox), on the
memory stores and a scripted ACD and sender."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from conversations.bot import Bot, dossier_code_in, fold, wants_agent
from conversations.files import AttachmentStore
from conversations.inbox import Inbox
from conversations.model import (
    Identity,
    IdentityKind,
    InboundKind,
    InboundMessage,
    IncomingAttachment,
    OutboundMessage,
    SendResult,
    SendStatus,
)
from conversations.outbox import Outbox, ReplyRefused
from conversations.texts import load_texts
from dossiers.memory import MemoryDossierLookup
from dossiers.model import Dossier, DossierStatus
from ivr.prompts import load_catalogue
from tickets.memory import MemoryTicketStore
from tickets.memory_conversations import MemoryConversationStore
from tickets.messages import Author, Delivery, Direction
from tickets.model import Channel, Outcome
from tongdai.settings import PROJECT_HOME

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 09:00 in Vietnam
PHRASES = dict(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml").items())
DOSSIER = Dossier(
    "1234567890", "Cấp phép xây dựng", "Sở Xây dựng", DossierStatus.IN_PROGRESS,
    date(2026, 11, 20), date(2026, 12, 4),
)  # fmt: skip


class ScriptedRouting:
    """The ACD's messaging side: records calls; ``agents`` False = nobody logged in."""

    def __init__(self, agents: bool = True) -> None:
        self.agents = agents
        self.calls: list[tuple[str, str]] = []

    def enqueue(self, code: str, queue: str, channel: Channel, *, agent: str | None = None) -> bool:
        self.calls.append(("enqueue", code))
        return self.agents

    def citizen_wrote(self, code: str) -> None:
        self.calls.append(("citizen_wrote", code))

    def agent_replied(self, code: str, agent: str) -> None:
        self.calls.append(("agent_replied", code))

    def transfer(self, code: str, *, queue: str | None = None, agent: str | None = None) -> None:
        self.calls.append(("transfer", code))

    def finished(self, code: str) -> None:
        self.calls.append(("finished", code))

    def assigned_to(self, code: str) -> str | None:
        return None


class ScriptedSender:
    def __init__(self, channel: Channel, results: list[SendResult] | None = None) -> None:
        self.channel = channel
        self.results = results or []
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return (
            self.results.pop(0)
            if self.results
            else SendResult(SendStatus.SENT, f"out-{len(self.sent)}")
        )


class Rig:
    def __init__(self, tmp: Path, *, agents: bool = True, open_hours: bool = True) -> None:
        self.now = T0
        self.tickets = MemoryTicketStore(clock=lambda: self.now)
        self.conv = MemoryConversationStore(self.tickets, clock=lambda: self.now)
        self.routing = ScriptedRouting(agents)
        self.senders = {c: ScriptedSender(c) for c in (Channel.EMAIL, Channel.ZALO)}
        self.outbox = Outbox(
            self.tickets, self.conv, self.senders,
            windows={Channel.ZALO: lambda last, now: now - last < timedelta(hours=48)},
            clock=lambda: self.now, base_delay_s=1.0,
        )  # fmt: skip
        texts = load_texts()
        bot = Bot(texts, MemoryDossierLookup([DOSSIER]), PHRASES, lambda: date(2026, 12, 7))
        self.inbox = Inbox(
            self.tickets, self.conv, self.outbox, AttachmentStore(tmp, max_bytes=1000), texts,
            bot=bot, routing=self.routing, is_open=lambda _n: open_hours, clock=lambda: self.now,
        )  # fmt: skip

    def msg(
        self, ext: str, text: str, channel: Channel = Channel.ZALO, **kw: object
    ) -> InboundMessage:
        kind = {Channel.ZALO: IdentityKind.ZALO, Channel.EMAIL: IdentityKind.EMAIL,
                Channel.WEBCHAT: IdentityKind.WEBCHAT}[channel]  # fmt: skip
        sender = kw.pop("sender", "u-1")
        return InboundMessage(
            channel=channel, external_id=ext, sender=Identity(kind, str(sender)),
            received_at=self.now, text=text, **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    async def bodies(self, code: str) -> list[tuple[str, str]]:
        return [(m.author.value, m.body) for m in await self.conv.messages(code)]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_the_bot_understands_vietnamese_with_or_without_diacritics() -> None:
    assert fold("Gặp  TỔNG ĐÀI viên!") == "gap tong dai vien!"
    assert wants_agent("cho tôi gặp tổng đài viên") and wants_agent("gap tong dai vien")
    assert wants_agent("AGENT") and not wants_agent("hồ sơ của tôi")
    assert dossier_code_in(" 1234-567 890 ") == "1234567890"
    assert dossier_code_in("12a4") is None and dossier_code_in("123") is None


async def test_given_a_first_zalo_message_with_a_dossier_code_then_ticket_code_and_status(
    rig: Rig,
) -> None:
    r = await rig.inbox.receive(rig.msg("m1", "1234567890"))
    assert r.created and not r.duplicate and r.ticket_code
    said = await rig.bodies(r.ticket_code)
    assert said[0] == ("citizen", "1234567890")
    assert said[1][1].startswith("Mã số phiếu của quý vị là " + r.ticket_code)
    assert said[2][1].startswith("Hồ sơ mã số 1234567890 đang được giải quyết.")
    assert "hẹn trả kết quả ngày 04/12/2026" in said[2][1] and "quá hạn" in said[2][1]
    t = await rig.tickets.get(r.ticket_code)
    assert t and t.outcome is Outcome.SELF_SERVICE and t.dossier_code == "1234567890"
    assert t.channel == "zalo" and t.caller == "u-1" and t.contact_id
    assert rig.routing.calls == []  # nobody asked for a person


async def test_a_redelivered_message_is_stored_once_and_answered_once(rig: Rig) -> None:
    first = await rig.inbox.receive(rig.msg("m1", "xin chào"))
    again = await rig.inbox.receive(rig.msg("m1", "xin chào"))
    assert again.duplicate and again.ticket_code == first.ticket_code
    assert len(await rig.conv.messages(first.ticket_code or "")) == 3  # in, code, help


async def test_the_bot_hands_over_on_request_or_after_helping_once(rig: Rig) -> None:
    r = await rig.inbox.receive(rig.msg("m1", "tôi hỏi về đất đai"))
    code = r.ticket_code or ""
    assert (await rig.bodies(code))[-1][1].startswith("Xin lỗi, tổng đài tự động chưa hiểu")
    await rig.inbox.receive(rig.msg("m2", "đất ở xã Tam Kỳ"))  # still not understood: a person
    assert rig.routing.calls == [("enqueue", code)]
    assert (await rig.bodies(code))[-1][1].startswith("Yêu cầu của quý vị đã được chuyển")
    other = await rig.inbox.receive(rig.msg("n1", "gặp tổng đài viên", sender="u-2"))
    assert rig.routing.calls[-1] == ("enqueue", other.ticket_code)


async def test_a_conversation_with_the_agents_reaches_the_acd_not_the_bot(rig: Rig) -> None:
    r = await rig.inbox.receive(rig.msg("m1", "gặp tổng đài viên"))
    code = r.ticket_code or ""
    await rig.tickets.update(code, queue="chung", queued_at=rig.now)  # the ACD's recorder
    await rig.inbox.receive(rig.msg("m2", "1234567890"))
    assert rig.routing.calls[-2:] == [("enqueue", code), ("citizen_wrote", code)]
    assert (await rig.bodies(code))[-1] == ("citizen", "1234567890")  # no bot answer


async def test_offline_the_citizen_gets_the_hours_and_the_code(tmp_path: Path) -> None:
    rig = Rig(tmp_path, agents=False)
    r = await rig.inbox.receive(rig.msg("m1", "gặp tổng đài viên"))
    code = r.ticket_code or ""
    assert (await rig.bodies(code))[-1][1].startswith("Hiện không có tổng đài viên trực")
    assert code in (await rig.bodies(code))[-1][1]
    assert (await rig.tickets.get(code)).outcome is Outcome.MESSAGE_LEFT  # type: ignore[union-attr]


async def test_email_threads_by_headers_and_code_and_goes_to_agents(rig: Rig) -> None:
    e = Channel.EMAIL
    a = await rig.inbox.receive(
        rig.msg("<a@x.vn>", "Hỏi thủ tục", e, sender="dan@x.vn", subject="Hỏi")
    )
    code = a.ticket_code or ""
    assert a.created and rig.routing.calls == [("enqueue", code)]
    b = await rig.inbox.receive(
        rig.msg("<b@x.vn>", "Bổ sung", e, sender="dan@x.vn", in_reply_to=("<a@x.vn>",))
    )
    assert b.ticket_code == code and not b.created
    c = await rig.inbox.receive(
        rig.msg("<c@x.vn>", "Theo mã", e, sender="dan@x.vn", ticket_code=code)
    )
    assert c.ticket_code == code
    stranger = await rig.inbox.receive(
        rig.msg("<d@y.vn>", "Mã của người khác", e, sender="x@y.vn", ticket_code=code)
    )
    assert stranger.ticket_code != code and stranger.created
    auto = await rig.inbox.receive(
        rig.msg("<e@z.vn>", "Out of office", e, sender="z@z.vn", automated=True)
    )
    assert [m.author for m in await rig.conv.messages(auto.ticket_code or "")] == [Author.CITIZEN]


async def test_attachments_kept_on_disk_refused_ones_noted(rig: Rig, tmp_path: Path) -> None:
    files = (
        IncomingAttachment("đơn xin.pdf", "application/pdf", b"%PDF-1"),
        IncomingAttachment("big.pdf", "application/pdf", b"x" * 2000),
        IncomingAttachment("virus.exe", "application/x-msdownload", b"MZ"),
        IncomingAttachment("photo.jpg", "image/jpeg", None, "https://zalo/photo.jpg"),
    )
    r = await rig.inbox.receive(rig.msg("m1", "ảnh", attachments=files))
    first = (await rig.conv.messages(r.ticket_code or ""))[0]
    assert [a.filename for a in first.attachments] == ["đơn xin.pdf", "photo.jpg"]
    assert (tmp_path / first.attachments[0].path).read_bytes() == b"%PDF-1"
    assert "big.pdf" in first.body and "virus.exe" in first.body
    assert first.attachments[1].url == "https://zalo/photo.jpg" and first.attachments[1].path == ""


async def test_follow_events_open_no_ticket(rig: Rig) -> None:
    r = await rig.inbox.receive(rig.msg("f1", "", kind=InboundKind.FOLLOW))
    assert r.ticket_code is None and await rig.tickets.list() == []


async def test_replies_are_delivered_retried_and_failures_shown(rig: Rig) -> None:
    r = await rig.inbox.receive(rig.msg("m1", "gặp tổng đài viên"))
    code = r.ticket_code or ""
    zalo = rig.senders[Channel.ZALO]
    zalo.results = [
        SendResult(SendStatus.SENT, "o1"), SendResult(SendStatus.SENT, "o2"),
        SendResult(SendStatus.RETRY, error="429"), SendResult(SendStatus.SENT, "o3"),
        SendResult(SendStatus.FAILED, error="người dùng đã chặn OA"),
    ]  # fmt: skip
    await rig.outbox.deliver_due()  # the ticket code and "queued"
    reply = await rig.outbox.reply(code, "Chào anh, tôi là tổng đài viên.", author_id="agent101")
    assert reply.delivery is Delivery.PENDING
    await rig.outbox.deliver_due()
    assert (await rig.conv.messages(code))[-1].delivery is Delivery.PENDING  # 429: later
    rig.now += timedelta(seconds=5)
    await rig.outbox.deliver_due()
    sent = (await rig.conv.messages(code))[-1]
    assert sent.delivery is Delivery.SENT and sent.external_id == "o3"
    assert zalo.sent[-1].recipient.value == "u-1" and zalo.sent[-1].text.startswith("Chào anh")
    await rig.outbox.reply(code, "Tin thứ hai")
    await rig.outbox.deliver_due()
    failed = (await rig.conv.messages(code))[-1]
    assert failed.delivery is Delivery.FAILED and failed.delivery_error == "người dùng đã chặn OA"


async def test_a_reply_outside_the_platform_window_is_refused_up_front(rig: Rig) -> None:
    r = await rig.inbox.receive(rig.msg("m1", "gặp tổng đài viên"))
    rig.now += timedelta(hours=49)
    with pytest.raises(ReplyRefused, match="thời hạn"):
        await rig.outbox.reply(r.ticket_code or "", "Trả lời muộn", author_id="agent101")
    with pytest.raises(ReplyRefused, match="trống"):
        await rig.outbox.reply(r.ticket_code or "", "   ")


async def test_email_replies_thread_on_the_stored_message_ids(rig: Rig) -> None:
    r = await rig.inbox.receive(
        rig.msg("<a@x.vn>", "Hỏi", Channel.EMAIL, sender="dan@x.vn", subject="Hỏi thủ tục")
    )
    await rig.outbox.deliver_due()  # the acknowledgement
    ack = rig.senders[Channel.EMAIL].sent[-1]
    assert ack.automatic and ack.thread == ("<a@x.vn>",) and ack.subject == "Hỏi thủ tục"
    await rig.outbox.reply(r.ticket_code or "", "Trả lời", author_id="agent101")
    await rig.outbox.deliver_due()
    reply = rig.senders[Channel.EMAIL].sent[-1]
    assert reply.thread == ("<a@x.vn>", "out-1") and not reply.automatic
    # the reply answers the citizen's mail, not our acknowledgement (the newest message)
    assert reply.reply_to == "<a@x.vn>"
    assert reply.recipient == Identity(IdentityKind.EMAIL, "dan@x.vn")
    outs = [m for m in await rig.conv.messages(r.ticket_code or "") if m.direction is Direction.OUT]
    assert [m.external_id for m in outs] == ["out-1", "out-2"]


async def test_a_reply_answers_the_citizens_last_mail_before_it_never_our_own(rig: Rig) -> None:
    e = Channel.EMAIL
    r = await rig.inbox.receive(rig.msg("<a@x.vn>", "Hỏi", e, sender="dan@x.vn", subject="Hỏi"))
    code = r.ticket_code or ""
    await rig.outbox.deliver_due()  # the acknowledgement, out-1
    await rig.outbox.reply(code, "Trả lời 1", author_id="agent101")
    await rig.outbox.deliver_due()  # out-2
    await rig.inbox.receive(
        rig.msg("<b@x.vn>", "Bổ sung", e, sender="dan@x.vn", in_reply_to=("out-2",))
    )
    await rig.outbox.reply(code, "Trả lời 2", author_id="agent101")
    await rig.outbox.reply(code, "Trả lời 3", author_id="agent101")
    await rig.outbox.deliver_due()
    second, third = rig.senders[e].sent[-2:]
    assert second.text == "Trả lời 2" and second.reply_to == "<b@x.vn>"
    # a second reply in a row still answers the citizen, while References grow by ours
    assert third.reply_to == "<b@x.vn>"
    assert third.thread == ("<a@x.vn>", "out-1", "out-2", "<b@x.vn>", "out-3")
