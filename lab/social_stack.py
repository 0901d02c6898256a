"""The message channels' real stack on loopback: the engine process (``tongdai serve``) with
``[channels.zalo]`` and ``[channels.facebook]`` pointed at the fake Zalo and fake Graph API,
each running as its own process. Used by the end-to-end tests (``tests/e2e/test_social_e2e.py``)
and ``tongdai bench webhooks``.

    stack = SocialStack.start(workdir, db_url)   # fakes, secrets (mode 600), tongdai.toml, engine
    stack.zalo_headers(body)  /  stack.facebook_headers(body)    signed as the platforms sign
    stack.kill_engine()  /  stack.start_engine()                 SIGKILL mid-stream, restart
    stack.stop()                                                 every process it started

Every port is chosen free on 127.0.0.1 (the FastAGI server on port 0, no AMI): nothing here
takes a fixed port. Processes are this stack's own children, stopped by their pid only.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import httpx

from lab.fake_graph import sign_facebook
from lab.fake_zalo import sign_zalo
from lab.procs import LabError
from tongdai.settings import PROJECT_HOME

T = TypeVar("T")

START_TIMEOUT_S = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, check: Callable[[], T | None], timeout_s: float, every_s: float = 0.05
) -> T:
    """The first non-None (and non-False) answer of ``check``; ``LabError`` naming ``what``
    after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() >= deadline:
            raise LabError(f"{what}: not within {timeout_s:g} s")
        time.sleep(every_s)


@dataclass(frozen=True)
class PlatformSecrets:
    """What the platforms and the engine share (random per stack)."""

    zalo_app_id: str = "app-1022"
    oa_id: str = "oa-1022"
    oa_secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    zalo_app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    access_token: str = "at-0"
    refresh_token: str = "rt-0"
    fb_app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    verify_token: str = field(default_factory=lambda: secrets.token_hex(8))
    page_token: str = field(default_factory=lambda: "page-" + secrets.token_hex(8))


