"""The journal's processor: raw platform events kept by a webhook become messages.

Each pending event is parsed by its channel's parser (``channels.webchat``, ``channels.zalo``,
``channels.facebook``) into messages for the inbox; the event is marked done only after the
inbox has them all, so a crash in between processes it again (the inbox stores each message
once). A parser or store failure is recorded on the event and retried a few times, never
blocking the others.

Events are processed concurrently by a bounded pool of workers (``KeyedPool``), in lanes that
keep the order where it matters: one citizen's messages (same channel and sender) one after
the other, in the order they were kept; a message after any message it answers (an email's
In-Reply-To/References) that is still under way; two deliveries of the same message (same
channel and external id) one after the other, so the second finds the first stored. Between
processes the store's unique ``(channel, external_id)`` is the backstop: a message stored
concurrently elsewhere (``IntegrityError``) is received again and found as a duplicate.

An event is marked done with the others finishing meanwhile (``_mark_done``, a group
commit): whoever finds no mark under way writes every id waiting, in one UPDATE; those
finishing during that write wait and the first of them writes the next batch. A batch that
fails (or is cut by a stop) leaves its events pending: they are processed again and found
stored.

Events under way are kept in memory and left out of the next reads of the journal, so each is
taken once by this processor; one processor runs per database (``tongdai serve``). Stopping
(``run`` cancelled) lets the events under way finish for ``grace_s``; those still unfinished
are cancelled and, never marked done, are taken again at the next start: none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence

from sqlalchemy.exc import IntegrityError

from conversations.journal import JournalEvent, SqlEventJournal
from conversations.lanes import KeyedPool
from conversations.model import InboundMessage, InboundSink
from tickets.model import Channel
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

Parser = Callable[[bytes], Sequence[InboundMessage]]

#: workers processing events at once (each holds at most one database connection at a time)
WORKERS = 4
#: events read from the journal and not finished yet, at most
MAX_IN_FLIGHT = 400


def lane_keys(m: InboundMessage) -> list[Hashable]:
    """The lanes ``m`` is ordered in: its sender's, its own id's, and the ids it answers."""
    channel = Channel(m.channel).value
    keys: list[Hashable] = [
        ("sender", channel, m.sender.kind.value, m.sender.value),
        ("message", channel, m.external_id),
    ]
    keys += [("message", channel, ref) for ref in m.in_reply_to if ref]
    return keys


class JournalProcessor:
    def __init__(
        self,
        journal: SqlEventJournal,
        parsers: Mapping[Channel, Parser],
        sink: InboundSink,
        *,
        workers: int = WORKERS,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 (got {max_in_flight})")
        self.journal = journal
        self.parsers = dict(parsers)
        self.sink = sink
        self.pool = KeyedPool(workers)
        self.max_in_flight = max_in_flight
        #: events read and not finished, by journal id
        self._in_flight: dict[int, asyncio.Task[bool]] = {}
        #: set when an event under way finishes (a full processor reads again)
        self._room = asyncio.Event()
        #: events processed, waiting to be marked done; their batch's future (its result is
        #: the error that kept the batch unmarked, or None); the batch being written
        self._done_ids: list[int] = []
        self._done_batch: asyncio.Future[Exception | None] | None = None
        self._marking: asyncio.Future[Exception | None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def dispatch(self, limit: int = 100) -> list[asyncio.Task[bool]]:
        """Read up to ``limit`` pending events not under way yet and start them; returns their
        tasks (each ends True when its event is done, False when it failed and stays pending)."""
        room = min(limit, self.max_in_flight - len(self._in_flight))
        if room <= 0:
            return []
        events = await self.journal.pending(room, exclude=list(self._in_flight))
        started: list[asyncio.Task[bool]] = []
        for ev in events:
            if ev.id in self._in_flight:  # taken by a concurrent read meanwhile
                continue
            # parsed and submitted here, in journal order: the lanes keep that order
            jobs = self._submit(ev)
            task = asyncio.create_task(self._event(ev, jobs), name=f"journal-event-{ev.id}")
            self._in_flight[ev.id] = task
            task.add_done_callback(functools.partial(self._finished, ev.id))
            started.append(task)
        return started

    def _finished(self, event_id: int, _task: asyncio.Task[bool]) -> None:
        self._in_flight.pop(event_id, None)
        self._room.set()

    async def process_pending(self, limit: int = 100) -> int:
        """One pass: start up to ``limit`` pending events and wait for them; returns how many
        were handled (done or failed)."""
        started = await self.dispatch(limit)
        if started:
            await asyncio.wait(started)
        return len(started)

    def _submit(self, ev: JournalEvent) -> list[asyncio.Task[None]] | str:
        """The event's messages submitted to their lanes, or why it cannot be processed."""
        parser = self.parsers.get(ev.channel)
        if parser is None:
            return f"no parser for channel {ev.channel}"
        try:
            messages = list(parser(ev.payload))
        except Exception as exc:  # a parser bug must not stop the others; the event stays
            log.exception("event %s (%s) could not be parsed", ev.id, ev.channel)
            return f"{type(exc).__name__}: {exc}"
        return [
            self.pool.submit(lane_keys(m), functools.partial(self._receive, m)) for m in messages
        ]

    async def _receive(self, message: InboundMessage) -> None:
        try:
            await self.sink.receive(message)
        except IntegrityError:
            # stored concurrently by another processor: a second look finds it stored
            log.info("message %s stored concurrently: received again", message.external_id)
            await self.sink.receive(message)

    async def _event(self, ev: JournalEvent, jobs: list[asyncio.Task[None]] | str) -> bool:
        try:
            error = jobs if isinstance(jobs, str) else await self._outcome(ev, jobs)
            if error is None:
                await self._mark_done(ev.id)
                return True
            await self.journal.failed(ev.id, error)
        except StoreError as exc:  # not marked: the event stays pending, taken again later
            log.warning("event %s (%s) not recorded: %s", ev.id, ev.channel, exc)
        except asyncio.CancelledError:
            if not isinstance(jobs, str):
                for job in jobs:
                    job.cancel()
            raise
        return False

    @staticmethod
    def _new_batch() -> asyncio.Future[Exception | None]:
        return asyncio.get_running_loop().create_future()

    async def _mark_done(self, event_id: int) -> None:
        """Mark ``event_id`` done in one UPDATE with the events finishing meanwhile; raises
        ``StoreError`` when its batch could not be marked (the events stay pending)."""
        self._done_ids.append(event_id)
        if self._done_batch is None:
            self._done_batch = self._new_batch()
        mine = self._done_batch
        while not mine.done():
            if self._marking is not None:  # a batch is being written: ours is the next one
                await asyncio.wait([self._marking])
                continue
            ids, self._done_ids = self._done_ids, []
            self._done_batch = self._new_batch()
            self._marking = mine
            error: Exception | None = None
            try:
                await self.journal.done_many(ids)
            except Exception as exc:  # StoreError mostly: raised below, to each of the batch
                error = exc
            except asyncio.CancelledError:
                error = StoreError(f"stopped before {len(ids)} events were marked done")
                raise
            finally:
                self._marking = None
                mine.set_result(error)
        error = mine.result()
        if error is not None:
            raise error

    async def _outcome(self, ev: JournalEvent, jobs: list[asyncio.Task[None]]) -> str | None:
        if not jobs:
            return None
        await asyncio.wait(jobs)
        error: str | None = None
        for job in jobs:
            exc = job.exception() if not job.cancelled() else asyncio.CancelledError()
            if exc is None:
                continue
            if isinstance(exc, StoreError):
                log.warning("event %s (%s) not processed yet: %s", ev.id, ev.channel, exc)
                reason = str(exc)
            else:
                log.error(
                    "event %s (%s) could not be processed",
                    ev.id,
                    ev.channel,
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
                reason = f"{type(exc).__name__}: {exc}"
            error = error or reason
        return error

    async def drain(self, timeout_s: float | None = None) -> int:
        """Wait (up to ``timeout_s``) for the events under way; returns how many are left."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight.values()), timeout=timeout_s)
        return len(self._in_flight)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let the events under way finish for ``grace_s``, then cancel the rest: never marked
        done, they are taken again at the next start."""
        try:
            left = await self.drain(grace_s)
            if left:
                log.warning("%d journal events left unfinished: taken again at start", left)
        finally:
            tasks = list(self._in_flight.values())
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def run(self, interval_s: float = 2.0, *, batch: int = 100, grace_s: float = 5.0) -> None:
        """Process events until cancelled: at once when one is kept (the journal's kick) or a
        place frees up, and every ``interval_s`` for retries."""
        try:
            while True:
                self.journal.kick.clear()
                self._room.clear()
                try:
                    started = await self.dispatch(batch)
                except StoreError as exc:
                    log.info("event journal not reachable: %s", exc)
                    started = []
                if len(started) == batch and self.in_flight < self.max_in_flight:
                    continue  # more may be waiting: read on
                wake = [asyncio.ensure_future(self.journal.kick.wait())]
                if self.in_flight >= self.max_in_flight:
                    wake.append(asyncio.ensure_future(self._room.wait()))
                try:
                    await asyncio.wait(
                        wake, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for w in wake:
                        w.cancel()
        finally:
            await self.stop(grace_s)
