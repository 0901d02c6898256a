"""``tongdai bench process``: it processes what it journals (tickets, replies, queued
conversations), counts the SQL it takes, and refuses bad options clearly."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.process_bench import cmd_bench_process, run_process, summary
from bench.reports_bench import BenchError


async def test_given_visitors_when_processed_then_every_message_is_stored_once_and_counted(
    db_url: str, tmp_path: Path
) -> None:
    report = await run_process(db_url, "test", 4, tmp_path / "files")
    assert report.correct
    assert report.tickets == 4 and report.queued == 4
    # first: the message, the code and the bot's help; second: the message and "queued"
    assert report.messages == 4 * 5
    assert report.sent == 4 * 3
    first, follow, deliver = report.phases
    assert (first.name, follow.name, deliver.name) == ("first", "follow_up", "deliver")
    assert first.items == follow.items == 4 and deliver.items == 12
    for phase in report.phases:
        assert phase.statements_per_item > 0 and phase.transactions_per_item > 0
        assert sum(phase.statements_by_kind.values()) == pytest.approx(
            phase.statements_per_item, abs=0.05
        )
    assert "first" in summary([report]) and "correct" in summary([report])


def test_given_no_events_then_the_bench_says_so() -> None:
    args = argparse.Namespace(
        events=0, store=["sqlite"], pg_admin_dsn="", json=True, pre_ping="off"
    )
    with pytest.raises(BenchError, match="--events"):
        cmd_bench_process(args)


async def test_the_round_trips_per_message_stay_within_their_budget(
    db_url: str, tmp_path: Path
) -> None:
    """Measured before this budget: 31 statements in 11 transactions per first message, 23 in
    9 per follow-up, 6 in 4 per reply delivered. A change that reads again what is in hand
    shows here."""
    report = await run_process(db_url, "test", 6, tmp_path / "files")
    first, follow, deliver = report.phases
    assert first.statements_per_item <= 15 and first.transactions_per_item <= 6.5
    assert follow.statements_per_item <= 13 and follow.transactions_per_item <= 6.5
    assert deliver.statements_per_item <= 3.5 and deliver.transactions_per_item <= 2
