"""Zalo webhook signatures: what Zalo signs is accepted, anything else (another secret, another
app, a changed byte, an old or future timestamp, no header) is refused. The platform's side
is ``lab.fake_zalo.sign_zalo``, written apart from the adapter's check."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from channels.zalo.signature import Refusal, check_zalo, zalo_mac
from lab.fake_zalo import sign_zalo, zalo_event

APP, SECRET = "4291763606161179100", "oa-secret-Đà-Nẵng"
NOW_MS = 1_796_000_000_000
WINDOW_S = 300.0


def check(
    body: bytes, header: str | None, *, now_ms: int = NOW_MS, secret: str = SECRET
) -> Refusal | None:
    return check_zalo(
        header, body, json.loads(body), app_id=APP, oa_secret_key=secret, now_ms=now_ms,
        window_s=WINDOW_S,
    )  # fmt: skip


def signed(body: bytes, *, app: str = APP, secret: str = SECRET) -> str:
    ts = str(json.loads(body)["timestamp"])
    return sign_zalo(body, app, ts, secret)["X-ZEvent-Signature"]


texts = st.text(min_size=0, max_size=200)


@given(text=texts, user=st.text(min_size=1, max_size=30))
def test_given_an_event_signed_as_zalo_does_when_checked_then_it_is_accepted(
    text: str, user: str
) -> None:
    body = zalo_event(APP, user, text=text, timestamp_ms=NOW_MS - 1000)
    assert check(body, signed(body)) is None


@given(text=texts, index=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_given_a_signed_body_when_one_byte_changes_then_it_is_refused(
    text: str, index: int, flip: int
) -> None:
    body = zalo_event(APP, "u1", text=text, timestamp_ms=NOW_MS)
    header = signed(body)
    changed = bytearray(body)
    changed[index % len(body)] ^= flip
    try:
        doc = json.loads(bytes(changed))
    except ValueError:
        return  # no longer JSON: the route answers 400 before any check
    if not isinstance(doc, dict):
        return
    refusal = check_zalo(
        header, bytes(changed), doc, app_id=APP, oa_secret_key=SECRET, now_ms=NOW_MS,
        window_s=WINDOW_S,
    )  # fmt: skip
    assert refusal is not None


@given(other=st.text(min_size=1, max_size=40).filter(lambda s: s != SECRET))
def test_given_a_body_signed_with_another_secret_then_it_is_refused(other: str) -> None:
    body = zalo_event(APP, "u1", timestamp_ms=NOW_MS)
    assert check(body, signed(body, secret=other)) is Refusal.WRONG_SIGNATURE


def test_given_no_header_or_not_a_mac_then_it_is_refused() -> None:
    body = zalo_event(APP, "u1", timestamp_ms=NOW_MS)
    assert check(body, None) is Refusal.NO_SIGNATURE
    assert check(body, "") is Refusal.NO_SIGNATURE
    assert check(body, zalo_mac(APP, body, str(NOW_MS), SECRET)) is Refusal.NO_SIGNATURE
    assert check(body, "mac=") is Refusal.WRONG_SIGNATURE


def test_given_upper_case_hex_then_it_is_still_zalos_signature() -> None:
    body = zalo_event(APP, "u1", timestamp_ms=NOW_MS)
    assert check(body, "mac=" + signed(body)[4:].upper()) is None


def test_given_another_app_id_even_correctly_signed_then_it_is_refused() -> None:
    body = zalo_event("another-app", "u1", timestamp_ms=NOW_MS)
    assert check(body, signed(body, app="another-app")) is Refusal.UNKNOWN_APP


def test_given_a_replayed_event_older_than_the_window_then_it_is_refused() -> None:
    body = zalo_event(APP, "u1", timestamp_ms=NOW_MS - 301_000)
    assert check(body, signed(body)) is Refusal.STALE
    just_inside = zalo_event(APP, "u1", timestamp_ms=NOW_MS - 299_000)
    assert check(just_inside, signed(just_inside)) is None


def test_given_a_timestamp_too_far_in_the_future_then_it_is_refused() -> None:
    body = zalo_event(APP, "u1", timestamp_ms=NOW_MS + 301_000)
    assert check(body, signed(body)) is Refusal.FUTURE


def test_given_a_numeric_timestamp_then_it_is_signed_as_its_decimal_text() -> None:
    doc = {"app_id": APP, "event_name": "follow", "timestamp": NOW_MS, "follower": {"id": "u"}}
    body = json.dumps(doc).encode()
    assert check(body, "mac=" + zalo_mac(APP, body, str(NOW_MS), SECRET)) is None


@given(
    ts=st.one_of(
        st.none(), st.booleans(), st.floats(), st.text(max_size=20), st.lists(st.integers())
    )
)
def test_given_a_timestamp_that_is_not_digits_then_it_is_refused_without_error(ts: object) -> None:
    if isinstance(ts, str) and ts.isascii() and ts.isdigit() and len(ts) <= 15:
        return
    body = json.dumps({"app_id": APP, "timestamp": ts, "event_name": "x"}).encode()
    assert check(body, "mac=00") is Refusal.BAD_TIMESTAMP
