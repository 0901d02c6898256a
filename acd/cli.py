"""``tongdai agent login|logout|pause|unpause AGENT [--reason R]``.

The command reaches the running engine through Asterisk: it sends an AMI ``UserEvent``
(``TongdaiAgent``) that the engine's distributor receives in order with every other AMI event
- the same event a phone's feature code raises from the dialplan. No second control channel,
and the AMI login (secret generated at install) is the authentication.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from acd.agent import PauseReason
from pbx.ami import AmiClient
from tongdai.errors import AmiError, TongdaiError
from tongdai.settings import home_path, load_settings

OPS = ("login", "logout", "pause", "unpause")


def register(sub: Any) -> None:
    p = sub.add_parser("agent", help="log agents in/out, pause and unpause them")
    p.add_argument("op", choices=OPS)
    p.add_argument("agent", help="agent id, e.g. agent101")
    p.add_argument(
        "--reason",
        default="break",
        choices=[r.value for r in PauseReason if r is not PauseReason.MISSED_CALLS],
        help="pause reason (default: break)",
    )
    p.set_defaults(func=_agent)


def _agent(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    secret_file = home_path(settings.ami.secret_file)
    try:
        secret = secret_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise TongdaiError(f"no AMI secret at {secret_file}: is the lab installed?") from None

    async def send() -> None:
        client = AmiClient(
            settings.ami.host,
            settings.ami.port,
            settings.ami.username,
            secret,
            connect_timeout=settings.ami.connect_timeout,
            action_timeout=settings.ami.action_timeout,
        )
        try:
            await client.start()
            headers = {"UserEvent": "TongdaiAgent", "Agent": args.agent, "Op": args.op}
            if args.op == "pause":
                headers["Reason"] = args.reason
            await client.action("UserEvent", **headers)
        except AmiError as exc:
            raise TongdaiError(f"cannot reach Asterisk's AMI: {exc}") from exc
        finally:
            await client.close()

    asyncio.run(send())
    print(f"{args.op} sent for {args.agent}")
    return 0
