"""The ACD's voice adapter against a fake AMI: what it sends, how events move calls and agents,
what reaches the tickets and the queue_log (through the router and the recorder)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from acd.agent import AgentState
from acd.calls import CallState
from acd.config import AcdConfig, load_acd
from acd.queue_log import QueueLogWriter
from acd.service import AcdService
from pbx.fake import FakeAmi, FakeEvent
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome
from tongdai.settings import PROJECT_HOME

C, A = CallState, AgentState
E2E = PROJECT_HOME / "tests/e2e/acd_e2e.toml"
Rig = tuple[AcdService, FakeAmi, MemoryTicketStore]


@contextlib.asynccontextmanager
async def running(
    cfg: AcdConfig,
    clock: Any,
    *,
    qlog: Path | None = None,
    callbacks: bool = True,
    tick_s: float = 0.02,
) -> AsyncIterator[Rig]:
    """The engine's ACD on a fake AMI, started (every agent logged in) and running."""
    ami, tickets = FakeAmi(), MemoryTicketStore()
    queue_log = QueueLogWriter(qlog, cfg) if qlog is not None else None
    acd = AcdService.build(cfg, ami, tickets, queue_log=queue_log, clock=clock, tick_s=tick_s)
    if callbacks:
        acd.voice.enable_callbacks("PJSIP/{number}@citizens", "/snd/goi_lai_chao")
    await acd.start(login_all=True)
    task = asyncio.create_task(acd.run(ami.stream()))
    try:
        yield acd, ami, tickets
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = {"t": 1000.0}
    async with running(
        load_acd(E2E), lambda: clock["t"], qlog=tmp_path / "queue_log", tick_s=0.05
    ) as r:
        yield r


