"""The voice menu as data: node types, and the loader that validates a TOML menu file.

The province edits ``ivr/menu_1022.toml``; ``tongdai menu check FILE`` runs ``load_menu`` and
``check_prompts``. Every error names the file and the field, e.g.
``ivr/menu_1022.toml: nodes.main.options.7: unknown node 'nowhere'``.

Node types: ``menu`` (prompts + one key + branch), ``play`` (prompts then ``next``), ``collect``
(digits into a variable), ``branch`` (on a variable), ``queue`` (hand the call to a queue),
``dossier`` (look up a dossier code), ``record`` (leave a message), ``hangup``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tongdai.errors import ConfigError

KEYS = frozenset("0123456789*#")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    prompts: tuple[str, ...] = ()
    category: str | None = None
    # menu
    options: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 6.0
    # play / collect
    next: str | None = None
    # collect / branch
    var: str | None = None
    max_digits: int = 16
    cases: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    # queue
    queue: str | None = None
    max_wait_s: int = 1800
    topic: str | None = None
    # dossier
    after_prompt: str | None = None
    agent: str | None = None
    # record
    max_seconds: int = 120
    silence_s: int = 5
    thanks: str | None = None
    say_code: bool = True


@dataclass(frozen=True)
class Menu:
    source: str
    start: str
    general_queue: str
    max_failures: int
    repeat_key: str
    back_key: str
    invalid_prompt: str
    greeting: tuple[str, ...]
    goodbye: tuple[str, ...]
    closed_prompt: str
    closed_message_key: str
    message_node: str
    error_prompt: str
    nodes: dict[str, Node]

    def prompt_names(self) -> set[str]:
        """Every prompt the menu can play (``menu check`` verifies each is in the catalogue)."""
        names = {self.invalid_prompt, self.closed_prompt, self.error_prompt}
        names.update(self.greeting, self.goodbye)
        for n in self.nodes.values():
            names.update(n.prompts)
            names.update(p for p in (n.after_prompt, n.thanks) if p)
        return names


_NODE_FIELDS: dict[str, set[str]] = {
    "menu": {"prompts", "options", "timeout_s", "category"},
    "play": {"prompts", "next", "category"},
    "collect": {"prompts", "var", "max_digits", "timeout_s", "next", "category"},
    "branch": {"var", "cases", "default", "category"},
    "queue": {"prompts", "queue", "max_wait_s", "topic", "category", "say_code"},
    "dossier": {"prompts", "after_prompt", "agent", "max_digits", "timeout_s", "category"},
    "record": {"prompts", "max_seconds", "silence_s", "thanks", "say_code", "category"},
    "hangup": {"prompts", "category"},
}
_REQUIRED: dict[str, set[str]] = {
    "menu": {"prompts", "options"},
    "play": {"prompts", "next"},
    "collect": {"prompts", "var", "next"},
    "branch": {"var", "cases", "default"},
    "queue": {"queue"},
    "dossier": {"prompts", "after_prompt", "agent"},
    "record": {"prompts"},
    "hangup": set(),
}
_LINKS = ("next", "default", "agent")


class _Reader:
    """Typed access to a TOML table with errors that name the file and the dotted field."""

    def __init__(self, file: str, prefix: str, raw: dict[str, Any]) -> None:
        self.file, self.prefix, self.raw = file, prefix, raw

    def err(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.file, f"{self.prefix}{key}", problem)

    def str_(self, key: str, default: str | None = None) -> str:
        v = self.raw.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.err(
                key, "required text" if key not in self.raw else "must be non-empty text"
            )
        return v

    def opt_str(self, key: str) -> str | None:
        return self.str_(key) if key in self.raw else None

    def num(self, key: str, default: float, lo: float, hi: float) -> float:
        v = self.raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.err(key, f"must be a number, got {type(v).__name__}")
        if not lo <= v <= hi:
            raise self.err(key, f"must be between {lo:g} and {hi:g}, got {v}")
        return float(v)

    def names(self, key: str) -> tuple[str, ...]:
        v = self.raw.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and _NAME_RE.match(x) for x in v):
            raise self.err(key, "must be a list of prompt names (lowercase letters, digits, _)")
        return tuple(v)

    def table(self, key: str) -> dict[str, str]:
        v = self.raw.get(key, {})
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise self.err(key, "must be a table of text values")
        return {str(k): str(x) for k, x in v.items()}


def load_menu(path: str | Path) -> Menu:
    p = Path(path)
    file = str(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(file, "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    top = raw.get("menu")
    if not isinstance(top, dict):
        raise ConfigError(file, "menu", "missing [menu] table")
    r = _Reader(file, "menu.", top)
    raw_nodes = raw.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise ConfigError(file, "nodes", "missing [nodes.*] tables")
    nodes = {nid: _load_node(file, nid, body) for nid, body in raw_nodes.items()}
    menu = Menu(
        source=file,
        start=r.str_("start"),
        general_queue=r.str_("general_queue", "chung"),
        max_failures=int(r.num("max_failures", 3, 1, 10)),
        repeat_key=r.str_("repeat_key", "9"),
        back_key=r.str_("back_key", "*"),
        invalid_prompt=r.str_("invalid_prompt", "lua_chon_khong_hop_le"),
        greeting=r.names("greeting"),
        goodbye=r.names("goodbye"),
        closed_prompt=r.str_("closed_prompt", "ngoai_gio"),
        closed_message_key=r.str_("closed_message_key", "1"),
        message_node=r.str_("message_node"),
        error_prompt=r.str_("error_prompt", "loi_he_thong"),
        nodes=nodes,
    )
    _check_links(menu, r)
    return menu


def _load_node(file: str, nid: str, body: Any) -> Node:
    prefix = f"nodes.{nid}."
    if not _NAME_RE.match(nid):
        raise ConfigError(file, f"nodes.{nid}", "node ids use lowercase letters, digits and _")
    if not isinstance(body, dict):
        raise ConfigError(file, f"nodes.{nid}", "must be a table")
    r = _Reader(file, prefix, body)
    ntype = r.str_("type")
    allowed = _NODE_FIELDS.get(ntype)
    if allowed is None:
        raise r.err("type", f"unknown node type {ntype!r} (known: {', '.join(_NODE_FIELDS)})")
    for key in body:
        if key != "type" and key not in allowed:
            raise r.err(
                key, f"not a field of a {ntype} node (fields: {', '.join(sorted(allowed))})"
            )
    for key in _REQUIRED[ntype]:
        if key not in body:
            raise r.err(key, f"required for a {ntype} node")
    options = r.table("options")
    for key in options:
        if key not in KEYS or len(key) != 1:
            raise r.err(f"options.{key}", "option keys are single phone keys 0-9, * or #")
    return Node(
        id=nid,
        type=ntype,
        prompts=r.names("prompts"),
        category=r.opt_str("category"),
        options=options,
        timeout_s=r.num("timeout_s", 6.0, 1, 60),
        next=r.opt_str("next"),
        var=r.opt_str("var"),
        max_digits=int(r.num("max_digits", 16, 1, 64)),
        cases=r.table("cases"),
        default=r.opt_str("default"),
        queue=r.opt_str("queue"),
        max_wait_s=int(r.num("max_wait_s", 1800, 10, 86400)),
        topic=r.opt_str("topic"),
        after_prompt=r.opt_str("after_prompt"),
        agent=r.opt_str("agent"),
        max_seconds=int(r.num("max_seconds", 120, 5, 900)),
        silence_s=int(r.num("silence_s", 5, 1, 60)),
        thanks=r.opt_str("thanks"),
        say_code=_bool(r, "say_code", ntype == "record"),
    )


def _bool(r: _Reader, key: str, default: bool) -> bool:
    v = r.raw.get(key, default)
    if not isinstance(v, bool):
        raise r.err(key, "must be true or false")
    return v


def _check_links(menu: Menu, r: _Reader) -> None:
    file = menu.source
    if menu.start not in menu.nodes:
        raise r.err("start", f"unknown node {menu.start!r}")
    if menu.message_node not in menu.nodes or menu.nodes[menu.message_node].type != "record":
        raise r.err("message_node", f"must name a record node, got {menu.message_node!r}")
    for key in ("repeat_key", "back_key", "closed_message_key"):
        if getattr(menu, key) not in KEYS:
            raise r.err(key, "must be one phone key 0-9, * or #")
    for n in menu.nodes.values():
        targets: dict[str, str] = {f"options.{k}": v for k, v in n.options.items()}
        targets.update({f"cases.{k}": v for k, v in n.cases.items()})
        targets.update({k: getattr(n, k) for k in _LINKS if getattr(n, k)})
        for fld, target in targets.items():
            if target not in menu.nodes:
                raise ConfigError(file, f"nodes.{n.id}.{fld}", f"unknown node {target!r}")
        for key in (menu.repeat_key, menu.back_key):
            if key in n.options:
                raise ConfigError(
                    file,
                    f"nodes.{n.id}.options.{key}",
                    "key is reserved (repeat / back) everywhere",
                )
        if n.type == "dossier" and menu.nodes[n.agent or ""].type != "queue":
            raise ConfigError(file, f"nodes.{n.id}.agent", "must name a queue node")


def check_prompts(menu: Menu, catalogue_names: set[str]) -> list[str]:
    """Errors for prompts the menu plays that the catalogue lacks (one line each)."""
    return [
        f"{menu.source}: prompt {name!r} is not in the prompt catalogue"
        for name in sorted(menu.prompt_names() - catalogue_names)
    ]
