"""The lab's Kamailio: ``kamailio_conf/`` rendered for a lab instance, started, watched, stopped.

``tongdai lab up --nodes 2`` (``lab.nodes``) runs Debian's Kamailio on the host (not in the
chroot) on the instance's SIP port on 127.0.0.1, in front of the two Asterisk nodes on
127.0.0.11 and 127.0.0.12. Its files live in ``<lab var_dir>/kamailio/``: the configuration as
rendered (the five ``#!substdef`` lines of ``kamailio_conf/kamailio.cfg`` rewritten), the
dispatcher list of the two nodes, the control socket ``kamcmd`` talks to, the pid file and the
log. It inherits the lab lock like Asterisk and the engine.

``register`` is a phone's REGISTER (one UDP request, 200 expected): the lab's agents' phones (one
SIPp UAS answering for every agent) register their contacts with it.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import lock, procs
from lab.procs import LabError
from tongdai.settings import Settings, home_path, node_host

KAMAILIO_BIN = "/usr/sbin/kamailio"
KAMCMD_BIN = "/usr/sbin/kamcmd"
START_TIMEOUT = 20.0
#: the lines of kamailio_conf/kamailio.cfg the lab rewrites, by name
_SUBSTDEF = re.compile(r'^#!substdef "!(TD_[A-Z_]+)!(.*)!g"$', re.MULTILINE)
_SUBST_NAMES = ("TD_LISTEN", "TD_DOMAIN", "TD_DISPATCHER_LIST", "TD_CTL", "TD_FROM")


@dataclass(frozen=True)
class KamailioPaths:
    """Where the lab's Kamailio keeps its files (host view)."""

    source: Path
    folder: Path
    config: Path
    dispatcher_list: Path
    ctl_socket: Path
    pid_file: Path
    log_file: Path

    @classmethod
    def of(cls, settings: Settings) -> KamailioPaths:
        folder = home_path(settings.lab.var_dir) / "kamailio"
        return cls(
            source=home_path("kamailio_conf"),
            folder=folder,
            config=folder / "kamailio.cfg",
            dispatcher_list=folder / "dispatcher.list",
            ctl_socket=folder / "ctl.sock",
            pid_file=folder / "kamailio.pid",
            log_file=folder / "kamailio.log",
        )


def nodes_of(settings: Settings) -> list[str]:
    """The SIP URIs of the lab's Asterisk nodes (dispatcher set 1)."""
    return [f"sip:{node_host(k)}:{settings.lab.sip_port}" for k in range(1, settings.lab.nodes + 1)]


def render_config(text: str, settings: Settings, source: str = "kamailio.cfg") -> str:
    """``kamailio.cfg`` for this lab: its ``#!substdef`` values replaced."""
    paths = KamailioPaths.of(settings)
    wanted = {
        "TD_LISTEN": f"udp:127.0.0.1:{settings.lab.sip_port}",
        "TD_DOMAIN": "127.0.0.1",
        "TD_DISPATCHER_LIST": str(paths.dispatcher_list),
        "TD_CTL": f"unix:{paths.ctl_socket}",
        "TD_FROM": "sip:dispatcher@127.0.0.1",
    }
    found = {m.group(1) for m in _SUBSTDEF.finditer(text)}
    missing = [name for name in _SUBST_NAMES if name not in found]
    if missing:
        raise LabError(f"{source}: no #!substdef line for {', '.join(missing)} (the lab sets them)")

    def one(m: re.Match[str]) -> str:
        value = wanted.get(m.group(1), m.group(2))
        if "!" in value:
            raise LabError(f"{source}: {m.group(1)} value {value!r} may not contain '!'")
        return f'#!substdef "!{m.group(1)}!{value}!g"'

    return _SUBSTDEF.sub(one, text)


def dispatcher_list(settings: Settings) -> str:
    """The dispatcher list of the lab's nodes (set 1, node k as duid=nodek)."""
    lines = ["# written by `tongdai lab up --nodes N` (lab/kamailio.py)"]
    for k, uri in enumerate(nodes_of(settings), start=1):
        lines.append(f"1 {uri} 0 0 duid=node{k}")
    return "\n".join(lines) + "\n"


def deploy(settings: Settings) -> KamailioPaths:
    """Write the rendered configuration and the dispatcher list; check them with ``-c``."""
    paths = KamailioPaths.of(settings)
    paths.folder.mkdir(parents=True, exist_ok=True)
    source = paths.source / "kamailio.cfg"
    text = source.read_text(encoding="utf-8")
    paths.config.write_text(render_config(text, settings, str(source)), encoding="utf-8")
    paths.dispatcher_list.write_text(dispatcher_list(settings), encoding="utf-8")
    check = _run([KAMAILIO_BIN, "-c", "-f", str(paths.config)], timeout=15.0)
    if check.returncode != 0:
        raise LabError(f"kamailio -c {paths.config} refused it:\n{check.stderr[-2000:]}")
    return paths


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{argv[0]}: {exc}") from exc


def markers(settings: Settings) -> tuple[str, str]:
    """What /proc/PID/cmdline must hold for a process to count as this lab's Kamailio."""
    return (KAMAILIO_BIN, str(KamailioPaths.of(settings).config))


def running_pid(settings: Settings) -> int | None:
    """The pid of the lab's Kamailio if it runs, else None."""
    return procs.running_pid(KamailioPaths.of(settings).pid_file, markers(settings))


