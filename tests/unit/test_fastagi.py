"""The FastAGI server against hostile and broken clients: other calls keep working."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ivr.agi import AgiChannel
from ivr.fastagi import FastAgiServer
from tongdai.errors import AgiHangup

HEADERS = (
    "agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0.0.1/ivr\n"
    "agi_channel: PJSIP/anonymous-00000001\nagi_uniqueid: {uid}\nagi_callerid: 0905000111\n\n"
)


class Recorder:
    """A handler that runs a tiny dialogue: plays one prompt, then sets a variable."""

    def __init__(self) -> None:
        self.results: dict[str, str | None] = {}
        self.hangups: list[str] = []

    async def __call__(self, ch: AgiChannel, script: str) -> None:
        uid = ch.env["agi_uniqueid"]
        try:
            key = await ch.stream_file("/snd/menu_chinh")
            await ch.set_variable("TONGDAI_ACTION", "queue")
            self.results[uid] = key
        except AgiHangup:
            self.hangups.append(uid)
            raise


@pytest.fixture
async def server() -> AsyncIterator[tuple[FastAgiServer, Recorder]]:
    rec = Recorder()
    srv = FastAgiServer(rec, host="127.0.0.1", port=0, header_timeout=0.5, command_timeout=2)
    await srv.start()
    try:
        yield srv, rec
    finally:
        await srv.close()


async def asterisk_call(port: int, uid: str, replies: list[bytes]) -> list[str]:
    """Play Asterisk's side: send headers, answer each command with the next reply."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(HEADERS.format(uid=uid).encode())
    commands = []
    try:
        for reply in replies:
            line = await asyncio.wait_for(r.readline(), 2)
            commands.append(line.decode().strip())
            w.write(reply)
            await w.drain()
        # the handler closes the connection when the call is done
        assert await asyncio.wait_for(r.read(), 2) == b""
    finally:
        w.close()
    return commands


async def a_good_call_works(port: int, uid: str) -> None:
    cmds = await asterisk_call(port, uid, [b"200 result=52 endpos=1234\n", b"200 result=1\n"])
    assert cmds[0] == 'STREAM FILE /snd/menu_chinh "0123456789*#"'
    assert cmds[1] == 'SET VARIABLE TONGDAI_ACTION "queue"'


async def closed_by_server(r: asyncio.StreamReader) -> bool:
    """True when the server closed the connection (EOF, or a reset when data was left unread)."""
    try:
        return await asyncio.wait_for(r.read(), 3) == b""
    except ConnectionResetError:
        return True


async def wait_for(cond: object, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_a_normal_call_gets_the_key_pressed(server: tuple[FastAgiServer, Recorder]) -> None:
    srv, rec = server
    await a_good_call_works(srv.port, "1.1")
    await wait_for(lambda: "1.1" in rec.results)
    assert rec.results["1.1"] == "4"


async def test_given_partial_headers_then_close_then_other_calls_work(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, rec = server
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"agi_network: yes\nagi_chan")
    await w.drain()
    w.close()
    await a_good_call_works(srv.port, "2.1")
    await wait_for(lambda: srv.active == 0)


async def test_given_a_client_that_sends_headers_slowly_forever_then_it_is_dropped(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, _ = server
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"agi_network: yes\n")
    await w.drain()
    # header_timeout is 0.5 s: the server closes on us, and meanwhile calls are served
    await a_good_call_works(srv.port, "3.1")
    assert await closed_by_server(r)
    w.close()


async def test_given_garbage_then_the_connection_is_closed(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, _ = server
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe")
    await w.drain()
    assert await closed_by_server(r)
    w.close()
    await a_good_call_works(srv.port, "4.1")


async def test_given_a_1mb_line_then_only_that_connection_is_closed(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, _ = server
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"agi_network: " + b"x" * 1_000_000 + b"\n\n")
    with contextlib.suppress(ConnectionError):
        await w.drain()
    assert await closed_by_server(r)
    w.close()
    await a_good_call_works(srv.port, "5.1")


async def test_given_hangup_between_command_and_reply_then_replies_are_not_shifted(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, rec = server
    # HANGUP arrives before STREAM FILE's reply; the reply still belongs to STREAM FILE and
    # the next command is answered 511 (dead channel): the handler sees a hang-up, not "key 0"
    cmds = await asterisk_call(
        srv.port,
        "6.1",
        [b"HANGUP\n200 result=-1 endpos=0\n", b"511 Command Not Permitted on a dead channel\n"],
    )
    assert cmds[0].startswith("STREAM FILE")
    await wait_for(lambda: "6.1" in rec.hangups)
    assert "6.1" not in rec.results


async def test_given_a_hangup_line_after_a_digit_then_the_digit_still_counts(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, rec = server
    await asterisk_call(srv.port, "7.1", [b"200 result=49 endpos=10\nHANGUP\n", b"200 result=1\n"])
    await wait_for(lambda: "7.1" in rec.results)
    assert rec.results["7.1"] == "1"


async def test_given_1000_connections_opened_and_dropped_then_calls_still_work(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, rec = server

    async def drop(i: int) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        if i % 2:
            w.write(b"agi_network: yes\n")
        w.close()

    for batch in range(10):
        await asyncio.gather(*(drop(batch * 100 + i) for i in range(100)))
    await asyncio.gather(*(a_good_call_works(srv.port, f"8.{i}") for i in range(20)))
    await wait_for(lambda: srv.active == 0)
    assert len([k for k in rec.results if k.startswith("8.")]) == 20


async def test_given_a_multiline_error_reply_then_it_is_read_whole(
    server: tuple[FastAgiServer, Recorder],
) -> None:
    srv, rec = server
    await asterisk_call(
        srv.port,
        "9.1",
        [
            b"200 result=0 endpos=100\n",
            b"520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE\n"
            b"520 End of proper usage.\n",
        ],
    )
    await wait_for(lambda: srv.active == 0)
    assert "9.1" not in rec.results  # the handler saw an error, not a bogus success


async def test_when_the_server_closes_then_calls_in_progress_are_cancelled() -> None:
    started = asyncio.Event()

    async def slow(ch: AgiChannel, script: str) -> None:
        started.set()
        await asyncio.sleep(30)

    srv = FastAgiServer(slow, port=0)
    await srv.start()
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(HEADERS.format(uid="10.1").encode())
    await asyncio.wait_for(started.wait(), 2)
    async with asyncio.timeout(3):
        await srv.close()
    assert srv.active == 0
    w.close()
