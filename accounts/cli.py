"""``tongdai users add|passwd|token|list|demo``: the web app's accounts.

    tongdai users add lan --role agent --agent agent101 --phone PJSIP/agent101
    echo 'mật-khẩu-dài' | tongdai users add gs1 --role supervisor --password-stdin
    tongdai users token gs1        # prints a new API token (shown once)
    tongdai users add stp1 --role agency --agency so_tu_phap   # an agency's desk

Without ``--password-stdin`` the password is asked twice on the terminal. There is no default
account; ``users demo`` (the lab) creates demo accounts with random passwords and prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.model import ROLE_LABELS, Role
from accounts.store import AuthStore, create_demo_users
from tongdai.db import make_engine, upgrade_engine
from tongdai.errors import TongdaiError
from tongdai.settings import load_settings

T = TypeVar("T")


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="web app accounts").add_subparsers(
        dest="users_cmd", required=True
    )
    add = users.add_parser("add", help="create an account")
    add.add_argument("name", help="login name (a-z 0-9 _ . -)")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--agent", help="the agent id this account works as (console), e.g. agent101")
    add.add_argument(
        "--phone",
        help="own phone for listen/whisper/barge, e.g. PJSIP/sup201 (an ACD [supervisors] phone)",
    )
    add.add_argument("--display-name", help="name shown in the interface")
    add.add_argument("--agency", help="agency role: its id in the agencies file, e.g. so_tu_phap")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--no-password", action="store_true", help="API token only, no login")
    add.set_defaults(func=_add)
    pw = users.add_parser("passwd", help="set an account's password")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=_passwd)
    tok = users.add_parser("token", help="print a new API token for an account")
    tok.add_argument("name")
    tok.add_argument("--label", help="what the token is for")
    tok.set_defaults(func=_token)
    users.add_parser("list", help="list accounts").set_defaults(func=_list)
    users.add_parser("demo", help="lab: demo accounts with random passwords").set_defaults(
        func=_demo
    )


def _run(args: argparse.Namespace, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    settings = load_settings(args.config)

    async def go() -> T:
        engine = make_engine(settings.database.resolved_url())
        try:
            await upgrade_engine(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Mật khẩu / password: ")
        if getpass.getpass("Nhập lại / again: ") != password:
            raise TongdaiError("the two passwords differ")
    else:
        raise TongdaiError("no terminal to ask the password: use --password-stdin")
    return password


def _add(args: argparse.Namespace) -> int:
    password = None if args.no_password else _password(args)

    async def work(engine: AsyncEngine) -> str:
        try:
            user = await AuthStore(engine).add_user(
                args.name,
                args.role,
                password,
                agent_id=args.agent,
                phone=args.phone,
                display_name=args.display_name,
                agency_id=args.agency,
            )
        except ValueError as exc:
            raise TongdaiError(str(exc)) from None
        return f"added {user.name} ({ROLE_LABELS[user.role]})"

    print(_run(args, work))
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _password(args)

    async def work(engine: AsyncEngine) -> None:
        try:
            await AuthStore(engine).set_password(args.name, password)
        except KeyError:
            raise TongdaiError(f"no user {args.name!r}") from None
        except ValueError as exc:
            raise TongdaiError(str(exc)) from None

    _run(args, work)
    print(f"password of {args.name} changed")
    return 0


def _token(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> str:
        try:
            return await AuthStore(engine).new_token(args.name, args.label)
        except KeyError:
            raise TongdaiError(f"no user {args.name!r}") from None

    print(_run(args, work))
    return 0


def _list(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> list[str]:
        return [
            f"{u.name:<20} {u.role.value:<11} {u.agent_id or '-':<10} {u.phone or '-'}"
            for u in await AuthStore(engine).users()
        ]

    for line in _run(args, work):
        print(line)
    return 0


def _demo(args: argparse.Namespace) -> int:
    for name, role, password in _run(args, create_demo_users):
        print(f"{name:<10} {role:<11} {password}")
    return 0
