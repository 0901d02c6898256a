"""The ACD's FastAGI scripts: what a waiting caller hears, and the satisfaction survey.

``acd_wait`` runs every N seconds of music (``[tongdai-acd-wait]``): the caller's position and,
when the estimate is supported by recent calls, the estimated wait in whole minutes; after the
configured wait, the offer of a callback that keeps their place in line.
``survey`` runs after the agent hangs up: a 1-5 score on the ticket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from acd.agent import AcdError
from acd.arrivals import Arrival, RedisArrivals
from acd.voice import VoiceAdapter
from ivr import say
from ivr.agi import DIGITS, AgiSession
from ivr.fastagi import AgiScripts
from pbx.channels import channel_started
from tickets.store import TicketStore
from tongdai.errors import StoreError

log = logging.getLogger(__name__)


async def acd_wait(
    session: AgiSession,
    dist: VoiceAdapter,
    sounds: str,
    leading: Callable[[], bool] | None = None,
    arrivals: RedisArrivals | None = None,
) -> None:
    """``leading``: with engine failover, whether this engine distributes calls now (None:
    one engine, always); a standby reads the caller's state from ``arrivals``."""
    uid = dist.call_id_of(session.env.get("agi_uniqueid", ""))

    def p(name: str) -> str:
        return f"{sounds}/{name}"

    if uid in dist.completed:
        # the agent hung up and the caller came back here: ask for their score, then goodbye
        await session.set_variable("TONGDAI_ACTION", "survey")
        return
    if uid in dist.timed_out:
        # waited the queue's maximum: say so and end politely (the ticket says timeout_queue)
        await session.stream_file(p("qua_tai"), "")
        await session.set_variable("TONGDAI_ACTION", "hangup")
        return
    if leading is not None and not leading():
        # failover standby (first in the dialplan, or the leader is being replaced): the
        # leader, old or new, holds the caller's place; what to do comes from Redis
        if arrivals is not None:
            await _standby_wait(session, uid, arrivals, p)
        return
    if not dist.waiting(uid):
        # a caller in our music loop that we do not hold: the engine restarted and the AMI
        # rebuild missed them. Take them back (at the end of the line) rather than lose them;
        # if the system is full, app_queue's general queue takes them.
        queue = await session.get_variable("TONGDAI_QUEUE") or "chung"
        ticket = await session.get_variable("TONGDAI_TICKET")
        channel = session.env.get("agi_channel", "")
        caller = session.env.get("agi_callerid")
        if dist.enqueue(uid, channel, queue, caller, ticket, entered_at=channel_started(uid)):
            dist.ivr_done(uid)
            log.warning("took back a waiting caller the distribution did not hold")
        else:
            await session.set_variable("TONGDAI_ACTION", "fallback")
        return
    dist.ivr_done(uid)  # in the wait loop, so the IVR is done with them (idempotent)
    key = session.env.get("agi_arg_1") or None  # pressed during the music
    news = dist.wait_news(uid)
    if key is None and news is not None:
        words: list[str] = []
        if news.position is not None:
            words += ["vi_tri_cho", *say.number(news.position), "trong_hang_doi"]
            if news.minutes is not None:
                words += ["thoi_gian_cho", *say.number(news.minutes), "phut"]
        words.append("moi_giu_may")
        if news.may_call_back:
            words.append("goi_lai_moi")  # "press 1 at any time to be called back"
        for w in words:  # a key pressed while we speak counts as well
            key = await session.stream_file(p(w), DIGITS)
            if key is not None:
                break
    if key == dist.callback_key and dist.may_call_back(uid):
        try:
            dist.request_callback(uid)
        except AcdError as exc:
            log.warning("callback refused: %s", exc)
            return
        await session.stream_file(p("goi_lai_xac_nhan"), "")
        await session.set_variable("TONGDAI_ACTION", "hangup")


async def _standby_wait(
    session: AgiSession, uid: str, arrivals: RedisArrivals, p: Callable[[str], str]
) -> None:
    """The wait loop's turn on a standby engine: the call's state is the leader's, in Redis."""
    try:
        state = await arrivals.state(uid)
    except StoreError as exc:
        log.warning("standby: state of %s unknown (%s): the caller keeps waiting", uid, exc)
        return
    if state == "survey":
        await session.set_variable("TONGDAI_ACTION", "survey")
    elif state == "timeout":
        await session.stream_file(p("qua_tai"), "")
        await session.set_variable("TONGDAI_ACTION", "hangup")
    elif state == "fallback":  # the leader's line was full
        await session.set_variable("TONGDAI_ACTION", "fallback")
    elif state is None:
        # in our music loop and held by nobody (e.g. handed over to an engine that died
        # before storing them): hand them to the leader now, at the end of the line
        queue = await session.get_variable("TONGDAI_QUEUE") or "chung"
        ticket = await session.get_variable("TONGDAI_TICKET")
        caller = session.env.get("agi_callerid") or None
        channel = session.env.get("agi_channel", "")
        arrivals.forward(Arrival(uid, channel, queue, caller, ticket or None, time.time()))
        log.warning("standby: handed a waiting caller nobody held to the leader")
    else:
        await session.stream_file(p("moi_giu_may"), "")


async def survey(
    session: AgiSession, tickets: TicketStore, sounds: str, ticket_of: Callable[[str], str | None]
) -> None:
    """Ask for a 1-5 score; store it on the call's ticket."""
    code = await session.get_variable("TONGDAI_TICKET") or ticket_of(
        session.env.get("agi_uniqueid", "")
    )
    key = await session.stream_file(f"{sounds}/khao_sat", DIGITS)
    if key is None:
        key = await session.wait_for_digit(6000)
    if key is None or key not in "12345" or not code:
        return
    try:
        await tickets.update(code, satisfaction=int(key))
    except (StoreError, KeyError, ValueError) as exc:
        log.error("satisfaction %s for %s not stored: %s", key, code, exc)
        return
    await session.stream_file(f"{sounds}/khao_sat_cam_on", "")


def register_scripts(
    scripts: AgiScripts,
    dist: VoiceAdapter,
    tickets: TicketStore,
    sounds: str,
    *,
    leading: Callable[[], bool] | None = None,
    arrivals: RedisArrivals | None = None,
) -> None:
    """The ACD's scripts: ``acd_wait`` (the wait loop's announcements) and ``survey``."""

    async def wait(channel: AgiSession) -> None:
        await acd_wait(channel, dist, sounds, leading, arrivals)

    async def ask(channel: AgiSession) -> None:
        await survey(channel, tickets, sounds, dist.ticket_of)

    scripts.add("acd_wait", wait)
    scripts.add("survey", ask)
