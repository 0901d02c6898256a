"""``tongdai bench channels``: the message channels under load, on the real stack.

The engine side runs here (``bench.chat_rig``: uvicorn on loopback, the event journal and its
processor, the inbox with the bot, the outbox and the web chat's sender, on a fresh PostgreSQL
database); the visitors run in a child process (``bench.chat_visitors``), so this process's CPU
is the engine's (and the simulated agents'). ``--visitors`` web chat visitors open a WebSocket
at once and send ``--rounds`` messages each, one after the other; simulated agents
(``--agents`` at a time) see each citizen message through the inbox's listeners (as the
console's live view does) and answer it through the Outbox (as the console's reply does).
Meanwhile ``--mails`` mails arrive: the email channel is not on main yet, so they are appended
to the event journal as the email reader will append them (channel ``email``, keyed by
Message-ID) and parsed by a stand-in parser into the same inbox.

Reported: messages lost (sent and not stored, answers not received, mails not stored: must be
0), visitor-to-agent latency (sent on the socket -> the agent's view is told) and
agent-to-visitor latency (the agent's reply -> on the visitor's socket), p50/p99, messages and
mails ingested per second, CPU and peak RSS of the engine process. ``--with-acd N`` also runs
``tongdai bench acd --concurrent N --modes ours`` alone, then again while the chat load runs,
and reports the calls' time to agent side by side (p99 ratio loaded/alone). That part starts
the lab: run it under ``flock /tmp/tongdai-lab.lock``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from bench.chat_rig import chat_rig
from channels.webchat.settings import WebchatSettings
from conversations.model import Identity, IdentityKind, InboundMessage
from tickets.messages import Author, Direction, Message
from tickets.model import Channel
from tongdai.errors import TongdaiError
from web.app import listen, serve

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: how long the engine waits for the last mails and answers once the visitors are done
SETTLE_S = 120.0


def pct(xs: list[float], p: float) -> float | None:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1) if s else None


def summary(xs: list[float]) -> dict[str, float | int | None]:
    return {"n": len(xs), "p50": pct(xs, 0.5), "p99": pct(xs, 0.99), "max": pct(xs, 1.0)}


def parse_bench_mail(payload: bytes) -> list[InboundMessage]:
    """Stand-in for the email reader's parser: ``{"from", "message_id", "subject", "text"}``."""
    doc = json.loads(payload)
    return [
        InboundMessage(
            channel=Channel.EMAIL,
            external_id=doc["message_id"],
            sender=Identity(IdentityKind.EMAIL, doc["from"]),
            received_at=datetime.now(UTC),
            subject=doc["subject"],
            text=doc["text"],
            meta={"message_id": doc["message_id"]},
        )
    ]


class Agents:
    """Simulated agents: answer every bench question ``q:<tag>`` with ``a:<tag>``."""

    def __init__(self, rig: Any, agents: int) -> None:
        self.rig = rig
        self.slots = asyncio.Semaphore(agents)
        self.seen: dict[str, float] = {}
        self.replied: dict[str, float] = {}
        self.mails_stored = 0
        self.last_mail_at = 0.0
        self.errors: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()
        #: set at every mail stored and answer given (the settle loop waits on it)
        self.changed = asyncio.Event()

    def on_message(self, m: Message) -> None:
        self.changed.set()
        if m.direction is not Direction.IN:
            return
        if m.channel == Channel.EMAIL:
            self.mails_stored += 1
            self.last_mail_at = time.monotonic()
            return
        if m.channel == Channel.WEBCHAT and m.body.startswith("q:"):
            tag = m.body[2:]
            self.seen[tag] = time.monotonic()
            task = asyncio.create_task(self.answer(m.ticket_code, tag))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def answer(self, code: str, tag: str) -> None:
        async with self.slots:
            self.replied[tag] = time.monotonic()
            try:
                await self.rig.outbox.reply(
                    code, f"a:{tag}", author=Author.AGENT, author_id="agent101"
                )
            except (TongdaiError, KeyError) as exc:
                self.errors.append(f"{tag}: {exc}"[:200])
            finally:
                self.changed.set()


async def inject_mails(journal: Any, n: int, began: list[float]) -> None:
    began.append(time.monotonic())
    for i in range(n):
        mid = f"<bench-{i}@mail.example>"
        doc = {
            "from": f"dan{i}@mail.example",
            "message_id": mid,
            "subject": f"Hỏi về thủ tục số {i}",
            "text": f"Kính gửi tổng đài 1022, tôi hỏi về hồ sơ số {i}.",
        }
        await journal.append(Channel.EMAIL, mid, json.dumps(doc, ensure_ascii=False).encode())


async def _stored(engine: Any) -> dict[str, int]:
    query = text("SELECT channel, count(*) FROM messages WHERE direction = 'in' GROUP BY channel")
    async with engine.connect() as conn:
        return {str(c): int(n) for c, n in (await conn.execute(query)).all()}


