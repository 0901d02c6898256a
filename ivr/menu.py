"""The voice menu as data: node types, and the loader that validates a TOML menu file.

The province edits ``ivr/menu_1022.toml``; ``tongdai menu check FILE`` runs ``load_menu`` and
``check_prompts``. Every error names the file and the field, e.g.
``ivr/menu_1022.toml: nodes.main.options.7: unknown node 'nowhere'``.

Node types: ``menu`` (prompts + one key + branch), ``play`` (prompts then ``next``), ``collect``
(digits into a variable), ``branch`` (on a variable), ``queue`` (hand the call to a queue),
``dossier`` (look up a dossier code), ``followup`` (look up a ticket by its code: the
result of a complaint or a question), ``procedure`` (look up a procedure of the catalogue by its
code: name, time limit and fee), ``record`` (leave a message), ``hangup``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tongdai.config_file import Fields, read_toml
from tongdai.errors import ConfigError

KEYS = frozenset("0123456789*#")
#: node types where the caller keys a code, hears what it names, then 1 again, 2 another, 0 agent
LOOKUPS = ("dossier", "followup", "procedure")
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
    "followup": {"prompts", "after_prompt", "agent", "timeout_s", "category"},
    "procedure": {"prompts", "after_prompt", "agent", "timeout_s", "category"},
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
    "followup": {"prompts", "after_prompt", "agent"},
    "procedure": {"prompts", "after_prompt", "agent"},
    "record": {"prompts"},
    "hangup": set(),
}
_LINKS = ("next", "default", "agent")


#: how a list of prompt names is described in errors
_NAMES = "prompt names (lowercase letters, digits, _)"


def load_menu(path: str | Path) -> Menu:
    file = str(path)
    raw = read_toml(path)
    top = raw.get("menu")
    if not isinstance(top, dict):
        raise ConfigError(file, "menu", "missing [menu] table")
    r = Fields(file, "menu.", top)
    raw_nodes = raw.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise ConfigError(file, "nodes", "missing [nodes.*] tables")
    nodes = {nid: _load_node(file, nid, body) for nid, body in raw_nodes.items()}
    menu = Menu(
        source=file,
        start=r.text("start"),
        general_queue=r.text("general_queue", "chung"),
        max_failures=int(r.number("max_failures", 3, 1, 10)),
        repeat_key=r.text("repeat_key", "9"),
        back_key=r.text("back_key", "*"),
        invalid_prompt=r.text("invalid_prompt", "lua_chon_khong_hop_le"),
        greeting=r.text_list("greeting", _NAME_RE, _NAMES),
        goodbye=r.text_list("goodbye", _NAME_RE, _NAMES),
        closed_prompt=r.text("closed_prompt", "ngoai_gio"),
        closed_message_key=r.text("closed_message_key", "1"),
        message_node=r.text("message_node"),
        error_prompt=r.text("error_prompt", "loi_he_thong"),
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
    r = Fields(file, prefix, body)
    ntype = r.text("type")
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
    options = r.text_table("options")
    for key in options:
        if key not in KEYS or len(key) != 1:
            raise r.err(f"options.{key}", "option keys are single phone keys 0-9, * or #")
    return Node(
        id=nid,
        type=ntype,
        prompts=r.text_list("prompts", _NAME_RE, _NAMES),
        category=r.opt_text("category"),
        options=options,
        timeout_s=r.number("timeout_s", 6.0, 1, 60),
        next=r.opt_text("next"),
        var=r.opt_text("var"),
        max_digits=int(r.number("max_digits", 16, 1, 64)),
        cases=r.text_table("cases"),
        default=r.opt_text("default"),
        queue=r.opt_text("queue"),
        max_wait_s=int(r.number("max_wait_s", 1800, 10, 86400)),
        topic=r.opt_text("topic"),
        after_prompt=r.opt_text("after_prompt"),
        agent=r.opt_text("agent"),
        max_seconds=int(r.number("max_seconds", 120, 5, 900)),
        silence_s=int(r.number("silence_s", 5, 1, 60)),
        thanks=r.opt_text("thanks"),
        say_code=_bool(r, "say_code", ntype == "record"),
    )


def _bool(r: Fields, key: str, default: bool) -> bool:
    v = r.raw.get(key, default)
    if not isinstance(v, bool):
        raise r.err(key, "must be true or false")
    return v


def _check_links(menu: Menu, r: Fields) -> None:
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
        if n.type in LOOKUPS and menu.nodes[n.agent or ""].type != "queue":
            raise ConfigError(file, f"nodes.{n.id}.agent", "must name a queue node")


def check_prompts(menu: Menu, catalogue_names: set[str]) -> list[str]:
    """Errors for prompts the menu plays that the catalogue lacks (one line each)."""
    return [
        f"{menu.source}: prompt {name!r} is not in the prompt catalogue"
        for name in sorted(menu.prompt_names() - catalogue_names)
    ]
