"""Our queue_log lines have Asterisk's format and read back with appqueue.reconcile's parser."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from test_acd_dispatch import make

from acd.config import CallbackConfig
from acd.dispatch import Dispatcher
from acd.queue_log import QueueLogWriter, format_line
from appqueue.reconcile import parse_queue_log
from tickets.model import Outcome


def flush(d: Dispatcher, qlog: QueueLogWriter) -> None:
    for e in d.drain_events():
        qlog.write(e)


def fields(path: Path) -> list[list[str]]:
    return [line.split("|") for line in path.read_text("utf-8").splitlines()]


def test_an_answered_and_an_abandoned_call_read_back_as_asterisk_would_write_them(
    tmp_path: Path,
) -> None:
    d, clock = make({"a1": {"thu_tuc": 1}}, max_calls=10)
    log_file = tmp_path / "log" / "queue_log"
    qlog = QueueLogWriter(log_file, d.cfg)
    d.agent_login("a1")
    d.call_arrived("1700000000.1", "thu_tuc", caller="0905123456")
    clock.t += 2
    d.call_arrived("1700000000.2", "thu_tuc", caller="0905999999")
    clock.t += 5
    d.assign()
    clock.t += 3
    d.answered("1700000000.1", peer="tongdai-acd-abc")
    clock.t += 40
    d.call_left("1700000000.2")
    clock.t += 20
    d.call_completed("1700000000.1", "agent")
    flush(d, qlog)

    rows = fields(log_file)
    assert [r[4] for r in rows] == [
        "AGENTLOGIN",
        "ADDMEMBER",
        "ENTERQUEUE",
        "ENTERQUEUE",
        "CONNECT",
        "ABANDON",
        "COMPLETEAGENT",
    ]
    assert rows[0] == ["1000", "NONE", "NONE", "a1", "AGENTLOGIN", "PJSIP/a1"]
    assert rows[2] == [
        "1000",
        "1700000000.1",
        "thu_tuc",
        "NONE",
        "ENTERQUEUE",
        "",
        "0905123456",
        "1",
    ]
    assert rows[3][5:] == ["", "0905999999", "2"]
    assert rows[4] == [
        "1010",
        "1700000000.1",
        "thu_tuc",
        "a1",
        "CONNECT",
        "10",
        "tongdai-acd-abc",
        "3",
    ]
    # position 1 when it left (the first caller was connected), entered at 2, waited 48 s
    assert rows[5] == ["1050", "1700000000.2", "thu_tuc", "NONE", "ABANDON", "1", "2", "48"]
    assert rows[6] == ["1070", "1700000000.1", "thu_tuc", "a1", "COMPLETEAGENT", "10", "60", "1"]

    calls = parse_queue_log(
        log_file.read_text("utf-8").splitlines(), datetime.fromtimestamp(0, UTC)
    )
    ok, gone = calls["1700000000.1"], calls["1700000000.2"]
    assert (ok.queue, ok.caller, ok.agent, ok.outcome) == (
        "thu_tuc",
        "0905123456",
        "a1",
        Outcome.ANSWERED,
    )
    assert ok.entered == datetime.fromtimestamp(1000, UTC)
    assert ok.answered == datetime.fromtimestamp(1010, UTC)
    assert ok.ended == datetime.fromtimestamp(1070, UTC)
    assert (gone.outcome, gone.ended) == (
        Outcome.ABANDONED_QUEUE,
        datetime.fromtimestamp(1050, UTC),
    )


def test_agent_events_ring_no_answer_and_auto_pause(tmp_path: Path) -> None:
    d, clock = make(
        {"a1": {"thu_tuc": 1, "chung": 1}}, queues={"thu_tuc": {"max_misses": 1}, "chung": {}}
    )
    qlog = QueueLogWriter(tmp_path / "queue_log", d.cfg)
    d.agent_login("a1")
    d.call_arrived("u1", "thu_tuc")
    d.assign()
    clock.t += 15
    d.ring_no_answer("u1")
    d.agent_unpause("a1")
    d.agent_pause("a1", "meal")
    clock.t += 600
    d.agent_unpause("a1")
    d.call_left("u1")
    clock.t += 60
    d.agent_logout("a1")
    flush(d, qlog)
    rows = [(r[1], r[2], r[3], r[4], *r[5:]) for r in fields(tmp_path / "queue_log")]
    assert rows == [
        ("NONE", "NONE", "a1", "AGENTLOGIN", "PJSIP/a1"),
        ("MANAGER", "thu_tuc", "a1", "ADDMEMBER", ""),
        ("MANAGER", "chung", "a1", "ADDMEMBER", ""),
        ("u1", "thu_tuc", "NONE", "ENTERQUEUE", "", "unknown", "1"),
        ("u1", "thu_tuc", "a1", "RINGNOANSWER", "15000"),
        ("NONE", "thu_tuc", "a1", "PAUSE", "missed_calls"),
        ("NONE", "chung", "a1", "PAUSE", "missed_calls"),
        ("NONE", "thu_tuc", "a1", "UNPAUSE", ""),
        ("NONE", "chung", "a1", "UNPAUSE", ""),
        ("NONE", "thu_tuc", "a1", "PAUSE", "meal"),
        ("NONE", "chung", "a1", "PAUSE", "meal"),
        ("NONE", "thu_tuc", "a1", "UNPAUSE", ""),
        ("NONE", "chung", "a1", "UNPAUSE", ""),
        ("u1", "thu_tuc", "NONE", "ABANDON", "1", "1", "615"),
        ("MANAGER", "thu_tuc", "a1", "REMOVEMEMBER", ""),
        ("MANAGER", "chung", "a1", "REMOVEMEMBER", ""),
        ("NONE", "NONE", "a1", "AGENTLOGOFF", "PJSIP/a1", "675"),
    ]


def test_callback_timeout_and_overflow_lines(tmp_path: Path) -> None:
    from acd.config import Overflow

    d, clock = make(
        {"a1": {"chung": 1}},
        queues={
            "thu_tuc": {"overflow": (Overflow(30, queue="chung"),)},
            "chung": {"max_wait_s": 100},
        },
        callback=CallbackConfig(key="5"),
    )
    qlog = QueueLogWriter(tmp_path / "queue_log")
    d.call_arrived("cb", "chung", caller="0905")
    d.call_arrived("ov", "thu_tuc", caller="0906")
    clock.t += 30
    d.request_callback("cb")
    d.tick()
    clock.t += 70
    d.tick()
    flush(d, qlog)
    rows = [(r[1], r[2], r[4], *r[5:]) for r in fields(tmp_path / "queue_log")]
    assert rows == [
        ("cb", "chung", "ENTERQUEUE", "", "0905", "1"),
        ("ov", "thu_tuc", "ENTERQUEUE", "", "0906", "1"),
        ("cb", "chung", "EXITWITHKEY", "5", "1", "1", "30"),
        ("ov", "thu_tuc", "EXITWITHTIMEOUT", "1", "1", "30"),
        ("ov", "chung", "ENTERQUEUE", "", "0906", "2"),
        ("ov", "chung", "EXITWITHTIMEOUT", "2", "2", "100"),
    ]


def test_fields_cannot_break_the_format_and_writers_do_not_interleave(tmp_path: Path) -> None:
    assert format_line(5.9, "u|1", "q", "", "ENTERQUEUE", "", "Lan\n|x") == (
        "5|u_1|q|NONE|ENTERQUEUE||Lan _x\n"
    )
    qlog = QueueLogWriter(tmp_path / "queue_log")

    def burst(n: int) -> None:
        for i in range(200):
            qlog.write_line(1000, f"t{n}-{i}", "chung", "NONE", "ENTERQUEUE", "", "x" * 300, "1")

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    rows = fields(tmp_path / "queue_log")
    assert len(rows) == 800 and all(len(r) == 8 and r[6] == "x" * 300 for r in rows)
