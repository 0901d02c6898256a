"""The known calls of the report tests (May 2026, Vietnam time) and how to load them.

``CALLS`` is the one description of the calls: ``load`` writes them through the ticket
store, and ``test_reports_queue_log`` writes Asterisk queue_log lines from the same list.
The figures they must give are worked out by hand in ``test_reports_kpi``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from tickets.model import Status
from tickets.sql import SqlTicketStore, open_store

VN = timezone(timedelta(hours=7))
#: the report period: the month of May 2026 in Vietnam time
START = datetime(2026, 5, 1, tzinfo=VN)
END = datetime(2026, 6, 1, tzinfo=VN)
#: "now" for overdue complaints
AS_OF = datetime(2026, 6, 1, 8, 0, tzinfo=VN)


def vn(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=VN)


@dataclass(frozen=True)
class Call:
    """One call; times are offsets in seconds from ``started`` (None: did not happen)."""

    n: int
    started: datetime
    outcome: str | None
    channel: str = "voice"
    queue: str | None = None
    agent: str | None = None
    category: str | None = None
    queued: int | None = None  # queue entry, seconds after start
    wait: int | None = None  # queue entry -> answer (answered) or -> hang-up (abandoned)
    talk: int | None = None  # answer -> end
    acw: int | None = None
    satisfaction: int | None = None
    due_hours: int | None = None  # complaint due date, hours after start
    #: status changes: (hours after start, new status)
    statuses: tuple[tuple[int, Status], ...] = ()
    forget_resolved_at: bool = False  # a legacy row: resolved_at NULL, only the history knows

    @property
    def queued_at(self) -> datetime | None:
        return self.started + timedelta(seconds=self.queued) if self.queued is not None else None

    @property
    def answered_at(self) -> datetime | None:
        if self.queued_at is None or self.wait is None or self.outcome != "answered":
            return None
        return self.queued_at + timedelta(seconds=self.wait)

    @property
    def ended_at(self) -> datetime:
        if self.answered_at is not None:
            return self.answered_at + timedelta(seconds=self.talk or 0)
        if self.queued_at is not None:
            return self.queued_at + timedelta(seconds=self.wait or 120)
        return self.started + timedelta(seconds=90)


PA = "phan_anh"
R, C, IP = Status.RESOLVED, Status.CLOSED, Status.IN_PROGRESS

# fmt: off
CALLS = (
    Call(1, vn(4, 8, 0), "self_service", category="thu_tuc"),
    Call(2, vn(4, 8, 5), "self_service", category="tra_cuu"),
    Call(3, vn(4, 8, 10), "abandoned_ivr"),
    Call(4, vn(4, 8, 20), "answered", queue="chung", agent="an", category="thu_tuc",
         queued=60, wait=10, talk=120, acw=30, satisfaction=5),
    Call(5, vn(4, 9, 0), "answered", queue="chung", agent="an", category="thu_tuc",
         queued=60, wait=20, talk=200, satisfaction=4),
    Call(6, vn(4, 9, 30), "answered", queue="chung", agent="binh", category=PA,
         queued=60, wait=30, talk=100, acw=20, satisfaction=2, due_hours=72,
         statuses=((1, IP), (24, R))),
    Call(7, vn(4, 10, 0), "answered", queue="dvc", agent="binh", category="tra_cuu",
         queued=60, wait=5, talk=60, acw=0, satisfaction=4),
    Call(8, vn(4, 10, 30), "answered", queue="dvc", agent="an", category=PA,
         queued=60, wait=45, talk=300, acw=60, due_hours=24, statuses=((2, IP),)),
    Call(9, vn(4, 11, 0), "abandoned_queue", queue="chung", queued=60, wait=50),
    Call(10, vn(4, 11, 30), "abandoned_queue", queue="dvc", queued=60, wait=15),
    Call(11, vn(4, 14, 0), "message_left", queue="chung", queued=60, wait=100),
    Call(12, vn(10, 22, 0), "closed_hours"),
    Call(13, vn(11, 9, 0), "rejected_busy", queue="chung"),
    Call(14, vn(11, 9, 10), "error"),
    # 06:30 on Tuesday in Vietnam is 23:30 on Monday in UTC
    Call(15, vn(5, 6, 30), "answered", queue="chung", agent="binh", category=PA,
         queued=60, wait=8, talk=90, acw=10, satisfaction=3,
         statuses=((48, R), (50, C)), forget_resolved_at=True),
    Call(16, vn(1, 0, 0), None),  # the first instant of the period, still open
    Call(17, vn(6, 10, 0), None, channel="email", category=PA, due_hours=48,
         statuses=((96, C),)),  # closed directly, 2 days late
    Call(18, vn(30, 23, 59, 59, month=4), "abandoned_ivr"),  # a second before the period
    Call(19, datetime(2026, 6, 1, tzinfo=VN), "abandoned_ivr"),  # the period's end: excluded
    Call(20, vn(30, 10, 0, month=4), "answered", queue="chung", agent="an",
         queued=30, wait=3, talk=40),  # the day before the period
    Call(21, vn(31, 23, 59), "abandoned_ivr"),  # the period's last minute
)
# fmt: on


class Clock:
    """The stores' clock, set before each status change."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def load(store: SqlTicketStore, clock: Clock, calls: tuple[Call, ...] = CALLS) -> None:
    """Open and fill one ticket per call through the store, status changes at their times."""
    for call in calls:
        ticket = await store.open(
            channel=call.channel,
            caller="0905000000",
            uniqueid=f"u{call.n}",
            started_at=call.started,
        )
        await store.update(
            ticket.code,
            queued_at=call.queued_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            category=call.category,
            queue=call.queue,
            agent=call.agent,
            outcome=call.outcome,
            satisfaction=call.satisfaction,
            acw_seconds=call.acw,
            due_at=call.started + timedelta(hours=call.due_hours) if call.due_hours else None,
        )
        for hours, status in call.statuses:
            clock.now = call.started + timedelta(hours=hours)
            await store.set_status(ticket.code, status, by="test")
        if call.forget_resolved_at:
            await store.update(ticket.code, resolved_at=None)


async def open_loaded(db_url: str, calls: tuple[Call, ...] = CALLS) -> SqlTicketStore:
    """A migrated database at ``db_url`` holding ``calls``; the caller closes the store."""
    opened = await open_store(db_url)
    clock = Clock()
    store = SqlTicketStore(opened.engine, owns_engine=True, clock=clock)
    try:
        await load(store, clock, calls)
    except BaseException:
        await store.close()
        raise
    return store


def by_n(n: int, calls: tuple[Call, ...] = CALLS) -> Call:
    return next(c for c in calls if c.n == n)


Finder = Callable[[int], Call]


def test_the_calls_are_numbered_once() -> None:
    numbers = [c.n for c in CALLS]
    assert len(numbers) == len(set(numbers))
