"""One mode of ``tongdai bench ivr`` (bench/ivr_bench.py): a fresh lab Asterisk and engine,
the SIPp journeys, the benchmark's own AMI session and /proc samplers; the measured figures.

Both modes run the same engine with the same settings (our ACD, the run's PostgreSQL
database): ``ours`` dials ``1022`` (the engine's FastAGI IVR), ``dialplan`` dials
``bench-ivr-plain`` (the plain dialplan IVR, which hands its callers to the same ACD).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import resource
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from bench.acd_metrics import ProcUsage, proc_usage
from bench.ivr_journeys import BY_NAME, JOURNEYS, Journey, allocate, scenario_xml
from bench.ivr_metrics import (
    AGENT_PREFIX,
    BackendUsage,
    caller_spans,
    peak_concurrent,
    reaction_summary,
    reactions,
    ticket_problems,
)
from bench.plain_ivr import seed_astdb
from dossiers.model import Dossier
from lab import asterisk, engine, kamailio, nodes
from lab.instance import LabInstance
from lab.procs import LabError
from lab.sipp_run import AgentPhones, SippResult, SipTarget, run_callers
from pbx.ami import AmiClient
from tickets.model import Ticket
from tickets.sql import open_store
from tongdai.settings import Settings, home_path, load_settings

MODES = {"ours": "1022", "dialplan": "bench-ivr-plain"}
EVENTS = ["Newchannel", "Hangup", "DTMFEnd", "AGIExecStart", "Newexten", "DialBegin", "DialEnd"]
#: AMI filters of the benchmark's session: the events above, Newexten only for prompts
FILTERS = [f"Event: {e}" for e in EVENTS if e != "Newexten"] + [
    "Application: ([Bb]ack[Gg]round|Playback|Read)"  # Asterisk names it BackGround
]
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SAMPLE_S = 1.0


@dataclass(frozen=True)
class LoadPlan:
    """What one mode runs (the same in both)."""

    concurrent: int
    rate: float
    agents: int
    talk_s: float
    dossiers: Sequence[Dossier]
    unknown: Sequence[str]
    today: date
    db_name: str
    journeys: tuple[str, ...] = tuple(j.name for j in JOURNEYS)

    def allocation(self) -> dict[str, int]:
        return allocate(self.concurrent, [BY_NAME[j] for j in self.journeys])

    @property
    def agent_wait_ms(self) -> int:
        """How long a queued caller may wait for the agent, talk and the survey: three times
        the ideal drain of the queued calls (6 in 10) over the agents, plus two minutes."""
        waves = math.ceil(0.6 * self.concurrent / self.agents)
        return int(1000 * (3 * waves * (self.talk_s + 1) + self.concurrent / self.rate + 120))


@dataclass
class Callers:
    """The callers of one journey: numbers, display names (a code for dossier journeys)."""

    journey: Journey
    numbers: list[str]
    codes: list[str | None]


def plan_callers(plan: LoadPlan, run: int) -> list[Callers]:
    """Unique numbers ``08`` + run + journey + index, and the codes the dossier callers key."""
    out = []
    rng = random.Random(run)
    for j, (name, n) in enumerate(sorted(plan.allocation().items())):
        if n == 0:
            continue
        journey = BY_NAME[name]
        numbers = [f"08{run % 100:02d}{j:02d}{i:04d}" for i in range(n)]
        codes: list[str | None] = [None] * n
        if journey.dossier == "known":
            codes = [rng.choice(plan.dossiers).code for _ in range(n)]
        elif journey.dossier == "unknown":
            codes = [plan.unknown[i % len(plan.unknown)] for i in range(n)]
        out.append(Callers(journey, numbers, codes))
    return out


async def _open_ami(settings: Settings, events: list[dict[str, str]], node: int = 0) -> tuple[
    AmiClient, asyncio.Task[None]
]:  # fmt: skip
    """The benchmark's AMI session on one Asterisk; its events go to ``events`` (with
    ``_node``: which node of a two-node lab sent them, 0 for a one-node lab)."""
    client = AmiClient(
        settings.ami.host, settings.ami.port, settings.ami.username,
        asterisk.ami_secret(settings), action_timeout=10.0,
    )  # fmt: skip
    sub = client.subscribe(EVENTS, maxsize=2_000_000)
    await client.start()
    for f in FILTERS:
        await client.action("Filter", Operation="Add", Filter=f)

    async def collect() -> None:
        async for ev in sub:
            d = dict(reversed(ev.headers))  # the first value of a repeated header wins
            d["_rx"] = f"{time.time():.6f}"
            d["_node"] = str(node)
            events.append(d)

    return client, asyncio.create_task(collect(), name="bench ivr AMI events")


async def wait_until(ok: Callable[[], bool], timeout_s: float, every_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)
    return True


def _logins(path: Path, offset: int) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().count(b"|AGENTLOGIN|")


async def _pg_pids(db_name: str) -> tuple[list[int], list[int]]:
    """(client backends of ``db_name``, the server's own background processes)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT pid, datname, backend_type FROM pg_stat_activity", timeout=10
        )
    finally:
        await conn.close(timeout=10)
    mine = [r["pid"] for r in rows if r["datname"] == db_name]
    server = [r["pid"] for r in rows if r["backend_type"] != "client backend"]
    return mine, server


