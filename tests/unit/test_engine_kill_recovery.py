"""An engine killed under load (issue 12, ``bench faults`` row ``engine_kill``): what the
restarted engine does with the callers the dead one held.

- a caller whose FastAGI session died comes back through ``agi://.../rejoin`` with the one
  ticket of their call (found by uniqueid when the dead session never told the dialplan) and
  takes the place their arrival gives them;
- a call answered while no engine listened (the caller bridged to an agent) is resumed as
  connected, never offered again, and its agent's hang-up ends it with an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acd.agent import AgentState
from acd.calls import CallState
from acd.config import load_acd
from acd.dispatch import Dispatcher
from acd.handover import AcdHandover
from acd.memory_store import MemoryStore
from acd.persistence import merge_dirty, persist
from acd.service import AcdService
from ivr.fake import FakeAgiSession
from ivr.handover import AppQueueHandover, QueuedCaller, QueueHandover
from ivr.menu import load_menu
from ivr.rejoin import FOUND, OPENED, REJOIN_NODE, rejoin
from ivr.runner import IvrContext
from ivr.schedule import Schedule
from pbx.channels import channel_started
from pbx.fake import FakeAmi, FakeEvent
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome
from tongdai.settings import PROJECT_HOME

CFG = load_acd(PROJECT_HOME / "tests/e2e/acd_e2e.toml")
C, A = CallState, AgentState
T0 = 1796680378.0


async def until(cond: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def acd_with(ami: FakeAmi, tickets: MemoryTicketStore) -> AsyncIterator[AcdService]:
    acd = AcdService.build(CFG, ami, tickets, store=MemoryStore(), tick_s=0.05)
    await acd.start(login_all=True)
    task = asyncio.create_task(acd.run(ami.stream()))
    try:
        yield acd
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def context(tickets: MemoryTicketStore, handover: QueueHandover) -> IvrContext:
    return IvrContext(
        menu=load_menu(PROJECT_HOME / "ivr/menu_1022.toml"),
        tickets=tickets,
        dossiers=None,  # type: ignore[arg-type]  # rejoin never looks a dossier up
        schedule=Schedule(True, UTC, {}, frozenset()),
        sounds="/prompts",
        messages_asterisk="/m",
        messages_host=Path("/m"),
        now=lambda: datetime.fromtimestamp(T0 + 30, UTC),
        handover=handover,
    )


def session(uid: str, variables: dict[str, str] | None = None) -> FakeAgiSession:
    env = {"agi_uniqueid": uid, "agi_channel": f"PJSIP/anon-{uid}", "agi_callerid": "0905000111"}
    s = FakeAgiSession([], env=env)
    s.variables.update(variables or {})
    return s


# -- the uniqueid's clock ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uid", "expected"),
    [
        ("tongdai-1796680378.14", 1796680378.0),
        ("1796680378.3", 1796680378.0),
        ("my-host-name-1796680379.0", 1796680379.0),
        ("w0", None),
        ("", None),
        ("tongdai-abc.1", None),
        ("tongdai-17966.x", None),
    ],
)
def test_channel_started_reads_the_epoch_of_asterisks_uniqueid(
    uid: str, expected: float | None
) -> None:
    assert channel_started(uid) == expected


def test_a_caller_taken_back_with_an_earlier_arrival_goes_ahead_of_later_callers() -> None:
    now = [T0 + 100]
    d = Dispatcher(CFG, clock=lambda: now[0])
    d.call_arrived("late", "chung")
    d.call_arrived("lost", "chung", entered_at=T0)
    assert [c.uniqueid for c in d.lines.merged()] == ["lost", "late"]
    lost = d.calls["lost"]
    assert lost.entered_at == T0 and lost.queue_entered_at == T0 + 100
    # an arrival "in the future" (clock skew) is clamped to now, never ahead of the present
    d.call_arrived("skewed", "chung", entered_at=T0 + 10_000)
    assert d.calls["skewed"].entered_at == T0 + 100


# -- rejoin ------------------------------------------------------------------------------------


async def test_given_a_ticket_the_dead_session_wrote_when_rejoining_then_it_is_reused() -> None:
    """The session died between writing the ticket and setting TONGDAI_TICKET: one ticket."""
    tickets = MemoryTicketStore()
    uid = "tongdai-1796680378.7"
    first = await tickets.open(
        channel="voice", caller="0905000111", uniqueid=uid, started_at=datetime.now(UTC)
    )
    async with acd_with(FakeAmi(), tickets) as acd:
        for a in list(acd.router.d.agents):
            acd.router.pause(a, "break")
        s = session(uid)
        await rejoin(s, context(tickets, AcdHandover(acd.voice, 30)))
        assert s.variables["TONGDAI_ACTION"] == "acd"
        assert s.variables["TONGDAI_TICKET"] == first.code
        assert s.variables["TONGDAI_QUEUE"] == "chung"
        call = acd.router.d.calls[uid]
        assert call.ticket == first.code and not call.in_ivr and call.state is C.WAITING
        assert call.entered_at == T0
    assert len(await tickets.list()) == 1
    got = await tickets.get(first.code)
    assert got is not None and got.ivr_path[-1].node == REJOIN_NODE
    assert got.ivr_path[-1].detail == FOUND


async def test_given_no_ticket_at_all_when_rejoining_then_one_is_opened_and_kept() -> None:
    """The caller arrived while the engine was down (AGISTATUS=FAILURE): a ticket now, in the
    general queue, stamped with the channel's creation time; asking again does not open a
    second one."""
    tickets = MemoryTicketStore()
    uid = "tongdai-1796680378.9"
    async with acd_with(FakeAmi(), tickets) as acd:
        for a in list(acd.router.d.agents):
            acd.router.pause(a, "break")
        ctx = context(tickets, AcdHandover(acd.voice, 30))
        s = session(uid)
        await rejoin(s, ctx)
        code = s.variables["TONGDAI_TICKET"]
        again = session(uid, {"TONGDAI_TICKET": code})
        await rejoin(again, ctx)  # the loop asked twice (e.g. its AGI was cut): same call
        assert again.variables["TONGDAI_ACTION"] == "acd"
        assert list(acd.router.d.calls) == [uid]
    [t] = await tickets.list()
    assert t.code == code and t.uniqueid == uid and t.caller == "0905000111"
    assert t.started_at == datetime.fromtimestamp(T0, UTC)
    assert [(st.node, st.detail) for st in t.ivr_path] == [(REJOIN_NODE, OPENED)]


async def test_callers_rejoining_in_any_order_are_served_in_the_order_they_called() -> None:
    tickets = MemoryTicketStore()
    async with acd_with(FakeAmi(), tickets) as acd:
        d = acd.router.d
        for a in list(d.agents):
            acd.router.pause(a, "break")
        ctx = context(tickets, AcdHandover(acd.voice, 30))
        for uid in ["tongdai-1796680390.5", "tongdai-1796680380.2", "tongdai-1796680385.3"]:
            await rejoin(session(uid), ctx)
        assert [c.uniqueid for c in d.lines.merged()] == [
            "tongdai-1796680380.2",
            "tongdai-1796680385.3",
            "tongdai-1796680390.5",
        ]


async def test_before_the_distribution_is_back_a_rejoining_caller_is_asked_to_try_again() -> None:
    """A restarted engine serves FastAGI before it has read its stored calls back: the caller
    gets their ticket now but no place yet (no action: the dialplan asks again); once the
    distribution has started, the restored call is the one they join, counted once."""
    tickets = MemoryTicketStore()
    store = MemoryStore()
    uid = "tongdai-1796680378.5"
    first = AcdService.build(CFG, FakeAmi(), tickets, store=store, tick_s=0.05)
    await first.start(login_all=True)
    assert first.voice.enqueue(uid, "PJSIP/anon-5", "chung", "090", None)
    first.router.flush()
    assert first.persister is not None
    merge_dirty(first.persister.pending, first.router.d.take_dirty())
    await persist(store, first.persister.pending)
    ami = FakeAmi()
    ami.lists["CoreShowChannels"] = [
        FakeEvent("CoreShowChannel", Uniqueid=uid, Channel="PJSIP/anon-5",
                  Context="tongdai-rejoin", Duration="00:00:09"),
    ]  # fmt: skip
    second = AcdService.build(CFG, ami, tickets, store=store, tick_s=0.05)
    ctx = context(tickets, AcdHandover(second.voice, 30))
    s = session(uid)
    await rejoin(s, ctx)
    assert "TONGDAI_ACTION" not in s.variables and s.variables["TONGDAI_TICKET"]
    assert second.router.d.calls == {}
    await second.start(login_all=True)
    again = session(uid, {"TONGDAI_TICKET": s.variables["TONGDAI_TICKET"]})
    await rejoin(again, ctx)
    assert again.variables["TONGDAI_ACTION"] == "acd"
    assert list(second.router.d.calls) == [uid] and second.router.d.active_calls() == 1


class FullHandover(AppQueueHandover):
    def rejoin(self, caller: QueuedCaller, queue: str) -> bool:
        return False


async def test_when_the_system_is_full_a_rejoining_caller_goes_to_app_queue() -> None:
    tickets = MemoryTicketStore()
    s = session("tongdai-1796680378.1", {"TONGDAI_QUEUE": "thu_tuc"})
    await rejoin(s, context(tickets, FullHandover()))
    assert s.variables["TONGDAI_ACTION"] == "queue"
    assert s.variables["TONGDAI_QUEUE"] == "chung"
    assert len(await tickets.list()) == 1  # still one ticket: the tracker completes it


async def test_with_app_queue_a_rejoining_caller_is_queued_in_the_queue_they_chose() -> None:
    tickets = MemoryTicketStore()
    queued: list[tuple[str, str]] = []
    s = session("tongdai-1796680378.4", {"TONGDAI_QUEUE": "thu_tuc", "TONGDAI_TICKET": "T-1"})
    await rejoin(s, context(tickets, AppQueueHandover(lambda u, t: queued.append((u, t)))))
    assert s.variables["TONGDAI_ACTION"] == "queue" and s.variables["TONGDAI_QUEUE"] == "thu_tuc"
    assert queued == [("tongdai-1796680378.4", "T-1")]


# -- calls answered while no engine listened ---------------------------------------------------


def bridged(caller_uid: str, agent: str, agent_uid: str) -> list[FakeEvent]:
    return [
        FakeEvent("CoreShowChannel", Uniqueid=caller_uid, Channel="PJSIP/anon-00000001",
                  Context="tongdai-acd-dial", BridgeId="b-1", Duration="00:00:20"),
        FakeEvent("CoreShowChannel", Uniqueid=agent_uid, Channel=f"PJSIP/{agent}-00000002",
                  Context="tongdai-acd-dial", BridgeId="b-1", Duration="00:00:05"),
    ]  # fmt: skip


async def test_a_call_answered_while_the_engine_was_down_is_resumed_connected_and_ends() -> None:
    """Stored as offered (the Dial's ANSWER went to the dead engine), the caller now bridged
    with agent102: connected to agent102, not back in line, not rung again; the agent's
    hang-up ends it and the ticket says answered, by agent102."""
    tickets = MemoryTicketStore()
    uid = "tongdai-1796680378.2"
    now = datetime.now(UTC)
    code = (await tickets.open(channel="voice", caller="090", uniqueid=uid, started_at=now)).code
    ami = FakeAmi()
    async with acd_with(ami, tickets) as acd:
        d = acd.router.d
        for a in list(d.agents):
            if a != "agent102":
                acd.router.pause(a, "break")
        assert acd.voice.enqueue(uid, "PJSIP/anon-00000001", "chung", "090", code)
        acd.voice.ivr_done(uid)
        await until(lambda: d.calls[uid].state is C.OFFERED)
        stored_calls = list(d.calls.values())
        stored_agents = {a.id: a.snapshot() for a in d.agents.values()}
    ami2 = FakeAmi()
    ami2.lists["CoreShowChannels"] = bridged(uid, "agent102", "tongdai-1796680379.3")
    store = MemoryStore()
    await store.save_calls(stored_calls)
    await store.save_agents(stored_agents)
    acd2 = AcdService.build(CFG, ami2, tickets, store=store, tick_s=0.05)
    await acd2.start(login_all=True)
    task = asyncio.create_task(acd2.run(ami2.stream()))
    try:
        d2 = acd2.router.d
        assert d2.calls[uid].state is C.CONNECTED
        assert d2.calls[uid].offered_to == "agent102"
        assert d2.agents["agent102"].state is A.ON_CALL
        assert uid not in [c.uniqueid for c in d2.lines.merged()]
        acd2.router.assign_now()  # a round: nobody is rung for this call
        assert not any(a.state is A.RINGING for a in d2.agents.values())
        assert d2.calls[uid].state is C.CONNECTED and ami2.originates() == []
        await ami2.events.put(FakeEvent("Hangup", Uniqueid="tongdai-1796680379.3"))
        await until(lambda: uid not in d2.calls)
        await acd2.recorder.settled()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    t = await tickets.get(code)
    assert t is not None and t.outcome == Outcome.ANSWERED and t.agent == "agent102"


async def test_a_bridged_caller_in_the_wait_loop_is_not_taken_back_as_waiting() -> None:
    """Bridge() pulled the caller out of the music, so Asterisk still names the wait loop as
    their place; a restarted engine that does not hold them must not offer them again."""
    ami = FakeAmi()
    ami.lists["CoreShowChannels"] = [
        FakeEvent("CoreShowChannel", Uniqueid="tongdai-1.1", Channel="PJSIP/anon-1",
                  Context="tongdai-acd-wait", BridgeId="b-9", Duration="00:00:30"),
        FakeEvent("CoreShowChannel", Uniqueid="tongdai-1.2", Channel="PJSIP/anon-2",
                  Context="tongdai-acd-wait", Duration="00:00:20"),
    ]  # fmt: skip
    async with acd_with(ami, MemoryTicketStore()) as acd:
        assert list(acd.router.d.calls) == ["tongdai-1.2"]


class VarAmi(FakeAmi):
    """A fake AMI that also answers ``Getvar`` from ``variables`` ((channel, name) -> value)."""

    def __init__(self, variables: dict[tuple[str, str], str]) -> None:
        super().__init__()
        self.variables = variables

    async def action(self, name: str, /, **headers: Any) -> FakeEvent:
        reply = await super().action(name, **headers)
        value = self.variables.get((headers.get("Channel", ""), headers.get("Variable", "")))
        if name == "Getvar" and value is not None:
            reply["Value"] = value
        return reply


async def test_a_restart_takes_back_rejoining_callers_with_a_ticket_in_arrival_order() -> None:
    """Callers the dead engine had sent to ``[tongdai-rejoin]`` are taken back at the start,
    with those in the music loop, by how long they have been there; one with no ticket yet is
    left to its rejoin AGI (which opens the ticket before taking it in)."""
    ami = VarAmi({
        ("PJSIP/anon-1", "TONGDAI_TICKET"): "T-1",
        ("PJSIP/anon-3", "TONGDAI_TICKET"): "T-3",
    })  # fmt: skip
    ami.lists["CoreShowChannels"] = [
        FakeEvent("CoreShowChannel", Uniqueid="tongdai-9.3", Channel="PJSIP/anon-3",
                  Context="tongdai-acd-wait", Duration="00:00:10"),
        FakeEvent("CoreShowChannel", Uniqueid="tongdai-9.1", Channel="PJSIP/anon-1",
                  Context="tongdai-rejoin", Duration="00:00:30"),
        FakeEvent("CoreShowChannel", Uniqueid="tongdai-9.2", Channel="PJSIP/anon-2",
                  Context="tongdai-rejoin", Duration="00:00:20"),
    ]  # fmt: skip
    async with acd_with(ami, MemoryTicketStore()) as acd:
        d = acd.router.d
        assert [c.uniqueid for c in d.lines.merged()] == ["tongdai-9.1", "tongdai-9.3"]
        assert [d.calls[u].ticket for u in ("tongdai-9.1", "tongdai-9.3")] == ["T-1", "T-3"]
