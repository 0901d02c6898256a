"""Real SIP calls through the 1022 menu: SIPp callers with RFC 4733 keys (SIP INFO for dossier
codes), the lab's Asterisk 22, the engine as its own process, tickets in PostgreSQL, agents
answered by a SIPp UAS. Assertions are on tickets and SIP results."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Stack, engine_log, engine_log_count, ticket_of, until

from agencies.sql import SqlForwardStore
from lab import asterisk, engine
from lab.sipp_run import (
    AgentPhones,
    ExpectHangup,
    HangUp,
    Key,
    Keys,
    Speak,
    Step,
    Wait,
    build_caller_scenario,
    run_callers,
)
from tickets.model import Outcome, Ticket
from tickets.sql import SqlTicketStore
from tongdai.db import make_engine
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e

GAP = 1500  # between keys: the engine has started the next prompt, so the key barges in


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    """Agents' phones for every PJSIP/agentNNN (contacts at the instance's agents port)."""
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=1500) as phones:
        yield phones


async def call(stack: Stack, steps: list[Step], *, calls: int = 1, rate: int = 10) -> list[str]:
    result = await run_callers(
        build_caller_scenario(steps), target=stack.target, calls=calls, rate=rate, timeout_s=300
    )
    assert result.ok, result.describe() + "\n--- engine log ---\n" + engine_log(stack)
    return result.callers


async def call_as(stack: Stack, number: str, steps: list[Step]) -> None:
    """One call from ``number`` (the caller id the engine sees)."""
    result = await run_callers(
        build_caller_scenario(steps), target=stack.target, calls=1, callers=[number], timeout_s=120
    )
    assert result.ok, result.describe() + "\n--- engine log ---\n" + engine_log(stack)


def path_keys(t: Ticket) -> list[tuple[str, str | None]]:
    return [(s.node, s.key) for s in t.ivr_path if s.key is not None]


@pytest.mark.parametrize(
    ("keys", "queue", "category"),
    [
        ("11", "thu_tuc", "thu_tuc"),
        ("14", "thu_tuc", "thu_tuc"),
        ("31", "phan_anh", "phan_anh"),
        ("4", "dau_tu", "dau_tu"),
        ("5", "du_lich", "du_lich"),
        ("6", "buu_chinh", "buu_chinh"),
        ("81", "su_co", "su_co"),
        ("82", "su_co", "su_co"),
        ("0", "chung", "chung"),
    ],
)
async def test_each_top_level_option_reaches_its_queue_and_an_agent(
    stack: Stack,
    agents: AgentPhones,
    tickets: SqlTicketStore,
    keys: str,
    queue: str,
    category: str,
) -> None:
    steps: list[Step] = []
    for k in keys:
        steps += [Wait(GAP), Key(k)]
    (caller,) = await call(stack, [*steps, ExpectHangup(90_000)])
    t = await ticket_of(tickets, caller)
    assert (t.queue, t.category, t.outcome) == (queue, category, Outcome.ANSWERED), t
    assert t.agent is not None and t.agent.startswith("agent")
    assert t.queued_at is not None and t.answered_at is not None and t.ended_at is not None
    assert t.started_at <= t.queued_at <= t.answered_at <= t.ended_at
    assert [k for _, k in path_keys(t)] == list(keys)


async def test_a_known_dossier_is_read_out_and_the_call_is_self_service(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(
        stack, [Wait(GAP), Key("2"), Wait(2500), Keys("123456#"), Wait(8000), HangUp()]
    )
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.dossier_code, t.category) == (
        Outcome.SELF_SERVICE,
        "123456",
        "tra_cuu_ho_so",
    )
    assert ("tra_cuu", "123456") in path_keys(t)
    assert any(s.detail == "found" for s in t.ivr_path)
    assert t.queue is None


async def test_an_unknown_dossier_is_told_then_the_caller_reaches_an_agent(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(
        stack,
        [Wait(GAP), Key("2"), Wait(2500), Keys("999999#"), Wait(3000), Key("0"),
         ExpectHangup(60_000)],
    )  # fmt: skip
    t = await ticket_of(tickets, caller)
    assert any(s.detail == "not_found" for s in t.ivr_path)
    assert (t.dossier_code, t.queue, t.outcome) == ("999999", "tra_cuu_ho_so", Outcome.ANSWERED)


async def test_malformed_and_too_long_codes_are_told_apart_then_a_good_code_works(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(
        stack,
        [Wait(GAP), Key("2"), Wait(2500), Keys("12#"), Wait(6500), Keys("1" * 20 + "#"),
         Wait(6000), Keys("2026001#"), Wait(6000), HangUp()],
    )  # fmt: skip
    t = await ticket_of(tickets, caller)
    details = [s.detail for s in t.ivr_path if s.node == "tra_cuu"]
    assert "malformed" in details and "too_long" in details and "found" in details, details
    assert (t.outcome, t.dossier_code) == (Outcome.SELF_SERVICE, "2026001")


async def test_key_7_a_real_tickets_code_keyed_over_sip_info_is_read_out_and_recorded(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    """A citizen who complained earlier keys their ticket's 14 digits and hears its status."""
    number = "0905777001"
    old = await tickets.open(
        channel="voice", caller=number, uniqueid=None, started_at=datetime.now(UTC)
    )
    digits = old.code.removeprefix("1022-").replace("-", "")
    assert len(digits) == 14
    await call_as(
        stack, number, [Wait(GAP), Key("7"), Wait(2500), Keys(digits + "#"), Wait(9000), HangUp()]
    )
    deadline = asyncio.get_running_loop().time() + 20
    while True:  # the caller's own new ticket (the old one has the same number)
        mine = [t for t in await tickets.list() if t.caller == number and t.code != old.code]
        if mine and mine[-1].ended_at is not None:
            break
        assert asyncio.get_running_loop().time() < deadline, "no finished ticket for the call"
        await asyncio.sleep(0.2)
    t = mine[-1]
    assert ("main", "7") in path_keys(t)
    assert (old.code, "found") in [(s.key, s.detail) for s in t.ivr_path]
    assert (t.category, t.outcome) == ("tra_cuu_phan_anh", Outcome.SELF_SERVICE)
    looked = await tickets.get(old.code)
    assert looked is not None
    assert [s.detail for s in looked.ivr_path] == [f"looked_up:{t.code}:found"]


