"""``[channels.facebook]``: the Graph API defaults, and errors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.facebook import FacebookSettings
from tongdai.errors import ConfigError

FILE = "tongdai.toml"


def table(tmp_path: Path, **changes: object) -> dict[str, object]:
    for name in ("app_secret", "verify", "page"):
        (tmp_path / name).write_text(f"{name}-value")
        (tmp_path / name).chmod(0o640)
    values: dict[str, object] = {
        "app_secret_file": str(tmp_path / "app_secret"),
        "verify_token_file": str(tmp_path / "verify"),
        "page_token_file": str(tmp_path / "page"),
    }
    values.update(changes)
    return values


def test_given_the_three_secret_files_then_the_graph_defaults_apply(tmp_path: Path) -> None:
    cfg = FacebookSettings.from_table(FILE, table(tmp_path))
    assert (cfg.graph_base, cfg.graph_version, cfg.reply_window_h) == (
        "https://graph.facebook.com", "v23.0", 24.0
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"graph_version": "23"}, "graph_version", "v23.0"),
        ({"graph_base": "ftp://x"}, "graph_base", "http"),
        ({"page_token": "EAAB"}, "page_token", "unknown field"),
        ({"reply_window_h": -1}, "reply_window_h", "between 0 and 8760"),
        ({"page_token_file": str(Path("/nonexistent/page"))}, "page_token_file", "no such file"),
    ],
)
def test_given_a_wrong_field_then_the_error_names_it(
    tmp_path: Path, changes: dict[str, object], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        FacebookSettings.from_table(FILE, table(tmp_path, **changes))
    assert (info.value.file, info.value.field) == (FILE, f"channels.facebook.{field}")
    assert problem in info.value.problem


def test_given_a_world_readable_page_token_then_refused(tmp_path: Path) -> None:
    values = table(tmp_path)
    (tmp_path / "page").chmod(0o604)
    with pytest.raises(ConfigError, match="chmod 600"):
        FacebookSettings.from_table(FILE, values)


def test_given_a_directory_instead_of_a_file_then_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        FacebookSettings.from_table(FILE, table(tmp_path, verify_token_file=str(tmp_path / "dir")))
