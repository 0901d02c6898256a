"""Rebuilds what the engine missed from Asterisk's queue_log, so every call leaves a ticket.

When the engine is down, the dialplan still sends callers to the general queue (the IVR's
FastAGI fails, ``AGISTATUS=FAILURE``), and nobody hears the AMI events of calls already queued.
Asterisk keeps writing its queue_log (``epoch|callid|queue|agent|EVENT|data...``), so at start
the engine reads it back: a call with no ticket gets one (``fallback`` in its path), and a
queued ticket left open is completed from ENTERQUEUE / CONNECT / ABANDON / EXIT* / COMPLETE*.

Only the part of the file that matters is read. queue_log is append-only and in time order
(each line starts with its epoch second), and the shared lab's grows to hundreds of MB, so:

- with ``offset_file`` (``queue_log.offset`` next to the watermark in the state folder), the
  engine remembers the file's identity (device, inode, first bytes), the end of the last
  complete line it read, and checkpoints ``(T, O)``: "lines stamped T or later start at byte O"
  (one per 5 minutes of log read, the read's start and its end). A start seeks to the latest
  checkpoint at or before the time it needs;
- without a usable checkpoint (first start, or the file was rotated or truncated: another
  inode, smaller than the stored end, or other first bytes), the start is found by reading
  blocks backwards from the end until a line older than the time needed. A rotated or truncated
  file is therefore read from its start (all of its lines are new);
- a last line without its newline is being written: it is not read (the next start will);
- unreadable lines are skipped, counted and logged.

Lines are read from ``SLACK_S`` seconds before the time needed (threads may stamp lines a
little out of order); the parser still ignores lines older than that time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from appqueue.fallback import QUEUE_LOG_NO_NUMBER, known_number, open_fallback_ticket
from tickets.model import Outcome
from tickets.store import TicketStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

FINAL = {
    "ABANDON",
    "EXITWITHTIMEOUT",
    "EXITEMPTY",
    "EXITWITHKEY",
    "COMPLETECALLER",
    "COMPLETEAGENT",
}

#: the name of the position file in the engine's state folder (next to the watermark)
OFFSET_FILE = "queue_log.offset"
#: how far out of time order queue_log lines may be
SLACK_S = 60
#: block size when reading backwards, and chunk size when reading forwards
BLOCK = 64 * 1024
CHUNK = 1024 * 1024
#: one checkpoint per this many seconds of log, at most MAX_CHECKPOINTS kept (~3.5 days)
BUCKET_S = 300
MAX_CHECKPOINTS = 1000
#: how many first bytes of the file identify it
HEAD_BYTES = 64
#: how many unreadable lines are quoted in the log
GARBAGE_SAMPLES = 3


@dataclass
class QueuedCall:
    callid: str
    queue: str = ""
    caller: str | None = None
    entered: datetime | None = None
    answered: datetime | None = None
    agent: str | None = None
    ended: datetime | None = None
    outcome: Outcome | None = None
    events: list[str] = field(default_factory=list)


class QueueLogParser:
    """Queue calls by callid, fed queue_log lines one at a time (in file order)."""

    def __init__(self, since: datetime) -> None:
        self.floor = since.timestamp()
        self.calls: dict[str, QueuedCall] = {}

    def feed(self, line: str) -> bool:
        """Take one line (lines before ``since`` and blank lines are ignored); False if the line
        is not a queue_log line (fewer than 5 fields, or no epoch second first)."""
        parts = line.rstrip("\n").split("|")
        if parts == [""]:
            return True
        if len(parts) < 5 or not (parts[0].isascii() and parts[0].isdigit()):
            return False
        if int(parts[0]) < self.floor:
            return True
        at = datetime.fromtimestamp(int(parts[0]), UTC)
        callid, queue, agent, event, data = parts[1], parts[2], parts[3], parts[4], parts[5:]
        if callid in ("", "NONE"):
            return True
        c = self.calls.setdefault(callid, QueuedCall(callid))
        c.events.append(event)
        if event == "ENTERQUEUE":
            c.queue, c.entered = queue, at
            c.caller = (data[1] if len(data) > 1 else "") or None
        elif event == "CONNECT":
            c.answered, c.agent, c.outcome = at, agent.split("/", 1)[-1], Outcome.ANSWERED
        elif event in FINAL:
            c.ended = at
            if c.answered is None:
                c.outcome = Outcome.ABANDONED_QUEUE
        return True


def parse_queue_log(lines: Iterable[str], since: datetime) -> dict[str, QueuedCall]:
    """Queue calls by callid from queue_log lines at or after ``since`` (bad lines skipped).

    ``since`` should reach back past the longest queue wait, so a call's ENTERQUEUE is seen."""
    parser = QueueLogParser(since)
    for line in lines:
        parser.feed(line)
    return parser.calls


