"""The voice menu as a plain Asterisk dialplan IVR: what a province would otherwise deploy.

``export(menu)`` writes one context per menu node in the shape FreePBX's IVR module generates
(``Background()`` the prompt, ``WaitExten()``, one extension per key, ``i`` and ``t`` counting
failures, ``Read()`` for digits), with no AGI, no engine and no ticket: the reference
``tongdai bench ivr`` measures our FastAGI IVR against. Each prompt is played by its own
priority (FreePBX wraps it in ``ExecIf``), so AMI's ``Newexten`` names the application.

The same behaviour as ``ivr.runner`` where the dialplan can have it: a key pressed while a
prompt plays chooses (barge-in), ``9`` repeats, ``*`` goes back to the menu the caller came
from (``PLAIN_BACK_<node>``), a wrong key plays the invalid prompt, no key repeats the level,
``max_failures`` send the caller to the general queue. A dossier code is looked up in AstDB
(``DB(dossier/<code>)``, seeded by ``bench.plain_ivr``: the prompt names ``ivr.runner`` would
play, joined by ``&``) and read out with ``Background()``. Left out, as a plain IVR has no
engine: tickets and their codes (no ticket code is read out; the follow-up by ticket code
goes straight to its agents' queue), the procedure catalogue (the look-up by procedure code
goes straight to its agents' queue too), office hours and special
announcements (the lab runs always open), recordings' linking to a ticket. A queue node plays
its prompts and hands the caller to ``<handover>,<queue>,1`` (in the lab: the same hop into
our ACD as the benchmark's ``acd_enter``; in a FreePBX deployment: a context running
``Queue(${EXTEN})``).

    python -m ivr.dialplan_export > asterisk_conf/extensions_ivr_plain.conf
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dossiers.model import MAX_CODE_DIGITS
from ivr.menu import Menu, Node, load_menu
from tongdai.settings import PROJECT_HOME, IvrSettings, home_path

PREFIX = "plain-ivr"
#: the lab's hand-over context (asterisk_conf/extensions.conf): ``<queue>,1`` queues the caller
HANDOVER = "plain-ivr-handover"
ASTDB_FAMILY = "dossier"
GENERATED = "asterisk_conf/extensions_ivr_plain.conf"
#: what a caller who keys in a dossier code may type: ours asks GET DATA for one more than the
#: longest code, so "too long" can be told apart
READ_MAX = MAX_CODE_DIGITS + 1


@dataclass(frozen=True)
class Target:
    """Where the dialplan file lives and what it points at."""

    sounds: str  # Asterisk's path of the prompt folder (no trailing slash)
    messages: str  # Asterisk's path of the recorded messages folder
    handover: str = HANDOVER


def context(node_id: str) -> str:
    return f"{PREFIX}-{node_id}"


def entry_context() -> str:
    """Where a call enters the plain IVR: ``Goto(plain-ivr,s,1)``."""
    return PREFIX


def general_context() -> str:
    return f"{PREFIX}-general"


class _Writer:
    def __init__(self, menu: Menu, target: Target) -> None:
        self.m = menu
        self.t = target
        self.lines: list[str] = []
        #: node -> True when some option leads to it and it may go back (menu, dossier)
        self.backable = {
            dest
            for n in menu.nodes.values()
            for dest in [*n.options.values(), *n.cases.values(), n.next, n.default]
            if dest and menu.nodes[dest].type in ("menu", "dossier")
        } | {menu.start}

    def p(self, name: str) -> str:
        return f"{self.t.sounds}/{name}"

    def files(self, names: tuple[str, ...] | list[str]) -> str:
        return "&".join(self.p(n) for n in names)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def goto_node(self, dest: str, came_from: str | None) -> list[str]:
        """Priorities (after the first) that go to ``dest``, remembering where '*' returns."""
        out = []
        if came_from is not None and dest in self.backable:
            out.append(f"Set(PLAIN_BACK_{dest}={context(came_from)})")
        out.append(f"Goto({context(dest)},s,1)")
        return out

    def exten(self, ext: str, apps: list[str], comment: str = "") -> None:
        first, *rest = apps
        self.add(f"exten => {ext},1,{first}" + (f" ; {comment}" if comment else ""))
        self.add(*(f" same => n,{a}" for a in rest))

    def failure(self, ext: str, counter: str, label: str, prompt: str | None) -> None:
        """``i`` / ``t``: count, at ``max_failures`` the general queue, else say why and retry."""
        apps = [
            f"Set({counter}=$[${{{counter}}} + 1])",
            f"GotoIf($[${{{counter}}} >= {self.m.max_failures}]?{general_context()},s,1)",
        ]
        if prompt:
            apps.append(f"Playback({self.p(prompt)})")
        apps.append(f"Goto(s,{label})")
        self.exten(ext, apps)

    def back(self, node: Node) -> str:
        var = f"PLAIN_BACK_{node.id}"
        return f'Goto(${{IF($["${{{var}}}" = ""]?{context(node.id)}:${{{var}}})}},s,1)'

    # --- nodes ---------------------------------------------------------------------------
    def node(self, node: Node) -> None:
        self.add("", f"[{context(node.id)}]", f"; {node.type} node {node.id!r}")
        getattr(self, f"node_{node.type}")(node)

    def node_menu(self, node: Node) -> None:
        m = self.m
        if node.id == m.start and m.greeting:
            self.exten(
                "greet",
                ["Set(PLAIN_TRIES=0)", f"Background({self.files(m.greeting)})", "Goto(s,prompt)"],
                "the greeting: a key pressed during it chooses in this menu",
            )
        self.add("exten => s,1,Set(PLAIN_TRIES=0)")
        prompts = list(node.prompts)
        self.add(f" same => n(prompt),Background({self.files(prompts)})")
        self.add(f" same => n,WaitExten({node.timeout_s:g})")
        for key, dest in sorted(node.options.items()):
            self.exten(key, self.goto_node(dest, node.id), f"-> {dest}")
        self.exten(m.repeat_key, ["Goto(s,prompt)"], "repeat")
        self.exten(m.back_key, [self.back(node)], "back")
        self.failure("i", "PLAIN_TRIES", "prompt", m.invalid_prompt)
        self.failure("t", "PLAIN_TRIES", "prompt", None)

    def node_queue(self, node: Node) -> None:
        queue = node.queue or self.m.general_queue
        apps = [f"Playback({self.files(node.prompts)})"] if node.prompts else []
        apps.append(f"Goto({self.t.handover},{queue},1)")
        self.exten("s", apps, f"queue {queue}")

    def node_dossier(self, node: Node) -> None:
        m, tries = self.m, "PLAIN_TRIES"
        fail = f"GotoIf($[${{{tries}}} >= {m.max_failures}]?{general_context()},s,1)"
        more = f"Set({tries}=$[${{{tries}}} + 1])"
        words = f"{self.t.sounds}/${{STRREPLACE(PLAIN_WORDS,&,&{self.t.sounds}/)}}"
        self.add(f"exten => s,1,Set({tries}=0)")
        if node.prompts[:-1]:
            self.add(f" same => n(ask),Background({self.files(node.prompts[:-1])})")
            self.add(f" same => n,Read(PLAIN_CODE,{self.p(node.prompts[-1])},{READ_MAX},,1,"
                     f"{node.timeout_s:g})")  # fmt: skip
        else:
            self.add(f" same => n(ask),Read(PLAIN_CODE,{self.p(node.prompts[-1])},{READ_MAX},,1,"
                     f"{node.timeout_s:g})")  # fmt: skip
        self.add(
            ' same => n,GotoIf($["${PLAIN_CODE}" = ""]?timeout)',
            f' same => n,GotoIf($["${{PLAIN_CODE:0:1}}" = "{m.back_key}"]?{m.back_key},1)',
            f" same => n,GotoIf($[${{LEN(${{PLAIN_CODE}})}} > {MAX_CODE_DIGITS}]?too_long)",
            f' same => n,GotoIf(${{REGEX("^[0-9]{{4,{MAX_CODE_DIGITS}}}$" ${{PLAIN_CODE}})}}?look)',
            f" same => n,{more}",
            f" same => n,{fail}",
            f" same => n,Playback({self.p('ma_ho_so_khong_hop_le')})",
            " same => n,Goto(ask)",
            f" same => n(too_long),{more}",
            f" same => n,{fail}",
            f" same => n,Playback({self.p('ma_ho_so_qua_dai')})",
            " same => n,Goto(ask)",
            f" same => n(timeout),{more}",
            f" same => n,{fail}",
            " same => n,Goto(ask)",
            " same => n(look),Set(PLAIN_AFTER_TRIES=0)",
            f" same => n,Set(PLAIN_WORDS=${{DB({ASTDB_FAMILY}/${{PLAIN_CODE}})}})",
            ' same => n(say),GotoIf($["${PLAIN_WORDS}" = ""]?not_found)',
            f" same => n,Background({words})",
            " same => n,Goto(after)",
            f" same => n(not_found),Background({self.p('ho_so_khong_tim_thay')})",
            f" same => n(after),Background({self.p(node.after_prompt or '')})",
            f" same => n,WaitExten({node.timeout_s:g})",
        )
        self.exten("1", ["Goto(s,say)"], "hear it again")
        self.exten("2", [f"Set({tries}=0)", "Goto(s,ask)"], "another dossier")
        self.exten("0", self.goto_node(node.agent or m.general_queue, node.id), "an agent")
        self.exten(m.back_key, [self.back(node)], "back")
        self.exten(m.repeat_key, ["Goto(s,after)"], "repeat the choices")
        self.failure("i", "PLAIN_AFTER_TRIES", "after", m.invalid_prompt)
        self.failure("t", "PLAIN_AFTER_TRIES", "after", None)

    def node_followup(self, node: Node) -> None:
        # a ticket's status needs the engine's tickets: a plain IVR hands the caller over
        self.exten("s", self.goto_node(node.agent or self.m.general_queue, node.id), "an agent")

    def node_procedure(self, node: Node) -> None:
        # the procedure catalogue lives in the engine's database: a plain IVR hands over
        self.exten("s", self.goto_node(node.agent or self.m.general_queue, node.id), "an agent")

    def node_record(self, node: Node) -> None:
        path = f"{self.t.messages}/plain-${{UNIQUEID}}.wav"
        after = [node.thanks] if node.thanks else []
        self.exten(
            "s",
            [
                f"Background({self.files(node.prompts)})" if node.prompts else "NoOp()",
                f"Record({path},{node.silence_s},{node.max_seconds},k)",
                f"Playback({self.files([*after, *self.m.goodbye])})",
                "Hangup()",
            ],
            "# ends the message (no ticket code: a plain IVR has no ticket)",
        )
        self.add("exten => _[0-9*#],1,Goto(s,2)")  # a key during the instructions: record now

    def node_play(self, node: Node) -> None:
        self.exten("s", [f"Background({self.files(node.prompts)})", "Goto(next,1)"])
        self.exten("_[0-9*#]", ["Goto(next,1)"], "barge-in")
        self.exten("next", self.goto_node(node.next or self.m.start, None))

    def node_hangup(self, node: Node) -> None:
        apps = [f"Playback({self.files(node.prompts)})"] if node.prompts else []
        self.exten("s", [*apps, "Hangup()"])

    def node_collect(self, node: Node) -> None:
        self.exten(
            "s",
            [
                f"Read(PLAIN_VAR_{node.var},{self.p(node.prompts[0])},{node.max_digits},,1,"
                f"{node.timeout_s:g})",
                *self.goto_node(node.next or self.m.start, None),
            ],
        )

    def node_branch(self, node: Node) -> None:
        apps = [
            f'GotoIf($["${{PLAIN_VAR_{node.var}}}" = "{value}"]?{context(dest)},s,1)'
            for value, dest in sorted(node.cases.items())
        ]
        self.exten("s", [*apps, f"Goto({context(node.default or self.m.start)},s,1)"])

    def write(self) -> str:
        m = self.m
        self.add(
            "; Generated by `python -m ivr.dialplan_export` from "
            f"{_shown(m.source)} - do not edit; regenerate.",
            "; The 1022 menu as a plain dialplan IVR (Background/WaitExten/Read, as FreePBX's",
            "; IVR module generates): the reference `tongdai bench ivr` measures the engine's",
            "; FastAGI IVR against. See ivr/dialplan_export.py for what it leaves out.",
            "",
            f"[{entry_context()}]",
            f"exten => s,1,Goto({context(m.start)},{'greet' if m.greeting else 's'},1)",
            "",
            f"[{general_context()}]",
            f"; {m.max_failures} failures: the general queue",
            f"exten => s,1,Playback({self.p('chuyen_tong_dai_vien')})",
            f" same => n,Goto({self.t.handover},{m.general_queue},1)",
        )
        for node in _walk(m):
            self.node(node)
        return "\n".join(self.lines) + "\n"


def _shown(source: str) -> str:
    """The menu file as the repository names it (no machine-specific prefix)."""
    path = Path(source)
    return str(path.relative_to(PROJECT_HOME)) if path.is_relative_to(PROJECT_HOME) else source


def _walk(menu: Menu) -> Iterator[Node]:
    """Nodes from the start, breadth first, then any unreachable ones (in file order)."""
    seen: list[str] = []
    todo = [menu.start]
    while todo:
        nid = todo.pop(0)
        if nid in seen:
            continue
        seen.append(nid)
        n = menu.nodes[nid]
        todo += [*n.options.values(), *n.cases.values()]
        todo += [x for x in (n.next, n.default, n.agent) if x]
    seen += [nid for nid in menu.nodes if nid not in seen]
    for nid in seen:
        yield menu.nodes[nid]


def export(menu: Menu, target: Target | None = None) -> str:
    """The dialplan text (an ``extensions.conf`` include) for ``menu``."""
    ivr = IvrSettings()
    return _Writer(
        menu, target or Target(ivr.asterisk_sounds_dir, ivr.asterisk_messages_dir)
    ).write()


def main(argv: list[str] | None = None) -> int:
    ivr = IvrSettings()
    p = argparse.ArgumentParser(prog="python -m ivr.dialplan_export", description=__doc__)
    p.add_argument("--menu", default=ivr.menu, help=f"the menu file (default {ivr.menu})")
    p.add_argument("--sounds", default=ivr.asterisk_sounds_dir, help="Asterisk's prompt folder")
    p.add_argument("--messages", default=ivr.asterisk_messages_dir, help="messages folder")
    p.add_argument("--handover", default=HANDOVER, help="context whose <queue>,1 queues a caller")
    args = p.parse_args(argv)
    menu = load_menu(home_path(args.menu))
    sys.stdout.write(export(menu, Target(args.sounds, args.messages, args.handover)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
