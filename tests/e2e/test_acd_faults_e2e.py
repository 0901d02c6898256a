"""The engine's own ACD (``distribution = "engine"``) when things go wrong, on the real Asterisk:
agents' phones that ring and are not answered (ring-no-answer, auto-pause), Asterisk killed and
restarted under the running engine, and proof that a connected caller's audio reaches the agent.

Assertions are on tickets, our queue_log, the agent phones' SIP results and the RTP the agent
side receives; never on which dialplan path (AMI Originate + Bridge, or a direct Dial) rang the
agent. Agents and queues: ``acd_faults_e2e.toml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    Stack,
    call,
    engine_log,
    events_count,
    in_wait_loop,
    queue_log,
    ticket_of,
    tongdai,
    until,
)

from lab import asterisk, procs
from lab.sipp_run import (
    AgentPhones,
    HangUp,
    Key,
    SippResult,
    Speak,
    Step,
    Wait,
    build_caller_scenario,
    run_callers,
    write_rtp_pcap,
)
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_faults_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 30
"""
GAP = 1500  # ms of the main menu before the caller presses a key
AGENTS = ["agent301", "agent302", "agent303"]
SLOW = "agent301"  # rings first in du_lich (highest skill); ring_timeout_s = 3, max_misses = 2
#: the pcap SIPp's Speak step plays; the audio test swaps in its own
SPEECH_PCAP = "/usr/share/sip-tester/g711a.pcap"


def events_of(stack: Stack, uniqueid: str | None) -> list[tuple[str, str]]:
    """(EVENT, agent) of one call's queue_log lines, in order."""
    assert uniqueid, "the ticket has no uniqueid"
    return [(r[4], r[3]) for r in queue_log(stack) if r[1] == uniqueid]


def conversation(stack: Stack, uniqueid: str | None) -> list[tuple[str, str]]:
    """``events_of`` with COMPLETECALLER / COMPLETEAGENT as COMPLETE: which side hung up is
    not what these tests are about (test_acd_e2e checks it; after Asterisk is killed neither
    side sent a BYE)."""
    return [
        ("COMPLETE" if e in ("COMPLETECALLER", "COMPLETEAGENT") else e, a)
        for e, a in events_of(stack, uniqueid)
    ]


async def call_anyhow(stack: Stack, steps: list[Step], timeout_s: float) -> SippResult:
    """One caller whose SIPp result does not matter (Asterisk dies under it)."""
    return await run_callers(build_caller_scenario(steps), target=stack.target, timeout_s=timeout_s)


def ports_free(stack: Stack) -> bool:
    try:
        asterisk.check_ports_free(stack.settings)
    except procs.LabError:
        return False
    return True


@contextlib.contextmanager
def paused(stack: Stack, agents: list[str]) -> Iterator[None]:
    for a in agents:
        tongdai(stack, "agent", "pause", a)
    try:
        yield
    finally:
        for a in agents:
            tongdai(stack, "agent", "unpause", a)


# -- 1. ring-no-answer and auto-pause ---------------------------------------------------------


