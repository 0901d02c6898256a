"""The IVR's hand-over of a caller to a queue: one interface, two implementations.

``AppQueueHandover`` (here: the default) lets the dialplan run Asterisk's ``Queue()``;
``acd.handover.AcdHandover`` puts the caller in line in the engine's own ACD. The runner calls,
in order: ``admit`` (False: the system is full, the caller hears "busy"), ``variables`` (what
the dialplan reads after the AGI returns), ``hand_over`` (the IVR's last step) and, always,
``release`` (the IVR is done with the call, also after an error or a hang-up). ``rejoin`` is
the way back in for a caller whose engine died under them (``ivr.rejoin``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class QueuedCaller:
    uniqueid: str
    channel: str
    number: str | None
    ticket: str | None


class QueueHandover(Protocol):
    def admit(self, caller: QueuedCaller, queue: str) -> bool:
        """Put the caller in ``queue``'s line; False when the system holds its maximum."""

    def variables(self, queue: str) -> Mapping[str, str]:
        """Dialplan variables for ``queue`` (``TONGDAI_ACTION`` and what it needs)."""

    def hand_over(self, caller: QueuedCaller) -> str | None:
        """The IVR's last step for an admitted caller: ``Dial()`` arguments when an agent is
        free this instant (the caller's own channel dials them), else None."""

    def release(self, uniqueid: str) -> None:
        """The IVR is finished with the call (idempotent; called on every path)."""

    def ready(self) -> bool:
        """May ``rejoin`` be called now? False while the distribution is still coming back
        after a start (its stored state not read yet): the caller is asked to try again."""

    def rejoin(self, caller: QueuedCaller, queue: str) -> bool:
        """A caller the engine lost (``ivr.rejoin``) comes back: put them in ``queue``'s line,
        at the place their arrival gives them, ready for an agent (nothing to do if they are
        there already); False when the system holds its maximum."""


class AppQueueHandover:
    """The dialplan runs ``Queue(${TONGDAI_QUEUE})``; ``on_queued(uniqueid, ticket)`` tells
    the app_queue follower (``appqueue.tracker``) which ticket the call has."""

    def __init__(self, on_queued: Callable[[str, str], None] | None = None) -> None:
        self.on_queued = on_queued

    def admit(self, caller: QueuedCaller, queue: str) -> bool:
        return True

    def variables(self, queue: str) -> Mapping[str, str]:
        return {"TONGDAI_ACTION": "queue"}

    def hand_over(self, caller: QueuedCaller) -> str | None:
        if self.on_queued is not None and caller.uniqueid and caller.ticket:
            self.on_queued(caller.uniqueid, caller.ticket)
        return None

    def release(self, uniqueid: str) -> None:
        return None

    def ready(self) -> bool:
        return True

    def rejoin(self, caller: QueuedCaller, queue: str) -> bool:
        self.hand_over(caller)
        return True
