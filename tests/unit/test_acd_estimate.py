"""Estimated wait and announcements: only what the data supports, in whole minutes."""

from __future__ import annotations

from test_acd_dispatch import make

from acd.estimate import WaitEstimator, minutes_for_speech
from acd.waits import announcements, estimated_wait


def test_given_fewer_than_five_recent_calls_then_no_estimate() -> None:
    e = WaitEstimator()
    for i in range(4):
        e.record_handled("thu_tuc", 120, at=1000 + i)
    assert e.estimate("thu_tuc", position=1, serving=2, now=1010) is None
    e.record_handled("thu_tuc", 120, at=1005)
    assert e.estimate("thu_tuc", position=1, serving=2, now=1010) == 60


def test_the_estimate_grows_with_position_and_shrinks_with_agents() -> None:
    e = WaitEstimator()
    for h in (60, 120, 180, 120, 120):
        e.record_handled("q", h, at=0)
    assert e.estimate("q", 3, serving=1, now=10) == 360
    assert e.estimate("q", 3, serving=3, now=10) == 120
    assert e.estimate("q", 3, serving=0, now=10) is None


def test_the_window_keeps_recent_calls_only() -> None:
    e = WaitEstimator(window=5, max_age_s=600)
    for _ in range(5):
        e.record_handled("q", 600, at=0)
    for _ in range(5):
        e.record_handled("q", 60, at=100)  # pushes the slow ones out of the window
    assert e.average_handle_s("q", now=200) == 60
    assert e.average_handle_s("q", now=701) is None  # too old to say anything


def test_minutes_for_speech_round_up_and_never_zero() -> None:
    assert [minutes_for_speech(s) for s in (1, 59, 60, 61, 179.5)] == [1, 1, 1, 2, 3]


def test_given_a_queue_with_history_then_callers_hear_position_and_minutes() -> None:
    d, clock = make(queues={"thu_tuc": {"announce_every_s": 30}, "chung": {}})
    d.agent_login("a1")
    d.agent_login("a2")
    for i in range(5):  # five handled calls of 90 s: the estimate is now supported
        d.call_arrived(f"h{i}", "thu_tuc")
        d.assign()
        d.answered(f"h{i}")
        clock.t += 90
        d.call_completed(f"h{i}", "caller")
    d.agent_pause("a1", "break")
    d.agent_pause("a2", "break")
    for i in range(3):
        d.call_arrived(f"c{i}", "thu_tuc")
    assert estimated_wait(d, "c2") is None  # nobody serves the queue now
    d.agent_unpause("a1")
    assert estimated_wait(d, "c2") == 3 * 90
    d.agent_login("a3")
    d.agent_device("a3", in_use=True)  # busy, but serving the queue: counts
    assert estimated_wait(d, "c2") == 3 * 90 / 2
    assert announcements(d) == []
    clock.t += 30
    due = announcements(d)
    assert [(a.call_id, a.position, a.wait_minutes) for a in due] == [
        ("c0", 1, 1),
        ("c1", 2, 2),
        ("c2", 3, 3),
    ]
    assert announcements(d) == []  # not again before another 30 s
    clock.t += 30
    assert len(announcements(d)) == 3


def test_given_no_history_then_only_the_position_is_announced() -> None:
    d, clock = make(queues={"thu_tuc": {"announce_every_s": 20}, "chung": {}})
    d.call_arrived("c0", "thu_tuc")
    clock.t += 20
    (a,) = announcements(d)
    assert (a.position, a.wait_minutes) == (1, None)


def test_given_announce_position_off_then_no_position() -> None:
    d, clock = make(
        queues={"thu_tuc": {"announce_every_s": 20, "announce_position": False}, "chung": {}}
    )
    d.call_arrived("c0", "thu_tuc")
    clock.t += 20
    (a,) = announcements(d)
    assert a.position is None
