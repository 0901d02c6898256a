"""The web chat as ``tongdai serve`` assembles it: ``[channels.webchat]`` in the settings file
mounts /chat on the engine's web app, registers the channel's parser and sender, and the
conversation pages read the same core; without the table there is no /chat."""

from __future__ import annotations

from pathlib import Path

import httpx

from hotline.messaging import build_messaging
from hotline.parts import engine_web
from tickets.messages import Delivery, Direction
from tickets.model import Channel
from tongdai.db import make_engine, upgrade_engine
from tongdai.settings import load_settings
from web.conversations import ConversationDeps


def _settings(tmp: Path, webchat: bool) -> Path:
    conf = tmp / "tongdai.toml"
    table = '[channels.webchat]\nallowed_origins = ["https://portal.example"]\n' if webchat else ""
    conf.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp}/t.db"\nstate_dir = "{tmp}/state"\n'
        f'[channels]\nattachments_dir = "{tmp}/files"\n{table}',
        encoding="utf-8",
    )
    return conf


async def test_given_the_webchat_table_then_the_engine_serves_the_chat_end_to_end(
    tmp_path: Path,
) -> None:
    settings = load_settings(_settings(tmp_path, webchat=True))
    engine = make_engine(settings.database.resolved_url())
    try:
        await upgrade_engine(engine)
        m = build_messaging(settings, engine)
        assert m.webchat is not None and Channel.WEBCHAT in m.outbox.senders
        assert (tmp_path / "state" / "webchat_secret").exists()  # the token key, made once
        app = engine_web(
            settings, engine, m.tickets, None, routes=m.routes,
            conversations=ConversationDeps(m.conversations, m.outbox, m.canned, m.files,
                                           inbox=m.inbox),
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post("/chat/messages", json={"token": None, "cid": "e1", "text": "Chào"})
            assert r.status_code == 200, r.text
            visitor = r.json()["visitor"]
            assert await m.processor.process_pending() == 1
            assert await m.outbox.deliver_due() >= 1
            (t,) = await m.conversations.open_conversations()
            assert (t.channel, t.caller) == ("webchat", visitor)
            msgs = await m.conversations.messages(t.code)
            assert msgs[0].direction is Direction.IN and msgs[0].body == "Chào"
            ack = msgs[1]
            assert t.code in ack.body and ack.delivery is Delivery.SENT  # the poller reads it
            got = await c.get("/chat/messages", headers={"X-Visitor-Token": r.json()["token"]})
            assert any(t.code in x["text"] for x in got.json()["messages"])
    finally:
        await engine.dispose()


async def test_without_the_table_there_is_no_chat(tmp_path: Path) -> None:
    settings = load_settings(_settings(tmp_path, webchat=False))
    engine = make_engine(settings.database.resolved_url())
    try:
        m = build_messaging(settings, engine)
        assert m.webchat is None and Channel.WEBCHAT not in m.outbox.senders
        app = engine_web(settings, engine, m.tickets, None, routes=m.routes)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/chat")).status_code in (303, 404)
    finally:
        await engine.dispose()
