"""appqueue.reconcile reads only the part of Asterisk's queue_log it needs: from a stored
checkpoint, or found by reading backwards from the end; rotation, truncation, a partial last
line and garbage lines are handled. Results must equal parsing the whole file."""

from __future__ import annotations

import io
import logging
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from appqueue import reconcile as rc
from appqueue.reconcile import (
    LogPosition,
    load_position,
    parse_queue_log,
    read_queue_log,
    reconcile,
)
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
E0 = int(T0.timestamp())


class Counting:
    """An opener whose files count the bytes they return."""

    def __init__(self) -> None:
        self.bytes_read = 0

    def __call__(self, path: Path) -> BinaryIO:
        counter = self

        class File(io.FileIO):
            def read(self, size: int | None = -1) -> bytes:
                b = super().read(-1 if size is None else size)
                counter.bytes_read += len(b)
                return b

        return File(path, "rb")


def call_lines(callid: str, at: int, *, answered: bool = True) -> list[tuple[int, str]]:
    """(epoch, line) of one queued call entering at ``at``."""
    lines = [(at, f"{at}|{callid}|chung|NONE|ENTERQUEUE||0905{callid[-3:]}|1")]
    if answered:
        lines.append((at + 2, f"{at + 2}|{callid}|chung|PJSIP/agent101|CONNECT|2|{callid}a|1"))
        lines.append((at + 9, f"{at + 9}|{callid}|chung|PJSIP/agent101|COMPLETEAGENT|2|7|1"))
    else:
        lines.append((at + 5, f"{at + 5}|{callid}|chung|NONE|ABANDON|1|1|5"))
    return lines


def log_text(first: int, count: int, step: int, *, tag: str = "c") -> str:
    """``count`` calls ``step`` seconds apart from epoch ``first``, lines in time order."""
    lines: list[tuple[int, str]] = []
    for i in range(count):
        lines += call_lines(f"{tag}{i:06d}", first + i * step, answered=i % 3 != 0)
    lines.sort(key=lambda x: x[0])
    return "".join(line + "\n" for _, line in lines)


def full_parse(path: Path, since: datetime) -> dict[str, rc.QueuedCall]:
    """The reference: every complete line of the file, parsed."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    complete = text[: text.rfind("\n") + 1] if "\n" in text else ""
    return parse_queue_log(complete.splitlines(), since)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny blocks, so lines straddle block boundaries everywhere."""
    monkeypatch.setattr(rc, "BLOCK", 37)
    monkeypatch.setattr(rc, "CHUNK", 53)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("minutes", [-10_000, 0, 30, 61, 119, 200, 10_000])
def test_without_a_stored_offset_the_start_is_found_backwards(tmp_path: Path, minutes: int) -> None:
    log = tmp_path / "queue_log"
    log.write_text(log_text(E0, 240, 30))  # two hours, a call every 30 s
    since = T0 + timedelta(minutes=minutes)
    got = read_queue_log(log, since)
    assert got is not None and got.how == "backwards"
    assert got.calls == full_parse(log, since)
    assert got.end == log.stat().st_size
    # the start is at a line start, with every line before it older than since - SLACK_S
    data = log.read_bytes()
    assert got.start == 0 or data[got.start - 1 : got.start] == b"\n"
    before = data[: got.start].decode().splitlines()
    assert all(int(x.split("|")[0]) < since.timestamp() - rc.SLACK_S for x in before)
    after = data[got.start :].decode().splitlines()
    assert not after or int(after[0].split("|")[0]) >= since.timestamp() - rc.SLACK_S


@pytest.mark.usefixtures("small_blocks")
def test_a_stored_offset_is_used_and_only_new_bytes_are_read(tmp_path: Path) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / "state" / rc.OFFSET_FILE
    log.write_text(log_text(E0, 240, 30))
    first = read_queue_log(log, T0, offset_file=pos)
    assert first is not None and first.start == 0
    stored = load_position(pos)
    assert stored is not None and stored.end == log.stat().st_size
    assert (stored.dev, stored.ino) == (log.stat().st_dev, log.stat().st_ino)
    old_size = log.stat().st_size
    with log.open("a") as f:  # two more hours are appended
        f.write(log_text(E0 + 7200, 240, 30, tag="n"))
    since = T0 + timedelta(hours=2)
    counting = Counting()
    second = read_queue_log(log, since, offset_file=pos, opener=counting)
    assert second is not None and second.how == "checkpoint"
    assert second.calls == full_parse(log, since)
    assert old_size - 2000 < second.start <= old_size  # at most a few lines before
    new_bytes = log.stat().st_size - old_size
    # the new part once, plus the checkpoint check, the last-line and head probes
    assert counting.bytes_read < new_bytes + 3000
    assert second.calls and all(c.startswith("n") for c in second.calls)


