"""``tongdai menu check``, ``tongdai prompts build``, ``tongdai announce set|clear|show``."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from typing import Any

from ivr.menu import check_prompts, load_menu
from ivr.prompts import Catalogue, build, ensure_built, load_catalogue
from ivr.schedule import load_schedule
from tongdai.errors import ConfigError, TongdaiError
from tongdai.settings import home_path, load_settings


def register(sub: Any) -> None:
    menu = sub.add_parser("menu", help="the voice menu").add_subparsers(
        dest="menu_cmd", required=True
    )
    check = menu.add_parser("check", help="validate a menu file and its prompts")
    check.add_argument("file", nargs="?", help="menu TOML (default: the configured one)")
    check.set_defaults(func=_menu_check)

    prompts = sub.add_parser("prompts", help="prompt audio").add_subparsers(
        dest="prompts_cmd", required=True
    )
    b = prompts.add_parser("build", help="generate prompt audio with espeak-ng and sox")
    b.add_argument("--force", action="store_true", help="rebuild every prompt")
    b.set_defaults(func=_prompts_build)

    ann = sub.add_parser("announce", help="the special announcement played before the menu")
    a = ann.add_subparsers(dest="announce_cmd", required=True)
    s = a.add_parser("set", help="set (and synthesise) the announcement")
    s.add_argument("text", help="what callers hear, in Vietnamese")
    s.add_argument(
        "--until", help="ISO date-time with offset when it stops (default: until cleared)"
    )
    s.add_argument("--by", default="cli", help="who sets it")
    s.set_defaults(func=_announce_set)
    c = a.add_parser("clear", help="stop the announcement")
    c.add_argument("--by", default="cli")
    c.set_defaults(func=_announce_clear)
    a.add_parser("show", help="print the active announcement").set_defaults(func=_announce_show)


def _menu_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    path = args.file or str(home_path(settings.ivr.menu))
    menu = load_menu(path)
    catalogue = load_catalogue(home_path(settings.ivr.prompts))
    problems = check_prompts(menu, set(catalogue))
    load_schedule(home_path(settings.ivr.schedule))
    if problems:
        for line in problems:
            print(line)
        raise ConfigError(path, "prompts", f"{len(problems)} prompt(s) missing from the catalogue")
    print(f"{path}: OK ({len(menu.nodes)} nodes, {len(menu.prompt_names())} prompts)")
    return 0


def _prompts_build(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    report = ensure_built(settings, progress=True, force=args.force)
    print(report.summary())
    return 0


def _parse_until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TongdaiError(f"--until: not an ISO date-time: {text!r}") from None
    if value.tzinfo is None:
        raise TongdaiError("--until: give a time zone offset, e.g. 2026-12-01T17:00+07:00")
    return value


def _announce_set(args: argparse.Namespace) -> int:
    from ivr.announcements import set_announcement
    from tongdai.db import make_engine, upgrade_engine

    settings = load_settings(args.config)
    until = _parse_until(args.until)
    name = f"thong_bao_{int(time.time())}"
    build(Catalogue({name: args.text}), home_path(settings.ivr.announcements_dir), progress=False)
    prompt = f"{settings.ivr.asterisk_announcements_dir}/{name}"

    async def go() -> None:
        engine = make_engine(settings.database.resolved_url())
        try:
            await upgrade_engine(engine)
            try:
                a = await set_announcement(engine, args.text, prompt, until, args.by)
            except ValueError as exc:
                raise TongdaiError(str(exc)) from None
            print(f"announcement {a.id} active until {a.active_until or 'cleared'}: {prompt}")
        finally:
            await engine.dispose()

    asyncio.run(go())
    return 0


def _announce_clear(args: argparse.Namespace) -> int:
    from ivr.announcements import clear_announcement
    from tongdai.db import make_engine, upgrade_engine

    settings = load_settings(args.config)

    async def go() -> int:
        engine = make_engine(settings.database.resolved_url())
        try:
            await upgrade_engine(engine)
            return await clear_announcement(engine, args.by)
        finally:
            await engine.dispose()

    print(f"cleared {asyncio.run(go())} announcement(s)")
    return 0


def _announce_show(args: argparse.Namespace) -> int:
    from ivr.announcements import active_announcement
    from tongdai.clock import utcnow
    from tongdai.db import make_engine, upgrade_engine

    settings = load_settings(args.config)

    async def go() -> str:
        engine = make_engine(settings.database.resolved_url())
        try:
            await upgrade_engine(engine)
            a = await active_announcement(engine, utcnow())
            return f"{a.text} ({a.prompt_file}, until {a.active_until})" if a else "none"
        finally:
            await engine.dispose()

    print(asyncio.run(go()))
    return 0
