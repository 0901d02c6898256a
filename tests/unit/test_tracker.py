"""Queue outcomes from AMI events (tracker) and from Asterisk's queue_log (reconcile)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from appqueue.reconcile import reconcile
from appqueue.tracker import QueueTracker
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


async def queued_ticket(store: MemoryTicketStore, uid: str) -> str:
    t = await store.open(channel="voice", caller="0905", uniqueid=uid, started_at=NOW)
    await store.update(t.code, queue="dau_tu", queued_at=NOW, category="dau_tu")
    return t.code


async def test_given_a_queued_call_when_an_agent_answers_then_answered_with_the_agent() -> None:
    store = MemoryTicketStore()
    code = await queued_ticket(store, "1.1")
    tr = QueueTracker(store, now=lambda: NOW)
    tr.queued("1.1", code)
    await tr.handle("QueueCallerJoin", {"Uniqueid": "1.1", "Queue": "dau_tu"})
    await tr.handle("AgentConnect", {"Uniqueid": "1.1", "MemberName": "PJSIP/agent103"})
    await tr.handle("Hangup", {"Uniqueid": "1.1"})
    t = await store.get(code)
    assert t is not None
    assert (t.outcome, t.agent, t.answered_at, t.ended_at) == (
        Outcome.ANSWERED,
        "agent103",
        NOW,
        NOW,
    )
    assert tr.calls == {}


async def test_given_a_queued_call_when_the_caller_hangs_up_then_abandoned_queue() -> None:
    store = MemoryTicketStore()
    code = await queued_ticket(store, "2.1")
    tr = QueueTracker(store, now=lambda: NOW)
    tr.queued("2.1", code)
    await tr.handle("QueueCallerAbandon", {"Uniqueid": "2.1", "Queue": "dau_tu"})
    await tr.handle("Hangup", {"Uniqueid": "2.1"})
    t = await store.get(code)
    assert t is not None and t.outcome == Outcome.ABANDONED_QUEUE and t.ended_at == NOW


async def test_given_a_call_the_ivr_never_saw_when_it_joins_a_queue_then_a_ticket_exists() -> None:
    store = MemoryTicketStore()
    tr = QueueTracker(store, now=lambda: NOW)
    await tr.handle("QueueCallerJoin", {"Uniqueid": "3.1", "Queue": "chung", "CallerIDNum": "0911"})
    await tr.handle("Hangup", {"Uniqueid": "3.1"})
    t = await store.find_by_uniqueid("3.1")
    assert t is not None
    assert (t.caller, t.queue, t.category, t.outcome) == (
        "0911", "chung", "chung", Outcome.ABANDONED_QUEUE,
    )  # fmt: skip
    assert [s.node for s in t.ivr_path] == ["fallback"]


async def test_events_of_other_channels_are_ignored() -> None:
    store = MemoryTicketStore()
    tr = QueueTracker(store, now=lambda: NOW)
    await tr.handle("Hangup", {"Uniqueid": "agent-leg"})
    await tr.handle("AgentConnect", {"Uniqueid": "nobody"})
    assert await store.list() == []
    assert tr.events_handled == 2


async def test_given_calls_queued_while_the_engine_was_down_then_queue_log_rebuilds_them(
    tmp_path: Path,
) -> None:
    store = MemoryTicketStore()
    open_code = await queued_ticket(store, "5.1")  # queued before the engine stopped
    e = int(NOW.timestamp())
    log = tmp_path / "queue_log"
    log.write_text(
        "\n".join(
            [
                f"{e}|NONE|NONE|NONE|QUEUESTART|",
                f"{e + 1}|4.1|chung|NONE|ENTERQUEUE||0912345678|1",
                f"{e + 3}|4.1|chung|PJSIP/agent101|CONNECT|2|4.2|1",
                f"{e + 20}|4.1|chung|PJSIP/agent101|COMPLETEAGENT|2|17|1",
                f"{e + 2}|5.1|dau_tu|NONE|ENTERQUEUE||0905|1",
                f"{e + 9}|5.1|dau_tu|NONE|ABANDON|1|1|7",
                "garbage line",
                f"{e - 999999}|0.1|chung|NONE|ENTERQUEUE||0900|1",
            ]
        )
    )
    assert await reconcile(store, log, NOW) == 2
    fallback = await store.find_by_uniqueid("4.1")
    assert fallback is not None
    assert fallback.outcome == Outcome.ANSWERED and fallback.agent == "agent101"
    assert fallback.caller == "0912345678" and fallback.ended_at is not None
    t = await store.get(open_code)
    assert t is not None and t.outcome == Outcome.ABANDONED_QUEUE
    assert await store.find_by_uniqueid("0.1") is None  # before `since`
    assert await reconcile(store, log, NOW) == 0  # idempotent
