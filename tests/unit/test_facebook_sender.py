"""Replies to Messenger against the fake Graph API on loopback (``lab.fake_graph``): what reaches
Meta (recipient, page token, images), and what the agent is told when it does not."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.facebook import FacebookSender, FacebookSettings, window_open
from channels.outbound import redact, retry_after
from conversations.model import (
    Identity,
    IdentityKind,
    OutboundMessage,
    OutgoingAttachment,
    SendStatus,
)
from lab.fake_graph import FakeGraph
from lab.fake_platform import serving
from tickets.model import Channel

PSID = Identity(IdentityKind.FACEBOOK, "psid-31")
PATH = "/v23.0/me/messages"


def secret_file(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


@dataclass
class Rig:
    fake: FakeGraph
    cfg: FacebookSettings
    sender: FacebookSender
    control: httpx.AsyncClient

    async def requests(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.control.get("/_requests")).json()
        return found

    async def set_response(self, **spec: Any) -> None:
        (await self.control.post("/_set_response", json=spec)).raise_for_status()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = FakeGraph(page_token="page-token-qn")
    async with serving(fake.app()) as url:
        cfg = FacebookSettings(
            app_secret_file=secret_file(tmp_path / "app_secret", "s"),
            verify_token_file=secret_file(tmp_path / "verify", "v"),
            page_token_file=secret_file(tmp_path / "page_token", "page-token-qn"),
            graph_base=url,
            http_timeout_s=5.0,
        )
        sender = FacebookSender(cfg)
        async with httpx.AsyncClient(base_url=url, timeout=5) as control:
            try:
                yield Rig(fake, cfg, sender, control)
            finally:
                await sender.aclose()


def reply(
    text: str = "Dạ, hồ sơ đang được xử lý.", *atts: OutgoingAttachment, mid: str = "r1"
) -> OutboundMessage:
    return OutboundMessage(Channel.FACEBOOK, "1022-20261206-000002", PSID, text,
                           attachments=atts, message_id=mid)  # fmt: skip


async def test_given_a_text_reply_then_meta_gets_it_as_a_response_with_the_page_token(
    rig: Rig,
) -> None:
    result = await rig.sender.send(reply())
    assert (result.status, result.external_id) == (SendStatus.SENT, "m_fake_0")
    [req] = await rig.requests()
    assert req["path"] == PATH and req["query"] == {"access_token": "page-token-qn"}
    assert req["json"] == {"recipient": {"id": "psid-31"}, "messaging_type": "RESPONSE",
                           "message": {"text": "Dạ, hồ sơ đang được xử lý."}}  # fmt: skip


async def test_given_images_by_url_and_by_file_then_each_is_its_own_message_after_the_text(
    rig: Rig, tmp_path: Path
) -> None:
    (tmp_path / "b.png").write_bytes(b"\x89PNG" + b"\0" * 60)
    by_url = OutgoingAttachment("a.jpg", "image/jpeg", str(tmp_path / "a.jpg"), "https://qn/a.jpg")
    by_file = OutgoingAttachment("b.png", "image/png", str(tmp_path / "b.png"))
    assert (await rig.sender.send(reply("Ảnh:", by_url, by_file))).status is SendStatus.SENT
    text, url_req, file_req = await rig.requests()
    assert text["json"]["message"] == {"text": "Ảnh:"}
    assert url_req["json"]["message"]["attachment"] == {
        "type": "image", "payload": {"url": "https://qn/a.jpg", "is_reusable": False}
    }  # fmt: skip
    assert file_req["form"]["filedata"] == {"filename": "b.png", "content_type": "image/png",
                                            "size": 64}  # fmt: skip
    assert file_req["form"]["recipient"] == '{"id": "psid-31"}'


@pytest.mark.parametrize(
    ("kind", "status"),
    [("rate_limited", SendStatus.RETRY), ("server_error", SendStatus.RETRY)],
)
async def test_given_rate_limits_or_server_errors_then_retry(
    rig: Rig, kind: str, status: SendStatus
) -> None:
    await rig.set_response(kind=kind)
    assert (await rig.sender.send(reply())).status is status
    assert (await rig.sender.send(reply())).status is SendStatus.SENT


async def test_given_429_with_retry_after_then_the_delay_is_passed_on(rig: Rig) -> None:
    await rig.set_response(path=PATH, status=429, json={}, headers={"Retry-After": "12"})
    result = await rig.sender.send(reply())
    assert (result.status, result.retry_after_s) == (SendStatus.RETRY, 12.0)


async def test_given_the_24_hour_window_is_shut_then_failed_with_the_window_message(
    rig: Rig,
) -> None:
    await rig.set_response(kind="outside_window")
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.FAILED
    assert "24" in (result.error or "") and "Messenger" in (result.error or "")


async def test_given_a_wrong_page_token_then_failed_asking_an_administrator(rig: Rig) -> None:
    secret_file(Path(rig.cfg.page_token_file), "revoked-token")
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.FAILED and "page_token_file" in (result.error or "")
    assert "revoked-token" not in (result.error or "")


async def test_given_another_permanent_error_then_failed_with_metas_message(rig: Rig) -> None:
    error = {"message": "(#100) No matching user found", "code": 100, "error_subcode": 2018001}
    await rig.set_response(path=PATH, status=400, json={"error": error})
    result = await rig.sender.send(reply())
    assert (result.status, result.error) == (
        SendStatus.FAILED, "Facebook: (#100) No matching user found (code 100)"
    )  # fmt: skip


async def test_given_a_retry_after_the_text_went_then_only_the_image_is_sent_again(
    rig: Rig,
) -> None:
    image = OutgoingAttachment("a.jpg", "image/jpeg", "/nonexistent", "https://qn/a.jpg")
    message = reply("Ảnh:", image)
    # the text goes, then the image meets a 500
    await rig.set_response(path=PATH, status=200, json={"recipient_id": "psid-31",
                                                        "message_id": "m_text"})  # fmt: skip
    await rig.set_response(path=PATH, status=500, json={})
    assert (await rig.sender.send(message)).status is SendStatus.RETRY
    result = await rig.sender.send(message)
    assert (result.status, result.external_id) == (SendStatus.SENT, "m_text")
    bodies = [r["json"]["message"] for r in await rig.requests()]
    assert ["text" in b for b in bodies] == [True, False, False]


async def test_given_meta_unreachable_then_retry(tmp_path: Path) -> None:
    cfg = FacebookSettings(
        app_secret_file=secret_file(tmp_path / "a", "s"),
        verify_token_file=secret_file(tmp_path / "v", "v"),
        page_token_file=secret_file(tmp_path / "p", "p"),
        graph_base="http://127.0.0.1:9",
        http_timeout_s=2.0,
    )
    sender = FacebookSender(cfg)
    try:
        result = await sender.send(reply())
    finally:
        await sender.aclose()
    assert result.status is SendStatus.RETRY


async def test_given_httpx_logs_requests_then_the_page_token_is_not_in_the_log(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    assert (await rig.sender.send(reply())).status is SendStatus.SENT
    assert "/me/messages?access_token=***" in caplog.text
    assert "page-token-qn" not in caplog.text


async def test_given_a_zalo_recipient_or_an_unsendable_file_then_refused_and_nothing_sent(
    rig: Rig, tmp_path: Path
) -> None:
    wrong = OutboundMessage(Channel.FACEBOOK, "c", Identity(IdentityKind.ZALO, "u"), "x")
    assert (await rig.sender.send(wrong)).status is SendStatus.FAILED
    doc = OutgoingAttachment("bien-ban.docx", "application/msword", str(tmp_path / "nope"))
    assert (await rig.sender.send(reply("x", doc))).status is SendStatus.FAILED
    missing = OutgoingAttachment("a.png", "image/png", str(tmp_path / "missing.png"))
    assert (await rig.sender.send(reply("x", missing))).status is SendStatus.FAILED
    assert await rig.requests() == []


def test_the_window_is_24_hours_by_default(tmp_path: Path) -> None:
    cfg = FacebookSettings("a", "v", "p")
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert window_open(now - timedelta(hours=23, minutes=59), now, cfg)
    assert not window_open(now - timedelta(hours=24, minutes=1), now, cfg)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert retry_after({"retry-after": "30"}, now) == 30.0
    assert retry_after({"retry-after": "Sun, 06 Dec 2026 09:01:00 GMT"}, now) == 60.0
    assert retry_after({"retry-after": "soon"}, now) is None
    assert retry_after({}, now) is None
    assert retry_after({"retry-after": "999999"}, now) == 3600.0


def test_redact_hides_tokens_in_urls() -> None:
    assert redact("POST https://g/v23.0/me/messages?access_token=EAAB123&x=1") == (
        "POST https://g/v23.0/me/messages?access_token=***&x=1"
    )
