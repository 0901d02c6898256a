"""The queued call's state machine and the ordered lines, on their own."""

from __future__ import annotations

import pytest

from acd.agent import IllegalTransition
from acd.calls import CallOutcome, CallState, Lines, QueuedCall

C = CallState


def call(uid: str, seq: int, priority: int = 0, at: float | None = None) -> QueuedCall:
    return QueuedCall(uid, "q", priority, 1000.0 + seq if at is None else at, seq)


def test_lines_order_by_priority_then_arrival_and_positions_are_dense() -> None:
    lines = Lines(["q", "r"])
    a, b, vip, c = call("a", 0), call("b", 1), call("vip", 2, priority=5), call("c", 3)
    for x in (a, b, vip, c):
        lines.add(x)
    assert [x.uniqueid for x in lines.line("q")] == ["vip", "a", "b", "c"]
    assert [lines.position(x) for x in (vip, a, b, c)] == [1, 2, 3, 4]
    lines.remove(a)
    assert [lines.position(x) for x in (vip, b, c)] == [1, 2, 3]
    same_time = call("d", 4, at=b.entered_at)  # same second: arrival number decides
    lines.add(same_time)
    assert [x.uniqueid for x in lines.line("q")] == ["vip", "b", "d", "c"]
    other = QueuedCall("r1", "r", 0, 999.0, 9)
    lines.add(other)
    assert [x.uniqueid for x in lines.merged()] == ["vip", "r1", "b", "d", "c"]


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (C.WAITING, lambda c: c.answered(1.0)),
        (C.WAITING, lambda c: c.complete("caller", 1.0)),
        (C.CONNECTED, lambda c: c.offer("a1", 1.0)),
        (C.CONNECTED, lambda c: c.end("abandon", CallOutcome.ABANDONED_QUEUE, 1.0, None)),
        (C.OFFERED, lambda c: c.request_callback("0905", "caller_first", "1", 1.0, 1)),
        (C.CALLBACK_WAITING, lambda c: c.callback_answered(1.0)),
        (C.ENDED, lambda c: c.offer("a1", 1.0)),
    ],
)
def test_illegal_call_transitions_are_refused_and_change_nothing(
    state: CallState, action: object
) -> None:
    c = call("u1", 0)
    c.state = state
    before = c.to_dict()
    with pytest.raises(IllegalTransition, match="call u1: cannot"):
        action(c)  # type: ignore[operator]
    assert c.to_dict() == before


def test_complete_requires_who_hung_up() -> None:
    c = call("u1", 0)
    c.offer("a1", 1000.0)
    c.answered(1002.0)
    with pytest.raises(ValueError, match="caller"):
        c.complete("nobody", 1003.0)


def test_from_dict_ignores_unknown_fields_and_restores_enums() -> None:
    c = call("u1", 3)
    c.offer("a1", 1003.0)
    c.answered(1005.0)
    c.complete("agent", 1065.0)
    d = c.to_dict() | {"from_a_newer_version": 1}
    back = QueuedCall.from_dict(d)
    assert back.state is C.ENDED and back.outcome is CallOutcome.ANSWERED
    assert back.to_dict() == c.to_dict()
