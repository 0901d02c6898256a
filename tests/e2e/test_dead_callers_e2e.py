"""Callers who vanish without a BYE (their mobile network dropped): Asterisk's ``rtp_timeout``
(asterisk_conf/pjsip.conf, 30 s) ends the call, and the engine treats that hang-up like any
other - by where the caller was: in the menu ``abandoned_ivr``, waiting in our ACD
``abandoned_queue`` and never offered to an agent. Also: a caller who hangs up while keying a
dossier code. Real Asterisk, real SIPp callers (``Vanish``: no media and no BYE from then on,
Asterisk's BYE never answered), real agent phones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from conftest import Stack, call, queue_log, ticket_of, tongdai

from lab.sipp_run import (
    AgentPhones,
    ExpectHangup,
    HangUp,
    Key,
    Keys,
    Vanish,
    Wait,
)
from tickets.model import Outcome
from tickets.sql import SqlTicketStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e

STACK_TOML = f"""
[acd]
distribution = "engine"
config = "{PROJECT_HOME / "tests" / "e2e" / "acd_e2e.toml"}"
queue_log = "{{tmp}}/queue_log"
announce_every_s = 5
"""
GAP = 1500
AGENTS = ["agent101", "agent102", "agent103", "agent104", "agent105"]
#: Asterisk must have ended a vanished caller's call this long after the caller went silent
ENDED_WITHIN_S = 45
RTP_TIMEOUT_S = 30  # asterisk_conf/pjsip.conf [dead-call-timers]


@pytest.fixture(scope="module")
def agents(stack: Stack) -> Iterator[AgentPhones]:
    with AgentPhones(port=stack.agents_port, answer_after_ms=300, talk_ms=4000) as phones:
        yield phones


async def test_vanished_callers_are_ended_by_where_they_were_and_never_offered(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    for a in AGENTS:  # no agent free: the queued caller waits in the ACD's music loop
        tongdai(stack, "agent", "pause", a)
    rung_before = agents.counts.ringing
    try:
        # one walks into the procedures menu (a 23 s prompt) and vanishes there; one asks for
        # an operator and vanishes while waiting; each silent from 4.84 s after the answer
        in_menu = [Wait(GAP), Key("1"), Wait(3000), Vanish(ENDED_WITHIN_S * 1000)]
        in_queue = [Wait(GAP), Key("0"), Wait(3000), Vanish(ENDED_WITHIN_S * 1000)]
        silent_after_s = (GAP + 140 + 200 + 3000) / 1000
        started = time.monotonic()
        (menu_caller,), (queue_caller,) = await asyncio.gather(
            call(stack, in_menu), call(stack, in_queue)
        )
        took = time.monotonic() - started
        menu_t = await ticket_of(tickets, menu_caller)
        queue_t = await ticket_of(tickets, queue_caller)
        # an agent frees up: the vanished caller is not offered; the next caller is
        assert agents.counts.ringing == rung_before, agents.counts
        tongdai(stack, "agent", "unpause", AGENTS[0])
        (live,) = await call(stack, [Wait(GAP), Key("0"), ExpectHangup(60_000)])
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    # both SIPp runs succeeded: Asterisk's BYE reached each within 45 s of its silence
    assert took < silent_after_s + ENDED_WITHIN_S + 10
    seen = {
        t.caller: (t.outcome, t.queue, t.agent, [(s.node, s.key, s.detail) for s in t.ivr_path])
        for t in (menu_t, queue_t)
    }
    assert menu_t.outcome == Outcome.ABANDONED_IVR and menu_t.queue is None, seen
    assert [s.node for s in menu_t.ivr_path][:1] == ["main"], seen
    assert menu_t.ivr_path[-1].node == "hangup", seen
    assert queue_t.outcome == Outcome.ABANDONED_QUEUE, seen
    assert (queue_t.queue, queue_t.agent) == ("chung", None), seen
    for t in (menu_t, queue_t):
        assert t.started_at is not None and t.ended_at is not None
        silent_for = (t.ended_at - t.started_at).total_seconds() - silent_after_s
        # ended by the media time-out: not before it, and well within 45 s of the silence
        assert RTP_TIMEOUT_S - 2 <= silent_for <= ENDED_WITHIN_S, (t.caller, silent_for, seen)
    rows = [r[4] for r in queue_log(stack) if r[1] == queue_t.uniqueid]
    assert rows == ["ENTERQUEUE", "ABANDON"], rows
    live_t = await ticket_of(tickets, live)
    assert (live_t.outcome, live_t.agent) == (Outcome.ANSWERED, AGENTS[0]), live_t
    counts = agents.counts
    assert counts.ringing_uris[rung_before:] == [f"sip:{AGENTS[0]}"], counts


async def test_a_live_caller_waiting_silently_longer_than_the_media_timeout_stays(
    stack: Stack, agents: AgentPhones, tickets: SqlTicketStore
) -> None:
    """The control: a caller who presses nothing and says nothing for 40 s (as every lab SIPp
    phone: media keep-alives only) is not taken for dead."""
    for a in AGENTS:
        tongdai(stack, "agent", "pause", a)
    try:
        (caller,) = await call(stack, [Wait(GAP), Key("0"), Wait(40_000), HangUp()])
    finally:
        for a in AGENTS:
            tongdai(stack, "agent", "unpause", a)
    t = await ticket_of(tickets, caller)
    assert t.outcome == Outcome.ABANDONED_QUEUE and t.started_at and t.ended_at
    assert (t.ended_at - t.started_at).total_seconds() > 40


async def test_hanging_up_while_keying_a_dossier_code_is_a_hang_up(
    stack: Stack, tickets: SqlTicketStore
) -> None:
    # 2: dossier status; two keys of the code (SIP INFO), then the caller hangs up before #
    (caller,) = await call(stack, [Wait(GAP), Key("2"), Wait(2500), Keys("12"), HangUp()])
    t = await ticket_of(tickets, caller)
    path = [(s.node, s.key, s.detail) for s in t.ivr_path]
    assert t.outcome == Outcome.ABANDONED_IVR, path
    assert path == [("main", "2", None), ("hangup", None, None)], path
    assert t.dossier_code is None
