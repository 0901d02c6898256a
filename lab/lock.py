"""The machine-wide lab lock: one lab per instance on this machine, whoever starts it.

Every way of starting a lab's Asterisk (``tongdai lab up``, ``tongdai bench acd``, the end-to-end
fixtures, and ``lab.asterisk.start`` itself for anyone who forgets) first takes
``/run/lock/tongdai-lab-<N>.lock`` (N = ``[lab] instance``, see ``lab.instance``) with flock(2).
A second lab of the same instance waits, saying who holds it::

    waiting for lab instance 0 (/run/lock/tongdai-lab-0.lock): taken by pid 4242
    (tongdai lab up) since 2026-12-06 09:14:03; held now by pid 4250 (/usr/sbin/asterisk -C ...)

Why it outlives ``lab up`` and is never stale: a flock belongs to an open file description, not
to a process. The processes the lab starts (Asterisk, the engine) inherit the descriptor
(``procs.start_detached(keep_fds=...)``), so the lock stays held after ``lab up`` returns, and the
kernel releases it when the last of them exits: ``lab down``, a crash or ``kill -9`` alike.
The JSON line in the file (pid, command, since) only names the taker for waiters; a line left
by a dead taker means nothing once the lock is free.

Not ``/tmp/tongdai-lab.lock``: people wrap whole commands in ``flock /tmp/tongdai-lab.lock``, and
a child locking that same file again would wait for its own parent forever.

Within one process the lock is re-entrant (``hold`` counts), so ``lab up`` can hold it around
``asterisk.start``, which holds it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lab.instance import LOCK_DIR, LabInstance
from lab.procs import LabError, cmdline
from tongdai.settings import Settings

#: seconds between two tries while another lab holds the lock
POLL_S = 0.5
#: seconds between two "still waiting" messages when the holders do not change
REMIND_S = 60.0


@dataclass(frozen=True)
class Holder:
    """What the taker wrote into the lock file."""

    pid: int
    command: str
    since: str


@dataclass
class LabLock:
    """A held lock: ``fd`` is what started processes inherit to keep it."""

    path: Path
    fd: int
    depth: int = 1


_held: dict[Path, LabLock] = {}


def _tell(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _own_command() -> str:
    args = cmdline(os.getpid()) or ["?"]
    return " ".join(args)[:200]


def read_holder(path: Path) -> Holder | None:
    """The taker recorded in the lock file, or None (absent, empty or not ours)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(raw["pid"]), str(raw["command"]), str(raw["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holders(path: Path) -> list[int]:
    """Live processes other than this one with the lock file open (from /proc/*/fd)."""
    target = os.path.realpath(path)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        found.append(int(proc.name))
                        break
    return sorted(found)


def _name(pid: int) -> str:
    args = cmdline(pid)
    return f"pid {pid} ({' '.join(args)[:100]})" if args else f"pid {pid} (exited)"


def describe(path: Path) -> str:
    """Who holds the lock at ``path``: the taker (pid, command, since) and who holds it now."""
    taker = read_holder(path)
    live = holders(path)
    parts = []
    if taker is not None:
        gone = "" if cmdline(taker.pid) else ", exited"
        parts.append(f"taken by pid {taker.pid} ({taker.command}{gone}) since {taker.since}")
    if live and (taker is None or live != [taker.pid]):
        parts.append("held now by " + ", ".join(_name(pid) for pid in live))
    return "; ".join(parts) or "holder unknown"


def _try(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _record(fd: int, command: str) -> None:
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    line = json.dumps({"pid": os.getpid(), "command": command, "since": since}) + "\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, line.encode("utf-8"), 0)


def acquire(
    path: Path,
    *,
    what: str,
    command: str | None = None,
    timeout_s: float | None = None,
    say: Callable[[str], None] = _tell,
) -> LabLock:
    """Take the lock at ``path``, waiting (and saying who holds it) while another has it.

    ``what`` names the lab in messages; ``command`` is recorded for the next waiter (default:
    this process's command line). Raises ``LabError`` after ``timeout_s`` (None: wait on).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    told, told_at = "", 0.0
    while True:
        fd = _try(path)
        if fd is not None:
            _record(fd, command or _own_command())
            return LabLock(path, fd)
        now = time.monotonic()
        if timeout_s is not None and now - started >= timeout_s:
            raise LabError(
                f"{what} is still in use after {timeout_s:.0f} s ({path}): {describe(path)}"
            )
        if not told or now - told_at >= REMIND_S:
            message = describe(path)
            if message != told or now - told_at >= REMIND_S:
                say(f"waiting for {what} ({path}): {message}")
                told, told_at = message, now
        time.sleep(POLL_S)


def release(lock: LabLock) -> None:
    """Close this process's descriptor; processes that inherited it keep the lock."""
    os.close(lock.fd)


@contextlib.contextmanager
def hold(
    settings: Settings,
    *,
    command: str | None = None,
    timeout_s: float | None = None,
    say: Callable[[str], None] = _tell,
) -> Iterator[LabLock]:
    """Hold the lab lock of ``settings``' instance for the block (re-entrant in a process)."""
    inst = LabInstance.of(settings)
    path = inst.lock_path
    mine = _held.get(path)
    if mine is not None:
        mine.depth += 1
        try:
            yield mine
        finally:
            mine.depth -= 1
        return
    lock = acquire(
        path,
        what=f"lab instance {inst.number}",
        command=command,
        timeout_s=timeout_s,
        say=say,
    )
    _held[path] = lock
    try:
        yield lock
    finally:
        del _held[path]
        release(lock)


def held_fds(settings: Settings) -> tuple[int, ...]:
    """The descriptor of the lab lock if this process holds it (for processes it starts)."""
    lock = _held.get(LabInstance.of(settings).lock_path)
    return () if lock is None else (lock.fd,)


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """A short machine-wide critical section (``/run/lock/tongdai-<name>.lock``): building the
    chroot or the prompts, which every lab instance shares."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / f"tongdai-{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
