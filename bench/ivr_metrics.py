"""The pure parts of ``tongdai bench ivr`` (bench/ivr_bench.py): AMI events into reaction times
and concurrent calls, tickets against journeys, PostgreSQL backends' usage from /proc, ratios.
No I/O except ``/proc`` reads; unit-tested in tests/unit/test_ivr_bench.py.

Reaction time to a key, the same way for both IVRs, from Asterisk's own events (``Timestamp``
header): on each caller channel, from the last ``DTMFEnd`` (received) to the start of the next
prompt, when a key came after the previous prompt started. The start of a prompt is
``AGIExecStart`` of ``STREAM FILE`` / ``GET DATA`` / ``CONTROL STREAM FILE`` for our FastAGI
IVR, ``Newexten`` of ``Background`` / ``Playback`` / ``Read`` for the plain dialplan. For a
dossier code the last key is ``#`` and the next prompt is the status (or "not found"): the
look-up is inside that reaction (``dossier`` subset).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.acd_metrics import ratio, summary_ms
from bench.ivr_journeys import Journey, expected_path
from tickets.model import Ticket

AGENT_PREFIX = "PJSIP/agent"
PROMPT_COMMANDS = ("STREAM FILE", "GET DATA", "CONTROL STREAM FILE")
PROMPT_APPS = frozenset({"background", "playback", "read"})  # AMI says "BackGround"
#: what the first prompt after a dossier code is (ours: the file; plain: the file or, if AMI
#: shows the unsubstituted data, the variable holding the words)
DOSSIER_PROMPTS = ("/ho_so_ma", "/ho_so_khong_tim_thay", "PLAIN_WORDS")


def _t(ev: Mapping[str, str]) -> float | None:
    try:
        return float(ev.get("Timestamp") or ev.get("_rx") or "")
    except ValueError:
        return None


def prompt_started(ev: Mapping[str, str]) -> str | None:
    """The prompt (AGI command or application data) if ``ev`` starts one, else None."""
    name = ev.get("Event")
    if name == "AGIExecStart":
        command = ev.get("Command", "")
        return command if command.upper().startswith(PROMPT_COMMANDS) else None
    if name == "Newexten" and ev.get("Application", "").lower() in PROMPT_APPS:
        return ev.get("AppData", "") or ev.get("Application", "")
    return None


@dataclass(frozen=True)
class Reaction:
    channel: str
    key: str
    seconds: float
    prompt: str

    @property
    def dossier(self) -> bool:
        return any(p in self.prompt for p in DOSSIER_PROMPTS)


def reactions(events: Iterable[Mapping[str, str]]) -> list[Reaction]:
    """Every key answered by a prompt, per caller channel, in time order."""
    timed = sorted(
        ((t, i, ev) for i, ev in enumerate(events) if (t := _t(ev)) is not None),
        key=lambda x: (x[0], x[1]),
    )
    last_key: dict[str, tuple[float, str]] = {}
    out: list[Reaction] = []
    for t, _, ev in timed:
        uid, chan = ev.get("Uniqueid", ""), ev.get("Channel", "")
        if not uid or chan.startswith(AGENT_PREFIX):
            continue
        if ev.get("Event") == "DTMFEnd":
            if ev.get("Direction", "Received") == "Received":
                last_key[uid] = (t, ev.get("Digit", ""))
            continue
        prompt = prompt_started(ev)
        if prompt is None:
            continue
        key = last_key.pop(uid, None)
        if key is not None:
            out.append(Reaction(chan, key[1], t - key[0], prompt))
    return out


def reaction_summary(found: Sequence[Reaction]) -> dict[str, Any]:
    """p50/p95/p99/max in ms: all keys, menu keys, dossier codes."""
    return {
        "all": summary_ms([r.seconds for r in found]),
        "menu": summary_ms([r.seconds for r in found if not r.dossier]),
        "dossier": summary_ms([r.seconds for r in found if r.dossier]),
    }


@dataclass
class CallSpan:
    """One caller's channel: when it appeared and when it hung up (epoch seconds)."""

    number: str
    start: float | None = None
    end: float | None = None
    keys: int = 0