async def chat_load(
    db_url: str, tmp: Path, visitors: int, rounds: int, mails: int, agents: int
) -> dict[str, Any]:
    cfg = WebchatSettings(allowed_origins=("*",), rate_per_minute=6000, burst=1000)
    async with chat_rig(
        db_url, tmp, cfg=cfg, lifespan=False, extra_parsers={Channel.EMAIL: parse_bench_mail}
    ) as rig:
        sim = Agents(rig, agents)
        rig.inbox.listeners.append(sim.on_message)
        sock = listen("127.0.0.1", 0)
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(rig.app, sock, stop, ready=ready))
        await ready.wait()
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/chat/ws"
        self0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        mail_began: list[float] = []
        try:
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.chat_visitors", url, str(visitors), str(rounds),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            mailer = asyncio.create_task(inject_mails(rig.journal, mails, mail_began))
            out, _ = await client.communicate()
            await mailer
            async with asyncio.timeout(SETTLE_S):
                while sim.mails_stored < mails or sim.tasks:
                    sim.changed.clear()
                    await sim.changed.wait()
            wall = time.monotonic() - wall0
            self1 = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await server
        got = json.loads(out or b"{}")
        stored = await _stored(rig.web.deps.engine)
    sent, answered = got.get("sent", {}), got.get("answered", {})
    v2a = [sim.seen[t] - sent[t] for t in sent if t in sim.seen]
    a2v = [answered[t] - sim.replied[t] for t in answered if t in sim.replied]
    rtt = [answered[t] - sent[t] for t in answered if t in sent]
    cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    chat_in = stored.get(Channel.WEBCHAT.value, 0)
    mail_s = sim.last_mail_at - mail_began[0] if mail_began and sim.mails_stored else None
    return {
        "chat": {
            "visitors": visitors,
            "rounds": rounds,
            "messages_expected": visitors * rounds,
            "messages_sent": len(sent),
            "citizen_messages_stored": chat_in,
            "answers_received": len(answered),
            "lost": visitors * rounds - len(answered),
            "failed_visitors": got.get("failed", [])[:10],
            "agent_errors": sim.errors[:10],
            "visitor_to_agent_ms": summary(v2a),
            "agent_to_visitor_ms": summary(a2v),
            "round_trip_ms": summary(rtt),
            "client_wall_s": round(float(got.get("wall_s", 0.0)), 2),
        },
        "mail": {
            "injected": mails,
            "stored": stored.get(Channel.EMAIL.value, 0),
            "lost": mails - stored.get(Channel.EMAIL.value, 0),
            "ingest_s": round(mail_s, 2) if mail_s else None,
            "mails_per_s": round(mails / mail_s, 1) if mail_s else None,
        },
        "ingested_per_s": round((chat_in + stored.get(Channel.EMAIL.value, 0)) / wall, 1),
        "engine": {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "core_share": round(cpu / wall, 3),
            "peak_rss_mb": self1.ru_maxrss // 1024,
            "processor_workers": rig.processor.pool.workers,
            "processor_peak_running": rig.processor.pool.peak,
        },
    }


async def fresh_database(run: Any) -> Any:
    name = f"bench_channels_{os.getpid()}_{int(time.time())}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        return await run(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def acd_run(concurrent: int, config: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "hotline.cli"]
    if config:
        cmd += ["--config", config]
    cmd += ["bench", "acd", "--concurrent", str(concurrent), "--modes", "ours", "--json"]
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise TongdaiError(f"tongdai bench acd exited {proc.returncode}")
    report = json.loads(out)
    ours = report.get("ours", report)
    return {
        "wall_s": round(time.monotonic() - began, 2),
        "completed": ours.get("completed"),
        "lost": ours.get("lost"),
        "time_to_agent_ms": ours.get("time_to_agent_ms"),
        "decision_ms": ours.get("decision_ms"),
    }


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-channels-") as tmp:

        async def load(url: str) -> dict[str, Any]:
            return await chat_load(
                url, Path(tmp), args.visitors, args.rounds, args.mails, args.agents
            )

        report: dict[str, Any] = {}
        if not args.with_acd:
            report = await (load(args.db) if args.db else fresh_database(load))
            return report
        alone = await acd_run(args.with_acd, args.config)
        began = time.monotonic()
        chat = asyncio.create_task(load(args.db) if args.db else fresh_database(load))
        loaded = await acd_run(args.with_acd, args.config)
        acd_done = time.monotonic() - began
        report = await chat
        report["chat_load_outlasted_calls"] = report["engine"]["wall_s"] >= acd_done
        p99 = [(r.get("time_to_agent_ms") or {}).get("p99") for r in (alone, loaded)]
        report["acd"] = {
            "concurrent": args.with_acd,
            "alone": alone,
            "with_chat": loaded,
            "time_to_agent_p99_ratio_loaded_alone": round(p99[1] / p99[0], 2)
            if p99[0] and p99[1]
            else None,
        }
        return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--visitors", type=int, default=1000, help="web chat visitors (1000)")
    p.add_argument("--rounds", type=int, default=2, help="messages per visitor (2)")
    p.add_argument("--mails", type=int, default=1000, help="mails in the burst (1000)")
    p.add_argument("--agents", type=int, default=50, help="simulated agents answering (50)")
    p.add_argument("--db", help="a PostgreSQL URL (default: a fresh database on the local one)")
    p.add_argument(
        "--with-acd",
        type=int,
        metavar="N",
        default=0,
        help="also run `bench acd --concurrent N` alone and with the chat load (lab: flock)",
    )
    p.add_argument("--json", action="store_true", help="print the JSON report only")


def cmd_bench_channels(args: argparse.Namespace) -> int:
    if min(args.visitors, args.rounds, args.agents) < 1 or args.mails < 0 or args.with_acd < 0:
        raise TongdaiError("--visitors, --rounds, --agents >= 1; --mails, --with-acd >= 0")
    report = asyncio.run(run_bench(args))
    print(json.dumps(report, indent=None if args.json else 2, ensure_ascii=False))
    return 0 if report["chat"]["lost"] == 0 and report["mail"]["lost"] == 0 else 1
