"""Engine failover pieces without Asterisk (docs/failover.md): the leader/standby role as
``/metrics`` and ``/api/health`` show it, the standby's hand-over to the leader through Redis
(``acd.arrivals``; needs Redis on 127.0.0.1:6379 like ``test_acd_store``), the settings and
the dialplan's second FastAGI address."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_acd_voice import E2E, running

from acd.arrivals import Arrival, RedisArrivals
from acd.config import load_acd
from acd.handover import AcdHandover
from acd.redis_store import FencedOut, RedisStore
from hotline.failover import AcdRole, done_marker, take_arrival
from hotline.metrics import Metrics
from ivr.handover import QueuedCaller
from lab import asterisk
from tongdai.errors import ConfigError, StoreError
from tongdai.health import Health
from tongdai.settings import (
    AmiSettings,
    FastAgiSettings,
    LabSettings,
    Settings,
    load_settings,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def store() -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(REDIS_URL, prefix=f"tongdai-test:{secrets.token_hex(6)}")
    try:
        await s.ping()
    except StoreError as exc:
        await s.close()
        pytest.fail(f"Redis at {REDIS_URL} is needed for these tests: {exc}")
    try:
        yield s
    finally:
        await s.clear()
        await s.close()


@contextlib.asynccontextmanager
async def writer(arrivals: RedisArrivals) -> AsyncIterator[None]:
    task = asyncio.create_task(arrivals.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(fact: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not fact():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def _arrival(uid: str, at: float) -> Arrival:
    return Arrival(uid, f"PJSIP/anonymous-{uid}", "chung", "0905", None, at)


# -- the role -----------------------------------------------------------------------------


def test_given_a_standby_when_it_leads_then_loses_the_lease_then_health_and_metrics_say_so() -> (
    None
):
    health, metrics = Health(), Metrics()
    role = AcdRole("engine-b", health, on_role=metrics.acd_role, clock=lambda: 50.0)
    assert health.to_json()["acd"] == {
        "role": "standby",
        "epoch": 0,
        "node": "engine-b",
        "since": 50.0,
    }
    assert b"tongdai_acd_leader 0.0" in metrics.render()

    role.changed(True, 7)
    assert role.leading and health.to_json()["acd"]["role"] == "leader"
    assert health.to_json()["acd"]["epoch"] == 7
    assert b"tongdai_acd_leader 1.0" in metrics.render()
    assert b"tongdai_acd_epoch 7.0" in metrics.render()
    assert not role.stepped_down.is_set()

    role.changed(False, 7)
    assert health.to_json()["acd"]["role"] == "standby"
    assert role.stepped_down.is_set()  # fail-stop: the engine stops, systemd restarts it


# -- arrivals in Redis ----------------------------------------------------------------------


async def test_given_arrivals_from_two_standbys_then_numbers_are_global_and_order_is_by_entry(
    store: RedisStore,
) -> None:
    other = RedisStore.from_url(REDIS_URL, prefix=store.key("x")[1:-3])
    try:
        a, b = RedisArrivals(store), RedisArrivals(other)
        assert await a.push(_arrival("late", 20.0)) == 1
        assert await b.push(_arrival("early", 10.0)) == 2
        pending = await a.pending()
    finally:
        await other.close()
    assert [(p.uniqueid, p.seq) for p in pending] == [("early", 2), ("late", 1)]
    assert pending[0] == Arrival("early", "PJSIP/anonymous-early", "chung", "0905", None, 10.0, 2)


async def test_given_an_arrival_when_the_leader_stores_the_call_then_it_is_dropped_not_before(
    store: RedisStore,
) -> None:
    arrivals = RedisArrivals(store)
    await arrivals.push(_arrival("c1", 10.0))
    assert await arrivals.state("c1") == "waiting"
    assert [p.uniqueid for p in await arrivals.pending()] == ["c1"]  # a leader died: again
    assert await arrivals.state("nobody") is None
    await store.client.hset(store.key("calls"), "c1", "{}")  # the leader stored it
    assert await arrivals.pending() == []
    assert not await store.client.hexists(store.key("arrivals"), "c1")
    assert await arrivals.state("c1") == "waiting"


async def test_given_the_writer_when_forwarding_and_marking_then_the_standby_reads_the_state(
    store: RedisStore,
) -> None:
    arrivals = RedisArrivals(store)
    async with writer(arrivals):
        arrivals.forward(_arrival("c1", 10.0))
        await until(lambda: arrivals._outbox.empty())
        assert await arrivals.state("c1") == "waiting"
        arrivals.mark_done("c1", "fallback")
        arrivals.drop("c1")
        await until(lambda: arrivals._outbox.empty())
        await asyncio.sleep(0)  # the last job runs after it left the queue
        async with asyncio.timeout(5):
            while await arrivals.state("c1") != "fallback":
                await asyncio.sleep(0.02)


async def test_given_a_leader_when_a_standby_forwards_callers_then_they_are_in_line_in_order(
    store: RedisStore,
) -> None:
    clock = {"t": 1000.0}
    async with running(load_acd(E2E), lambda: clock["t"]) as (acd, _ami, _tickets):
        for a in list(acd.router.agents()):
            acd.router.pause(a.id, "break")
        arrivals = RedisArrivals(store, poll_s=0.05)
        follow = asyncio.create_task(arrivals.follow(lambda a: take_arrival(acd, arrivals, a)))
        try:
            await arrivals.push(_arrival("s2", 998.0))
            await arrivals.push(_arrival("s1", 990.0))
            await until(lambda: acd.voice.waiting("s1") and acd.voice.waiting("s2"))
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
        line = [c.uniqueid for c in acd.router.lines()["chung"]]
        assert line.index("s1") < line.index("s2")  # by the time they entered, not arrived
        assert acd.voice.legs.calls["s1"].caller_channel == "PJSIP/anonymous-s1"
        assert not acd.router.d.calls["s1"].in_ivr  # offered as soon as an agent is free


async def test_given_completed_and_timed_out_calls_then_the_leader_marks_them_for_a_standby(
    store: RedisStore,
) -> None:
    from acd.calls import CallOutcome, CallState, CallTransition

    arrivals = RedisArrivals(store)
    on_event = done_marker(arrivals)
    done = CallTransition("c1", "complete", CallState.CONNECTED, CallState.ENDED, 1.0, "chung")
    gone = CallTransition(
        "c2", "timeout", CallState.WAITING, CallState.ENDED, 1.0, "chung",
        outcome=CallOutcome.TIMEOUT_QUEUE,
    )  # fmt: skip
    on_event(done)
    on_event(gone)
    async with writer(arrivals):
        async with asyncio.timeout(5):
            while await arrivals.state("c2") is None:
                await asyncio.sleep(0.02)
    assert await arrivals.state("c1") == "survey"
    assert await arrivals.state("c2") == "timeout"


# -- the standby's hand-over ------------------------------------------------------------------


async def test_given_a_standby_when_the_ivr_hands_a_caller_over_then_it_goes_to_the_leader() -> (
    None
):
    clock = {"t": 1000.0}
    async with running(load_acd(E2E), lambda: clock["t"]) as (acd, _ami, _tickets):
        forwarded: list[Arrival] = []
        leading = {"now": False}
        h = AcdHandover(
            acd.voice,
            30,
            leading=lambda: leading["now"],
            forward=forwarded.append,
            clock=lambda: 1234.0,
        )
        caller = QueuedCaller("c1", "PJSIP/anonymous-01", "0905", "T-1")
        assert h.admit(caller, "no-such-queue")
        assert not acd.voice.waiting("c1")  # not in this standby's own line
        assert h.hand_over(caller) is None  # to the music loop
        h.release("c1")
        assert forwarded == [Arrival("c1", "PJSIP/anonymous-01", "chung", "0905", "T-1", 1234.0)]

        gone = QueuedCaller("c2", "PJSIP/anonymous-02", "0906", "T-2")
        assert h.admit(gone, "chung")
        h.release("c2")  # hung up in the IVR: nothing reaches the leader
        assert len(forwarded) == 1

        leading["now"] = True
        assert h.admit(QueuedCaller("c3", "PJSIP/anonymous-03", "0907", None), "chung")
        assert acd.voice.waiting("c3")  # the leader's own line


# -- settings and the dialplan ------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "tongdai.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_given_failover_without_redis_then_the_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"acd\.failover"):
        _load(tmp_path, '[acd]\ndistribution = "engine"\nfailover = true\n')
    with pytest.raises(ConfigError, match=r"fastagi\.backup"):
        _load(tmp_path, '[fastagi]\nbackup = "engine-b"\n')
    ok = _load(
        tmp_path,
        '[acd]\ndistribution = "engine"\nfailover = true\nstate_store = "redis://r:6379/0"\n'
        '[fastagi]\nbackup = "10.0.0.2:4573"\n',
    )
    assert ok.acd.failover and ok.fastagi.backup == "10.0.0.2:4573"


def test_given_a_backup_engine_when_deployed_then_the_dialplan_tries_it_second(
    tmp_path: Path,
) -> None:
    def deployed(fastagi: FastAgiSettings, name: str) -> str:
        settings = Settings(
            lab=LabSettings(chroot=str(tmp_path / name), var_dir=str(tmp_path / "v")),
            ami=AmiSettings(secret_file=str(tmp_path / "v" / "s")),
            fastagi=fastagi,
        )
        return (asterisk.deploy_config(settings, mount=False) / "extensions.conf").read_text()

    two = deployed(FastAgiSettings(port=4600, backup="127.0.0.1:4650"), "two")
    assert "TONGDAI_AGI2=agi://127.0.0.1:4650\n" in two
    assert "AGI(agi://127.0.0.1:4600/ivr)" in two
    assert "AGI(${TONGDAI_AGI2}/ivr)" in two
    for script in ("acd_wait)", "acd_wait,${EXTEN})", "survey)"):
        assert f"AGI(${{TONGDAI_AGI2}}/{script}" in two
    one = deployed(FastAgiSettings(port=4600), "one")
    assert "TONGDAI_AGI2=agi://127.0.0.1:4600\n" in one  # no backup: the same engine again


# -- the leader's term, wired as the engine runs it ---------------------------------------------


async def test_given_a_standby_when_elected_then_it_restores_the_line_and_fences_its_writes(
    store: RedisStore,
) -> None:
    import time

    from acd.calls import QueuedCall
    from acd.service import AcdService
    from hotline.failover import lead_when_elected
    from pbx.fake import FakeAmi, FakeEvent
    from tickets.memory import MemoryTicketStore
    from tongdai.settings import AcdSettings

    prefix = store.key("x")[1:-3]
    entered = time.time() - 10
    await store.save_calls([QueuedCall("c1", "chung", 0, entered, 1, "0905")])  # the old leader's
    ami = FakeAmi()
    ami.lists["CoreShowChannels"] = [  # the caller still in the music loop, per Asterisk
        FakeEvent("CoreShowChannel", Uniqueid="c1", Channel="PJSIP/anonymous-01",
                  Context="tongdai-acd-wait", Duration="00:00:10")
    ]  # fmt: skip
    acd = AcdService.build(load_acd(E2E), ami, MemoryTicketStore(), store=store)  # type: ignore[arg-type]
    for a in list(acd.router.agents()):  # nobody free: the caller stays in line
        acd.router.d.agent_login(a.id)
        acd.router.d.agent_pause(a.id, "break")
    settings = Settings(
        acd=AcdSettings(
            distribution="engine", state_store=REDIS_URL, state_prefix=prefix, failover=True
        )
    )
    role = AcdRole("node-x", Health())
    term = asyncio.create_task(lead_when_elected(settings, ami, acd, role))  # type: ignore[arg-type]
    try:
        await until(lambda: (role.leading and acd.voice.waiting("c1")) or term.done())
        assert not term.done()
        assert store.epoch == role.epoch >= 1
        assert await store.client.get(store.key("leader")) == "node-x"
        assert acd.voice.legs.calls["c1"].caller_channel == "PJSIP/anonymous-01"
        # a newer term elsewhere: this node's writes are refused from now on
        await store.client.incr(store.key("leader:epoch"))
        with pytest.raises(FencedOut):
            await store.save_rr({"chung": "agent101"})
    finally:
        term.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await term
    assert await store.client.get(store.key("leader")) is None  # released on the way out