def caller_spans(events: Iterable[Mapping[str, str]], numbers: set[str]) -> dict[str, CallSpan]:
    """The run's callers (by number) as AMI saw them."""
    spans: dict[str, CallSpan] = {}
    for ev in events:
        num, chan, t = ev.get("CallerIDNum", ""), ev.get("Channel", ""), _t(ev)
        if num not in numbers or chan.startswith(AGENT_PREFIX) or t is None:
            continue
        s = spans.setdefault(num, CallSpan(num))
        name = ev.get("Event")
        if name == "Newchannel":
            s.start = t if s.start is None else min(s.start, t)
        elif name == "Hangup":
            s.end = t if s.end is None else max(s.end, t)
        elif name == "DTMFEnd" and ev.get("Direction", "Received") == "Received":
            s.keys += 1
    return spans


def peak_concurrent(spans: Iterable[CallSpan]) -> int:
    """Most caller channels up at the same moment."""
    marks = sorted(
        [(s.start, 1) for s in spans if s.start is not None]
        + [(s.end, -1) for s in spans if s.end is not None and s.start is not None]
    )
    peak = up = 0
    for _, d in marks:
        up += d
        peak = max(peak, up)
    return peak


def ticket_problems(ticket: Ticket | None, journey: Journey, code: str | None) -> list[str]:
    """Why ``ticket`` is not what ``journey`` must leave (empty: correct)."""
    if ticket is None:
        return ["no ticket"]
    e = journey.expect
    problems = []
    if ticket.outcome != e.outcome:
        problems.append(f"outcome {ticket.outcome} != {e.outcome}")
    if ticket.category != e.category:
        problems.append(f"category {ticket.category} != {e.category}")
    if ticket.queue != e.queue:
        problems.append(f"queue {ticket.queue} != {e.queue}")
    if ticket.dossier_code != code:
        problems.append(f"dossier {ticket.dossier_code} != {code}")
    if e.recording != (ticket.recording is not None):
        problems.append(f"recording {ticket.recording!r}")
    if ticket.ended_at is None:
        problems.append("not ended")
    path = [(s.node, s.key, s.detail) for s in ticket.ivr_path]
    want = expected_path(journey, code)
    if path != want:
        problems.append(f"path {path} != {want}")
    return problems


@dataclass
class BackendUsage:
    """CPU and private memory of the PostgreSQL backends serving one database, sampled while
    the load runs (backends come and go: each one's first and last sample are kept)."""

    first_cpu: dict[int, float] = field(default_factory=dict)
    last_cpu: dict[int, float] = field(default_factory=dict)
    peak_anon_mb: float = 0.0

    def sample(
        self, pids: Iterable[int], proc: Path = Path("/proc"), baseline: bool = False
    ) -> None:
        anon_kb = 0
        for pid in pids:
            try:
                cpu = _cpu_s(proc / str(pid) / "stat")
                anon_kb += _status_kb(proc / str(pid) / "status", "RssAnon:")
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue  # the backend ended between the query and the read
            # a backend first seen after the baseline started during the load: all its CPU counts
            self.first_cpu.setdefault(pid, cpu if baseline else 0.0)
            self.last_cpu[pid] = cpu
        self.peak_anon_mb = max(self.peak_anon_mb, round(anon_kb / 1024, 1))

    @property
    def cpu_s(self) -> float:
        return sum(self.last_cpu[p] - self.first_cpu.get(p, 0.0) for p in self.last_cpu)


def _cpu_s(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(status: Path, key: str) -> int:
    for line in status.read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def ratios(ours: Mapping[str, Any], plain: Mapping[str, Any]) -> dict[str, float | None]:
    """ours / dialplan for the figures the issue compares."""
    out: dict[str, float | None] = {}
    for subset in ("all", "menu", "dossier"):
        for p in ("p50", "p95", "p99"):
            out[f"reaction_{subset}_{p}"] = ratio(
                ours["reaction_ms"][subset][p], plain["reaction_ms"][subset][p]
            )
    ua, ub = ours["usage"], plain["usage"]
    for proc in ("asterisk", "engine", "postgresql"):
        out[f"{proc}_cpu"] = ratio(ua[proc]["cpu_s"], ub[proc]["cpu_s"])
    out["total_cpu"] = ratio(ours["cpu_s_total"], plain["cpu_s_total"])
    out["asterisk_peak_rss"] = ratio(ua["asterisk"]["peak_rss_mb"], ub["asterisk"]["peak_rss_mb"])
    return out