@dataclass(frozen=True)
class LogPosition:
    """What the engine remembers of the queue_log between starts (``OFFSET_FILE``)."""

    dev: int
    ino: int
    #: the end of the last complete line read (a smaller file was truncated)
    end: int
    #: the file's first bytes (up to HEAD_BYTES): another file under the same inode differs
    head: bytes
    #: ``(T, O)``: lines stamped at or after epoch T start at or after byte O
    checkpoints: tuple[tuple[float, int], ...]

    def dump(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "dev": self.dev,
                "ino": self.ino,
                "end": self.end,
                "head": self.head.hex(),
                "checkpoints": [list(c) for c in self.checkpoints],
            }
        )

    @classmethod
    def load(cls, text: str) -> LogPosition:
        """Parse ``dump``'s text; ValueError if it is not one."""
        try:
            d = json.loads(text)
            if d.get("version") != 1:
                raise ValueError(f"unknown version {d.get('version')!r}")
            cps = tuple((float(t), int(o)) for t, o in d["checkpoints"])
            return cls(int(d["dev"]), int(d["ino"]), int(d["end"]), bytes.fromhex(d["head"]), cps)
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(str(exc)) from exc


def load_position(path: Path) -> LogPosition | None:
    """The stored position, or None when there is none or it cannot be read (logged)."""
    try:
        return LogPosition.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable queue_log position %s: %s", path, exc)
        return None


