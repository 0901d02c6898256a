"""``tongdai bench faults``: faults injected into the lab while SIPp callers walk the 1022 menu
to our ACD; per fault, what happened to the calls and their tickets.

    tongdai bench faults [--calls 40] [--rate 4] [--agents 20] [--talk-s 4] [--outage-s 10]
                         [--faults redis,database,ami,fastagi_garbage,vanish,engine_kill,...]
                         [--json]

One lab Asterisk and one engine (``tongdai serve``, our own ACD with its live state in a
private ``redis-server`` on a free port, tickets in a PostgreSQL database made for the run and
dropped after it, the shared Redis and PostgreSQL never stopped) serve the whole run; SIPp
agent phones (``--agents``) answer after 300 ms and talk ``--talk-s``. Each fault is one
phase: ``--calls`` callers at ``--rate``/s take the ``operator`` journey (key 0 in the greeting,
the general queue, an agent), and ``inject_at_s`` seconds into the phase the fault is injected:

    redis            the private redis-server stopped for --outage-s, then started
    database         the run's database refuses connections (ALLOW_CONNECTIONS false) and its
                     open connections are ended (pg_terminate_backend) for --outage-s
    ami              the engine's AMI TCP session is killed (ss -K); the engine reconnects
    fastagi_garbage  200 hostile FastAGI clients for --outage-s: 50 half-open, 50 sending
                     garbage lines, 50 one 1 MB line, 50 dripping a byte every 0.5 s
    vanish           10 more callers reach the menu and vanish (no BYE, no media): Asterisk
                     must end them (rtp_timeout) within 45 s, each with an abandoned ticket
    engine_kill      SIGKILL of the engine, restarted at once (as systemd would)
    vanish_queue     20 more callers press 0 (the general queue) and vanish 4 s later, in
                     line or with an agent: each must end (rtp_timeout) with one ticket
    asterisk_kill    SIGKILL of Asterisk, restarted at once: the calls up die with it (each
                     ticket must still get an outcome); the engine reconnects and resyncs
    ami_flood        a second AMI session sends UserEvents as fast as Asterisk takes them for
                     --outage-s (200 in flight); each reaches the engine's AMI session, which
                     subscribes to UserEvent (agent commands)

Per fault: calls offered, SIPp's completed/failed, answered by an agent (ticket outcome),
tickets written against calls (missing, duplicated), calls lost (no ticket outcome that
explains them), the outcomes, the time from the end of the fault until the first call
answered after it (``recovery_s``), and what the engine's health file said (the dependency
seen down, and back after how long). Run it under the lab lock; artifacts (settings, engine
log, redis log) stay in ``var/bench/faults-<stamp>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.ivr_bench import bench_acd_toml
from bench.ivr_journeys import BY_NAME, scenario_xml
from lab import asterisk, engine, lock
from lab.chroot import ensure_chroot
from lab.instance import LabInstance
from lab.procs import LabError
from lab.redis_server import PrivateRedis
from lab.sipp_run import (
    AgentPhones,
    SippResult,
    SipTarget,
    Step,
    Vanish,
    Wait,
    build_caller_scenario,
    run_callers,
)
from lab.sipp_run import Key as SipKey
from pbx.ami import AmiClient
from tickets.model import Outcome, Ticket
from tickets.sql import open_store
from tongdai.health import read_file as read_health
from tongdai.settings import Settings, home_path, load_settings

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
FAULTS = (
    "redis", "database", "ami", "fastagi_garbage", "vanish", "engine_kill",
    "vanish_queue", "asterisk_kill", "ami_flood",
)  # fmt: skip
#: which dependency of the health file each fault takes away
DEPENDENCY = {"redis": "redis", "database": "database", "ami": "asterisk"}
#: outcomes that explain a call that reached no agent
EXPLAINED = {o.value for o in Outcome} - {"answered", "error"}
#: callers who vanish (no BYE, no media), per fault: how many, and their journey before it
VANISHERS: dict[str, tuple[int, list[Step]]] = {
    "vanish": (10, [Wait(1500), SipKey("1"), Wait(1000), Vanish(45_000)]),
    "vanish_queue": (20, [Wait(1500), SipKey("0"), Wait(4000), Vanish(45_000)]),
}
#: UserEvents sent at once by the AMI flood (each a round trip to Asterisk)
FLOOD_BATCH = 200


@dataclass(frozen=True)
class FaultOptions:
    calls: int = 40
    rate: float = 4.0
    agents: int = 20
    talk_s: float = 4.0
    outage_s: float = 10.0
    inject_at_s: float = 4.0
    faults: tuple[str, ...] = FAULTS

    @property
    def agent_wait_ms(self) -> int:
        """How long a caller may wait for the agent, the talk and the survey."""
        waves = -(-self.calls // self.agents)
        return int(1000 * (3 * waves * (self.talk_s + 1) + self.outage_s + 120))


@dataclass
class Phase:
    """One fault's window: when it began and ended (epoch seconds)."""

    name: str
    started: float = 0.0
    fault_start: float = 0.0
    fault_end: float = 0.0
    health: list[tuple[float, dict[str, Any]]] | None = None
    extra: dict[str, Any] | None = None


