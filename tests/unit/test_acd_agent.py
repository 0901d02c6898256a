"""The agent state machine: named transitions, illegal ones refused, time in state, misses."""

from __future__ import annotations

import pytest

from acd.agent import (
    Agent,
    AgentSnapshot,
    AgentState,
    IllegalTransition,
    PauseReason,
    device_is_free,
)
from acd.config import AgentConfig

S = AgentState


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(clock: FakeClock) -> Agent:
    return Agent(AgentConfig("agent101", "Lan", "PJSIP/agent101", {"thu_tuc": 5}), clock)


def test_given_a_full_call_cycle_then_each_transition_is_recorded_with_time() -> None:
    clock = FakeClock()
    a = make(clock)
    trs = [a.login()]
    clock.t += 10
    trs.append(a.offer("c1"))
    clock.t += 3
    trs.append(a.answered())
    clock.t += 60
    trs.append(a.call_ended(wrapup_s=5))
    assert a.wrapup_until == clock.t + 5
    clock.t += 5
    trs.append(a.wrapup_done())
    assert [(t.event, t.from_state, t.to_state) for t in trs] == [
        ("login", S.LOGGED_OUT, S.AVAILABLE),
        ("offer", S.AVAILABLE, S.RINGING),
        ("answered", S.RINGING, S.ON_CALL),
        ("call_ended", S.ON_CALL, S.WRAP_UP),
        ("wrapup_done", S.WRAP_UP, S.AVAILABLE),
    ]
    assert [t.at for t in trs] == [1000, 1010, 1013, 1073, 1078]
    assert trs[1].call_id == trs[3].call_id == "c1"
    assert a.calls_today == 1 and a.last_call_ended_at == 1073 and a.idle_since == 1073
    assert a.time_in[S.ON_CALL] == 60 and a.time_in[S.RINGING] == 3 and a.time_in[S.WRAP_UP] == 5
    clock.t += 7
    assert a.time_in_state() == 7


@pytest.mark.parametrize(
    ("setup", "event"),
    [
        ([], "offer"),  # logged out
        (["login"], "answered"),
        (["login"], "call_ended"),
        (["login"], "unpause"),
        (["login"], "login"),
        (["login", "offer"], "logout"),
        (["login", "offer"], "pause"),
        (["login", "offer", "answered"], "logout"),
        (["login", "pause"], "offer"),
        ([], "wrapup_done"),
    ],
)
def test_given_a_state_when_an_illegal_transition_then_it_is_refused_and_nothing_changes(
    setup: list[str], event: str
) -> None:
    a = make(FakeClock())
    calls = {
        "login": a.login,
        "logout": a.logout,
        "offer": lambda: a.offer("c1"),
        "answered": a.answered,
        "call_ended": lambda: a.call_ended(0),
        "pause": lambda: a.pause("break"),
        "unpause": a.unpause,
        "wrapup_done": a.wrapup_done,
    }
    for step in setup:
        calls[step]()
    before = a.snapshot()
    with pytest.raises(IllegalTransition, match=f"agent agent101: cannot {event} while"):
        calls[event]()
    assert a.snapshot() == before


def test_given_max_misses_ring_no_answers_in_a_row_then_the_agent_is_auto_paused() -> None:
    a = make(FakeClock())
    a.login()
    for i in range(2):
        a.offer(f"c{i}")
        tr = a.ring_no_answer(max_misses=3)
        assert tr.to_state is S.AVAILABLE and tr.call_id == f"c{i}"
    a.offer("c2")
    tr = a.ring_no_answer(max_misses=3)
    assert (tr.to_state, tr.reason) == (S.PAUSED, "missed_calls")
    assert a.pause_reason is PauseReason.MISSED_CALLS and a.call_id is None
    a.unpause()
    assert a.misses == 0 and a.eligible


def test_given_a_miss_then_an_answer_resets_the_consecutive_count() -> None:
    a = make(FakeClock())
    a.login()
    for call in ("c1", "c2"):
        a.offer(call)
        a.ring_no_answer(3)
    a.offer("c3")
    a.answered()
    assert a.misses == 0


def test_given_a_busy_device_then_the_agent_is_never_eligible_and_cannot_be_offered() -> None:
    a = make(FakeClock())
    a.login()
    tr = a.device_busy()
    assert (tr.event, tr.from_state, tr.to_state) == ("device_busy", S.AVAILABLE, S.AVAILABLE)
    assert not a.eligible
    with pytest.raises(IllegalTransition, match="device busy"):
        a.offer("c1")
    a.device_free()
    assert a.eligible
    assert device_is_free("NOT_INUSE") and not device_is_free("INUSE")
    assert not device_is_free("RINGING") and not device_is_free("UNAVAILABLE")


def test_given_pause_during_a_call_then_it_applies_after_wrap_up() -> None:
    a = make(FakeClock())
    a.login()
    a.offer("c1")
    a.answered()
    tr = a.pause(PauseReason.MEAL)
    assert (tr.from_state, tr.to_state, tr.reason) == (S.ON_CALL, S.ON_CALL, "meal")
    a.call_ended(wrapup_s=10)
    assert a.state is S.WRAP_UP
    tr = a.wrapup_done()
    assert (tr.to_state, tr.reason) == (S.PAUSED, "meal")


def test_given_pause_during_a_call_without_wrap_up_then_paused_at_hang_up() -> None:
    a = make(FakeClock())
    a.login()
    a.offer("c1")
    a.answered()
    a.pause("training")
    assert a.call_ended(0).to_state is S.PAUSED
    assert a.pause_reason is PauseReason.TRAINING


def test_given_an_unknown_pause_reason_then_value_error() -> None:
    a = make(FakeClock())
    a.login()
    with pytest.raises(ValueError):
        a.pause("nap")


def test_logout_records_logged_in_time_and_longest_idle_starts_at_login() -> None:
    clock = FakeClock()
    a = make(clock)
    a.login()
    assert a.idle_since == 1000
    clock.t += 3600
    tr = a.logout()
    assert (tr.to_state, tr.logged_in_s) == (S.LOGGED_OUT, 3600)


def test_an_unhandled_callback_does_not_count_as_a_call() -> None:
    a = make(FakeClock())
    a.login()
    a.offer("c1")
    a.answered()
    assert a.call_ended(wrapup_s=30, handled=False).to_state is S.AVAILABLE
    assert a.calls_today == 0 and a.last_call_ended_at is None


def test_snapshot_round_trips_through_a_dict() -> None:
    clock = FakeClock()
    a = make(clock)
    a.login()
    a.offer("c9")
    a.device_busy()
    snap = AgentSnapshot.from_dict(a.snapshot().to_dict())
    b = make(clock)
    b.restore(snap)
    assert b.snapshot() == a.snapshot()
    assert (b.state, b.call_id, b.device_in_use) == (S.RINGING, "c9", True)
