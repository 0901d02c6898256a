"""The one reader of the TOML files a province edits (settings, menu, prompts, office hours,
the ACD file, channels, agencies): every problem is a ``ConfigError`` naming the file and the
dotted field, e.g. ``acd/agents_1022.toml: queues.thu_tuc.wrapup_s: must be between 0 and
600, got 900``.

``read_toml(path)`` reads a file (not found, not UTF-8, not valid TOML: with the line);
``Fields`` gives typed access to one table; ``section(file, name, cls, raw)`` builds a frozen
dataclass of plain settings whose types come from the defaults (``tongdai.toml``'s sections).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from tongdai.errors import ConfigError

T = TypeVar("T")


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's top-level table."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), "-", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(p), "-", "is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), "-", f"not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        where = f"line {line.group(1)}" if line else "-"
        raise ConfigError(str(p), where, f"not valid TOML: {exc}") from None


class Fields:
    """Typed access to one TOML table; ``prefix`` is the table's dotted path with a trailing
    dot (``"queues.thu_tuc."``). With ``allowed``, any other key is an error."""

    def __init__(
        self, file: str, prefix: str, raw: dict[str, Any], allowed: Iterable[str] | None = None
    ) -> None:
        self.file, self.prefix, self.raw = file, prefix, raw
        if allowed is not None:
            known = set(allowed)
            for key in raw:
                if key not in known:
                    raise self.err(key, f"unknown field (fields: {', '.join(sorted(known))})")

    def err(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.file, f"{self.prefix}{key}", problem)

    def text(self, key: str, default: str | None = None) -> str:
        """Non-empty text (required when ``default`` is None)."""
        v = self.raw.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.err(
                key, "required text" if key not in self.raw else "must be non-empty text"
            )
        return v

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if key in self.raw else None

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        v = self.raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.err(key, f"must be a number, got {type(v).__name__}")
        if not lo <= v <= hi:
            raise self.err(key, f"must be between {lo:g} and {hi:g}, got {v}")
        return float(v)

    def whole(self, key: str, default: int, lo: int, hi: int) -> int:
        v = self.number(key, default, lo, hi)
        if v != int(v):
            raise self.err(key, f"must be a whole number, got {v:g}")
        return int(v)

    def flag(self, key: str, default: bool) -> bool:
        v = self.raw.get(key, default)
        if not isinstance(v, bool):
            raise self.err(key, "must be true or false")
        return v

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        options = tuple(choices)
        v = self.text(key, default)
        if v not in options:
            raise self.err(key, f"must be one of {', '.join(options)}, got {v!r}")
        return v

    def table(self, key: str) -> dict[str, Any]:
        v = self.raw.get(key, {})
        if not isinstance(v, dict):
            raise self.err(key, "must be a table")
        return v

    def text_table(self, key: str) -> dict[str, str]:
        v = self.raw.get(key, {})
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise self.err(key, "must be a table of text values")
        return {str(k): str(x) for k, x in v.items()}

    def text_list(
        self, key: str, pattern: re.Pattern[str] | None = None, what: str | None = None
    ) -> tuple[str, ...]:
        """A list of text (a single text is a list of one); each must match ``pattern``
        (``what`` names them in the error)."""
        v = self.raw.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(
            isinstance(x, str) and (pattern is None or pattern.match(x)) for x in v
        ):
            if what is None:
                what = f"text matching {pattern.pattern}" if pattern is not None else "text"
            raise self.err(key, f"must be a list of {what}")
        return tuple(v)

    def sub(self, key: str, allowed: Iterable[str] | None = None) -> Fields:
        """The nested table ``key`` (empty when absent)."""
        return Fields(self.file, f"{self.prefix}{key}.", self.table(key), allowed)


def section(file: str, name: str, cls: type[T], raw: Any) -> T:
    """A frozen dataclass of plain settings (str, int, float, bool) from ``raw``: every field
    optional with its default, types from the defaults, unknown keys and negative whole
    numbers refused."""
    if not isinstance(raw, dict):
        raise ConfigError(file, name, "must be a table")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(file, f"{name}.{key}", f"unknown setting (known: {', '.join(known)})")
        default: Any = known[key].default
        expected = type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(
                file, f"{name}.{key}", f"must be {expected.__name__}, got {type(value).__name__}"
            )
        if expected is int and value < 0:
            raise ConfigError(file, f"{name}.{key}", "must not be negative")
        values[key] = value
    return cls(**values)
