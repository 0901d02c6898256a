"""A private, throwaway Asterisk 22 for end-to-end tests of the AMI client and the SIPp harness.

It runs Debian's Asterisk from the sid chroot (never modified, only a config folder copied into its
/tmp), with every directory it writes (run, log, spool, astdb) private to that folder. It takes
the ports of a lab instance (``lab.instance``: SIP, AMI, RTP of ``settings``) and holds that
instance's lab lock while it lives (``lab.lock``; the Asterisk process inherits it), so it never
collides with a lab, or another private Asterisk, on the same ports.

    with PrivateAsterisk(EXTENSIONS, settings=lab_settings, agents={"agent101": contact}):
        ...  # callers reach context "amitest" (endpoint "anonymous", dtmf_mode rfc4733)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from lab import lock
from lab.instance import LabInstance
from tongdai.settings import Settings

CHROOT = Path(os.environ.get("TONGDAI_ASTERISK_CHROOT", "/var/lib/tongdai/chroot-sid-asterisk22"))
AMI_USER = "amitest"
AMI_SECRET = "amitest-secret"
CALLER_CONTEXT = "amitest"

MODULES = [
    "res_timing_timerfd", "res_sorcery_config", "res_sorcery_memory", "res_sorcery_astdb",
    "res_pjproject", "res_pjsip", "res_pjsip_session", "res_pjsip_sdp_rtp", "res_pjsip_caller_id",
    "res_pjsip_dtmf_info", "res_pjsip_rfc3326", "res_pjsip_pubsub", "res_pjsip_logger",
    "res_pjsip_authenticator_digest", "res_pjsip_endpoint_identifier_ip",
    "res_pjsip_endpoint_identifier_anonymous", "chan_pjsip", "res_rtp_asterisk", "codec_ulaw",
    "codec_alaw", "codec_gsm", "format_wav", "format_pcm", "format_gsm", "format_sln",
    "bridge_simple", "bridge_native_rtp", "bridge_holding", "bridge_builtin_features",
    "res_musiconhold", "pbx_config", "app_dial", "app_playback", "app_read", "app_userevent",
    "app_verbose", "app_echo", "app_senddtmf", "func_callerid", "func_channel", "func_strings",
    "func_logic",
]  # fmt: skip

_ENDPOINT_MEDIA = """disallow = all
allow = ulaw
dtmf_mode = rfc4733
direct_media = no
rtp_symmetric = yes
timers = no
"""


def chroot_ready() -> str | None:
    """None if the chroot can run Asterisk here, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "running Asterisk in a chroot needs root"
    if not (CHROOT / "usr/sbin/asterisk").exists():
        return f"no Asterisk chroot at {CHROOT}"
    return None


def ensure_chroot_hosts() -> None:
    """Without DNS, Asterisk stalls resolving the hostname and A.ROOT-SERVERS.NET (lab doc)."""
    hosts = CHROOT / "etc/hosts"
    if hosts.exists():
        return
    tmp = hosts.with_name(f"hosts.{os.getpid()}")
    tmp.write_text(f"127.0.0.1 localhost {socket.gethostname()} A.ROOT-SERVERS.NET\n")
    tmp.replace(hosts)


