"""``tongdai bench webhooks``: signed Zalo and Facebook webhooks at a fixed rate against the
running engine, on SQLite and on PostgreSQL side by side.

For each database (a fresh one, ``bench.reports_bench.fresh_database``) the real stack is
started (``lab.social_stack``: ``tongdai serve`` as its own process, the fake Zalo and the
fake Graph API as processes on loopback, every port a free one), then for each rate ``R`` of
``--rate`` (a list: a step per rate) events are sent open-loop for ``--seconds``: event ``i``
leaves at ``i / R`` seconds whether or not earlier ones were answered. The mix, as the
issue asks: half Zalo, half Facebook; about 5% redeliveries of an event already sent; about
1% with a wrong signature. Each citizen sends two messages (a new ticket, then a second
message on it), and every ticket sends the code and the bot's answer back to the fakes.

Per step: events acknowledged per second; latency from the request leaving to the 200
(p50/p95/p99/max, every request); how long until every event is a message in the database
(``all_stored_s`` from the first send, ``drain_s`` after the last); lost (a good event never
stored), duplicated (an event stored more than once, in the journal or as a message), bad
signatures refused (and none stored); the engine's CPU (its process only, % of one core) and
the generator's. An event answered other than 200 is sent again after 1 s, up to 5 times,
as Zalo and Meta retry (``retried``). ``sustained`` is true when p99 is under ``--p99-ms``,
nothing is lost or duplicated and at least 95% of ``R`` was acknowledged per second;
``max_sustained_rate`` is the highest such ``R`` per database; ``kept_up`` says the
processing (event to ticket, code and bot answer sent) kept pace: every event stored within
max(5 s, half a step) of the last answer (``max_rate_processing_kept_up``).

The generator shares the machine (2 cores here) with the engine, the fakes and the database:
the figures are for the whole stack on one box.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.reports_bench import PG_ADMIN_DSN, BenchError, fresh_database
from lab.fake_graph import facebook_event
from lab.fake_zalo import zalo_event
from lab.social_stack import SocialStack
from tongdai.db import make_engine

DATABASES = ("sqlite", "postgres")
#: a good event answered other than 200 is sent again this many times, 1 s apart
PLATFORM_RETRIES = 5
BAD_SHARE = 0.01
REDELIVERY_SHARE = 0.05


@dataclass(frozen=True)
class Planned:
    """One webhook request of the load: ``kind`` new | redelivery | bad."""

    index: int
    channel: str  # zalo | facebook
    external_id: str
    user: str
    kind: str


def plan(rate: float, seconds: float, tag: str, seed: int = 1022) -> list[Planned]:
    """The requests of one step, in sending order (deterministic for a seed)."""
    rng = random.Random(seed)
    n = max(1, round(rate * seconds))
    out: list[Planned] = []
    good: list[Planned] = []
    for i in range(n):
        r = rng.random()
        if r < BAD_SHARE:
            channel = "zalo" if rng.random() < 0.5 else "facebook"
            out.append(Planned(i, channel, f"{tag}-bad-{i}", f"{tag}-ub{i}", "bad"))
        elif r < BAD_SHARE + REDELIVERY_SHARE and good:
            again = rng.choice(good)
            out.append(Planned(i, again.channel, again.external_id, again.user, "redelivery"))
        else:
            channel = "zalo" if len(good) % 2 == 0 else "facebook"
            user = f"{tag}-u{len(good) // 4}-{channel[0]}"  # two messages per citizen
            p = Planned(i, channel, f"{tag}-e{i}", user, "new")
            good.append(p)
            out.append(p)
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    database: str
    rate: float
    seconds: float
    sent: int = 0
    new_events: int = 0
    redeliveries: int = 0
    bad_signatures: int = 0
    acknowledged: int = 0
    accepted_per_s: float = 0.0
    refused_401: int = 0
    other_answers: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    all_stored_s: float | None = None
    drain_s: float | None = None
    stored: int = 0
    #: events become messages this fast (new events / all_stored_s)
    stored_per_s: float | None = None
    lost: int = 0
    duplicated: int = 0
    bad_stored: int = 0
    engine_cpu_pct: float = 0.0
    generator_cpu_pct: float = 0.0
    sustained: bool = False
    #: the processing kept pace: every event stored within max(5 s, half a step) of the last
    #: answer (no backlog left growing)
    kept_up: bool = False


class Load:
    """Sends one step's requests against ``stack`` and keeps what happened."""

    def __init__(self, stack: SocialStack, client: httpx.AsyncClient) -> None:
        self.stack = stack
        self.client = client
        self.latencies: list[float] = []
        self.answers: dict[str, int] = {}
        self.retried = 0
        self._bodies: dict[str, tuple[str, bytes]] = {}

    def _request(self, p: Planned) -> tuple[str, bytes, dict[str, str]]:
        s = self.stack.secrets
        if p.kind == "redelivery" and p.external_id in self._bodies:
            path, body = self._bodies[p.external_id]  # the very same bytes, as platforms do
        elif p.channel == "zalo":
            path = "/webhooks/zalo"
            body = zalo_event(s.zalo_app_id, p.user, text=f"Hỏi hồ sơ {p.index}",
                              msg_id=p.external_id)  # fmt: skip
        else:
            path = "/webhooks/facebook"
            body = facebook_event(p.user, text=f"Hỏi hồ sơ {p.index}", mid=p.external_id)
        if p.kind == "new":
            self._bodies[p.external_id] = (path, body)
        if p.kind == "bad":
            wrong = "not-the-secret"
            headers = (self.stack.zalo_headers(body, secret=wrong) if p.channel == "zalo"
                       else self.stack.facebook_headers(body, secret=wrong))  # fmt: skip
        elif p.channel == "zalo":
            headers = self.stack.zalo_headers(body)
        else:
            headers = self.stack.facebook_headers(body)
        return path, body, headers

    async def send(self, p: Planned) -> None:
        path, body, headers = self._request(p)
        for attempt in range(PLATFORM_RETRIES + 1):
            started = time.perf_counter()
            try:
                r = await self.client.post(f"{self.stack.url}{path}", content=body, headers=headers)
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.latencies.append((time.perf_counter() - started) * 1000)
            self.answers[status] = self.answers.get(status, 0) + 1
            if status == "200" or p.kind == "bad" or attempt == PLATFORM_RETRIES:
                return
            self.retried += 1
            await asyncio.sleep(1.0)  # the platform's retry interval, not a wait for a fact


