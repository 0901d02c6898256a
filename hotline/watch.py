"""Watching the engine's dependencies while it runs, into ``tongdai.health.Health``.

    probes (every ``every_s``, each bounded by ``timeout_s``, all at once):
        database   SELECT 1 on the engine's pool (once the schema is migrated)
        redis      PING (when ``acd.state_store`` or ``web.limits_store`` is a Redis URL)
    events:
        asterisk   AMI ``__connected__`` / ``__disconnected__`` (down too if no session
                   was made within ``grace_s`` of the start)

``Health`` logs each change once; ``health_file`` keeps ``<state_dir>/health.json`` current
for ``tongdai lab status``. A probe's failure text is kept short (it reaches the wallboard).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tongdai.health import Dependency, Health

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[object]]
#: the health file, next to the ticket spool
HEALTH_FILE = "health.json"


def describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    words = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {words[0] if words else ''}"[:200]


def database_probe(engine: AsyncEngine, ready: Callable[[], bool] = lambda: True) -> Probe:
    """``SELECT 1``; skipped (None) until ``ready()``, so it never contradicts the start-up
    migration's own reports while the schema is not there yet."""

    async def probe() -> object:
        if not ready():
            return None
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    return probe


def redis_probe(url: str, timeout_s: float = 2.0) -> tuple[Probe, Callable[[], Awaitable[None]]]:
    """``PING`` on a client of its own; returns the probe and its closer."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )

    async def probe() -> object:
        return await client.ping()

    async def close() -> None:
        await client.aclose()

    return probe, close


async def probe_once(health: Health, probes: Mapping[str, Probe], timeout_s: float = 2.0) -> None:
    """Every probe at once; each one's result (``None`` = skipped) goes into ``health``."""

    async def one(name: str, probe: Probe) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                result = await probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            health.down(name, describe(exc, timeout_s))
            return
        if result is not None:
            health.up(name)

    await asyncio.gather(*(one(n, p) for n, p in probes.items()))


async def watch_probes(
    health: Health,
    probes: Mapping[str, Probe],
    *,
    every_s: float = 2.0,
    timeout_s: float = 2.0,
) -> None:
    """Probe forever (cancel to stop)."""
    while True:
        await probe_once(health, probes, timeout_s)
        await asyncio.sleep(every_s)


async def watch_ami(
    health: Health,
    events: AsyncIterable[Any],
    *,
    grace_s: float = 10.0,
    name: str = "asterisk",
) -> None:
    """``name`` (``asterisk``; one per node behind Kamailio) up/down from an AMI subscription
    to ``__connected__`` and ``__disconnected__``; down if no session was made within
    ``grace_s``."""
    dep = name

    async def grace() -> None:
        await asyncio.sleep(grace_s)
        health.down(dep, f"no AMI session {grace_s:g} s after the start")

    timer: asyncio.Task[None] | None = asyncio.create_task(grace())
    try:
        async for ev in events:
            event = getattr(ev, "name", None)
            if event == "__connected__":
                if timer is not None:
                    timer.cancel()
                    timer = None
                health.up(dep)
            elif event == "__disconnected__":
                get = getattr(ev, "get", None)
                reason = (get("Reason") if callable(get) else None) or "no reason given"
                health.down(dep, f"AMI session lost: {reason}")
    finally:
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer


def health_file(health: Health, path: Path) -> None:
    """Keep ``path`` equal to ``health``'s view: written now and after every change."""

    def write(_name: str = "", _dep: Dependency | None = None) -> None:
        try:
            health.write_file(path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

    write()
    health.listeners.append(write)
