"""Static checks of asterisk_conf/extensions.conf: a context defined twice or an extension
priority registered twice makes Asterisk drop lines with only a warning (it happened twice: a
stray [tongdai-acd-connect] block left callers unbridged while other tests still passed)."""

from __future__ import annotations

import re
from collections import Counter

from tongdai.settings import PROJECT_HOME

CONF = PROJECT_HOME / "asterisk_conf" / "extensions.conf"
_EXTEN = re.compile(r"^exten\s*=>\s*([^,]+),([^,(]+)(?:\(([^)]*)\))?,")
_SAME = re.compile(r"^\s*same\s*=>\s*([^,(]+)(?:\(([^)]*)\))?,")


def parse(text: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Context headers in order, and every (context, extension, priority) registered."""
    contexts: list[str] = []
    keys: list[tuple[str, str, str]] = []
    ctx, ext, prio = "", "", 0
    labels: set[tuple[str, str, str]] = set()
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].rstrip()
        if not line.strip():
            continue
        if m := re.match(r"^\[([^\]]+)\]", line):
            ctx = m.group(1)
            contexts.append(ctx)
            continue
        if m := _EXTEN.match(line):
            ext, p = m.group(1).strip(), m.group(2).strip()
            prio = int(p)
            keys.append((ctx, ext, p))
            if m.group(3):
                labels.add((ctx, ext, m.group(3)))
            continue
        if m := _SAME.match(line):
            assert m.group(1).strip() == "n", raw
            prio += 1
            keys.append((ctx, ext, str(prio)))
            if m.group(2):
                key = (ctx, ext, m.group(2))
                assert key not in labels, f"label {key} defined twice"
                labels.add(key)
    return contexts, keys


def test_no_context_is_defined_twice() -> None:
    contexts, _ = parse(CONF.read_text(encoding="utf-8"))
    twice = [c for c, n in Counter(contexts).items() if n > 1]
    assert not twice, f"{CONF}: contexts defined twice: {twice}"
    assert {"tongdai-inbound", "tongdai-acd-wait", "tongdai-acd-dial"} <= set(contexts)


def test_no_extension_priority_is_registered_twice() -> None:
    _, keys = parse(CONF.read_text(encoding="utf-8"))
    twice = [k for k, n in Counter(keys).items() if n > 1]
    assert not twice, f"{CONF}: priorities registered twice: {twice}"
    assert ("tongdai-acd-connect", "s", "2") in keys


def test_the_checker_catches_a_duplicate_block() -> None:
    text = "[a]\nexten => s,1,NoOp()\n same => n,Hangup()\n[a]\nexten => s,1,NoOp()\n"
    contexts, keys = parse(text)
    assert Counter(contexts)["a"] == 2 and Counter(keys)[("a", "s", "1")] == 2
