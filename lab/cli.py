"""``tongdai lab up|down|status|simulate``: a real Asterisk 22 plus the engine on this machine.

``up --nodes 2`` (or ``[lab] nodes = 2``) starts Kamailio in front of two Asterisk nodes
(``lab.nodes``) instead of one Asterisk. ``up`` is idempotent (what already runs is left
alone), ``down`` stops only what ``up`` started (by pid file), ``status`` exits 0 when
everything ``up`` started is running, else 3.
``up`` takes the lab lock of its instance (``lab.lock``; it waits, saying who holds it, while
another lab runs on the same ports); Asterisk and the engine inherit it, so it stays held until
``down`` stops them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

from lab import asterisk, engine, kamailio, lock, nodes
from lab.chroot import ensure_chroot
from lab.instance import LabInstance
from tongdai.health import read_file as read_health
from tongdai.settings import NODES_ENV, Settings, home_path, load_settings

HEALTH_FILE = "health.json"  # hotline.watch.HEALTH_FILE (the lab may not import the engine)

EXIT_NOT_RUNNING = 3


def register(sub: Any) -> None:
    """Add ``lab up``, ``lab down`` and ``lab status`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "lab", help="run a real Asterisk 22 (Debian sid chroot) and the engine locally"
    )
    commands = parser.add_subparsers(dest="lab_command", required=True)
    up = commands.add_parser("up", help="install if needed, then start Asterisk and the engine")
    up.add_argument(
        "--no-engine",
        action="store_true",
        help="start Asterisk only (run `tongdai serve` yourself)",
    )
    up.add_argument(
        "--nodes",
        type=int,
        choices=(1, 2),
        help="2: Kamailio in front of two Asterisk nodes (the same as [lab] nodes = 2)",
    )
    up.set_defaults(func=cmd_up)
    commands.add_parser("down", help="stop what `lab up` started").set_defaults(func=cmd_down)
    commands.add_parser("status", help="exit 0 if everything runs, 3 if not").set_defaults(
        func=cmd_status
    )
    sim = commands.add_parser(
        "simulate", help="simulated callers (SIPp) dial 1022 while simulated agents answer"
    )
    sim.add_argument("--calls", type=int, default=40, help="how many calls (default 40)")
    sim.add_argument("--rate", type=float, default=4.0, help="new calls per second (default 4)")
    sim.set_defaults(func=cmd_simulate)


def _no_engine_flag(settings: Settings) -> Any:
    # Remembers `up --no-engine`, so `status` does not count the missing engine as a failure.
    return home_path(settings.lab.var_dir) / "no-engine"


def _describe(settings: Settings, with_engine: bool) -> list[str]:
    paths = asterisk.LabPaths.of(settings)
    inst = LabInstance.of(settings)
    host, port = engine.agi_address(settings)
    logs = paths.chroot / inst.log_dir.lstrip("/")
    lines = [
        f"  instance {inst.number}  (lock {inst.lock_path}; agents' phones udp "
        f"127.0.0.1:{inst.agents_port}, citizens' phone {inst.citizens_port}, "
        f"RTP {inst.rtp_start}-{inst.rtp_end})",
        f"  SIP      udp 127.0.0.1:{settings.lab.sip_port}  (dial 1022; context tongdai-inbound)",
        f"  AMI      tcp {settings.ami.host}:{settings.ami.port}  "
        f"(user {settings.ami.username}, secret in {paths.secret_file})",
        f"  FastAGI  tcp {host}:{port}  " + ("(engine)" if with_engine else "(not started)"),
        f"  Asterisk log   {paths.log_file}",
        f"  Asterisk logs  {logs} (messages, queue_log, cdr-csv)",
        f"  config         {paths.conf_dir} (from {paths.source_conf})",
        f"  recordings     {paths.recordings} -> {inst.recordings_dir}",
        f"  CLI            chroot {paths.chroot} {asterisk.ASTERISK_BIN} "
        f"-C {inst.asterisk_conf} -r",
    ]
    if with_engine:
        lines.insert(5, f"  engine log     {engine.log_file(settings)}")
    return lines


def cmd_up(args: argparse.Namespace) -> int:
    if getattr(args, "nodes", None):
        # load_settings reads it (a file's [lab] nodes wins), and so does the engine we start
        os.environ[NODES_ENV] = str(args.nodes)
    settings = load_settings(args.config)
    if settings.lab.nodes > 1:
        return _up_nodes(settings, args.config, with_engine=not args.no_engine)
    with_engine = not args.no_engine
    ast_pid = asterisk.running_pid(settings)
    eng_pid = engine.running_pid(settings)
    if ast_pid is not None and (eng_pid is not None or not with_engine):
        print(
            f"lab already running (Asterisk pid {ast_pid}"
            + (f", engine pid {eng_pid})" if eng_pid else ")")
        )
        for line in _describe(settings, eng_pid is not None):
            print(line)
        print("(configuration changes take effect after `tongdai lab down` and `up` again)")
        return 0
    if ast_pid is None and eng_pid is not None:
        # the engine alone holds the lab lock: start again, both under one lock
        print(f"the engine (pid {eng_pid}) runs without Asterisk: stopping it first")
        engine.stop_engine(settings)
    print(f"checking the Asterisk chroot {settings.lab.chroot} ...")
    ensure_chroot(settings.lab.chroot)
    print("prompts: " + engine.build_prompts(settings))
    seeded = engine.seed_dossiers(settings)
    if seeded:
        print(f"dossiers: imported {seeded} sample dossiers ({engine.SAMPLE_DOSSIERS})")
    seeded = engine.seed_procedures(settings)
    if seeded:
        print(f"procedures: imported {seeded} sample procedures ({engine.SAMPLE_PROCEDURES})")
    flag = _no_engine_flag(settings)
    if ast_pid is None:
        with lock.hold(settings, command="tongdai lab up"):
            print("starting Asterisk ...")
            ast_pid = asterisk.start(settings)
            if with_engine:
                print("starting the engine (tongdai serve) ...")
                eng_pid = engine.start_engine(settings, args.config)
    elif with_engine:  # our running Asterisk holds the lock
        print("starting the engine (tongdai serve) ...")
        eng_pid = engine.start_engine(settings, args.config)
    if with_engine:
        flag.unlink(missing_ok=True)
    else:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    print(f"lab up: Asterisk pid {ast_pid}" + (f", engine pid {eng_pid}" if eng_pid else ""))
    for line in _describe(settings, eng_pid is not None):
        print(line)
    if with_engine and settings.web.enabled:
        _demo_accounts(settings)
    return 0


def _nodes_flag(settings: Settings) -> Any:
    # Remembers `up --nodes 2`, so `status` without --nodes describes the two-node lab.
    return home_path(settings.lab.var_dir) / "nodes"


def _up_nodes(settings: Settings, config: str | None, *, with_engine: bool) -> int:
    """``lab up`` of a two-node lab: both Asterisk nodes, Kamailio, then the engine."""
    running = nodes.running(settings)
    eng_pid = engine.running_pid(settings)
    if all(running.values()) and (eng_pid is not None or not with_engine):
        print("two-node lab already running")
    else:
        print(f"checking the Asterisk chroot {settings.lab.chroot} ...")
        ensure_chroot(settings.lab.chroot)
        print("prompts: " + engine.build_prompts(settings))
        seeded = engine.seed_dossiers(settings)
        if seeded:
            print(f"dossiers: imported {seeded} sample dossiers ({engine.SAMPLE_DOSSIERS})")
        with lock.hold(settings, command="tongdai lab up --nodes 2"):
            print("starting two Asterisk nodes and Kamailio ...")
            running = dict(nodes.start(settings))
            if with_engine:
                print("starting the engine (tongdai serve) ...")
                eng_pid = engine.start_engine(settings, config)
    flag = _no_engine_flag(settings)
    if with_engine:
        flag.unlink(missing_ok=True)
    else:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    _nodes_flag(settings).write_text(f"{settings.lab.nodes}\n", encoding="utf-8")
    for line in _describe_nodes(settings, eng_pid):
        print(line)
    if with_engine and settings.web.enabled and eng_pid is not None:
        _demo_accounts(settings)
    return 0


def _describe_nodes(settings: Settings, eng_pid: int | None) -> list[str]:
    pids = nodes.running(settings)
    kpaths = kamailio.KamailioPaths.of(settings)
    host, port = engine.agi_address(settings)
    lines = [
        f"  Kamailio pid {pids['kamailio']}  udp 127.0.0.1:{settings.lab.sip_port} (dial 1022; "
        "agents' phones register here)",
        f"           config {kpaths.config}, log {kpaths.log_file}",
        f"           kamcmd -s unix:{kpaths.ctl_socket} dispatcher.list",
    ]
    for k, node in enumerate(nodes.all_nodes(settings), start=1):
        inst = LabInstance.of(node)
        lines.append(
            f"  node {k}   pid {pids[f'node{k}']}  SIP udp {inst.host}:{settings.lab.sip_port}, "
            f"AMI {node.ami.host}:{node.ami.port}, RTP {inst.rtp_start}-{inst.rtp_end}, "
            f"config {inst.conf_dir}, log {asterisk.LabPaths.of(node).log_file}"
        )
    engine_state = f"pid {eng_pid}" if eng_pid else "not started"
    lines.append(f"  engine   {engine_state}  FastAGI tcp {host}:{port} (both nodes)")
    return lines


def _demo_accounts(settings: Settings) -> None:
    """The lab's demo web accounts, with fresh random passwords (never in a deployment)."""
    import asyncio

    from accounts.store import create_demo_users
    from tongdai.db import make_engine, upgrade_engine

    async def make() -> list[tuple[str, str, str]]:
        db = make_engine(settings.database.resolved_url())
        try:
            await upgrade_engine(db)
            return await create_demo_users(db)
        finally:
            await db.dispose()

    print(f"  web      http://{settings.web.host}:{settings.web.port}  demo accounts (lab only):")
    for name, role, password in asyncio.run(make()):
        print(f"           {name:<12} {role:<10} {password}")


def cmd_down(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    stopped_engine = engine.stop_engine(settings)
    stopped_nodes = nodes.stop(settings)  # a two-node lab's, if one runs (before the unmount)
    stopped_asterisk = asterisk.stop(settings)
    _no_engine_flag(settings).unlink(missing_ok=True)
    _nodes_flag(settings).unlink(missing_ok=True)
    print(f"engine: {'stopped' if stopped_engine else 'was not running'}")
    print(f"Asterisk: {'stopped' if stopped_asterisk else 'was not running'}")
    for name, was in stopped_nodes.items():
        if was:
            print(f"{name}: stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if settings.lab.nodes > 1 or _nodes_flag(settings).exists():
        wide = dataclasses.replace(settings.lab, nodes=2)
        return _status_nodes(dataclasses.replace(settings, lab=wide))
    ast = asterisk.status(settings)
    eng_pid = engine.running_pid(settings)
    engine_expected = not _no_engine_flag(settings).exists()
    host, port = engine.agi_address(settings)
    agi_ok = eng_pid is not None and engine.tcp_listening(host, port)
    if ast.pid is None:
        print("Asterisk: not running")
    else:
        print(f"Asterisk: pid {ast.pid}, AMI {'ready' if ast.booted else 'NOT answering'}")
    print(f"recordings mounted: {'yes' if ast.recordings_mounted else 'no'}")
    if eng_pid is None:
        print("engine: " + ("not running" if engine_expected else "not started (--no-engine)"))
    else:
        print(
            f"engine: pid {eng_pid}, FastAGI {host}:{port} {'ready' if agi_ok else 'NOT answering'}"
        )
        for line in health_lines(settings, eng_pid):
            print(line)
    ok = ast.booted and ast.recordings_mounted and (agi_ok or not engine_expected)
    return 0 if ok else EXIT_NOT_RUNNING


def _status_nodes(settings: Settings) -> int:
    """``lab status`` of a two-node lab: Kamailio and its view of the nodes, each node's
    Asterisk, the engine."""
    ok = True
    kam = kamailio.running_pid(settings)
    print(f"Kamailio: {f'pid {kam}' if kam else 'not running'}")
    states = {s.uri: s for s in kamailio.node_states(settings)} if kam else {}
    ok = ok and kam is not None
    for k, node in enumerate(nodes.all_nodes(settings), start=1):
        ast = asterisk.status(node)
        uri = kamailio.nodes_of(settings)[k - 1]
        seen = states.get(uri)
        dispatch = f"dispatcher {seen.flags}" if seen else "dispatcher: unknown"
        state = f"pid {ast.pid}, AMI {'ready' if ast.booted else 'NOT answering'}"
        print(f"node {k}: {state if ast.pid else 'not running'}; {dispatch}")
        ok = ok and ast.booted and seen is not None and seen.active
    eng_pid = engine.running_pid(settings)
    engine_expected = not _no_engine_flag(settings).exists()
    host, port = engine.agi_address(settings)
    agi_ok = eng_pid is not None and engine.tcp_listening(host, port)
    if eng_pid is None:
        print("engine: " + ("not running" if engine_expected else "not started (--no-engine)"))
    else:
        print(
            f"engine: pid {eng_pid}, FastAGI {host}:{port} {'ready' if agi_ok else 'NOT answering'}"
        )
        for line in health_lines(settings, eng_pid):
            print(line)
    return 0 if ok and (agi_ok or not engine_expected) else EXIT_NOT_RUNNING


def health_lines(settings: Settings, eng_pid: int) -> list[str]:
    """What the running engine says is down (its ``<state_dir>/health.json``)."""
    data = read_health(home_path(settings.database.state_dir) / HEALTH_FILE)
    if data is None or data.get("pid") != eng_pid:
        return ["engine health: not reported (an engine older than this check?)"]
    lines = [f"engine health: {data.get('status', '?')}"]
    for dep in data.get("dependencies", []):
        since = time.strftime("%F %T", time.localtime(float(dep.get("since", 0))))
        state = "up" if dep.get("up") else "DOWN"
        detail = f" ({dep['detail']})" if dep.get("detail") else ""
        lines.append(f"  {dep.get('name')}: {state} since {since}{detail}")
    return lines


def cmd_simulate(args: argparse.Namespace) -> int:
    import asyncio

    from lab.simulate import simulate, summary
    from lab.sipp_run import sipp_available
    from tongdai.errors import TongdaiError

    settings = load_settings(args.config)
    if (why := sipp_available()) is not None:
        raise TongdaiError(why)
    if args.calls < 1 or args.rate <= 0:
        raise TongdaiError("--calls must be at least 1 and --rate above 0")
    if settings.lab.nodes < 2 and _nodes_flag(settings).exists():
        settings = dataclasses.replace(settings, lab=dataclasses.replace(settings.lab, nodes=2))
    if settings.lab.nodes > 1:
        if not all(nodes.running(settings).values()):
            raise TongdaiError("the two-node lab is not running: run `tongdai lab up --nodes 2`")
    elif asterisk.running_pid(settings) is None:
        raise TongdaiError("the lab is not running: run `tongdai lab up` first")
    print(f"simulating {args.calls} calls at {args.rate:g}/s against sip:1022@127.0.0.1 ...")
    results, tickets = asyncio.run(simulate(settings, calls=args.calls, rate=args.rate))
    for line in summary(results, tickets):
        print(line)
    placed = sum(r.calls for _, r in results)
    return 0 if len(tickets) == placed and all(r.ok for _, r in results) else 1