def kamailio_argv(paths: KamailioPaths) -> list[str]:
    """Kamailio in the foreground (``-DD``), logging to stderr (``-E``), 32 MB shared memory."""
    return [KAMAILIO_BIN, "-f", str(paths.config), "-DD", "-E", "-m", "32", "-M", "8"]


def start(settings: Settings, timeout: float = START_TIMEOUT) -> int:
    """Deploy and start Kamailio; return its pid once it answers ``kamcmd core.version``.
    Already running (ours): its pid at once."""
    if not os.path.exists(KAMAILIO_BIN):
        raise LabError(f"{KAMAILIO_BIN} is missing: run scripts/install.sh (apt kamailio)")
    pid = running_pid(settings)
    if pid is not None:
        return pid
    with lock.hold(settings) as held:
        _check_port_free(settings)
        paths = deploy(settings)
        paths.ctl_socket.unlink(missing_ok=True)
        with paths.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"=== tongdai lab: starting Kamailio {time.strftime('%F %T')} ===\n")
        pid = procs.start_detached(
            kamailio_argv(paths),
            pid_file=paths.pid_file,
            log_file=paths.log_file,
            keep_fds=(held.fd,),
        )
    deadline = time.monotonic() + timeout
    while True:
        if not procs.alive(pid):
            paths.pid_file.unlink(missing_ok=True)
            raise LabError(
                f"Kamailio exited during start-up; end of {paths.log_file}:\n"
                + procs.log_tail(paths.log_file)
            )
        if paths.ctl_socket.exists() and _kamcmd(settings, "core.version", timeout=3.0):
            return pid
        if time.monotonic() >= deadline:
            stop(settings)
            raise LabError(
                f"Kamailio did not answer on {paths.ctl_socket} within {timeout:.0f} s; end of "
                f"{paths.log_file}:\n" + procs.log_tail(paths.log_file)
            )
        time.sleep(0.2)


def _check_port_free(settings: Settings) -> None:
    """Refuse to start if another program has Kamailio's SIP port (UDP 127.0.0.1)."""
    port = settings.lab.sip_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LabError(
                f"UDP 127.0.0.1:{port} (Kamailio's SIP) is taken by another program ({exc}); "
                "stop it or change [lab] sip_port"
            ) from None


def stop(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop the lab's Kamailio (only the pid we started); True if it was running."""
    return procs.stop(KamailioPaths.of(settings).pid_file, markers(settings), timeout=timeout)


def _kamcmd(settings: Settings, *command: str, timeout: float = 5.0) -> str | None:
    sock = KamailioPaths.of(settings).ctl_socket
    done = _run([KAMCMD_BIN, "-s", f"unix:{sock}", *command], timeout=timeout)
    return done.stdout if done.returncode == 0 else None


@dataclass(frozen=True)
class NodeState:
    """One dispatcher destination as Kamailio sees it."""

    uri: str
    #: Kamailio's flags: "AP" active (probing), "IP" inactive, "AX"/"IX" not probed
    flags: str

    @property
    def active(self) -> bool:
        return self.flags.startswith("A")


_DEST_RE = re.compile(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)")


def node_states(settings: Settings) -> list[NodeState]:
    """The dispatcher's view of the nodes (``kamcmd dispatcher.list``); [] if unreachable."""
    out = _kamcmd(settings, "dispatcher.list")
    if out is None:
        return []
    # kamcmd prints nested structures; URI and FLAGS of one destination follow each other
    flat = " ".join(out.split())
    return [NodeState(uri, flags) for uri, flags in _DEST_RE.findall(flat)]


def registered(settings: Settings, aor: str) -> bool:
    """True if ``aor`` (e.g. ``agent101``) has a contact in Kamailio's location table."""
    out = _kamcmd(settings, "ul.lookup", "location", aor)
    return out is not None and "Contact" in out


def register(
    settings: Settings,
    aor: str,
    contact_port: int,
    *,
    expires: int = 600,
    timeout_s: float = 5.0,
) -> None:
    """REGISTER ``aor`` at the lab's Kamailio with contact ``sip:<aor>@127.0.0.1:<port>``
    (where a SIPp UAS answers for it); raises ``LabError`` unless 200 comes within
    ``timeout_s`` seconds."""
    port = settings.lab.sip_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        local = udp.getsockname()[1]
        call_id = secrets.token_hex(8)
        branch = "z9hG4bK" + secrets.token_hex(6)
        request = (
            f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{aor}@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{aor}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}@tongdai-lab\r\n"
            "CSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{aor}@127.0.0.1:{contact_port}>\r\n"
            f"Expires: {expires}\r\n"
            "User-Agent: tongdai-lab\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        udp.sendto(request.encode("ascii"), ("127.0.0.1", port))
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LabError(f"REGISTER {aor}: no final answer within {timeout_s:g} s")
            udp.settimeout(remaining)
            try:
                data = udp.recv(65535).decode("utf-8", errors="replace")
            except TimeoutError:
                continue
            status = data.split("\r\n", 1)[0].split(" ")
            if call_id not in data or len(status) < 2 or not status[1].isdigit():
                continue
            code = int(status[1])
            if code == 200:
                return
            if code >= 200:
                raise LabError(f"REGISTER {aor}: {' '.join(status[1:])}")