def test_a_second_read_with_nothing_new_reads_almost_nothing(tmp_path: Path) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    log.write_text(log_text(E0, 2000, 10))
    assert read_queue_log(log, T0, offset_file=pos) is not None
    counting = Counting()
    again = read_queue_log(log, T0 + timedelta(days=1), offset_file=pos, opener=counting)
    assert again is not None and again.calls == {} and again.how == "checkpoint"
    assert again.start == again.end == log.stat().st_size
    assert counting.bytes_read < rc.BLOCK + 200


def test_a_rotated_file_is_read_from_its_start(tmp_path: Path) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    log.write_text(log_text(E0, 500, 10))
    assert read_queue_log(log, T0 + timedelta(minutes=60), offset_file=pos) is not None
    # logrotate: the old file moves away, Asterisk opens a new one (another inode)
    os.rename(log, tmp_path / "queue_log.1")
    log.write_text(log_text(E0 + 6000, 30, 10, tag="r"))
    assert load_position(pos) is not None
    got = read_queue_log(log, T0 + timedelta(minutes=60), offset_file=pos)
    assert got is not None and got.how == "backwards-rotated" and got.start == 0
    assert sorted(got.calls) == [f"r{i:06d}" for i in range(30)]
    assert got.calls == full_parse(log, T0 + timedelta(minutes=60))


def test_a_truncated_file_is_read_from_its_start(tmp_path: Path) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    log.write_text(log_text(E0, 500, 10))
    ino = log.stat().st_ino
    assert read_queue_log(log, T0, offset_file=pos) is not None
    with log.open("r+") as f:  # copytruncate: same inode, shorter
        f.truncate(0)
        f.write(log_text(E0 + 6000, 5, 10, tag="t"))
    assert log.stat().st_ino == ino
    got = read_queue_log(log, T0, offset_file=pos)
    assert got is not None and got.how == "backwards-rotated" and got.start == 0
    assert sorted(got.calls) == [f"t{i:06d}" for i in range(5)]


def test_a_truncated_file_grown_past_the_old_end_is_still_recognised(tmp_path: Path) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    log.write_text(log_text(E0, 50, 10))
    assert read_queue_log(log, T0, offset_file=pos) is not None
    with log.open("r+") as f:  # same inode, larger than before, other lines
        f.truncate(0)
        f.write(log_text(E0 + 6000, 200, 10, tag="g"))
    got = read_queue_log(log, T0, offset_file=pos)
    assert got is not None and got.how == "backwards-rotated" and got.start == 0
    assert got.calls == full_parse(log, T0) and len(got.calls) == 200


@pytest.mark.usefixtures("small_blocks")
def test_a_partial_last_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    done = f"{E0}|p1|chung|NONE|ENTERQUEUE||0905111|1\n"
    partial = f"{E0 + 1}|p2|chung|NONE|ENTERQUEUE||0905"  # the writer is mid-line
    log.write_text(done + partial)
    got = read_queue_log(log, T0, offset_file=pos)
    assert got is not None
    assert list(got.calls) == ["p1"] and got.end == len(done)
    stored = load_position(pos)
    assert stored is not None and stored.end == len(done)
    with log.open("a") as f:
        f.write("222|1\n")  # the line is complete now
    got = read_queue_log(log, T0, offset_file=pos)
    assert got is not None and got.how == "checkpoint"
    assert sorted(got.calls) == ["p1", "p2"] and got.calls["p2"].caller == "0905222"
    assert got.end == log.stat().st_size


