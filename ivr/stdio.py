"""Plain (non-network) AGI: one call over standard input and output.

Asterisk runs ``AGI(/path/to/tongdai-agi)`` as a child process per call and speaks AGI on its
stdin/stdout; tests drive it the same way through pipes. The call logic is the same
``AgiChannel`` the FastAGI server uses.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from ivr.agi import AgiChannel, read_headers
from ivr.fastagi import LINE_LIMIT
from tongdai.logs import call_id_var


async def run_stdio(
    handler: Callable[[AgiChannel, str], Awaitable[None]],
    *,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    header_timeout: float = 5.0,
    command_timeout: float = 60.0,
) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdout)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    try:
        env = await read_headers(reader, header_timeout)
        call_id_var.set(env.get("agi_uniqueid", "?"))
        channel = AgiChannel(reader, writer, env, command_timeout=command_timeout)
        await handler(channel, env.get("agi_network_script", "ivr").strip("/") or "ivr")
    finally:
        writer.close()
