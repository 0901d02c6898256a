"""Messenger deliveries as the core receives them: texts, attachments, locations, postbacks;
echoes and receipts skipped; each event journaled alone and read back with the same id; no
exception on any JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from channels.facebook.events import parse_facebook, split_facebook
from conversations.model import Identity, IdentityKind, InboundKind
from lab.fake_graph import facebook_event
from tickets.model import Channel

TS = 1_796_000_000_456


def delivery(*events: dict[str, Any], page: str = "page-1") -> bytes:
    entry = {"id": page, "time": TS, "messaging": list(events)}
    return json.dumps({"object": "page", "entry": [entry]}, ensure_ascii=False).encode()


def msg(message: dict[str, Any], psid: str = "psid-7") -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": "page-1"}, "timestamp": TS,
            "message": message}  # fmt: skip


def test_given_a_text_then_the_core_gets_the_words_identity_and_mid() -> None:
    [m] = parse_facebook(facebook_event("psid-7", text="Tôi muốn gặp tổng đài viên", mid="m_1",
                                        timestamp_ms=TS))  # fmt: skip
    assert m.channel is Channel.FACEBOOK
    assert (m.external_id, m.kind, m.text) == (
        "m_1",
        InboundKind.MESSAGE,
        "Tôi muốn gặp tổng đài viên",
    )
    assert m.sender == Identity(IdentityKind.FACEBOOK, "psid-7")
    assert m.received_at == datetime.fromtimestamp(TS / 1000, UTC)
    assert m.meta["page_id"] == "page-1022"


def test_given_media_attachments_then_each_arrives_with_its_url_and_type() -> None:
    [m] = parse_facebook(delivery(msg({"mid": "m_2", "attachments": [
        {"type": "image", "payload": {"url": "https://scontent.xx/v/123_n.jpg?oh=1"}},
        {"type": "file", "payload": {"url": "https://cdn.fb/don-de-nghi.pdf"}},
        {"type": "audio", "payload": {"url": "https://cdn.fb/audioclip-1"}},
        {"type": "video", "payload": {"url": "https://cdn.fb/v.mp4"}},
    ]})))  # fmt: skip
    assert [(a.filename, a.content_type) for a in m.attachments] == [
        ("123_n.jpg", "image/jpeg"),
        ("don-de-nghi.pdf", "application/pdf"),
        ("audioclip-1", "audio/mpeg"),
        ("v.mp4", "video/mp4"),
    ]
    assert m.attachments[0].url == "https://scontent.xx/v/123_n.jpg?oh=1"


def test_given_a_location_then_the_text_is_lat_lon() -> None:
    location = {"type": "location", "payload": {"coordinates": {"lat": 15.8801, "long": 108.338}}}
    [m] = parse_facebook(delivery(msg({"mid": "m_3", "attachments": [location]})))
    assert (m.kind, m.text) == (InboundKind.LOCATION, "15.8801,108.338")


def test_given_a_shared_link_fallback_then_its_title_and_url_are_the_text() -> None:
    link = {"type": "fallback", "payload": {"url": "https://dichvucong.gov.vn", "title": "DVC"}}
    [m] = parse_facebook(delivery(msg({"mid": "m_4", "attachments": [link]})))
    assert m.text == "DVC https://dichvucong.gov.vn"


def test_given_a_postback_then_its_payload_is_the_text_and_the_title_kept() -> None:
    body = facebook_event("psid-7", postback={"title": "Gặp tổng đài viên", "payload": "AGENT",
                                              "mid": "m_pb"}, timestamp_ms=TS)  # fmt: skip
    [m] = parse_facebook(body)
    assert (m.kind, m.text, m.external_id) == (InboundKind.POSTBACK, "AGENT", "m_pb")
    assert m.meta["title"] == "Gặp tổng đài viên"


def test_given_a_postback_without_mid_then_its_id_is_stable() -> None:
    body = facebook_event("psid-7", postback={"title": "Tra cứu", "payload": "LOOKUP"},
                          timestamp_ms=TS)  # fmt: skip
    first = parse_facebook(body)[0].external_id
    assert first.startswith("h:") and parse_facebook(body)[0].external_id == first


def test_given_echoes_and_receipts_then_only_the_citizen_message_is_kept() -> None:
    echo = msg({"mid": "m_echo", "text": "from the page", "is_echo": True, "app_id": 1})
    delivered = {"sender": {"id": "psid-7"}, "recipient": {"id": "page-1"}, "timestamp": TS,
                 "delivery": {"mids": ["m_x"], "watermark": TS}}  # fmt: skip
    read = {"sender": {"id": "psid-7"}, "recipient": {"id": "page-1"}, "timestamp": TS,
            "read": {"watermark": TS}}  # fmt: skip
    kept, skipped = split_facebook(
        json.loads(delivery(echo, delivered, read, msg({"mid": "m_5", "text": "a"})))
    )
    assert [e.external_id for e in kept] == ["m_5"] and skipped == 3


def test_given_a_batch_then_each_journal_entry_reads_back_as_its_own_message() -> None:
    body = delivery(
        msg({"mid": "m_a", "text": "một"}), msg({"mid": "m_b", "text": "hai"}, "psid-8")
    )
    kept, _ = split_facebook(json.loads(body))
    assert [[(m.external_id, m.text) for m in parse_facebook(e.payload())] for e in kept] == [
        [("m_a", "một")], [("m_b", "hai")]
    ]  # fmt: skip
    assert [m.external_id for m in parse_facebook(body)] == ["m_a", "m_b"]


def test_given_another_object_then_nothing_is_kept() -> None:
    assert split_facebook({"object": "instagram", "entry": []}) == ([], 0)
    assert parse_facebook(b'{"object": "user"}') == []


def test_given_a_reply_and_a_quick_reply_then_both_are_noted() -> None:
    [m] = parse_facebook(delivery(msg({"mid": "m_6", "text": "Có", "reply_to": {"mid": "m_0"},
                                       "quick_reply": {"payload": "YES"}})))  # fmt: skip
    assert m.in_reply_to == ("m_0",) and m.meta["quick_reply"] == "YES"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(payload=st.binary(max_size=300))
def test_given_any_bytes_then_parsing_never_raises(payload: bytes) -> None:
    assert isinstance(parse_facebook(payload), list)


@given(doc=json_values)
def test_given_any_json_then_parsing_never_raises(doc: object) -> None:
    assert isinstance(parse_facebook(json.dumps(doc).encode()), list)


coordinates = st.fixed_dictionaries({"lat": json_values, "long": json_values})


@given(
    messaging=st.lists(st.fixed_dictionaries({}, optional={
        "sender": st.fixed_dictionaries({"id": json_values}),
        "timestamp": json_values,
        "message": st.fixed_dictionaries({}, optional={
            "mid": json_values, "text": json_values, "is_echo": json_values,
            "sticker_id": json_values, "reply_to": json_values, "quick_reply": json_values,
            "attachments": st.lists(st.fixed_dictionaries({
                "type": st.sampled_from(["image", "file", "audio", "video", "location",
                                         "fallback", "template"]) | json_values,
                "payload": json_values | st.fixed_dictionaries({"coordinates": coordinates}),
            }), max_size=3),
        }),
        "postback": json_values,
        "delivery": json_values,
    }), max_size=4),
    page=json_values,
)  # fmt: skip
def test_given_messenger_shaped_deliveries_with_any_values_then_the_output_is_sound(
    messaging: list[dict[str, Any]], page: object
) -> None:
    body = json.dumps({"object": "page", "entry": [{"id": page, "messaging": messaging}]}).encode()
    kept, _ = split_facebook(json.loads(body))
    now = datetime(2026, 12, 6, tzinfo=UTC)
    for event in kept:
        for m in parse_facebook(event.payload(), now=now):
            assert m.external_id == event.external_id and m.sender.value
            m.text.encode("utf-8")
            assert all(a.url and a.content_type for a in m.attachments)
