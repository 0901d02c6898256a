"""``tongdai users ...``: accounts and tokens from the command line."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest

from accounts import cli
from accounts.store import AuthStore
from tongdai.db import make_engine
from tongdai.errors import TongdaiError


def run(config: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--config", str(config), *argv])
    rc: int = args.func(args)
    return rc


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tongdai.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "db.sqlite"}"\n')
    return path


def _login(config: Path, name: str, password: str) -> bool:
    url = config.read_text().split('"')[1]

    async def go() -> bool:
        engine = make_engine(url)
        try:
            return await AuthStore(engine).login(name, password) is not None
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_given_a_password_on_stdin_when_adding_a_user_then_it_can_log_in(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("mật-khẩu-rất-dài\n"))
    rc = run(config, "users", "add", "lan", "--role", "agent", "--agent", "agent101",
             "--phone", "PJSIP/agent101", "--password-stdin")  # fmt: skip
    assert rc == 0 and "added lan (Tổng đài viên)" in capsys.readouterr().out
    assert _login(config, "lan", "mật-khẩu-rất-dài")
    assert run(config, "users", "list") == 0
    listed = capsys.readouterr().out.split()
    assert listed == ["lan", "agent", "agent101", "PJSIP/agent101"]


def test_given_a_user_when_asking_a_token_then_a_new_one_is_printed_each_time(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "users", "add", "bot", "--role", "manager", "--no-password") == 0
    capsys.readouterr()
    run(config, "users", "token", "bot")
    run(config, "users", "token", "bot", "--label", "grafana")
    first, second = capsys.readouterr().out.split()
    assert first.startswith("tdk_") and second.startswith("tdk_") and first != second


def test_given_bad_input_then_one_clear_error(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(TongdaiError, match="password too short"):
        run(config, "users", "add", "lan", "--role", "agent", "--password-stdin")
    with pytest.raises(TongdaiError, match="no user 'ghost'"):
        run(config, "users", "token", "ghost")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, no --password-stdin
    with pytest.raises(TongdaiError, match="--password-stdin"):
        run(config, "users", "add", "minh", "--role", "agent")


def test_given_the_lab_when_creating_demo_accounts_then_each_role_is_printed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "users", "demo") == 0
    lines = capsys.readouterr().out.splitlines()
    roles = {line.split()[1] for line in lines}
    assert roles == {"agent", "supervisor", "manager", "admin", "agency"}
    name, _, password = lines[0].split()
    assert _login(config, name, password)
