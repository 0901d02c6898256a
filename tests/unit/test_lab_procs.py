"""Pid-file handling of the lab: start detached, recognise our own process, stop it."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

from lab import procs

SLEEPER = "import signal, time\n{setup}\nprint('ready', flush=True)\ntime.sleep(60)  # {token}"


def _sleeper(token: str, ignore_term: bool = False) -> list[str]:
    setup = "signal.signal(signal.SIGTERM, signal.SIG_IGN)" if ignore_term else "pass"
    return [sys.executable, "-c", SLEEPER.format(setup=setup, token=token)]


@pytest.fixture
def token() -> str:
    return f"tongdai-test-{secrets.token_hex(6)}"


def test_given_a_command_when_started_detached_then_pid_file_names_a_running_process(
    tmp_path: Path, token: str
) -> None:
    pid_file, log_file = tmp_path / "x.pid", tmp_path / "x.log"
    pid = procs.start_detached(_sleeper(token), pid_file=pid_file, log_file=log_file)
    try:
        assert procs.read_pid(pid_file) == pid
        assert procs.running_pid(pid_file, [token]) == pid
        assert procs.running_pid(pid_file, [token, "no-such-marker"]) is None
        # double fork: the process is not our child, so no zombie is left in the test process
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    finally:
        assert procs.stop(pid_file, [token], timeout=5.0) is True
    assert procs.cmdline(pid) is None
    assert not pid_file.exists()


def test_given_output_when_started_detached_then_it_lands_in_the_log(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "x.pid", tmp_path / "x.log"
    pid = procs.start_detached(
        [sys.executable, "-c", "print('hello from the child')"],
        pid_file=pid_file,
        log_file=log_file,
    )
    assert procs.wait_until(lambda: procs.cmdline(pid) is None, 10.0)
    assert procs.wait_until(lambda: "hello from the child" in procs.log_tail(log_file), 5.0)


def test_given_a_pid_file_of_another_program_when_stopping_then_it_is_left_alone(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "stale.pid"
    procs.write_pid(pid_file, os.getpid())  # this pytest process: alive, but not "ours"
    assert procs.running_pid(pid_file, ["/usr/sbin/asterisk"]) is None
    assert procs.stop(pid_file, ["/usr/sbin/asterisk"]) is False
    assert not pid_file.exists()


@pytest.mark.parametrize("content", ["", "abc", "-5", "0", "12 34"])
def test_given_garbage_in_pid_file_when_read_then_none(tmp_path: Path, content: str) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(content)
    assert procs.read_pid(pid_file) is None


def test_given_no_pid_file_when_stopping_then_nothing_happens(tmp_path: Path) -> None:
    assert procs.read_pid(tmp_path / "absent.pid") is None
    assert procs.stop(tmp_path / "absent.pid", ["x"]) is False


def test_given_a_process_ignoring_sigterm_when_stopped_then_it_is_killed(
    tmp_path: Path, token: str
) -> None:
    pid_file, log_file = tmp_path / "x.pid", tmp_path / "x.log"
    pid = procs.start_detached(
        _sleeper(token, ignore_term=True), pid_file=pid_file, log_file=log_file
    )
    # "ready" is printed once SIGTERM is ignored
    assert procs.wait_until(lambda: "ready" in procs.log_tail(log_file), 10.0)
    assert procs.stop(pid_file, [token], timeout=0.5) is True
    assert procs.cmdline(pid) is None


def test_given_a_long_log_when_tail_then_last_lines_only(tmp_path: Path) -> None:
    log_file = tmp_path / "x.log"
    log_file.write_text("".join(f"line {i}\n" for i in range(100)))
    assert procs.log_tail(log_file, 3) == "line 97\nline 98\nline 99"
    assert procs.log_tail(tmp_path / "absent.log") == ""


def test_given_a_never_true_predicate_when_waiting_then_false_after_timeout() -> None:
    assert procs.wait_until(lambda: False, 0.2, interval=0.05) is False
    assert procs.wait_until(lambda: True, 0.2) is True
