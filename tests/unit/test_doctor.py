"""``tongdai doctor`` says what is wrong with a deployment and what to fix."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from pathlib import Path

import pytest

from hotline.doctor import FAIL, OK, WARN, _doctor, diagnose
from tongdai.settings import load_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, fastagi_port: int, **extra: str) -> Path:
    secret = tmp / "ami.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o644)  # readable by others: a warning
    zalo_key = tmp / "zalo.key"
    body = (
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp}/d.db"\n'
        f'[ami]\nport = {_free_port()}\nsecret_file = "{secret}"\n'
        f"[fastagi]\nport = {fastagi_port}\n[web]\nenabled = false\n"
        f'[ivr]\nsounds_dir = "{tmp}/sounds"\nmessages_dir = "{tmp}/msg"\n'
        f'[channels.zalo]\noa_secret_key_file = "{zalo_key}"\n'
    )
    path = tmp / "t.toml"
    path.write_text(body, encoding="utf-8")
    return path


async def test_given_a_half_set_up_deployment_then_each_problem_is_named(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        checks = {c.name: c for c in await diagnose(load_settings(_config(tmp_path, port)))}
    finally:
        server.close()
        await server.wait_closed()
    assert checks["database"].status == WARN and "empty" in checks["database"].detail
    assert (checks["ami"].status == FAIL and "refuse" in checks["ami"].detail.lower()) or (
        checks["ami"].status == FAIL
    )
    assert checks["fastagi"].status == OK
    assert checks["secret ami"].status == WARN and "chmod 600" in checks["secret ami"].fix
    assert checks["secret zalo.oa_secret_key_file"].status == FAIL
    assert checks["prompts"].status == FAIL and checks["prompts"].fix == "tongdai prompts build"
    assert checks["disk recordings"].status in (OK, WARN)


def test_a_broken_settings_file_is_one_failure_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nport = 'x'\n", encoding="utf-8")
    assert _doctor(argparse.Namespace(config=str(bad), json=True)) == 1
    out = json.loads(capsys.readouterr().out)
    assert out[0]["status"] == FAIL and "web.port" in out[0]["detail"]
