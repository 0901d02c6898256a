"""The lab end to end: real Asterisk 22 in the chroot, AMI, SIPp calls to 1022, clean stop.

No engine runs (``--no-engine`` semantics). The FastAGI URL points at a port of this test:
closed (the engine is "unreachable": after the rejoin tries, the dialplan's safety net must
still queue the caller in "chung") or served by a stub that answers like the engine (sets
TONGDAI_ACTION/TONGDAI_QUEUE). Nobody answers at the agents' address (the instance's agents
port), so SIPp hangs up after a few seconds. The lab runs on this test process's lab instance,
its lab lock held for each test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import asterisk, lock, procs
from lab.ami_ready import AmiProbe
from lab.chroot import ensure_chroot
from lab.procs import LabError
from tongdai.settings import PROJECT_HOME, Settings, load_settings

pytestmark = pytest.mark.e2e

SCENARIO = PROJECT_HOME / "tests" / "sipp" / "lab_smoke_uac.xml"
BAD_LOG_LINES = ("Unable to load", "declined to load", "Error loading module", "No timing module")


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class StubEngine:
    """A FastAGI server that sets channel variables like the engine does, then ends the AGI."""

    def __init__(self, port: int, variables: dict[str, str]) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.variables = variables
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            with conn, conn.makefile("rwb") as io:
                conn.settimeout(10.0)
                env = b""
                while not env.endswith(b"\n\n"):
                    line = io.readline()
                    if not line:
                        break
                    env += line
                self.requests.append(env.decode())
                for name, value in self.variables.items():
                    io.write(f"SET VARIABLE {name} {value}\n".encode())
                    io.flush()
                    io.readline()  # "200 result=1"

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=5.0)


@pytest.fixture
def lab(tmp_path: Path, lab_settings: Settings) -> Iterator[Settings]:
    """The lab's Asterisk settings on this process's instance, with pid files, secret and
    FastAGI port of this test."""
    if os.geteuid() != 0:
        pytest.skip("the lab (chroot, bind mount) needs root")
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (apt-get install sip-tester)")
    config = tmp_path / "tongdai.toml"
    config.write_text(
        f'[lab]\ninstance = {lab_settings.lab.instance}\nvar_dir = "{tmp_path}/var"\n'
        f'[ami]\nsecret_file = "{tmp_path}/var/ami.secret"\n'
        f"[fastagi]\nport = {_free_port(socket.SOCK_STREAM)}\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    ensure_chroot(settings.lab.chroot)
    with lock.hold(settings, command=f"pytest test_lab (pid {os.getpid()})", timeout_s=900):
        try:
            asterisk.check_ports_free(settings)
        except LabError as exc:
            pytest.fail(f"the lab's ports are taken by a program outside the lab lock: {exc}")
        try:
            yield settings
        finally:
            asterisk.stop(settings)


def _call_1022(settings: Settings, tmp_path: Path) -> str:
    """One SIPp call to 1022 from a fresh calling number (returned): in the queue 4 s, hang up."""
    caller = "09" + "".join(secrets.choice("0123456789") for _ in range(8))
    errors = tmp_path / "sipp_err.log"
    sipp = subprocess.run(
        [
            "sipp", f"127.0.0.1:{settings.lab.sip_port}", "-sf", str(SCENARIO), "-s", "1022",
            "-key", "caller", caller, "-m", "1", "-i", "127.0.0.1",
            "-p", str(_free_port(socket.SOCK_DGRAM)), "-mp", str(_free_port(socket.SOCK_DGRAM)),
            "-nostdin", "-timeout", "30s",
            "-timeout_error", "-trace_err", "-error_file", str(errors),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=45,
    )  # fmt: skip
    detail = errors.read_text()[-2000:] if errors.exists() else sipp.stdout[-2000:]
    assert sipp.returncode == 0, f"SIPp call failed (exit {sipp.returncode}): {detail}"
    return caller


def _queue_events(settings: Settings, caller: str) -> dict[str, list[str]]:
    """queue_log events of the call(s) from ``caller``, by queue."""
    path = Path(settings.lab.queue_log)
    text = path.read_text() if path.exists() else ""  # Asterisk creates it at the first event
    rows = [line.split("|") for line in text.splitlines()]
    rows = [r for r in rows if len(r) > 4]
    calls = {r[1] for r in rows if r[4] == "ENTERQUEUE" and caller in r}
    events: dict[str, list[str]] = {}
    for r in rows:
        if r[1] in calls:
            events.setdefault(r[2], []).append(r[4])
    return events


def _wait_abandon(settings: Settings, caller: str, queue: str) -> list[str]:
    def done() -> bool:
        return "ABANDON" in _queue_events(settings, caller).get(queue, [])

    assert procs.wait_until(done, 10.0), _queue_events(settings, caller)
    return _queue_events(settings, caller)[queue]


def test_given_the_lab_when_started_then_ami_works_and_stop_cleans_up(lab: Settings) -> None:
    pid = asterisk.start(lab)
    paths = asterisk.LabPaths.of(lab)
    assert procs.running_pid(paths.pid_file, asterisk.markers(lab)) == pid
    assert asterisk.is_mounted(paths.recordings_mount)
    assert asterisk.start(lab) == pid  # idempotent: the running one is reused
    assert asterisk.status(lab) == asterisk.AsteriskStatus(pid, True, True)

    with AmiProbe(lab.ami.host, lab.ami.port, timeout=5.0) as ami:
        ami.login(lab.ami.username, asterisk.ami_secret(lab))
        ami.wait_fully_booted(5.0)
        assert ami.command("core show version").startswith("Asterisk 22.")
        modules = ami.command("module show")
    for module in ("app_queue.so", "res_agi.so", "chan_pjsip.so", "res_timing_timerfd.so"):
        assert module in modules
    assert "chung has 0 calls" in asterisk.rx(lab, "queue show chung")
    log = paths.log_file.read_text()
    assert "Asterisk Ready." in log
    assert not [line for line in log.splitlines() if any(bad in line for bad in BAD_LOG_LINES)]

    assert asterisk.stop(lab) is True
    assert procs.cmdline(pid) is None
    assert not paths.pid_file.exists()
    assert not asterisk.is_mounted(paths.recordings_mount)
    assert asterisk.status(lab) == asterisk.AsteriskStatus(None, False, False)


def test_given_no_engine_when_1022_is_called_then_after_the_rejoin_tries_it_waits_in_chung(
    lab: Settings, tmp_path: Path
) -> None:
    asterisk.start(lab)
    # one try ([tongdai-rejoin] asks a missing engine 30 times, a second apart, by default)
    asterisk.rx(lab, "dialplan set global TONGDAI_REJOIN_TRIES 1")
    caller = _call_1022(lab, tmp_path)
    events = _wait_abandon(lab, caller, "chung")
    assert events[0] == "ENTERQUEUE" and events[-1] == "ABANDON"


@pytest.mark.parametrize(
    ("queue", "expected"), [("thu_tuc", "thu_tuc"), ("khong_co_hang_doi", "chung")]
)
def test_given_the_engine_picks_a_queue_when_1022_is_called_then_the_caller_waits_there(
    lab: Settings, tmp_path: Path, queue: str, expected: str
) -> None:
    stub = StubEngine(lab.fastagi.port, {"TONGDAI_ACTION": "queue", "TONGDAI_QUEUE": queue})
    try:
        asterisk.start(lab)
        caller = _call_1022(lab, tmp_path)
        events = _wait_abandon(lab, caller, expected)
    finally:
        stub.close()
    assert events[0] == "ENTERQUEUE"
    assert list(_queue_events(lab, caller)) == [expected]
    assert len(stub.requests) == 1
    assert "agi_network_script: ivr" in stub.requests[0]
    assert f"agi_callerid: {caller}" in stub.requests[0]
