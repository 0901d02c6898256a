"""The fallback ticket (a call the engine never saw), made the same way by the AMI tracker and by
the queue_log reconcile."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appqueue.fallback import AMI_NO_NUMBER, QUEUE_LOG_NO_NUMBER, known_number, open_fallback_ticket
from appqueue.reconcile import reconcile
from appqueue.tracker import QueueTracker
from tickets.memory import MemoryTicketStore
from tickets.model import IvrStep, Ticket
from tongdai.errors import StoreError

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "placeholders", "expected"),
    [
        ("0905123456", AMI_NO_NUMBER, "0905123456"),
        (None, AMI_NO_NUMBER, None),
        ("", AMI_NO_NUMBER, None),
        ("<unknown>", AMI_NO_NUMBER, None),
        ("unknown", AMI_NO_NUMBER, None),
        ("anonymous", AMI_NO_NUMBER, None),
        ("0905", QUEUE_LOG_NO_NUMBER, "0905"),
        ("unknown", QUEUE_LOG_NO_NUMBER, None),
        ("anonymous", QUEUE_LOG_NO_NUMBER, None),
        (None, QUEUE_LOG_NO_NUMBER, None),
        # queue_log never wrote "<unknown>"; reconcile kept it as given, and still does
        ("<unknown>", QUEUE_LOG_NO_NUMBER, "<unknown>"),
    ],
)
def test_known_number(raw: str | None, placeholders: frozenset[str], expected: str | None) -> None:
    assert known_number(raw, placeholders) == expected


async def test_the_fallback_ticket_has_the_fallback_step_and_the_general_category() -> None:
    store = MemoryTicketStore()
    t = await open_fallback_ticket(store, uniqueid="9.1", caller="0911", started_at=T0)
    got = await store.get(t.code)
    assert got is not None
    assert (got.channel, got.caller, got.uniqueid, got.started_at, got.category) == (
        "voice", "0911", "9.1", T0, "chung",
    )  # fmt: skip
    assert got.ivr_path == [IvrStep(at=T0, node="fallback", detail="ivr_unreachable")]
    assert (await store.find_by_uniqueid("9.1")) == got


async def test_the_step_clock_is_read_once_the_ticket_is_open() -> None:
    store = MemoryTicketStore()
    ticks: list[datetime] = []

    def clock() -> datetime:
        ticks.append(T0 + timedelta(seconds=len(ticks) + 1))
        assert len(store._tickets) == 1, "the clock must be read after open"
        return ticks[-1]

    t = await open_fallback_ticket(
        store, uniqueid="9.2", caller=None, started_at=T0, step_clock=clock
    )
    got = await store.get(t.code)
    assert got is not None and got.started_at == T0
    assert [s.at for s in got.ivr_path] == [T0 + timedelta(seconds=1)]
    assert len(ticks) == 1


class FailingSteps(MemoryTicketStore):
    async def append_steps(self, code: str, steps: Sequence[IvrStep]) -> None:
        raise StoreError("database gone")


async def test_store_errors_are_raised_to_the_caller() -> None:
    store = FailingSteps()
    with pytest.raises(StoreError):
        await open_fallback_ticket(store, uniqueid="9.3", caller=None, started_at=T0)


def _shape(t: Ticket) -> tuple[object, ...]:
    return (
        t.channel,
        t.caller,
        t.uniqueid,
        t.category,
        t.queue,
        [(s.node, s.key, s.detail) for s in t.ivr_path],
    )


async def test_tracker_and_reconcile_make_the_same_fallback_ticket(tmp_path: Path) -> None:
    by_ami = MemoryTicketStore()
    tr = QueueTracker(by_ami, now=lambda: T0)
    await tr.handle("QueueCallerJoin", {"Uniqueid": "7.1", "Queue": "chung", "CallerIDNum": "0912"})
    by_log = MemoryTicketStore()
    e = int(T0.timestamp())
    log = tmp_path / "queue_log"
    log.write_text(f"{e}|7.1|chung|NONE|ENTERQUEUE||0912|1\n")
    assert await reconcile(by_log, log, T0) == 1
    a, b = await by_ami.find_by_uniqueid("7.1"), await by_log.find_by_uniqueid("7.1")
    assert a is not None and b is not None
    assert _shape(a) == _shape(b) == ("voice", "0912", "7.1", "chung", "chung", [
        ("fallback", None, "ivr_unreachable"),
    ])  # fmt: skip
    assert a.started_at == b.started_at == a.queued_at == b.queued_at == T0


async def test_the_tracker_drops_amis_unknown_number() -> None:
    store = MemoryTicketStore()
    tr = QueueTracker(store, now=lambda: T0)
    await tr.handle(
        "QueueCallerJoin", {"Uniqueid": "7.2", "Queue": "chung", "CallerIDNum": "<unknown>"}
    )
    t = await store.find_by_uniqueid("7.2")
    assert t is not None and t.caller is None and t.category == "chung"