async def test_a_procedure_code_keyed_over_sip_info_is_read_out_with_its_name(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    """1, 5, then a procedure's seven digits: the catalogue imported by ``tongdai procedures
    import`` (which also speaks the names) answers, and every prompt played exists."""
    sample = PROJECT_HOME / "dossiers/sample_procedures_quangnam.csv"
    argv = [sys.executable, "-m", "hotline.cli", "--config", str(stack.config)]
    imported = await asyncio.to_thread(
        subprocess.run, [*argv, "procedures", "import", str(sample)],
        check=True, capture_output=True, text=True, cwd=PROJECT_HOME, timeout=300,
    )  # fmt: skip
    assert "imported 17 procedures" in imported.stdout, imported.stdout + imported.stderr
    sounds = PROJECT_HOME / stack.settings.ivr.sounds_dir
    assert (sounds / "thu_tuc" / "tt_1001045.wav").is_file()
    failures = engine_log_count(stack, "failed on a live channel")
    (caller,) = await call(
        stack,
        [Wait(GAP), Key("1"), Wait(GAP), Key("5"), Wait(2500), Keys("1001045#"), Wait(12000),
         HangUp()],
    )  # fmt: skip
    t = await ticket_of(tickets, caller)
    assert ("tra_cuu_thu_tuc", "1.001045") in path_keys(t), t.ivr_path
    assert [s.detail for s in t.ivr_path if s.key == "1.001045"] == ["found"]
    assert (t.category, t.outcome, t.queue) == ("thu_tuc", Outcome.SELF_SERVICE, None)
    # Asterisk found every file the engine asked it to play (the name's own folder included)
    assert engine_log_count(stack, "failed on a live channel") == failures, engine_log(stack)


async def test_key_7_a_forwarded_tickets_owner_hears_its_agency_named(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    """The agencies' names are built with the prompts; Asterisk plays the one of the agency
    the ticket was forwarded to (a missing file would be logged as a failed prompt)."""
    number = "0905777002"
    old = await tickets.open(
        channel="voice", caller=number, uniqueid=None, started_at=datetime.now(UTC)
    )
    engine_ = make_engine(stack.db_url)
    try:
        await SqlForwardStore(engine_).create(
            ticket_code=old.code, agency_id="so_xay_dung", due_at=datetime.now(UTC),
            by="giamsat", at=datetime.now(UTC),
        )  # fmt: skip
    finally:
        await engine_.dispose()
    sounds = PROJECT_HOME / stack.settings.ivr.sounds_dir
    assert (sounds / "co_quan" / "so_xay_dung.wav").is_file()
    failures = engine_log_count(stack, "failed on a live channel")
    digits = old.code.removeprefix("1022-").replace("-", "")
    await call_as(
        stack, number, [Wait(GAP), Key("7"), Wait(2500), Keys(digits + "#"), Wait(12000), HangUp()]
    )
    t = await ticket_of(tickets, number)
    assert (old.code, "found") in [(s.key, s.detail) for s in t.ivr_path]
    assert engine_log_count(stack, "failed on a live channel") == failures, engine_log(stack)


async def test_three_invalid_keys_send_the_caller_to_the_general_queue(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(
        stack,
        [Wait(GAP), Key("#"), Wait(3000), Key("#"), Wait(3000), Key("#"), ExpectHangup(60_000)],
    )
    t = await ticket_of(tickets, caller)
    assert [s.detail for s in t.ivr_path].count("invalid") == 3
    assert (t.queue, t.category, t.outcome) == ("chung", "chung", Outcome.ANSWERED)


async def test_silence_repeats_the_menu_three_times_then_the_general_queue(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(stack, [ExpectHangup(240_000)])
    t = await ticket_of(tickets, caller)
    assert [s.detail for s in t.ivr_path].count("timeout") == 3
    assert (t.queue, t.outcome) == ("chung", Outcome.ANSWERED)


async def test_hanging_up_mid_menu_leaves_an_abandoned_ivr_ticket(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(stack, [Wait(GAP), Key("1"), Wait(2000), HangUp()])
    t = await ticket_of(tickets, caller)
    assert t.outcome == Outcome.ABANDONED_IVR
    assert path_keys(t) == [("main", "1")]
    assert t.queue is None and t.ended_at is not None


async def test_a_recorded_complaint_is_saved_and_linked_to_the_ticket(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    (caller,) = await call(
        stack,
        [Wait(GAP), Key("3"), Wait(GAP), Key("2"), Wait(7500), Speak(), Key("#"),
         ExpectHangup(60_000)],
    )  # fmt: skip
    t = await ticket_of(tickets, caller)
    assert (t.outcome, t.category) == (Outcome.MESSAGE_LEFT, "phan_anh")
    assert t.recording is not None
    rec = Path(t.recording)
    assert rec == PROJECT_HOME / "recordings" / "messages" / f"{t.code}.wav"
    size = await asyncio.to_thread(os.path.getsize, rec)
    assert size > 16_000  # > 1 s of 8 kHz 16-bit audio


def in_rejoin(stack: Stack) -> int:
    """Callers on music in ``[tongdai-rejoin]``, waiting for an engine, per Asterisk."""
    out = asterisk.rx(stack.settings, "core show channels concise")
    return sum(1 for line in out.splitlines() if line.split("!")[1:2] == ["tongdai-rejoin"])


async def test_when_the_engine_is_stopped_a_caller_waits_for_it_and_is_queued_with_a_ticket(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    """The engine is down when the call comes (its FastAGI refused): the caller hears music in
    ``[tongdai-rejoin]`` until the engine is back, which opens the call's ticket and queues
    it (app_queue here). The fallback after the tries run out is ``test_lab``'s."""
    answered_before = agents.answered
    assert engine.stop_engine(stack.settings)
    try:
        waiting = asyncio.create_task(call(stack, [Wait(500), ExpectHangup(60_000)]))
        await until(lambda: in_rejoin(stack) == 1, "the caller waiting for the engine", 15)
    finally:
        engine.start_engine(stack.settings, str(stack.config))
    (caller,) = await waiting
    assert agents.answered > answered_before  # an agent answered it: it reached the queue
    t = await ticket_of(tickets, caller, timeout_s=30)
    assert [s.node for s in t.ivr_path] == ["rejoin"]
    assert (t.queue, t.outcome) == ("chung", Outcome.ANSWERED)


@pytest.mark.alone  # 100 calls at once: no other lab test beside it on 2 cores
async def test_100_concurrent_calls_through_the_menu_each_leave_a_correct_ticket(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    steps: list[Step] = [Wait(GAP), Key("2"), Wait(2500), Keys("123456#"), Wait(8000), HangUp()]
    callers = await call(stack, steps, calls=100, rate=50)
    assert len(set(callers)) == 100
    for caller in callers:
        t = await ticket_of(tickets, caller, timeout_s=60)
        assert (t.outcome, t.dossier_code, t.category) == (
            Outcome.SELF_SERVICE,
            "123456",
            "tra_cuu_ho_so",
        ), t
        assert ("main", "2") in path_keys(t) and ("tra_cuu", "123456") in path_keys(t)
    codes = {t.code for t in await tickets.list() if t.caller in set(callers)}
    assert len(codes) == 100
