"""Agents, skills and queues as data: the loader that validates ``acd/agents_1022.toml``.

The province edits the file; every error names the file and the dotted field, e.g.
``acd/agents_1022.toml: queues.thu_tuc.skills.thu_tuk: unknown skill 'thu_tuk'``.

``[acd.capacity]`` says how much work an agent holds at once: one call, up to ``conversations``
open conversations, whether a call may come while conversations are open
(``voice_with_conversations``) and whether conversations may come during a call
(``conversations_during_call``); ``[agents.<id>.capacity]`` overrides it per agent. Each queue's
``escalate_after_s`` (default 300) escalates a conversation left without an agent reply; its
``record`` (default false) records the agents' calls (``hotline.recordings``).

``[supervisors.<id>]`` tables (optional) declare the supervisors' own phones, the ones that ring
for listen / whisper / barge (``name``, ``endpoint = "PJSIP/sup201"``); a web account's phone
must be one of them (``web.control.RouterControl.spy`` says so clearly if it is not).

``render_pjsip_agents`` writes the agents' and the supervisors' PJSIP endpoints (the shape of
``asterisk_conf/pjsip_agents.conf``) from the same file, so the lab rings exactly the agents the
distribution knows, and ChanSpy's supervisor phone exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tongdai.config_file import Fields, read_toml
from tongdai.errors import ConfigError

STRATEGIES = ("longest_idle", "fewest_calls", "round_robin", "skills")
CALLBACK_MODES = ("caller_first", "agent_first")
KEYS = frozenset("0123456789*#")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_ENDPOINT_RE = re.compile(r"^PJSIP/([A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class SkillReq:
    """A skill a queue needs, at ``min_level`` or better (levels 1-5)."""

    skill: str
    min_level: int = 1


@dataclass(frozen=True)
class Overflow:
    """After ``after_s`` in a queue: also take agents with ``add_skills``, or move to ``queue``."""

    after_s: float
    add_skills: tuple[SkillReq, ...] = ()
    queue: str | None = None


@dataclass(frozen=True)
class Capacity:
    """How much work an agent takes at once, per medium (``[acd.capacity]``, or an agent's
    own ``[agents.<id>.capacity]``). Voice is always one call at a time."""

    #: open conversations (chats, mails...) an agent holds at once; 0 = none
    conversations: int = 3
    #: may a call be offered while the agent has conversations open?
    voice_with_conversations: bool = True
    #: may a conversation be assigned while the agent rings, talks or wraps up a call?
    conversations_during_call: bool = True


@dataclass(frozen=True)
class AgentConfig:
    id: str
    name: str
    endpoint: str
    skills: dict[str, int]
    #: this agent's own capacity (None: the ``[acd.capacity]`` default)
    capacity: Capacity | None = None

    @property
    def pjsip_name(self) -> str:
        """The PJSIP endpoint/aor section name (``agent101`` for ``PJSIP/agent101``)."""
        return self.endpoint.split("/", 1)[1]


@dataclass(frozen=True)
class SupervisorConfig:
    """A supervisor's own phone: ChanSpy rings it to listen to, whisper into or barge into a
    call."""

    id: str
    name: str
    endpoint: str

    @property
    def pjsip_name(self) -> str:
        """The PJSIP endpoint/aor section name (``sup201`` for ``PJSIP/sup201``)."""
        return self.endpoint.split("/", 1)[1]


@dataclass(frozen=True)
class QueueConfig:
    name: str
    category: str
    skills: tuple[SkillReq, ...]
    strategy: str = "longest_idle"
    priority: int = 0
    max_wait_s: float = 1800.0
    announce_every_s: float = 0.0
    announce_position: bool = True
    overflow: tuple[Overflow, ...] = ()
    wrapup_s: float = 0.0
    ring_timeout_s: float = 15.0
    max_misses: int = 3
    #: an assigned conversation whose citizen waits this long for the agent's reply is
    #: escalated (offered to another agent); 0 = never
    escalate_after_s: float = 300.0
    #: record the agents' calls of this queue (MixMonitor, dialplan ``[tongdai-record]``); the
    #: same switch serves app_queue (``Queue()``'s gosub) and our own ACD
    record: bool = False


@dataclass(frozen=True)
class CallbackConfig:
    enabled: bool = True
    offer_after_s: float = 60.0
    key: str = "1"
    mode: str = "caller_first"
    max_attempts: int = 3
    retry_after_s: float = 120.0


@dataclass(frozen=True)
class AcdConfig:
    source: str
    skills: tuple[str, ...]
    agents: dict[str, AgentConfig]
    queues: dict[str, QueueConfig]
    max_calls: int = 100
    callback: CallbackConfig = CallbackConfig()
    supervisors: dict[str, SupervisorConfig] = field(default_factory=dict)
    capacity: Capacity = Capacity()

    def queue_or_general(self, name: str) -> str:
        """``name`` if it is a queue, else the general queue (``chung``, or the first one)."""
        if name in self.queues:
            return name
        return "chung" if "chung" in self.queues else next(iter(self.queues))

    def capacity_of(self, agent_id: str) -> Capacity:
        """The agent's own capacity, or the ``[acd.capacity]`` default."""
        a = self.agents.get(agent_id)
        return a.capacity if a is not None and a.capacity is not None else self.capacity

    def supervisor_phone(self, endpoint: str) -> SupervisorConfig | None:
        """The supervisor phone declared with this endpoint (``PJSIP/sup201``), if any."""
        return next((s for s in self.supervisors.values() if s.endpoint == endpoint), None)