async def _sample_pg(db_name: str, backends: BackendUsage, server: BackendUsage) -> None:
    """Sample the database's backends (and the server's) every second until cancelled."""
    while True:
        mine, bg = await _pg_pids(db_name)
        backends.sample(mine)
        server.sample(bg)
        await asyncio.sleep(SAMPLE_S)


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = cpu[3] + cpu[4]
    return float(sum(cpu) - idle), float(sum(cpu))


async def _tickets(url: str, numbers: set[str], timeout_s: float) -> dict[str, Ticket]:
    """The newest ticket of each caller, once every one has ended (or after ``timeout_s``)."""
    store = await open_store(url)
    try:
        found: dict[str, Ticket] = {}
        deadline = time.monotonic() + timeout_s
        while True:
            found = {t.caller: t for t in await store.list() if t.caller in numbers}
            done = len(found) == len(numbers) and all(t.ended_at for t in found.values())
            if done or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)
    finally:
        await store.close()


def _usage(
    before: Mapping[str, ProcUsage], after: Mapping[str, ProcUsage], calls: int, window: float
) -> dict[str, dict[str, Any]]:
    out = {}
    for k in before:
        cpu = after[k].cpu_s - before[k].cpu_s
        out[k] = {
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_call": round(1000 * cpu / calls, 2),
            "core_share": round(cpu / window, 3) if window else None,
            "peak_rss_mb": after[k].peak_rss_mb,
        }
    return out


