"""The messaging adapter: the ACD as the conversation core sees it
(``conversations.model.ConversationRouting``).

A conversation (web chat, email, Zalo, Facebook; keyed by its ticket code) waits in the same
queues as calls, with the same strategies, skills and overflow steps, and is given to an agent
with spare conversation capacity (``acd.desk``). Nothing rings: the router's round assigns it,
the recorder writes the queue and the agent on the ticket, the live views show it, and
``on_assigned`` callbacks (the conversation core's, optional) hear of each assignment. Nothing
of it reaches Asterisk's queue_log.

Conversation state is not in the state store: at start ``rebuild`` reads the open
conversations back through a ``ConversationLoader`` the conversation core provides (open
conversation tickets: channel other than voice, status new or in progress, with their queue
and agent) and puts each with its agent again, or back in line in the order they first queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from acd.conversations import ConversationOffer, ConversationTransition
from acd.router import Router
from tickets.messages import Author
from tickets.model import Channel
from tickets.store import ConversationStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenConversation:
    """An open conversation ticket, as the loader reads it at start."""

    code: str
    channel: Channel
    #: the queue it waited in (None or unknown: the general queue)
    queue: str | None
    #: the agent the ticket names (None: waiting for one)
    agent: str | None
    #: when it first entered a queue (None: now); sets its place in line
    queued_at: datetime | None
    #: since when the citizen waits for an agent's reply (None: answered); timezone-aware
    awaiting_reply_since: datetime | None = None


class ConversationLoader(Protocol):
    async def __call__(self) -> Sequence[OpenConversation]:
        """Every open conversation ticket (status new or in progress, channel not voice);
        raises ``tongdai.errors.StoreError`` when the database cannot be read."""
        ...


def tickets_loader(store: ConversationStore) -> ConversationLoader:
    """The open conversations as the tickets hold them: message tickets not resolved or
    closed that were handed to the agents (``queued_at`` set; a bot-served or offline one is
    not), with their queue and agent; the citizen waits for a reply since their first
    message after the last agent's reply."""

    async def load() -> list[OpenConversation]:
        found: list[OpenConversation] = []
        for t in await store.open_conversations():
            if t.queued_at is None:
                continue
            awaiting: datetime | None = None
            for m in await store.messages(t.code):
                if m.author is Author.AGENT:
                    awaiting = None
                elif m.author is Author.CITIZEN and awaiting is None:
                    awaiting = m.at
            found.append(
                OpenConversation(t.code, Channel(t.channel), t.queue, t.agent, t.queued_at,
                                 awaiting)
            )  # fmt: skip
        return found

    return load


class MessagingAdapter:
    """``ConversationRouting`` on the engine's router (same event loop)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.desk = router.d.conversations
        #: told of every assignment made by a round (code, agent): must be quick, never await
        self.on_assigned: list[Callable[[str, str], None]] = []
        router.messaging = self

    # -- ConversationRouting -----------------------------------------------------------------

    def enqueue(self, code: str, queue: str, channel: Channel, *, agent: str | None = None) -> bool:
        try:
            return self.desk.enqueue(code, queue, channel, agent=agent)
        finally:
            self.router.flush()

    def citizen_wrote(self, code: str) -> None:
        self.desk.citizen_wrote(code)
        self.router.flush(kick=False)

    def agent_replied(self, code: str, agent: str) -> None:
        self.desk.agent_replied(code, agent)
        self.router.flush(kick=False)

    def transfer(self, code: str, *, queue: str | None = None, agent: str | None = None) -> None:
        """Raises ``acd.agent.AcdError`` (unknown conversation, queue or agent; an agent who
        cannot take it now)."""
        try:
            self.desk.transfer(code, queue=queue, agent=agent)
        finally:
            self.router.flush()

    def finished(self, code: str) -> None:
        self.desk.finish(code)
        self.router.flush()

    def assigned_to(self, code: str) -> str | None:
        c = self.desk.items.get(code)
        return c.agent if c is not None else None

    def queue_of(self, category: str) -> str:
        """The queue serving a ticket category (``queues.<name>.category``), else the
        general queue."""
        for q in self.router.queues():
            if q.category == category:
                return q.name
        return self.router.config.queue_or_general(category)

    # -- from the router ---------------------------------------------------------------------

    def assigned(self, offer: ConversationOffer) -> None:
        for tell in self.on_assigned:
            try:
                tell(offer.code, offer.agent)
            except Exception:  # the core's observer must not stop the distribution
                log.exception("conversation assignment observer %r failed", tell)

    def on_event(self, event: ConversationTransition) -> None:
        """Nothing to carry out: a conversation rings nothing."""

    # -- start -------------------------------------------------------------------------------

    async def rebuild(self, loader: ConversationLoader) -> int | None:
        """Read the open conversations back (after agents are restored or logged in); returns
        how many, or None if the database could not be read (they come back as they write)."""
        try:
            found = await loader()
        except StoreError as exc:
            log.error("open conversations not rebuilt (%s)", exc)
            return None
        now = self.router.d.clock()

        def first(c: OpenConversation) -> tuple[float, str]:
            return (c.queued_at.timestamp() if c.queued_at else now, c.code)

        for c in sorted(found, key=first):
            awaiting = c.awaiting_reply_since
            self.desk.restore(
                c.code,
                c.channel,
                c.queue or "",
                agent=c.agent,
                entered_at=first(c)[0],
                awaiting_since=awaiting.timestamp() if awaiting else None,
            )
        self.router.flush()
        log.info("conversations rebuilt: %d", len(found))
        return len(found)
