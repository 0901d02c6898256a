"""``python -m bench.webchat_burst N [--db URL]``: N web chat visitors at once on the real stack
(uvicorn on loopback, the event journal, its processor, the inbox with the bot, the outbox and
the web chat's sender; ``bench.chat_rig``). Each opens a socket, says hello, sends one message
and waits for the acknowledgement carrying its ticket code. Prints JSON: messages stored
(must equal N: none lost, none doubled), socket ack (journaled) and ticket-code latency
p50/p99, wall and CPU time. The default database is a fresh one on the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import websockets

from bench.chat_rig import chat_rig
from channels.webchat.settings import WebchatSettings
from tickets.messages import Direction
from web.app import listen, serve

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1) if s else float("nan")


async def _visitor(url: str, i: int, acks: list[float], codes: list[float]) -> None:
    async with websockets.connect(url, open_timeout=60, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "token": None}))
        while json.loads(await ws.recv())["type"] != "history":
            pass
        began = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "cid": f"b{i}", "text": f"Câu hỏi số {i}"}))
        acked = False
        async with asyncio.timeout(120):
            while True:
                e = json.loads(await ws.recv())
                if e["type"] == "ack" and not acked:
                    acks.append(time.perf_counter() - began)
                    acked = True
                elif e["type"] == "message" and e["dir"] == "out" and "1022-" in e["text"]:
                    codes.append(time.perf_counter() - began)
                    return


async def burst(n: int, db_url: str, tmp: Path) -> dict[str, Any]:
    cfg = WebchatSettings(allowed_origins=("*",), rate_per_minute=600, burst=50)
    async with chat_rig(db_url, tmp, cfg=cfg, lifespan=False) as rig:
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        await ready.wait()
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/chat/ws"
        acks: list[float] = []
        codes: list[float] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            await asyncio.gather(*(_visitor(url, i, acks, codes) for i in range(n)))
        finally:
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            stop.set()
            await server
        tickets = await rig.conv.open_conversations()
        stored = 0
        for t in tickets:
            msgs = await rig.conv.messages(t.code)
            stored += sum(1 for m in msgs if m.direction is Direction.IN)
    return {
        "visitors": n,
        "tickets": len(tickets),
        "citizen_messages_stored": stored,
        "lost": n - stored,
        "ack_ms_p50": _pct(acks, 0.5),
        "ack_ms_p99": _pct(acks, 0.99),
        "code_ms_p50": _pct(codes, 0.5),
        "code_ms_p99": _pct(codes, 0.99),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # engine and clients: one process
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


async def _main(n: int, db: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="webchat-burst-") as tmp:
        if db is not None:
            print(json.dumps(await burst(n, db, Path(tmp))))
            return
        name = f"webchat_burst_{os.getpid()}"
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
            print(json.dumps(await burst(n, url, Path(tmp))))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("visitors", type=int, nargs="?", default=100)
    p.add_argument("--db", help="a database URL (default: a fresh PostgreSQL database)")
    args = p.parse_args()
    asyncio.run(_main(args.visitors, args.db))


if __name__ == "__main__":
    main()
