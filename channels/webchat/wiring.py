"""``build_webchat``: the web chat on the conversation core (``hotline.messaging`` calls it)."""

from __future__ import annotations

from pathlib import Path

from channels.webchat.history import latest_messages, offer_waiting
from channels.webchat.hub import WebchatHub, WebchatSender
from channels.webchat.routes import Webchat
from channels.webchat.settings import WebchatSettings
from channels.webchat.token import VisitorTokens, load_key
from conversations.inbox import Inbox
from conversations.model import EventJournal
from conversations.outbox import Outbox
from tickets.messages import Direction, Message
from tickets.model import Channel
from tickets.sql_conversations import SqlConversationStore


def build_webchat(
    cfg: WebchatSettings,
    conv: SqlConversationStore,
    journal: EventJournal,
    state_dir: Path,
    *,
    key: bytes | None = None,
) -> tuple[Webchat, WebchatSender]:
    """The routes' state and the channel's sender (register it in the outbox, then call
    ``connect`` once the inbox and the outbox exist)."""
    hub = WebchatHub()
    tokens = VisitorTokens(key if key is not None else load_key(cfg.secret_file, state_dir))

    async def history(visitor: str) -> list[Message]:
        return list(await latest_messages(conv, visitor))

    chat = Webchat(cfg, tokens, hub, journal, history)
    return chat, WebchatSender(hub, cfg.absent_retry_s)


def connect(chat: Webchat, conv: SqlConversationStore, inbox: Inbox, outbox: Outbox) -> None:
    """Visitors see their own messages in every tab; replies waiting for an absent visitor go
    as soon as they are back; typing is told both ways (``conversations.typing``)."""
    assert outbox.senders.get(Channel.WEBCHAT) is not None, "register the webchat sender first"
    inbox.listeners.append(chat.hub.on_inbound)

    def typed_in(m: Message) -> None:  # a visitor's message: their conversation, done typing
        if m.channel == Channel.WEBCHAT and m.direction is Direction.IN and m.author_id:
            chat.typing.seen(m.author_id, m.ticket_code)
            chat.typing.citizen_stopped(m.ticket_code)

    def agent_types(visitor: str) -> None:
        chat.hub.push(visitor, {"type": "typing", "who": "staff"})

    inbox.listeners.append(typed_in)
    chat.typing.to_visitor.append(agent_types)

    async def back(visitor: str) -> None:
        await offer_waiting(conv, outbox, visitor)

    chat.hub.on_return = back
