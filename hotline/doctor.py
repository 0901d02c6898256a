"""``tongdai doctor``: checks a deployment and says what to fix.

Each check is OK, WARN (works, but fix it) or FAIL (something will not work); the exit code
is 1 when anything fails. Checks: the settings file, the database (reachable, migrations
current), AMI (login with the configured secret), FastAGI and the web app (listening), Redis
(when the ACD's state is kept there), secret files (present, not readable by others), the
prompts (built for every catalogue entry), free disk space for recordings and attachments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ivr.prompts import load_catalogue
from pbx.ami import AmiClient
from tongdai.db import make_engine, migration_status
from tongdai.errors import TongdaiError
from tongdai.settings import Settings, home_path, load_settings

OK, WARN, FAIL = "ok", "warn", "fail"
#: free space under which the recordings' disk is a warning / a failure
LOW_DISK_WARN = 2 * 1024**3
LOW_DISK_FAIL = 200 * 1024**2
#: the channel settings that name a secret file
SECRET_KEYS = ("secret_file", "password_file", "oa_secret_key_file", "app_secret_file",
               "access_token_file", "refresh_token_file", "verify_token_file", "page_token_file",
               "smtp_password_file")  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


async def _db(s: Settings) -> list[Check]:
    engine = make_engine(s.database.resolved_url())
    try:
        current, heads = await migration_status(engine)
    except TongdaiError as exc:
        return [Check("database", FAIL, str(exc), "start the database or fix [database] url")]
    finally:
        await engine.dispose()
    if current == heads:
        return [Check("database", OK, f"reachable, schema at {', '.join(sorted(heads))}")]
    return [
        Check(
            "database",
            WARN,
            f"schema at {', '.join(sorted(current)) or 'empty'}, code expects "
            f"{', '.join(sorted(heads))}",
            "the engine migrates at start; or run `tongdai serve` once",
        )
    ]


async def _ami(s: Settings) -> list[Check]:
    path = home_path(s.ami.secret_file)
    if not path.is_file():
        return [Check("ami", FAIL, f"no secret file {path}", "write the AMI secret there (0600)")]
    client = AmiClient(
        s.ami.host,
        s.ami.port,
        s.ami.username,
        path.read_text(encoding="utf-8").strip(),
        connect_timeout=3,
        action_timeout=3,
    )
    try:
        await client.start()
        reply = await client.action("CoreStatus")
        version = reply.get("CoreStartupDate") or "up"
    except TongdaiError as exc:
        fix = "is Asterisk running? do manager.conf's user and the secret match?"
        return [Check("ami", FAIL, f"{s.ami.host}:{s.ami.port}: {exc}", fix)]
    finally:
        await client.close()
    return [Check("ami", OK, f"logged in as {s.ami.username} ({version})")]


async def _listening(name: str, host: str, port: int, fix: str) -> list[Check]:
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return [Check(name, FAIL, f"{host}:{port} refuses ({exc or 'timeout'})", fix)]
    return [Check(name, OK, f"listening on {host}:{port}")]


async def _redis(s: Settings) -> list[Check]:
    if not s.acd.state_store:
        return []
    import redis.asyncio as aioredis

    client = aioredis.from_url(s.acd.state_store, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # redis raises its own tree; any failure is the answer
        return [
            Check(
                "redis", FAIL, f"{s.acd.state_store}: {exc}", "start Redis or fix acd.state_store"
            )
        ]
    finally:
        await client.aclose()
    return [Check("redis", OK, f"{s.acd.state_store} answers")]


def _secret(name: str, path: Path) -> Check:
    if not path.is_file():
        return Check(name, FAIL, f"{path} is missing", "create it (chmod 600)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(name, WARN, f"{path} is readable by others ({oct(mode)})", f"chmod 600 {path}")
    return Check(name, OK, f"{path} (0{mode:o})")


def _secrets(s: Settings) -> list[Check]:
    found = [_secret("secret ami", home_path(s.ami.secret_file))]
    for channel, table in sorted(s.channels.tables.items()):
        for key in SECRET_KEYS:
            value = table.get(key)
            if isinstance(value, str) and value:
                found.append(_secret(f"secret {channel}.{key}", home_path(value)))
    return found


def _prompts(s: Settings) -> list[Check]:
    try:
        names = list(load_catalogue(home_path(s.ivr.prompts)))
    except TongdaiError as exc:
        return [Check("prompts", FAIL, str(exc), "fix the prompt catalogue")]
    out = home_path(s.ivr.sounds_dir)
    missing = [n for n in names if not (out / f"{n}.wav").is_file()]
    if missing:
        return [Check("prompts", FAIL, f"{len(missing)} of {len(names)} not built "
                      f"(e.g. {', '.join(missing[:3])})", "tongdai prompts build")]  # fmt: skip
    return [Check("prompts", OK, f"{len(names)} built in {out}")]


def _disk(s: Settings) -> list[Check]:
    checks = []
    for name, folder in (
        ("disk recordings", home_path(s.ivr.messages_dir)),
        ("disk attachments", home_path(s.channels.attachments_dir)),
    ):
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        status = FAIL if free < LOW_DISK_FAIL else WARN if free < LOW_DISK_WARN else OK
        fix = "free disk space or move the folder" if status != OK else ""
        checks.append(Check(name, status, f"{free / 1024**3:.1f} GiB free at {probe}", fix))
    return checks


async def diagnose(s: Settings) -> list[Check]:
    steps: list[Callable[[], Awaitable[list[Check]]]] = [
        lambda: _db(s),
        lambda: _ami(s),
        lambda: _listening(
            "fastagi", s.fastagi.host, s.fastagi.port, "is `tongdai serve` running?"
        ),
        lambda: _redis(s),
    ]
    if s.web.enabled:
        steps.append(
            lambda: _listening("web", s.web.host, s.web.port, "is `tongdai serve` running?")
        )
    found = [Check("settings", OK, s.source)]
    for results in await asyncio.gather(*(step() for step in steps)):
        found += results
    return [*found, *_secrets(s), *_prompts(s), *_disk(s)]


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check a deployment and say what to fix")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except TongdaiError as exc:
        checks = [Check("settings", FAIL, str(exc), "fix the file and field named")]
    else:
        checks = asyncio.run(diagnose(settings))
    if args.json:
        print(json.dumps([asdict(c) for c in checks], ensure_ascii=False, indent=1))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = {OK: "OK  ", WARN: "WARN", FAIL: "FAIL"}[c.status]
            tail = f"  -> {c.fix}" if c.fix and c.status != OK else ""
            print(f"{mark} {c.name.ljust(width)}  {c.detail}{tail}")
    return 1 if any(c.status == FAIL for c in checks) else 0
