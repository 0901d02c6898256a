"""The messaging adapter wired as the conversation core's ``ConversationRouting``: the engine's
ACD (``bench.web_rig.SimAcd``: real router, dispatcher, recorder, fake AMI) behind a real
``Inbox`` on the memory stores. A Zalo or web chat message asking for a person is queued,
given to a free agent with conversation capacity, written on the ticket, shown on the live
state, handed back when the agent pauses, and rebuilt from the tickets at a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from test_conversations_inbox import Rig

from acd.agent import AgentState
from acd.conversations import ConversationState
from acd.messaging import tickets_loader
from bench.web_rig import SimAcd
from tickets.messages import Author
from tickets.model import Channel, Ticket


async def until(fact: Callable[[], object], what: str, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not fact():
            await asyncio.sleep(0.01)
    assert fact(), what


@pytest.fixture
async def sim() -> AsyncIterator[SimAcd]:
    s = SimAcd()
    await s.start(login=["agent101"])
    try:
        yield s
    finally:
        await s.stop()


def wire(rig: Rig, sim: SimAcd) -> list[tuple[str, str]]:
    rig.inbox.routing = sim.messaging
    rig.inbox.queue_of = sim.messaging.queue_of
    sim.use_tickets(rig.tickets)
    told: list[tuple[str, str]] = []
    sim.messaging.on_assigned.append(lambda code, agent: told.append((code, agent)))
    return told


async def ticket(rig: Rig, sim: SimAcd, code: str) -> Ticket:
    await sim.acd.recorder.settled()
    t = await rig.tickets.get(code)
    assert t is not None
    return t


async def test_a_zalo_and_a_webchat_conversation_reach_a_free_agent_and_go_back_on_pause(
    tmp_path: Path, sim: SimAcd
) -> None:
    rig = Rig(tmp_path)
    told = wire(rig, sim)
    z = (await rig.inbox.receive(rig.msg("z1", "gặp tổng đài viên"))).ticket_code or ""
    w = await rig.inbox.receive(rig.msg("w1", "gap tong dai vien", Channel.WEBCHAT, sender="v-9"))
    chat = w.ticket_code or ""
    m = sim.messaging
    await until(lambda: m.assigned_to(z) == m.assigned_to(chat) == "agent101", "both given")
    assert told == [(z, "agent101"), (chat, "agent101")]
    assert (await rig.bodies(z))[-1][1].startswith("Yêu cầu của quý vị đã được chuyển")
    t = await ticket(rig, sim, z)
    assert (t.queue, t.agent) == ("chung", "agent101") and t.queued_at is not None
    assert sim.router.agent("agent101").state is AgentState.AVAILABLE  # nothing rang
    q = next(x for x in sim.control.state().queues if x.name == "chung")
    assert q.conversations_open == {"zalo": 1, "webchat": 1} and q.conversations_waiting == {}
    me = sim.control.state().agent("agent101")
    assert me is not None and (me.conversations_open, me.conversation_capacity) == (2, 3)

    sim.router.pause("agent101", "meal")
    assert m.assigned_to(z) is None and m.assigned_to(chat) is None
    assert [c.code for c in sim.router.d.conversations.line("chung")] == [z, chat]
    assert (await ticket(rig, sim, z)).agent is None
    q = next(x for x in sim.control.state().queues if x.name == "chung")
    assert q.conversations_waiting == {"zalo": 1, "webchat": 1} and q.conversations_open == {}

    sim.router.login("agent102")
    await until(lambda: m.assigned_to(z) == m.assigned_to(chat) == "agent102", "to agent102")
    assert (await ticket(rig, sim, chat)).agent == "agent102"


async def test_a_citizen_message_while_with_an_agent_starts_the_reply_clock(
    tmp_path: Path, sim: SimAcd
) -> None:
    rig = Rig(tmp_path)
    wire(rig, sim)
    code = (await rig.inbox.receive(rig.msg("z1", "gặp tổng đài viên"))).ticket_code or ""
    await until(lambda: sim.messaging.assigned_to(code) == "agent101", "given")
    await sim.acd.recorder.settled()
    await rig.inbox.receive(rig.msg("z2", "tôi cần hỏi về hồ sơ"))
    c = sim.router.d.conversations.items[code]
    assert c.awaiting_since is not None and c.state is ConversationState.ASSIGNED
    sim.messaging.agent_replied(code, "agent101")
    assert c.awaiting_since is None
    sim.messaging.finished(code)
    assert sim.messaging.assigned_to(code) is None and code not in sim.router.d.conversations.items


async def test_given_open_conversations_on_the_tickets_then_a_restarted_acd_rebuilds_them(
    tmp_path: Path, sim: SimAcd
) -> None:
    rig = Rig(tmp_path)
    wire(rig, sim)
    held = (await rig.inbox.receive(rig.msg("z1", "gặp tổng đài viên"))).ticket_code or ""
    await until(lambda: sim.messaging.assigned_to(held) == "agent101", "given")
    bot_only = (await rig.inbox.receive(rig.msg("z9", "1234567890", sender="u-7"))).ticket_code
    await rig.outbox.reply(held, "Chào anh", author=Author.AGENT)
    await rig.inbox.receive(rig.msg("z2", "còn câu hỏi nữa"))  # unanswered since now
    await sim.acd.recorder.settled()

    again = SimAcd()
    again.use_tickets(rig.tickets)
    again.acd.conversation_loader = tickets_loader(rig.conv)
    await again.start(login=["agent101"])  # rebuilt before the login: in line, then given
    try:
        m = again.messaging
        await until(lambda: m.assigned_to(held) == "agent101", "given again after the restart")
        c = again.router.d.conversations.items[held]
        assert c.channel is Channel.ZALO and c.queue == "chung"
        assert c.awaiting_since is not None and abs(c.awaiting_since - rig.now.timestamp()) < 1
        assert bot_only not in again.router.d.conversations.items  # never with the agents
    finally:
        await again.stop()