async def run_mode(mode: str, config: Path, plan: LoadPlan) -> dict[str, Any]:
    """One mode on a fresh Asterisk and engine; the measured figures."""
    settings = load_settings(config)
    url = settings.database.resolved_url()
    events: list[dict[str, str]] = []
    callers = plan_callers(plan, secrets.randbelow(100))
    numbers = {n for c in callers for n in c.numbers}
    qlog = home_path(settings.acd.queue_log)
    qlog_offset = qlog.stat().st_size if qlog.exists() else 0
    # a two-node lab (`--nodes 2`): Kamailio in front of two Asterisk nodes (lab.nodes)
    node_settings = nodes.all_nodes(settings) if settings.lab.nodes > 1 else [settings]
    # with two nodes, `settings` itself stands for Kamailio's 127.0.0.1 SIP port
    port_owners = [settings, *node_settings] if settings.lab.nodes > 1 else [settings]
    await wait_until(lambda: all(_ports_free(n) for n in port_owners), 15)
    if settings.lab.nodes > 1:
        started = await asyncio.to_thread(nodes.start, settings)
        pbx_pids = {
            "asterisk_node1": started["node1"],
            "asterisk_node2": started["node2"],
            "kamailio": started["kamailio"],
        }
    else:
        pbx_pids = {"asterisk": await asyncio.to_thread(asterisk.start, settings)}
    eng_pid: int | None = None
    clients: list[AmiClient] = []
    collectors: list[asyncio.Task[None]] = []
    sampler: asyncio.Task[None] | None = None
    backends, pg_server = BackendUsage(), BackendUsage()
    phones = AgentPhones(
        port=LabInstance.of(settings).agents_port,
        answer_after_ms=300,
        talk_ms=int(plan.talk_s * 1000),
    )
    try:
        for k, node in enumerate(node_settings, start=1 if settings.lab.nodes > 1 else 0):
            client, collector = await _open_ami(node, events, k)
            clients.append(client)
            collectors.append(collector)
            if mode == "dialplan":
                await seed_astdb(client, plan.dossiers, plan.today)
        eng_pid = await asyncio.to_thread(engine.start_engine, settings, str(config))
        if not await wait_until(lambda: _logins(qlog, qlog_offset) >= plan.agents, 60):
            raise LabError(f"the engine did not log {plan.agents} agents in within 60 s")
        phones.start()
        if settings.lab.nodes > 1:  # the agents' phones register with Kamailio
            for i in range(1, plan.agents + 1):
                await asyncio.to_thread(kamailio.register, settings, f"agent{100 + i}", phones.port)
        mine, bg = await _pg_pids(plan.db_name)
        backends.sample(mine, baseline=True)
        pg_server.sample(bg, baseline=True)
        sampler = asyncio.create_task(_sample_pg(plan.db_name, backends, pg_server))
        pids = {**pbx_pids, "engine": eng_pid}
        before = {k: tree_usage(p) for k, p in pids.items()}
        busy0, kids0 = _machine_busy(), os.times()
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        results = await _run_journeys(settings, mode, plan, callers)
        await wait_until(
            lambda: all(s.end for s in caller_spans(events, numbers).values()), 30, 0.5
        )
        t1 = time.monotonic()
        after = {k: tree_usage(p) for k, p in pids.items()}
        busy1, kids1 = _machine_busy(), os.times()
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        sampler.cancel()
        await asyncio.wait([sampler])
        mine, bg = await _pg_pids(plan.db_name)
        backends.sample(mine)
        pg_server.sample(bg)
        found = await _tickets(url, numbers, 30) if mode == "ours" else {}
        phones.stop()
    finally:
        if sampler is not None and not sampler.done():
            sampler.cancel()
            await asyncio.wait([sampler])
        phones.stop()
        for client in clients:
            await client.close()  # ends the subscription, so the collector returns
        for collector in collectors:
            collector.cancel()
        if collectors:
            await asyncio.wait(collectors)
        if eng_pid is not None:
            await asyncio.to_thread(engine.stop_engine, settings)
        if settings.lab.nodes > 1:
            await asyncio.to_thread(nodes.stop, settings)
        else:
            await asyncio.to_thread(asterisk.stop, settings)
    with (config.parent / f"{mode}_events.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(ev) + "\n" for ev in events)
    window = t1 - t0
    usage = _usage(before, after, plan.concurrent, window)
    if settings.lab.nodes > 1:  # both nodes together, beside each node's own figures
        both = [usage["asterisk_node1"], usage["asterisk_node2"]]
        cpu = sum(u["cpu_s"] for u in both)
        usage["asterisk"] = {
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_call": round(1000 * cpu / plan.concurrent, 2),
            "core_share": round(cpu / window, 3) if window else None,
            "peak_rss_mb": round(sum(u["peak_rss_mb"] for u in both), 1),
        }
    usage["postgresql"] = {
        "cpu_s": round(backends.cpu_s, 2),
        "cpu_ms_per_call": round(1000 * backends.cpu_s / plan.concurrent, 2),
        "core_share": round(backends.cpu_s / window, 3) if window else None,
        "peak_rss_mb": backends.peak_anon_mb,
        "backends": len(backends.last_cpu),
    }
    usage["postgresql_server"] = {"cpu_s": round(pg_server.cpu_s, 2)}
    sipp = (kids1.children_user + kids1.children_system) - (
        kids0.children_user + kids0.children_system
    )
    usage["sipp"] = {"cpu_s": round(sipp, 2), "core_share": round(sipp / window, 3)}
    bench = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    usage["bench"] = {"cpu_s": round(bench, 2), "core_share": round(bench / window, 3)}
    spans = caller_spans(events, numbers)
    found_reactions = reactions(events)
    out: dict[str, Any] = {
        "offered": plan.concurrent,
        "completed": sum(r.successful for r in results.values()),
        "failed": sum(r.failed for r in results.values()),
        "unfinished": plan.concurrent - sum(r.successful + r.failed for r in results.values()),
        "by_journey": {
            name: {"calls": r.calls, "completed": r.successful, "failed": r.failed}
            for name, r in sorted(results.items())
        },
        "peak_concurrent": peak_concurrent(spans.values()),
        "reaction_ms": reaction_summary(found_reactions),
        "keys_answered": len(found_reactions),
        "cpu_window_s": round(window, 2),
        "machine_busy_share": round((busy1[0] - busy0[0]) / (busy1[1] - busy0[1]), 3),
        "usage": usage,
        "cpu_s_total": round(
            sum(usage[k]["cpu_s"] for k in ("asterisk", "engine", "postgresql")), 2
        ),
        "bottleneck": max(
            ("asterisk", "engine", "postgresql", "sipp"),
            key=lambda k: usage[k]["core_share"] or 0,
        ),
    }
    out["cpu_ms_per_call_total"] = round(1000 * out["cpu_s_total"] / plan.concurrent, 2)
    if settings.lab.nodes > 1:
        out["calls_per_node"] = calls_per_node(events, numbers)
    if mode == "ours":
        out["tickets"] = _check_tickets(callers, found)
    failing = {n: r.describe() for n, r in results.items() if not r.ok}
    if failing:
        out["sipp_failures"] = {n: d[-1500:] for n, d in failing.items()}
    return out


def tree_usage(pid: int, proc: Path = Path("/proc")) -> ProcUsage:
    """``proc_usage`` of ``pid`` plus its live children (Kamailio's workers are processes of
    their own; Asterisk and the engine have none): CPU summed, peak RSS summed."""
    total = proc_usage(pid, proc)
    cpu, rss = total.cpu_s, total.peak_rss_mb
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                child = proc_usage(int(entry.name), proc)
                cpu, rss = cpu + child.cpu_s, rss + child.peak_rss_mb
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return ProcUsage(cpu, round(rss, 1))


def calls_per_node(events: Sequence[Mapping[str, str]], numbers: set[str]) -> dict[str, int]:
    """How many of the run's callers each node of a two-node lab took (their Newchannel)."""
    seen: dict[str, set[str]] = {}
    for ev in events:
        if ev.get("Channel", "").startswith(AGENT_PREFIX):
            continue
        if ev.get("Event") == "Newchannel" and ev.get("CallerIDNum") in numbers:
            seen.setdefault(f"node{ev.get('_node', '0')}", set()).add(ev.get("Uniqueid", ""))
    return {node: len(uids) for node, uids in sorted(seen.items())}


def _check_tickets(callers: Sequence[Callers], found: Mapping[str, Ticket]) -> dict[str, Any]:
    wrong: list[dict[str, Any]] = []
    checked = 0
    for c in callers:
        for number, code in zip(c.numbers, c.codes, strict=True):
            checked += 1
            problems = ticket_problems(found.get(number), c.journey, code)
            if problems:
                wrong.append({"caller": number, "journey": c.journey.name, "problems": problems})
    return {"checked": checked, "correct": checked - len(wrong), "wrong": wrong[:20]}


async def _run_journeys(
    settings: Settings, mode: str, plan: LoadPlan, callers: Sequence[Callers]
) -> dict[str, SippResult]:
    """Every journey's callers in their own SIPp process, all at once; each paced at its share
    of ``plan.rate``."""
    target = SipTarget("127.0.0.1", settings.lab.sip_port, MODES[mode])
    timeout_s = plan.agent_wait_ms / 1000 + 120
    results: dict[str, SippResult] = {}

    async def one(c: Callers) -> None:
        n = len(c.numbers)
        names = [code or number for number, code in zip(c.numbers, c.codes, strict=True)]
        results[c.journey.name] = await run_callers(
            scenario_xml(c.journey, plan.agent_wait_ms), target=target, calls=n,
            rate=max(0.1, plan.rate * n / plan.concurrent), concurrent=n,
            callers=c.numbers, caller_names=names, timeout_s=timeout_s,
        )  # fmt: skip

    async with asyncio.TaskGroup() as tg:
        for c in callers:
            tg.create_task(one(c))
    return results


def _ports_free(settings: Settings) -> bool:
    try:
        asterisk.check_ports_free(settings)
    except LabError:
        return False
    return True
