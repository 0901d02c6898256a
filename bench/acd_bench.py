"""``tongdai bench acd``: the same SIPp load through our own ACD and through app_queue, one run.

    tongdai bench acd --concurrent 100 [--agents 100] [--talk-s 8] [--rate 200] [--json]

For each mode (``ours``, then ``app_queue``) a fresh lab Asterisk and the engine (for ours with
``acd.distribution = "engine"``, every agent logged in; for app_queue with
``distribution = "asterisk"``) serve ``--agents`` endpoints
agent101..agent1NN that all point at one SIPp UAS (answers after 300 ms, talks ``--talk-s``,
hangs up). ``--concurrent`` SIPp callers at ``--rate``/s dial ``bench-acd`` or ``bench-queue``.
Both pass one FastAGI hop, ``acd_enter``, as every production call passes the IVR's AGI before
it is queued: for ours it enqueues in our queue ``bench`` (no menu) and, with an agent free,
hands the caller's channel the agent to dial; for app_queue it sets ``TONGDAI_ACTION=queue``
and the dialplan runs ``Queue(bench)`` (leastrecent, members added with AMI QueueAdd). Callers
wait until Asterisk hangs up. ``--modes ...,app_queue_bare`` adds, for reference,
``bench-queue-bare``: ``Queue(bench)`` right after the mark, no FastAGI hop and no engine (what
app_queue costs with no IVR in front of it, which a 1022 call never has).

Measured from AMI events (``Timestamp`` header) read by the benchmark's own AMI session:
time from the dialplan's ``TongdaiBenchEnter`` UserEvent (same point in both modes) to the
agent leg's ``DialBegin``, for calls that found a free agent at entry (fewer than ``--agents``
conversations in the system); for app_queue also its native QueueCallerJoin -> AgentCalled.
The engine's decision latency is ``acd.router.Router.decisions`` (dumped on SIGTERM); CPU seconds
during the load and peak RSS (VmHWM) come from /proc. The pure parts are in bench/acd_metrics.py.
Artifacts (settings, logs, queue_log, ``<mode>_events.jsonl``) stay in var/bench/acd-<stamp>/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acd.voice import VoiceAdapter
from bench.acd_metrics import (
    QUEUE,
    CallTimes,
    ProcUsage,
    bench_acd_toml,
    calls_from_events,
    join_to_called,
    proc_usage,
    ratios,
    summary_ms,
    time_to_agent,
)
from ivr.agi import AgiSession
from ivr.fastagi import AgiScripts
from lab import asterisk, engine, lock
from lab.chroot import ensure_chroot
from lab.instance import LabInstance
from lab.procs import LabError
from lab.sipp_run import AgentPhones, ExpectHangup, SipTarget, build_caller_scenario, run_callers
from pbx.ami import AmiClient
from tongdai.settings import Settings, home_path, load_settings

MODES = {"ours": "bench-acd", "app_queue": "bench-queue", "app_queue_bare": "bench-queue-bare"}
#: what the benchmark's AMI session asks for (an AMI Filter each)
EVENTS = [
    "Newchannel",
    "UserEvent",
    "QueueCallerJoin",
    "AgentCalled",
    "DialBegin",
    "DialEnd",
    "Hangup",
]
DECISIONS_FILE = "acd_decisions.json"


# -- the engine side: FastAGI ``acd_enter`` ---------------------------------------------------


async def acd_enter(session: AgiSession, dist: VoiceAdapter | None, announce_every_s: int) -> None:
    """``AGI(agi://.../acd_enter,<queue>[,queue])``: the benchmark's stand-in for the IVR's
    last step, the same FastAGI hop in both modes. Mode ``queue`` (or no ACD running):
    ``TONGDAI_ACTION=queue``, the dialplan runs ``Queue()``, as the IVR does with
    ``distribution = "asterisk"``. Otherwise the caller goes straight into our ACD (no menu,
    no ticket): if an agent is free this instant, ``TONGDAI_DIAL`` sends the caller's channel
    to dial them ([tongdai-acd-dial]); else the caller waits in [tongdai-acd-wait]. One
    AGI command on the measured path in both modes."""
    env = session.env
    if dist is None or env.get("agi_arg_2") == "queue":
        await session.set_variable("TONGDAI_ACTION", "queue")
        return
    uid = env.get("agi_uniqueid", "")
    caller = env.get("agi_callerid") or None
    queue = env.get("agi_arg_1") or QUEUE
    admitted = False
    try:
        admitted = dist.enqueue(uid, env.get("agi_channel", ""), queue, caller, None)
        direct = dist.dial_now(uid) if admitted else None
    finally:
        dist.ivr_done(uid)  # idempotent; releases a pending offer if anything above failed
    if not admitted:
        await session.set_variable("TONGDAI_ACTION", "busy")
    elif direct is not None:
        await session.set_variable("TONGDAI_DIAL", direct.dial_args)
    else:
        await session.set_variable("TONGDAI_ANNOUNCE", str(announce_every_s))
        await session.set_variable("TONGDAI_ACTION", "acd")


def register_scripts(scripts: AgiScripts, dist: VoiceAdapter | None, announce_every_s: int) -> None:
    """``acd_enter``, served by every engine so ``tongdai bench acd`` can run against it."""

    async def enter(channel: AgiSession) -> None:
        await acd_enter(channel, dist, announce_every_s)

    scripts.add("acd_enter", enter)


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    concurrent: int
    agents: int = 100
    talk_s: float = 8.0
    rate: float = 200.0
    modes: tuple[str, ...] = ("ours", "app_queue")

    @property
    def timeout_s(self) -> float:
        """How long a caller may wait: three times the ideal drain, plus a minute."""
        waves = math.ceil(self.concurrent / self.agents)
        return 3 * (waves * (self.talk_s + 1) + self.concurrent / self.rate) + 60


def write_settings(base: Settings, work: Path, opts: BenchOptions) -> Path:
    """The run's settings: its own database, var folders, ACD file and queue_log."""
    acd = work / "acd_bench.toml"
    acd.write_text(bench_acd_toml(opts.agents, opts.concurrent + opts.agents), encoding="utf-8")
    path = work / "tongdai.toml"
    text = (
        f'[database]\nurl = "sqlite+aiosqlite:///{work}/bench.db"\nstate_dir = "{work}/state"\n'
        f'[lab]\nvar_dir = "{work}/var"\nchroot = "{base.lab.chroot}"\n'
        f"instance = {base.lab.instance}\nsip_port = {base.lab.sip_port}\n"
        f"[ami]\nport = {base.ami.port}\n"
        f"[fastagi]\nport = {base.fastagi.port}\n"
        f'[acd]\ndistribution = "engine"\nconfig = "{acd}"\nqueue_log = "{work}/queue_log"\n'
        "announce_every_s = 3600\nauto_login = true\n"
    )
    path.write_text(text, encoding="utf-8")
    # app_queue mode: the same engine serves the FastAGI hop, distribution left to Asterisk
    aq = text.replace('distribution = "engine"', 'distribution = "asterisk"')
    (work / "tongdai_app_queue.toml").write_text(aq, encoding="utf-8")
    return path


async def _open_ami(
    settings: Settings, events: list[dict[str, str]]
) -> tuple[AmiClient, asyncio.Task[None]]:
    """The benchmark's own AMI session, filtered to the events it measures, and the task
    (the caller owns it) appending them to ``events`` until the client closes."""
    client = AmiClient(
        settings.ami.host, settings.ami.port, settings.ami.username,
        asterisk.ami_secret(settings), action_timeout=10.0,
    )  # fmt: skip
    sub = client.subscribe(EVENTS, maxsize=1_000_000)
    await client.start()
    for name in EVENTS:
        await client.action("Filter", Operation="Add", Filter=f"Event: {name}")

    async def collect() -> None:
        async for ev in sub:
            d = dict(reversed(ev.headers))  # the first value of a repeated header wins
            d["_rx"] = f"{time.time():.6f}"
            events.append(d)

    return client, asyncio.create_task(collect(), name="bench AMI events")


async def _wait_until(ok: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def _at_drain(
    events: list[dict[str, str]], pids: dict[str, int], n: int
) -> tuple[float, dict[str, ProcUsage]]:
    """When ``n`` conversations (answered agent legs) have ended: the time and each process's
    usage. Our callers hear the survey after that, which is not distribution work."""
    answered: set[str] = set()
    ended, seen = 0, 0
    while ended < n:
        await asyncio.sleep(0.2)
        for ev in events[seen:]:
            if ev.get("Event") == "DialEnd" and ev.get("DialStatus") == "ANSWER":
                answered.add(ev.get("DestUniqueid", ""))
            elif ev.get("Event") == "Hangup" and ev.get("Uniqueid") in answered:
                ended += 1
        seen = len(events)
    return time.monotonic(), {k: proc_usage(p) for k, p in pids.items()}


def _ports_free(settings: Settings) -> bool:
    try:
        asterisk.check_ports_free(settings)
    except LabError:
        return False
    return True


def _logged_in(path: Path, n: int) -> bool:
    return path.exists() and path.read_text(encoding="utf-8").count("|AGENTLOGIN|") >= n


async def run_mode(mode: str, config: Path, opts: BenchOptions) -> dict[str, Any]:
    """One mode on a fresh Asterisk (and engine); the measured figures."""
    settings = load_settings(config)
    events: list[dict[str, str]] = []
    # the previous mode's Asterisk may hold its ports a moment after lab.asterisk.stop returns
    await _wait_until(lambda: _ports_free(settings), 15)
    ast_pid = await asyncio.to_thread(asterisk.start, settings)
    eng_pid: int | None = None
    client: AmiClient | None = None
    collector: asyncio.Task[None] | None = None
    drain: asyncio.Task[tuple[float, dict[str, ProcUsage]]] | None = None
    phones = AgentPhones(
        port=LabInstance.of(settings).agents_port,
        answer_after_ms=300,
        talk_ms=int(opts.talk_s * 1000),
    )
    try:
        deployed = asterisk.LabPaths.of(settings).conf_dir / "pjsip_agents.conf"
        if f"[agent{100 + opts.agents}]" not in deployed.read_text(encoding="utf-8"):
            raise LabError(f"{deployed} lacks agent{100 + opts.agents} (lab/asterisk.py)")
        client, collector = await _open_ami(settings, events)
        engine_config = config if mode == "ours" else config.parent / "tongdai_app_queue.toml"
        if mode != "app_queue_bare":  # bare: Queue() straight after the mark, no engine at all
            eng_pid = await asyncio.to_thread(engine.start_engine, settings, str(engine_config))
        if mode == "ours":
            qlog = home_path(settings.acd.queue_log)
            if not await _wait_until(lambda: _logged_in(qlog, opts.agents), 60):
                raise LabError(f"the engine did not log {opts.agents} agents in within 60 s")
        else:
            for i in range(1, opts.agents + 1):
                agent = f"agent{100 + i}"
                await client.action("QueueAdd", Queue=QUEUE, Interface=f"PJSIP/{agent}",
                                    MemberName=agent, StateInterface=f"PJSIP/{agent}")  # fmt: skip
        phones.start()
        pids = {"asterisk": ast_pid, **({"engine": eng_pid} if eng_pid else {})}
        before = {k: proc_usage(p) for k, p in pids.items()}
        kids0, self0 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        drain = asyncio.create_task(_at_drain(events, pids, opts.concurrent))
        sipp = await run_callers(
            build_caller_scenario([ExpectHangup(int(opts.timeout_s * 1000))]),
            target=SipTarget("127.0.0.1", settings.lab.sip_port, MODES[mode]),
            calls=opts.concurrent, rate=opts.rate, concurrent=opts.concurrent,
            timeout_s=opts.timeout_s + 30,
        )  # fmt: skip
        numbers = set(sipp.callers)

        def settled() -> bool:
            calls = calls_from_events(events)
            return all(calls.get(n, CallTimes()).ended for n in numbers)

        await _wait_until(settled, 10)  # calls that never end count as lost below
        after = {k: proc_usage(p) for k, p in pids.items()}
        t1, at_drain = time.monotonic(), after
        if drain.done():
            t1, at_drain = drain.result()
        phones.stop()
        kids1, self1 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
    finally:
        if drain is not None and not drain.done():
            drain.cancel()
            await asyncio.wait([drain])
        phones.stop()
        if client is not None:
            await client.close()  # ends the subscription, so the collector returns
        if collector is not None:
            collector.cancel()
            await asyncio.wait([collector])
        if eng_pid is not None:
            await asyncio.to_thread(engine.stop_engine, settings)
        await asyncio.to_thread(asterisk.stop, settings)
    with (config.parent / f"{mode}_events.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(ev) + "\n" for ev in events)
    calls = {n: c for n, c in calls_from_events(events).items() if n in numbers}
    elapsed, window = sipp.elapsed_s, t1 - t0
    usage: dict[str, Any] = {}
    for k in pids:
        cpu = at_drain[k].cpu_s - before[k].cpu_s
        usage[k] = {
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_call": round(1000 * cpu / opts.concurrent, 2),
            "core_share": round(cpu / window, 3) if window else None,
            "cpu_s_total": round(after[k].cpu_s - before[k].cpu_s, 2),
            "peak_rss_mb": after[k].peak_rss_mb,
        }
    sipp_cpu = (kids1.children_user + kids1.children_system) - (
        kids0.children_user + kids0.children_system
    )
    usage["sipp"] = {"cpu_s": round(sipp_cpu, 2), "core_share": round(sipp_cpu / elapsed, 3)}
    bench_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    usage["bench"] = {"cpu_s": round(bench_cpu, 2), "core_share": round(bench_cpu / elapsed, 3)}
    starts = [x for c in calls.values() if (x := c.invite or c.enter) is not None]
    ends = [c.talk_end for c in calls.values() if c.talk_end is not None]
    out: dict[str, Any] = {
        "offered": opts.concurrent,
        "completed": sipp.successful,
        "failed": sipp.failed,
        "unfinished": opts.concurrent - sipp.successful - sipp.failed,
        "connected": sum(1 for c in calls.values() if c.answered),
        "lost": opts.concurrent - sum(1 for c in calls.values() if c.answered),
        "time_to_agent_ms": summary_ms(time_to_agent(calls, opts.agents)),
        "drain_s": round(max(ends) - min(starts), 2) if ends and starts else None,
        "sipp_elapsed_s": round(elapsed, 2),
        "cpu_window_s": round(window, 2),
        "usage": usage,
        "bottleneck": max(usage, key=lambda k: usage[k]["core_share"] or 0),
    }
    if mode != "ours":
        out["join_to_called_ms"] = summary_ms(join_to_called(calls, opts.agents))
    else:
        out["decision_ms"] = _decisions(home_path(settings.database.state_dir) / DECISIONS_FILE)
        eng, ast = usage["engine"]["cpu_s"], usage["asterisk"]["cpu_s"]
        out["engine_cpu_per_asterisk_cpu"] = round(eng / ast, 3) if ast else None
    return out


def _decisions(path: Path) -> dict[str, Any]:
    """Wall-clock milliseconds per matching round (p50/p99/max), and the same rounds in the
    engine thread's CPU time (``cpu``): a wall figure far above its CPU figure means the host
    ran something else mid-decision, not that the engine worked longer."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        values = body["decisions_s"]
    except (FileNotFoundError, ValueError, KeyError):
        return {"error": f"no decisions in {path} (engine did not stop cleanly?)"}
    out = summary_ms([float(v) for v in values], (50, 99))
    cpu = body.get("decisions_cpu_s")
    if isinstance(cpu, list):
        out["cpu"] = summary_ms([float(v) for v in cpu], (50, 99))
    return out


def _machine() -> dict[str, Any]:
    mem_kb = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {"nproc": os.cpu_count(), "mem_total_mb": int(mem_kb) // 1024}


async def run_bench(opts: BenchOptions, base: Settings) -> dict[str, Any]:
    """Every mode in ``opts.modes``, one after the other; the JSON-ready report."""
    work = home_path("var/bench") / time.strftime("acd-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    config = write_settings(base, work, opts)
    settings = load_settings(config)
    await asyncio.to_thread(ensure_chroot, settings.lab.chroot)
    await asyncio.to_thread(engine.build_prompts, settings)
    report: dict[str, Any] = {
        "machine": _machine(),
        "options": {
            "concurrent": opts.concurrent,
            "agents": opts.agents,
            "talk_s": opts.talk_s,
            "rate": opts.rate,
        },
        "artifacts": str(work),
    }
    # one lab lock for every mode: no other lab slips in between two of them
    with lock.hold(settings, command="tongdai bench acd"):
        for mode in opts.modes:
            report[mode] = await run_mode(mode, config, opts)
    if "ours" in report and "app_queue" in report:
        report["ratios_ours_over_app_queue"] = ratios(report["ours"], report["app_queue"])
    if "ours" in report and "app_queue_bare" in report:
        report["ratios_ours_over_app_queue_bare"] = ratios(report["ours"], report["app_queue_bare"])
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrent", type=int, required=True, help="callers, all at once")
    p.add_argument("--agents", type=int, default=100, help="agent phones (default 100)")
    p.add_argument("--talk-s", type=float, default=8.0, help="agent talk time (default 8 s)")
    p.add_argument("--rate", type=float, default=200.0, help="new calls per second (200)")
    p.add_argument(
        "--modes",
        default="ours,app_queue",
        help="ours,app_queue[,app_queue_bare] (default ours,app_queue); app_queue_bare: "
        "Queue() with no FastAGI hop before it (no IVR), for reference",
    )
    p.add_argument("--json", action="store_true", help="print the JSON report only")


def cmd_bench_acd(args: argparse.Namespace) -> int:
    modes = tuple(m.strip() for m in str(args.modes).split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        raise LabError(f"--modes: choose among {', '.join(MODES)}")
    if args.concurrent < 1 or not 1 <= args.agents <= 899 or args.rate <= 0 or args.talk_s <= 0:
        raise LabError("--concurrent >= 1, --agents 1..899, --rate and --talk-s > 0")
    opts = BenchOptions(args.concurrent, args.agents, args.talk_s, args.rate, modes)
    try:
        report = asyncio.run(run_bench(opts, load_settings(args.config)))
    except RuntimeError as exc:  # AgentPhones: port 5080 busy or SIPp did not start
        raise LabError(str(exc)) from exc
    print(json.dumps(report, indent=None if args.json else 2))
    return 0
