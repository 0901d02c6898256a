"""systemd's notify protocol: READY=1 reaches ``$NOTIFY_SOCKET``, the watchdog pings at half
``$WATCHDOG_USEC`` from the event loop, and nothing happens outside systemd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.sdnotify import notify, watchdog, watchdog_interval


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    folder = tempfile.mkdtemp(prefix="sdn-")  # short: AF_UNIX paths are limited to 107 bytes
    path = str(Path(folder) / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(3)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


def test_ready_reaches_the_notify_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert notify("READY=1", {"NOTIFY_SOCKET": path})
    assert sock.recv(64) == b"READY=1"


def test_outside_systemd_nothing_is_sent() -> None:
    assert not notify("READY=1", {})
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    # a watchdog meant for another process (the service's main pid) is not ours
    other = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert watchdog_interval(other) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15


async def test_the_watchdog_pings_at_half_the_interval(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    sock.setblocking(False)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}  # 0.2 s: a ping every 0.1 s
    task = asyncio.create_task(watchdog(env))
    loop = asyncio.get_running_loop()
    started = loop.time()
    pings = []
    async with asyncio.timeout(3):
        while len(pings) < 3:
            pings.append(await loop.sock_recv(sock, 64))
    elapsed = loop.time() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert pings == [b"WATCHDOG=1"] * 3
    assert 0.15 <= elapsed < 2.0  # the first at once, two more 0.1 s apart


async def test_without_a_watchdog_the_task_ends_at_once() -> None:
    await asyncio.wait_for(watchdog({}), 1)
