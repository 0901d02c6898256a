"""The ACD's live state in a store (``acd.state_store``): what a restarted engine gets back.
Two Distributors in turn share one store, as two engine processes share Redis; AMI is a fake
that shows which caller channels are still up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acd.config import load_acd
from acd.dispatch import Dispatcher
from acd.distributor import Distributor, merge_dirty
from acd.memory_store import MemoryStore
from acd.queue_log import QueueLogWriter
from acd.store import Dirty, StateStore
from pbx.fake import FakeAmi, FakeEvent
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome
from tongdai.errors import StoreError
from tongdai.settings import PROJECT_HOME

CFG = load_acd(PROJECT_HOME / "tests/e2e/acd_e2e.toml")


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
) -> AsyncIterator[Distributor]:
    d = Dispatcher(CFG, clock=time.time)
    dist = Distributor(d, ami, tickets, QueueLogWriter(qlog, CFG), tick_s=0.05)
    dist.store = store
    await dist.start(login_all=True)
    task = asyncio.create_task(dist.run(ami.stream()))
    try:
        yield dist
        await asyncio.sleep(0.1)  # the persister catches up
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
    async with engine(store, ami, tickets, tmp_path / "q1") as dist:
        for a in list(dist.d.agents):
            dist.d.agent_pause(a, "training")
        for i in range(3):
            assert dist.enqueue(f"w{i}", f"PJSIP/anon-{i}", "chung", f"09{i}", codes[i])
            dist.ivr_done(f"w{i}")
        dist.flush()
    assert [c.uniqueid for c in await store.load_calls()] == ["w0", "w1", "w2"]
    # the engine is gone; w1 hangs up meanwhile; w0 and w2 are still in the music loop
    ami2 = FakeAmiWith({"w0": "PJSIP/anon-0", "w2": "PJSIP/anon-2"})
    async with engine(store, ami2, tickets, tmp_path / "q2") as dist2:
        assert [c.uniqueid for c in dist2.d.lines.merged()] == ["w0", "w2"]
        assert dist2.legs["w2"].caller_channel == "PJSIP/anon-2"
        assert all(a.state.value == "paused" for a in dist2.d.agents.values())
        assert dist2.d.agents["agent101"].pause_reason == "training"
        await until(lambda: dist2._writes.empty())
        await asyncio.sleep(0.05)
        gone = await tickets.get(codes[1])
        assert gone is not None and gone.outcome == Outcome.ABANDONED_QUEUE
        dist2.d.agent_unpause("agent102")
        dist2.flush()
        await until(lambda: any(n == "Originate" for n, _ in ami2.actions))
        o = next(h for n, h in ami2.actions if n == "Originate")
        assert "TONGDAI_CALLER_CHAN=PJSIP/anon-0" in o["Variable"]  # the first in line
    assert "ABANDON" in (tmp_path / "q2").read_text(encoding="utf-8")


async def test_a_callback_waiting_survives_a_restart(tmp_path: Path) -> None:
    store, tickets = MemoryStore(), MemoryTicketStore()
    ami = FakeAmiWith({})
    async with engine(store, ami, tickets, tmp_path / "q1") as dist:
        for a in list(dist.d.agents):
            dist.d.agent_pause(a, "break")
        assert dist.enqueue("cb", "PJSIP/anon-9", "chung", "0905111222", None)
        dist.ivr_done("cb")
        dist.d.calls["cb"].entered_at -= 60
        dist.request_callback("cb")
        await ami.events.put(FakeEvent("Hangup", Uniqueid="cb"))
        await until(lambda: dist.d.calls["cb"].state.value == "callback_waiting")
    ami2 = FakeAmiWith({})  # the citizen has no channel: Asterisk alone could not know them
    async with engine(store, ami2, tickets, tmp_path / "q2") as dist2:
        assert dist2.d.calls["cb"].state.value == "callback_waiting"
        assert dist2.d.calls["cb"].callback_number == "0905111222"


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
    async with engine(store, ami, tickets, tmp_path / "q1") as dist:
        for a in list(dist.d.agents):
            dist.d.agent_pause(a, "break")
        assert dist.enqueue("f1", "PJSIP/anon-1", "chung", "091", None)
        dist.ivr_done("f1")
        await until(lambda: store.fail == 0, timeout=5.0)
        await until(lambda: dist._pending == Dirty(), timeout=5.0)
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