def _port_busy(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:  # ignore TIME_WAIT leftovers; a listener still conflicts
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class PrivateAsterisk:
    """Start/stop one private Asterisk; ``dialplan`` is the body of extensions.conf.
    ``endpoint_options`` are added to every endpoint (e.g. ``rtp_timeout = 30``);
    ``moh`` gives it the lab's music on hold class ``default``."""

    def __init__(
        self,
        dialplan: str,
        *,
        settings: Settings,
        agents: dict[str, str] | None = None,
        endpoint_options: str = "",
        moh: bool = False,
    ) -> None:
        self.dialplan = dialplan
        self.media = _ENDPOINT_MEDIA + (endpoint_options.strip() + "\n" if endpoint_options else "")
        self.moh = moh
        self.agents = agents or {}
        self.settings = settings
        self.instance = LabInstance.of(settings)
        self.sip_port = settings.lab.sip_port
        self.ami_port = settings.ami.port
        self.ami_user = AMI_USER
        self.ami_secret = AMI_SECRET
        self.host_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = contextlib.ExitStack()

    @property
    def inner_dir(self) -> str:
        """The config folder as Asterisk sees it inside the chroot."""
        assert self.host_dir is not None, "not started"
        return "/" + str(self.host_dir.relative_to(CHROOT))

    def _write_config(self, folder: Path) -> None:
        inner = "/" + str(folder.relative_to(CHROOT))
        for sub in ("run", "log", "spool", "db"):
            (folder / sub).mkdir()
        files = {
            "asterisk.conf": (
                "[directories]\n"
                f"astetcdir => {inner}\nastrundir => {inner}/run\nastlogdir => {inner}/log\n"
                f"astspooldir => {inner}/spool\nastdbdir => {inner}/db\n"
                "astdatadir => /usr/share/asterisk\n"
                "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules\n"
                "[options]\nsystemname = amitest\nmaxload = 0\n"
            ),
            "modules.conf": "[modules]\nautoload = no\n"
            + "".join(f"load = {m}.so\n" for m in MODULES),
            "logger.conf": "[general]\n[logfiles]\nmessages.log => notice,warning,error,dtmf\n",
            "rtp.conf": (
                f"[general]\nrtpstart = {self.instance.rtp_start}\n"
                f"rtpend = {self.instance.rtp_end}\n"
            ),
            "musiconhold.conf": "[general]\n"
            + ("[default]\nmode = files\ndirectory = moh\n" if self.moh else ""),
            "manager.conf": (
                f"[general]\nenabled = yes\nport = {self.ami_port}\nbindaddr = 127.0.0.1\n"
                f"displayconnects = no\n\n[{self.ami_user}]\nsecret = {self.ami_secret}\n"
                "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                "read = all\nwrite = all\n"
            ),
            "pjsip.conf": self._pjsip_conf(),
            "extensions.conf": self.dialplan,
        }
        for name in ("ccss.conf", "cel.conf", "features.conf", "udptl.conf"):
            files[name] = "[general]\n"
        files["acl.conf"] = ""
        files["cdr.conf"] = "[general]\nenable = no\n"
        files["pjproject.conf"] = "[startup]\n"
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        # Ringback/busy tones for Dial(): reuse the chroot's stock table.
        shutil.copy(CHROOT / "etc/asterisk/indications.conf", folder / "indications.conf")

    def _pjsip_conf(self) -> str:
        parts = [
            "[global]\ntype = global\nuser_agent = tongdai-amitest\n"
            "endpoint_identifier_order = ip,anonymous\nkeep_alive_interval = 0\n",
            "[transport-udp]\ntype = transport\nprotocol = udp\n"
            f"bind = 127.0.0.1:{self.sip_port}\n",
            f"[anonymous]\ntype = endpoint\ncontext = {CALLER_CONTEXT}\n{self.media}",
        ]
        for name, contact in self.agents.items():
            parts.append(
                f"[{name}]\ntype = endpoint\ncontext = {CALLER_CONTEXT}-agents\naors = {name}\n"
                f"{self.media}\n[{name}]\ntype = aor\ncontact = {contact}\n"
            )
        return "\n".join(parts)

    def start(self, timeout_s: float = 30.0) -> None:
        """Write the config into the chroot, start Asterisk, wait until fully booted. Takes the
        lab lock of the instance unless held (``with PrivateAsterisk(...)`` holds it)."""
        if self._process is not None:
            raise RuntimeError("already started")
        command = f"pytest private Asterisk (pid {os.getpid()})"
        with lock.hold(self.settings, command=command, timeout_s=900) as held:
            self._start(timeout_s, held.fd)

    def _start(self, timeout_s: float, lock_fd: int) -> None:
        for port, kind in ((self.sip_port, socket.SOCK_DGRAM), (self.ami_port, socket.SOCK_STREAM)):
            if _port_busy(port, kind):
                raise RuntimeError(f"port {port} is in use (a leftover private Asterisk?)")
        ensure_chroot_hosts()
        self.host_dir = Path(tempfile.mkdtemp(prefix="amitest-", dir=CHROOT / "tmp"))
        self._write_config(self.host_dir)
        out = (self.host_dir / "log" / "stdout.log").open("wb")
        with out:
            self._process = subprocess.Popen(
                [str(_chroot()), str(CHROOT), "/usr/sbin/asterisk", "-C",
                 f"{self.inner_dir}/asterisk.conf", "-f", "-n", "-q"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=(lock_fd,),
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                log = self.log_tail()
                self.stop()
                raise RuntimeError(f"private Asterisk exited at start:\n{log}")
            try:
                if "fully booted" in self.cli("core waitfullybooted", timeout_s=5.0).lower():
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            if time.monotonic() > deadline:
                log = self.log_tail()
                self.stop()
                raise RuntimeError(f"private Asterisk not booted within {timeout_s} s:\n{log}")
            time.sleep(0.2)

    def cli(self, command: str, timeout_s: float = 10.0) -> str:
        """Run one CLI command (``asterisk -rx``) against this instance."""
        done = subprocess.run(
            [str(_chroot()), str(CHROOT), "/usr/sbin/asterisk", "-C",
             f"{self.inner_dir}/asterisk.conf", "-rx", command],
            capture_output=True, timeout=timeout_s, check=True,
        )  # fmt: skip
        return done.stdout.decode("utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        """The end of Asterisk's stdout and messages.log, for failure reports."""
        if self.host_dir is None:
            return ""
        text = []
        for name in ("stdout.log", "messages.log"):
            path = self.host_dir / "log" / name
            if path.exists():
                content = path.read_text(encoding="utf-8", errors="replace").splitlines()
                text.append(f"--- {name}\n" + "\n".join(content[-lines:]))
        return "\n".join(text)

    def stop(self) -> None:
        """Stop the instance we started (only its pid) and remove its folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.cli("core stop now", timeout_s=5.0)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self.host_dir is not None and not os.environ.get("TONGDAI_KEEP_AMITEST"):
            shutil.rmtree(self.host_dir, ignore_errors=True)
            self.host_dir = None

    def __enter__(self) -> PrivateAsterisk:
        command = f"pytest private Asterisk (pid {os.getpid()})"
        with contextlib.ExitStack() as held:
            held.enter_context(lock.hold(self.settings, command=command, timeout_s=900))
            self.start()
            self._lock = held.pop_all()  # kept until __exit__; released at once if start fails
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self._lock.close()


def _chroot() -> str:
    return shutil.which("chroot") or "/usr/sbin/chroot"
