"""A private mail server on loopback: Debian's Dovecot (IMAP, LMTP) and Postfix (SMTP).

``start_mail(dir)`` writes a complete configuration under ``dir`` (nothing in /etc is read or
changed), starts one Dovecot and one Postfix on free loopback ports (never 25/143: the
machine's own mail service, if any, is left alone) and returns a ``MailLab`` with the
addresses, ports and credentials; ``MailLab.stop()`` stops both. Tests start one per
session; the demo can start one too.

The path a citizen's mail takes is the real one: SMTP to Postfix (STARTTLS with the lab's
self-signed certificate, ``cafile``; AUTH through Dovecot's SASL service), Postfix hands it
to Dovecot by LMTP, Dovecot files it in the user's Maildir; the engine reads it over IMAP
(plain on ``imap_port``, TLS on ``imaps_port``). Two users exist in the domain ``lab.test``:
the province's mailbox ``1022@lab.test`` and a citizen ``congdan@lab.test``. Mail to
``bounce@lab.test`` is accepted and then bounced (Postfix sends a real delivery report);
``busy@lab.test`` is refused for now (450); any other address in the domain is refused for
good at RCPT (550).

Why Postfix rather than aiosmtpd: it is what a province actually runs, it speaks STARTTLS
and AUTH the way real submission servers do, and with a private ``-c`` config directory,
``chroot`` off and LMTP over TCP it starts in about a second. Dovecot's helper processes run
as the Debian users ``dovecot``/``dovenull``, Postfix's as ``postfix``, mail is owned by
``nobody``: the lab needs root, and ``dir`` must be reachable by those users (the lab makes
it mode 0755 and checks its parents).

Test helpers: ``deliver_maildir`` files mails straight into a Maildir (how a mailbox of
10,000 old mails is made in seconds), ``set_uidvalidity`` renumbers a folder (doveadm),
``stop_imap``/``start_imap`` simulate an outage.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.procs import LabError, cmdline, log_tail, start_detached, stop, wait_until

DOMAIN = "lab.test"
HOST = "127.0.0.1"
MAIL_OWNER = "nobody"
START_TIMEOUT = 20.0
_POSTFIX = "/usr/sbin/postfix"
_DOVECOT = "/usr/sbin/dovecot"
_DOVEADM = "/usr/bin/doveadm"


@dataclass(frozen=True)
class MailUser:
    address: str
    password: str
    password_file: Path


@dataclass(frozen=True)
class MailPorts:
    imap: int
    imaps: int
    smtp: int
    lmtp: int
    auth: int


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (the kernel's choice)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class MailLab:
    dir: Path
    ports: MailPorts
    province: MailUser
    citizen: MailUser
    cafile: Path
    domain: str = DOMAIN
    host: str = HOST
    #: accepted by Postfix, unknown to Dovecot: mail to it bounces back (a real DSN)
    bounce_address: str = f"bounce@{DOMAIN}"
    #: refused for now at RCPT (450): a temporary failure
    busy_address: str = f"busy@{DOMAIN}"

    @property
    def dovecot_conf(self) -> Path:
        return self.dir / "dovecot.conf"

    @property
    def postfix_etc(self) -> Path:
        return self.dir / "postfix" / "etc"

    def imap_url(self, tls: bool = False) -> str:
        if tls:
            return f"imaps://{self.host}:{self.ports.imaps}?cafile={self.cafile}"
        return f"imap://{self.host}:{self.ports.imap}"

    def smtp_url(self) -> str:
        return f"smtp://{self.host}:{self.ports.smtp}?starttls&cafile={self.cafile}"

    def email_channel_toml(self, poll_s: float = 1.0) -> str:
        """The ``[channels.email]`` table of a ``tongdai.toml`` reading the province's mailbox
        on this server (the tests' and the demo's engine)."""
        q = json.dumps  # a TOML basic string for plain paths and URLs
        return f"""[channels.email]
