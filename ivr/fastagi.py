"""Our own asyncio FastAGI server (panoramisk's freezes on a client closing mid-headers).

Each connection is one call, handled in its own task that the server owns (kept in a set,
cancelled on shutdown). Nothing a client sends can stop other calls: headers are read with a
bounded ``readuntil`` under a deadline, oversized lines and garbage close that connection only,
and a connection limit protects the process (past it, Asterisk sees a failed AGI and the
dialplan's fallback sends the call to the general queue).

The handler receives an ``AgiChannel`` and the script name from ``agi_network_script``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ivr.agi import AgiChannel, AgiProtocolError, read_headers
from tongdai.errors import AgiHangup, TelephonyError
from tongdai.logs import call_id_var

log = logging.getLogger(__name__)

Handler = Callable[[AgiChannel, str], Awaitable[None]]
#: one AGI script: ``agi://host:port/<name>`` runs it with the call's channel
Script = Callable[[AgiChannel], Awaitable[None]]

#: the longest line we accept from Asterisk; AGI header lines are short
LINE_LIMIT = 16 * 1024


class AgiScripts:
    """The scripts the engine serves, by name; each domain registers its own (the IVR ``ivr``,
    the ACD ``acd_wait`` and ``survey``, the ACD benchmark ``acd_enter``). Use it as the
    server's handler. ``running(name)`` counts the calls in a script now (the IVR gauge)."""

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}
        self._running: dict[str, int] = {}

    def add(self, name: str, script: Script) -> None:
        if name in self._scripts:
            raise ValueError(f"AGI script {name!r} registered twice")
        self._scripts[name] = script
        self._running[name] = 0

    @property
    def names(self) -> list[str]:
        return sorted(self._scripts)

    def running(self, name: str) -> int:
        return self._running.get(name, 0)

    async def __call__(self, channel: AgiChannel, name: str) -> None:
        script = self._scripts.get(name)
        if script is None:
            log.warning("unknown AGI script %r: nothing to run", name)
            return
        self._running[name] += 1
        try:
            await script(channel)
        finally:
            self._running[name] -= 1


class FastAgiServer:
    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        header_timeout: float = 5.0,
        command_timeout: float = 60.0,
        max_connections: int = 2000,
        backlog: int = 1024,
    ) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.max_connections = max_connections
        #: pending connections the kernel queues for us (capped by net.core.somaxconn);
        #: asyncio's default of 100 is small for a burst of calls: a connection dropped
        #: from a full queue waits for TCP's SYN retry (1 s, then 3 s) before its AGI runs
        self.backlog = backlog
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls_handled = 0
        self.connections_rejected = 0

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connect,
            self.host,
            self.port,
            limit=LINE_LIMIT,
            reuse_address=True,
            backlog=self.backlog,
        )
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._tasks) >= self.max_connections:
            self.connections_rejected += 1
            log.warning("FastAGI connection limit (%d) reached: refusing", self.max_connections)
            await _close(writer)
            return
        self._tasks.add(task)  # asyncio.start_server created this task; we own it from here
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            env = await read_headers(reader, self.header_timeout)
        except (AgiProtocolError, AgiHangup, TimeoutError) as exc:
            log.warning("FastAGI: dropping %s before a call started: %s", peer, exc or "timeout")
            return
        call_id_var.set(env.get("agi_uniqueid", "?"))
        script = env.get("agi_network_script", "").strip("/")
        channel = AgiChannel(reader, writer, env, command_timeout=self.command_timeout)
        self.calls_handled += 1
        try:
            await self._handler(channel, script)
        except AgiHangup:
            log.info("call ended by hang-up")
        except (TelephonyError, ConnectionError) as exc:
            log.warning("call ended on a protocol error: %s", exc)
        except Exception:
            # a bug in one call's logic must not take the server down; it is logged loudly
            log.exception("call handler failed")

    async def close(self) -> None:
        """Stop accepting, cancel the calls in progress and wait for them to finish."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()


async def _close(writer: asyncio.StreamWriter) -> None:
    if writer.is_closing():
        return
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(2):
            await writer.wait_closed()