async def test_an_unanswered_phone_keeps_the_caller_in_line_and_auto_pauses_after_max_misses(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    # agent301's phone rings 20 s before answering, longer than du_lich's 3 s ring timeout
    with AgentPhones(
        port=stack.agents_port,
        answer_after_ms=300,
        talk_ms=60_000,
        slow_agents=[SLOW],
        slow_answer_ms=20_000,
    ) as phones:
        try:
            # A rings agent301 (miss 1), keeps its place, is answered by agent302
            a = asyncio.create_task(call(stack, [Wait(GAP), Key("5"), Wait(14_000), HangUp()]))
            await phones.wait_answered(1, timeout_s=20)
            # B rings agent301 again (miss 2 in a row: auto-paused), keeps its place, and is
            # answered by agent302 once A is done
            b = asyncio.create_task(call(stack, [Wait(GAP), Key("5"), Wait(14_000), HangUp()]))
            await phones.wait_answered(2, timeout_s=30)
            # C: agent301 is paused and is not rung; agent302 takes C (after B, if need be)
            (c_caller,) = await call(
                stack, [Wait(GAP), Key("5"), Wait(11_000), HangUp()], timeout_s=90
            )
            (a_caller,), (b_caller,) = await a, await b
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                tongdai(stack, "agent", "unpause", SLOW)
    ta, tb, tc = [await ticket_of(tickets, c) for c in (a_caller, b_caller, c_caller)]
    seen = [(t.caller, t.outcome, t.agent, events_of(stack, t.uniqueid)) for t in (ta, tb, tc)]
    for t in (ta, tb, tc):
        assert (t.outcome, t.queue, t.agent) == (Outcome.ANSWERED, "du_lich", "agent302"), seen
    # A and B: rung at agent301, not answered, then connected to agent302; C never rang agent301
    for t in (ta, tb):
        assert conversation(stack, t.uniqueid) == [
            ("ENTERQUEUE", "NONE"),
            ("RINGNOANSWER", SLOW),
            ("CONNECT", "agent302"),
            ("COMPLETE", "agent302"),
        ], seen
    assert conversation(stack, tc.uniqueid) == [
        ("ENTERQUEUE", "NONE"),
        ("CONNECT", "agent302"),
        ("COMPLETE", "agent302"),
    ], seen
    rows = queue_log(stack)
    rna = [r for r in rows if r[4] == "RINGNOANSWER" and r[1] in (ta.uniqueid, tb.uniqueid)]
    assert len(rna) == 2 and all(2500 <= int(r[5]) <= 5000 for r in rna), rna  # 3 s timeout
    # the second miss in a row paused agent301 (one PAUSE line per queue it serves), in order:
    # B's RINGNOANSWER, then PAUSE, then C entered and agent301 was never offered it
    pause_at = [i for i, r in enumerate(rows) if r[4] == "PAUSE" and r[3] == SLOW]
    assert pause_at and {rows[i][5] for i in pause_at} == {"missed_calls"}, rows
    b_rna = next(i for i, r in enumerate(rows) if r[1] == tb.uniqueid and r[4] == "RINGNOANSWER")
    c_enter = next(i for i, r in enumerate(rows) if r[1] == tc.uniqueid and r[4] == "ENTERQUEUE")
    assert b_rna < pause_at[0] < c_enter, rows
    # the phones: agent301 rang twice and was cancelled twice, never answered
    counts = phones.counts
    assert counts.ringing_uris.count(f"sip:{SLOW}") == 2, counts
    assert counts.cancelled_uris == [f"sip:{SLOW}"] * 2, counts
    assert f"sip:{SLOW}" not in counts.answered_uris, counts
    # unpaused (above): agent301 is offered calls again
    assert [r[4] for r in queue_log(stack) if r[3] == SLOW][-1] == "UNPAUSE"


# -- 2. Asterisk dies and comes back ----------------------------------------------------------


async def test_asterisk_killed_and_restarted_under_the_engine_ends_its_calls_and_serves_new_ones(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    enters_before = events_count(stack, "ENTERQUEUE")
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=60_000) as phones:
        with paused(stack, ["agent302", "agent303"]):  # agent301 alone takes calls
            # X talks to agent301, Y waits in line, W is in the voice menu when Asterisk dies;
            # none of them gets a BYE: their hang-up after the restart meets a 481 (SIPp fails)
            x = asyncio.create_task(call_anyhow(stack, [Wait(GAP), Key("0"), Wait(12_000)], 30))
            # X enters the line first
            await until(lambda: events_count(stack, "ENTERQUEUE") > enters_before, "X in line")
            y = asyncio.create_task(call_anyhow(stack, [Wait(GAP), Key("0"), Wait(10_500)], 30))
            w = asyncio.create_task(call_anyhow(stack, [Wait(12_000)], 30))
            await phones.wait_answered(1, timeout_s=20)
            # until the ACD holds Y too (X's and Y's ENTERQUEUE) and Y hears the music
            await until(lambda: events_count(stack, "ENTERQUEUE") >= enters_before + 2, "Y", 15)
            await until(lambda: in_wait_loop(stack) == 1, "Y in the music loop", 15)
            pid = asterisk.running_pid(stack.settings)
            assert pid is not None
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)  # a crash: no Hangup event reaches the engine
            assert procs.wait_until(lambda: not procs.alive(pid), 10)
            # its other threads may hold the ports a moment longer than the main one lives
            assert procs.wait_until(lambda: ports_free(stack), 10)
            asterisk.start(stack.settings)
            restarted_s = time.monotonic() - killed_at
            log.info("Asterisk killed and back (FullyBooted) in %.1f s", restarted_s)
            # at once after the restart (the engine may still be reconnecting to AMI): the call
            # is distributed to agent301, whom the engine must not still think busy with X
            z = asyncio.create_task(call(stack, [Wait(GAP), Key("0"), Wait(11_000), HangUp()]))
            x_res, y_res, w_res, (z_caller,) = await x, await y, await w, await z
            log.info("X, Y, W, Z done %.1f s after the kill", time.monotonic() - killed_at)
        tz = await ticket_of(tickets, z_caller, timeout_s=30)
    tx, ty, tw = [
        await ticket_of(tickets, r.callers[0], timeout_s=30) for r in (x_res, y_res, w_res)
    ]
    seen = [
        (t.caller, t.outcome, t.agent, t.ended_at, events_of(stack, t.uniqueid))
        for t in (tx, ty, tw, tz)
    ]
    info = f"{seen}\nAsterisk back after {restarted_s:.1f} s\n--- engine log ---\n"
    info += engine_log(stack)
    # X, Y and W were cut by the crash: none of them ended normally on SIP (their BYE after the
    # restart met a 481); had one hung up before the kill, this test would prove nothing
    assert not (x_res.ok or y_res.ok or w_res.ok), info
    # no ticket left open; each says how its call went
    assert all(t.ended_at is not None for t in (tx, ty, tw, tz)), info
    assert (tx.outcome, tx.agent) == (Outcome.ANSWERED, "agent301"), info
    assert conversation(stack, tx.uniqueid) == [
        ("ENTERQUEUE", "NONE"),
        ("CONNECT", "agent301"),
        ("COMPLETE", "agent301"),
    ], info
    assert (ty.outcome, ty.agent) == (Outcome.ABANDONED_QUEUE, None), info
    assert [e for e, _ in events_of(stack, ty.uniqueid)] == ["ENTERQUEUE", "ABANDON"], info
    assert tw.outcome == Outcome.ABANDONED_IVR and tw.queued_at is None, info
    assert (tz.outcome, tz.agent) == (Outcome.ANSWERED, "agent301"), info
    assert conversation(stack, tz.uniqueid) == [
        ("ENTERQUEUE", "NONE"),
        ("CONNECT", "agent301"),
        ("COMPLETE", "agent301"),
    ], info
    assert phones.counts.answered_uris == ["sip:agent301", "sip:agent301"], phones.counts


