"""The journal's processor: raw platform events kept by a webhook become messages.

Each pending event is parsed by its channel's parser (``channels.zalo``, ``channels.facebook``)
into messages for the inbox; the event is marked done only after the inbox has them, so a
crash in between processes it again (the inbox stores each message once). A parser or store
failure is recorded on the event and retried a few times, never blocking the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from conversations.journal import JournalEvent, SqlEventJournal
from conversations.model import InboundMessage, InboundSink
from tickets.model import Channel
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

Parser = Callable[[bytes], Sequence[InboundMessage]]


class JournalProcessor:
    def __init__(
        self, journal: SqlEventJournal, parsers: Mapping[Channel, Parser], sink: InboundSink
    ) -> None:
        self.journal = journal
        self.parsers = dict(parsers)
        self.sink = sink

    async def process_pending(self, limit: int = 100) -> int:
        """One pass; returns how many events were handled (done or failed)."""
        events = await self.journal.pending(limit)
        for ev in events:
            await self._one(ev)
        return len(events)

    async def _one(self, ev: JournalEvent) -> None:
        parser = self.parsers.get(ev.channel)
        if parser is None:
            await self.journal.failed(ev.id, f"no parser for channel {ev.channel}")
            return
        try:
            for message in parser(ev.payload):
                await self.sink.receive(message)
        except StoreError as exc:
            await self.journal.failed(ev.id, str(exc))
            log.warning("event %s (%s) not processed yet: %s", ev.id, ev.channel, exc)
            return
        except Exception as exc:  # a parser bug must not stop the others; the event stays
            log.exception("event %s (%s) could not be processed", ev.id, ev.channel)
            await self.journal.failed(ev.id, f"{type(exc).__name__}: {exc}")
            return
        await self.journal.done(ev.id)

    async def run(self, interval_s: float = 2.0) -> None:
        while True:
            self.journal.kick.clear()
            try:
                while await self.process_pending() > 0:
                    pass
            except StoreError as exc:
                log.info("event journal not reachable: %s", exc)
            try:
                async with asyncio.timeout(interval_s):
                    await self.journal.kick.wait()
            except TimeoutError:
                pass