async def until(cond: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_given_a_free_agent_when_a_caller_enters_then_the_agent_is_originated_and_bridged(
    rig: Rig,
) -> None:
    acd, ami, tickets = rig
    d = acd.router.d
    t = await tickets.open(channel="voice", caller="0905", uniqueid="c1", started_at=_now())
    assert acd.voice.enqueue("c1", "PJSIP/anonymous-01", "chung", "0905", t.code)
    acd.voice.ivr_done("c1")
    await until(lambda: ami.originates())
    o = ami.originates()[0]
    assert o["Context"] == "tongdai-acd-connect" and o["Channel"].startswith("PJSIP/agent")
    assert "TONGDAI_CALLER_CHAN=PJSIP/anonymous-01" in o["Variable"]
    await ami.events.put(
        FakeEvent("OriginateResponse", Response="Success", Uniqueid=o["ChannelId"])
    )
    await until(lambda: d.calls["c1"].state is C.CONNECTED)
    await ami.events.put(FakeEvent("Hangup", Uniqueid=o["ChannelId"]))  # the agent hangs up
    await ami.events.put(FakeEvent("Hangup", Uniqueid="c1"))  # then the caller (after the survey)
    await until(lambda: "c1" not in acd.voice.legs)
    await acd.recorder.settled()
    got = await tickets.get(t.code)
    assert got is not None
    assert (got.outcome, got.agent) == (Outcome.ANSWERED, o["Channel"].split("/")[1])
    assert got.ended_at is not None


async def test_given_no_answer_then_the_call_keeps_its_place_and_another_agent_is_tried(
    rig: Rig,
) -> None:
    acd, ami, _ = rig
    d = acd.router.d
    assert acd.voice.enqueue("c2", "PJSIP/anonymous-02", "chung", "0906", None)
    acd.voice.ivr_done("c2")
    await until(lambda: len(ami.originates()) == 1)
    first = ami.originates()[0]
    await ami.events.put(
        FakeEvent("OriginateResponse", Response="Failure", Uniqueid=first["ChannelId"])
    )
    await until(lambda: len(ami.originates()) == 2)
    second = ami.originates()[1]
    assert second["Channel"] != first["Channel"]  # ring-no-answer: someone else is tried
    assert d.position("c2") == 1


async def test_given_a_caller_hanging_up_while_an_agent_rings_then_the_ringing_leg_is_hung_up(
    rig: Rig,
) -> None:
    acd, ami, tickets = rig
    t = await tickets.open(channel="voice", caller="0907", uniqueid="c3", started_at=_now())
    assert acd.voice.enqueue("c3", "PJSIP/anonymous-03", "chung", "0907", t.code)
    acd.voice.ivr_done("c3")
    await until(lambda: ami.originates())
    leg = ami.originates()[0]["ChannelId"]
    await ami.events.put(FakeEvent("Newchannel", Uniqueid=leg, Channel="PJSIP/agent101-0000001"))
    await ami.events.put(FakeEvent("Hangup", Uniqueid="c3"))
    await until(lambda: any(n == "Hangup" for n, _ in ami.actions))
    assert ("Hangup", {"Channel": "PJSIP/agent101-0000001", "Cause": "16"}) in ami.actions
    await acd.recorder.settled()
    got = await tickets.get(t.code)
    assert got is not None and got.outcome == Outcome.ABANDONED_QUEUE


async def test_agent_commands_arrive_as_user_events_and_busy_devices_are_skipped(
    rig: Rig,
) -> None:
    acd, ami, _ = rig
    d = acd.router.d
    for a in ("agent101", "agent102", "agent103", "agent104"):
        await ami.events.put(FakeEvent("UserEvent", UserEvent="TongdaiAgent", Agent=a, Op="pause"))
    await ami.events.put(FakeEvent("DeviceStateChange", Device="PJSIP/agent105", State="INUSE"))
    await until(lambda: d.agents["agent104"].state is A.PAUSED)
    assert acd.voice.enqueue("c4", "PJSIP/anonymous-04", "chung", "0908", None)
    acd.voice.ivr_done("c4")
    await asyncio.sleep(0.3)
    assert ami.originates() == []  # everyone paused, agent105's phone is in use
    await ami.events.put(FakeEvent("DeviceStateChange", Device="PJSIP/agent105", State="NOT_INUSE"))
    await until(lambda: ami.originates())
    assert ami.originates()[0]["Channel"] == "PJSIP/agent105"


async def test_past_capacity_enqueue_refuses(
    rig: Rig,
) -> None:
    acd, _, _ = rig
    d = acd.router.d
    for a in list(d.agents):
        acd.router.pause(a, "break")
    accepted = [acd.voice.enqueue(f"k{i}", f"PJSIP/x-{i}", "chung", "09", None) for i in range(7)]
    assert accepted == [True] * d.cfg.max_calls + [False] * (7 - d.cfg.max_calls)


async def test_a_callback_dials_the_citizen_then_rings_the_reserved_agent(
    rig: Rig,
) -> None:
    acd, ami, _ = rig
    d = acd.router.d
    for a in list(d.agents):
        acd.router.pause(a, "break")
    assert acd.voice.enqueue("c5", "PJSIP/anonymous-05", "chung", "0905111222", None)
    acd.voice.ivr_done("c5")
    d.calls["c5"].entered_at -= 60  # waited long enough to be offered a callback
    assert d.may_offer_callback("c5")
    acd.voice.request_callback("c5")
    await ami.events.put(FakeEvent("Hangup", Uniqueid="c5"))  # the caller hangs up, keeps the place
    await asyncio.sleep(0.1)
    assert d.calls["c5"].state is C.CALLBACK_WAITING
    acd.router.unpause("agent103")
    acd.router.flush()
    await until(lambda: ami.originates())
    dial = ami.originates()[0]
    assert dial["Channel"] == "PJSIP/0905111222@citizens" and dial["Context"] == "tongdai-callback"
    await ami.events.put(
        FakeEvent("OriginateResponse", Response="Success", Uniqueid=dial["ChannelId"],
           Channel="PJSIP/citizens-0009")
    )  # fmt: skip
    await until(lambda: len(ami.originates()) == 2)
    ring = ami.originates()[1]
    assert ring["Channel"] == "PJSIP/agent103"
    assert "TONGDAI_CALLER_CHAN=PJSIP/citizens-0009" in ring["Variable"]
    # the citizen's leg stands for the call: its hang-up ends it
    await ami.events.put(
        FakeEvent("OriginateResponse", Response="Success", Uniqueid=ring["ChannelId"])
    )
    await until(lambda: d.calls["c5"].state is C.CONNECTED)
    await ami.events.put(FakeEvent("Hangup", Uniqueid=dial["ChannelId"]))
    await until(lambda: "c5" not in d.calls)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# -- direct dial: the caller's own channel dials a free agent (no Originate) --------------------


async def test_given_a_free_agent_when_the_ivr_hands_over_then_the_caller_dials_it_directly(
    rig: Rig,
) -> None:
    acd, ami, tickets = rig
    d = acd.router.d
    t = await tickets.open(channel="voice", caller="0911", uniqueid="d1", started_at=_now())
    assert acd.voice.enqueue("d1", "PJSIP/anonymous-11", "chung", "0911", t.code)
    direct = acd.voice.dial_now("d1")
    assert direct is not None and direct.endpoint.startswith("PJSIP/agent")
    assert direct.dial_args == f"{direct.endpoint},{direct.ring_timeout_s}"
    assert d.calls["d1"].state is C.OFFERED
    assert d.calls["d1"].offered_to == direct.agent_id
    await asyncio.sleep(0.2)  # the assigner and the pending _ring() must stand down
    assert ami.originates() == []
    leg_chan = f"{direct.endpoint}-00000009"
    await ami.events.put(
        FakeEvent("DialBegin", Uniqueid="d1", DestUniqueid="a9", DestChannel=leg_chan)
    )
    await ami.events.put(
        FakeEvent("DialEnd", Uniqueid="d1", DestUniqueid="a9", DialStatus="ANSWER")
    )
    await until(lambda: d.calls["d1"].state is C.CONNECTED)
    await ami.events.put(FakeEvent("Hangup", Uniqueid="a9"))  # the agent hangs up first
    await until(lambda: "d1" not in d.calls)
    await ami.events.put(FakeEvent("Hangup", Uniqueid="d1"))
    await until(lambda: "d1" not in acd.voice.legs)
    await acd.recorder.settled()
    got = await tickets.get(t.code)
    assert got is not None
    assert (got.outcome, got.agent) == (Outcome.ANSWERED, direct.agent_id)
    assert d.agents[direct.agent_id].calls_today == 1


async def test_given_a_direct_dial_not_answered_then_the_call_keeps_its_place_and_is_originated(
    rig: Rig,
) -> None:
    acd, ami, _ = rig
    d = acd.router.d
    assert acd.voice.enqueue("d2", "PJSIP/anonymous-12", "chung", "0912", None)
    direct = acd.voice.dial_now("d2")
    assert direct is not None
    await ami.events.put(FakeEvent("DialBegin", Uniqueid="d2", DestUniqueid="a2", DestChannel="x"))
    await ami.events.put(
        FakeEvent("DialEnd", Uniqueid="d2", DestUniqueid="a2", DialStatus="NOANSWER")
    )
    await until(lambda: len(ami.originates()) == 1)  # back in line: the next agent, by AMI
    assert ami.originates()[0]["Channel"] != direct.endpoint
    assert d.agents[direct.agent_id].misses == 1


async def test_given_the_caller_hangs_up_while_the_direct_dial_rings_then_abandon_no_blame(
    rig: Rig,
) -> None:
    acd, ami, tickets = rig
    d = acd.router.d
    t = await tickets.open(channel="voice", caller="0913", uniqueid="d3", started_at=_now())
    assert acd.voice.enqueue("d3", "PJSIP/anonymous-13", "chung", "0913", t.code)
    direct = acd.voice.dial_now("d3")
    assert direct is not None
    await ami.events.put(FakeEvent("DialBegin", Uniqueid="d3", DestUniqueid="a3", DestChannel="x"))
    await ami.events.put(
        FakeEvent("DialEnd", Uniqueid="d3", DestUniqueid="a3", DialStatus="CANCEL")
    )
    await ami.events.put(FakeEvent("Hangup", Uniqueid="d3"))
    await until(lambda: "d3" not in acd.voice.legs)
    await acd.recorder.settled()
    got = await tickets.get(t.code)
    assert got is not None and got.outcome == Outcome.ABANDONED_QUEUE
    agent = d.agents[direct.agent_id]
    assert agent.misses == 0 and agent.state is A.AVAILABLE
    assert ami.originates() == []


async def test_given_no_free_agent_then_dial_now_says_wait_and_later_an_originate_rings(
    rig: Rig,
) -> None:
    acd, ami, _ = rig
    d = acd.router.d
    for a in d.agents:
        acd.router.pause(a, "break")
    assert acd.voice.enqueue("d4", "PJSIP/anonymous-14", "chung", "0914", None)
    assert acd.voice.dial_now("d4") is None
    assert acd.voice.dial_now("d4") is None  # a second hand-over changes nothing
    acd.router.unpause("agent103")
    acd.router.flush()
    await until(lambda: len(ami.originates()) == 1)
    assert ami.originates()[0]["Channel"] == "PJSIP/agent103"


async def test_no_agent_is_reserved_while_the_ivr_still_speaks_to_the_caller(
    rig: Rig,
) -> None:
    acd, ami, _ = rig
    d = acd.router.d
    assert acd.voice.enqueue("v1", "PJSIP/anonymous-21", "chung", "0921", None)
    await asyncio.sleep(0.2)  # several ticks: the transfer prompt is still playing
    assert ami.originates() == []
    assert all(a.state is A.AVAILABLE for a in d.agents.values())
    assert d.position("v1") == 1  # but the place in line is held
    acd.voice.ivr_done("v1")
    await until(lambda: len(ami.originates()) == 1)


async def test_after_call_work_seconds_reach_the_ticket_when_wrap_up_ends(tmp_path: Path) -> None:
    cfg = load_acd(PROJECT_HOME / "tests/e2e/acd_e2e.toml")  # du_lich: wrapup_s = 6
    now = {"t": 1000.0}
    async with running(cfg, lambda: now["t"], callbacks=False) as (acd, ami, tickets):
        d = acd.router.d
        t = await tickets.open(channel="voice", caller="0931", uniqueid="w1", started_at=_now())
        assert acd.voice.enqueue("w1", "PJSIP/anonymous-31", "du_lich", "0931", t.code)
        direct = acd.voice.dial_now("w1")
        assert direct is not None and direct.agent_id == "agent105"
        await ami.events.put(
            FakeEvent("DialBegin", Uniqueid="w1", DestUniqueid="a1", DestChannel="x")
        )
        await ami.events.put(
            FakeEvent("DialEnd", Uniqueid="w1", DestUniqueid="a1", DialStatus="ANSWER")
        )
        await until(lambda: d.calls["w1"].state is C.CONNECTED)
        now["t"] = 1100.0
        await ami.events.put(FakeEvent("Hangup", Uniqueid="a1"))  # the agent hangs up: wrap-up
        await until(lambda: d.agents["agent105"].state is A.WRAP_UP)
        now["t"] = 1104.0  # the agent is back early? no: wrap-up lasts 6 s
        await asyncio.sleep(0.1)
        assert d.agents["agent105"].state is A.WRAP_UP
        now["t"] = 1106.5
        await until(lambda: d.agents["agent105"].state is A.AVAILABLE)
        await acd.recorder.settled()
        got = await tickets.get(t.code)
        assert got is not None and got.acw_seconds == 6


async def test_a_queue_without_wrap_up_writes_zero_after_call_work(
    rig: Rig,
) -> None:
    acd, ami, tickets = rig
    d = acd.router.d
    t = await tickets.open(channel="voice", caller="0932", uniqueid="w2", started_at=_now())
    assert acd.voice.enqueue("w2", "PJSIP/anonymous-32", "chung", "0932", t.code)
    assert acd.voice.dial_now("w2") is not None
    await ami.events.put(FakeEvent("DialBegin", Uniqueid="w2", DestUniqueid="a2", DestChannel="x"))
    await ami.events.put(
        FakeEvent("DialEnd", Uniqueid="w2", DestUniqueid="a2", DialStatus="ANSWER")
    )
    await until(lambda: d.calls["w2"].state is C.CONNECTED)
    await ami.events.put(FakeEvent("Hangup", Uniqueid="w2"))  # the caller hangs up
    await until(lambda: "w2" not in acd.voice.legs)
    await acd.recorder.settled()
    got = await tickets.get(t.code)
    assert got is not None and got.acw_seconds == 0 and got.outcome == Outcome.ANSWERED


async def test_an_agent_first_callback_rings_the_agent_then_dials_the_citizen(
    tmp_path: Path,
) -> None:
    text = (PROJECT_HOME / "tests/e2e/acd_e2e.toml").read_text(encoding="utf-8")
    conf = tmp_path / "acd.toml"
    conf.write_text(text.replace('mode = "caller_first"', 'mode = "agent_first"'), "utf-8")
    cfg = load_acd(conf)
    assert cfg.callback.mode == "agent_first"
    async with running(cfg, lambda: 1000.0) as (acd, ami, tickets):
        d = acd.router.d
        t = await tickets.open(channel="voice", caller="0941", uniqueid="g1", started_at=_now())
        for a in list(d.agents):
            acd.router.pause(a, "break")
        assert acd.voice.enqueue("g1", "PJSIP/anonymous-41", "chung", "0941000111", t.code)
        acd.voice.ivr_done("g1")
        d.calls["g1"].entered_at -= 60
        acd.voice.request_callback("g1")
        await ami.events.put(FakeEvent("Hangup", Uniqueid="g1"))
        await until(lambda: d.calls["g1"].state is C.CALLBACK_WAITING)
        acd.router.unpause("agent104")
        acd.router.flush()
        await until(lambda: ami.originates())
        o = ami.originates()[0]
        assert (o["Channel"], o["Context"]) == ("PJSIP/agent104", "tongdai-callback-agent")
        assert "TONGDAI_CITIZEN=PJSIP/0941000111@citizens" in o["Variable"]
        agent_leg = o["ChannelId"]
        await ami.events.put(FakeEvent("OriginateResponse", Response="Success", Uniqueid=agent_leg))
        await until(lambda: d.calls["g1"].state is C.CALLBACK_DIALING)
        await ami.events.put(
            FakeEvent(
                "DialBegin", Uniqueid=agent_leg, DestUniqueid="cit1", DestChannel="PJSIP/cit-1"
            )
        )
        await ami.events.put(
            FakeEvent("DialEnd", Uniqueid=agent_leg, DestUniqueid="cit1", DialStatus="ANSWER")
        )
        await until(lambda: d.calls["g1"].state is C.CONNECTED)
        await ami.events.put(FakeEvent("Hangup", Uniqueid="cit1"))  # the citizen hangs up
        await until(lambda: "g1" not in d.calls)
        await acd.recorder.settled()
        got = await tickets.get(t.code)
        assert got is not None and (got.outcome, got.agent) == (Outcome.ANSWERED, "agent104")


async def test_an_agent_first_callback_the_citizen_misses_is_retried_later(
    tmp_path: Path,
) -> None:
    text = (PROJECT_HOME / "tests/e2e/acd_e2e.toml").read_text(encoding="utf-8")
    conf = tmp_path / "acd.toml"
    conf.write_text(text.replace('mode = "caller_first"', 'mode = "agent_first"'), "utf-8")
    async with running(load_acd(conf), lambda: 1000.0) as (acd, ami, _):
        d = acd.router.d
        for a in list(d.agents):
            acd.router.pause(a, "break")
        assert acd.voice.enqueue("g2", "PJSIP/anonymous-42", "chung", "0942", None)
        acd.voice.ivr_done("g2")
        d.calls["g2"].entered_at -= 60
        acd.voice.request_callback("g2")
        await ami.events.put(FakeEvent("Hangup", Uniqueid="g2"))
        await until(lambda: d.calls["g2"].state is C.CALLBACK_WAITING)
        acd.router.unpause("agent104")
        acd.router.flush()
        await until(lambda: ami.originates())
        leg = ami.originates()[0]["ChannelId"]
        await ami.events.put(FakeEvent("OriginateResponse", Response="Success", Uniqueid=leg))
        await until(lambda: d.calls["g2"].state is C.CALLBACK_DIALING)
        await ami.events.put(FakeEvent("DialEnd", Uniqueid=leg, DialStatus="NOANSWER"))
        await until(lambda: d.calls["g2"].state is C.CALLBACK_WAITING)
        assert d.calls["g2"].callback_attempts == 1
        assert d.agents["agent104"].state is A.AVAILABLE


async def test_who_hung_up_first_comes_from_hangup_request_not_from_the_hangup_order(
    tmp_path: Path,
) -> None:
    cfg = load_acd(PROJECT_HOME / "tests/e2e/acd_e2e.toml")
    qlog = tmp_path / "queue_log"
    async with running(cfg, lambda: 1000.0, qlog=qlog, callbacks=False) as (acd, ami, _):
        d = acd.router.d
        for uid, first in (("h1", "caller"), ("h2", "agent")):
            assert acd.voice.enqueue(uid, f"PJSIP/anonymous-{uid}", "chung", "0951", None)
            assert acd.voice.dial_now(uid) is not None
            leg = f"a-{uid}"
            await ami.events.put(
                FakeEvent("DialBegin", Uniqueid=uid, DestUniqueid=leg, DestChannel="x")
            )
            await ami.events.put(
                FakeEvent("DialEnd", Uniqueid=uid, DestUniqueid=leg, DialStatus="ANSWER")
            )
            await until(lambda uid=uid: d.calls[uid].state is C.CONNECTED)  # type: ignore[misc]
            gone = uid if first == "caller" else leg
            await ami.events.put(FakeEvent("HangupRequest", Uniqueid=gone))
            # Asterisk tears the agent's leg down first either way
            await ami.events.put(FakeEvent("Hangup", Uniqueid=leg))
            await ami.events.put(FakeEvent("Hangup", Uniqueid=uid))
            await until(lambda uid=uid: uid not in acd.voice.legs)  # type: ignore[misc]
    rows = [line.split("|") for line in qlog.read_text(encoding="utf-8").splitlines()]
    done = {r[1]: r[4] for r in rows if r[4].startswith("COMPLETE")}
    assert done == {"h1": "COMPLETECALLER", "h2": "COMPLETEAGENT"}