def save_position(path: Path, position: LogPosition) -> None:
    """Write atomically (a crash leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(position.dump(), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class LogRead:
    """What one read of the queue_log found."""

    calls: dict[str, QueuedCall]
    #: the bytes parsed: [start, end); a partial last line starts at ``end``
    start: int
    end: int
    size: int
    #: how ``start`` was found: "checkpoint", "backwards" or "backwards-rotated"
    how: str
    garbage: int
    position: LogPosition


def _open(path: Path) -> BinaryIO:
    return open(path, "rb", buffering=0)  # closed by read_queue_log


def _read_at(f: BinaryIO, pos: int, n: int) -> bytes:
    f.seek(pos)
    parts: list[bytes] = []
    while n > 0:
        b = f.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _stamp(buf: bytes, i: int, j: int) -> int | None:
    """The epoch second of the line ``buf[i:j]``, or None if it is not a queue_log line (as
    ``QueueLogParser.feed`` judges: five fields or more, the first one digits)."""
    bar = buf.find(b"|", i, min(i + 21, j))
    if bar <= i or buf.count(b"|", bar, j) < 4:
        return None
    head = buf[i:bar]
    return int(head) if head.isdigit() else None


def complete_end(f: BinaryIO, size: int) -> int:
    """The end of the last complete line (just after its newline), or 0."""
    pos = size
    while pos > 0:
        n = min(BLOCK, pos)
        pos -= n
        nl = _read_at(f, pos, n).rfind(b"\n")
        if nl >= 0:
            return pos + nl + 1
    return 0


def find_start(f: BinaryIO, floor: float, end: int) -> int:
    """The offset just after the last line stamped before ``floor`` in ``[0, end)`` (``end`` at
    a line start), found by reading blocks backwards from ``end``; 0 when there is none.
    Unreadable lines are passed over."""
    pos = end
    buf = b""
    hi = 0  # buf[:hi] is not examined yet; buf covers [pos, pos + len(buf))
    while True:
        while hi > 0:
            nl = buf.rfind(b"\n", 0, hi - 1)  # the newline before the line ending at hi
            if nl < 0 and pos > 0:
                break  # that line may begin in the block before
            t = _stamp(buf, nl + 1, hi)
            if t is not None and t < floor:
                return pos + hi
            hi = nl + 1
        if pos == 0:
            return 0
        n = min(BLOCK, pos)
        pos -= n
        buf = _read_at(f, pos, n) + buf[:hi]
        hi = len(buf)


def _at_line_start(f: BinaryIO, offset: int, end: int) -> bool:
    return offset == 0 or (0 < offset <= end and _read_at(f, offset - 1, 1) == b"\n")


def _choose_start(
    f: BinaryIO, stored: LogPosition | None, st: os.stat_result, end: int, floor: float
) -> tuple[int, str]:
    want = floor - SLACK_S
    if stored is not None:
        same = (
            (st.st_dev, st.st_ino) == (stored.dev, stored.ino)
            and end >= stored.end
            and _read_at(f, 0, len(stored.head)) == stored.head
        )
        usable = [o for t, o in stored.checkpoints if t <= want]
        best = max(usable, default=None)
        if same and best is not None and _at_line_start(f, best, end):
            return best, "checkpoint"
        if same:
            later = min((o for _, o in stored.checkpoints), default=end)
            limit = later if _at_line_start(f, later, end) else end
            return find_start(f, want, limit), "backwards"
        log.info("queue_log was rotated or truncated since the last read: reading it again")
        return find_start(f, want, end), "backwards-rotated"
    return find_start(f, want, end), "backwards"


def read_queue_log(
    path: Path,
    since: datetime,
    *,
    offset_file: Path | None = None,
    opener: Callable[[Path], BinaryIO] = _open,
) -> LogRead | None:
    """Parse the queue_log lines stamped at or after ``since`` without reading the whole file
    (see the module's docstring); None when there is no file. With ``offset_file``, the
    position is read from it and the new one written to it."""
    stored = load_position(offset_file) if offset_file is not None else None
    floor = since.timestamp()
    try:
        f = opener(path)
    except FileNotFoundError:
        return None
    with closing(f):
        st = os.fstat(f.fileno())
        end = complete_end(f, st.st_size)
        start, how = _choose_start(f, stored, st, end, floor)
        parser = QueueLogParser(since)
        checkpoints: list[tuple[float, int]] = [(floor - SLACK_S, start)]
        garbage: list[tuple[int, bytes]] = []
        bucket = -1
        last: int | None = None
        off = start  # the offset of the next line
        rest = b""
        read_to = start
        while read_to < end:
            chunk = _read_at(f, read_to, min(CHUNK, end - read_to))
            if not chunk:
                break  # truncated while we read
            read_to += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for raw in lines:
                t = _stamp(raw, 0, len(raw))
                if t is not None:
                    last = t if last is None else max(last, t)
                    if t // BUCKET_S > bucket:
                        bucket = t // BUCKET_S
                        cp = (max(bucket * BUCKET_S, floor - SLACK_S), off)
                        if cp != checkpoints[-1]:
                            checkpoints.append(cp)
                if not parser.feed(raw.decode("utf-8", errors="replace")):
                    garbage.append((off, raw))
                off += len(raw) + 1
        end = off  # == end unless the file shrank under us
        head = _read_at(f, 0, min(HEAD_BYTES, end))
    if last is not None:
        checkpoints.append((last + 1, end))
    if garbage:
        samples = ", ".join(f"byte {o}: {r[:80]!r}" for o, r in garbage[:GARBAGE_SAMPLES])
        log.warning("queue_log %s: skipped %d unreadable line(s) (%s)", path, len(garbage), samples)
    if st.st_size > end:
        log.debug("queue_log %s: last line not complete yet (%d bytes)", path, st.st_size - end)
    if stored is not None and how != "backwards-rotated":
        checkpoints = [c for c in stored.checkpoints if c[1] < start] + checkpoints
    position = LogPosition(st.st_dev, st.st_ino, end, head, tuple(checkpoints[-MAX_CHECKPOINTS:]))
    if offset_file is not None:
        try:
            save_position(offset_file, position)
        except OSError as exc:
            log.warning("could not save the queue_log position to %s: %s", offset_file, exc)
    return LogRead(parser.calls, start, end, st.st_size, how, len(garbage), position)


async def reconcile(
    tickets: TicketStore,
    queue_log: Path,
    since: datetime,
    *,
    context: timedelta = timedelta(hours=6),
    offset_file: Path | None = None,
) -> int:
    """Create tickets for calls that entered a queue at or after ``since`` and have none, and
    complete open tickets from the queue_log; returns how many tickets changed. Lines from
    ``context`` before ``since`` are read too, to find the start of calls still waiting then.
    ``offset_file`` (``OFFSET_FILE`` in the state folder) remembers where to start next time."""
    read = await asyncio.to_thread(
        read_queue_log, queue_log, since - context, offset_file=offset_file
    )
    if read is None:
        return 0
    log.debug(
        "queue_log %s: read bytes %d-%d of %d (%s)",
        queue_log,
        read.start,
        read.end,
        read.size,
        read.how,
    )
    changed = 0
    for c in read.calls.values():
        if c.entered is None:
            continue
        if c.ended is not None and c.ended < since:
            # over before this engine's watch began: the previous watch saw its end (live or
            # in its own catch-up). No store look-up: a log full of old calls (benchmarks,
            # a busy day) would cost one query each at every start
            continue
        try:
            changed += await _apply(tickets, c, since)
        except StoreError as exc:
            log.error("reconcile %s: %s", c.callid, exc)
    if changed:
        log.info("reconciled %d ticket(s) from %s", changed, queue_log)
    return changed


async def _apply(tickets: TicketStore, c: QueuedCall, since: datetime) -> int:
    assert c.entered is not None
    ticket = await tickets.find_by_uniqueid(c.callid)
    if ticket is None and c.entered < since:
        return 0  # before this engine's watch began: not ours to invent
    if ticket is None:
        ticket = await open_fallback_ticket(
            tickets,
            uniqueid=c.callid,
            caller=known_number(c.caller, QUEUE_LOG_NO_NUMBER),
            started_at=c.entered,
        )
    elif ticket.ended_at is not None:
        return 0
    changes: dict[str, object] = {"queue": c.queue, "queued_at": ticket.queued_at or c.entered}
    if c.answered is not None:
        changes.update(answered_at=c.answered, agent=c.agent)
    if c.ended is not None:
        changes.update(ended_at=c.ended, outcome=c.outcome)
    await tickets.update(ticket.code, **changes)
    return 1