def write_settings(
    base: Settings, work: Path, url: str, redis_url: str, opts: FaultOptions
) -> Path:
    acd = work / "acd_faults.toml"
    acd.write_text(bench_acd_toml(opts.agents, opts.calls * 2 + opts.agents), encoding="utf-8")
    messages = f"recordings/messages/{work.name}"
    path = work / "tongdai.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\nstate_dir = "{work}/state"\n'
        f'[lab]\nvar_dir = "{work}/var"\nchroot = "{base.lab.chroot}"\n'
        f"sip_port = {base.lab.sip_port}\n[ami]\nport = {base.ami.port}\n"
        f"[fastagi]\nport = {base.fastagi.port}\n"
        f'[ivr]\nmessages_dir = "{messages}"\n'
        f'asterisk_messages_dir = "/srv/tongdai/{messages}"\n'
        f'[acd]\ndistribution = "engine"\nconfig = "{acd}"\nqueue_log = "{work}/queue_log"\n'
        f'announce_every_s = 3600\nauto_login = true\nstate_store = "{redis_url}"\n'
        f'state_prefix = "tongdai:faults:{work.name}"\n[web]\nenabled = false\n',
        encoding="utf-8",
    )
    return path


async def _pg(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql, timeout=60)
    finally:
        await conn.close(timeout=10)


async def wait_until(ok: Callable[[], bool], timeout_s: float, every_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)
    return True


# -- the faults --------------------------------------------------------------------------------


@dataclass
class Lab:
    settings: Settings
    config: Path
    db_name: str
    redis: PrivateRedis
    opts: FaultOptions


async def fault_redis(lab: Lab) -> dict[str, Any]:
    await asyncio.to_thread(lab.redis.stop)
    await asyncio.sleep(lab.opts.outage_s)
    await asyncio.to_thread(lab.redis.start)
    return {}