MESSAGES_SQL = text(
    "SELECT count(*), count(DISTINCT external_id) FROM messages "
    "WHERE direction = 'in' AND external_id LIKE :p"
)
JOURNAL_SQL = text("SELECT count(*) FROM inbound_events WHERE external_id LIKE :p")


async def _stored(url: str, tag: str) -> tuple[int, int, int, int]:
    """(message rows, distinct events as messages, journal rows, bad ones stored) of ``tag``."""
    engine = make_engine(url)
    try:
        like = {"p": f"{tag}-%"}
        async with engine.connect() as conn:
            m = (await conn.execute(MESSAGES_SQL, like)).one()
            j = (await conn.execute(JOURNAL_SQL, like)).scalar_one()
            bad = (await conn.execute(JOURNAL_SQL, {"p": f"{tag}-bad-%"})).scalar_one()
        return int(m[0]), int(m[1]), int(j), int(bad)
    finally:
        await engine.dispose()


async def run_step(
    stack: SocialStack, database: str, rate: float, seconds: float, tag: str, p99_ms: float,
    drain_timeout_s: float | None = None,
) -> Step:  # fmt: skip
    """One step; waits at most ``drain_timeout_s`` (default: 60 s + 0.5 s per event) after
    the last answer for every event to be stored."""
    planned = plan(rate, seconds, tag)
    step = Step(database, rate, seconds, sent=len(planned))
    step.new_events = sum(p.kind == "new" for p in planned)
    step.redeliveries = sum(p.kind == "redelivery" for p in planned)
    step.bad_signatures = sum(p.kind == "bad" for p in planned)
    assert stack.engine is not None
    pid = stack.engine.pid
    cpu0, own0 = _cpu_s(pid), time.process_time()
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        load = Load(stack, client)
        t0 = time.perf_counter()

        async def at(p: Planned) -> None:
            await asyncio.sleep(max(0.0, t0 + p.index / rate - time.perf_counter()))  # pacing
            await load.send(p)

        await asyncio.gather(*(at(p) for p in planned))
        sent_s = time.perf_counter() - t0
    if drain_timeout_s is None:
        drain_timeout_s = 60.0 + 0.5 * step.new_events
    deadline = time.perf_counter() + drain_timeout_s
    while True:
        rows, distinct, journal, bad = await _stored(stack.db_url, tag)
        if distinct >= step.new_events or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.1)
    done = time.perf_counter()
    wall = done - t0
    step.acknowledged = load.answers.get("200", 0)
    step.accepted_per_s = round(step.acknowledged / max(sent_s, 1e-9), 1)
    step.refused_401 = load.answers.get("401", 0)
    step.other_answers = {k: v for k, v in load.answers.items() if k not in ("200", "401")}
    step.retried = load.retried
    step.p50_ms = round(percentile(load.latencies, 0.50), 1)
    step.p95_ms = round(percentile(load.latencies, 0.95), 1)
    step.p99_ms = round(percentile(load.latencies, 0.99), 1)
    step.max_ms = round(max(load.latencies, default=0.0), 1)
    step.stored = distinct
    step.lost = step.new_events - distinct
    step.duplicated = (rows - distinct) + max(0, journal - bad - step.new_events)
    step.bad_stored = bad
    if distinct >= step.new_events:
        step.all_stored_s = round(wall, 2)
        step.drain_s = round(done - t0 - sent_s, 2)
        step.stored_per_s = round(step.new_events / max(wall, 1e-9), 1)
        step.kept_up = step.drain_s <= max(5.0, seconds / 2)
    step.engine_cpu_pct = round(100 * (_cpu_s(pid) - cpu0) / wall, 1)
    step.generator_cpu_pct = round(100 * (time.process_time() - own0) / wall, 1)
    step.sustained = (
        step.p99_ms < p99_ms
        and step.lost == 0
        and step.duplicated == 0
        and step.bad_stored == 0
        and step.refused_401 == step.bad_signatures
        # every good request acknowledged at (nearly) the rate it was sent
        and step.accepted_per_s >= 0.95 * (step.sent - step.bad_signatures) / seconds
    )
    return step


