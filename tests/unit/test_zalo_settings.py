"""``[channels.zalo]`` as the province writes it: defaults for the platform, and errors that name
the file and the field (missing, unknown, wrong type, a secret file missing or open to all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.zalo import ZaloSettings
from tongdai.errors import ConfigError

FILE = "/etc/tongdai/tongdai.toml"


def table(tmp_path: Path, **changes: object) -> dict[str, object]:
    for name in ("oa_secret", "app_secret", "access_token", "refresh_token"):
        path = tmp_path / name
        path.write_text(f"{name}-value\n")
        path.chmod(0o600)
    values: dict[str, object] = {
        "app_id": "4291763606161179100",
        "oa_id": "579745863508352884",
        "oa_secret_key_file": str(tmp_path / "oa_secret"),
        "app_secret_file": str(tmp_path / "app_secret"),
        "access_token_file": str(tmp_path / "access_token"),
        "refresh_token_file": str(tmp_path / "refresh_token"),
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def test_given_the_required_fields_then_the_platform_defaults_apply(tmp_path: Path) -> None:
    cfg = ZaloSettings.from_table(FILE, table(tmp_path))
    assert cfg.api_base == "https://openapi.zalo.me"
    assert cfg.oauth_base == "https://oauth.zaloapp.com"
    assert (cfg.replay_window_s, cfg.reply_window_h) == (300.0, 168.0)
    assert cfg.access_token_file == str(tmp_path / "access_token")


def test_given_fake_bases_and_windows_then_they_are_used(tmp_path: Path) -> None:
    cfg = ZaloSettings.from_table(
        FILE, table(tmp_path, api_base="http://127.0.0.1:9001/", replay_window_s=60,
                    reply_window_h=48, max_body_bytes=65536),
    )  # fmt: skip
    assert cfg.api_base == "http://127.0.0.1:9001"
    assert (cfg.replay_window_s, cfg.reply_window_h, cfg.max_body_bytes) == (60.0, 48.0, 65536)


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"app_id": None}, "app_id", "required"),
        ({"app_id": 42}, "app_id", "non-empty text"),
        ({"api_key": "x"}, "api_key", "unknown field"),
        ({"api_base": "openapi.zalo.me"}, "api_base", "http"),
        ({"replay_window_s": "5m"}, "replay_window_s", "number"),
        ({"replay_window_s": 0}, "replay_window_s", "between 1 and 86400"),
        ({"max_body_bytes": True}, "max_body_bytes", "number"),
        ({"max_body_bytes": 4096.5}, "max_body_bytes", "whole number"),
        ({"oa_secret_key_file": "/nonexistent/oa"}, "oa_secret_key_file", "no such file"),
    ],
)
def test_given_a_wrong_field_then_the_error_names_file_and_field(
    tmp_path: Path, changes: dict[str, object], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        ZaloSettings.from_table(FILE, table(tmp_path, **changes))
    assert info.value.file == FILE
    assert info.value.field == f"channels.zalo.{field}"
    assert problem in info.value.problem


def test_given_a_secret_file_every_user_may_read_then_refused_with_the_fix(tmp_path: Path) -> None:
    values = table(tmp_path)
    Path(str(values["app_secret_file"])).chmod(0o644)
    with pytest.raises(ConfigError, match=r"channels\.zalo\.app_secret_file: .*chmod 600"):
        ZaloSettings.from_table(FILE, values)


def test_given_not_a_table_then_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        ZaloSettings.from_table(FILE, "zalo")
