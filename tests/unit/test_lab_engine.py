"""Starting and stopping the engine process, with a stand-in engine (no Asterisk needed)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from lab import engine, procs
from lab.procs import LabError
from tongdai.settings import FastAgiSettings, LabSettings, Settings

# A stand-in for `python -m hotline.cli serve`: the comment carries the markers the lab checks.
FAKE_ENGINE = """
import socket, sys, time
print("fake engine starting", flush=True)
if sys.argv[1] == "crash":
    sys.exit("boom: database unreachable")
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)
# hotline.cli serve
"""


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        lab=LabSettings(var_dir=str(tmp_path / "var")),
        fastagi=FastAgiSettings(port=_free_tcp_port()),
    )


def _fake(monkeypatch: pytest.MonkeyPatch, arg: str) -> None:
    monkeypatch.setattr(
        engine, "engine_argv", lambda config: [sys.executable, "-c", FAKE_ENGINE, arg]
    )


def test_given_a_listening_socket_when_checked_then_listening_until_closed() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    assert engine.tcp_listening("127.0.0.1", port) is True
    server.close()
    assert engine.tcp_listening("127.0.0.1", port) is False


def test_given_a_config_file_when_building_argv_then_passed_absolute(tmp_path: Path) -> None:
    argv = engine.engine_argv("tongdai.toml")
    assert argv[0] == sys.executable
    assert argv[1:3] == ["-m", "hotline.cli"]
    assert argv[3] == "--config" and Path(argv[4]).is_absolute()
    assert argv[-1] == "serve"
    assert engine.engine_argv(None) == [sys.executable, "-m", "hotline.cli", "serve"]


def test_given_an_engine_when_started_then_waits_for_fastagi_and_stops_by_pid(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake(monkeypatch, str(settings.fastagi.port))
    pid = engine.start_engine(settings, None, timeout=15.0)
    try:
        assert engine.tcp_listening("127.0.0.1", settings.fastagi.port)
        assert engine.running_pid(settings) == pid
        assert engine.start_engine(settings, None) == pid  # already running: reused
    finally:
        assert engine.stop_engine(settings) is True
    assert procs.cmdline(pid) is None
    assert engine.running_pid(settings) is None


def test_given_an_engine_that_crashes_when_started_then_error_shows_its_log(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake(monkeypatch, "crash")
    with pytest.raises(LabError, match="boom: database unreachable"):
        engine.start_engine(settings, None, timeout=15.0)
    assert not engine.pid_file(settings).exists()


def test_given_the_port_taken_by_someone_else_when_starting_then_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake(monkeypatch, str(settings.fastagi.port))
    with (
        socket.create_server(("127.0.0.1", settings.fastagi.port)),
        pytest.raises(LabError, match="already listens"),
    ):
        engine.start_engine(settings, None)
    assert not engine.pid_file(settings).exists()