async def run_database(
    database: str, rates: list[float], seconds: float, p99_ms: float, pg_admin_dsn: str
) -> list[Step]:
    steps: list[Step] = []
    async with fresh_database(database, pg_admin_dsn) as url:
        with tempfile.TemporaryDirectory(prefix=f"tongdai_webhooks_{database}_") as folder:
            stack = await asyncio.to_thread(SocialStack.start, Path(folder), url)
            try:
                for i, rate in enumerate(rates):
                    step = await run_step(stack, database, rate, seconds, f"s{i}", p99_ms)
                    steps.append(step)
                    print(_line(step), file=sys.stderr, flush=True)
            finally:
                await asyncio.to_thread(stack.stop)
    return steps


def _line(s: Step) -> str:
    stored = f"all stored in {s.all_stored_s} s" if s.all_stored_s is not None else "NOT ALL STORED"
    return (
        f"{s.database:<8} {s.rate:>6g}/s: {s.accepted_per_s:>6g} acked/s, p50 {s.p50_ms} ms, "
        f"p95 {s.p95_ms} ms, p99 {s.p99_ms} ms; {stored}; lost {s.lost}, dup {s.duplicated}, "
        f"401 {s.refused_401}/{s.bad_signatures}; engine CPU {s.engine_cpu_pct}%"
        + ("" if s.sustained else "  (not sustained)")
        + ("" if s.kept_up else "  (processing fell behind)")
    )


def report(
    steps: dict[str, list[Step]], rates: list[float], seconds: float, p99_ms: float
) -> dict[str, Any]:
    """The JSON report: every step per database and the highest sustained rate of each."""
    best = {
        db: max((s.rate for s in found if s.sustained), default=None) for db, found in steps.items()
    }
    kept = {
        db: max((s.rate for s in found if s.sustained and s.kept_up), default=None)
        for db, found in steps.items()
    }
    return {
        "bench": "webhooks",
        "machine": {"cpus": os.cpu_count()},
        "rates": rates,
        "seconds": seconds,
        "p99_limit_ms": p99_ms,
        "mix": {"bad_signatures": BAD_SHARE, "redeliveries": REDELIVERY_SHARE},
        "results": {db: [asdict(s) for s in found] for db, found in steps.items()},
        "max_sustained_rate": best,
        "max_rate_processing_kept_up": kept,
        "median_p99_ms": {
            db: statistics.median([s.p99_ms for s in found]) if found else None
            for db, found in steps.items()
        },
    }


def _rates(value: str) -> list[float]:
    try:
        rates = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: rates per second, e.g. 25,50,100") from None
    if not rates or any(not 0 < r <= 5000 for r in rates):
        raise argparse.ArgumentTypeError(f"{value!r}: each rate in (0, 5000]")
    return rates


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=_rates, default=[10.0, 20.0, 30.0, 50.0],
                   help="events per second, one step per value (default 10,20,30,50)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per step (default 10)")
    p.add_argument("--databases", default="sqlite,postgres",
                   help="sqlite,postgres (default both, side by side)")  # fmt: skip
    p.add_argument("--p99-ms", type=float, default=200.0, help="the latency bar (default 200)")
    p.add_argument("--pg-admin", default=PG_ADMIN_DSN, help="PostgreSQL admin DSN")
    p.add_argument("--json", action="store_true", help="print the JSON report only")


def cmd_bench_webhooks(args: argparse.Namespace) -> int:
    databases = [d.strip() for d in str(args.databases).split(",") if d.strip()]
    if not databases or any(d not in DATABASES for d in databases):
        raise BenchError(f"--databases: choose among {', '.join(DATABASES)}")
    if not 1 <= args.seconds <= 600:
        raise BenchError("--seconds: between 1 and 600")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request sent

    async def run() -> dict[str, list[Step]]:
        return {
            db: await run_database(db, args.rate, args.seconds, args.p99_ms, args.pg_admin)
            for db in databases
        }

    steps = asyncio.run(run())
    doc = report(steps, args.rate, args.seconds, args.p99_ms)
    print(json.dumps(doc, ensure_ascii=False, indent=None if args.json else 2))
    return 0
