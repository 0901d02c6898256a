"""The ACD's live state in a store (``acd.state_store``): what a restarted engine gets back.
Two ACDs (``acd.service.AcdService``) in turn share one store, as two engine processes share
Redis; AMI is a fake that shows which caller channels are still up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acd.agent import AgentState
from acd.calls import CallState
from acd.config import load_acd
from acd.dispatch import Dispatcher
from acd.memory_store import MemoryStore
from acd.persistence import merge_dirty
from acd.queue_log import QueueLogWriter
from acd.service import AcdService
from acd.store import Dirty, StateStore
from pbx.fake import FakeAmi, FakeEvent
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

CFG = load_acd(PROJECT_HOME / "tests/e2e/acd_e2e.toml")
C, A = CallState, AgentState


def FakeAmiWith(channels: Mapping[str, str]) -> FakeAmi:
    """A fake AMI whose ``CoreShowChannels`` lists ``channels`` (uniqueid -> channel name) in
    the ACD's wait loop, as resync sees them after a restart."""
    ami = FakeAmi()
    ami.lists["CoreShowChannels"] = [
        FakeEvent("CoreShowChannel", Uniqueid=u, Channel=c, Context="tongdai-acd-wait",
                  Duration="00:00:10")
        for u, c in channels.items()
    ]  # fmt: skip
    return ami


