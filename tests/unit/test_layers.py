"""The house's floors hold (``.importlinter``): the ground imports nothing above it, ``pbx``
no domain, domains never the web, the tools or the wiring."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tongdai.settings import PROJECT_HOME

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    exe = str(LINT) if LINT.exists() else shutil.which("lint-imports") or "lint-imports"
    return subprocess.run(
        [exe, "--config", str(config), "--no-cache"],
        cwd=PROJECT_HOME,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_layering_contract_is_kept() -> None:
    done = _lint(PROJECT_HOME / ".importlinter")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout


def test_a_broken_contract_is_reported(tmp_path: Path) -> None:
    """The check can fail: the web app does import the ticket domain."""
    config = tmp_path / "broken.ini"
    config.write_text(
        "[importlinter]\nroot_packages =\n    web\n    tickets\n"
        "[importlinter:contract:x]\nname = web must not import tickets\ntype = forbidden\n"
        "source_modules =\n    web\nforbidden_modules =\n    tickets\n",
        encoding="utf-8",
    )
    done = _lint(config)
    assert done.returncode != 0 and "BROKEN" in done.stdout
