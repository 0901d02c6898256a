"""Zalo events as the core receives them: each citizen event kind, the ids a redelivery keeps,
what is skipped (echoes, receipts, unknown names), and no exception on any JSON at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from channels.zalo.events import parse_zalo, zalo_event_id
from conversations.model import Identity, IdentityKind, InboundKind
from lab.fake_zalo import zalo_event
from tickets.model import Channel

APP = "app-1022"
TS = 1_796_000_000_123


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def user_event(event: str, message: dict[str, Any]) -> bytes:
    return body(
        {"app_id": APP, "event_name": event, "timestamp": str(TS), "sender": {"id": "u-77"},
         "recipient": {"id": "oa-1"}, "user_id_by_app": "uba-77", "message": message}
    )  # fmt: skip


def test_given_a_text_then_the_core_gets_the_citizens_words_and_identity() -> None:
    [m] = parse_zalo(zalo_event(APP, "u-77", text="Hồ sơ của tôi đến đâu rồi?", msg_id="mid-1",
                                timestamp_ms=TS))  # fmt: skip
    assert m.channel is Channel.ZALO
    assert m.external_id == "mid-1"
    assert m.sender == Identity(IdentityKind.ZALO, "u-77")
    assert m.kind is InboundKind.MESSAGE
    assert m.text == "Hồ sơ của tôi đến đâu rồi?"
    assert m.received_at == datetime.fromtimestamp(TS / 1000, UTC)
    assert m.meta["app_id"] == APP and m.meta["oa_id"] == "oa-1022"


def test_given_an_image_then_it_arrives_as_an_attachment_url_with_its_caption() -> None:
    [m] = parse_zalo(user_event("user_send_image", {
        "msg_id": "mid-2", "text": "giấy tờ",
        "attachments": [{"type": "image", "payload": {"url": "https://z/p.jpg", "thumbnail": "t"}}],
    }))  # fmt: skip
    assert m.text == "giấy tờ"
    [a] = m.attachments
    assert (a.url, a.content_type, a.data) == ("https://z/p.jpg", "image/jpeg", None)


def test_given_a_file_then_its_name_and_type_are_kept() -> None:
    [m] = parse_zalo(user_event("user_send_file", {
        "msg_id": "mid-3",
        "attachments": [{"type": "file", "payload": {"url": "https://z/f", "name": "đơn.pdf",
                                                     "size": "2048", "type": "pdf"}}],
    }))  # fmt: skip
    [a] = m.attachments
    assert (a.filename, a.content_type, a.url) == ("đơn.pdf", "application/pdf", "https://z/f")


def test_given_a_location_then_the_text_is_lat_lon_and_the_address() -> None:
    [m] = parse_zalo(user_event("user_send_location", {
        "msg_id": "mid-4", "text": "UBND Tam Kỳ",
        "attachments": [{"type": "location", "payload": {
            "coordinates": {"latitude": "15.5736", "longitude": "108.474"}}}],
    }))  # fmt: skip
    assert m.kind is InboundKind.LOCATION
    assert m.text == "15.5736,108.474 (UBND Tam Kỳ)"
    assert (m.meta["latitude"], m.meta["longitude"]) == ("15.5736", "108.474")


def test_given_a_location_without_usable_coordinates_then_it_is_skipped() -> None:
    bad = {"msg_id": "m", "attachments": [{"type": "location", "payload": {
        "coordinates": {"latitude": "north", "longitude": 200}}}]}  # fmt: skip
    assert parse_zalo(user_event("user_send_location", bad)) == []


def test_given_a_sticker_then_it_is_a_sticker_with_its_picture() -> None:
    [m] = parse_zalo(user_event("user_send_sticker", {
        "msg_id": "mid-5", "attachments": [{"type": "sticker",
                                            "payload": {"id": "st9", "url": "https://z/s"}}],
    }))  # fmt: skip
    assert m.kind is InboundKind.STICKER
    assert m.meta["sticker_id"] == "st9"
    assert [a.url for a in m.attachments] == ["https://z/s"]


def test_given_follow_and_unfollow_then_they_carry_the_follower_and_a_stable_id() -> None:
    follow = zalo_event(APP, "u-9", event="follow", timestamp_ms=TS)
    [m] = parse_zalo(follow)
    assert m.kind is InboundKind.FOLLOW
    assert m.sender == Identity(IdentityKind.ZALO, "u-9")
    assert m.external_id == f"follow:u-9:{TS}"
    assert parse_zalo(follow)[0].external_id == m.external_id  # a redelivery: the same id
    [u] = parse_zalo(zalo_event(APP, "u-9", event="unfollow", timestamp_ms=TS + 5))
    assert u.kind is InboundKind.UNFOLLOW and u.external_id != m.external_id


def test_given_a_message_without_msg_id_then_its_id_is_stable_across_redeliveries() -> None:
    raw = user_event("user_send_text", {"text": "không có id"})
    [m] = parse_zalo(raw)
    assert m.external_id == zalo_event_id(json.loads(raw), raw) == parse_zalo(raw)[0].external_id
    other = user_event("user_send_text", {"text": "khác"})
    assert parse_zalo(other)[0].external_id != m.external_id


def test_given_our_own_sends_receipts_and_unknown_events_then_nothing_is_kept() -> None:
    for event in ("oa_send_text", "oa_send_image", "user_seen_message", "user_received_message",
                  "user_reacted_message", "shop_has_order"):  # fmt: skip
        raw = user_event(event, {"msg_id": "x", "text": "hi"})
        assert zalo_event_id(json.loads(raw), raw) is None
        assert parse_zalo(raw) == []


def test_given_a_quoted_reply_then_the_quoted_message_is_named() -> None:
    [m] = parse_zalo(user_event("user_send_text", {"msg_id": "a", "text": "ok",
                                                   "quote_msg_id": "q1"}))  # fmt: skip
    assert m.in_reply_to == ("q1",)


def test_given_a_lone_surrogate_in_the_text_then_the_text_is_storable() -> None:
    raw = b'{"app_id":"a","event_name":"user_send_text","timestamp":"1","sender":{"id":"u"},' \
          b'"message":{"msg_id":"m","text":"ch\\ud800ao"}}'  # fmt: skip
    [m] = parse_zalo(raw)
    m.text.encode("utf-8")
    assert m.text.startswith("ch") and m.text.endswith("ao")


def test_given_no_timestamp_then_now_stands_in_or_the_event_is_skipped() -> None:
    raw = body({"event_name": "user_send_text", "sender": {"id": "u"},
                "message": {"msg_id": "m", "text": "t"}})  # fmt: skip
    assert parse_zalo(raw) == []
    now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    assert parse_zalo(raw, now=now)[0].received_at == now


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
events = st.sampled_from(["user_send_text", "user_send_image", "user_send_file",
                          "user_send_location", "user_send_sticker", "user_send_link",
                          "follow", "unfollow", "oa_send_text", "nonsense"])  # fmt: skip


@given(payload=st.binary(max_size=300))
def test_given_any_bytes_then_parsing_never_raises(payload: bytes) -> None:
    assert isinstance(parse_zalo(payload), list)


@given(doc=json_values)
def test_given_any_json_then_parsing_never_raises(doc: object) -> None:
    assert isinstance(parse_zalo(json.dumps(doc).encode()), list)


@given(
    event=events,
    sender=json_values,
    message=st.dictionaries(st.sampled_from(["msg_id", "text", "attachments", "quote_msg_id"]),
                            json_values),
    attachments=st.lists(st.fixed_dictionaries({"type": st.sampled_from(
        ["image", "file", "location", "sticker", "link", "gif"]) | json_values,
        "payload": json_values})),
    ts=json_values,
)  # fmt: skip
def test_given_zalo_shaped_events_with_any_values_then_parsing_never_raises_and_output_is_sound(
    event: str, sender: object, message: dict[str, Any], attachments: list[Any], ts: object
) -> None:
    message.setdefault("attachments", attachments)
    raw = body({"app_id": APP, "event_name": event, "timestamp": ts, "sender": {"id": sender},
                "follower": {"id": sender}, "message": message})  # fmt: skip
    now = datetime(2026, 12, 6, tzinfo=UTC)
    for m in parse_zalo(raw, now=now):
        assert m.external_id and m.sender.value and m.received_at.tzinfo is not None
        assert m.external_id == zalo_event_id(json.loads(raw), raw)
        m.text.encode("utf-8")
        for a in m.attachments:
            assert a.url and a.filename and a.content_type


@given(text=st.text(min_size=1, max_size=500))
def test_given_any_unicode_text_then_it_arrives_unchanged(text: str) -> None:
    raw = user_event("user_send_text", {"msg_id": "m", "text": text})
    assert [m.text for m in parse_zalo(raw)] == [text]