imap_url = {q(self.imap_url())}
username = {q(self.province.address)}
password_file = {q(str(self.province.password_file))}
smtp_url = {q(self.smtp_url())}
from_address = {q(self.province.address)}
from_name = "Tổng đài 1022 Quảng Nam"
domain = {q(self.domain)}
timeout_s = 10.0
poll_s = {poll_s}
"""

    def maildir(self, user: MailUser) -> Path:
        local, _, domain = user.address.partition("@")
        return self.dir / "mail" / domain / local / "Maildir"

    # -- processes ------------------------------------------------------------------------

    def start_imap(self) -> None:
        """Start Dovecot (again) and wait until it accepts IMAP and LMTP connections."""
        start_detached(
            [_DOVECOT, "-F", "-c", str(self.dovecot_conf)],
            pid_file=self.dir / "dovecot.pid",
            log_file=self.dir / "log" / "dovecot.out",
        )
        ports = (self.ports.imap, self.ports.imaps, self.ports.lmtp, self.ports.auth)
        if not wait_until(lambda: all(_port_open(p) for p in ports), START_TIMEOUT):
            raise LabError(
                "Dovecot did not open its ports:\n" + log_tail(self.dir / "log" / "dovecot.log")
            )

    @property
    def dovecot_instance(self) -> str:
        return f"tongdai-mail-{self.ports.imap}"

    def _dovecot_children(self) -> list[int]:
        """Our Dovecot's helper processes (named ``dovecot-<instance>/imap`` and so on)."""
        prefix = f"dovecot-{self.dovecot_instance}/"
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                args = cmdline(int(entry.name))
                if args and args[0].startswith(prefix):
                    found.append(int(entry.name))
        return found

    def stop_imap(self) -> None:
        """Stop Dovecot, and its imap processes with it: Dovecot's master exits first and
        an orphaned imap process would keep a client's connection open for a while."""
        stop(self.dir / "dovecot.pid", [str(self.dovecot_conf)])
        for pid in self._dovecot_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not self._dovecot_children(), 10):
            for pid in self._dovecot_children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _postfix(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_POSTFIX, "-c", str(self.postfix_etc), command],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )

    def _postfix_pid(self) -> int | None:
        """The pid of OUR Postfix master (its environment names our config directory)."""
        pid_file = self.dir / "postfix" / "spool" / "pid" / "master.pid"
        try:
            pid = int(pid_file.read_text(encoding="ascii").strip())
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if f"MAIL_CONFIG={self.postfix_etc}".encode() in environ.split(b"\0") else None

    def start_smtp(self) -> None:
        done = self._postfix("start")
        if done.returncode != 0 or not wait_until(lambda: _port_open(self.ports.smtp), 10):
            raise LabError(
                f"Postfix did not start ({done.stdout.strip()} {done.stderr.strip()}):\n"
                + log_tail(self.dir / "log" / "postfix.log")
            )

    def stop_smtp(self) -> None:
        pid = self._postfix_pid()
        if pid is None:
            return
        self._postfix("stop")
        if not wait_until(lambda: self._postfix_pid() is None, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop Postfix and Dovecot (the files stay under ``dir``)."""
        try:
            self.stop_smtp()
        finally:
            self.stop_imap()

    # -- test helpers -----------------------------------------------------------------------

    def deliver_maildir(self, user: MailUser, mails: Iterable[bytes]) -> int:
        """File raw mails straight into ``user``'s INBOX (``Maildir/new``); how many."""
        owner = pwd.getpwnam(MAIL_OWNER)
        root = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for path in (root.parent, root, root / "cur", root / "new", root / "tmp"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        count = 0
        stamp = int(time.time())
        for raw in mails:
            name = f"{stamp}.M{count}P{os.getpid()}_{uuid.uuid4().hex[:8]}.lab"
            tmp = root / "tmp" / name
            tmp.write_bytes(raw.replace(b"\r\n", b"\n"))
            os.chown(tmp, owner.pw_uid, owner.pw_gid)
            tmp.rename(root / "new" / name)
            count += 1
        return count

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            [_DOVEADM, "-c", str(self.dovecot_conf), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise LabError(f"doveadm {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def set_uidvalidity(self, user: MailUser, value: int, mailbox: str = "INBOX") -> None:
        """Give ``mailbox`` a new UIDVALIDITY, as a restored or rebuilt folder has."""
        self.doveadm("mailbox", "update", "-u", user.address, "--uid-validity", str(value), mailbox)


def _check_reachable(path: Path) -> None:
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise LabError(
                f"{parent} is not searchable by other users (mode {oct(mode & 0o777)}): the mail "
                "lab's Dovecot and Postfix users need to reach its files; use a folder under /tmp"
            )


def _require_tools() -> None:
    missing = [t for t in (_DOVECOT, _DOVEADM, _POSTFIX) if not Path(t).exists()]
    if missing:
        raise LabError(
            f"the mail lab needs {', '.join(missing)}: run `TONGDAI_EXTRAS=dev bash "
            "scripts/install.sh` (installs dovecot-imapd, dovecot-lmtpd and postfix)"
        )
    if os.geteuid() != 0:
        raise LabError("the mail lab needs root (Postfix's master and Dovecot run as root)")


def _make_cert(tls: Path) -> Path:
    tls.mkdir(parents=True, exist_ok=True)
    cert, key = tls / "cert.pem", tls / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"]
    argv += ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN=mail.{DOMAIN}"]
    argv += ["-addext", f"subjectAltName=DNS:mail.{DOMAIN},IP:{HOST}"]
    subprocess.run(
        argv,
        capture_output=True,
        timeout=START_TIMEOUT,
        check=True,
    )
    key.chmod(0o644)  # read by Postfix's smtpd (user postfix) and Dovecot's login processes
    return cert


def start_mail(dir: str | Path, ports: MailPorts | None = None) -> MailLab:
    """Write the configuration under ``dir`` and start Dovecot and Postfix (see above)."""
    _require_tools()
    root = Path(dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    _check_reachable(root)
    if ports is None:
        ports = MailPorts(*free_ports(5))
    for sub in ("run", "state", "log", "secrets", "postfix/etc", "postfix/spool", "postfix/data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam(MAIL_OWNER)
    (root / "mail").mkdir(exist_ok=True)
    os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
    shutil.chown(root / "postfix" / "data", user="postfix")
    cafile = _make_cert(root / "tls")
    users = []
    for local in ("1022", "congdan"):
        address = f"{local}@{DOMAIN}"
        password = uuid.uuid4().hex
        secret = root / "secrets" / f"{local}.password"
        secret.write_text(password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        users.append(MailUser(address, password, secret))
    (root / "users").write_text(
        "".join(f"{u.address}:{{PLAIN}}{u.password}::::::\n" for u in users), encoding="utf-8"
    )
    (root / "users").chmod(0o640)
    shutil.chown(root / "users", group="dovecot")
    lab = MailLab(root, ports, province=users[0], citizen=users[1], cafile=cafile)
    (root / "dovecot.conf").write_text(_dovecot_conf(lab), encoding="utf-8")
    (root / "postfix" / "etc" / "main.cf").write_text(_postfix_main(lab), encoding="utf-8")
    (root / "postfix" / "etc" / "master.cf").write_text(
        _POSTFIX_MASTER.format(host=HOST, port=ports.smtp), encoding="utf-8"
    )
    lab.start_imap()
    started = False
    try:
        lab.start_smtp()
        started = True
    finally:
        if not started:
            lab.stop_imap()
    return lab


def _dovecot_conf(lab: MailLab) -> str:
    d = lab.dir
    return f"""# written by lab/mail.py: a private Dovecot for tests and the demo
base_dir = {d}/run
state_dir = {d}/state
instance_name = {lab.dovecot_instance}
log_path = {d}/log/dovecot.log
protocols = imap lmtp
listen = {HOST}
ssl = yes
ssl_cert = <{lab.cafile}
ssl_key = <{d}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
  default_fields = uid={MAIL_OWNER} gid=nogroup home={d}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {lab.ports.imap}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {lab.ports.imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {lab.ports.lmtp}
  }}
}}
service auth {{
  inet_listener {{
    address = {HOST}
    port = {lab.ports.auth}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
"""


def _postfix_main(lab: MailLab) -> str:
    d = lab.dir
    busy = f"inline:{{ {{ {lab.busy_address} = 450 4.2.1 Mailbox busy, try later }} }}"
    known = ", ".join(
        f"{{{a}=ok}}" for a in (lab.province.address, lab.citizen.address, lab.bounce_address)
    )
    return f"""# written by lab/mail.py: a private Postfix for tests and the demo
compatibility_level = 3.6
queue_directory = {d}/postfix/spool
data_directory = {d}/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = inline:{{ {known} }}
virtual_transport = lmtp:inet:{HOST}:{lab.ports.lmtp}
relay_domains =
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{HOST}:{lab.ports.auth}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = {lab.cafile}
smtpd_tls_key_file = {d}/tls/key.pem
smtpd_relay_restrictions = permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access {busy}, permit
maillog_file = {d}/log/postfix.log
maillog_file_prefixes = {d}/log
message_size_limit = 52428800
biff = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
alias_maps =
alias_database =
"""


#: chroot off everywhere (a chroot would need copies of /etc files inside the spool)
_POSTFIX_MASTER = """# written by lab/mail.py
{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
