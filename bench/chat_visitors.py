"""``python -m bench.chat_visitors URL N ROUNDS``: the web chat visitors of ``bench.channels``,
in their own process (so the engine's CPU is measured alone). N visitors open a WebSocket at
once; each sends ``ROUNDS`` messages ``q:<visitor>:<round>``, one after the other, waiting each
time for the agent's answer ``a:<visitor>:<round>``. Prints one JSON document: per message the
time it was sent and the time its answer arrived (``time.monotonic``, comparable with the
engine's on the same machine), and the visitors that failed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import websockets

#: how long a visitor waits for one answer before counting it lost
ANSWER_TIMEOUT_S = 180.0


async def _visitor(url: str, i: int, rounds: int, out: dict[str, Any]) -> None:
    async with websockets.connect(url, open_timeout=120, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "token": None}))
        while json.loads(await ws.recv())["type"] != "history":
            pass
        for r in range(rounds):
            tag = f"{i}:{r}"
            out["sent"][tag] = time.monotonic()
            await ws.send(json.dumps({"type": "message", "cid": f"v{i}r{r}", "text": f"q:{tag}"}))
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                while True:
                    e = json.loads(await ws.recv())
                    if e.get("type") == "message" and e.get("text") == f"a:{tag}":
                        out["answered"][tag] = time.monotonic()
                        break


async def run(url: str, n: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"sent": {}, "answered": {}, "failed": []}

    async def one(i: int) -> None:
        try:
            await _visitor(url, i, rounds, out)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            out["failed"].append(f"{i}: {type(exc).__name__}: {exc}"[:200])

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    out["wall_s"] = time.monotonic() - began
    return out


def main() -> None:
    url, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(run(url, n, rounds))))


if __name__ == "__main__":
    main()
