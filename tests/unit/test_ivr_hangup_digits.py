"""A caller hanging up while keying (a dossier code, a menu key) is a hang-up, not an entry.

Asterisk answers a command interrupted by a hang-up with ``200 result=-1`` and sends the
``HANGUP`` line only after it; ``-1`` is also how it reports a failure on a live channel (a
missing prompt). These tests play Asterisk's side of the FastAGI socket byte for byte.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dossiers.memory import MemoryDossierLookup
from ivr.agi import AgiChannel
from ivr.fake import FakeAgiSession
from ivr.menu import load_menu
from ivr.runner import IvrContext, run_call
from ivr.schedule import ALWAYS_OPEN
from tickets.memory import MemoryTicketStore
from tickets.model import Outcome, Ticket
from tongdai.errors import AgiHangup
from tongdai.settings import PROJECT_HOME

MENU = load_menu(PROJECT_HOME / "ivr/menu_1022.toml")
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
ENV = {"agi_callerid": "0905123456", "agi_uniqueid": "1700000000.7", "agi_channel": "PJSIP/x-1"}
#: commands res_agi allows on a dead channel (its table's ``dead`` column) that we use
DEAD_OK = ("NOOP", "SET VARIABLE", "GET VARIABLE", "VERBOSE")


class ScriptedAsterisk:
    """Asterisk's side of one AGI session: ``reply(command)`` gives the bytes to send back;
    after ``hang_up()`` commands not allowed on a dead channel get 511, like res_agi."""

    def __init__(self, reply: Callable[[str], bytes]) -> None:
        self.reply = reply
        self.commands: list[str] = []
        self.dead = False

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command = line.decode().strip()
                self.commands.append(command)
                if self.dead and not command.startswith(DEAD_OK):
                    writer.write(b"511 Command Not Permitted on a dead channel or intercept\n")
                else:
                    writer.write(self.reply(command))
                await writer.drain()
        finally:
            writer.close()


async def session_with(
    asterisk: ScriptedAsterisk,
) -> tuple[AgiChannel, asyncio.Task[None], asyncio.StreamWriter]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    a_reader, a_writer = await asyncio.open_connection(sock=theirs)
    task = asyncio.create_task(asterisk.serve(a_reader, a_writer))
    return AgiChannel(reader, writer, ENV, command_timeout=2), task, writer


def context(tmp: Path) -> tuple[IvrContext, MemoryTicketStore]:
    tickets = MemoryTicketStore()
    ctx = IvrContext(
        menu=MENU,
        tickets=tickets,
        dossiers=MemoryDossierLookup([]),
        schedule=ALWAYS_OPEN,
        sounds="/snd",
        messages_asterisk="/msg",
        messages_host=tmp,
        now=lambda: NOW,
    )
    return ctx, tickets


def path_of(t: Ticket) -> list[tuple[str, str | None, str | None]]:
    return [(s.node, s.key, s.detail) for s in t.ivr_path]


async def test_given_a_fake_caller_hanging_up_while_keying_a_code_then_abandoned_ivr(
    tmp_path: Path,
) -> None:
    ctx, tickets = context(tmp_path)
    await run_call(FakeAgiSession(["2", "12H"]), ctx)
    (t,) = await tickets.list()
    assert t.outcome == Outcome.ABANDONED_IVR
    assert path_of(t) == [("main", "2", None), ("hangup", None, None)]
    assert t.dossier_code is None


async def test_given_asterisk_answers_minus_one_then_hangup_during_get_data_then_a_hangup(
    tmp_path: Path,
) -> None:
    """What Asterisk really sends when the caller hangs up mid-code: the ticket path used to
    read ``tra_cuu -1 malformed`` before ``hangup``."""
    keys = iter([b"200 result=50\n"])  # the caller presses 2 (dossier status) at the menu

    def reply(command: str) -> bytes:
        if command.startswith("STREAM FILE"):
            return b"200 result=0 endpos=800\n"
        if command.startswith("WAIT FOR DIGIT"):
            return next(keys)
        if command.startswith("GET DATA"):
            asterisk.dead = True
            return b"200 result=-1\nHANGUP\n"
        if command.startswith("GET VARIABLE"):
            return b"200 result=0\n"
        return b"200 result=1\n" if command.startswith("SET VARIABLE") else b"200 result=0\n"

    asterisk = ScriptedAsterisk(reply)
    ctx, tickets = context(tmp_path)
    channel, served, writer = await session_with(asterisk)
    await run_call(channel, ctx)
    writer.close()
    await served
    (t,) = await tickets.list()
    assert path_of(t) == [("main", "2", None), ("hangup", None, None)]
    assert t.outcome == Outcome.ABANDONED_IVR
    # told apart by one NOOP; nothing was played to the dead channel after it
    get_data = next(i for i, c in enumerate(asterisk.commands) if c.startswith("GET DATA"))
    assert asterisk.commands[get_data + 1 :] == ["NOOP"]


@pytest.mark.parametrize(
    ("command", "first_reply"),
    [
        ("wait", b"200 result=-1\n"),
        ("stream", b"200 result=-1 endpos=0\n"),
        ("get_data", b"200 result=-1\n"),
    ],
)
async def test_given_minus_one_then_hangup_then_every_input_command_raises_agihangup(
    command: str, first_reply: bytes
) -> None:
    asterisk = ScriptedAsterisk(
        lambda c: b"200 result=0\n" if c == "NOOP" else first_reply + b"HANGUP\n"
    )
    channel, served, writer = await session_with(asterisk)
    calls = {
        "wait": lambda: channel.wait_for_digit(5000),
        "stream": lambda: channel.stream_file("/snd/menu_chinh"),
        "get_data": lambda: channel.get_data("/snd/nhap_ma", 5000, 21),
    }
    with pytest.raises(AgiHangup):
        await calls[command]()
    writer.close()
    await served


async def test_given_minus_one_on_a_live_channel_then_get_data_is_silence_not_digits() -> None:
    """A missing prompt also gives -1: the caller is still there, nothing was keyed."""

    def reply(command: str) -> bytes:
        return b"200 result=-1\n" if command.startswith("GET DATA") else b"200 result=0\n"

    asterisk = ScriptedAsterisk(reply)
    channel, served, writer = await session_with(asterisk)
    assert await channel.get_data("/snd/missing", 5000, 21) == ("", True)
    assert await channel.wait_for_digit(10) is None  # the channel is still usable
    assert not channel.hung_up
    writer.close()
    await served
    assert asterisk.commands[1] == "NOOP"
