"""Zalo OA and Facebook Messenger end to end on the real stack: the engine as its own process
(``tongdai serve``) on a fresh PostgreSQL database, its ``[channels.zalo]`` and
``[channels.facebook]`` pointed at the fake Zalo and fake Graph API, each its own process on
loopback (``lab.social_stack``). Webhooks are signed as the platforms sign them; what the
engine sends back is read from the fakes' ``/_requests``. Every wait is for a fact, with a
deadline. No fixed port (the lock is still taken by whoever runs tests/e2e)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from pg_admin import pg_admin

from bench.reports_bench import PG_ADMIN_DSN
from bench.webhooks_bench import run_database
from conversations.journal import SqlEventJournal
from lab.fake_graph import facebook_event
from lab.fake_zalo import zalo_event
from lab.social_stack import SocialStack
from tickets.messages import Author, Delivery, Direction, Message
from tickets.model import Ticket
from tickets.sql import open_store
from tickets.sql_conversations import SqlConversationStore
from tongdai.settings import PROJECT_HOME

pytestmark = pytest.mark.e2e
T = TypeVar("T")
ZALO_CS = "/v3.0/oa/message/cs"
GRAPH_MESSAGES = "/v23.0/me/messages"


@pytest.fixture(scope="module")
def social(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocialStack]:
    name = f"tongdai_social_{secrets.token_hex(4)}"
    pg_admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    stack = SocialStack.start(tmp_path_factory.mktemp("social"), url)
    try:
        yield stack
    finally:
        stack.stop()
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def agent_token(social: SocialStack) -> str:
    tongdai(social, "users", "add", "tdv101", "--role", "agent", "--agent", "agent101",
            "--no-password")  # fmt: skip
    return tongdai(social, "users", "token", "tdv101", "--label", "e2e").strip()


@pytest.fixture
async def conv(social: SocialStack) -> AsyncIterator[SqlConversationStore]:
    store = await open_store(social.db_url)
    try:
        yield SqlConversationStore(store)
    finally:
        await store.close()


def tongdai(stack: SocialStack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", str(stack.config), *args],
        capture_output=True, cwd=PROJECT_HOME, timeout=60, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def until(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float = 20) -> T:
    """The first answer of ``check`` that is not None/False/empty, polled until the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(0.05)


async def post(stack: SocialStack, path: str, body: bytes, headers: dict[str, str]) -> int:
    async with httpx.AsyncClient(timeout=10) as c:
        return (await c.post(f"{stack.url}{path}", content=body, headers=headers)).status_code


async def zalo(stack: SocialStack, body: bytes, **sign: str) -> int:
    return await post(stack, "/webhooks/zalo", body, stack.zalo_headers(body, **sign))


async def facebook(stack: SocialStack, body: bytes, **sign: str) -> int:
    return await post(stack, "/webhooks/facebook", body, stack.facebook_headers(body, **sign))


