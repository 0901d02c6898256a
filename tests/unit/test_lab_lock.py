"""The machine-wide lab lock (``lab.lock``), with real processes: a second taker waits and is
told who holds it, the lock outlives its taker in the processes that inherited it, and a dead
holder never leaves a stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import instance, lock, procs
from lab.procs import LabError
from tongdai.settings import LabSettings, Settings

#: a child that takes the lock at argv[1], says so, and then waits for its stdin to close
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lab import lock
    held = lock.acquire(Path(sys.argv[1]), what="test lab", command="holder for the test")
    print("held", flush=True)
    sys.stdin.read()
    """
)
#: a child that takes the lock, hands it to a detached `sleep`, prints the sleeper's pid, exits
HANDS_OVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lab import lock, procs
    held = lock.acquire(Path(sys.argv[1]), what="test lab", command="tongdai lab up (test)")
    pid = procs.start_detached(
        ["sleep", "60"], pid_file=Path(sys.argv[2]), log_file=Path(sys.argv[3]),
        keep_fds=(held.fd,),
    )
    print(pid, flush=True)
    """
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "tongdai-lab-7.lock"


@pytest.fixture
def holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "held"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        child.stdin.close()
        child.stdout.close()


def test_given_another_process_holds_the_lock_when_taking_it_then_wait_names_the_holder(
    path: Path, holder: subprocess.Popen[str]
) -> None:
    said: list[str] = []
    with pytest.raises(LabError) as info:
        lock.acquire(path, what="test lab", timeout_s=1.2, say=said.append)
    assert len(said) == 1, said  # told once while the holder does not change
    for text in (said[0], str(info.value)):
        assert f"taken by pid {holder.pid} (holder for the test) since 20" in text
        assert str(path) in text
    assert said[0].startswith("waiting for test lab")
    assert "still in use after 1 s" in str(info.value)


def test_given_the_holder_ends_when_waiting_then_the_lock_is_taken(
    path: Path, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdin is not None
    holder.stdin.close()  # the holder exits
    held = lock.acquire(path, what="test lab", timeout_s=10, say=lambda _: None)
    try:
        recorded = lock.read_holder(path)
        assert recorded is not None and recorded.pid == os.getpid()
    finally:
        lock.release(held)


def test_given_the_holder_is_killed_when_taking_the_lock_then_it_is_free_at_once(
    path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    said: list[str] = []
    held = lock.acquire(path, what="test lab", timeout_s=2, say=said.append)
    lock.release(held)
    assert said == []


def test_given_a_stale_record_of_a_dead_pid_when_taking_the_lock_then_taken_and_rewritten(
    path: Path,
) -> None:
    stale = {"pid": 999_999_999, "command": "tongdai lab up", "since": "2026-01-01 00:00:00"}
    path.write_text(json.dumps(stale) + "\n", encoding="utf-8")
    held = lock.acquire(path, what="test lab", timeout_s=1, say=lambda _: None)
    try:
        recorded = lock.read_holder(path)
        assert recorded is not None and recorded.pid == os.getpid()
        assert recorded.command != "tongdai lab up"
    finally:
        lock.release(held)


def test_given_a_taker_that_hands_the_lock_to_a_detached_process_then_held_until_that_ends(
    path: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleep.pid"
    done = subprocess.run(
        [sys.executable, "-c", HANDS_OVER, str(path), str(pid_file), str(tmp_path / "log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    sleeper = int(done.stdout.strip())
    try:
        # like `tongdai lab up`: the taker has exited, what it started still holds the lock
        with pytest.raises(LabError) as info:
            lock.acquire(path, what="test lab", timeout_s=0.6, say=lambda _: None)
        message = str(info.value)
        assert "(tongdai lab up (test), exited)" in message
        assert f"held now by pid {sleeper} (sleep 60)" in message
        assert lock.holders(path) == [sleeper]
    finally:
        assert procs.stop(pid_file, ["sleep"], timeout=5)
    held = lock.acquire(path, what="test lab", timeout_s=5, say=lambda _: None)
    lock.release(held)


def test_given_one_process_when_holding_twice_then_reentrant_and_released_after_the_outer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instance, "LOCK_DIR", tmp_path)
    settings = Settings(lab=LabSettings(instance=3))
    path = tmp_path / "tongdai-lab-3.lock"
    with lock.hold(settings, command="outer") as outer:
        with lock.hold(settings) as inner:
            assert inner is outer
            assert lock.held_fds(settings) == (outer.fd,)
        assert lock.held_fds(settings) == (outer.fd,)
        with pytest.raises(LabError):  # another descriptor (another lab) must wait
            lock.acquire(path, what="lab instance 3", timeout_s=0.2, say=lambda _: None)
    assert lock.held_fds(settings) == ()
    lock.release(lock.acquire(path, what="lab instance 3", timeout_s=1, say=lambda _: None))


def test_given_an_outer_flock_around_the_run_then_the_lab_lock_is_taken_and_the_outer_freed(
    path: Path, tmp_path: Path
) -> None:
    """CI and people wrap whole runs in ``flock /tmp/tongdai-lab.lock ...``: inside, the lab lock
    (another file) is taken without waiting, and what the lab leaves running (Asterisk, the
    engine) keeps only the lab lock, so the outer lock is free once the wrapped command ends."""
    outer = tmp_path / "tongdai-lab.lock"  # stands for /tmp/tongdai-lab.lock
    for n in range(10):
        assert instance.LabInstance.of(Settings(lab=LabSettings(instance=n))).lock_path != Path(
            "/tmp/tongdai-lab.lock"
        )
    pid_file = tmp_path / "sleep.pid"
    log = tmp_path / "log"
    hands_over = [sys.executable, "-c", HANDS_OVER, str(path), str(pid_file), str(log)]
    done = subprocess.run(
        ["flock", "--wait", "10", str(outer), *hands_over],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    sleeper = int(done.stdout.strip())
    try:
        assert lock.holders(path) == [sleeper]
        assert lock.holders(outer) == []  # the detached process did not inherit the outer lock
        free = subprocess.run(["flock", "--nonblock", str(outer), "true"], timeout=10)
        assert free.returncode == 0
    finally:
        assert procs.stop(pid_file, ["sleep"], timeout=5)