# -- 3. the audio path ------------------------------------------------------------------------

#: 8 s of caller audio, every 20 ms packet marked with its index; the agent side must receive it
MARK = b"TONGDAI-1022-AUDIO-"
PACKETS = 400


def marked_payload(i: int) -> bytes:
    head = MARK + i.to_bytes(2, "big")
    return head + bytes((0x55 + 7 * k + i) & 0xFF for k in range(160 - len(head)))


def is_tail(payload: bytes) -> bool:
    """One of the caller's last ten packets (what the test requires to have arrived)."""
    if not payload.startswith(MARK):
        return False
    return int.from_bytes(payload[len(MARK) : len(MARK) + 2], "big") >= PACKETS - 10


async def test_a_connected_caller_is_heard_by_the_agent(
    stack: Stack, tickets: SqlTicketStore, tmp_path: Path
) -> None:
    pcap = write_rtp_pcap(
        tmp_path / "caller_audio.pcap", [marked_payload(i) for i in range(PACKETS)]
    )
    # press 0, wait, talk for 8 s (our marked audio instead of SIPp's 7 s speech sample), hang up
    talk: list[Step] = [Speak(after_ms=PACKETS * 20 - 7050 + 400), HangUp()]
    xml = build_caller_scenario([Wait(GAP), Key("0"), Wait(2500), *talk])
    assert xml.count(SPEECH_PCAP) == 1
    xml = xml.replace(SPEECH_PCAP, str(pcap))
    phones = AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=60_000, rtp_sink=True)
    with phones:
        (caller,) = await call(stack, [], xml=xml, timeout_s=90)
        # the caller has hung up; let the tail of what they said reach the agent's sink
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while not any(is_tail(p.payload) for p in phones.rtp_packets):
                    await asyncio.sleep(0.05)
    t = await ticket_of(tickets, caller)
    assert t.outcome == Outcome.ANSWERED and t.agent in AGENTS, t
    assert phones.counts.answered == 1, phones.counts
    packets = phones.rtp_packets
    ours = [p for p in packets if p.payload.startswith(MARK)]
    other = len(packets) - len(ours)
    info = f"{len(packets)} RTP packets at the agent, {len(ours)} of the caller's, {other} other"
    # the agent heard the caller (not music on hold, not silence): at least 1.5 s of the
    # caller's audio, byte for byte, in the order it was sent
    assert len(ours) >= 75, info
    indexes = [int.from_bytes(p.payload[len(MARK) : len(MARK) + 2], "big") for p in ours]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes), info
    assert all(p.payload == marked_payload(i) for p, i in zip(ours, indexes, strict=True)), info
    # the tail of what the caller said reached the agent (they were still bridged at the end)
    assert indexes[-1] >= PACKETS - 10, info
