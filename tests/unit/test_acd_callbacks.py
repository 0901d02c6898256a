"""Callbacks: the caller hangs up and keeps their place; caller-first or agent-first; retries."""

from __future__ import annotations

import pytest
from test_acd_dispatch import FakeClock, make, offers_of

from acd.agent import AcdError, AgentState
from acd.calls import CallOutcome, CallState, CallTransition
from acd.config import CallbackConfig
from acd.dispatch import Dispatcher

A, C = AgentState, CallState


def setup(mode: str, **cb: float) -> tuple[Dispatcher, FakeClock]:
    d, clock = make(
        {"a1": {"thu_tuc": 1}, "a2": {"thu_tuc": 1}},
        callback=CallbackConfig(mode=mode, offer_after_s=30, **cb),  # type: ignore[arg-type]
    )
    for i in range(3):
        d.call_arrived(f"c{i}", "thu_tuc", caller=f"090500000{i}")
        clock.t += 1
    return d, clock


def test_given_a_long_wait_then_a_callback_may_be_offered_and_keeps_the_place() -> None:
    d, clock = setup("caller_first")
    assert not d.may_offer_callback("c0")
    clock.t += 30
    assert d.may_offer_callback("c0")
    tr = d.request_callback("c0")
    assert (tr.event, tr.to_state, tr.position, tr.detail) == (
        "callback_requested",
        C.CALLBACK_WAITING,
        1,
        "1",
    )
    assert d.position("c0") == 1 and d.position("c1") == 2
    assert not d.calls["c0"].on_line
    assert not d.may_offer_callback("c0")


def test_caller_first_dials_the_citizen_then_rings_the_agent_once_they_answer() -> None:
    d, clock = setup("caller_first")
    clock.t += 30
    d.request_callback("c0")
    d.agent_login("a1")
    (offer,) = d.assign()
    assert (offer.call_id, offer.agent_id, offer.callback, offer.mode) == (
        "c0",
        "a1",
        True,
        "caller_first",
    )
    assert d.calls["c0"].state is C.CALLBACK_DIALING
    assert d.agents["a1"].state is A.RINGING  # reserved while the citizen is dialled
    clock.t += 8
    assert d.callback_answered("c0").to_state is C.OFFERED
    clock.t += 3
    tr = d.answered("c0", peer="agent-leg-1")
    assert (tr.event, tr.to_state, tr.ring_s, tr.detail) == (
        "connect",
        C.CONNECTED,
        3,
        "agent-leg-1",
    )
    clock.t += 60
    assert d.call_completed("c0", "caller").outcome is CallOutcome.ANSWERED
    assert d.agents["a1"].calls_today == 1


def test_caller_first_when_the_agent_rings_out_then_the_citizen_waits_on_the_line() -> None:
    d, clock = setup("caller_first")
    d.request_callback("c0")
    d.agent_login("a1")
    d.assign()
    d.callback_answered("c0")
    tr = d.ring_no_answer("c0")
    assert tr.to_state is C.WAITING and d.calls["c0"].on_line
    assert d.position("c0") == 1


def test_agent_first_rings_the_agent_then_dials_the_citizen() -> None:
    d, clock = setup("agent_first")
    d.request_callback("c0")
    d.agent_login("a1")
    (offer,) = d.assign()
    assert (offer.callback, offer.mode) == (True, "agent_first")
    assert d.calls["c0"].state is C.OFFERED
    tr = d.answered("c0")
    assert (tr.event, tr.to_state) == ("callback_dialing", C.CALLBACK_DIALING)
    assert d.agents["a1"].state is A.ON_CALL
    assert d.callback_answered("c0").to_state is C.CONNECTED
    d.call_completed("c0", "agent")
    assert "c0" not in d.calls


def test_agent_first_when_the_agent_rings_out_then_the_callback_waits_again() -> None:
    d, clock = setup("agent_first")
    d.request_callback("c0")
    d.agent_login("a1")
    d.assign()
    assert d.ring_no_answer("c0").to_state is C.CALLBACK_WAITING
    assert d.calls["c0"].callback_attempts == 0  # the citizen was never dialled


@pytest.mark.parametrize("mode", ["caller_first", "agent_first"])
def test_given_failed_callbacks_then_retry_later_at_the_same_place_until_max_attempts(
    mode: str,
) -> None:
    d, clock = setup(mode, max_attempts=2, retry_after_s=120)
    d.request_callback("c0")
    d.agent_login("a1")
    d.agent_login("a2")
    d.agent_pause("a2", "break")

    def dial_and_fail() -> CallTransition:
        (offer,) = [o for o in d.assign() if o.call_id == "c0"]
        if mode == "agent_first":
            d.answered("c0")
        return d.callback_failed("c0")

    tr = dial_and_fail()
    assert (tr.event, tr.to_state) == ("callback_retry", C.CALLBACK_WAITING)
    assert d.agents["a1"].state is A.AVAILABLE and d.agents["a1"].misses == 0
    assert d.agents["a1"].calls_today == 0
    assert d.position("c0") == 1
    # not before retry_after_s: c1 goes first meanwhile
    assert offers_of(d) == [("c1", "a1")]
    d.answered("c1")
    d.call_completed("c1", "caller")
    clock.t += 119
    assert offers_of(d) == [("c2", "a1")]
    d.answered("c2")
    d.call_completed("c2", "caller")
    clock.t += 1
    tr = dial_and_fail()
    assert (tr.event, tr.to_state, tr.outcome) == (
        "callback_failed",
        C.ENDED,
        CallOutcome.CALLBACK_FAILED,
    )
    assert "c0" not in d.calls and d.agents["a1"].state is A.AVAILABLE


def test_a_waiting_callback_can_be_cancelled() -> None:
    d, clock = setup("caller_first")
    d.request_callback("c0")
    tr = d.call_left("c0")
    assert (tr.event, tr.outcome) == ("callback_cancelled", CallOutcome.CALLBACK_CANCELLED)
    assert d.position("c1") == 1


def test_given_callbacks_disabled_then_none_is_offered_or_accepted() -> None:
    d, clock = make(callback=CallbackConfig(enabled=False))
    d.call_arrived("c0", "thu_tuc", caller="0905")
    clock.t += 1000
    assert not d.may_offer_callback("c0")
    with pytest.raises(AcdError, match="disabled"):
        d.request_callback("c0")
