"""The Vietnamese texts the bot and the system send (``conversations/texts_vi.toml``), checked
at load: every text the code uses must be there, with the placeholders it fills."""

from __future__ import annotations

import string
from pathlib import Path

from tongdai.config_file import Fields, read_toml
from tongdai.errors import ConfigError

DEFAULT = Path(__file__).resolve().parent / "texts_vi.toml"

#: text name -> the placeholders the code fills in
REQUIRED: dict[str, frozenset[str]] = {
    "welcome": frozenset(),
    "ticket_code": frozenset({"code"}),
    "help": frozenset(),
    "queued": frozenset({"position"}),
    "queued_no_position": frozenset(),
    "assigned": frozenset({"agent"}),
    "offline": frozenset({"code"}),
    "dossier_not_found": frozenset({"dossier"}),
    "dossier_unavailable": frozenset(),
    "dossier_overdue": frozenset(),
    "resolved": frozenset(),
    "kb_answer": frozenset({"question", "answer"}),
    "procedure_answer": frozenset({"code", "title", "time_limit", "fee", "online"}),
    "procedure_not_found": frozenset({"procedure"}),
    "procedure_unavailable": frozenset(),
}


class Texts:
    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts

    def __call__(self, name: str, **values: object) -> str:
        return self._texts[name].format(**values)


def load_texts(path: str | Path = DEFAULT) -> Texts:
    raw = read_toml(path)
    top = Fields(str(path), "", raw, allowed=("texts",))
    r = top.sub("texts", allowed=REQUIRED)
    texts: dict[str, str] = {}
    for name, wanted in REQUIRED.items():
        text = r.text(name)
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        except ValueError as exc:
            raise ConfigError(str(path), f"texts.{name}", f"bad placeholder: {exc}") from None
        if used - wanted:
            names = ", ".join(sorted(used - wanted))
            raise ConfigError(str(path), f"texts.{name}", f"unknown placeholder(s): {names}")
        texts[name] = text
    return Texts(texts)
