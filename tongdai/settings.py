"""Engine settings: one TOML file (``tongdai.toml``), validated at load.

Every setting has an embedded default so a new user needs no file at all: SQLite in ``var/``,
FastAGI and AMI on loopback. Errors name the file and the field (``ConfigError``).

Relative paths are resolved against the project home: ``$TONGDAI_HOME`` or the checkout this
package was installed from (``pip install -e .``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tongdai.config_file import read_toml, section
from tongdai.errors import ConfigError

PROJECT_HOME = Path(os.environ.get("TONGDAI_HOME") or Path(__file__).resolve().parent.parent)


def home_path(value: str | Path) -> Path:
    """A path from the settings, resolved against the project home when relative."""
    p = Path(value)
    return p if p.is_absolute() else PROJECT_HOME / p


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///var/tongdai.db"
    #: the engine's local state: the ticket journal kept while the database is away, and the
    #: queue_log watermark (one folder per engine)
    state_dir: str = "var/state"

    def resolved_url(self) -> str:
        """SQLite URLs with a relative path are made absolute against the project home."""
        prefix = "sqlite+aiosqlite:///"
        if self.url.startswith(prefix):
            rest = self.url[len(prefix) :]
            if rest and not rest.startswith("/") and rest != ":memory:":
                return prefix + str(home_path(rest))
        return self.url


@dataclass(frozen=True)
class FastAgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    command_timeout: float = 60.0
    header_timeout: float = 5.0
    max_connections: int = 2000
    #: the other engine's FastAGI address ("host:port"), which the dialplan tries when this
    #: one refuses (engine failover, docs/failover.md); "" = none (the lab then tries this
    #: address again)
    backup: str = ""


@dataclass(frozen=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "tongdai"
    secret_file: str = "var/ami.secret"
    action_timeout: float = 5.0
    connect_timeout: float = 5.0
    #: more Asterisk nodes behind Kamailio (``kamailio_conf/``), "host:port" separated by
    #: commas; the engine follows each one's AMI with the same account (username, secret)
    more_nodes: str = ""

    def more_addresses(self) -> list[tuple[str, int]]:
        """``more_nodes`` as (host, port) pairs; ``ValueError`` names a malformed entry."""
        out: list[tuple[str, int]] = []
        for item in (x.strip() for x in self.more_nodes.split(",")):
            if not item:
                continue
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not host:port")
            out.append((host, int(port)))
        return out


@dataclass(frozen=True)
class IvrSettings:
    menu: str = "ivr/menu_1022.toml"
    prompts: str = "ivr/prompts_vi.toml"
    schedule: str = "ivr/schedule.toml"
    #: where ``tongdai prompts build`` writes audio (host view)
    sounds_dir: str = "recordings/prompts/vi"
    #: how Asterisk names the same folder (inside the lab's chroot it is bind-mounted)
    asterisk_sounds_dir: str = "/srv/tongdai/recordings/prompts/vi"
    #: recorded messages: host view and Asterisk's view of the same folder
    messages_dir: str = "recordings/messages"
    asterisk_messages_dir: str = "/srv/tongdai/recordings/messages"
    #: special announcements synthesised by ``tongdai announce set``
    announcements_dir: str = "recordings/announcements"
    asterisk_announcements_dir: str = "/srv/tongdai/recordings/announcements"
    #: agents' call recordings (queues with ``record = true``): host and Asterisk views; the
    #: folder's last part must stay ``calls`` (the web tells calls from messages by it)
    calls_dir: str = "recordings/calls"
    asterisk_calls_dir: str = "/srv/tongdai/recordings/calls"
    #: tell every caller at the start of the call that calls may be recorded
    recording_notice: bool = False
    general_queue: str = "chung"


@dataclass(frozen=True)
class LabSettings:
    chroot: str = "/var/lib/tongdai/chroot-sid-asterisk22"
    var_dir: str = "var/lab"
    #: several labs side by side on one machine (parallel tests, a second PBX): instance N
    #: (1-9) moves every default port up by 100 x N and gives its Asterisk folders and engine
    #: files of its own (``instance_defaults``, ``lab/instance.py``); 0 is the documented lab
    instance: int = 0
    #: 2: Kamailio on ``sip_port`` in front of two Asterisk nodes on 127.0.0.11 and
    #: 127.0.0.12 (same ports), ``lab/nodes.py``; 1: one Asterisk on ``sip_port``
    nodes: int = 1
    #: which node these settings describe (0: the single Asterisk of a one-node lab); the lab
    #: sets it on the copies it derives per node, never in a file
    node: int = 0
    sip_port: int = 5060
    #: Asterisk's queue_log as the engine reads it (production: /var/log/asterisk/queue_log)
    queue_log: str = "/var/lib/tongdai/chroot-sid-asterisk22/var/log/asterisk/queue_log"


@dataclass(frozen=True)
class AcdSettings:
    #: "asterisk": queues served by app_queue (queues.conf, the baseline); "engine": our own ACD
    distribution: str = "asterisk"
    config: str = "acd/agents_1022.toml"
    #: our own queue_log (Asterisk's format), written by the engine's ACD
    queue_log: str = "var/queue_log"
    #: seconds of music between position announcements
    announce_every_s: int = 30
    #: log every configured agent in when the engine starts (the lab's simulated agents);
    #: a deployment sets false and agents log in from their phone or `tongdai agent login`
    auto_login: bool = True
    #: how the engine dials a citizen back ({number} is replaced); the lab's "citizens" trunk
    #: reaches a SIPp phone on 127.0.0.1:5090, a deployment points it at its carrier trunk
    callback_channel: str = "PJSIP/{number}@citizens"
    #: where the ACD keeps its live state (calls in line, agent states) so a restarted engine
    #: gets it back: "" = in this process only (one node; a restart rebuilds from Asterisk,
    #: which cannot show callbacks waiting); "redis://host:port/db" = Redis (several nodes,
    #: and callbacks survive a restart)
    state_store: str = ""
    #: Redis key prefix (one per hotline sharing a Redis)
    state_prefix: str = "tongdai:acd"
    #: two engine processes on one Asterisk (docs/failover.md): both serve FastAGI, the one
    #: holding a lease in ``state_store`` distributes calls, the other stands by and takes
    #: over within ``lease_ttl_s`` + 0.25 s when the leader dies (needs ``state_store`` and
    #: ``distribution = "engine"``)
    failover: bool = False
    #: this engine's name in the lease ("" = host name and FastAGI port)
    node_id: str = ""
    #: how long a leader's lease lives without renewal (renewed every third of it)
    lease_ttl_s: float = 1.5


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8022
    #: set true behind https (cookies then only travel over TLS)
    cookie_secure: bool = False
    session_hours: float = 12.0
    #: the address citizens and agents use (e.g. "https://1022.quangnam.gov.vn"): https
    #: makes every cookie Secure
    public_url: str = ""
    #: reverse proxies in front (comma-separated addresses or networks): only their
    #: X-Forwarded-For is believed; "" = none, the peer is the client
    trusted_proxies: str = ""
    #: where failed-login counts live: "" = the ACD's Redis when ``acd.state_store`` is set
    #: (shared by every engine process), else this process
    limits_store: str = ""


@dataclass(frozen=True)
class BackOfficeSettings:
    """``[back_office]``: forwarding tickets to agencies (``agencies/``)."""

    #: the agencies file (ids, names, e-mails, categories, deadlines in working days)
    agencies: str = "agencies/agencies_quangnam.toml"
    #: how often notices still pending (no e-mail sender yet, or a retry) are sent again
    notify_every_s: float = 60.0
    #: the daily digest of overdue and nearly-due forwards: the supervisors' addresses
    #: (comma-separated; each agency always gets its own) and the local hour it goes at
    digest_to: str = ""
    digest_hour: int = 7


@dataclass(frozen=True)
class ChannelsSettings:
    """``[channels]``: what every message channel shares. The channels' own tables
    (``[channels.email]``, ``[channels.zalo]``, ``[channels.facebook]``, ``[channels.webchat]``)
    are kept as given in ``tables`` and read by each channel's settings (``channels/*``);
    a channel without a table is off."""

    #: attachments citizens send (host path)
    attachments_dir: str = "var/attachments"
    max_attachment_bytes: int = 10 * 1024 * 1024
    #: the bot's and the system's texts (``conversations/texts_vi.toml`` when empty)
    texts: str = ""
    tables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetentionSettings:
    """``[retention]``: how long personal data is kept (``tongdai purge``)."""

    #: call recordings and recorded messages, in days after the call
    recordings_days: int = 365
    #: message bodies and attachments (and raw webhook bodies), in days after the message
    messages_days: int = 365


#: the channel tables ``[channels.<name>]`` the engine knows
CHANNEL_TABLES = ("email", "webchat", "zalo", "facebook")


@dataclass(frozen=True)
class Settings:
    source: str = "<defaults>"
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    fastagi: FastAgiSettings = field(default_factory=FastAgiSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    lab: LabSettings = field(default_factory=LabSettings)
    acd: AcdSettings = field(default_factory=AcdSettings)
    web: WebSettings = field(default_factory=WebSettings)
    channels: ChannelsSettings = field(default_factory=ChannelsSettings)
    back_office: BackOfficeSettings = field(default_factory=BackOfficeSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)


_SECTIONS: dict[str, type[Any]] = {
    "database": DatabaseSettings,
    "fastagi": FastAgiSettings,
    "ami": AmiSettings,
    "ivr": IvrSettings,
    "lab": LabSettings,
    "acd": AcdSettings,
    "web": WebSettings,
    "channels": ChannelsSettings,
    "back_office": BackOfficeSettings,
    "retention": RetentionSettings,
}


def _channels(file: str, raw: Any) -> ChannelsSettings:
    if not isinstance(raw, dict):
        raise ConfigError(file, "channels", "must be a table")
    tables = {k: v for k, v in raw.items() if isinstance(v, dict)}
    for name in tables:
        if name not in CHANNEL_TABLES:
            raise ConfigError(
                file, f"channels.{name}", f"unknown channel (known: {', '.join(CHANNEL_TABLES)})"
            )
    plain = {k: v for k, v in raw.items() if k not in tables}
    if "tables" in plain:
        raise ConfigError(file, "channels.tables", "unknown setting")
    base = section(file, "channels", ChannelsSettings, plain)
    return ChannelsSettings(
        attachments_dir=base.attachments_dir,
        max_attachment_bytes=base.max_attachment_bytes,
        texts=base.texts,
        tables=tables,
    )


#: ``[lab] instance = N`` moves the default ports up by N x INSTANCE_STEP
INSTANCE_STEP = 100
MAX_INSTANCE = 9


def instance_defaults(n: int, chroot: str = LabSettings.chroot) -> dict[str, dict[str, Any]]:
    """The defaults ``[lab] instance = n`` changes (a file's own values still win): the ports,
    and what one lab must not share with another (Asterisk's logs and the recordings mount in
    the chroot, the engine's pid files, state and queue_log)."""
    if n == 0:
        return {}
    shift = n * INSTANCE_STEP
    mount = f"/srv/tongdai/recordings-{n}"
    return {
        "fastagi": {"port": FastAgiSettings.port + shift},
        "ami": {"port": AmiSettings.port + shift},
        "web": {"port": WebSettings.port + shift},
        "lab": {
            "sip_port": LabSettings.sip_port + shift,
            "var_dir": f"var/lab-{n}",
            "queue_log": f"{chroot}/var/log/tongdai-asterisk-{n}/queue_log",
        },
        "database": {"state_dir": f"var/state-{n}"},
        "acd": {"queue_log": f"var/queue_log-{n}"},
        "ivr": {
            "asterisk_sounds_dir": f"{mount}/prompts/vi",
            "asterisk_messages_dir": f"{mount}/messages",
            "asterisk_announcements_dir": f"{mount}/announcements",
            "asterisk_calls_dir": f"{mount}/calls",
        },
    }


#: ``tongdai lab up --nodes N`` passes N to the processes it starts in this variable
NODES_ENV = "TONGDAI_LAB_NODES"
#: the lab's Asterisk nodes behind Kamailio: node k listens on 127.0.0.(10 + k)
NODE_HOST_BASE = "127.0.0.1"


def node_host(k: int) -> str:
    """The loopback address of the lab's Asterisk node ``k`` (1 -> 127.0.0.11)."""
    return f"{NODE_HOST_BASE}{k}"


def nodes_defaults(
    nodes: int, n: int, chroot: str = LabSettings.chroot
) -> dict[str, dict[str, Any]]:
    """What ``[lab] nodes = 2`` changes: the engine follows node 1's AMI on 127.0.0.11 and
    node 2's on 127.0.0.12 (the instance's AMI port on both) and reads node 1's queue_log."""
    if nodes == 1:
        return {}
    port = AmiSettings.port + n * INSTANCE_STEP
    return {
        "ami": {"host": node_host(1), "more_nodes": f"{node_host(2)}:{port}"},
        "lab": {"queue_log": f"{chroot}/var/log/tongdai-asterisk-{n}-n1/queue_log"},
    }


def load_settings(path: str | Path | None = None) -> Settings:
    """Load settings from ``path``, ``$TONGDAI_CONFIG``, ``./tongdai.toml`` or defaults."""
    candidate = path or os.environ.get("TONGDAI_CONFIG")
    env_nodes = os.environ.get(NODES_ENV, "")
    no_file = False
    if candidate is None:
        local = PROJECT_HOME / "tongdai.toml"
        no_file = not local.exists()
        if no_file and not env_nodes:
            return Settings()
        candidate = local
    p = Path(candidate)
    raw = {} if no_file else read_toml(p)
    if env_nodes and "nodes" not in raw.get("lab", {}):
        # `tongdai lab up --nodes 2` (and the engine it starts): the file's own value wins
        if not env_nodes.isdigit():
            raise ConfigError(NODES_ENV, "lab.nodes", f"must be 1 or 2, got {env_nodes!r}")
        raw = {**raw, "lab": {**raw.get("lab", {}), "nodes": int(env_nodes)}}
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError(str(p), name, f"unknown section (known: {', '.join(_SECTIONS)})")
        if name == "channels":
            sections[name] = _channels(str(p), value)
            continue
        sections[name] = section(str(p), name, cls, value)
    lab: LabSettings = sections.get("lab", LabSettings())
    if lab.instance > MAX_INSTANCE:
        raise ConfigError(str(p), "lab.instance", f"must be 0 to {MAX_INSTANCE}")
    if lab.nodes not in (1, 2):
        raise ConfigError(str(p), "lab.nodes", "must be 1 or 2")
    if lab.node != 0:
        raise ConfigError(str(p), "lab.node", "is set by the lab for each node, not in a file")
    layered = instance_defaults(lab.instance, lab.chroot)
    for name, extra in nodes_defaults(lab.nodes, lab.instance, lab.chroot).items():
        layered[name] = {**layered.get(name, {}), **extra}
    for name, defaults in layered.items():
        given = raw.get(name, {})
        sections[name] = section(str(p), name, _SECTIONS[name], {**defaults, **given})
    settings = Settings(source=str(p), **sections)
    try:
        settings.ami.more_addresses()
    except ValueError as exc:
        raise ConfigError(str(p), "ami.more_nodes", str(exc)) from None
    if settings.acd.distribution not in ("asterisk", "engine"):
        raise ConfigError(str(p), "acd.distribution", 'must be "asterisk" or "engine"')
    store = settings.acd.state_store
    if store and not store.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            str(p), "acd.state_store", '"" (in process) or a Redis URL (redis://host:6379/0)'
        )
    _check_failover(str(p), settings)
    return settings


def _check_failover(file: str, settings: Settings) -> None:
    acd = settings.acd
    if acd.failover and (acd.distribution != "engine" or not acd.state_store):
        raise ConfigError(
            file,
            "acd.failover",
            'needs distribution = "engine" and a Redis state_store (the leader lease lives there)',
        )
    if not 0.5 <= acd.lease_ttl_s <= 30:
        raise ConfigError(file, "acd.lease_ttl_s", "must be 0.5 to 30 seconds")
    backup = settings.fastagi.backup
    if backup:
        host, _, port = backup.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(file, "fastagi.backup", '"host:port" of the other engine, or ""')
