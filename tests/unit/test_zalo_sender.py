"""Replies to Zalo against the fake OA API on loopback (``lab.fake_zalo``): what reaches Zalo
(recipient, token, images), what the agent is told when it does not (retry or a reason), and
the token pair renewed once, before expiry or after "expired", written atomically."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.outbound import split_text, window_open
from channels.zalo import ZaloSender, ZaloSettings
from conversations.model import (
    Identity,
    IdentityKind,
    OutboundMessage,
    OutgoingAttachment,
    SendStatus,
)
from lab.fake_platform import serving
from lab.fake_zalo import FakeZalo
from tickets.model import Channel

APP = "app-1022"
USER = Identity(IdentityKind.ZALO, "u-4242")


def secret_file(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def read(path: str) -> str:
    return Path(path).read_text().strip()


@dataclass
class Rig:
    fake: FakeZalo
    url: str
    cfg: ZaloSettings
    sender: ZaloSender
    control: httpx.AsyncClient

    async def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.control.get("/_requests")).json()
        return [r for r in found if path is None or r["path"] == path]

    async def set_response(self, **spec: Any) -> None:
        (await self.control.post("/_set_response", json=spec)).raise_for_status()


def make_settings(tmp_path: Path, url: str) -> ZaloSettings:
    return ZaloSettings(
        app_id=APP,
        oa_id="oa-1022",
        oa_secret_key_file=secret_file(tmp_path / "oa_secret", "oa-secret"),
        app_secret_file=secret_file(tmp_path / "app_secret", "fake-app-secret"),
        access_token_file=secret_file(tmp_path / "access_token", "at-0"),
        refresh_token_file=secret_file(tmp_path / "refresh_token", "rt-0"),
        api_base=url,
        oauth_base=url,
        http_timeout_s=5.0,
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = FakeZalo(app_id=APP, app_secret="fake-app-secret")
    async with serving(fake.app()) as url:
        cfg = make_settings(tmp_path, url)
        sender = ZaloSender(cfg)
        async with httpx.AsyncClient(base_url=url, timeout=5) as control:
            try:
                yield Rig(fake, url, cfg, sender, control)
            finally:
                await sender.aclose()


def reply(
    text: str = "Hồ sơ của anh đã có kết quả.", *atts: OutgoingAttachment, mid: str = "r1"
) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.ZALO, ticket_code="1022-20261206-000001", recipient=USER, text=text,
        attachments=atts, message_id=mid,
    )  # fmt: skip


def image(tmp_path: Path, name: str = "ket-qua.png", size: int = 100, url: str | None = None,
          content_type: str = "image/png") -> OutgoingAttachment:  # fmt: skip
    path = tmp_path / name
    path.write_bytes(b"\x89PNG" + b"\0" * (size - 4))
    return OutgoingAttachment(name, content_type, str(path), url)


async def test_given_a_text_reply_then_zalo_gets_it_for_the_citizen_with_our_token(
    rig: Rig,
) -> None:
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.SENT and result.external_id == "fz-0"
    [req] = await rig.requests("/v3.0/oa/message/cs")
    assert req["headers"]["access_token"] == "at-0"
    assert req["json"] == {"recipient": {"user_id": "u-4242"},
                           "message": {"text": "Hồ sơ của anh đã có kết quả."}}  # fmt: skip


async def test_given_zalo_answers_429_then_retry_with_its_delay(rig: Rig) -> None:
    await rig.set_response(path="/v3.0/oa/message/cs", status=429, json={},
                           headers={"Retry-After": "7"})  # fmt: skip
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.RETRY and result.retry_after_s == 7.0
    assert (await rig.sender.send(reply())).status is SendStatus.SENT


async def test_given_zalo_answers_500_or_its_rate_limit_then_retry(rig: Rig) -> None:
    await rig.set_response(path="/v3.0/oa/message/cs", status=502, json={})
    assert (await rig.sender.send(reply())).status is SendStatus.RETRY
    await rig.set_response(path="/v3.0/oa/message/cs", status=200,
                           json={"error": -32, "message": "Exceed rate limit"})  # fmt: skip
    assert (await rig.sender.send(reply())).status is SendStatus.RETRY


async def test_given_zalo_unreachable_then_retry(tmp_path: Path) -> None:
    with socket_closed() as url:
        sender = ZaloSender(make_settings(tmp_path, url))
        try:
            result = await sender.send(reply())
        finally:
            await sender.aclose()
    assert result.status is SendStatus.RETRY and "unreachable" in (result.error or "")


class socket_closed:
    """A loopback URL nothing listens on."""

    def __enter__(self) -> str:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


async def test_given_a_permanent_refusal_then_failed_with_zalos_reason(rig: Rig) -> None:
    await rig.set_response(path="/v3.0/oa/message/cs", status=200,
                           json={"error": -201, "message": "Parameters are invalid"})  # fmt: skip
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.FAILED
    assert result.error == "Zalo: Parameters are invalid (error -201)"
    await rig.set_response(path="/v3.0/oa/message/cs", status=403, json={"message": "Forbidden"})
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.FAILED and result.error == "Zalo HTTP 403: Forbidden"


async def test_given_an_expired_token_then_it_is_renewed_written_atomically_and_the_reply_goes(
    rig: Rig,
) -> None:
    await rig.set_response(kind="expired_token")
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.SENT
    sends = await rig.requests("/v3.0/oa/message/cs")
    assert [r["headers"]["access_token"] for r in sends] == ["at-0", "at-1"]
    [refresh] = await rig.requests("/v4/oa/access_token")
    assert refresh["form"] == {
        "refresh_token": "rt-0",
        "app_id": APP,
        "grant_type": "refresh_token",
    }
    assert refresh["headers"]["secret_key"] == "fake-app-secret"
    for path, value in ((rig.cfg.access_token_file, "at-1"), (rig.cfg.refresh_token_file, "rt-1")):
        assert read(path) == value
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in Path(rig.cfg.access_token_file).parent.iterdir()) == [
        "access_token", "app_secret", "oa_secret", "refresh_token"
    ]  # fmt: skip


async def test_given_many_sends_hit_an_expired_token_together_then_it_is_renewed_once(
    rig: Rig,
) -> None:
    await rig.set_response(kind="expired_token")
    results = await asyncio.gather(*(rig.sender.send(reply(mid=f"r{i}")) for i in range(6)))
    assert [r.status for r in results] == [SendStatus.SENT] * 6
    assert rig.fake.refreshes == 1
    assert len(await rig.requests("/v4/oa/access_token")) == 1


async def test_given_the_token_is_about_to_expire_then_it_is_renewed_before_sending(
    rig: Rig,
) -> None:
    old = time.time() - 89_900  # 25 h tokens: 100 s left, inside the 300 s margin
    os.utime(rig.cfg.access_token_file, (old, old))
    assert (await rig.sender.send(reply())).status is SendStatus.SENT
    [send] = await rig.requests("/v3.0/oa/message/cs")
    assert send["headers"]["access_token"] == "at-1"
    assert rig.fake.refreshes == 1
    assert rig.sender.tokens.expires_at() > time.time() + 89_000


async def test_given_the_refresh_token_is_refused_then_failed_asking_for_a_reconnection(
    rig: Rig,
) -> None:
    rig.fake.refresh_token = "rt-someone-else"
    await rig.set_response(kind="expired_token")
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.FAILED
    assert "reconnect the OA" in (result.error or "") and "kết nối lại OA" in (result.error or "")
    assert read(rig.cfg.access_token_file) == "at-0"
    assert read(rig.cfg.refresh_token_file) == "rt-0"


async def test_given_a_token_file_replaced_by_hand_then_the_next_send_uses_it(rig: Rig) -> None:
    assert (await rig.sender.send(reply())).status is SendStatus.SENT
    rig.fake.access_token = "at-pasted"
    secret_file(Path(rig.cfg.access_token_file), "at-pasted")
    assert (await rig.sender.send(reply(mid="r2"))).status is SendStatus.SENT
    assert rig.fake.refreshes == 0


async def test_given_the_citizen_went_quiet_for_7_days_then_failed_with_the_window_message(
    rig: Rig,
) -> None:
    await rig.set_response(kind="out_of_window", user_id="u-4242")
    result = await rig.sender.send(reply())
    assert result.status is SendStatus.FAILED
    assert "168" in (result.error or "") and "Zalo" in (result.error or "")


async def test_given_a_small_png_then_it_is_uploaded_and_sent_by_attachment_id(
    rig: Rig, tmp_path: Path
) -> None:
    result = await rig.sender.send(reply("Kết quả:", image(tmp_path)))
    assert result.status is SendStatus.SENT
    [upload] = await rig.requests("/v2.0/oa/upload/image")
    assert upload["form"]["file"] == {"filename": "ket-qua.png", "content_type": "image/png",
                                      "size": 100}  # fmt: skip
    text, img = await rig.requests("/v3.0/oa/message/cs")
    assert text["json"]["message"] == {"text": "Kết quả:"}
    payload = img["json"]["message"]["attachment"]["payload"]
    assert payload["elements"][0]["attachment_id"].startswith("att-")


async def test_given_an_image_zalo_cannot_upload_then_it_goes_by_its_url(
    rig: Rig, tmp_path: Path
) -> None:
    webp = image(tmp_path, "a.webp", url="https://1022.quangnam.gov.vn/a.webp",
                 content_type="image/webp")  # fmt: skip
    assert (await rig.sender.send(reply("", webp))).status is SendStatus.SENT
    assert await rig.requests("/v2.0/oa/upload/image") == []
    [img] = await rig.requests("/v3.0/oa/message/cs")
    element = img["json"]["message"]["attachment"]["payload"]["elements"][0]
    assert element == {"media_type": "image", "url": "https://1022.quangnam.gov.vn/a.webp"}


async def test_given_a_large_image_without_url_then_refused_before_anything_is_sent(
    rig: Rig, tmp_path: Path
) -> None:
    big = image(tmp_path, "big.png", size=(1 << 20) + 1)
    result = await rig.sender.send(reply("xem ảnh", big))
    assert result.status is SendStatus.FAILED and "1 MB" in (result.error or "")
    assert await rig.requests() == []


async def test_given_a_pdf_with_a_url_then_it_goes_as_a_link_and_without_one_it_is_refused(
    rig: Rig, tmp_path: Path
) -> None:
    pdf = OutgoingAttachment("mau-don.pdf", "application/pdf", str(tmp_path / "x.pdf"),
                             "https://1022.qn/mau-don.pdf")  # fmt: skip
    assert (await rig.sender.send(reply("Mẫu đơn", pdf))).status is SendStatus.SENT
    [req] = await rig.requests("/v3.0/oa/message/cs")
    assert req["json"]["message"]["text"] == "Mẫu đơn\nmau-don.pdf: https://1022.qn/mau-don.pdf"
    no_url = OutgoingAttachment("mau-don.pdf", "application/pdf", str(tmp_path / "x.pdf"))
    result = await rig.sender.send(reply("Mẫu đơn", no_url, mid="r2"))
    assert result.status is SendStatus.FAILED and "mau-don.pdf" in (result.error or "")


async def test_given_a_retry_after_the_text_went_then_the_text_is_not_sent_twice(
    rig: Rig, tmp_path: Path
) -> None:
    await rig.set_response(path="/v2.0/oa/upload/image", status=503, json={})
    message = reply("Kết quả:", image(tmp_path))
    assert (await rig.sender.send(message)).status is SendStatus.RETRY
    result = await rig.sender.send(message)
    assert result.status is SendStatus.SENT and result.external_id == "fz-0"
    sends = await rig.requests("/v3.0/oa/message/cs")
    assert [("text" in r["json"]["message"]) for r in sends] == [True, False]


async def test_given_a_long_text_then_it_goes_in_pieces_zalo_accepts(rig: Rig) -> None:
    text = ("Thủ tục cấp giấy phép xây dựng gồm các bước sau. " * 60).strip()
    assert (await rig.sender.send(reply(text))).status is SendStatus.SENT
    pieces = [r["json"]["message"]["text"] for r in await rig.requests("/v3.0/oa/message/cs")]
    assert len(pieces) == 2 and all(len(p) <= 2000 for p in pieces)
    assert "".join(pieces) == text


async def test_given_a_facebook_recipient_then_refused(rig: Rig) -> None:
    wrong = OutboundMessage(Channel.ZALO, "c", Identity(IdentityKind.FACEBOOK, "p"), "x")
    assert (await rig.sender.send(wrong)).status is SendStatus.FAILED
    assert await rig.requests() == []


def test_the_reply_window_is_open_only_within_the_configured_hours(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path, "http://x")
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert window_open(now - timedelta(hours=167), now, cfg)
    assert not window_open(now - timedelta(hours=169), now, cfg)
    assert not window_open(None, now, cfg)


@given(text=st.text(max_size=3000), limit=st.integers(min_value=1, max_value=500))
def test_split_text_keeps_every_character_and_the_limit(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= limit for p in pieces)


async def test_given_the_fake_run_as_a_process_then_it_answers_and_records(tmp_path: Path) -> None:
    """``python -m lab.fake_zalo`` (what an end-to-end test starts) says where it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lab.fake_zalo", "--port", "0", "--access-token", "at-e2e",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode()
        url = line.split()[-1]
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            body = {"recipient": {"user_id": "u"}, "message": {"text": "x"}}
            r = await client.post(
                "/v3.0/oa/message/cs", headers={"access_token": "at-e2e"}, json=body
            )
            assert r.json()["error"] == 0
            assert [x["path"] for x in (await client.get("/_requests")).json()] == [
                "/v3.0/oa/message/cs"
            ]
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()
