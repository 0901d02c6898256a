"""The one TOML reader: every problem names the file and the dotted field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tongdai.config_file import Fields, read_toml, section
from tongdai.errors import ConfigError


def test_given_broken_toml_then_the_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    f = tmp_path / "x.toml"
    f.write_text('[a]\nb = 1\nc = "unterminated\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        read_toml(f)
    assert e.value.file == str(f) and e.value.field == "line 3"
    assert "not valid TOML" in e.value.problem


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "file not found"), (b"\xff\xfe[a]", "not UTF-8 text")],
)
def test_given_a_missing_or_binary_file_then_a_clear_error(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    f = tmp_path / "y.toml"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        read_toml(f)


def test_fields_check_types_ranges_and_unknown_keys() -> None:
    raw = {"name": "x", "n": 7, "f": 1.5, "on": True, "kind": "b", "names": ["a_1"]}
    r = Fields("q.toml", "queues.a.", raw, allowed=raw)
    assert r.text("name") == "x" and r.whole("n", 0, 0, 10) == 7 and r.flag("on", False)
    assert r.number("f", 0, 0, 2) == 1.5 and r.choice("kind", "a", ("a", "b")) == "b"
    assert r.text_list("names", re.compile(r"^[a-z0-9_]+$")) == ("a_1",)
    assert r.text("missing", "dflt") == "dflt" and r.opt_text("missing") is None
    with pytest.raises(ConfigError, match=r"q.toml: queues.a.n: must be between 0 and 5, got 7"):
        r.whole("n", 0, 0, 5)
    with pytest.raises(ConfigError, match=r"queues.a.f: must be a whole number"):
        r.whole("f", 0, 0, 5)
    with pytest.raises(ConfigError, match=r"queues.a.kind: must be one of a, c"):
        r.choice("kind", "a", ("a", "c"))
    with pytest.raises(ConfigError, match=r"queues.a.x: required text"):
        r.text("x")
    with pytest.raises(ConfigError, match=r"queues.a.extra: unknown field"):
        Fields("q.toml", "queues.a.", {"extra": 1}, allowed=("name",))
    sub = Fields("q.toml", "", {"t": {"k": 1}}).sub("t", allowed=("k",))
    assert sub.whole("k", 0, 0, 2) == 1 and sub.err("k", "p").field == "t.k"


@dataclass(frozen=True)
class _Section:
    host: str = "127.0.0.1"
    port: int = 1
    ratio: float = 0.5
    on: bool = False


def test_section_takes_types_from_defaults() -> None:
    s = section("s.toml", "web", _Section, {"port": 8022, "ratio": 1, "on": True})
    assert s == _Section(port=8022, ratio=1.0, on=True)
    with pytest.raises(ConfigError, match=r"s.toml: web.port: must be int, got str"):
        section("s.toml", "web", _Section, {"port": "8022"})
    with pytest.raises(ConfigError, match=r"web.on: must be bool, got int"):
        section("s.toml", "web", _Section, {"on": 1})
    with pytest.raises(ConfigError, match=r"web.nope: unknown setting"):
        section("s.toml", "web", _Section, {"nope": 1})
    with pytest.raises(ConfigError, match=r"web.port: must not be negative"):
        section("s.toml", "web", _Section, {"port": -1})