async def fault_database(lab: Lab) -> dict[str, Any]:
    name = lab.db_name
    await _pg(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    ended = 0
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            ended = len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
            )
        finally:
            await conn.close(timeout=10)
        await asyncio.sleep(lab.opts.outage_s)
    finally:
        await _pg(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    return {"connections_ended": ended}


async def fault_ami(lab: Lab) -> dict[str, Any]:
    port = lab.settings.ami.port
    done = await asyncio.to_thread(
        subprocess.run,
        ["ss", "-K", "dst", "127.0.0.1", "dport", "=", f":{port}"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    killed = max(0, len([ln for ln in done.stdout.splitlines() if "ESTAB" in ln]))
    return {"sessions_killed": killed}


async def _hostile(host: str, port: int, kind: str, hold_s: float) -> str:
    """One hostile FastAGI client; how it ended (``closed`` by the engine, or ``held``)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    except (OSError, TimeoutError):
        return "refused"
    end = time.monotonic() + hold_s
    try:
        if kind == "garbage":
            for i in range(50):
                writer.write(f"\x00\xffGARBAGE {i} {'x' * 40}\r\n".encode("latin-1"))
            writer.write(b"\n")
        elif kind == "huge":
            writer.write(b"agi_request: " + b"A" * 1_000_000 + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        while time.monotonic() < end:
            if kind == "drip":
                writer.write(b"a")
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                continue
            if not data:
                return "closed"
        return "held"
    except (ConnectionError, OSError):
        return "closed"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def fault_fastagi_garbage(lab: Lab) -> dict[str, Any]:
    host, port = engine.agi_address(lab.settings)
    kinds = ["half_open", "garbage", "huge", "drip"]
    jobs = [(k, _hostile(host, port, k, lab.opts.outage_s)) for k in kinds for _ in range(50)]
    ends = await asyncio.gather(*(j for _, j in jobs))
    out: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in kinds}
    for (k, _), how in zip(jobs, ends, strict=True):
        out[k][how] += 1
    return {"clients": {k: dict(v) for k, v in out.items()}}


async def fault_engine_kill(lab: Lab) -> dict[str, Any]:
    pid = engine.running_pid(lab.settings)
    if pid is None:
        raise LabError("bench faults: the engine is not running")
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, 0.05)
    t0 = time.monotonic()
    new = await asyncio.to_thread(engine.start_engine, lab.settings, str(lab.config))
    return {"killed_pid": pid, "new_pid": new, "restart_s": round(time.monotonic() - t0, 2)}


async def fault_vanish(lab: Lab) -> dict[str, Any]:
    return {}  # the vanishing callers are placed by run_phase


async def fault_asterisk_kill(lab: Lab) -> dict[str, Any]:
    pid = asterisk.running_pid(lab.settings)
    if pid is None:
        raise LabError("bench faults: Asterisk is not running")
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, 0.05)
    t0 = time.monotonic()
    new = await asyncio.to_thread(asterisk.start, lab.settings)
    return {"killed_pid": pid, "new_pid": new, "restart_s": round(time.monotonic() - t0, 2)}


async def fault_ami_flood(lab: Lab) -> dict[str, Any]:
    s = lab.settings
    client = AmiClient(
        s.ami.host, s.ami.port, s.ami.username, asterisk.ami_secret(s),
        connect_timeout=10, action_timeout=10, events="off",
    )  # fmt: skip
    sent = failed = 0
    await client.start()
    try:
        end = time.monotonic() + lab.opts.outage_s
        while time.monotonic() < end:
            batch = [
                client.action("UserEvent", UserEvent="TongdaiBenchFlood", N=str(sent + i))
                for i in range(FLOOD_BATCH)
            ]
            done = await asyncio.gather(*batch, return_exceptions=True)
            failed += sum(1 for d in done if isinstance(d, BaseException))
            sent += len(done)
    finally:
        await client.close()
    return {"user_events": sent, "refused": failed, "per_s": round(sent / lab.opts.outage_s)}


FAULT_FUNCS: dict[str, Callable[[Lab], Awaitable[dict[str, Any]]]] = {
    "redis": fault_redis,
    "database": fault_database,
    "ami": fault_ami,
    "fastagi_garbage": fault_fastagi_garbage,
    "vanish": fault_vanish,
    "engine_kill": fault_engine_kill,
    "vanish_queue": fault_vanish,
    "asterisk_kill": fault_asterisk_kill,
    "ami_flood": fault_ami_flood,
}


# -- one phase ---------------------------------------------------------------------------------


async def _watch_health(path: Path, into: list[tuple[float, dict[str, Any]]]) -> None:
    last: Any = None
    while True:
        data = read_health(path)
        if data is not None and data.get("dependencies") != last:
            last = data.get("dependencies")
            into.append((time.time(), data))
        await asyncio.sleep(0.1)


async def _tickets(url: str, numbers: set[str], timeout_s: float) -> list[Ticket]:
    """Every ticket of these callers, once each caller has an ended one (or after
    ``timeout_s``)."""
    store = await open_store(url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [t for t in await store.list() if t.caller in numbers]
            ended = {t.caller for t in found if t.ended_at is not None}
            if ended >= numbers or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)
    finally:
        await store.close()


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def last_outcome(tickets: list[Ticket]) -> str:
    """The outcome of a caller's newest ticket: ``none`` (no outcome), ``no_ticket``."""
    if not tickets:
        return "no_ticket"
    outcome = tickets[-1].outcome
    return outcome.value if outcome is not None else "none"


def summarize(
    phase: Phase,
    numbers: list[str],
    tickets: list[Ticket],
    sipp: SippResult,
    vanishers: list[str] | None = None,
    vanish_sipp: SippResult | None = None,
) -> dict[str, Any]:
    by_caller: dict[str, list[Ticket]] = collections.defaultdict(list)
    for t in sorted(tickets, key=lambda t: t.started_at):
        if t.caller is not None:
            by_caller[t.caller].append(t)
    last = {n: last_outcome(by_caller[n]) for n in numbers}
    answered = [by_caller[n][-1] for n in numbers if last[n] == "answered"]
    # lost: no ticket outcome that explains a call that reached no agent
    lost = [n for n in numbers if last[n] not in EXPLAINED | {"answered"}]
    # the first call an agent answered after the fault ended: calls are served again
    mine = set(numbers)
    after = sorted(
        a
        for t in tickets
        if t.caller in mine and (a := _ts(t.answered_at)) is not None and a >= phase.fault_end
    )
    out: dict[str, Any] = {
        "offered": len(numbers),
        "sipp_completed": sipp.successful,
        "sipp_failed": sipp.failed,
        "answered": len(answered),
        "lost": len(lost),
        "tickets": sum(len(by_caller[n]) for n in numbers),
        "tickets_missing": sum(1 for n in numbers if not by_caller[n]),
        "tickets_duplicated": sum(1 for n in numbers if len(by_caller[n]) > 1),
        "outcomes": dict(collections.Counter(last.values())),
        "fault_s": round(phase.fault_end - phase.fault_start, 2),
        "recovery_s": round(after[0] - phase.fault_end, 2) if after else None,
    }
    dep = DEPENDENCY.get(phase.name)
    if dep is not None and phase.health is not None:
        out["health"] = _health_seen(phase, dep)
    if vanishers is not None and vanish_sipp is not None:
        gone = {n: by_caller.get(n, []) for n in vanishers}
        out["vanish"] = {
            "callers": len(vanishers),
            "ended_by_asterisk_within_45s": vanish_sipp.successful,
            "failed": vanish_sipp.failed,
            "tickets": sum(1 for t in gone.values() if t),
            "tickets_duplicated": sum(1 for t in gone.values() if len(t) > 1),
            "outcomes": dict(collections.Counter(last_outcome(t) for t in gone.values())),
        }
    if phase.extra:
        out["fault"] = phase.extra
    return out


def _health_seen(phase: Phase, dep: str) -> dict[str, Any]:
    """When the health file said ``dep`` went down and came back, relative to the fault."""
    down_at = back_at = None
    for at, data in phase.health or []:
        state = {d["name"]: d["up"] for d in data.get("dependencies", [])}
        if state.get(dep) is False and down_at is None:
            down_at = at
        elif state.get(dep) is True and down_at is not None and back_at is None:
            back_at = at
    return {
        "seen_down": down_at is not None,
        "down_after_s": round(down_at - phase.fault_start, 2) if down_at else None,
        "back_after_restore_s": round(back_at - phase.fault_end, 2) if back_at else None,
    }


async def run_phase(lab: Lab, name: str, index: int) -> dict[str, Any]:
    opts = lab.opts
    numbers = [f"07{index:02d}{i:05d}" for i in range(opts.calls)]
    phase = Phase(name, started=time.time(), health=[])
    target = SipTarget("127.0.0.1", lab.settings.lab.sip_port, "1022")
    xml = scenario_xml(BY_NAME["operator"], opts.agent_wait_ms)
    health_path = home_path(lab.settings.database.state_dir) / "health.json"
    assert phase.health is not None
    watcher = asyncio.create_task(_watch_health(health_path, phase.health))
    vanishers: list[str] | None = None
    vanish_task: asyncio.Task[SippResult] | None = None
    try:
        load = asyncio.create_task(
            run_callers(
                xml, target=target, calls=opts.calls, rate=opts.rate, concurrent=opts.calls,
                callers=numbers, timeout_s=opts.agent_wait_ms / 1000 + 60,
            )
        )  # fmt: skip
        await asyncio.sleep(opts.inject_at_s)
        phase.fault_start = time.time()
        if name in VANISHERS:
            count, steps = VANISHERS[name]
            vanishers = [f"06{index:02d}{i:05d}" for i in range(count)]
            vanish_xml = build_caller_scenario(steps, name=f"bench {name}")
            vanish_task = asyncio.create_task(
                run_callers(
                    vanish_xml, target=target, calls=count, rate=10, concurrent=count,
                    callers=vanishers, timeout_s=120,
                )
            )  # fmt: skip
        phase.extra = await FAULT_FUNCS[name](lab) or None
        phase.fault_end = time.time()
        sipp = await load
        vanish_sipp = await vanish_task if vanish_task is not None else None
        every = set(numbers) | set(vanishers or [])
        tickets = await _tickets(lab.settings.database.resolved_url(), every, 60)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return summarize(phase, numbers, tickets, sipp, vanishers, vanish_sipp)


def _logins(path: Path) -> int:
    return path.read_text(encoding="utf-8").count("|AGENTLOGIN|") if path.exists() else 0


async def run_bench(opts: FaultOptions, base: Settings) -> dict[str, Any]:
    work = home_path("var/bench") / time.strftime("faults-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    db_name = f"tongdai_bench_faults_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db_name}"
    redis = PrivateRedis(work / "redis")
    config = write_settings(base, work, url, redis.url, opts)
    settings = load_settings(config)
    lab = Lab(settings, config, db_name, redis, opts)
    await asyncio.to_thread(ensure_chroot, settings.lab.chroot)
    await asyncio.to_thread(engine.build_prompts, settings)
    report: dict[str, Any] = {
        "machine": {"nproc": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "options": {
            "calls_per_fault": opts.calls, "rate": opts.rate, "agents": opts.agents,
            "talk_s": opts.talk_s, "outage_s": opts.outage_s, "inject_at_s": opts.inject_at_s,
        },
        "artifacts": str(work),
        "faults": {},
    }  # fmt: skip
    await _pg(f'CREATE DATABASE "{db_name}"')
    phones = AgentPhones(
        port=LabInstance.of(settings).agents_port,
        answer_after_ms=300,
        talk_ms=int(opts.talk_s * 1000),
    )
    started_asterisk = False
    # the lab lock for the whole run: the phases kill Asterisk and the engine, which hold it too
    held = contextlib.ExitStack()
    held.enter_context(lock.hold(settings, command="tongdai bench faults"))
    try:
        await asyncio.to_thread(redis.start)
        await asyncio.to_thread(asterisk.start, settings)
        started_asterisk = True
        await asyncio.to_thread(engine.start_engine, settings, str(config))
        qlog = home_path(settings.acd.queue_log)
        if not await wait_until(lambda: _logins(qlog) >= opts.agents, 60):
            raise LabError(f"the engine did not log {opts.agents} agents in within 60 s")
        phones.start()
        for i, name in enumerate(opts.faults):
            t0 = time.monotonic()
            report["faults"][name] = await run_phase(lab, name, i)
            report["faults"][name]["phase_s"] = round(time.monotonic() - t0, 1)
    finally:
        phones.stop()
        await asyncio.to_thread(engine.stop_engine, settings)
        if started_asterisk:
            await asyncio.to_thread(asterisk.stop, settings)
        await asyncio.to_thread(redis.stop)
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await _pg(f'ALTER DATABASE "{db_name}" ALLOW_CONNECTIONS true')
        await _pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        held.close()
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=40, help="callers per fault (default 40)")
    p.add_argument("--rate", type=float, default=4.0, help="new calls per second (default 4)")
    p.add_argument("--agents", type=int, default=20, help="agent phones (default 20)")
    p.add_argument("--talk-s", type=float, default=4.0, help="agent talk time (default 4 s)")
    p.add_argument(
        "--outage-s", type=float, default=10.0, help="how long a dependency stays away (10 s)"
    )
    p.add_argument("--faults", default=",".join(FAULTS), help=f"among {', '.join(FAULTS)}")
    p.add_argument("--json", action="store_true", help="print the JSON report on one line")


def parse_faults(value: str) -> tuple[str, ...]:
    faults = tuple(f.strip() for f in value.split(",") if f.strip())
    if not faults or any(f not in FAULTS for f in faults):
        raise LabError(f"--faults: choose among {', '.join(FAULTS)}")
    return faults


def cmd_bench_faults(args: argparse.Namespace) -> int:
    faults = parse_faults(str(args.faults))
    if args.calls < 1 or not 1 <= args.agents <= 899 or args.rate <= 0 or args.talk_s <= 0:
        raise LabError("--calls >= 1, --agents 1..899, --rate and --talk-s > 0")
    if args.outage_s < 0:
        raise LabError("--outage-s must be 0 or more")
    opts = FaultOptions(
        args.calls, args.rate, args.agents, args.talk_s, args.outage_s, faults=faults
    )
    try:
        report = asyncio.run(run_bench(opts, load_settings(args.config)))
    except RuntimeError as exc:  # AgentPhones: the agents' port busy or SIPp did not start
        raise LabError(str(exc)) from exc
    print(json.dumps(report, indent=None if args.json else 2, ensure_ascii=False))
    return 0
