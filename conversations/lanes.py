"""A bounded pool of workers with ordered lanes: ``KeyedPool``.

``submit(keys, job)`` runs ``job()`` in its own task once every job submitted earlier under any
of the same ``keys`` has finished (whatever its outcome) and one of ``workers`` slots is free.
Jobs that share no key run side by side; jobs that share one run one after the other, in the
order they were submitted. A job waiting for its lane holds no slot, so one busy citizen never
keeps the others waiting. Dependencies only ever point to jobs submitted earlier, so lanes
cannot deadlock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class KeyedPool:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker (got {workers})")
        self.workers = workers
        self._slots = asyncio.Semaphore(workers)
        #: the last job submitted under each key that has not finished yet
        self._tails: dict[Hashable, asyncio.Task[Any]] = {}
        #: jobs running now (holding a slot), for tests and the benchmark
        self.running = 0
        self.peak = 0

    @property
    def lanes(self) -> int:
        """Keys with a job submitted and not finished."""
        return len(self._tails)

    def submit(self, keys: Iterable[Hashable], job: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """Start ``job`` after the earlier jobs of its ``keys``; returns its task (cancel it
        to drop the job; the jobs after it in its lanes still run)."""
        lane_keys = list(dict.fromkeys(keys))
        before = {t for k in lane_keys if (t := self._tails.get(k)) is not None}
        task: asyncio.Task[T] = asyncio.create_task(self._run(before, job))
        for k in lane_keys:
            self._tails[k] = task

        def forget(done: asyncio.Task[T]) -> None:
            for k in lane_keys:
                if self._tails.get(k) is done:
                    del self._tails[k]

        task.add_done_callback(forget)
        return task

    async def _run(self, before: set[asyncio.Task[Any]], job: Callable[[], Awaitable[T]]) -> T:
        if before:
            await asyncio.wait(before)  # their outcome is theirs: failures do not stop the lane
        async with self._slots:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                return await job()
            finally:
                self.running -= 1
