"""Unit tests for pbx.ami against a fake AMI server (a real asyncio TCP server in the test)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from pbx.ami import (
    CONNECTED,
    DISCONNECTED,
    AmiActionFailed,
    AmiClient,
    AmiDisconnected,
    AmiEvent,
    AmiLoginRefused,
    AmiTimeout,
)

Handler = Callable[[dict[str, str]], list[bytes] | None]


def frame(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class FakeAmi:
    """Speaks enough AMI: banner, Login, scripted replies per action, pushed events, drops."""

    def __init__(self, username: str = "tester", secret: str = "s3cret") -> None:
        self.username, self.secret = username, secret
        self.handlers: dict[str, Handler] = {"Ping": lambda a: [self.reply(a, "Ping: Pong")]}
        self.actions: list[dict[str, str]] = []
        self.raw: list[str] = []
        self.logins = 0
        self.accepting = True
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    @staticmethod
    def reply(action: dict[str, str], *lines: str, response: str = "Success") -> bytes:
        return frame(f"Response: {response}", f"ActionID: {action['actionid']}", *lines)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def push(self, *chunks: bytes, pause: float = 0.0) -> None:
        for chunk in chunks:
            for writer in self.writers:
                writer.write(chunk)
                await writer.drain()
            if pause:
                # Lets each chunk reach the client as its own TCP read (the point of the test).
                await asyncio.sleep(pause)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        self.writers.append(writer)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                self.raw.append(raw.decode())
                action = {}
                for line in raw.decode().strip().split("\r\n"):
                    key, _, value = line.partition(": ")
                    action[key.lower()] = value
                self.actions.append(action)
                if action["action"] == "Login":
                    self.logins += 1
                    good = (action["username"], action["secret"]) == (self.username, self.secret)
                    writer.write(
                        self.reply(action, "Message: Authentication accepted")
                        if good
                        else self.reply(action, "Message: Authentication failed", response="Error")
                    )
                    continue
                handler = self.handlers.get(action["action"])
                replies = (
                    handler(action)
                    if handler
                    else [self.reply(action, "Message: Invalid/unknown command", response="Error")]
                )
                for reply in replies or []:
                    writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeAmi) -> AsyncIterator[AmiClient]:
    ami = AmiClient("127.0.0.1", fake.port, "tester", "s3cret", action_timeout=2.0)
    await ami.start()
    yield ami
    await ami.close()


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_given_good_credentials_when_start_then_logged_in_with_events_on(
    fake: FakeAmi, client: AmiClient
) -> None:
    assert client.connected
    assert client.banner == "Asterisk Call Manager/9.0.0"
    login = fake.actions[0]
    assert (login["action"], login["username"], login["events"]) == ("Login", "tester", "on")
    response = await client.action("Ping")
    assert response.get("Ping") == "Pong"
    assert response.name == "Success"
    assert response.action == "Ping"


async def test_given_bad_secret_when_start_then_login_refused(fake: FakeAmi) -> None:
    ami = AmiClient("127.0.0.1", fake.port, "tester", "wrong")
    with pytest.raises(AmiLoginRefused, match="Authentication failed"):
        await ami.start()
    assert not ami.connected
    with pytest.raises(AmiDisconnected):
        await ami.action("Ping")


async def test_given_nothing_listening_when_start_then_ami_error() -> None:
    ami = AmiClient("127.0.0.1", 1, "tester", "s3cret", connect_timeout=1.0)
    with pytest.raises(AmiDisconnected, match="cannot connect"):
        await ami.start()


async def test_when_replies_come_out_of_order_between_events_then_matched_by_action_id(
    fake: FakeAmi, client: AmiClient
) -> None:
    held: list[dict[str, str]] = []

    def hold(action: dict[str, str]) -> None:
        held.append(action)  # answered later, by "Second"

    fake.handlers["First"] = hold

    def second(action: dict[str, str]) -> list[bytes]:
        return [
            frame("Event: Newchannel", "Channel: PJSIP/a-1"),
            FakeAmi.reply(action, "Which: second"),
            frame("Event: Hangup", "Channel: PJSIP/a-1"),
            FakeAmi.reply(held[0], "Which: first"),
        ]

    fake.handlers["Second"] = second
    events = client.subscribe(["Newchannel", "Hangup"])
    first = asyncio.create_task(client.action("First"))
    await wait_until(lambda: bool(held))
    second_response = await client.action("Second")
    assert second_response.get("Which") == "second"
    assert (await first).get("Which") == "first"
    assert [(await events.get(1.0)).name for _ in range(2)] == ["Newchannel", "Hangup"]


async def test_given_no_reply_when_action_then_times_out_and_client_still_works(
    fake: FakeAmi, client: AmiClient
) -> None:
    fake.handlers["Silent"] = lambda a: None
    started = time.monotonic()
    with pytest.raises(AmiTimeout, match="Silent"):
        await client.action("Silent", action_timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert (await client.action("Ping")).get("Ping") == "Pong"


async def test_given_error_response_when_action_then_action_failed(client: AmiClient) -> None:
    with pytest.raises(AmiActionFailed, match="Invalid/unknown command") as failure:
        await client.action("NoSuchAction")
    assert failure.value.response.name == "Error"


async def test_when_list_action_then_its_events_are_collected_and_others_still_delivered(
    fake: FakeAmi, client: AmiClient
) -> None:
    def listing(action: dict[str, str]) -> list[bytes]:
        aid = f"ActionID: {action['actionid']}"
        return [
            FakeAmi.reply(action, "EventList: start", "Message: Channels will follow"),
            frame("Event: CoreShowChannel", aid, "Channel: PJSIP/a-1"),
            frame("Event: Newchannel", "Channel: PJSIP/b-2"),
            frame("Event: CoreShowChannel", aid, "Channel: PJSIP/c-3"),
            frame("Event: CoreShowChannelsComplete", aid, "EventList: Complete", "ListItems: 2"),
        ]

    fake.handlers["CoreShowChannels"] = listing
    events = client.subscribe()
    response = await client.action("CoreShowChannels")
    assert [e.get("Channel") for e in response.events[:-1]] == ["PJSIP/a-1", "PJSIP/c-3"]
    assert response.events[-1].name == "CoreShowChannelsComplete"
    assert (await events.wait_for(lambda e: e.name == "Newchannel", 1.0))["Channel"] == (
        "PJSIP/b-2"
    )


async def test_when_1000_events_then_every_subscriber_gets_them_in_order_even_if_one_is_slow(
    fake: FakeAmi, client: AmiClient
) -> None:
    fast, slow = client.subscribe(["UserEvent"]), client.subscribe(["UserEvent"])
    payload = b"".join(frame("Event: UserEvent", f"Seq: {i}") for i in range(1000))
    # Push in odd-sized chunks so message boundaries fall everywhere inside TCP reads.
    await fake.push(*(payload[i : i + 777] for i in range(0, len(payload), 777)))
    got_fast = [int((await fast.get(2.0))["Seq"]) for _ in range(1000)]
    got_slow = []
    for _ in range(1000):
        got_slow.append(int((await slow.get(2.0))["Seq"]))
        await asyncio.sleep(0)  # a consumer that yields between events
    assert got_fast == list(range(1000))
    assert got_slow == list(range(1000))


async def test_when_vietnamese_name_split_mid_character_across_reads_then_intact(
    fake: FakeAmi, client: AmiClient
) -> None:
    events = client.subscribe(["Newchannel"])
    raw = frame("Event: Newchannel", "CallerIDNum: 0905123456", "CallerIDName: Nguyễn Thị Ánh")
    cut = raw.index("ễ".encode()) + 1  # inside the 3-byte sequence of "ễ"
    await fake.push(raw[:cut], raw[cut:], pause=0.05)
    event = await events.get(2.0)
    assert event["CallerIDName"] == "Nguyễn Thị Ánh"


async def test_when_invalid_utf8_then_replaced_logged_and_event_still_delivered(
    fake: FakeAmi, client: AmiClient, caplog: pytest.LogCaptureFixture
) -> None:
    events = client.subscribe(["Newchannel"])
    with caplog.at_level(logging.WARNING, logger="pbx.ami_messages"):
        await fake.push(b"Event: Newchannel\r\nCallerIDName: Ho\xff\xfeng\r\n\r\n")
        event = await events.get(2.0)
    assert event["CallerIDName"] == "Ho\ufffd\ufffdng"
    assert "not valid UTF-8" in caplog.text


async def test_when_repeated_headers_then_all_values_kept(fake: FakeAmi, client: AmiClient) -> None:
    events = client.subscribe(["Newchannel"])
    await fake.push(frame("Event: Newchannel", "ChanVariable: A=1", "ChanVariable: B=2"))
    event = await events.get(2.0)
    assert event.get_all("chanvariable") == ["A=1", "B=2"]
    assert event.get("ChanVariable") == "A=1"


async def test_when_garbage_arrives_then_reader_survives(fake: FakeAmi, client: AmiClient) -> None:
    events = client.subscribe()
    await fake.push(
        b"garbage without colon\r\n\r\n",
        b"\r\n\r\n",
        b"\x00\x01\x02: \xff\r\n\r\n",
        frame("Response: Success", "ActionID: nobody-asked"),
        frame("Event: Hangup", "this line is junk", "Channel: PJSIP/x-1"),
        frame("Event: UserEvent", "UserEvent: after-garbage"),
    )
    event = await events.wait_for(lambda e: e.name == "UserEvent", 2.0)
    assert event["UserEvent"] == "after-garbage"
    assert client.connected
    assert (await client.action("Ping")).get("Ping") == "Pong"


async def test_given_pending_action_when_connection_drops_then_fails_at_once_and_no_replay(
    fake: FakeAmi,
) -> None:
    ami = AmiClient("127.0.0.1", fake.port, "tester", "s3cret", reconnect_backoff=(0.2, 0.4))
    await ami.start()
    events = ami.subscribe()
    fake.handlers["Originate"] = lambda a: None
    pending = asyncio.create_task(ami.action("Originate", Channel="PJSIP/x", action_timeout=30))
    await wait_until(lambda: fake.actions[-1]["action"] == "Originate")
    fake.accepting = False
    fake.drop()
    started = time.monotonic()
    with pytest.raises(AmiDisconnected, match="connection lost"):
        await pending
    assert time.monotonic() - started < 2.0
    assert (await events.wait_for(lambda e: e.name.startswith("__"), 2.0)).name == DISCONNECTED

    with pytest.raises(AmiDisconnected, match="not connected"):
        await ami.action("Originate", Channel="PJSIP/stale")

    fake.accepting = True
    connected = await events.wait_for(lambda e: e.name.startswith("__"), 5.0)
    assert connected.name == CONNECTED
    assert fake.logins == 2
    assert (await ami.action("Ping")).get("Ping") == "Pong"
    assert [a.get("channel") for a in fake.actions if a["action"] == "Originate"] == ["PJSIP/x"]
    await ami.close()


async def test_given_peer_stops_answering_when_idle_then_keepalive_detects_it(
    fake: FakeAmi,
) -> None:
    ami = AmiClient("127.0.0.1", fake.port, "tester", "s3cret", ping_interval=0.2)
    await ami.start()
    events = ami.subscribe([])
    fake.handlers["Ping"] = lambda a: None
    gone = await events.wait_for(lambda e: e.name == DISCONNECTED, 3.0)
    assert "keep-alive" in (gone.get("Reason") or "")
    await ami.close()


async def test_when_close_then_logoff_sent_pending_failed_and_subscriptions_end(
    fake: FakeAmi,
) -> None:
    fake.handlers["Logoff"] = lambda a: [FakeAmi.reply(a, response="Goodbye")]
    fake.handlers["Silent"] = lambda a: None
    ami = AmiClient("127.0.0.1", fake.port, "tester", "s3cret")
    await ami.start()
    events = ami.subscribe(["Newchannel"])
    pending = asyncio.create_task(ami.action("Silent"))
    await wait_until(lambda: fake.actions[-1]["action"] == "Silent")
    await ami.close()
    with pytest.raises(AmiDisconnected):
        await pending
    assert fake.actions[-1]["action"] == "Logoff"
    assert [e async for e in events] == []
    assert not ami.connected


async def test_when_caller_is_cancelled_then_cancellation_propagates(
    fake: FakeAmi, client: AmiClient
) -> None:
    fake.handlers["Silent"] = lambda a: None
    task = asyncio.create_task(client.action("Silent"))
    await wait_until(lambda: fake.actions[-1]["action"] == "Silent")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await client.action("Ping")).get("Ping") == "Pong"


async def test_when_list_valued_header_then_sent_once_per_item(
    fake: FakeAmi, client: AmiClient
) -> None:
    fake.handlers["Originate"] = lambda a: [FakeAmi.reply(a)]
    await client.action("Originate", Channel="PJSIP/x", Variable=["A=1", "B=2"])
    assert "Channel: PJSIP/x\r\nVariable: A=1\r\nVariable: B=2\r\n" in fake.raw[-1]
    with pytest.raises(ValueError, match="single line"):
        await client.action("Originate", Channel="PJSIP/x\r\nAction: Hangup")


def test_event_name_and_missing_header() -> None:
    event = AmiEvent((("Event", "Hangup"), ("Cause", "16")))
    assert event.name == "Hangup"
    assert "cause" in event
    with pytest.raises(KeyError):
        event["Uniqueid"]


async def test_given_server_filter_when_logged_in_then_one_filter_per_subscribed_event(
    fake: FakeAmi,
) -> None:
    fake.handlers["Filter"] = lambda a: [fake.reply(a)]
    ami = AmiClient("127.0.0.1", fake.port, "tester", "s3cret", server_filter=True)
    sub = ami.subscribe(["Hangup", "DialEnd", "__connected__"])
    await ami.start()
    try:
        asked = [a["filter"] for a in fake.actions if a["action"] == "Filter"]
        assert asked == ["Event: DialEnd", "Event: Hangup"]
        # a later subscription naming a new event adds its filter at once
        ami.subscribe(["UserEvent"])
        await wait_until(lambda: sum(a["action"] == "Filter" for a in fake.actions) == 3)
        assert fake.actions[-1]["filter"] == "Event: UserEvent"
        await fake.push(frame("Event: Hangup", "Uniqueid: 1.1"))
        async with asyncio.timeout(2):
            ev = await anext(aiter(sub))
            while ev.name != "Hangup":
                ev = await anext(aiter(sub))
        assert ev.get("Uniqueid") == "1.1"
    finally:
        await ami.close()


async def test_given_a_subscription_to_everything_then_no_filter_is_sent(fake: FakeAmi) -> None:
    ami = AmiClient("127.0.0.1", fake.port, "tester", "s3cret", server_filter=True)
    ami.subscribe(["Hangup"])
    ami.subscribe(None)
    await ami.start()
    try:
        await asyncio.sleep(0.05)
        assert not [a for a in fake.actions if a["action"] == "Filter"]
    finally:
        await ami.close()


async def test_without_server_filter_no_filter_is_sent(fake: FakeAmi, client: AmiClient) -> None:
    client.subscribe(["Hangup"])
    await asyncio.sleep(0.05)
    assert not [a for a in fake.actions if a["action"] == "Filter"]
