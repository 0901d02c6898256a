"""The loop that feeds app_queue's AMI events to the tracker, catching up from Asterisk's
queue_log at start and after every AMI reconnection (calls that entered a queue while the
engine did not watch get their tickets from there)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from datetime import datetime, timedelta
from pathlib import Path

from appqueue.reconcile import OFFSET_FILE, reconcile
from appqueue.tracker import QueueTracker
from pbx.ports import AmiHeaders
from tongdai.clock import utcnow

#: the AMI events the tracker needs (subscribe before logging in: nothing is missed)
QUEUE_EVENTS = ("QueueCallerJoin", "AgentConnect", "QueueCallerAbandon", "Hangup", "__connected__")


async def follow_queues(
    tracker: QueueTracker,
    events: AsyncIterable[AmiHeaders],
    *,
    queue_log: Path,
    watermark: Path,
) -> None:
    """Feed ``events`` to ``tracker`` in order until cancelled; ``watermark`` keeps when we
    last watched (and, beside it, how far into ``queue_log`` we read)."""

    async def catch_up() -> None:
        # on a first start there is no history to invent
        now = utcnow()
        since = _read_watermark(watermark) or now
        await reconcile(
            tracker.tickets,
            queue_log,
            since - timedelta(minutes=1),
            offset_file=watermark.with_name(OFFSET_FILE),
        )
        _write_watermark(watermark, now)
        await tracker.resync()

    await catch_up()
    async for event in events:
        if event.name in ("__connected__", "__overflow__"):  # missed events: catch up
            await catch_up()
        await tracker.handle(event.name, event)


def _read_watermark(path: Path) -> datetime | None:
    try:
        return datetime.fromisoformat(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _write_watermark(path: Path, at: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(at.isoformat())
