"""deploy/tongdai.service: the hardening and restart options docs/deploy.md promises, and
``systemd-analyze verify`` finds nothing wrong with it (when systemd is on the machine; the
release's binary path is replaced by one that exists here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tongdai.settings import PROJECT_HOME

UNIT = PROJECT_HOME / "deploy" / "tongdai.service"


def _service() -> dict[str, list[str]]:
    """The [Service] section, every value of repeated keys kept."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_unit_is_hardened_restarts_and_watches_the_engine() -> None:
    s = _service()
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] == ["30s"]
    assert s["User"] == ["tongdai"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["ReadWritePaths"] == ["/var/lib/tongdai /var/spool/asterisk/tongdai"]
    assert s["LoadCredential"] == ["ami.secret:/etc/tongdai/credentials/ami.secret"]
    assert s["ExecStart"] == ["/opt/tongdai/.venv/bin/tongdai serve"]
    assert s["Environment"] == [
        "TONGDAI_HOME=/opt/tongdai",
        "TONGDAI_CONFIG=/etc/tongdai/tongdai.toml",
        "PYTHONUNBUFFERED=1",
    ]


def test_the_deploy_guide_names_the_credential_path_the_unit_makes() -> None:
    guide = (PROJECT_HOME / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert 'secret_file = "/run/credentials/tongdai.service/ami.secret"' in guide
    assert "systemd-analyze verify" in guide


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "tongdai.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/tongdai/.venv/bin/tongdai", "/bin/true"),
        encoding="utf-8",
    )
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""
