"""``agi://.../rejoin``: the way back in for a caller whose engine died under them.

A FastAGI session that ends without a word (the engine was killed or crashed while the caller
was in the menu, the transfer prompt, or a wait-loop announcement) leaves Asterisk with
``AGISTATUS=SUCCESS`` and no ``TONGDAI_ACTION``; a session refused (the engine is restarting)
gives ``AGISTATUS=FAILURE``. Either way the dialplan (``[tongdai-rejoin]``) keeps the caller on
music and asks this script again every second until an engine answers it:

1. the ticket: ``TONGDAI_TICKET`` if the lost session had set it, else the ticket the lost
   session opened for this channel (``find_by_uniqueid``: the session may have died between
   writing it and telling the dialplan), else a new one (the caller never reached a live
   engine). One ticket per call, never none; the path records the ``rejoin`` step. The ticket
   store spools when the database is away, so this does not wait for it.
2. the queue: ``TONGDAI_QUEUE`` if the lost session had chosen one, else the general queue;
   the hand-over (``QueueHandover.rejoin``) puts the caller back in line by their arrival time
   and the dialplan reads the same variables as after the menu.
3. not yet: a freshly started engine answers FastAGI before its distribution has read its
   stored state back; until then the caller is told nothing and asks again a second later
   (taken in earlier, a caller could be counted twice or jump ahead of restored callers);
4. the system is full: app_queue's general queue (``TONGDAI_ACTION=queue``), as for any
   caller the engine cannot hold.

Store errors never stop the caller: a caller without a ticket still reaches an agent (the
queue_log reconciliation of ``appqueue`` is the last net for that ticket).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ivr.agi import AgiSession, caller_number
from ivr.fastagi import AgiScripts
from ivr.handover import QueuedCaller
from ivr.runner import IvrContext
from pbx.channels import channel_started
from tickets.model import IvrStep
from tongdai.errors import StoreError

log = logging.getLogger(__name__)

#: the path step every rejoined caller's ticket gets
REJOIN_NODE = "rejoin"
#: its detail: the ticket was opened by the lost session, or here
FOUND, OPENED = "engine_lost", "ivr_unreachable"


async def rejoin_ticket(ctx: IvrContext, uniqueid: str, caller: str | None) -> str | None:
    """The caller's one ticket (found or opened, see the module's docstring), with the
    ``rejoin`` step; None only when the store refuses to open one."""
    found = None
    if uniqueid:
        try:
            found = await ctx.tickets.find_by_uniqueid(uniqueid)
        except StoreError as exc:
            log.warning("rejoin: ticket of %s not looked up (%s): opening one", uniqueid, exc)
    if found is not None:
        code, detail = found.code, FOUND
    else:
        started = channel_started(uniqueid)
        at = datetime.fromtimestamp(started, UTC) if started is not None else ctx.now()
        try:
            opened = await ctx.tickets.open(
                channel="voice", caller=caller, uniqueid=uniqueid or None, started_at=at
            )
        except StoreError as exc:
            log.error("rejoin: no ticket for %s (%s)", uniqueid, exc)
            return None
        code, detail = opened.code, OPENED
    await _mark(ctx, code, detail)
    return code


async def _mark(ctx: IvrContext, code: str, detail: str) -> None:
    try:
        await ctx.tickets.append_steps(code, [IvrStep(ctx.now(), REJOIN_NODE, detail=detail)])
        if detail == OPENED:
            await ctx.tickets.update(code, category="chung")
    except StoreError as exc:
        log.warning("rejoin: step not written on %s (%s)", code, exc)


async def rejoin(session: AgiSession, ctx: IvrContext) -> None:
    env = session.env
    uid = env.get("agi_uniqueid", "")
    caller = caller_number(env)
    code = await session.get_variable("TONGDAI_TICKET") or await rejoin_ticket(ctx, uid, caller)
    if code:
        await session.set_variable("TONGDAI_TICKET", code)
    if not ctx.handover.ready():
        log.info("rejoin: %s asks again (the distribution is still starting)", uid)
        return  # no TONGDAI_ACTION: the dialplan plays a second of music and asks again
    queue = await session.get_variable("TONGDAI_QUEUE") or ctx.menu.general_queue
    who = QueuedCaller(uid, env.get("agi_channel", ""), caller, code)
    await session.set_variable("TONGDAI_QUEUE", queue)
    if not ctx.handover.rejoin(who, queue):
        log.warning("rejoin: the system is full, %s goes to app_queue's general queue", uid)
        await session.set_variable("TONGDAI_QUEUE", ctx.menu.general_queue)
        await session.set_variable("TONGDAI_ACTION", "queue")
        return
    for name, value in ctx.handover.variables(queue).items():
        await session.set_variable(name, value)
    log.info("rejoin: %s back in line for %s (ticket %s)", uid, queue, code)


def register_scripts(scripts: AgiScripts, ctx: IvrContext) -> None:
    """``agi://.../rejoin`` (``[tongdai-rejoin]`` in the dialplan)."""

    async def script(channel: AgiSession) -> None:
        await rejoin(channel, ctx)

    scripts.add("rejoin", script)
