"""Calls by outcome with ``distribution = "asterisk"``: app_queue's outcomes, as the queue
tracker (and the queue_log reconciliation) write them, count in ``tongdai_calls_total`` through
``CountingTicketStore(tickets, metrics, QUEUE_OUTCOMES)``; each ticket once."""

from __future__ import annotations

from datetime import UTC, datetime

from appqueue.tracker import QueueTracker
from hotline.metrics import QUEUE_OUTCOMES, CountingTicketStore, Metrics
from tickets.memory import MemoryTicketStore


def calls(metrics: Metrics) -> dict[str, float]:
    out = {}
    for line in metrics.render().decode().splitlines():
        if line.startswith('tongdai_calls_total{outcome="'):
            label, value = line.split("} ")
            out[label.split('"')[1]] = float(value)
    return out


async def test_given_app_queue_events_then_answered_and_abandoned_calls_are_counted_once() -> None:
    metrics = Metrics()
    tickets = MemoryTicketStore()
    tracker = QueueTracker(CountingTicketStore(tickets, metrics, QUEUE_OUTCOMES))
    # the IVR handed two calls to app_queue (their IVR outcome is none: they went to a queue)
    for uid in ("u1", "u2", "u3"):
        t = await tickets.open(
            channel="voice", caller="0905", uniqueid=uid, started_at=datetime.now(UTC)
        )
        tracker.queued(uid, t.code)
        await tracker.handle("QueueCallerJoin", {"Uniqueid": uid, "Queue": "thu_tuc"})
    await tracker.handle("AgentConnect", {"Uniqueid": "u1", "MemberName": "PJSIP/agent101"})
    await tracker.handle("AgentConnect", {"Uniqueid": "u1", "MemberName": "PJSIP/agent101"})
    await tracker.handle("Hangup", {"Uniqueid": "u1"})
    await tracker.handle("QueueCallerAbandon", {"Uniqueid": "u2"})
    await tracker.handle("Hangup", {"Uniqueid": "u2"})
    assert calls(metrics) == {"answered": 1.0, "abandoned_queue": 1.0}
    await tracker.handle("Hangup", {"Uniqueid": "u3"})  # hung up waiting, no abandon event
    assert calls(metrics) == {"answered": 1.0, "abandoned_queue": 2.0}


async def test_given_an_outcome_written_again_or_an_ivr_one_then_the_queue_store_skips_it() -> None:
    metrics = Metrics()
    store = CountingTicketStore(MemoryTicketStore(), metrics, QUEUE_OUTCOMES)
    t = await store.open(channel="voice", caller=None, uniqueid="u", started_at=datetime.now(UTC))
    await store.update(t.code, outcome="answered")
    await store.update(t.code, outcome="answered", ended_at=datetime.now(UTC))  # reconciled
    other = await store.open(
        channel="voice", caller=None, uniqueid="v", started_at=datetime.now(UTC)
    )
    await store.update(other.code, outcome="self_service")  # the IVR's store counts those
    assert calls(metrics) == {"answered": 1.0}
    # a ticket counted by the IVR's store is not counted again by the queue's
    ivr = CountingTicketStore(store.inner, metrics)
    third = await ivr.open(channel="voice", caller=None, uniqueid="w", started_at=datetime.now(UTC))
    await ivr.update(third.code, outcome="error")  # the IVR failed, sent it to the queue
    await store.update(third.code, outcome="answered")
    assert calls(metrics) == {"answered": 1.0, "error": 1.0}


def test_given_count_outcome_then_only_known_outcomes_are_labels_and_tickets_count_once() -> None:
    metrics = Metrics()
    assert metrics.count_outcome("answered") and metrics.count_outcome("answered")
    assert not metrics.count_outcome("made-up")
    assert metrics.count_outcome("timeout_queue", ticket="1022-20260101-000001")
    assert not metrics.count_outcome("abandoned_queue", ticket="1022-20260101-000001")
    assert calls(metrics) == {"answered": 2.0, "timeout_queue": 1.0}