async def requests_to(url: str, path: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as c:
        got: list[dict[str, Any]] = (await c.get(f"{url}/_requests")).json()
    return [r for r in got if r["path"] == path]


async def zalo_texts_to(stack: SocialStack, user: str) -> list[str]:
    return [
        r["json"]["message"]["text"]
        for r in await requests_to(stack.zalo.url, ZALO_CS)
        if r["json"]["recipient"]["user_id"] == user and "text" in r["json"]["message"]
    ]


async def graph_texts_to(stack: SocialStack, psid: str) -> list[str]:
    return [
        r["json"]["message"]["text"]
        for r in await requests_to(stack.graph.url, GRAPH_MESSAGES)
        if r["json"]["recipient"]["id"] == psid
    ]


async def stored(conv: SqlConversationStore, channel: str, external_id: str) -> Message | None:
    return await conv.find_message(channel, external_id)


async def ticket_of(conv: SqlConversationStore, channel: str, external_id: str) -> Ticket:
    msg = await until(f"{channel} {external_id} stored", lambda: stored(conv, channel, external_id))
    t = await conv.tickets.get(msg.ticket_code)
    assert t is not None
    return t


async def reply(stack: SocialStack, token: str, code: str, text: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as c:
        return await c.post(
            f"{stack.url}/api/conversations/{code}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {token}"},
        )


async def delivered(conv: SqlConversationStore, code: str, text: str) -> Message | None:
    for m in await conv.messages(code):
        if m.direction is Direction.OUT and m.body == text and m.delivery is Delivery.SENT:
            return m
    return None


def zmsg(stack: SocialStack, user: str, msg_id: str) -> bytes:
    return zalo_event(stack.secrets.zalo_app_id, user, msg_id=msg_id)


def now_ms() -> int:
    return int(time.time() * 1000)


# -- in ----------------------------------------------------------------------------------------


async def test_a_signed_zalo_text_and_image_become_one_ticket_and_the_code_goes_back_to_zalo(
    social: SocialStack, conv: SqlConversationStore
) -> None:
    app, user = social.secrets.zalo_app_id, "zu-text-image"
    text = zalo_event(app, user, text="Tôi muốn hỏi hồ sơ đất đai", msg_id="z-in-1")
    image = zalo_event(
        app, user, event="user_send_image", text="", msg_id="z-in-2",
        attachments=[{"type": "image", "payload": {"url": "https://zalo.example/a.jpg"}}],
    )  # fmt: skip
    assert await zalo(social, text) == 200
    assert await zalo(social, image) == 200
    t = await ticket_of(conv, "zalo", "z-in-1")
    t2 = await ticket_of(conv, "zalo", "z-in-2")
    assert (t.code, t.channel, t.caller) == (t2.code, "zalo", user)
    msgs = await conv.messages(t.code)
    ins = [m for m in msgs if m.direction is Direction.IN]
    assert [m.body for m in ins] == ["Tôi muốn hỏi hồ sơ đất đai", ""]
    assert ins[1].attachments[0].url == "https://zalo.example/a.jpg"
    texts = await until("the code sent to Zalo", lambda: zalo_texts_to(social, user))
    assert t.code in texts[0]
    to_user = [r for r in await requests_to(social.zalo.url, ZALO_CS)
               if r["json"]["recipient"] == {"user_id": user}]  # fmt: skip
    assert {r["headers"]["access_token"] for r in to_user} == {social.secrets.access_token}
    await until("the acknowledgement marked sent", lambda: delivered(conv, t.code, texts[0]))


async def test_a_signed_facebook_message_becomes_a_ticket_and_the_code_goes_to_the_psid(
    social: SocialStack, conv: SqlConversationStore
) -> None:
    body = facebook_event("psid-in-1", text="Xin chào 1022", mid="m_in_1")
    assert await facebook(social, body) == 200
    t = await ticket_of(conv, "facebook", "m_in_1")
    assert (t.channel, t.caller) == ("facebook", "psid-in-1")
    texts = await until("the code sent to Messenger", lambda: graph_texts_to(social, "psid-in-1"))
    assert t.code in texts[0]
    to_psid = [r for r in await requests_to(social.graph.url, GRAPH_MESSAGES)
               if r["json"]["recipient"] == {"id": "psid-in-1"}]  # fmt: skip
    assert {r["query"]["access_token"] for r in to_psid} == {social.secrets.page_token}


async def test_forged_replayed_or_stale_webhooks_get_401_and_nothing_is_stored(
    social: SocialStack, conv: SqlConversationStore
) -> None:
    journal = SqlEventJournal(conv.tickets.engine)
    before = await journal.count()
    app = social.secrets.zalo_app_id
    fresh = zalo_event(app, "zu-forged", msg_id="z-forged-1")
    other = zalo_event(app, "zu-forged", msg_id="z-forged-2", text="khác")
    stale = zalo_event(app, "zu-forged", msg_id="z-stale", timestamp_ms=now_ms() - 6 * 60_000)
    future = zalo_event(app, "zu-forged", msg_id="z-future", timestamp_ms=now_ms() + 6 * 60_000)
    foreign = zalo_event("another-app", "zu-forged", msg_id="z-foreign")
    base = f"{social.url}/webhooks"
    async with httpx.AsyncClient(timeout=10) as c:
        answers = [
            await zalo(social, fresh, secret="not-the-oa-secret"),
            await post(social, "/webhooks/zalo", fresh, social.zalo_headers(other)),  # replayed
            await zalo(social, stale),  # a captured request six minutes later
            await zalo(social, future),
            await zalo(social, foreign),
            (await c.post(f"{base}/zalo", content=fresh)).status_code,  # unsigned
            await facebook(social, facebook_event("psid-f", mid="m_forged"), secret="nope"),
            (await c.post(f"{base}/facebook", content=facebook_event("psid-f"))).status_code,
        ]
        verify = social.secrets.verify_token
        wrong = await c.get(f"{base}/facebook", params={"hub.mode": "subscribe",
                            "hub.verify_token": "guess", "hub.challenge": "42"})  # fmt: skip
        right = await c.get(f"{base}/facebook", params={"hub.mode": "subscribe",
                            "hub.verify_token": verify, "hub.challenge": "42"})  # fmt: skip
    assert answers == [401] * 8
    assert (wrong.status_code, right.status_code, right.text) == (403, 200, "42")
    assert await journal.count() == before
    for mid in ("z-forged-1", "z-forged-2", "z-stale", "z-future", "z-foreign"):
        assert await stored(conv, "zalo", mid) is None
    assert await stored(conv, "facebook", "m_forged") is None


async def test_the_same_event_redelivered_is_stored_once_and_acknowledged_once(
    social: SocialStack, conv: SqlConversationStore
) -> None:
    z = zalo_event(social.secrets.zalo_app_id, "zu-again", msg_id="z-again")
    f = facebook_event("psid-again", mid="m_again")
    first = await asyncio.gather(*(zalo(social, z) for _ in range(5)),
                                 *(facebook(social, f) for _ in range(5)))  # fmt: skip
    assert first == [200] * 10
    tz = await ticket_of(conv, "zalo", "z-again")
    tf = await ticket_of(conv, "facebook", "m_again")
    assert (await zalo(social, z), await facebook(social, f)) == (200, 200)  # later, once more
    await until("both codes sent", lambda: delivered_ack(conv, tz.code, tf.code))
    for code in (tz.code, tf.code):
        ins = [m for m in await conv.messages(code) if m.direction is Direction.IN]
        assert len(ins) == 1
    contact = await conv.contact_for("zalo", "zu-again", None)
    assert [t.code for t in await conv.contact_tickets(contact.id)] == [tz.code]
    assert sum(tz.code in x for x in await zalo_texts_to(social, "zu-again")) == 1
    assert sum(tf.code in x for x in await graph_texts_to(social, "psid-again")) == 1


async def delivered_ack(conv: SqlConversationStore, *codes: str) -> bool:
    for code in codes:
        outs = [m for m in await conv.messages(code) if m.direction is Direction.OUT]
        if not outs or any(m.delivery is not Delivery.SENT for m in outs):
            return False
    return True


# -- out -----------------------------------------------------------------------------------


async def test_an_agents_reply_reaches_zalo_and_messenger_with_the_right_recipient_and_token(
    social: SocialStack, conv: SqlConversationStore, agent_token: str
) -> None:
    assert await zalo(social, zmsg(social, "zu-reply", "z-r")) == 200
    assert await facebook(social, facebook_event("psid-reply", mid="m_r")) == 200
    tz = await ticket_of(conv, "zalo", "z-r")
    tf = await ticket_of(conv, "facebook", "m_r")
    for code in (tz.code, tf.code):
        r = await reply(social, agent_token, code, f"Tổng đài viên trả lời phiếu {code}")
        assert r.status_code == 201, r.text
    z_text, f_text = (f"Tổng đài viên trả lời phiếu {c}" for c in (tz.code, tf.code))
    await until("the Zalo reply sent", lambda: delivered(conv, tz.code, z_text))
    await until("the Messenger reply sent", lambda: delivered(conv, tf.code, f_text))
    (z,) = [r for r in await requests_to(social.zalo.url, ZALO_CS)
            if r["json"]["message"].get("text") == z_text]  # fmt: skip
    assert z["json"]["recipient"] == {"user_id": "zu-reply"}
    assert z["headers"]["access_token"] == social.secrets.access_token
    (f,) = [r for r in await requests_to(social.graph.url, GRAPH_MESSAGES)
            if r["json"]["message"].get("text") == f_text]  # fmt: skip
    assert f["json"]["recipient"] == {"id": "psid-reply"}
    assert f["query"]["access_token"] == social.secrets.page_token
    msg = await delivered(conv, tz.code, z_text)
    assert msg is not None and (msg.author, msg.author_id) == (Author.AGENT, "agent101")
    shown = tongdai(social, "tickets", "show", tz.code, "--json")
    doc = json.loads(shown)
    assert [(m["direction"], m["delivery"]) for m in doc["messages"]][-1] == ("out", "sent")


async def test_a_failing_platform_is_retried_with_backoff_and_the_reply_delivered_later(
    social: SocialStack, conv: SqlConversationStore, agent_token: str
) -> None:
    assert await zalo(social, zmsg(social, "zu-fail", "z-f")) == 200
    assert await facebook(social, facebook_event("psid-fail", mid="m_f")) == 200
    tz = await ticket_of(conv, "zalo", "z-f")
    tf = await ticket_of(conv, "facebook", "m_f")
    await until("acknowledgements sent", lambda: delivered_ack(conv, tz.code, tf.code))
    async with httpx.AsyncClient(timeout=5) as c:
        await c.post(f"{social.zalo.url}/_set_response", json={"path": ZALO_CS, "status": 500,
                     "json": {"error": "boom"}, "times": 2})  # fmt: skip
        await c.post(f"{social.graph.url}/_set_response", json={"kind": "server_error"})
        await c.post(f"{social.graph.url}/_set_response", json={"kind": "rate_limited"})
    z_text, f_text = "Trả lời sau lỗi 500", "Trả lời sau lỗi 500 và 613"
    assert (await reply(social, agent_token, tz.code, z_text)).status_code == 201
    assert (await reply(social, agent_token, tf.code, f_text)).status_code == 201
    z_msg = await until("the Zalo reply sent", lambda: delivered(conv, tz.code, z_text), 40)
    f_msg = await until("the Messenger reply sent", lambda: delivered(conv, tf.code, f_text), 40)
    assert (z_msg.attempts, f_msg.attempts) == (3, 3)  # two failures, then sent
    tries = [r for r in await requests_to(social.zalo.url, ZALO_CS)
             if r["json"]["message"].get("text") == z_text]  # fmt: skip
    assert len(tries) == 3
    # after the platform's token expired: renewed with the refresh token, sent once more
    async with httpx.AsyncClient(timeout=5) as c:
        await c.post(f"{social.zalo.url}/_set_response", json={"kind": "expired_token"})
        assert (await reply(social, agent_token, tz.code, "Sau khi hết hạn mã")).status_code == 201
        await until(
            "sent with a renewed token", lambda: delivered(conv, tz.code, "Sau khi hết hạn mã")
        )
        pair = (await c.get(f"{social.zalo.url}/_tokens")).json()
    sec = social.workdir / "secrets"
    assert (sec / "zalo_access_token").read_text().strip() == pair["access_token"] != "at-0"
    assert (sec / "zalo_refresh_token").read_text().strip() == pair["refresh_token"] != "rt-0"
    last = (await requests_to(social.zalo.url, ZALO_CS))[-1]
    assert last["headers"]["access_token"] == pair["access_token"]


async def test_facebook_24_hour_window_refuses_the_reply_up_front_with_a_clear_message(
    social: SocialStack, conv: SqlConversationStore, agent_token: str
) -> None:
    old = facebook_event("psid-old", mid="m_old", timestamp_ms=now_ms() - 25 * 3600_000)
    assert await facebook(social, old) == 200
    t = await ticket_of(conv, "facebook", "m_old")
    r = await reply(social, agent_token, t.code, "Trả lời muộn")
    assert r.status_code == 409
    assert "reply window has closed" in r.json()["error"]["message"]
    assert not [m for m in await conv.messages(t.code) if m.author is Author.AGENT]
    # Meta itself refusing (the window judged by Meta): failed, the reason on the message
    assert await facebook(social, facebook_event("psid-meta", mid="m_meta")) == 200
    t2 = await ticket_of(conv, "facebook", "m_meta")
    await until("acknowledgement sent", lambda: delivered_ack(conv, t2.code))
    async with httpx.AsyncClient(timeout=5) as c:
        await c.post(f"{social.graph.url}/_set_response", json={"kind": "outside_window"})
    assert (await reply(social, agent_token, t2.code, "Meta từ chối")).status_code == 201

    async def failed() -> Message | None:
        found = [m for m in await conv.messages(t2.code) if m.body == "Meta từ chối"]
        return found[0] if found and found[0].delivery is Delivery.FAILED else None

    msg = await until("the reply marked failed", failed)
    assert msg.delivery_error is not None and "24 h" in msg.delivery_error


# -- nothing lost --------------------------------------------------------------------------


async def test_the_engine_killed_mid_stream_and_restarted_loses_nothing(
    social: SocialStack, conv: SqlConversationStore, agent_token: str
) -> None:
    """60 events (half Zalo, half Facebook) stream in; the engine is SIGKILLed after the
    first 20 are acknowledged. Whatever was not acknowledged the platform sends again after
    the restart (as Zalo and Meta do); a reply stuck in backoff at the kill goes out after."""
    assert await zalo(social, zmsg(social, "zu-kill", "z-k")) == 200
    tk = await ticket_of(conv, "zalo", "z-k")
    await until("acknowledgement sent", lambda: delivered_ack(conv, tk.code))
    async with httpx.AsyncClient(timeout=5) as c:
        await c.post(f"{social.zalo.url}/_set_response", json={"path": ZALO_CS, "status": 503,
                     "json": {}, "times": 1})  # fmt: skip
    later = "Gửi qua lúc khởi động lại"
    assert (await reply(social, agent_token, tk.code, later)).status_code == 201
    await until("the reply in backoff", lambda: in_backoff(conv, tk.code))

    app = social.secrets.zalo_app_id
    events: list[tuple[str, str, bytes]] = []
    for i in range(30):
        events.append(("zalo", f"z-kill-{i}", zalo_event(app, f"zu-k{i}", msg_id=f"z-kill-{i}")))
        events.append(("facebook", f"m_kill_{i}", facebook_event(f"psid-k{i}", mid=f"m_kill_{i}")))
    acked: set[str] = set()
    killed = asyncio.Event()

    async def send(channel: str, eid: str, body: bytes) -> None:
        try:
            code = await (zalo(social, body) if channel == "zalo" else facebook(social, body))
        except httpx.HTTPError:
            return
        if code == 200:
            acked.add(eid)
            if len(acked) >= 20 and not killed.is_set():
                killed.set()
                await asyncio.to_thread(social.kill_engine)

    await asyncio.gather(*(send(*e) for e in events))
    assert killed.is_set() and 20 <= len(acked) < len(events)
    kinds = {eid: channel for channel, eid, _ in events}
    journaled_only = [e for e in acked if await stored(conv, kinds[e], e) is None]
    await asyncio.to_thread(social.start_engine)
    for channel, eid, body in events:  # the platforms' retries of what was not acknowledged
        if eid not in acked:
            code = await (zalo(social, body) if channel == "zalo" else facebook(social, body))
            assert code == 200
    for channel, eid, _ in events:
        t = await ticket_of(conv, channel, eid)
        ins = [m for m in await conv.messages(t.code) if m.direction is Direction.IN]
        assert [m.external_id for m in ins] == [eid]
    await until("the reply delivered after the restart",
                lambda: delivered(conv, tk.code, later), 40)  # fmt: skip
    journal = SqlEventJournal(conv.tickets.engine)
    assert await journal.count() >= len(events)
    print(f"\nkill test: {len(acked)} of {len(events)} acknowledged before SIGKILL "
          f"({len(journaled_only)} only in the journal, processed after the restart), "
          f"{len(events) - len(acked)} redelivered, every one stored once")  # fmt: skip


async def in_backoff(conv: SqlConversationStore, code: str) -> bool:
    return any(
        m.delivery is Delivery.PENDING and m.attempts >= 1 for m in await conv.messages(code)
    )


async def test_the_database_away_events_are_spooled_answered_200_and_kept_when_it_is_back(
    social: SocialStack, conv: SqlConversationStore
) -> None:
    name = social.db_url.rsplit("/", 1)[1]
    pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        body = zalo_event(social.secrets.zalo_app_id, "zu-spool", msg_id="z-spool")
        started = time.monotonic()
        assert await zalo(social, body) == 200
        assert time.monotonic() - started < 2.0
        spool = social.workdir / "state" / "events-spool" / "events.jsonl"
        assert "z-spool" in spool.read_text(encoding="utf-8")
    finally:
        pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    await conv.tickets.engine.dispose()  # the test's own pool lost its connections too
    t = await ticket_of(conv, "zalo", "z-spool")
    assert t.channel == "zalo"
    await until("spool emptied", lambda: spool_gone(social), 20)


async def spool_gone(social: SocialStack) -> bool:
    return not (social.workdir / "state" / "events-spool" / "events.jsonl").exists()


async def test_the_webhooks_bench_runs_on_the_real_stack_and_loses_nothing() -> None:
    """``tongdai bench webhooks`` in small: one short step on SQLite."""
    (step,) = await run_database("sqlite", [10.0], 2.0, 1000.0, PG_ADMIN_DSN)
    assert step.sent == 20 and step.acknowledged == step.sent - step.bad_signatures
    assert (step.lost, step.duplicated, step.bad_stored) == (0, 0, 0)
    assert step.all_stored_s is not None and step.p50_ms > 0