class FakeProcess:
    """``python -m lab.fake_zalo|lab.fake_graph --port 0 ...``: started, its URL read from its
    first line."""

    def __init__(self, module: str, args: list[str], log: Path) -> None:
        self.module = module
        self.log = log
        with log.open("ab") as err:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, "--port", "0", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=PROJECT_HOME,
            )
        assert self.proc.stdout is not None
        self.url = self._first_line(self.proc.stdout).removeprefix("listening on ").strip()

    def _first_line(self, out: IO[bytes]) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out], [], [], 0.2)
            if ready:
                line = out.readline().decode()
                if line.startswith("listening on "):
                    return line
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        self.stop()
        raise LabError(f"{self.module} did not start; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _secret(path: Path, value: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return str(path)


def write_config(
    workdir: Path,
    db_url: str,
    web_port: int,
    zalo_url: str,
    graph_url: str,
    s: PlatformSecrets,
    extra: str = "",
) -> Path:
    """A ``tongdai.toml`` for the engine in ``workdir`` (secrets in ``workdir/secrets``)."""
    sec = workdir / "secrets"
    files = {
        "oa_secret_key_file": _secret(sec / "zalo_oa_secret_key", s.oa_secret_key),
        "app_secret_file": _secret(sec / "zalo_app_secret", s.zalo_app_secret),
        "access_token_file": _secret(sec / "zalo_access_token", s.access_token),
        "refresh_token_file": _secret(sec / "zalo_refresh_token", s.refresh_token),
        "fb_app_secret_file": _secret(sec / "fb_app_secret", s.fb_app_secret),
        "verify_token_file": _secret(sec / "fb_verify_token", s.verify_token),
        "page_token_file": _secret(sec / "fb_page_token", s.page_token),
    }
    q = json.dumps  # a TOML basic string is a JSON string
    text = f"""
[database]
url = {q(db_url)}
state_dir = {q(str(workdir / "state"))}
[fastagi]
port = 0
[ami]
secret_file = {q(str(workdir / "no-ami.secret"))}
[lab]
var_dir = {q(str(workdir / "var"))}
[acd]
queue_log = {q(str(workdir / "queue_log"))}
[web]
host = "127.0.0.1"
port = {web_port}
[channels]
attachments_dir = {q(str(workdir / "attachments"))}
[channels.zalo]
app_id = {q(s.zalo_app_id)}
oa_id = {q(s.oa_id)}
oa_secret_key_file = {q(files["oa_secret_key_file"])}
app_secret_file = {q(files["app_secret_file"])}
access_token_file = {q(files["access_token_file"])}
refresh_token_file = {q(files["refresh_token_file"])}
api_base = {q(zalo_url)}
oauth_base = {q(zalo_url)}
http_timeout_s = 5
[channels.facebook]
app_secret_file = {q(files["fb_app_secret_file"])}
verify_token_file = {q(files["verify_token_file"])}
page_token_file = {q(files["page_token_file"])}
graph_base = {q(graph_url)}
http_timeout_s = 5
"""
    config = workdir / "tongdai.toml"
    config.write_text(text + extra, encoding="utf-8")
    return config


@dataclass
class SocialStack:
    workdir: Path
    db_url: str
    secrets: PlatformSecrets
    zalo: FakeProcess
    graph: FakeProcess
    config: Path
    web_port: int
    engine: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @classmethod
    def start(
        cls, workdir: Path, db_url: str, *, extra_toml: str = "", engine: bool = True
    ) -> SocialStack:
        """The fakes, the settings and (``engine``) the engine, ready for webhooks."""
        workdir.mkdir(parents=True, exist_ok=True)
        s = PlatformSecrets()
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        zalo_args = [
            *("--app-id", s.zalo_app_id, "--app-secret", s.zalo_app_secret),
            *("--access-token", s.access_token, "--refresh-token", s.refresh_token),
        ]
        zalo = FakeProcess("lab.fake_zalo", zalo_args, logs / "fake_zalo.log")
        try:
            graph = FakeProcess(
                "lab.fake_graph", ["--page-token", s.page_token], logs / "fake_graph.log"
            )
        except LabError:
            zalo.stop()
            raise
        port = free_port()
        config = write_config(workdir, db_url, port, zalo.url, graph.url, s, extra_toml)
        stack = cls(workdir, db_url, s, zalo, graph, config, port)
        if engine:
            try:
                stack.start_engine()
            except BaseException:
                stack.stop()
                raise
        return stack

    # -- the engine --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def engine_log(self) -> Path:
        return self.workdir / "logs" / "engine.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.engine_log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _answers(self) -> bool | None:
        try:
            r = httpx.get(f"{self.url}/webhooks/facebook", timeout=1.0)
        except httpx.HTTPError:
            return None
        return r.status_code == 403  # the subscription check without a token: we are up

    def start_engine(self, timeout_s: float = START_TIMEOUT_S) -> int:
        """``python -m hotline.cli --config ... serve``; its pid once the webhooks answer."""
        if self.engine is not None and self.engine.poll() is None:
            raise LabError("the engine is already running")
        self.starts += 1
        with self.engine_log.open("ab") as log:
            log.write(f"=== social stack: engine start {self.starts} ===\n".encode())
            log.flush()
            self.engine = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "--config", str(self.config), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_HOME,
            )
        proc = self.engine

        def up() -> bool | None:
            if proc.poll() is not None:
                raise LabError(f"the engine exited at start:\n{self.log_tail()}")
            return self._answers()

        try:
            wait_for("the engine's webhooks", up, timeout_s)
        except LabError:
            self.stop_engine()
            raise
        return proc.pid

    def kill_engine(self) -> None:
        """SIGKILL: no shutdown, as in a crash or a power cut."""
        if self.engine is not None and self.engine.poll() is None:
            self.engine.send_signal(signal.SIGKILL)
            self.engine.wait(10)

    def stop_engine(self, timeout_s: float = 15.0) -> None:
        if self.engine is None or self.engine.poll() is not None:
            return
        self.engine.terminate()
        try:
            self.engine.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_engine()

    def stop(self) -> None:
        self.stop_engine()
        self.zalo.stop()
        self.graph.stop()

    # -- signing -----------------------------------------------------------------------------

    def zalo_headers(self, body: bytes, *, secret: str | None = None) -> dict[str, str]:
        """Headers Zalo would send with ``body`` (signed with ``secret`` when given)."""
        ts = str(json.loads(body)["timestamp"])
        return sign_zalo(body, self.secrets.zalo_app_id, ts, secret or self.secrets.oa_secret_key)

    def facebook_headers(self, body: bytes, *, secret: str | None = None) -> dict[str, str]:
        return sign_facebook(body, secret or self.secrets.fb_app_secret)

    # -- the fakes' records ------------------------------------------------------------------

    def zalo_sent(self) -> list[dict[str, object]]:
        """The customer-service messages the fake Zalo received, oldest first."""
        got = httpx.get(f"{self.zalo.url}/_requests", timeout=5).json()
        return [r for r in got if r["path"] == "/v3.0/oa/message/cs"]

    def graph_sent(self) -> list[dict[str, object]]:
        got = httpx.get(f"{self.graph.url}/_requests", timeout=5).json()
        return [r for r in got if str(r["path"]).endswith("/me/messages")]

    def set_response(self, fake: FakeProcess, spec: dict[str, object]) -> None:
        r = httpx.post(f"{fake.url}/_set_response", json=spec, timeout=5)
        r.raise_for_status()
