"""systemd's notify protocol, for ``Type=notify`` and ``WatchdogSec=`` (deploy/tongdai.service).

``notify("READY=1")`` once the engine serves; ``watchdog()`` pings ``WATCHDOG=1`` at half the
interval systemd asks for (``$WATCHDOG_USEC``) *from the event loop*, so an engine whose
loop is stuck (a blocking call, a busy loop) misses its pings and systemd kills and restarts
it. Without ``$NOTIFY_SOCKET`` (not under systemd: the lab, the tests) both do nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send one datagram to ``$NOTIFY_SOCKET``; False when there is none or it fails."""
    path = (env if env is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("systemd notify %r failed: %s", message, exc)
        return False
    return True


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when no watchdog is set
    for this process (``$WATCHDOG_PID``, when present, must be ours)."""
    env = env if env is not None else dict(os.environ)
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def watchdog(env: dict[str, str] | None = None) -> None:
    """Ping systemd's watchdog forever (returns at once when there is none)."""
    every = watchdog_interval(env)
    if every is None:
        return
    log.info("systemd watchdog: a ping every %.1f s", every)
    while True:
        notify("WATCHDOG=1", env)
        await asyncio.sleep(every)
