"""The special announcement from the wallboard: synthesise the audio, then make it active.

Same steps as ``tongdai announce set`` (``ivr/cli.py``): ``ivr.prompts.build`` writes
``thong_bao_<epoch>.wav`` with espeak-ng and sox (in a worker thread: it takes a second or two
and the event loop also runs the calls), then ``ivr.announcements.set_announcement``
records it with the path Asterisk plays it from.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.announcements import (
    Announcement,
    active_announcement,
    clear_announcement,
    set_announcement,
)
from ivr.prompts import Catalogue, build
from tongdai.clock import utcnow

MAX_TEXT = 500


class Announcer(Protocol):
    async def current(self) -> Announcement | None: ...

    async def set(self, text: str, until: datetime | None, by: str) -> Announcement: ...

    async def clear(self, by: str) -> int: ...


class SqlAnnouncer:
    """``synthesize=False`` records the text only (tests; the IVR then has nothing to play)."""

    def __init__(
        self,
        engine: AsyncEngine,
        out_dir: Path | None = None,
        asterisk_dir: str = "",
        *,
        synthesize: bool = True,
    ) -> None:
        self.engine = engine
        self.out_dir = out_dir
        self.asterisk_dir = asterisk_dir
        self.synthesize = synthesize and out_dir is not None

    async def current(self) -> Announcement | None:
        return await active_announcement(self.engine, utcnow())

    async def set(self, text: str, until: datetime | None, by: str) -> Announcement:
        """ValueError for an empty text or a past ``until``; TongdaiError if synthesis fails."""
        if not text.strip():
            raise ValueError("announcement text is empty")
        prompt = None
        if self.synthesize and self.out_dir is not None:
            name = f"thong_bao_{int(time.time())}"
            catalogue = Catalogue({name: text})
            await asyncio.to_thread(build, catalogue, self.out_dir, progress=False)
            prompt = f"{self.asterisk_dir}/{name}"
        return await set_announcement(self.engine, text, prompt, until, by)

    async def clear(self, by: str) -> int:
        return await clear_announcement(self.engine, by)
