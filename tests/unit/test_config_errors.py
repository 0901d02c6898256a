"""Broken configuration files get an error naming the file and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.menu import check_prompts, load_menu
from ivr.prompts import load_catalogue
from ivr.schedule import load_schedule
from tongdai.errors import ConfigError
from tongdai.settings import PROJECT_HOME, load_settings

GOOD = (PROJECT_HOME / "ivr/menu_1022.toml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "menu.toml") -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def test_the_shipped_menu_is_valid_and_every_prompt_is_in_the_catalogue() -> None:
    menu = load_menu(PROJECT_HOME / "ivr/menu_1022.toml")
    catalogue = load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml")
    assert check_prompts(menu, set(catalogue)) == []
    assert set(menu.nodes["main"].options) == set("123456780")


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (('"4" = "q_dau_tu"', '"4" = "nowhere"'), "nodes.main.options.4", "unknown node"),
        (('type = "dossier"', 'type = "teleport"'), "nodes.tra_cuu.type", "unknown node type"),
        (('start = "main"', 'start = "nope"'), "menu.start", "unknown node"),
        (("max_failures = 3", "max_failures = 0"), "menu.max_failures", "between"),
        (("max_failures = 3", 'max_failures = "three"'), "menu.max_failures", "number"),
        (
            ('"0" = "q_chung"', '"0" = "q_chung"\n"9" = "q_chung"'),
            "nodes.main.options.9",
            "reserved",
        ),
        (('"0" = "q_chung"', '"10" = "q_chung"'), "nodes.main.options.10", "single phone keys"),
        (
            ('queue = "dau_tu"', 'queue = "dau_tu"\ncolour = "red"'),
            "nodes.q_dau_tu.colour",
            "not a",
        ),
        (('prompts = ["menu_chinh"]', 'prompts = ["Menu Chinh"]'), "nodes.main.prompts", "list of"),
        (('agent = "q_tra_cuu"', 'agent = "main"'), "nodes.tra_cuu.agent", "queue node"),
        (('message_node = "ghi_am"', 'message_node = "main"'), "menu.message_node", "record"),
        (("timeout_s = 6", "timeout_s = 600"), "nodes.main.timeout_s", "between"),
    ],
)
def test_given_a_broken_menu_then_the_error_names_file_and_field(
    tmp_path: Path, change: tuple[str, str], field: str, problem: str
) -> None:
    assert change[0] in GOOD
    f = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as err:
        load_menu(f)
    assert err.value.file == str(f)
    assert err.value.field == field
    assert problem in err.value.problem


def test_given_invalid_toml_or_no_file_then_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_menu(write(tmp_path, "[menu\nstart="))
    with pytest.raises(ConfigError, match="file not found"):
        load_menu(tmp_path / "missing.toml")


def test_given_a_prompt_missing_from_the_catalogue_then_menu_check_names_it(
    tmp_path: Path,
) -> None:
    f = write(tmp_path, GOOD.replace('prompts = ["menu_chinh"]', 'prompts = ["menu_moi"]'))
    problems = check_prompts(
        load_menu(f), set(load_catalogue(PROJECT_HOME / "ivr/prompts_vi.toml"))
    )
    assert problems == [f"{f}: prompt 'menu_moi' is not in the prompt catalogue"]


def test_menu_check_cli_fails_on_a_missing_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline.cli import main

    assert main(["menu", "check", str(PROJECT_HOME / "ivr/menu_1022.toml")]) == 0
    f = write(tmp_path, GOOD.replace('prompts = ["menu_chinh"]', 'prompts = ["menu_moi"]'))
    assert main(["menu", "check", str(f)]) == 2
    captured = capsys.readouterr()
    assert "menu_moi" in captured.out and str(f) in captured.err


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[schedule]\nalways_open = 1\n", "schedule.always_open"),
        ('[schedule]\n[schedule.week]\nmon = ["17:00-07:30"]\n', "schedule.week.mon[0]"),
        ('[schedule]\n[schedule.week]\nmon = ["7h-9h"]\n', "schedule.week.mon[0]"),
        ('[schedule]\n[schedule.week]\nfunday = ["07:00-09:00"]\n', "schedule.week.funday"),
        ('[schedule]\nholidays = ["2026-13-01"]\n', "schedule.holidays[0]"),
        ("[hours]\n", "schedule"),
    ],
)
def test_given_a_broken_schedule_then_the_field_is_named(
    tmp_path: Path, text: str, field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_schedule(write(tmp_path, text, "schedule.toml"))
    assert err.value.field == field


def test_schedule_opens_on_weekdays_and_closes_on_holidays(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[schedule]\nholidays = ["2026-12-01"]\n[schedule.week]\nmon = ["07:30-11:30"]\n'
        'tue = ["07:30-11:30"]\n',
        "s.toml",
    )
    s = load_schedule(f)
    assert s.is_open(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))  # Mon 08:00 +07
    assert not s.is_open(datetime(2026, 11, 30, 5, 0, tzinfo=UTC))  # Mon 12:00 +07
    assert not s.is_open(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # a holiday
    assert not s.is_open(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))  # Saturday
    assert load_schedule(PROJECT_HOME / "ivr/schedule.toml").always_open


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[fastagi]\nport = "4573"\n', "fastagi.port"),
        ("[fastagi]\nprot = 4573\n", "fastagi.prot"),
        ("[webb]\n", "webb"),
        ("[ami]\nport = -1\n", "ami.port"),
    ],
)
def test_given_broken_settings_then_the_field_is_named(
    tmp_path: Path, text: str, field: str
) -> None:
    f = write(tmp_path, text, "tongdai.toml")
    with pytest.raises(ConfigError) as err:
        load_settings(f)
    assert (err.value.file, err.value.field) == (str(f), field)
