"""Contract tests of the conversation store (messages, contacts): the same tests on memory,
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from tickets.memory import MemoryTicketStore
from tickets.memory_conversations import MemoryConversationStore
from tickets.messages import Attachment, Author, Delivery, Direction, NewMessage
from tickets.model import Status
from tickets.sql import SqlTicketStore, open_store
from tickets.sql_conversations import SqlConversationStore
from tickets.store import ConversationStore, TicketStore

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def stores(
    request: pytest.FixtureRequest, make_db_url: Callable[[str], str]
) -> AsyncIterator[tuple[TicketStore, ConversationStore]]:
    if request.param == "memory":
        mem = MemoryTicketStore()
        yield mem, MemoryConversationStore(mem, clock=lambda: T0)
        return
    sql: SqlTicketStore = await open_store(make_db_url(request.param))
    try:
        yield sql, SqlConversationStore(sql, clock=lambda: T0)
    finally:
        await sql.close()


def msg(
    external_id: str | None, body: str = "Xin chào", minutes: int = 0, **kw: object
) -> NewMessage:
    args: dict[str, object] = {
        "channel": "email",
        "direction": Direction.IN,
        "author": Author.CITIZEN,
        "body": body,
        "at": T0 + timedelta(minutes=minutes),
        "external_id": external_id,
    }
    args.update(kw)
    return NewMessage(**args)  # type: ignore[arg-type]


async def test_given_a_first_message_then_a_ticket_with_it_and_a_redelivery_is_stored_once(
    stores: tuple[TicketStore, ConversationStore],
) -> None:
    tickets, conv = stores
    c = await conv.contact_for("email", "dan@example.vn", "Nguyễn Văn Dân")
    first = msg(
        "<a1@example.vn>", attachments=(Attachment("don.pdf", "application/pdf", 3, "x/1"),)
    )
    t, m, created = await conv.start_conversation(
        channel="email",
        contact_id=c.id,
        caller="dan@example.vn",
        subject="Hỏi thủ tục",
        first=first,
    )
    assert created and t.channel == "email" and t.contact_id == c.id and t.subject == "Hỏi thủ tục"
    assert m.ticket_code == t.code and m.attachments[0].filename == "don.pdf"
    t2, m2, created2 = await conv.start_conversation(
        channel="email", contact_id=c.id, caller="dan@example.vn", subject="x", first=first
    )
    assert not created2 and t2.code == t.code and m2.id == m.id
    assert len(await tickets.list()) == 1
    reply, added = await conv.add_message(t.code, msg("<a2@example.vn>", "Cảm ơn", 5))
    again, added2 = await conv.add_message(t.code, msg("<a2@example.vn>", "Cảm ơn", 5))
    assert added and not added2 and again.id == reply.id
    assert [x.body for x in await conv.messages(t.code)] == ["Xin chào", "Cảm ơn"]
    assert (await conv.find_message("email", "<a2@example.vn>")) == reply
    # the same external id on another channel is another message
    _, other = await conv.add_message(t.code, msg("<a2@example.vn>", channel="webchat"))
    assert other


async def test_concurrent_deliveries_of_one_first_message_open_one_ticket(
    stores: tuple[TicketStore, ConversationStore],
) -> None:
    tickets, conv = stores
    first = msg("mid.1", channel="facebook")
    results = await asyncio.gather(
        *(
            conv.start_conversation(
                channel="facebook", contact_id=None, caller="psid", subject=None, first=first
            )
            for _ in range(5)
        )
    )
    assert len({t.code for t, _, _ in results}) == 1
    assert sum(1 for _, _, created in results if created) == 1
    assert len(await tickets.list()) == 1


async def test_threading_by_external_ids_and_unknown_ticket(
    stores: tuple[TicketStore, ConversationStore],
) -> None:
    _, conv = stores
    t, _, _ = await conv.start_conversation(
        channel="email", contact_id=None, caller="a@b.vn", subject="s", first=msg("<x1@b.vn>")
    )
    out, _ = await conv.add_message(
        t.code, msg("<r1@1022>", "Trả lời", 1, direction=Direction.OUT, author=Author.AGENT)
    )
    assert await conv.ticket_of_external("email", ["<zz@b.vn>", "<r1@1022>"]) == t.code
    assert await conv.ticket_of_external("email", ["<nope>"]) is None
    assert await conv.ticket_of_external("webchat", ["<r1@1022>"]) is None
    with pytest.raises(KeyError):
        await conv.add_message("1022-20261206-999999", msg("z"))


async def test_outgoing_delivery_states_and_due_retries(
    stores: tuple[TicketStore, ConversationStore],
) -> None:
    _, conv = stores
    t, _, _ = await conv.start_conversation(
        channel="zalo", contact_id=None, caller="u1", subject=None, first=msg("m1", channel="zalo")
    )
    out, _ = await conv.add_message(
        t.code,
        msg(None, "Đã nhận", 1, channel="zalo", direction=Direction.OUT, author=Author.AGENT,
            author_id="agent101", delivery=Delivery.PENDING),
    )  # fmt: skip
    assert [m.id for m in await conv.due_deliveries(T0 + timedelta(minutes=2))] == [out.id]
    later = T0 + timedelta(minutes=10)
    await conv.set_delivery(out.id, Delivery.PENDING, error="429", next_attempt_at=later)
    assert await conv.due_deliveries(T0 + timedelta(minutes=5)) == []
    assert [m.attempts for m in await conv.due_deliveries(later)] == [1]
    await conv.set_delivery(out.id, Delivery.SENT, external_id="zalo-out-1")
    sent = (await conv.messages(t.code))[-1]
    assert (
        sent.delivery is Delivery.SENT and sent.external_id == "zalo-out-1" and sent.attempts == 2
    )
    assert await conv.due_deliveries(later) == []
    await conv.set_delivery(out.id, Delivery.FAILED, error="user blocked the OA")
    assert (await conv.messages(t.code))[-1].delivery_error == "user blocked the OA"


async def test_contacts_link_identities_and_merge_keeps_every_ticket(
    stores: tuple[TicketStore, ConversationStore],
) -> None:
    tickets, conv = stores
    a = await conv.contact_for("phone", "0905123456", None)
    assert (await conv.contact_for("phone", "0905123456", "Lê Thị B")).id == a.id
    assert (await conv.get_contact(a.id)).name == "Lê Thị B"  # type: ignore[union-attr]
    b = await conv.contact_for("zalo", "z-77", "B Zalo")
    assert b.id != a.id
    ta, _, _ = await conv.start_conversation(
        channel="webchat",
        contact_id=a.id,
        caller="v1",
        subject=None,
        first=msg("w1", channel="webchat"),
    )
    tb, _, _ = await conv.start_conversation(
        channel="zalo",
        contact_id=b.id,
        caller="z-77",
        subject=None,
        first=msg("z1", channel="zalo"),
    )
    with pytest.raises(ValueError, match="merge"):
        await conv.add_identity(a.id, "zalo", "z-77")
    merged = await conv.merge_contacts(a.id, b.id)
    assert {(i.kind, i.value) for i in merged.identities} == {
        ("phone", "0905123456"),
        ("zalo", "z-77"),
    }
    assert {t.code for t in await conv.contact_tickets(a.id)} == {ta.code, tb.code}
    assert (await conv.contact_for("zalo", "z-77", None)).id == a.id
    assert (await conv.get_contact(b.id)).merged_into == a.id  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        await conv.merge_contacts(a.id, a.id)
    added = await conv.add_identity(a.id, "email", "b@example.vn")
    assert ("email", "b@example.vn") in {(i.kind, i.value) for i in added.identities}


async def test_open_conversations_skip_voice_and_resolved(
    stores: tuple[TicketStore, ConversationStore],
) -> None:
    tickets, conv = stores
    c = await conv.contact_for("webchat", "v9", None)
    t1, _, _ = await conv.start_conversation(
        channel="webchat",
        contact_id=c.id,
        caller="v9",
        subject=None,
        first=msg("a", channel="webchat"),
    )
    t2, _, _ = await conv.start_conversation(
        channel="webchat",
        contact_id=c.id,
        caller="v9",
        subject=None,
        first=msg("b", channel="webchat", minutes=1),
    )
    await tickets.open(channel="voice", caller="0905", uniqueid="1.1", started_at=T0)
    assert (await conv.open_conversation(c.id, "webchat")).code == t2.code  # type: ignore[union-attr]
    await tickets.set_status(t2.code, Status.RESOLVED, by="agent101")
    assert (await conv.open_conversation(c.id, "webchat")).code == t1.code  # type: ignore[union-attr]
    assert [t.code for t in await conv.open_conversations()] == [t1.code]
    assert await conv.open_conversation(c.id, "email") is None
