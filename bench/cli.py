"""``tongdai bench``: benchmarks; ``tongdai bench reports`` times the manager reports,
``tongdai bench acd`` runs the same SIPp load through our ACD and through app_queue,
``tongdai bench ivr`` the same journeys through our IVR and a plain dialplan IVR,
``tongdai bench faults`` faults injected under a SIPp load,
``tongdai bench channels`` web chat visitors and mails with agents answering,
``tongdai bench webhooks`` signed Zalo/Facebook webhooks against the engine on SQLite and
PostgreSQL, ``tongdai bench process`` the conversation processor's SQL round trips per message."""

from __future__ import annotations

import argparse
from typing import Any

from bench import (
    acd_bench,
    channels_bench,
    faults_bench,
    ivr_bench,
    process_bench,
    webhooks_bench,
)
from bench.reports_bench import add_arguments, cmd_bench_reports


def register(sub: Any) -> None:
    """Add ``bench reports``, ``acd``, ``ivr``, ``faults``, ``channels``, ``webhooks``,
    ``process``."""
    parser: argparse.ArgumentParser = sub.add_parser("bench", help="benchmarks")
    commands = parser.add_subparsers(dest="bench_command", required=True)
    reports = commands.add_parser(
        "reports",
        help="time the reports on a synthetic year in fresh databases",
        description="Generate a synthetic year in new PostgreSQL/SQLite databases and time "
        "reports.kpi.compute for a month and for the year (median and min of --runs).",
    )
    add_arguments(reports)
    reports.set_defaults(func=cmd_bench_reports)
    acd = commands.add_parser(
        "acd",
        help="our ACD against app_queue: same SIPp load, one run, JSON report",
        description="Run --concurrent SIPp callers through our own ACD, then through "
        "app_queue, each on a fresh lab Asterisk with --agents SIPp agent phones; print "
        "calls completed/lost, time to agent, decision latency, CPU and RSS, and ratios.",
    )
    acd_bench.add_arguments(acd)
    acd.set_defaults(func=acd_bench.cmd_bench_acd)
    ivr = commands.add_parser(
        "ivr",
        help="our IVR against a plain dialplan IVR: the 1022 menu under SIPp load, JSON report",
        description="Run --concurrent SIPp callers through the published mix of journeys in "
        "the real 1022 menu, in our FastAGI IVR and in a plain dialplan IVR of the same menu, "
        "each on a fresh lab Asterisk with SIPp agent phones; print reaction time to a key, "
        "calls completed/failed, tickets checked, CPU and RSS per process, and ratios.",
    )
    ivr_bench.add_arguments(ivr)
    ivr.set_defaults(func=ivr_bench.cmd_bench_ivr)
    faults = commands.add_parser(
        "faults",
        help="faults injected under a SIPp load on the lab: calls and tickets per fault, JSON",
        description="With SIPp callers walking the 1022 menu to our ACD and SIPp agents, "
        "inject one fault at a time (Redis restart, database connections dropped, AMI "
        "session killed, hostile FastAGI clients, callers vanishing, engine SIGKILL) and "
        "report per fault calls offered/answered/lost, tickets written against calls, "
        "recovery time and what the engine's health said. Run under the lab lock.",
    )
    faults_bench.add_arguments(faults)
    faults.set_defaults(func=faults_bench.cmd_bench_faults)
    channels = commands.add_parser(
        "channels",
        help="web chat visitors over WebSockets and a burst of mails, agents answering; JSON",
        description="--visitors WebSocket visitors and a burst of --mails journaled mails on "
        "a fresh PostgreSQL database, simulated agents answering through the Outbox; print "
        "messages lost, visitor->agent and agent->visitor latency, ingest rates, engine CPU "
        "and RSS; --with-acd N adds `bench acd --concurrent N` alone and under the chat load.",
    )
    channels_bench.add_arguments(channels)
    channels.set_defaults(func=channels_bench.cmd_bench_channels)
    hooks = commands.add_parser(
        "webhooks",
        help="signed Zalo/Facebook webhooks at R/s against the engine, SQLite and PostgreSQL",
        description="Start the engine (tongdai serve) with the fake Zalo and fake Graph API on "
        "loopback, on a fresh SQLite and a fresh PostgreSQL database in turn, and send signed "
        "webhooks at each --rate for --seconds (5% redeliveries, 1% bad signatures); print "
        "acknowledged/s, latency to 200 (p50/p95/p99), time until every event is stored, "
        "lost/duplicated, bad signatures refused, CPU, and the highest rate sustained.",
    )
    webhooks_bench.add_arguments(hooks)
    hooks.set_defaults(func=webhooks_bench.cmd_bench_webhooks)
    process = commands.add_parser(
        "process",
        help="journaled chat messages to tickets and bot answers: SQL round trips per message",
        description="On a fresh SQLite and/or PostgreSQL database, journal --events web chat "
        "visitors' first and second messages, process them (journal -> inbox -> bot -> "
        "outbox) and deliver the replies, in this process; print per phase events/s and "
        "SQL statements, transactions and pool checkouts per message.",
    )
    process_bench.add_arguments(process)
    process.set_defaults(func=process_bench.cmd_bench_process)
