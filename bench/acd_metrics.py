"""The pure parts of ``tongdai bench acd`` (bench/acd_bench.py): AMI events -> per-call moments,
time-to-agent for calls that found a free agent, percentiles, ratios, the generated ACD file and
process usage from /proc. No I/O except ``proc_usage``; unit-tested in tests/unit/test_acd_bench.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUE = "bench"
AGENT_PREFIX = "PJSIP/agent"
ENTER = "TongdaiBenchEnter"


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, Any]:
    """Count, percentiles and max of ``values`` (seconds), in milliseconds."""
    out: dict[str, Any] = {"n": len(values)}
    for p in points:
        v = percentile(values, p)
        out[f"p{p}"] = None if v is None else round(v * 1000, 3)
    out["max"] = round(max(values) * 1000, 3) if values else None
    return out


@dataclass
class CallTimes:
    """One SIPp caller (keyed by its number) as AMI saw it; epoch seconds."""

    invite: float | None = None  # the caller's channel appeared (INVITE)
    enter: float | None = None  # TongdaiBenchEnter: asks for the queue
    join: float | None = None  # app_queue: QueueCallerJoin
    called: float | None = None  # app_queue: AgentCalled
    ring: float | None = None  # first DialBegin towards an agent's phone
    answered: float | None = None  # an agent answered (DialEnd ANSWER)
    talk_end: float | None = None  # the answered agent leg hung up
    ended: float | None = None  # the caller's channel hung up (last Hangup)


def _first(old: float | None, t: float) -> float:
    return t if old is None else min(old, t)


def calls_from_events(events: Iterable[Mapping[str, str]]) -> dict[str, CallTimes]:
    """Per caller number, the moments of its call. Agent legs are linked to the caller by
    number: app_queue's DialBegin carries the caller's channel, our Originate puts the
    caller's number in the agent leg's caller ID (``DestCallerIDNum``)."""
    calls: dict[str, CallTimes] = {}
    legs: dict[str, str] = {}  # agent leg uniqueid -> caller number
    answered: set[str] = set()
    for ev in events:
        name, chan = ev.get("Event", ""), ev.get("Channel", "")
        try:
            t = float(ev.get("Timestamp") or ev.get("_rx") or "")
        except ValueError:
            continue
        if name in ("DialBegin", "DialEnd"):
            dest = ev.get("DestChannel", "")
            if not dest.startswith(AGENT_PREFIX):
                continue
            num = ev.get("CallerIDNum", "") if chan else ev.get("DestCallerIDNum", "")
            c = calls.setdefault(num, CallTimes())
            leg = ev.get("DestUniqueid", "")
            if name == "DialBegin":
                c.ring = _first(c.ring, t)
                legs[leg] = num
            elif ev.get("DialStatus") == "ANSWER":
                c.answered = _first(c.answered, t)
                answered.add(leg)
            continue
        if name == "Hangup" and chan.startswith(AGENT_PREFIX):
            uid = ev.get("Uniqueid", "")
            if uid in answered and uid in legs:
                c = calls.setdefault(legs[uid], CallTimes())
                c.talk_end = t if c.talk_end is None else max(c.talk_end, t)
            continue
        num = ev.get("CallerIDNum", "")
        if not num or chan.startswith(AGENT_PREFIX):
            continue
        if name == "Newchannel":
            c = calls.setdefault(num, CallTimes())
            c.invite = _first(c.invite, t)
        elif name == "UserEvent" and ev.get("UserEvent") == ENTER:
            c = calls.setdefault(num, CallTimes())
            c.enter = _first(c.enter, t)
        elif name == "QueueCallerJoin":
            c = calls.setdefault(num, CallTimes())
            c.join = _first(c.join, t)
        elif name == "AgentCalled":
            c = calls.setdefault(num, CallTimes())
            c.called = _first(c.called, t)
        elif name == "Hangup" and num in calls:
            c = calls[num]
            c.ended = t if c.ended is None else max(c.ended, t)
    return calls


def found_free_agent(calls: Mapping[str, CallTimes], agents: int) -> list[CallTimes]:
    """Calls that entered while fewer than ``agents`` conversations were in the system (entered
    earlier and not yet over: the agent's leg ended, or the caller left unanswered)."""
    entered = sorted((c for c in calls.values() if c.enter is not None), key=lambda c: c.enter or 0)
    over = sorted(
        x for c in entered if (x := c.ended if c.talk_end is None else c.talk_end) is not None
    )
    out: list[CallTimes] = []
    j = 0
    for i, c in enumerate(entered):
        assert c.enter is not None
        while j < len(over) and over[j] <= c.enter:
            j += 1
        if i - j < agents:
            out.append(c)
    return out


def time_to_agent(calls: Mapping[str, CallTimes], agents: int) -> list[float]:
    """Seconds from entering to the agent's phone ringing, for calls that found one free."""
    return [
        c.ring - c.enter
        for c in found_free_agent(calls, agents)
        if c.ring is not None and c.enter is not None
    ]


def join_to_called(calls: Mapping[str, CallTimes], agents: int) -> list[float]:
    """app_queue's own view: QueueCallerJoin -> AgentCalled, same calls."""
    return [
        c.called - c.join
        for c in found_free_agent(calls, agents)
        if c.called is not None and c.join is not None
    ]


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if ours is not None and theirs else None


def bench_acd_toml(agents: int, max_calls: int, ring_timeout_s: int = 15) -> str:
    """Our ACD for the benchmark: queue ``bench`` (longest idle, no wrap-up), ``agents`` agents
    agent101..agent1NN on endpoints PJSIP/agent101..."""
    lines = [
        "# Generated by `tongdai bench acd` (bench/acd_bench.py).",
        f'[acd]\nmax_calls = {max_calls}\nskills = ["bench"]\n[acd.callback]\nenabled = false',
        f'[queues.{QUEUE}]\nskills = ["bench"]\nstrategy = "longest_idle"\nwrapup_s = 0',
        f"ring_timeout_s = {ring_timeout_s}",
    ]
    for i in range(1, agents + 1):
        a = f"agent{100 + i}"
        lines.append(f'[agents.{a}]\nname = "Bench {100 + i}"\nskills = {{ bench = 3 }}')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ProcUsage:
    cpu_s: float
    peak_rss_mb: float


def proc_usage(pid: int, proc: Path = Path("/proc")) -> ProcUsage:
    """utime+stime and VmHWM of a live process."""
    stat = (proc / str(pid) / "stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    hwm_kb = 0
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm_kb = int(line.split()[1])
    return ProcUsage(ticks / os.sysconf("SC_CLK_TCK"), round(hwm_kb / 1024, 1))


def ratios(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, float | None]:
    """ours / app_queue for the figures the issue compares."""
    out = {
        f"time_to_agent_{p}": ratio(ours["time_to_agent_ms"][p], theirs["time_to_agent_ms"][p])
        for p in ("p50", "p95", "p99")
    }
    out["drain"] = ratio(ours["drain_s"], theirs["drain_s"])
    ua, ub = ours["usage"], theirs["usage"]
    out["asterisk_cpu"] = ratio(ua["asterisk"]["cpu_s"], ub["asterisk"]["cpu_s"])
    out["engine_plus_asterisk_cpu"] = ratio(
        ua["asterisk"]["cpu_s"] + ua.get("engine", {}).get("cpu_s", 0),
        ub["asterisk"]["cpu_s"] + ub.get("engine", {}).get("cpu_s", 0),
    )
    out["asterisk_peak_rss"] = ratio(ua["asterisk"]["peak_rss_mb"], ub["asterisk"]["peak_rss_mb"])
    return out
