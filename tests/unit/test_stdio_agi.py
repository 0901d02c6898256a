"""The IVR as a plain AGI (``tongdai agi``), driven through pipes like Asterisk would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tongdai.settings import PROJECT_HOME

HEADERS = (
    "agi_request: tongdai-agi\nagi_channel: PJSIP/anonymous-00000009\n"
    "agi_uniqueid: 1790000000.9\nagi_callerid: 0905777888\n\n"
)


def test_given_a_caller_pressing_4_during_the_greeting_then_queue_dau_tu_and_a_ticket(
    tmp_path: Path,
) -> None:
    config = tmp_path / "tongdai.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/t.db"\nstate_dir = "{tmp_path}/s"\n'
        f'[ivr]\nmessages_dir = "{tmp_path}/msg"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline.cli", "--config", str(config), "agi"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_HOME,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(HEADERS)
    proc.stdin.flush()
    commands: list[str] = []
    try:
        for line in proc.stdout:
            command = line.strip()
            commands.append(command)
            if command.startswith("STREAM FILE") and "chao_mung" in command:
                reply = "200 result=52 endpos=800"  # the caller presses 4 (ASCII 52)
            elif command.startswith("STREAM FILE"):
                reply = "200 result=0 endpos=8000"
            else:
                reply = "200 result=1"
            proc.stdin.write(reply + "\n")
            proc.stdin.flush()
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert 'SET VARIABLE TONGDAI_QUEUE "dau_tu"' in commands
    assert commands[-1] == 'SET VARIABLE TONGDAI_ACTION "queue"'
    out = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", str(config), "tickets", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_HOME,
    ).stdout
    (ticket,) = [json.loads(line) for line in out.splitlines()]
    assert (ticket["caller"], ticket["queue"], ticket["category"]) == (
        "0905777888",
        "dau_tu",
        "dau_tu",
    )
    first = ticket["ivr_path"][0]
    assert (first["node"], first["key"]) == ("main", "4")
