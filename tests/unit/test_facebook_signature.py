"""Meta's checks: the subscription GET answered only for our verify token, and the body HMAC
(``X-Hub-Signature-256``) accepted only for the exact bytes Meta signed with our app secret."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.facebook.signature import challenge_answer, hub_signature, signature_ok
from lab.fake_graph import sign_facebook

SECRET = "fb-app-secret-1022"


@given(body=st.binary(max_size=500))
def test_given_what_meta_signs_then_it_is_accepted(body: bytes) -> None:
    header = sign_facebook(body, SECRET)["X-Hub-Signature-256"]
    assert header == hub_signature(SECRET, body)
    assert signature_ok(header, body, SECRET)
    assert signature_ok(header.upper().replace("SHA256=", "sha256="), body, SECRET)


@given(body=st.binary(min_size=1, max_size=200), index=st.integers(min_value=0),
       flip=st.integers(min_value=1, max_value=255))  # fmt: skip
def test_given_a_changed_byte_then_it_is_refused(body: bytes, index: int, flip: int) -> None:
    header = sign_facebook(body, SECRET)["X-Hub-Signature-256"]
    changed = bytearray(body)
    changed[index % len(body)] ^= flip
    assert not signature_ok(header, bytes(changed), SECRET)


@given(other=st.text(max_size=40).filter(lambda s: s != SECRET), body=st.binary(max_size=100))
def test_given_another_secret_then_it_is_refused(other: str, body: bytes) -> None:
    assert not signature_ok(sign_facebook(body, other)["X-Hub-Signature-256"], body, SECRET)


@given(header=st.one_of(st.none(), st.text(max_size=80)))
def test_given_a_missing_or_garbage_header_then_it_is_refused(header: str | None) -> None:
    assert not signature_ok(header, b'{"object":"page"}', SECRET)


def test_given_the_sha1_header_format_then_it_is_refused() -> None:
    body = b"{}"
    sha256 = hub_signature(SECRET, body)
    assert not signature_ok("sha1=" + sha256[7:], body, SECRET)


def test_given_the_subscription_check_then_only_our_token_gets_the_challenge() -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "vt-1022", "hub.challenge": "1158201444"}
    assert challenge_answer(ok, "vt-1022") == "1158201444"
    assert challenge_answer({**ok, "hub.verify_token": "guess"}, "vt-1022") is None
    assert challenge_answer({**ok, "hub.mode": "unsubscribe"}, "vt-1022") is None
    assert (
        challenge_answer({k: v for k, v in ok.items() if k != "hub.verify_token"}, "vt-1022")
        is None
    )
    assert challenge_answer({**ok, "hub.challenge": ""}, "vt-1022") is None
    assert challenge_answer({**ok, "hub.challenge": "9" * 1000}, "vt-1022") is None
