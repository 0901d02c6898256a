"""Wallboard latency benchmark: from an ACD event to every supervisor's SSE stream, with many
calls in progress and many supervisors connected.

One process, one event loop, like the engine: the real ACD (fake AMI, see
``bench.web_rig.SimAcd``) with ``calls`` callers in line, the web app on uvicorn on a loopback
port, ``supervisors`` SSE clients over real sockets. Each sample puts one more caller in line and
times until every client has the snapshot that counts it (``calls_total``); the figure is the
slowest client of each sample. The browser's own drawing (a few ms) is not included: the browser
tests time one event to the screen.

    results = asyncio.run(run(calls=(100, 1000), supervisors=20))
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.web_rig import SimAcd, web_rig
from web.app import listen, serve


@dataclass(frozen=True)
class Latency:
    calls: int
    supervisors: int
    samples: int
    median_ms: float
    p95_ms: float
    max_ms: float
    #: bytes of one supervisor snapshot at this load
    snapshot_bytes: int

    def line(self) -> str:
        return (
            f"{self.calls:>5} calls, {self.supervisors} supervisors: "
            f"median {self.median_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, max {self.max_ms:.1f} ms "
            f"(snapshot {self.snapshot_bytes / 1024:.0f} KiB, {self.samples} samples)"
        )


class _Client:
    """One supervisor's stream: remembers when it first saw each ``calls_total``."""

    def __init__(self, changed: asyncio.Event) -> None:
        self.seen: dict[int, float] = {}
        self.size = 0
        self.connected = asyncio.Event()
        self.changed = changed

    async def run(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0, read=None)) as c,
            c.stream("GET", "/live", headers=headers) as r,
        ):
            self.connected.set()
            async for line in r.aiter_lines():
                marker = line.find('"calls_total":')
                if line.startswith("data: ") and marker >= 0:
                    end = line.find("}", marker)
                    total = int(line[marker + 14 : end].split(",")[0])
                    self.seen.setdefault(total, time.perf_counter())
                    self.size = len(line)
                    self.changed.set()


async def measure(calls: int, supervisors: int, *, samples: int = 30) -> Latency:
    sim = SimAcd(max_calls=calls + samples + 10)
    await sim.start(login=[a.id for a in sim.router.agents()])
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        async with web_rig(db, sim.control, lifespan=False, stats_every=60.0) as rig:
            sim.listen(rig.deps.hub.on_acd_event)
            for i in range(calls):
                sim.arrive(f"load{i}", ("thu_tuc", "phan_anh", "chung")[i % 3], f"0905{i:06d}")
            sock = listen("127.0.0.1", 0)
            stop, ready = asyncio.Event(), asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(serve(rig.app, sock, stop, ready=ready))
                await asyncio.wait_for(ready.wait(), 10)
                url = f"http://127.0.0.1:{sock.getsockname()[1]}"
                changed = asyncio.Event()
                clients = [_Client(changed) for _ in range(supervisors)]
                tasks = [tg.create_task(c.run(url, rig.tokens["giamsat"])) for c in clients]
                async with asyncio.timeout(30):
                    for c in clients:
                        await c.connected.wait()
                await asyncio.sleep(0.5)  # let the first snapshots through
                worst = []
                for i in range(samples):
                    began = time.perf_counter()
                    sim.arrive(f"bench{i}", "chung", f"0935{i:06d}")
                    total = sum(1 for _ in sim.router.calls())
                    async with asyncio.timeout(10):
                        while True:
                            changed.clear()
                            if all(total in c.seen for c in clients):
                                break
                            await changed.wait()
                    worst.append(max(c.seen[total] for c in clients) - began)
                    await asyncio.sleep(0.15)  # past the publisher's coalescing interval
                stop.set()
                for t in tasks:
                    t.cancel()
    await sim.stop()
    ms = sorted(x * 1000 for x in worst)
    return Latency(
        calls,
        supervisors,
        samples,
        statistics.median(ms),
        ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
        ms[-1],
        max(c.size for c in clients),
    )


async def run(calls: Iterable[int] = (100, 1000), supervisors: int = 20) -> list[Latency]:
    return [await measure(n, supervisors) for n in calls]


if __name__ == "__main__":
    for result in asyncio.run(run()):
        print(result.line())