@contextlib.asynccontextmanager
async def engine(
    store: StateStore, ami: FakeAmi, tickets: MemoryTicketStore, qlog: Path
) -> AsyncIterator[AcdService]:
    acd = AcdService.build(
        CFG, ami, tickets, queue_log=QueueLogWriter(qlog, CFG), store=store, tick_s=0.05
    )
    await acd.start(login_all=True)
    task = asyncio.create_task(acd.run(ami.stream()))
    try:
        yield acd
        assert acd.persister is not None
        await until(lambda: acd.persister is not None and acd.persister.settled, timeout=5.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(cond: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_after_a_restart_waiting_calls_keep_their_order_and_gone_callers_are_abandoned(
    tmp_path: Path,
) -> None:
    store, tickets = MemoryStore(), MemoryTicketStore()
    now = datetime.now(UTC)
    codes = [
        (
            await tickets.open(channel="voice", caller=f"09{i}", uniqueid=f"w{i}", started_at=now)
        ).code
        for i in range(3)
    ]
    ami = FakeAmiWith({})
    async with engine(store, ami, tickets, tmp_path / "q1") as acd:
        for a in list(acd.router.d.agents):
            acd.router.pause(a, "training")
        for i in range(3):
            assert acd.voice.enqueue(f"w{i}", f"PJSIP/anon-{i}", "chung", f"09{i}", codes[i])
            acd.voice.ivr_done(f"w{i}")
        acd.router.flush()
    assert [c.uniqueid for c in await store.load_calls()] == ["w0", "w1", "w2"]
    # the engine is gone; w1 hangs up meanwhile; w0 and w2 are still in the music loop
    ami2 = FakeAmiWith({"w0": "PJSIP/anon-0", "w2": "PJSIP/anon-2"})
    async with engine(store, ami2, tickets, tmp_path / "q2") as acd2:
        d2 = acd2.router.d
        assert [c.uniqueid for c in d2.lines.merged()] == ["w0", "w2"]
        leg = acd2.voice.legs.get("w2")
        assert leg is not None and leg.caller_channel == "PJSIP/anon-2"
        assert all(a.state is A.PAUSED for a in d2.agents.values())
        assert d2.agents["agent101"].pause_reason == "training"
        await acd2.recorder.settled()
        gone = await tickets.get(codes[1])
        assert gone is not None and gone.outcome == Outcome.ABANDONED_QUEUE
        acd2.router.unpause("agent102")
        await until(lambda: any(n == "Originate" for n, _ in ami2.actions))
        o = next(h for n, h in ami2.actions if n == "Originate")
        assert "TONGDAI_CALLER_CHAN=PJSIP/anon-0" in o["Variable"]  # the first in line
    assert "ABANDON" in (tmp_path / "q2").read_text(encoding="utf-8")


async def test_a_callback_waiting_survives_a_restart(tmp_path: Path) -> None:
    store, tickets = MemoryStore(), MemoryTicketStore()
    ami = FakeAmiWith({})
    async with engine(store, ami, tickets, tmp_path / "q1") as acd:
        d = acd.router.d
        for a in list(d.agents):
            acd.router.pause(a, "break")
        assert acd.voice.enqueue("cb", "PJSIP/anon-9", "chung", "0905111222", None)
        acd.voice.ivr_done("cb")
        d.calls["cb"].entered_at -= 60
        acd.voice.request_callback("cb")
        await ami.events.put(FakeEvent("Hangup", Uniqueid="cb"))
        await until(lambda: d.calls["cb"].state is C.CALLBACK_WAITING)
    ami2 = FakeAmiWith({})  # the citizen has no channel: Asterisk alone could not know them
    async with engine(store, ami2, tickets, tmp_path / "q2") as acd2:
        d2 = acd2.router.d
        assert d2.calls["cb"].state is C.CALLBACK_WAITING
        assert d2.calls["cb"].callback_number == "0905111222"


class FlakyStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = 2

    async def save_calls(self, calls: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("redis save_calls: connection refused")
        await super().save_calls(calls)


async def test_a_failed_store_write_is_retried_with_nothing_lost(tmp_path: Path) -> None:
    store, tickets = FlakyStore(), MemoryTicketStore()
    ami = FakeAmiWith({})
    async with engine(store, ami, tickets, tmp_path / "q1") as acd:
        for a in list(acd.router.d.agents):
            acd.router.pause(a, "break")
        assert acd.voice.enqueue("f1", "PJSIP/anon-1", "chung", "091", None)
        acd.voice.ivr_done("f1")
        await until(lambda: store.fail == 0, timeout=5.0)
        assert acd.persister is not None
        await until(
            lambda: acd.persister is not None and acd.persister.pending == Dirty(), timeout=5.0
        )
    assert [c.uniqueid for c in await store.load_calls()] == ["f1"]


def test_merge_dirty_keeps_the_latest_and_deletes_ended_calls() -> None:
    d = Dispatcher(CFG, clock=time.time)
    a = d.call_arrived("a", "chung")
    b = d.call_arrived("b", "chung")
    assert a and b
    into = Dirty(calls=[d.calls["a"], d.calls["b"]])
    merge_dirty(into, Dirty(ended=["a"], rr={"chung": "agent101"}))
    assert [c.uniqueid for c in into.calls] == ["b"] and into.ended == ["a"]
    assert into.rr == {"chung": "agent101"}


@pytest.mark.parametrize("url", ["", "redis://127.0.0.1:6379/0"])
def test_state_store_setting_accepts_empty_or_redis(tmp_path: Path, url: str) -> None:
    from tongdai.settings import load_settings

    p = tmp_path / "t.toml"
    p.write_text(f'[acd]\nstate_store = "{url}"\n', encoding="utf-8")
    assert load_settings(p).acd.state_store == url


def test_state_store_setting_rejects_other_schemes(tmp_path: Path) -> None:
    from tongdai.errors import ConfigError
    from tongdai.settings import load_settings

    p = tmp_path / "t.toml"
    p.write_text('[acd]\nstate_store = "memcached://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"acd\.state_store"):
        load_settings(p)


async def test_a_caller_taken_in_while_resync_asks_asterisk_is_not_taken_in_twice(
    tmp_path: Path,
) -> None:
    """Measured on the real lab under load: a restarted engine's resync found w0 in the wait
    loop, and while it asked Asterisk for w0's variables w0 was taken in another way; enqueueing
    it again raised "already in the distribution" and the engine exited."""
    ami = FakeAmiWith({})
    async with engine(MemoryStore(), ami, MemoryTicketStore(), tmp_path / "q") as acd:
        voice = acd.voice
        ami.lists["CoreShowChannels"] = FakeAmiWith({"w0": "PJSIP/anon-0"}).lists[
            "CoreShowChannels"
        ]
        asked = voice._getvar

        async def getvar_meanwhile(channel: str, name: str) -> str | None:
            if "w0" not in voice.d.calls:
                assert voice.enqueue("w0", channel, "chung", "090", None)
            return await asked(channel, name)

        voice._getvar = getvar_meanwhile  # type: ignore[method-assign]
        await voice.resync()
        assert [c.uniqueid for c in voice.d.lines.merged()] == ["w0"]
