"""POST /webhooks/zalo as Zalo (and an attacker) meets it: a signed event is journaled once and
answered 200; a bad signature is 401 with nothing stored; a redelivery is a no-op; oversized,
malformed, echo and unknown events, and a journal that fails or hangs, never a 500."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from channels import webhooks
from channels.zalo import ZaloSettings, parse_zalo, zalo_routes
from lab.fake_zalo import sign_zalo, signed_zalo_request, zalo_event
from tickets.model import Channel
from tongdai.errors import ConfigError, StoreError

APP, SECRET = "app-1022", "zalo-oa-secret-xyz"
NOW = 1_796_000_000.0


@dataclass
class MemoryJournal:
    """The journal port: kept events by (channel, id); ``fail``/``hang`` break it."""

    events: dict[tuple[Channel, str], bytes] = field(default_factory=dict)
    appends: int = 0
    fail: bool = False
    hang: bool = False

    async def append(self, channel: Channel, external_id: str, payload: bytes) -> bool:
        self.appends += 1
        if self.fail:
            raise StoreError("database away and spool full")
        if self.hang:
            await asyncio.Event().wait()
        if (channel, external_id) in self.events:
            return False
        self.events[(channel, external_id)] = payload
        return True


def secret_file(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def settings(tmp_path: Path, **changes: object) -> ZaloSettings:
    values: dict[str, object] = {
        "app_id": APP,
        "oa_id": "oa-1022",
        "oa_secret_key_file": secret_file(tmp_path / "oa_secret", SECRET),
        "app_secret_file": secret_file(tmp_path / "app_secret", "app-secret"),
        "access_token_file": secret_file(tmp_path / "at", "at-0"),
        "refresh_token_file": secret_file(tmp_path / "rt", "rt-0"),
        "max_body_bytes": 4096,
    }
    values.update(changes)
    return ZaloSettings(**values)  # type: ignore[arg-type]


@dataclass
class Rig:
    journal: MemoryJournal
    client: httpx.AsyncClient
    app: Starlette

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/webhooks/zalo", content=body, headers=headers or {})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    journal = MemoryJournal()
    app = Starlette(routes=zalo_routes(settings(tmp_path), journal, clock=lambda: NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield Rig(journal, client, app)


def event(text: str = "Xin chào", msg_id: str = "m1", **kw: object) -> bytes:
    return zalo_event(APP, "u-1", text=text, msg_id=msg_id, timestamp_ms=int(NOW * 1000), **kw)  # type: ignore[arg-type]


async def test_given_a_signed_text_when_posted_then_it_is_journaled_and_answered_200(
    rig: Rig,
) -> None:
    body = event("Cho tôi hỏi hồ sơ 000.00.12.H40-261206-0001")
    r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
    assert r.status_code == 200
    assert rig.journal.events == {(Channel.ZALO, "m1"): body}
    [m] = parse_zalo(rig.journal.events[(Channel.ZALO, "m1")])
    assert m.text == "Cho tôi hỏi hồ sơ 000.00.12.H40-261206-0001"


async def test_given_a_redelivery_when_posted_again_then_it_is_200_and_kept_once(rig: Rig) -> None:
    body = event()
    headers = signed_zalo_request(body, APP, SECRET)
    assert (await rig.post(body, headers)).status_code == 200
    assert (await rig.post(body, headers)).status_code == 200
    assert list(rig.journal.events) == [(Channel.ZALO, "m1")]
    assert rig.journal.appends == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-ZEvent-Signature": ""},
        {"X-ZEvent-Signature": "mac=" + "0" * 64},
        {"X-ZEvent-Signature": "sha256=abc"},
    ],
)
async def test_given_a_missing_or_wrong_signature_then_401_and_nothing_stored(
    rig: Rig, headers: dict[str, str]
) -> None:
    r = await rig.post(event(), headers)
    assert r.status_code == 401
    assert rig.journal.appends == 0


async def test_given_a_body_signed_with_another_secret_then_401(rig: Rig) -> None:
    body = event()
    r = await rig.post(body, signed_zalo_request(body, APP, "not-our-secret"))
    assert r.status_code == 401 and rig.journal.appends == 0


async def test_given_a_replayed_event_from_ten_minutes_ago_then_401(rig: Rig) -> None:
    body = zalo_event(APP, "u-1", msg_id="old", timestamp_ms=int((NOW - 600) * 1000))
    r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
    assert r.status_code == 401 and rig.journal.appends == 0


async def test_given_another_app_then_401(rig: Rig) -> None:
    body = zalo_event("other-app", "u-1", timestamp_ms=int(NOW * 1000))
    r = await rig.post(body, signed_zalo_request(body, "other-app", SECRET))
    assert r.status_code == 401 and rig.journal.appends == 0


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 4000])
async def test_given_a_signed_request_whose_body_is_not_a_json_object_then_400(
    rig: Rig, body: bytes
) -> None:
    r = await rig.post(body, sign_zalo(body, APP, "1", SECRET))
    assert r.status_code == 400 and rig.journal.appends == 0


async def test_given_a_body_over_the_limit_then_413_and_nothing_stored(rig: Rig) -> None:
    body = event("x" * 5000)
    r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
    assert r.status_code == 413 and rig.journal.appends == 0


async def test_given_a_chunked_body_over_the_limit_then_it_is_not_read_to_the_end(
    tmp_path: Path,
) -> None:
    """No Content-Length: the route stops reading once past the limit."""
    app = Starlette(routes=zalo_routes(settings(tmp_path), MemoryJournal(), clock=lambda: NOW))
    chunks = [b"x" * 1024] * 100
    read = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": "/webhooks/zalo", "raw_path": b"/webhooks/zalo",
        "query_string": b"", "headers": [(b"x-zevent-signature", b"mac=00")],
        "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("1.2.3.4", 5),
        "root_path": "",
    }  # fmt: skip
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert read <= 5  # 4 KiB limit: the fifth chunk passes it


async def test_given_our_own_echo_or_an_unknown_event_then_200_and_nothing_stored(
    rig: Rig,
) -> None:
    for name in ("oa_send_text", "user_reacted_message"):
        body = zalo_event(APP, "u-1", event=name, msg_id=name, timestamp_ms=int(NOW * 1000))
        r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
        assert r.status_code == 200
    assert rig.journal.appends == 0


async def test_given_a_follow_then_it_is_kept_under_event_user_and_time(rig: Rig) -> None:
    body = zalo_event(APP, "u-5", event="follow", timestamp_ms=int(NOW * 1000))
    r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
    assert r.status_code == 200
    assert list(rig.journal.events) == [(Channel.ZALO, f"follow:u-5:{int(NOW * 1000)}")]


async def test_given_the_journal_fails_then_503_so_zalo_retries(rig: Rig) -> None:
    rig.journal.fail = True
    body = event()
    r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
    assert r.status_code == 503
    rig.journal.fail = False
    assert (await rig.post(body, signed_zalo_request(body, APP, SECRET))).status_code == 200
    assert list(rig.journal.events) == [(Channel.ZALO, "m1")]


async def test_given_the_journal_hangs_then_503_after_the_timeout(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "JOURNAL_TIMEOUT_S", 0.05)
    rig.journal.hang = True
    body = event()
    r = await rig.post(body, signed_zalo_request(body, APP, SECRET))
    assert r.status_code == 503


async def test_given_refused_and_kept_requests_then_no_secret_or_body_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = event("số CCCD 049123456789")
    await rig.post(body, signed_zalo_request(body, APP, SECRET))
    await rig.post(body, {"X-ZEvent-Signature": "mac=00"})
    rig.journal.fail = True
    await rig.post(event(msg_id="m2"), signed_zalo_request(event(msg_id="m2"), APP, SECRET))
    assert "zalo webhook refused" in caplog.text
    assert SECRET not in caplog.text and "049123456789" not in caplog.text


async def test_given_a_get_then_405(rig: Rig) -> None:
    assert (await rig.client.get("/webhooks/zalo")).status_code == 405


def test_given_a_world_readable_secret_then_the_routes_refuse_to_start(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    Path(cfg.oa_secret_key_file).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        zalo_routes(cfg, MemoryJournal())
