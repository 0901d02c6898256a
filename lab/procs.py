"""Background processes the lab starts, tracked by pid files.

A pid file alone is not proof: after a reboot or a crash the number may belong to someone
else. Every check therefore also reads ``/proc/PID/cmdline`` and requires the markers the
caller expects (for Asterisk, the path of our own ``asterisk.conf``), so ``lab down`` never
signals a process it did not start.

Processes are started double-forked (through ``sh -c 'cmd & echo $!'``): they belong to
init, not to the Python process that started them, so they outlive ``tongdai lab up`` and
leave no zombie or ``ResourceWarning`` behind in the test process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tongdai.errors import TongdaiError

#: how long ``sh`` may take to fork the detached child and print its pid
_SPAWN_TIMEOUT = 10.0


class LabError(TongdaiError):
    """The lab could not be set up, started or stopped; the message says what to do."""


def _spawn_script() -> str:
    # "$@" & forks once; sh prints the child's pid and exits, so init adopts the child.
    return '"$@" </dev/null >>"$TONGDAI_LOG" 2>&1 &\necho $!\n'


def start_detached(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    keep_fds: Sequence[int] = (),
) -> int:
    """Start ``argv`` in its own session, output appended to ``log_file``; return its pid.

    ``keep_fds`` are inherited by the started process (the lab lock, ``lab.lock``); every other
    descriptor of ours is closed in it."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env["TONGDAI_LOG"] = str(log_file)
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", _spawn_script(), "sh", *argv],
            env=full_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_SPAWN_TIMEOUT,
            start_new_session=True,
            check=True,
            pass_fds=tuple(keep_fds),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        pid = int(result.stdout.strip())
    except ValueError:
        raise LabError(f"cannot start {argv[0]}: no pid from sh ({result.stdout!r})") from None
    write_pid(pid_file, pid)
    return pid


def write_pid(pid_file: Path, pid: int) -> None:
    """Write ``pid`` atomically (a reader never sees a half-written file)."""
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    tmp.replace(pid_file)


def read_pid(pid_file: Path) -> int | None:
    """The pid stored in ``pid_file``, or None if the file is absent or not a pid."""
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def cmdline(pid: int) -> list[str] | None:
    """The command line of a live (not zombie) process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 3 (after the parenthesised name, which may itself hold spaces) is the state.
    state = stat[stat.rfind(")") + 2 :][:1]
    if state in ("Z", "X") or not raw:
        return None
    return raw.rstrip(b"\0").decode("utf-8", errors="replace").split("\0")


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie. Used while a process starts: during
    ``execve`` its ``/proc/PID/cmdline`` can read empty, so ``matches`` may briefly say no."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def matches(pid: int, markers: Sequence[str]) -> bool:
    """True if ``pid`` is alive and each marker appears in one of its arguments."""
    args = cmdline(pid)
    if args is None:
        return False
    return all(any(marker in arg for arg in args) for marker in markers)


def running_pid(pid_file: Path, markers: Sequence[str]) -> int | None:
    """The pid from ``pid_file`` if that process is alive and really ours, else None."""
    pid = read_pid(pid_file)
    if pid is None or not matches(pid, markers):
        return None
    return pid


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _reap(pid: int) -> None:
    # Only our own children need reaping (tests may start processes directly).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _gone(pid: int, markers: Sequence[str]) -> bool:
    _reap(pid)
    return not matches(pid, markers)


def stop(pid_file: Path, markers: Sequence[str], timeout: float = 10.0) -> bool:
    """Stop the process of ``pid_file``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns True if a process of ours was running. The pid file is removed either way; a pid
    that now belongs to another program is left alone.
    """
    pid = running_pid(pid_file, markers)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if wait_until(lambda: _gone(pid, markers), wait):
            break
    else:
        raise LabError(f"process {pid} ({pid_file.name}) survived SIGKILL")
    pid_file.unlink(missing_ok=True)
    return True


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" if absent), for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
