"""Every call leaves a ticket, even with the database away: ``SpoolingTicketStore``.

Normally every operation is delegated to the inner store (``tickets.sql``). When the inner store
raises ``StoreError``, the operation is appended instead to a journal, ``<spool_dir>/tickets.jsonl``
(one JSON object a line, fsync'd before the call returns, so a ticket is durable before the caller
hears its code), and ``replay`` later pushes the journal into the inner store, oldest first.

Spooled codes read ``1022-YYYYMMDD-0NNNNNN``: the last group has a leading zero and seven digits,
a shape ``tickets.codes.format_code`` never makes (six digits, or more without a leading zero), so
they can never collide with database codes. Digits and dashes only: ``ivr.say.ticket_code`` reads
them like any other code. The per-day sequence lives in ``<spool_dir>/counter.json``, written
before the ticket, so it survives restarts and replays (one engine process per spool dir).

Order: while the journal holds anything, every write goes to the journal (even if the database is
back) until replay has drained it, so each ticket's operations reach the database in order.

Replay is exactly once, even when interrupted: after each operation a ``done`` marker is appended
to the journal; an import skips a code that exists; updates only set fields (repeatable); a batch
of steps already in the ticket's path is not appended again. A drained journal is replaced by an
empty file in one ``os.replace``. An operation the database refuses (unknown code, bad value) is
moved to ``<spool_dir>/rejected.jsonl`` and logged, never retried forever.

Reads: a ticket opened in the journal and not yet replayed is served from the journal (``id`` 0);
other tickets come from the inner store with pending journal changes laid over them, and raise
``StoreError`` while it is away (``list`` too: a partial list would mislead).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tickets.changes import TIME_FIELDS, check_changes
from tickets.codes import PREFIX, code_day
from tickets.model import IvrStep, Outcome, Status, StatusChange, Ticket
from tickets.store import TicketStore
from tongdai.clock import as_utc, utcnow
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

JOURNAL = "tickets.jsonl"
COUNTER = "counter.json"
REJECTED = "rejected.jsonl"
#: a spooled code; the leading zero of the last group keeps it apart from database codes
SPOOL_CODE_RE = re.compile(r"^1022-[0-9]{8}-0[0-9]{6,}$")
#: day counters kept (a ticket's day is when it started: now, or a day ago for reconcile)
KEEP_DAYS = 60
#: who opened a ticket, as written in its first history entry (as in tickets.sql)
OPENED_BY = "system"
_R = TypeVar("_R")
Op = dict[str, Any]


class ImportingStore(TicketStore, Protocol):
    async def import_ticket(self, ticket: Ticket) -> bool:
        """Insert ``ticket`` under its code, with fields, path and history; False if it exists."""


def spool_code(day: str, seq: int) -> str:
    """The code of the ``seq``-th spooled ticket of ``day`` (``YYYYMMDD``)."""
    return f"{PREFIX}-{day}-0{seq:06d}"


# --- operations as JSON -----------------------------------------------------------------------
def _opened(op: Op) -> Ticket:
    at = datetime.fromisoformat(op["started_at"])
    return Ticket(
        id=0,
        code=op["code"],
        channel=op["channel"],
        caller=op["caller"],
        uniqueid=op["uniqueid"],
        started_at=at,
        history=[StatusChange(at=at, from_status=None, to_status=Status.NEW, by=OPENED_BY)],
    )


def _changes(op: Op) -> dict[str, Any]:
    raw: dict[str, Any] = op["changes"]
    return check_changes(
        {k: datetime.fromisoformat(v) if k in TIME_FIELDS and v else v for k, v in raw.items()}
    )


def _steps(op: Op) -> list[IvrStep]:
    return [
        IvrStep(
            at=datetime.fromisoformat(s["at"]), node=s["node"], key=s["key"], detail=s["detail"]
        )
        for s in op["steps"]
    ]


def _apply(ticket: Ticket, op: Op) -> None:
    if op["op"] == "update":
        for name, value in _changes(op).items():
            setattr(ticket, name, value)
    elif op["op"] == "steps":
        ticket.ivr_path.extend(_steps(op))


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Outcome) else value


def _contains(path: Sequence[IvrStep], steps: Sequence[IvrStep]) -> bool:
    """Whether ``steps`` occur in ``path`` as one run (a batch replayed before)."""
    n = len(steps)
    return any(list(path[i : i + n]) == list(steps) for i in range(len(path) - n + 1))


# --- files (blocking; called through asyncio.to_thread) --------------------------------------
def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_line(path: Path, record: Op) -> None:
    """Append one JSON line durably; a failed write is cut off so it cannot spoil the next."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    with path.open("ab") as f:
        end = f.tell()
        try:
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            f.truncate(end)
            raise


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(text.encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_journal(path: Path) -> tuple[list[Op], int]:
    """The operations and how many are replayed; a last line cut by a crash is dropped (its
    caller was never answered)."""
    if not path.exists():
        _write_atomic(path, "")
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end < len(raw):
        log.warning("%s: dropping an unfinished last line (%d bytes)", path, len(raw) - end)
        with path.open("r+b") as f:
            f.truncate(end)
            os.fsync(f.fileno())
    ops: list[Op] = []
    done = 0
    for n, line in enumerate(raw[:end].splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            log.error("%s:%d: unreadable line skipped", path, n)
            continue
        if record.get("op") == "done":
            done = max(done, int(record["n"]) + 1)
        else:
            ops.append(record)
    return ops, min(done, len(ops))


class SpoolingTicketStore:
    """``TicketStore`` over ``inner`` that spools to ``spool_dir`` while ``inner`` is away."""

    def __init__(
        self,
        inner: ImportingStore,
        spool_dir: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.inner = inner
        self.dir = spool_dir
        self._clock = clock
        self._journal = spool_dir / JOURNAL
        self._counter = spool_dir / COUNTER
        self._lock = asyncio.Lock()  # journal and counter files, self._ops
        self._replaying = asyncio.Lock()
        self._inflight = False  # the operation at self._done is being pushed
        try:
            spool_dir.mkdir(parents=True, exist_ok=True)
            self._ops, self._done = _read_journal(self._journal)
            counters = json.loads(self._counter.read_text()) if self._counter.exists() else {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"ticket spool {spool_dir}: {exc}") from exc
        self._counters: dict[str, int] = {str(k): int(v) for k, v in counters.items()}
        for op in self._ops:  # never below a code in the journal
            if op["op"] == "open" and SPOOL_CODE_RE.match(op["code"]):
                _, day, seq = op["code"].split("-")
                self._counters[day] = max(self._counters.get(day, 0), int(seq))

    @property
    def pending(self) -> int:
        """Operations in the journal not yet replayed."""
        return len(self._ops) - self._done

    async def _io(self, fn: Callable[..., _R], *args: Any) -> _R:
        try:
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise StoreError(f"ticket spool {self.dir}: {exc}") from exc

    async def _append(self, op: Op) -> None:
        """Journal ``op`` (hold ``self._lock``). It joins ``self._ops`` first, so its index stays
        its line number (what ``done`` markers count) even if the caller is cancelled meanwhile."""
        self._ops.append(op)
        try:
            await self._io(_append_line, self._journal, op)
        except StoreError:
            self._ops.pop()
            raise

    async def _spool(self, op: Op) -> None:
        op["spooled_at"] = as_utc(self._clock(), "clock").isoformat()
        async with self._lock:
            await self._append(op)

    # --- writes -------------------------------------------------------------------------------
    async def open(
        self, *, channel: str, caller: str | None, uniqueid: str | None, started_at: datetime
    ) -> Ticket:
        started_at = as_utc(started_at, "started_at")
        if not self.pending:
            try:
                return await self.inner.open(
                    channel=channel, caller=caller, uniqueid=uniqueid, started_at=started_at
                )
            except StoreError as exc:
                log.warning("%s; the ticket goes to the spool %s", exc, self._journal)
        day = code_day(started_at)
        async with self._lock:
            seq = self._counters.get(day, 0) + 1
            counters = dict(sorted({**self._counters, day: seq}.items())[-KEEP_DAYS:])
            await self._io(_write_atomic, self._counter, json.dumps(counters) + "\n")
            self._counters = counters
            op: Op = {
                "op": "open",
                "code": spool_code(day, seq),
                "channel": channel,
                "caller": caller,
                "uniqueid": uniqueid,
                "started_at": started_at.isoformat(),
                "spooled_at": as_utc(self._clock(), "clock").isoformat(),
            }
            await self._append(op)
        log.warning("ticket %s opened in the spool (database away)", op["code"])
        return _opened(op)

    async def update(self, code: str, **changes: Any) -> None:
        values = check_changes(changes)
        if not self.pending:
            try:
                await self.inner.update(code, **values)
                return
            except StoreError as exc:
                log.warning("%s; the update goes to the spool", exc)
        await self._spool(
            {"op": "update", "code": code, "changes": {k: _json(v) for k, v in values.items()}}
        )

    async def append_steps(self, code: str, steps: Sequence[IvrStep]) -> None:
        checked = [replace(s, at=as_utc(s.at, "step.at")) for s in steps]
        if not self.pending:
            try:
                await self.inner.append_steps(code, checked)
                return
            except StoreError as exc:
                log.warning("%s; the steps go to the spool", exc)
        if checked:
            rows = [
                {"at": s.at.isoformat(), "node": s.node, "key": s.key, "detail": s.detail}
                for s in checked
            ]
            await self._spool({"op": "steps", "code": code, "steps": rows})

    async def set_status(
        self, code: str, status: Status, *, by: str, note: str | None = None
    ) -> Ticket:
        if any(op["code"] == code for op in self._ops[self._done :]):
            raise StoreError(f"ticket {code} is waiting in the spool for the database; retry later")
        return await self.inner.set_status(code, status, by=by, note=note)

    # --- reads --------------------------------------------------------------------------------
    def _local(self) -> dict[str, Ticket]:
        """Tickets opened in the journal and not yet replayed, as the journal has them."""
        views: dict[str, Ticket] = {}
        for op in self._ops[self._done :]:
            if op["op"] == "open":
                views[op["code"]] = _opened(op)
            elif op["code"] in views:
                _apply(views[op["code"]], op)
        return views

    def _overlay(self, ticket: Ticket) -> Ticket:
        """A database ticket with the journal's pending changes (not the one being pushed)."""
        for op in self._ops[self._done + int(self._inflight) :]:
            if op["code"] == ticket.code:
                _apply(ticket, op)
        return ticket

    async def get(self, code: str) -> Ticket | None:
        local = self._local().get(code)
        if local is not None:
            return local
        found = await self.inner.get(code)
        return self._overlay(found) if found is not None else None

    async def find_by_uniqueid(self, uniqueid: str) -> Ticket | None:
        mine = [t for t in self._local().values() if t.uniqueid == uniqueid]
        if mine:
            return mine[-1]
        found = await self.inner.find_by_uniqueid(uniqueid)
        return self._overlay(found) if found is not None else None

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[Ticket]:
        stored = await self.inner.list(since=since, until=until, limit=limit)
        low = as_utc(since, "since") if since is not None else None
        high = as_utc(until, "until") if until is not None else None
        merged = {t.code: self._overlay(t) for t in stored}
        for code, t in self._local().items():
            if (low is None or t.started_at >= low) and (high is None or t.started_at < high):
                merged[code] = t
        chosen = sorted(merged.values(), key=lambda t: (t.started_at, t.id))
        return chosen[:limit] if limit is not None else chosen

    async def close(self) -> None:
        await self.inner.close()

    # --- replay -------------------------------------------------------------------------------
    async def replay(self) -> int:
        """Push the journal into the inner store in order and empty it; the number of operations
        pushed. ``StoreError`` if the inner store fails (progress is kept: call again later)."""
        async with self._replaying:
            count = 0
            while True:
                async with self._lock:
                    if self._done == len(self._ops):
                        if self._ops:
                            await self._io(_write_atomic, self._journal, "")
                            self._ops, self._done = [], 0
                            log.info("ticket spool %s replayed and emptied", self._journal)
                        return count
                    op = self._ops[self._done]
                self._inflight = True
                try:
                    await self._push(op)
                    self._done += 1
                finally:
                    self._inflight = False
                async with self._lock:
                    await self._io(_append_line, self._journal, {"op": "done", "n": self._done - 1})
                count += 1

    async def _push(self, op: Op) -> None:
        kind, code = op["op"], op["code"]
        try:
            if kind == "open":
                ticket = _opened(op)
                if not await self.inner.import_ticket(ticket):
                    there = await self.inner.get(code)
                    if there is None or (there.started_at, there.uniqueid) != (
                        ticket.started_at,
                        ticket.uniqueid,
                    ):
                        raise ValueError(f"code {code} is taken by another ticket")
            elif kind == "update":
                await self.inner.update(code, **_changes(op))
            elif kind == "steps":
                steps = _steps(op)
                there = await self.inner.get(code)
                if there is None:
                    raise KeyError(code)
                if not _contains(there.ivr_path, steps):
                    await self.inner.append_steps(code, steps)
            else:
                raise ValueError(f"unknown operation {kind!r}")
        except (KeyError, ValueError) as exc:
            reason = f"unknown ticket {code}" if isinstance(exc, KeyError) else str(exc)
            log.error(
                "database refused spooled %s of %s (%s): kept in %s", kind, code, reason, REJECTED
            )
            await self._io(_append_line, self.dir / REJECTED, {**op, "reason": reason})

    async def run_replayer(self, interval_s: float = 5.0) -> None:
        """Replay every ``interval_s`` while the journal holds anything (own it in a TaskGroup).
        Failures are logged; only cancellation ends it."""
        interval = max(interval_s, 0.01)
        away = False
        while True:
            if self.pending:
                try:
                    n = await self.replay()
                    log.info("replayed %d spooled ticket operations", n)
                    away = False
                except StoreError as exc:
                    if not away:
                        log.warning("spool replay: database still away: %s", exc)
                    away = True
                except Exception:
                    log.exception("spool replay failed")
            await asyncio.sleep(interval)
