"""``tongdai tickets show CODE``: a message conversation's messages both ways, with their
delivery status (pending with its retries, sent, failed with the reason), as a table and as
JSON; what citizens typed is printed as typed (never read as markup)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.cli import main
from tickets.messages import Author, Delivery, Direction, NewMessage
from tickets.sql import open_store
from tickets.sql_conversations import SqlConversationStore

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> str:
    path = tmp_path / "tongdai.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return str(path)


async def _conversation(url: str) -> str:
    store = await open_store(url)
    try:
        conv = SqlConversationStore(store)
        contact = await conv.contact_for("zalo", "zu-1", None)
        first = NewMessage(
            channel="zalo", direction=Direction.IN, author=Author.CITIZEN,
            body="Hỏi [bold]hồ sơ[/bold] <script>", at=T0, author_id="zu-1", external_id="z-1",
        )  # fmt: skip
        ticket, _, _ = await conv.start_conversation(
            channel="zalo", contact_id=contact.id, caller="zu-1", subject=None, first=first
        )
        for body, delivery in (("Mã phiếu", Delivery.SENT), ("Trả lời", Delivery.PENDING),
                               ("Lỗi", Delivery.FAILED)):  # fmt: skip
            out = NewMessage(
                channel="zalo", direction=Direction.OUT, author=Author.AGENT, body=body,
                at=T0 + timedelta(minutes=1), author_id="agent101", delivery=Delivery.PENDING,
            )  # fmt: skip
            msg, _ = await conv.add_message(ticket.code, out)
            if delivery is Delivery.SENT:
                await conv.set_delivery(msg.id, Delivery.SENT, external_id="fz-1")
            elif delivery is Delivery.PENDING:
                await conv.set_delivery(
                    msg.id, Delivery.PENDING, error="Zalo HTTP 500",
                    next_attempt_at=T0 + timedelta(minutes=2),
                )  # fmt: skip
            else:
                await conv.set_delivery(msg.id, Delivery.FAILED, error="Zalo: user blocked")
        return ticket.code
    finally:
        await store.close()


def test_show_prints_the_messages_both_ways_with_their_delivery(
    config: str, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per cell
    code = asyncio.run(_conversation(db_url))
    assert main(["--config", config, "tickets", "show", code]) == 0
    out = capsys.readouterr().out
    assert "Messages" in out and "→ in" in out and "← out" in out
    assert "[bold]hồ sơ[/bold] <script>" in out  # as typed
    assert "sent" in out and "after 1 failed try" in out and "Zalo HTTP 500" in out
    assert "FAILED: Zalo: user blocked" in out


def test_show_json_includes_the_messages(
    config: str, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = asyncio.run(_conversation(db_url))
    assert main(["--config", config, "tickets", "show", code, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["code"], doc["channel"], doc["caller"]) == (code, "zalo", "zu-1")
    got = [(m["direction"], m["author"], m["delivery"], m["delivery_error"])
           for m in doc["messages"]]  # fmt: skip
    assert got == [
        ("in", "citizen", "received", None),
        ("out", "agent", "sent", None),
        ("out", "agent", "pending", "Zalo HTTP 500"),
        ("out", "agent", "failed", "Zalo: user blocked"),
    ]
    assert doc["messages"][0]["at"] == "2026-12-07T09:00:00+07:00"
    assert doc["messages"][1]["external_id"] == "fz-1"


def test_show_json_of_a_call_has_no_messages(
    config: str, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def call() -> str:
        store = await open_store(db_url)
        try:
            t = await store.open(channel="voice", caller="0905", uniqueid=None, started_at=T0)
            return t.code
        finally:
            await store.close()

    code = asyncio.run(call())
    assert main(["--config", config, "tickets", "show", code, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["messages"] == []