def test_a_file_that_is_one_partial_line_gives_nothing(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text(f"{E0}|p1|chung|NONE|ENTERQUEUE||09")
    got = read_queue_log(log, T0)
    assert got is not None and got.calls == {} and got.start == got.end == 0


@pytest.mark.usefixtures("small_blocks")
def test_garbage_lines_are_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "queue_log"
    good = log_text(E0, 20, 10)
    garbage = [
        b"garbage line",
        b"\xff\xfe\x00binary|||",
        "²|x|chung|NONE|ENTERQUEUE||1|1".encode(),  # a digit, not an ASCII one
        b"17|too|few",
        b"|no|time|at|all|",
    ]
    lines = good.encode().splitlines(keepends=True)
    mixed = b"".join(lines[:10]) + b"\n".join(garbage) + b"\n\n" + b"".join(lines[10:])
    log.write_bytes(mixed + b"garbage at the end\n")
    with caplog.at_level(logging.WARNING, logger="appqueue.reconcile"):
        got = read_queue_log(log, T0)
    assert got is not None and got.garbage == len(garbage) + 1
    assert got.calls == parse_queue_log(good.splitlines(), T0)
    assert "skipped 6 unreadable line(s)" in caplog.text
    assert "garbage line" in caplog.text


def test_the_backwards_search_passes_over_garbage(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    old = f"{E0 - 3600}|o1|chung|NONE|ENTERQUEUE||0905|1\n"
    new = f"{E0 + 5}|n1|chung|NONE|ENTERQUEUE||0906|1\n"
    log.write_text(old + "not|a|line\n" * 3 + new)
    got = read_queue_log(log, T0)
    assert got is not None
    assert got.start == len(old) and list(got.calls) == ["n1"] and got.garbage == 3


def test_an_unreadable_position_file_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    log.write_text(log_text(E0, 100, 10))
    pos.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="appqueue.reconcile"):
        got = read_queue_log(log, T0, offset_file=pos)
    assert got is not None and got.how == "backwards"
    assert got.calls == full_parse(log, T0)
    assert "ignoring unreadable queue_log position" in caplog.text
    assert load_position(pos) is not None  # rewritten


def test_a_missing_queue_log_reads_nothing_and_stores_nothing(tmp_path: Path) -> None:
    pos = tmp_path / rc.OFFSET_FILE
    assert read_queue_log(tmp_path / "queue_log", T0, offset_file=pos) is None
    assert not pos.exists()


def test_a_position_round_trips() -> None:
    p = LogPosition(1, 2, 300, b"17\x00|", ((1.5, 0), (1800.0, 120)))
    assert LogPosition.load(p.dump()) == p
    with pytest.raises(ValueError):
        LogPosition.load('{"version": 2}')
    with pytest.raises(ValueError):
        LogPosition.load('{"version": 1}')


def test_restarts_over_a_growing_file_always_equal_a_full_parse(tmp_path: Path) -> None:
    """Random appends (some ending mid-line) and random ``since`` moving forward, as engine
    restarts do; each read must equal parsing the whole file."""
    rnd = random.Random(1022)
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    at = E0
    pending = ""
    since = T0
    hows: set[str] = set()
    for step in range(40):
        lines: list[str] = []
        for _ in range(rnd.randint(0, 300)):
            at += rnd.choice([0, 0, 1, 3, 20, 400])
            lines.append(f"{at}|s{step}-{len(lines)}|chung|NONE|ENTERQUEUE||09{at % 97}|1\n")
            if rnd.random() < 0.02:
                lines.append("garbage\n")
        text = pending + "".join(lines)
        cut = len(text) - rnd.randint(0, 30) if text and rnd.random() < 0.3 else len(text)
        with log.open("a") as f:
            f.write(text[:cut])
        pending = text[cut:]
        since = max(since, datetime.fromtimestamp(at - rnd.randint(0, 4000), UTC))
        got = read_queue_log(log, since, offset_file=pos)
        assert got is not None
        assert got.calls == full_parse(log, since), f"step {step}"
        hows.add(got.how)
    assert "checkpoint" in hows and "backwards" in hows


def test_a_large_file_is_not_read_whole(tmp_path: Path) -> None:
    """~40 MB of queue_log over 10 days; the engine needs the last hours: only the tail is read."""
    log = tmp_path / "queue_log"
    day = 86400
    with log.open("w") as f:
        for d in range(10):
            f.write(log_text(E0 - (10 - d) * day, 40_000, 2, tag=f"d{d}-"))
        f.write(log_text(E0, 100, 10, tag="today"))
    size = log.stat().st_size
    assert size > 30_000_000
    counting = Counting()
    got = read_queue_log(log, T0, opener=counting)
    assert got is not None and sorted(got.calls) == [f"today{i:06d}" for i in range(100)]
    assert counting.bytes_read < 300_000, f"read {counting.bytes_read} of {size} bytes"
    assert got.start > size - 20_000


PROC_IO = Path("/proc/self/io")


def rchar() -> int:
    """Bytes this process has read (all read syscalls, page cache included)."""
    return next(int(x.split()[1]) for x in PROC_IO.read_text().splitlines() if "rchar" in x)


@pytest.mark.skipif(not PROC_IO.exists(), reason="needs Linux /proc/self/io")
async def test_reconcile_with_an_offset_file_reads_the_tail_only(tmp_path: Path) -> None:
    """The same through ``reconcile`` (the engine's entry point), bytes counted by the kernel:
    /proc/self/io ``rchar`` (every byte this process read)."""
    log, pos = tmp_path / "queue_log", tmp_path / rc.OFFSET_FILE
    with log.open("w") as f:
        for d in range(6):
            f.write(log_text(E0 - (6 - d) * 86400, 40_000, 2, tag=f"d{d}-"))
        f.write(log_text(E0 - 600, 20, 10, tag="v"))  # ended before since: not invented
        # queued before since, still talking at since: its open ticket is completed
        f.write(f"{E0 - 30}|w000001|chung|NONE|ENTERQUEUE||0905001|1\n")
        f.write(f"{E0 - 28}|w000001|chung|PJSIP/agent101|CONNECT|2|w1a|1\n")
        f.write(log_text(E0, 50, 10, tag="x"))
        f.write(f"{E0 + 20}|w000001|chung|PJSIP/agent101|COMPLETEAGENT|2|48|1\n")
    size = log.stat().st_size
    store = MemoryTicketStore()
    open_t = await store.open(channel="voice", caller="0905", uniqueid="w000001", started_at=T0)
    before = rchar()
    assert await reconcile(store, log, T0, context=timedelta(hours=1), offset_file=pos) == 51
    used = rchar() - before
    assert used < size // 20, f"read {used} of {size} bytes"
    got = await store.get(open_t.code)  # queued before since, completed from context lines
    assert got is not None and got.outcome == Outcome.ANSWERED
    assert await store.find_by_uniqueid("v000000") is None
    assert await store.find_by_uniqueid("x000049") is not None
    with log.open("a") as f:
        f.write(log_text(E0 + 900, 3, 10, tag="y"))
    before = rchar()
    # the next start: 3 new calls, and nothing before the checkpoint read
    later = T0 + timedelta(minutes=5)
    assert await reconcile(store, log, later, context=timedelta(hours=1), offset_file=pos) == 3
    assert rchar() - before < size // 20


def test_lines_a_little_out_of_time_order_are_still_read(tmp_path: Path) -> None:
    """Asterisk's threads stamp a line, then write it: a line may follow a later-stamped one."""
    log = tmp_path / "queue_log"
    log.write_text(
        f"{E0 - 3600}|a|chung|NONE|ENTERQUEUE||0901|1\n"
        f"{E0 + 5}|early|chung|NONE|ENTERQUEUE||0902|1\n"  # written before an older line
        f"{E0 - 10}|b|chung|NONE|ENTERQUEUE||0903|1\n"
        f"{E0 + 20}|c|chung|NONE|ENTERQUEUE||0904|1\n"
    )
    got = read_queue_log(log, T0)
    assert got is not None and sorted(got.calls) == ["c", "early"]
    assert got.calls == full_parse(log, T0)


async def test_calls_over_before_since_cost_no_store_lookup(tmp_path: Path) -> None:
    """A queue_log full of finished calls (benchmarks, a busy morning) inside the context
    window: no ticket look-up for any of them, only for the calls still open at ``since``."""
    log = tmp_path / "queue_log"
    log.write_text(log_text(E0 - 3000, 2000, 1, tag="old") + log_text(E0 + 5, 3, 10, tag="new"))

    class Looking(MemoryTicketStore):
        lookups = 0

        async def find_by_uniqueid(self, uniqueid: str) -> Any:
            Looking.lookups += 1
            return await super().find_by_uniqueid(uniqueid)

    store = Looking()
    assert await reconcile(store, log, T0, context=timedelta(hours=6)) == 3
    assert Looking.lookups == 3
