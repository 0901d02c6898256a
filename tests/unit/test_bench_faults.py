"""``tongdai bench faults`` without the lab: hostile FastAGI clients against the real FastAGI
server (each one dropped by the server, calls still served), the per-fault summary (lost
calls, tickets missing or duplicated, recovery time, what the health file said) and the
command line."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.faults_bench import FAULTS, Phase, _hostile, parse_faults, summarize
from hotline.cli import build_parser
from ivr.fastagi import FastAgiServer
from lab.procs import LabError
from lab.sipp_run import SippResult
from tickets.model import Outcome, Ticket

T0 = 1_765_000_000.0


async def test_hostile_fastagi_clients_are_dropped_and_a_real_call_is_still_served() -> None:
    served: list[str] = []

    async def handler(channel: object, script: str) -> None:
        served.append(script)

    server = FastAgiServer(handler, port=0, header_timeout=0.5)
    await server.start()
    try:
        kinds = ["half_open", "garbage", "huge", "drip"] * 5
        hostile = [asyncio.create_task(_hostile("127.0.0.1", server.port, k, 4.0)) for k in kinds]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network_script: ivr\nagi_uniqueid: 1.1\n\n")
        await writer.drain()
        async with asyncio.timeout(3):
            while not served:
                await asyncio.sleep(0.02)
        writer.close()
        ends = await asyncio.gather(*hostile)
    finally:
        await server.close()
    assert served == ["ivr"]
    assert ends == ["closed"] * len(kinds)  # none held a connection for the 4 s it tried


def _sipp(calls: int, ok: int) -> SippResult:
    return SippResult(
        calls=calls, successful=ok, failed=calls - ok, returncode=0, callers=[],
        workdir=Path("/nonexistent"), stderr_tail="", errors_tail="", timed_out=False,
        elapsed_s=1.0,
    )  # fmt: skip


def _ticket(n: int, caller: str, outcome: Outcome | None, answered: float | None) -> Ticket:
    at = datetime.fromtimestamp(T0, UTC)
    return Ticket(
        id=n, code=f"1022-20261207-{n:06d}", channel="voice", caller=caller, uniqueid=None,
        started_at=at, outcome=outcome,
        answered_at=datetime.fromtimestamp(answered, UTC) if answered else None,
        ended_at=at,
    )  # fmt: skip


def test_the_summary_counts_lost_calls_and_tickets_missing_or_twice() -> None:
    phase = Phase("redis", fault_start=T0 + 4, fault_end=T0 + 14)
    phase.health = [
        (T0 + 1, {"dependencies": [{"name": "redis", "up": True}]}),
        (T0 + 5.5, {"dependencies": [{"name": "redis", "up": False}]}),
        (T0 + 16, {"dependencies": [{"name": "redis", "up": True}]}),
    ]
    numbers = ["a", "b", "c", "d", "e"]
    tickets = [
        _ticket(1, "a", Outcome.ANSWERED, T0 + 2),
        _ticket(2, "b", Outcome.ANSWERED, T0 + 17.5),  # first answered after the fault
        _ticket(3, "b", Outcome.ANSWERED, T0 + 20),  # twice
        _ticket(4, "c", None, None),  # no outcome: lost
        _ticket(5, "d", Outcome.ABANDONED_QUEUE, None),  # explained
    ]  # "e": no ticket at all
    out = summarize(phase, numbers, tickets, _sipp(5, 3))
    assert out["offered"] == 5 and out["answered"] == 2
    assert out["lost"] == 2  # c (no outcome), e (no ticket)
    assert out["tickets_missing"] == 1 and out["tickets_duplicated"] == 1
    assert out["outcomes"] == {"answered": 2, "none": 1, "abandoned_queue": 1, "no_ticket": 1}
    assert out["recovery_s"] == 3.5
    assert out["health"] == {"seen_down": True, "down_after_s": 1.5, "back_after_restore_s": 2.0}


def test_the_vanished_callers_are_summarised_apart() -> None:
    phase = Phase("vanish", fault_start=T0, fault_end=T0)
    tickets = [_ticket(1, "v1", Outcome.ABANDONED_IVR, None), _ticket(2, "a", Outcome.ANSWERED, T0)]
    out = summarize(phase, ["a"], tickets, _sipp(1, 1), ["v1", "v2"], _sipp(2, 1))
    assert out["vanish"] == {
        "callers": 2, "ended_by_asterisk_within_45s": 1, "failed": 1, "tickets": 1,
        "tickets_duplicated": 0, "outcomes": {"abandoned_ivr": 1, "no_ticket": 1},
    }  # fmt: skip
    assert out["lost"] == 0


def test_the_command_is_registered_and_checks_its_faults() -> None:
    args = build_parser().parse_args(["bench", "faults", "--calls", "3", "--faults", "redis,ami"])
    assert args.func.__name__ == "cmd_bench_faults"
    assert parse_faults("redis, database") == ("redis", "database")
    assert parse_faults(",".join(FAULTS)) == FAULTS
    with pytest.raises(LabError, match="choose among"):
        parse_faults("redis,meteor")
