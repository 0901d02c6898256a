"""GET|POST /webhooks/facebook as Meta (and an attacker) meets it: the subscription check, a
signed delivery journaled event by event, 401 with nothing stored, redeliveries no-ops, and
oversized, malformed or failing cases answered without a 500."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from channels.facebook import FacebookSettings, facebook_routes, parse_facebook
from lab.fake_graph import facebook_event, sign_facebook
from tickets.model import Channel
from tongdai.errors import StoreError

APP_SECRET, VERIFY = "fb-app-secret", "verify-1022"


@dataclass
class MemoryJournal:
    """The journal port: kept events by (channel, id); ``fail_after`` N appends it fails."""

    events: dict[tuple[Channel, str], bytes] = field(default_factory=dict)
    appends: int = 0
    fail_after: int | None = None

    async def append(self, channel: Channel, external_id: str, payload: bytes) -> bool:
        if self.fail_after is not None and self.appends >= self.fail_after:
            raise StoreError("database away and spool full")
        self.appends += 1
        await asyncio.sleep(0)
        if (channel, external_id) in self.events:
            return False
        self.events[(channel, external_id)] = payload
        return True


def secret_file(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


@dataclass
class Rig:
    journal: MemoryJournal
    client: httpx.AsyncClient

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/webhooks/facebook", content=body, headers=headers or {})

    async def signed(self, body: bytes) -> httpx.Response:
        return await self.post(body, sign_facebook(body, APP_SECRET))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cfg = FacebookSettings(
        app_secret_file=secret_file(tmp_path / "app_secret", APP_SECRET),
        verify_token_file=secret_file(tmp_path / "verify", VERIFY),
        page_token_file=secret_file(tmp_path / "page", "page-token"),
        max_body_bytes=8192,
    )
    journal = MemoryJournal()
    app = Starlette(routes=facebook_routes(cfg, journal))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield Rig(journal, client)


async def test_given_metas_subscription_check_then_the_challenge_comes_back_as_text(
    rig: Rig,
) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    r = await rig.client.get("/webhooks/facebook", params=query)
    assert (r.status_code, r.text) == (200, "1158201444")
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {},
    ],
)
async def test_given_a_wrong_subscription_check_then_403(rig: Rig, query: dict[str, str]) -> None:
    r = await rig.client.get("/webhooks/facebook", params=query)
    assert r.status_code == 403 and "1" not in r.text


async def test_given_a_signed_delivery_then_each_citizen_event_is_journaled_and_200(
    rig: Rig,
) -> None:
    extra = [{"sender": {"id": "psid-2"}, "recipient": {"id": "page-1022"}, "timestamp": 1,
              "message": {"mid": "m_2", "text": "Hỏi về thủ tục đầu tư"}},
             {"sender": {"id": "psid-2"}, "recipient": {"id": "page-1022"}, "timestamp": 1,
              "read": {"watermark": 1}}]  # fmt: skip
    body = facebook_event("psid-1", text="Tra cứu hồ sơ", mid="m_1", extra=extra)
    r = await rig.signed(body)
    assert r.status_code == 200
    assert sorted(k[1] for k in rig.journal.events) == ["m_1", "m_2"]
    [m] = parse_facebook(rig.journal.events[(Channel.FACEBOOK, "m_2")])
    assert (m.text, m.sender.value) == ("Hỏi về thủ tục đầu tư", "psid-2")


async def test_given_a_redelivery_then_200_and_kept_once(rig: Rig) -> None:
    body = facebook_event("psid-1", mid="m_1")
    assert (await rig.signed(body)).status_code == 200
    assert (await rig.signed(body)).status_code == 200
    assert list(rig.journal.events) == [(Channel.FACEBOOK, "m_1")] and rig.journal.appends == 2


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, {"X-Hub-Signature": "sha1=abc"}],
)
async def test_given_a_missing_or_wrong_signature_then_401_and_nothing_stored(
    rig: Rig, headers: dict[str, str]
) -> None:
    r = await rig.post(facebook_event("psid-1"), headers)
    assert r.status_code == 401 and rig.journal.appends == 0


async def test_given_a_body_changed_after_signing_then_401(rig: Rig) -> None:
    body = facebook_event("psid-1", text="chuyển 100k")
    headers = sign_facebook(body, APP_SECRET)
    r = await rig.post(body.replace(b"100k", b"900k"), headers)
    assert r.status_code == 401 and rig.journal.appends == 0


@pytest.mark.parametrize("body", [b"{oops", b"[]", b"null", b"\xc3\x28", b"[" * 4000])
async def test_given_a_signed_body_that_is_not_a_json_object_then_400(
    rig: Rig, body: bytes
) -> None:
    assert (await rig.signed(body)).status_code == 400 and rig.journal.appends == 0


async def test_given_a_body_over_the_limit_then_413(rig: Rig) -> None:
    r = await rig.signed(facebook_event("psid-1", text="x" * 9000))
    assert r.status_code == 413 and rig.journal.appends == 0


async def test_given_only_receipts_and_echoes_or_another_object_then_200_and_nothing_stored(
    rig: Rig,
) -> None:
    echo = {"sender": {"id": "page"}, "recipient": {"id": "psid"}, "timestamp": 1,
            "message": {"mid": "m_e", "text": "hi", "is_echo": True}}  # fmt: skip
    body = json.dumps({"object": "page", "entry": [{"id": "p", "messaging": [echo]}]}).encode()
    assert (await rig.signed(body)).status_code == 200
    assert (await rig.signed(b'{"object": "instagram", "entry": []}')).status_code == 200
    assert rig.journal.appends == 0


async def test_given_the_journal_fails_mid_batch_then_503_and_metas_retry_completes_it(
    rig: Rig,
) -> None:
    extra = [{"sender": {"id": "psid-2"}, "recipient": {"id": "p"}, "timestamp": 1,
              "message": {"mid": "m_2", "text": "hai"}}]  # fmt: skip
    body = facebook_event("psid-1", mid="m_1", extra=extra)
    rig.journal.fail_after = 1
    assert (await rig.signed(body)).status_code == 503
    rig.journal.fail_after = None
    assert (await rig.signed(body)).status_code == 200
    assert sorted(k[1] for k in rig.journal.events) == ["m_1", "m_2"]


async def test_given_any_request_then_no_secret_or_message_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = facebook_event("psid-1", text="CCCD 049123456789")
    await rig.signed(body)
    await rig.post(body, {"X-Hub-Signature-256": "sha256=00"})
    await rig.client.get("/webhooks/facebook", params={"hub.mode": "subscribe",
                                                       "hub.verify_token": "nope"})  # fmt: skip
    assert "refused" in caplog.text
    for secret in (APP_SECRET, VERIFY, "049123456789"):
        assert secret not in caplog.text
