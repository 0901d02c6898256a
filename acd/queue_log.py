"""Our distribution's history in Asterisk's queue_log format, for existing queue-analysis tools.

One line per event, ``epoch|callid|queue|agent|EVENT|data1|data2...``, with the data fields
app_queue writes (Asterisk 22):

    ENTERQUEUE      url|callerid|position
    CONNECT         holdtime|bridged channel uniqueid|ringtime
    COMPLETECALLER  holdtime|calltime|origposition        (also COMPLETEAGENT)
    ABANDON         position|origposition|waittime        (also EXITWITHTIMEOUT)
    EXITWITHKEY     key|position|origposition|waittime    (the caller chose a callback)
    RINGNOANSWER    ringtime (ms)                         RINGCANCELED  ringtime (ms)
    AGENTLOGIN      channel                               AGENTLOGOFF   channel|logintime
    ADDMEMBER / REMOVEMEMBER  (per queue the agent serves)
    PAUSE / UNPAUSE reason    (per queue the agent serves)

An overflow to another queue reads as EXITWITHTIMEOUT in the old queue and ENTERQUEUE in the
new one, as when a dialplan sends a timed-out caller on. Callback retries have no app_queue
equivalent and write nothing; the ticket records them.

The file is append-only; each batch of lines is one ``write`` under a thread lock and an
exclusive ``flock``, so lines from several writers never interleave.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from acd.agent import AgentState, Transition
from acd.calls import CallState, CallTransition
from acd.config import AcdConfig

Event = Transition | CallTransition
#: (epoch, callid, queue, agent, EVENT, data fields)
Line = tuple[float, str, str, str, str, tuple[str, ...]]


def _clean(v: object) -> str:
    return str(v).replace("|", "_").replace("\n", " ").replace("\r", " ")


def format_line(at: float, callid: str, queue: str, agent: str, event: str, *data: object) -> str:
    fields = [str(int(at)), callid or "NONE", queue or "NONE", agent or "NONE", event]
    return "|".join([*(_clean(f) for f in fields), *(_clean(d) for d in data)]) + "\n"


def _s(x: float | None) -> int:
    return max(0, round(x or 0.0))


def call_lines(e: CallTransition) -> list[Line]:
    """The queue_log lines of one call transition (none for those app_queue does not log)."""
    at, cid, q, ag = e.at, e.call_id, e.queue, e.agent or "NONE"
    pos, orig, wait = e.position or 0, e.orig_position or 0, _s(e.wait_s)
    ringing: list[Line] = [(at, cid, q, ag, "RINGCANCELED", (str(_s((e.ring_s or 0) * 1000)),))]
    if e.event == "enter":
        return [(at, cid, q, "NONE", "ENTERQUEUE", ("", e.detail or "unknown", str(pos)))]
    if e.event == "connect" or (
        e.event == "callback_answered" and e.to_state is CallState.CONNECTED
    ):
        return [(at, cid, q, ag, "CONNECT", (str(wait), e.detail, str(_s(e.ring_s))))]
    if e.event == "ring_no_answer":
        return [(at, cid, q, ag, "RINGNOANSWER", (str(_s((e.ring_s or 0) * 1000)),))]
    if e.event == "offer_cancelled":
        return ringing
    if e.event in ("abandon", "timeout", "overflow"):
        name = "ABANDON" if e.event == "abandon" else "EXITWITHTIMEOUT"
        out = ringing if e.event == "abandon" and e.agent else []
        return [*out, (at, cid, q, "NONE", name, (str(pos), str(orig), str(wait)))]
    if e.event == "callback_requested":
        return [(at, cid, q, "NONE", "EXITWITHKEY", (e.detail, str(pos), str(orig), str(wait)))]
    if e.event == "complete":
        name = "COMPLETEAGENT" if e.detail == "agent" else "COMPLETECALLER"
        talk = _s(e.talk_s)
        return [(at, cid, q, ag, name, (str(_s(e.wait_s - (e.talk_s or 0))), str(talk), str(orig)))]
    return []


def agent_lines(e: Transition, endpoint: str, queues: Sequence[str]) -> list[Line]:
    """The queue_log lines of one agent transition; per-queue events once per served queue."""
    qs = list(queues) or ["NONE"]
    at, ag = e.at, e.agent
    if e.event == "login":
        adds = [(at, "MANAGER", q, ag, "ADDMEMBER", ("",)) for q in qs]
        return [(at, "NONE", "NONE", ag, "AGENTLOGIN", (endpoint,)), *adds]
    if e.event == "logout":
        rems = [(at, "MANAGER", q, ag, "REMOVEMEMBER", ("",)) for q in qs]
        return [*rems, (at, "NONE", "NONE", ag, "AGENTLOGOFF", (endpoint, str(_s(e.logged_in_s))))]
    paused_now = e.event == "pause" or (
        e.event == "ring_no_answer" and e.to_state is AgentState.PAUSED
    )
    if paused_now:
        return [(at, "NONE", q, ag, "PAUSE", (e.reason or "",)) for q in qs]
    if e.event == "unpause":
        return [(at, "NONE", q, ag, "UNPAUSE", ("",)) for q in qs]
    return []


class QueueLogWriter:
    def __init__(self, path: str | Path, cfg: AcdConfig | None = None) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self._lock = threading.Lock()

    def _agent_info(self, agent_id: str) -> tuple[str, list[str]]:
        a = self.cfg.agents.get(agent_id) if self.cfg else None
        if a is None or self.cfg is None:
            return f"PJSIP/{agent_id}", []
        queues = [
            q.name
            for q in self.cfg.queues.values()
            if all(a.skills.get(r.skill, 0) >= r.min_level for r in q.skills)
        ]
        return a.endpoint, queues

    def lines(self, e: Event) -> list[str]:
        if isinstance(e, CallTransition):
            raw = call_lines(e)
        else:
            raw = agent_lines(e, *self._agent_info(e.agent))
        return [format_line(at, c, q, a, ev, *data) for at, c, q, a, ev, data in raw]

    def write(self, e: Event) -> list[str]:
        """Append the lines of one dispatcher event; returns them (maybe none)."""
        out = self.lines(e)
        if out:
            self.append(out)
        return out

    def write_line(
        self, at: float, callid: str, queue: str, agent: str, event: str, *data: object
    ) -> str:
        """Append one line of any event (e.g. QUEUESTART at engine start)."""
        line = format_line(at, callid, queue, agent, event, *data)
        self.append([line])
        return line

    def append(self, lines: Sequence[str]) -> None:
        data = "".join(lines).encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, data)
            finally:
                os.close(fd)  # closing releases the flock
