"""Cross-check: the KPIs ``compute`` gets from the tickets equal the ones an independent
reader gets from Asterisk's queue_log of the same calls.

The queue_log is written from ``test_reports_data.CALLS`` (the same list the tickets come
from) in Asterisk's format, with the noise a real log has (member and pause events, a
``QUEUESTART``, a line cut short). The reader below does not use the project's code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from test_reports_data import AS_OF, CALLS, END, START, Call, open_loaded

from appqueue.reconcile import parse_queue_log
from reports.kpi import compute
from reports.model import Report
from tickets.sql import SqlTicketStore

SL_SECONDS = 20


def _line(at: datetime, callid: str, queue: str, agent: str, event: str, *data: object) -> str:
    return "|".join([str(int(at.timestamp())), callid, queue, agent, event, *map(str, data)])


def queue_log(calls: Iterable[Call]) -> list[str]:
    """Asterisk queue_log lines for the calls that entered a queue, in time order."""
    lines: list[tuple[datetime, str]] = [
        (START - timedelta(hours=1), _line(START - timedelta(hours=1), "NONE", "NONE", "NONE",
                                           "QUEUESTART", "")),
        (START, _line(START, "NONE", "chung", "PJSIP/an", "ADDMEMBER", "")),
        (START, _line(START, "NONE", "chung", "PJSIP/an", "PAUSE", "meal")),
    ]  # fmt: skip
    for call in calls:
        entered = call.queued_at
        if entered is None or call.queue is None:
            continue
        callid, q = f"1714.{call.n}", call.queue
        lines.append(
            (entered, _line(entered, callid, q, "NONE", "ENTERQUEUE", "", "0905000000", 1))
        )
        if call.answered_at is not None:
            hold, talk = call.wait or 0, call.talk or 0
            member = f"PJSIP/{call.agent}"
            lines.append(
                (
                    call.answered_at,
                    _line(
                        call.answered_at, callid, q, member, "CONNECT", hold, f"1714.{call.n}9", 2
                    ),
                )
            )
            event = "COMPLETECALLER" if call.n % 2 else "COMPLETEAGENT"
            lines.append(
                (call.ended_at, _line(call.ended_at, callid, q, member, event, hold, talk, 1))
            )
        elif call.outcome == "abandoned_queue":
            lines.append(
                (call.ended_at, _line(call.ended_at, callid, q, "NONE", "ABANDON", 1, 1, call.wait))
            )
        elif call.outcome == "message_left":  # the caller pressed a key to leave a message
            lines.append(
                (
                    call.ended_at,
                    _line(call.ended_at, callid, q, "NONE", "EXITWITHKEY", "1", 1, 1, call.wait),
                )
            )
    lines.append((END, "1780000000|1714.99|chung|NONE"))  # cut short by a crash
    return [text for _, text in sorted(lines, key=lambda pair: pair[0])]


@dataclass
class QueueFigures:
    entered: int = 0
    answered: int = 0
    abandoned: int = 0
    hold: list[int] = field(default_factory=list)
    talk: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def service_level(self) -> float | None:
        within = sum(1 for h in self.hold if h <= SL_SECONDS)
        return round(within / self.answered, 4) if self.answered else None

    @property
    def asa(self) -> float | None:
        return round(sum(self.hold) / self.answered, 1) if self.answered else None

    @property
    def abandon_rate(self) -> float | None:
        return round(self.abandoned / self.entered, 4) if self.entered else None


def read_queue_log(lines: list[str], start: datetime, end: datetime) -> dict[str, QueueFigures]:
    """Figures per queue (and ``""`` for all) of calls that entered a queue in [start, end)."""
    figures: dict[str, QueueFigures] = defaultdict(QueueFigures)
    counted: set[str] = set()
    low, high = start.timestamp(), end.timestamp()
    for line in lines:
        fields = line.split("|")
        if len(fields) < 5 or fields[1] == "NONE":
            continue
        epoch, callid, queue, agent, event, data = (
            int(fields[0]), fields[1], fields[2], fields[3], fields[4], fields[5:]
        )  # fmt: skip
        if event == "ENTERQUEUE" and low <= epoch < high:
            counted.add(callid)
        if callid not in counted:
            continue
        for key in (queue, ""):
            f = figures[key]
            if event == "ENTERQUEUE":
                f.entered += 1
            elif event == "CONNECT":
                f.answered += 1
                f.hold.append(int(data[0]))
            elif event == "ABANDON":
                f.abandoned += 1
            elif event in ("COMPLETECALLER", "COMPLETEAGENT"):
                f.talk[agent.split("/", 1)[1]] += int(data[1])
    return figures


@pytest.fixture
async def report(db_url: str) -> AsyncIterator[Report]:
    store: SqlTicketStore = await open_loaded(db_url)
    try:
        yield await compute(store.engine, START, END, sl_seconds=SL_SECONDS, as_of=AS_OF)
    finally:
        await store.close()


def test_the_kpis_from_tickets_equal_the_ones_from_the_queue_log(report: Report) -> None:
    figures = read_queue_log(queue_log(CALLS), START, END)
    total = figures[""]
    assert total.answered == report.figure("answered") == 6
    assert total.abandoned == report.figure("abandoned_queue") == 2
    assert total.entered == report.figure("entered_queue") == 9
    assert total.service_level == report.figure("service_level")
    assert total.asa == report.figure("asa_seconds")
    assert total.abandon_rate == report.figure("abandon_rate")
    for queue in ("chung", "dvc"):
        row = report.views["by_queue"].row(queue)
        got = figures[queue]
        assert (got.entered, got.answered, got.abandoned) == (
            row["entered_queue"], row["answered"], row["abandoned_queue"]
        ), queue  # fmt: skip
        assert (got.service_level, got.asa, got.abandon_rate) == (
            row["service_level"], row["asa_seconds"], row["abandon_rate"]
        ), queue  # fmt: skip
    talk = {agent: float(seconds) for agent, seconds in total.talk.items()}
    by_agent = report.views["by_agent"]
    assert talk == dict(zip(by_agent.column("agent"), by_agent.column("talk_seconds"), strict=True))


async def test_given_t_5_seconds_then_compute_agrees_with_the_queue_log(db_url: str) -> None:
    store = await open_loaded(db_url)
    try:
        report = await compute(store.engine, START, END, sl_seconds=5, as_of=AS_OF)
    finally:
        await store.close()
    hold = read_queue_log(queue_log(CALLS), START, END)[""].hold
    assert report.figure("answered_in_sl") == sum(1 for h in hold if h <= 5) == 1
    assert report.figure("service_level") == round(1 / 6, 4)


def test_the_projects_own_queue_log_parser_reads_the_same_calls() -> None:
    calls = parse_queue_log(queue_log(CALLS), START)
    answered = [
        c for c in calls.values() if c.outcome is not None and c.outcome.value == "answered"
    ]
    assert len(answered) == 6  # call 20 (the day before) is before ``since``
