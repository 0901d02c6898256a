"""``tongdai lab status|down`` when nothing runs (no Asterisk needed)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from lab import cli
from lab.procs import write_pid


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tongdai")
    parser.add_argument("--config")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "tongdai.toml"
    path.write_text(
        f'[lab]\nchroot = "{tmp_path / "chroot"}"\nvar_dir = "{tmp_path / "var"}"\n'
        f'[ami]\nsecret_file = "{tmp_path / "var" / "ami.secret"}"\nport = 1\n'
    )
    return str(path)


def test_given_nothing_running_when_status_then_exit_3(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["--config", config, "lab", "status"]) == cli.EXIT_NOT_RUNNING
    out = capsys.readouterr().out
    assert "Asterisk: not running" in out
    assert "engine: not running" in out


def test_given_a_stale_pid_file_when_down_then_nothing_is_killed_and_files_cleared(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    # pid files naming this very test process: alive but not the lab's, so must survive
    write_pid(var / "asterisk.pid", os.getpid())
    write_pid(var / "engine.pid", os.getpid())
    assert _run(["--config", config, "lab", "down"]) == 0
    out = capsys.readouterr().out
    assert "engine: was not running" in out
    assert "Asterisk: was not running" in out
    assert not (var / "asterisk.pid").exists() and not (var / "engine.pid").exists()
