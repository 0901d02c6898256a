"""Which lab this is: ``[lab] instance = N`` lets several labs run side by side on one machine.

Instance 0 is the lab as documented: SIP 5060, AMI 5038, FastAGI 4573, web 8022, the agents'
phones on 5080, the citizens' phone on 5090, RTP 10000-20000, and Asterisk's stock folders inside
the chroot. Instance N (1-9) moves every port up by 100 x N (the engine's ports are moved by
``tongdai.settings.instance_defaults``), takes RTP ports 21000 + 2000 x (N - 1) onwards, and gives
its Asterisk folders of its own in the same chroot, so two Asterisks run from one tree at once::

    instance 0   /etc/tongdai-asterisk     /run/asterisk  /var/log/asterisk  ...
    instance 2   /etc/tongdai-asterisk-2   /run/tongdai-asterisk-2 (asterisk.ctl, pid)
                 /var/log/tongdai-asterisk-2 (queue_log, messages, cdr-csv)
                 /var/spool/tongdai-asterisk-2  /var/lib/tongdai-asterisk-2 (astdb)
                 /srv/tongdai/recordings-2 (the recordings bind mount)

A lab of two nodes (``[lab] nodes = 2``, ``lab.nodes``) puts Kamailio on the instance's SIP port
on 127.0.0.1 and runs two Asterisks from the same chroot, node k on 127.0.0.(10 + k) with the
instance's SIP and AMI ports, folders ``tongdai-asterisk-N-nk`` of its own (``/etc``, ``/run``,
``/var/log``, ``/var/spool``, ``/var/lib``), the instance's recordings mount (shared), and half
the instance's RTP ports each (node 1 the lower half)::

    instance 9, nodes = 2   Kamailio  udp 127.0.0.1:5960
                            node 1    udp 127.0.0.11:5960, AMI 127.0.0.11:5938, RTP 37000-37999
                            node 2    udp 127.0.0.12:5960, AMI 127.0.0.12:5938, RTP 38000-38999

Each instance has its own lab lock (``lab.lock``): the lock guards exactly the ports and folders
listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tongdai.settings import INSTANCE_STEP, Settings, node_host

AGENTS_PORT = 5080
CITIZENS_PORT = 5090
RTP_RANGE = (10000, 20000)
#: RTP ports per instance above 0 (two per call leg: 500 legs at once)
RTP_BLOCK = 2000
RTP_BASE = 21000  # above instance 0's 10000-20000 (inclusive)
LOCK_DIR = Path("/run/lock")


@dataclass(frozen=True)
class LabInstance:
    """One lab's ports and Asterisk folders (the folders as Asterisk sees them in the chroot)."""

    number: int
    #: 0: the one Asterisk of a one-node lab; k (1, 2): node k behind Kamailio
    node: int
    #: where this Asterisk binds SIP and AMI (127.0.0.1, or 127.0.0.(10 + k) for node k)
    host: str
    sip_port: int
    ami_port: int
    fastagi_port: int
    web_port: int
    agents_port: int
    citizens_port: int
    rtp_start: int
    rtp_end: int
    conf_dir: str
    run_dir: str
    log_dir: str
    spool_dir: str
    db_dir: str
    recordings_dir: str

    @classmethod
    def of(cls, settings: Settings) -> LabInstance:
        n = settings.lab.instance
        k = settings.lab.node
        shift = n * INSTANCE_STEP
        mount = "/srv/tongdai/recordings" if n == 0 else f"/srv/tongdai/recordings-{n}"
        if n == 0:
            rtp = RTP_RANGE
            dirs = ("/etc/tongdai-asterisk", "/run/asterisk", "/var/log/asterisk")
            more = ("/var/spool/asterisk", "/var/lib/asterisk", mount)
        else:
            start = RTP_BASE + RTP_BLOCK * (n - 1)
            rtp = (start, start + RTP_BLOCK - 1)
            name = f"tongdai-asterisk-{n}"
            dirs = (f"/etc/{name}", f"/run/{name}", f"/var/log/{name}")
            more = (f"/var/spool/{name}", f"/var/lib/{name}", mount)
        if k:
            half = (rtp[1] - rtp[0] + 1) // 2
            rtp = (rtp[0] + half * (k - 1), rtp[0] + half * k - 1)
            name = f"tongdai-asterisk-{n}-n{k}"
            dirs = (f"/etc/{name}", f"/run/{name}", f"/var/log/{name}")
            more = (f"/var/spool/{name}", f"/var/lib/{name}", mount)
        return cls(
            number=n,
            node=k,
            host=node_host(k) if k else "127.0.0.1",
            sip_port=settings.lab.sip_port,
            ami_port=settings.ami.port,
            fastagi_port=settings.fastagi.port,
            web_port=settings.web.port,
            agents_port=AGENTS_PORT + shift,
            citizens_port=CITIZENS_PORT + shift,
            rtp_start=rtp[0],
            rtp_end=rtp[1],
            conf_dir=dirs[0],
            run_dir=dirs[1],
            log_dir=dirs[2],
            spool_dir=more[0],
            db_dir=more[1],
            recordings_dir=more[2],
        )

    @property
    def asterisk_conf(self) -> str:
        """``asterisk.conf`` as Asterisk sees it (``asterisk -C``)."""
        return f"{self.conf_dir}/asterisk.conf"

    @property
    def lock_path(self) -> Path:
        return LOCK_DIR / f"tongdai-lab-{self.number}.lock"

    def directories(self) -> str:
        """The ``[directories]`` lines of ``asterisk.conf`` for this instance."""
        if self.number == 0 and self.node == 0:
            return f"astetcdir => {self.conf_dir}"  # the rest stays Debian's
        return "\n".join(
            [
                f"astetcdir => {self.conf_dir}",
                f"astrundir => {self.run_dir}",
                f"astlogdir => {self.log_dir}",
                f"astspooldir => {self.spool_dir}",
                f"astdbdir => {self.db_dir}",
            ]
        )

    def host_dirs(self, chroot: Path) -> list[Path]:
        """The folders Asterisk writes, host view (created before it starts). The run folder is
        /run, not /var/run: the chroot's /var/run is a symlink to /run, absolute, which the host
        would follow to its own /run."""
        dirs = (self.run_dir, self.log_dir, self.spool_dir, self.db_dir)
        return [chroot / d.lstrip("/") for d in dirs]


def worker_instance(worker: str | None, override: str | None = None) -> int:
    """The instance a test process uses: ``override`` ($TONGDAI_LAB_INSTANCE) if set, else
    1 + the pytest-xdist worker number (``gw0`` -> 1), else 1. Tests never take instance 0,
    which stays free for a `tongdai lab up` or a benchmark on the same machine."""
    if override:
        return int(override)
    if worker and worker.startswith("gw") and worker[2:].isdigit():
        return 1 + int(worker[2:])
    return 1