def _level(file: str, field: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 5:
        raise ConfigError(file, field, f"skill level must be a whole number 1-5, got {v!r}")
    return v


def _skill_reqs(r: Fields, key: str, known: set[str]) -> tuple[SkillReq, ...]:
    """A list of skill names (min level 1) or a table ``{skill = min_level}``."""
    v = r.raw.get(key, [])
    if isinstance(v, list):
        if not all(isinstance(x, str) for x in v):
            raise r.err(key, "must be a list of skill names or a table {skill = min_level}")
        items = {str(x): 1 for x in v}
        if len(items) != len(v):
            raise r.err(key, "a skill is listed twice")
    elif isinstance(v, dict):
        items = {k: _level(r.file, f"{r.prefix}{key}.{k}", x) for k, x in v.items()}
    else:
        raise r.err(key, "must be a list of skill names or a table {skill = min_level}")
    for skill in items:
        if skill not in known:
            raise r.err(f"{key}.{skill}", f"unknown skill {skill!r} (acd.skills lists them)")
    return tuple(SkillReq(s, lvl) for s, lvl in items.items())


def load_acd(path: str | Path) -> AcdConfig:
    """Read and validate an ACD file; raises ``ConfigError`` naming the file and the field."""
    file = str(path)
    raw = read_toml(path)
    for key in raw:
        if key not in ("acd", "agents", "queues", "supervisors"):
            raise ConfigError(file, key, "unknown table (tables: acd, agents, queues, supervisors)")
    top = raw.get("acd")
    if not isinstance(top, dict):
        raise ConfigError(file, "acd", "missing [acd] table")
    r = Fields(file, "acd.", top, {"max_calls", "skills", "callback", "capacity"})
    skills_raw = top.get("skills")
    if (
        not isinstance(skills_raw, list)
        or not skills_raw
        or not all(isinstance(s, str) and _NAME_RE.match(s) for s in skills_raw)
    ):
        raise r.err("skills", "must list the skill names (lowercase letters, digits, _)")
    if len(set(skills_raw)) != len(skills_raw):
        raise r.err("skills", "a skill is listed twice")
    skills = tuple(str(s) for s in skills_raw)
    capacity = _capacity(r.sub("capacity", _CAPACITY_FIELDS), Capacity())
    agents = _load_agents(file, raw.get("agents"), set(skills), capacity)
    queues = _load_queues(file, raw.get("queues"), set(skills))
    return AcdConfig(
        source=file,
        skills=skills,
        agents=agents,
        queues=queues,
        max_calls=r.whole("max_calls", 100, 1, 100_000),
        callback=_load_callback(file, r.table("callback")),
        supervisors=_load_supervisors(file, raw.get("supervisors", {}), agents),
        capacity=capacity,
    )


_CAPACITY_FIELDS = {"conversations", "voice_with_conversations", "conversations_during_call"}


def _capacity(r: Fields, base: Capacity) -> Capacity:
    """``[acd.capacity]`` (over the built-in defaults) or an agent's override (over those)."""
    return Capacity(
        conversations=r.whole("conversations", base.conversations, 0, 100),
        voice_with_conversations=r.flag("voice_with_conversations", base.voice_with_conversations),
        conversations_during_call=r.flag(
            "conversations_during_call", base.conversations_during_call
        ),
    )


def _load_callback(file: str, raw: dict[str, Any]) -> CallbackConfig:
    r = Fields(
        file,
        "acd.callback.",
        raw,
        {"enabled", "offer_after_s", "key", "mode", "max_attempts", "retry_after_s"},
    )
    key = r.text("key", "1")
    if key not in KEYS or len(key) != 1:
        raise r.err("key", "must be one phone key 0-9, * or #")
    return CallbackConfig(
        enabled=r.flag("enabled", True),
        offer_after_s=r.number("offer_after_s", 60, 0, 86400),
        key=key,
        mode=r.choice("mode", "caller_first", CALLBACK_MODES),
        max_attempts=r.whole("max_attempts", 3, 1, 20),
        retry_after_s=r.number("retry_after_s", 120, 0, 86400),
    )


def _load_agents(
    file: str, raw: Any, known: set[str], capacity: Capacity
) -> dict[str, AgentConfig]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(file, "agents", "missing [agents.*] tables")
    agents: dict[str, AgentConfig] = {}
    endpoints: dict[str, str] = {}
    for aid, body in raw.items():
        if not _NAME_RE.match(aid):
            raise ConfigError(file, f"agents.{aid}", "agent ids use lowercase letters, digits, _")
        if not isinstance(body, dict):
            raise ConfigError(file, f"agents.{aid}", "must be a table")
        r = Fields(file, f"agents.{aid}.", body, {"name", "endpoint", "skills", "capacity"})
        endpoint = r.text("endpoint", f"PJSIP/{aid}")
        if not _ENDPOINT_RE.match(endpoint):
            raise r.err("endpoint", f"must look like PJSIP/<name>, got {endpoint!r}")
        if endpoint in endpoints:
            raise r.err("endpoint", f"{endpoint} is already agent {endpoints[endpoint]}'s")
        endpoints[endpoint] = aid
        levels = r.table("skills")
        for skill, lvl in levels.items():
            if skill not in known:
                raise r.err(f"skills.{skill}", f"unknown skill {skill!r} (acd.skills lists them)")
            _level(file, f"agents.{aid}.skills.{skill}", lvl)
        own = (
            _capacity(r.sub("capacity", _CAPACITY_FIELDS), capacity) if "capacity" in body else None
        )
        agents[aid] = AgentConfig(aid, r.text("name"), endpoint, dict(levels), own)
    return agents


def _load_supervisors(
    file: str, raw: Any, agents: dict[str, AgentConfig]
) -> dict[str, SupervisorConfig]:
    """``[supervisors.<id>]``: name and endpoint of each supervisor's own phone (optional)."""
    if not isinstance(raw, dict):
        raise ConfigError(file, "supervisors", "must be tables [supervisors.<id>]")
    taken = {a.endpoint: f"agent {a.id}'s" for a in agents.values()}
    supervisors: dict[str, SupervisorConfig] = {}
    for sid, body in raw.items():
        if not _NAME_RE.match(sid):
            raise ConfigError(
                file, f"supervisors.{sid}", "supervisor ids use lowercase letters, digits, _"
            )
        if not isinstance(body, dict):
            raise ConfigError(file, f"supervisors.{sid}", "must be a table")
        r = Fields(file, f"supervisors.{sid}.", body, {"name", "endpoint"})
        name = r.text("name")
        endpoint = r.text("endpoint", f"PJSIP/{sid}")
        if not _ENDPOINT_RE.match(endpoint):
            raise r.err("endpoint", f"must look like PJSIP/<name>, got {endpoint!r}")
        if endpoint in taken:  # one phone, one PJSIP section: never an agent's too
            raise r.err("endpoint", f"{endpoint} is already {taken[endpoint]}")
        taken[endpoint] = f"supervisor {sid}'s"
        supervisors[sid] = SupervisorConfig(sid, name, endpoint)
    return supervisors


_QUEUE_FIELDS = {
    "category",
    "skills",
    "strategy",
    "priority",
    "max_wait_s",
    "announce_every_s",
    "announce_position",
    "overflow",
    "wrapup_s",
    "ring_timeout_s",
    "max_misses",
    "escalate_after_s",
    "record",
}


def _load_queues(file: str, raw: Any, known: set[str]) -> dict[str, QueueConfig]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(file, "queues", "missing [queues.*] tables")
    queues: dict[str, QueueConfig] = {}
    for name, body in raw.items():
        if not _NAME_RE.match(name):
            raise ConfigError(
                file, f"queues.{name}", "queue names use lowercase letters, digits, _"
            )
        if not isinstance(body, dict):
            raise ConfigError(file, f"queues.{name}", "must be a table")
        r = Fields(file, f"queues.{name}.", body, _QUEUE_FIELDS)
        queues[name] = QueueConfig(
            name=name,
            category=r.text("category", name),
            skills=_skill_reqs(r, "skills", known),
            strategy=r.choice("strategy", "longest_idle", STRATEGIES),
            priority=r.whole("priority", 0, -100, 100),
            max_wait_s=r.number("max_wait_s", 1800, 10, 86400),
            announce_every_s=r.number("announce_every_s", 0, 0, 3600),
            announce_position=r.flag("announce_position", True),
            overflow=_overflow(r, known),
            wrapup_s=r.number("wrapup_s", 0, 0, 3600),
            ring_timeout_s=r.number("ring_timeout_s", 15, 3, 300),
            max_misses=r.whole("max_misses", 3, 1, 100),
            escalate_after_s=r.number("escalate_after_s", 300, 0, 86400),
            record=r.flag("record", False),
        )
    for q in queues.values():
        for i, step in enumerate(q.overflow):
            if step.queue is not None and step.queue not in queues:
                raise ConfigError(
                    file, f"queues.{q.name}.overflow.{i}.queue", f"unknown queue {step.queue!r}"
                )
            if step.queue == q.name:
                raise ConfigError(
                    file, f"queues.{q.name}.overflow.{i}.queue", "a queue cannot overflow to itself"
                )
    return queues


def _overflow(r: Fields, known: set[str]) -> tuple[Overflow, ...]:
    raw = r.raw.get("overflow", [])
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise r.err(
            "overflow", "must be a list of tables {after_s, add_skills} or {after_s, queue}"
        )
    steps: list[Overflow] = []
    for i, body in enumerate(raw):
        sr = Fields(r.file, f"{r.prefix}overflow.{i}.", body, {"after_s", "add_skills", "queue"})
        if "after_s" not in body:
            raise sr.err("after_s", "required")
        if ("add_skills" in body) == ("queue" in body):
            raise sr.err("add_skills", "give either add_skills or queue (exactly one)")
        after = sr.number("after_s", 0, 1, 86400)
        if steps and after < steps[-1].after_s:
            raise sr.err("after_s", "overflow steps must be in increasing after_s order")
        if "queue" in body:
            steps.append(Overflow(after, queue=sr.text("queue")))
        else:
            add = _skill_reqs(sr, "add_skills", known)
            if not add:
                raise sr.err("add_skills", "must name at least one skill")
            steps.append(Overflow(after, add_skills=add))
    return tuple(steps)


_PJSIP_HEAD = """\
; pjsip_agents.conf - one PJSIP endpoint per call-taker's phone, and per supervisor's phone
; (the phone ChanSpy rings to listen to, whisper into or barge into a call).
;
; GENERATED from {source} by acd.config.render_pjsip_agents: edit the agents there, not here.
; Every agent's contact points at {host}:{port} (the lab's SIPp UAS answers for all of them).
; Agents never call in: no "identify" section, identify_by = ip and max_contacts = 0, so no
; request from outside can be taken for an agent and nobody can register in their name.

; dead-call-timers (pjsip.conf, which includes this file): rtp_timeout and session timers
[agent-endpoint](!,dead-call-timers)
type = endpoint
context = tongdai-agents
disallow = all
allow = ulaw,alaw
dtmf_mode = rfc4733
direct_media = no
identify_by = ip
trust_id_inbound = no
; Agents' phones see the citizen's number.
send_pai = yes
; No connected-line re-INVITE/UPDATE when the engine's ACD bridges the waiting caller to the
; agent (Originate + Bridge): the caller's number is already in the INVITE, and simple phones
; (and the lab's SIPp agents) do not expect a mid-call re-INVITE.
send_connected_line = no

[agent-aor](!)
type = aor
max_contacts = 0
"""


def render_pjsip_agents(cfg: AcdConfig, contact_host: str = "127.0.0.1", port: int = 5080) -> str:
    """The agents' and supervisors' PJSIP endpoint and aor sections; contact
    ``sip:<name>@host:port``. Supervisors' phones have the agents' shape: they never call in
    either (ChanSpy calls them, by AMI Originate)."""
    out = [_PJSIP_HEAD.format(source=cfg.source, host=contact_host, port=port)]
    phones = [(a.pjsip_name, a.name) for a in cfg.agents.values()]
    if cfg.supervisors:
        phones += [(s.pjsip_name, s.name) for s in cfg.supervisors.values()]
    for n, name in phones:
        digits = "".join(ch for ch in n if ch.isdigit()) or n
        display = name.replace('"', "'")
        out.append(
            f'\n[{n}](agent-endpoint)\naors = {n}\ncallerid = "{display}" <{digits}>\n'
            f"\n[{n}](agent-aor)\ncontact = sip:{n}@{contact_host}:{port}\n"
        )
    return "".join(out)
