"""The web chat's small parts: its settings (errors name the field), visitor tokens (forgery
refused), the rate limiter, the journaled payload and its parser, the origin rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.webchat.events import event_payload, parse_webchat
from channels.webchat.limits import RateLimiter
from channels.webchat.routes import origin_allowed
from channels.webchat.settings import WebchatSettings
from channels.webchat.token import VisitorTokens, load_key
from conversations.model import IdentityKind
from tickets.model import Channel
from tongdai.errors import ConfigError

TOKENS = VisitorTokens(b"k" * 32)


def test_settings_read_the_table_and_name_a_bad_field() -> None:
    cfg = WebchatSettings.from_table(
        "t.toml", {"allowed_origins": ["https://Portal.example/"], "burst": 2}
    )
    assert cfg.allowed_origins == ("https://portal.example",) and cfg.burst == 2
    for table, field in [
        ({"allowed_origins": ["javascript:alert(1)"]}, "channels.webchat.allowed_origins"),
        ({"max_frame_bytes": 10}, "channels.webchat.max_frame_bytes"),
        ({"colour": "red"}, "channels.webchat.colour"),
        ({"secret_file": "/nonexistent/secret"}, "channels.webchat.secret_file"),
    ]:
        with pytest.raises(ConfigError) as err:
            WebchatSettings.from_table("t.toml", table)
        assert field in str(err.value)


def test_a_token_names_its_visitor_and_nothing_else_passes() -> None:
    visitor, token = TOKENS.new()
    assert TOKENS.visitor(token) == visitor and len(visitor) == 16
    assert TOKENS.visitor(TOKENS.token_of(visitor)) == visitor
    other = VisitorTokens(b"x" * 32)
    assert other.visitor(token) is None  # another key
    for bad in (None, 5, "", visitor, token + "0", token.upper(), token[:-1] + "g", [token]):
        assert TOKENS.visitor(bad) is None


@given(st.text(max_size=80))
def test_no_random_text_is_a_token(text: str) -> None:
    assert TOKENS.visitor(text) is None


def test_the_key_is_made_once_in_the_state_folder(tmp_path: Path) -> None:
    key = load_key("", tmp_path)
    assert load_key("", tmp_path) == key and len(key) >= 32
    assert (tmp_path / "webchat_secret").stat().st_mode & 0o077 == 0


def test_the_limiter_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    lim = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [lim.take("v") for _ in range(3)] == [None, None, None]
    wait = lim.take("v")
    assert wait is not None and 0.9 < wait <= 1.0
    assert lim.take("w") is None  # per key
    now[0] = 1.01
    assert lim.take("v") is None


def test_the_payload_parses_into_one_webchat_message() -> None:
    at = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    raw = event_payload("abcdefghijklmnop", "c1", "Xin chào <b>", at, name="Lan", reach=None)
    (m,) = parse_webchat(raw)
    assert (m.channel, m.external_id, m.text, m.sender_name) == (
        Channel.WEBCHAT, "abcdefghijklmnop:c1", "Xin chào <b>", "Lan",
    )  # fmt: skip
    assert m.sender.kind is IdentityKind.WEBCHAT and m.received_at == at
    for bad in (b"[]", b'{"visitor": 1}', b"{"):
        with pytest.raises(ValueError):
            parse_webchat(bad)


def test_the_origin_rule() -> None:
    allowed = ("https://portal.example",)
    assert origin_allowed(None, "1022.example", allowed)  # not a browser
    assert origin_allowed("https://portal.example", "1022.example", allowed)
    assert origin_allowed("https://1022.example", "1022.example", allowed)  # this site
    for bad in ("null", "https://evil.example", "https://portal.example.evil", "file://x", ""):
        assert not origin_allowed(bad, "1022.example", allowed)
    assert origin_allowed("https://any.example", None, ("*",))
