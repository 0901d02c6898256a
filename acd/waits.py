"""What a waiting caller is told, from the dispatcher's state: position and estimated wait.

Above ``acd.dispatch`` (these take a ``Dispatcher``), so the dispatcher and the estimator
(``acd.estimate``) do not import each other.

- ``estimated_wait``: seconds a call should still expect (None: nothing honest to say).
- ``wait_news``: what the wait loop's announcement says to one caller now.
- ``announcements``: the waiting callers due for "you are number N, about M minutes".
"""

from __future__ import annotations

from dataclasses import dataclass

from acd.calls import Announcement, CallState
from acd.dispatch import Dispatcher
from acd.estimate import minutes_for_speech


@dataclass(frozen=True)
class WaitNews:
    """For one caller in the wait loop: position to say (None: do not), minutes (None: do not
    say), and whether to offer a callback now."""

    position: int | None
    minutes: int | None
    may_call_back: bool


def estimated_wait(d: Dispatcher, uniqueid: str, now: float | None = None) -> float | None:
    """Seconds the call ``uniqueid`` should still expect, or None (do not announce)."""
    pos = d.position(uniqueid)
    if pos is None:
        return None
    q = d.calls[uniqueid].queue
    t = d.clock() if now is None else now
    return d.estimator.estimate(q, pos, d.serving_agents(q), t)


def wait_news(d: Dispatcher, uniqueid: str) -> WaitNews | None:
    """What to say to the caller now (None: the distribution does not hold them)."""
    c = d.calls.get(uniqueid)
    if c is None:
        return None
    position = d.position(uniqueid) if d.cfg.queues[c.queue].announce_position else None
    wait = estimated_wait(d, uniqueid) if position is not None else None
    minutes = minutes_for_speech(wait) if wait is not None else None
    return WaitNews(position, minutes, d.may_offer_callback(uniqueid))


def announcements(d: Dispatcher, now: float | None = None) -> list[Announcement]:
    """Waiting callers due for "you are number N, about M minutes" (marks them announced).

    Due every ``announce_every_s`` of the call's queue (0 = never), counted from entering it."""
    now = d.clock() if now is None else now
    due: list[Announcement] = []
    for c in d.calls.values():
        q = d.cfg.queues[c.queue]
        if c.state is not CallState.WAITING or q.announce_every_s <= 0:
            continue
        if now - max(c.last_announced_at, c.queue_entered_at) < q.announce_every_s:
            continue
        d.touch(c)
        c.last_announced_at = now
        est = estimated_wait(d, c.uniqueid, now)
        position = d.position(c.uniqueid) if q.announce_position else None
        minutes = minutes_for_speech(est) if est is not None else None
        due.append(Announcement(c.uniqueid, c.queue, position, minutes))
    return due
