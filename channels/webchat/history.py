"""The visitor's conversation as the store keeps it, and the replies waiting for them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from conversations.outbox import Outbox
from tickets.messages import Delivery, Direction, Message
from tickets.model import Channel
from tickets.sql import T
from tickets.sql_conversations import SqlConversationStore


async def latest_code(conv: SqlConversationStore, visitor: str) -> str | None:
    """The code of the visitor's newest web chat ticket (open or not)."""
    query = (
        select(T.c.code)
        .where(T.c.channel == Channel.WEBCHAT.value, T.c.caller == visitor)
        .order_by(T.c.id.desc())
        .limit(1)
    )
    async with conv._tx("cannot find the visitor's conversation") as conn:
        found = (await conn.execute(query)).first()
    return str(found.code) if found is not None else None


async def latest_messages(conv: SqlConversationStore, visitor: str) -> Sequence[Message]:
    code = await latest_code(conv, visitor)
    return await conv.messages(code) if code is not None else []


async def offer_waiting(conv: SqlConversationStore, outbox: Outbox, visitor: str) -> int:
    """The visitor is back: replies the outbox holds for them (``pending``, waiting for a
    retry) become due now and the outbox is woken; returns how many."""
    n = 0
    for m in await latest_messages(conv, visitor):
        if m.direction is Direction.OUT and m.delivery is Delivery.PENDING and m.next_attempt_at:
            await conv.set_delivery(m.id, Delivery.PENDING, error=m.delivery_error)
            n += 1
    if n:
        outbox.kick.set()
    return n
